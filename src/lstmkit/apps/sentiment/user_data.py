"""The user's own labelled texts: CSV, TSV, JSON Lines, or a folder of one subfolder per class.

:func:`read_labelled` reads one source into texts, label names and where each came from
(``file:line``, for messages). The format comes from the path:

* ``*.csv`` / ``*.tsv`` (or ``*.tab``): a header row naming the columns, then one example per
  row, read with Python's ``csv`` module (quotes, commas or tabs and line breaks inside quoted
  fields work as in spreadsheets' exports);
* ``*.jsonl`` / ``*.ndjson``: one JSON object per line (blank lines skipped);
* a folder: one subfolder per class, every ``*.txt`` file below it one example, as Keras's
  ``text_dataset_from_directory`` reads it (class names are the subfolder names).

``text_column`` and ``label_column`` name the fields (default ``text`` and ``label``). Class
names are the label values as strings; their order is sorted (as Keras sorts subfolders), and
with two classes the second is the one whose probability a binary model outputs. Refused, with a
``ValueError`` naming the file (and the line where there is one): a file that is not UTF-8, a
missing column (the columns found are listed), an empty text or label, a line that is not a JSON
object, an unknown extension, a source with no examples.

>>> import io
>>> rows = read_csv_text(io.StringIO('text,label\\n"good, really",pos\\nbad,neg\\n'), "r.csv", ",",
...                      "text", "label")
>>> rows.texts, rows.labels, rows.where
(['good, really', 'bad'], ['pos', 'neg'], ['r.csv:2', 'r.csv:3'])
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from lstmkit.data.user_text import decode_text

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class Labelled:
    """Examples read from one source: ``labels`` is ``None`` when only texts were asked for."""

    texts: list[str]
    labels: list[str] | None
    where: list[str]  # "file:line" (or the file of a folder's example) of each

    def __len__(self) -> int:
        return len(self.texts)


def _cell(value: Any, column: str, where: str, what: str) -> str:
    if value is None:
        raise ValueError(f"{where}: no {what} column {column!r} in this row")
    if isinstance(value, (dict, list)):
        raise ValueError(f"{where}: the {what} {column!r} is a JSON {type(value).__name__}, "
                         f"expected a string")  # fmt: skip
    text = str(value).strip() if not isinstance(value, str) else value
    if not text.strip():
        raise ValueError(f"{where}: the {what} ({column!r}) is empty")
    return text


def read_csv_text(
    handle: TextIO, name: str, delimiter: str, text_column: str, label_column: str | None
) -> Labelled:
    """Rows of a CSV/TSV whose first row names the columns (see the module docstring)."""
    reader = csv.DictReader(handle, delimiter=delimiter, strict=True)
    try:
        columns = reader.fieldnames
    except csv.Error as e:
        raise ValueError(f"{name}:1: not a readable table: {e}") from None
    if not columns:
        raise ValueError(f"{name}: no header row (expected column names, e.g. text,label)")
    wanted = [text_column] + ([label_column] if label_column else [])
    for column, flag in zip(wanted, ("--text-column", "--label-column"), strict=False):
        if column not in columns:
            raise ValueError(
                f"{name}: no column {column!r} (columns: {', '.join(map(repr, columns))}); "
                f"name the right one with {flag}"
            )
    texts, labels, where = [], [], []
    try:
        for row in reader:
            at = f"{name}:{reader.line_num}"
            if None in row:
                raise ValueError(
                    f"{at}: {len(columns) + len(row[None])} fields where the header has "
                    f"{len(columns)} (an unquoted {delimiter!r} in a text?)"
                )
            texts.append(_cell(row.get(text_column), text_column, at, "text"))
            if label_column:
                labels.append(_cell(row.get(label_column), label_column, at, "label"))
            where.append(at)
    except csv.Error as e:
        raise ValueError(f"{name}:{reader.line_num}: not a readable table: {e}") from None
    return Labelled(texts, labels if label_column else None, where)


def read_jsonl_text(text: str, name: str, text_column: str, label_column: str | None) -> Labelled:
    """One JSON object per line (see the module docstring)."""
    texts, labels, where = [], [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        at = f"{name}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{at}: not JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{at}: expected a JSON object, got a {type(obj).__name__}")
        for column, flag in ((text_column, "--text-column"), (label_column, "--label-column")):
            if column and column not in obj:
                raise ValueError(
                    f"{at}: no key {column!r} (keys: {', '.join(map(repr, obj))}); name the "
                    f"right one with {flag}"
                )
        texts.append(_cell(obj[text_column], text_column, at, "text"))
        if label_column:
            labels.append(_cell(obj[label_column], label_column, at, "label"))
        where.append(at)
    return Labelled(texts, labels if label_column else None, where)


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
        suffix = path.suffix.lower()
        if suffix not in TABLE_SUFFIXES and suffix not in JSONL_SUFFIXES:
            known = ", ".join([*TABLE_SUFFIXES, *JSONL_SUFFIXES])
            raise ValueError(
                f"{path}: unknown data format {suffix or '(no extension)'!r}; expected one of "
                f"{known}, or a folder of one subfolder per class"
            )
        text = decode_text(path.read_bytes(), str(path))
        if suffix in TABLE_SUFFIXES:
            out = read_csv_text(
                io.StringIO(text, newline=""), str(path), TABLE_SUFFIXES[suffix], text_column,
                label_column,
            )  # fmt: skip
        else:
            out = read_jsonl_text(text, str(path), text_column, label_column)
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
