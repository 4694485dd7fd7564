"""The user's own labelled texts: CSV, TSV, JSON Lines, or a folder of one subfolder per class.

:func:`read_labelled` reads one source into texts, label names and where each came from
(``file:line``, for messages). Tables (``*.csv``, ``*.tsv``, ``*.jsonl``) are read by
:func:`lstmkit.data.tables.read_columns` (which names the file, line and column of any bad
record); a folder holds one subfolder per class, every ``*.txt`` file below it one example, as
Keras's ``text_dataset_from_directory`` reads it (class names are the subfolder names).

``text_column`` and ``label_column`` name the fields (default ``text`` and ``label``). Class
names are the label values as strings; their order is sorted (as Keras sorts subfolders), and
with two classes the second is the one whose probability a binary model outputs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from lstmkit.data.tables import read_columns
from lstmkit.data.user_text import decode_text


@dataclass(frozen=True)
class Labelled:
    """Examples read from one source: ``labels`` is ``None`` when only texts were asked for."""

    texts: list[str]
    labels: list[str] | None
    where: list[str]  # "file:line" (or the file of a folder's example) of each

    def __len__(self) -> int:
        return len(self.texts)


def read_folder(path: Path, with_labels: bool = True) -> Labelled:
    """``path/<class>/**/*.txt``: one example per file, the class its top subfolder."""
    classes = sorted(p for p in path.iterdir() if p.is_dir())
    texts, labels, where = [], [], []
    for folder in classes:
        for file in sorted(p for p in folder.rglob("*.txt") if p.is_file()):
            text = decode_text(file.read_bytes(), str(file))
            texts.append(text.strip())
            labels.append(folder.name)
            where.append(str(file))
    if not texts:
        raise ValueError(
            f"{path}: a folder without class subfolders holding .txt files (expected "
            f"{path}/<class>/<example>.txt)"
        )
    return Labelled(texts, labels if with_labels else None, where)


def read_labelled(
    path: str | Path, text_column: str = "text", label_column: str | None = "label"
) -> Labelled:
    """The examples of ``path`` (``label_column=None``: texts only, e.g. for ``predict``).

    Raises:
        FileNotFoundError: no such file or folder.
        ValueError: see the module docstring.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        out = read_folder(path, with_labels=label_column is not None)
    else:
        wanted = {text_column: "--text-column"}
        if label_column is not None:
            wanted[label_column] = "--label-column"
        table = read_columns(path, wanted)
        texts = [row[0] for row in table.rows]
        labels = [row[1] for row in table.rows] if label_column is not None else None
        out = Labelled(texts, labels, table.where)
    if not out.texts:
        raise ValueError(f"{path}: no examples (only a header, or only blank lines)")
    return out


def class_names(labels: list[str], name: str, column: str) -> tuple[str, ...]:
    """The sorted distinct labels; refuses a single class."""
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise ValueError(
            f"{name}: the label column {column!r} holds one class ({classes[0]!r}); a classifier "
            f"needs examples of at least two"
        )
    return classes


def label_ids(data: Labelled, classes: tuple[str, ...]) -> list[int]:
    """Each example's class index; refuses a label that is not one of ``classes``."""
    index = {c: i for i, c in enumerate(classes)}
    assert data.labels is not None
    out = []
    for label, at in zip(data.labels, data.where, strict=True):
        if label not in index:
            raise ValueError(
                f"{at}: label {label!r} is not one of the model's classes "
                f"({', '.join(map(repr, classes))})"
            )
        out.append(index[label])
    return out


def hash_fraction(text: str) -> float:
    """A number in [0, 1) fixed by the text alone (a duplicate always lands on the same side)."""
    digest = hashlib.blake2b(" ".join(text.lower().split()).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64
