"""The user's own text files: read as UTF-8 with errors that name the file and the byte.

:func:`read_texts` takes what a user types after ``--data``: files, folders (every ``*.txt``
below, in sorted path order) and ``-`` for standard input, and gives one :class:`TextSource`
per file. It refuses, with a ``ValueError`` naming the file:

* a file that is not UTF-8 (the byte offset of the first bad byte, and the bytes there);
* a binary file (a NUL byte: its offset) — text never holds one;
* an empty file, or a folder without ``.txt`` files;

and a missing path with ``FileNotFoundError``. A UTF-8 byte-order mark is dropped and line ends
are normalised to ``\\n`` (``\\r\\n`` and ``\\r``), so that a file written on Windows trains the
same model. :func:`split_tail` cuts a held-out share off the end of a text at a line boundary.

>>> split_tail("one\\ntwo\\nthree\\nfour\\n", 0.25)
('one\\ntwo\\nthree\\n', 'four\\n')
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_TEXT_BYTES = 2 << 30  # 2 GiB: the text is held in memory (and tokenised there)


@dataclass(frozen=True)
class TextSource:
    """One file's text: ``name`` (its path as given, or ``"<stdin>"``) and ``text``."""

    name: str
    text: str

    @property
    def chars(self) -> int:
        return len(self.text)


def decode_text(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text (BOM dropped, line ends ``\\n``).

    Raises:
        ValueError: empty, a NUL byte (binary), or not UTF-8 — naming ``name`` and the offset.
    """
    if not data.strip():
        raise ValueError(f"{name}: the file is empty (or holds only white space)")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise ValueError(
            f"{name}: a binary file, not text: a NUL byte at byte offset {nul:,} (expected "
            f"UTF-8 text)"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        shown = data[e.start : e.start + 4].hex(" ")
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(
            f"{name}: not UTF-8 text: byte offset {e.start:,} (line {line}) holds {shown} "
            f"({e.reason}); convert it first, e.g. `iconv -f latin1 -t utf-8`"
        ) from None
    text = text.removeprefix("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_bytes(handle: BinaryIO, name: str) -> bytes:
    data = handle.read(MAX_TEXT_BYTES + 1)
    if len(data) > MAX_TEXT_BYTES:
        raise ValueError(
            f"{name}: more than {MAX_TEXT_BYTES >> 30} GiB of text; split it or use a sample"
        )
    return data


def _files_of(path: Path, given: str) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not found:
            raise ValueError(f"{given}: a folder without .txt files (expected text files)")
        return found
    if not path.exists():
        raise FileNotFoundError(f"{given}: no such file or folder")
    if not path.is_file():
        raise ValueError(f"{given}: not a regular file or a folder")
    return [path]


def read_texts(
    paths: list[str] | tuple[str, ...], stdin: BinaryIO | None = None
) -> list[TextSource]:
    """The texts of ``paths`` (files, folders of ``*.txt``, ``-`` = standard input), in order.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: no paths, a file that is empty, binary or not UTF-8 (see the module
            docstring), ``-`` given twice.
    """
    if not paths:
        raise ValueError("no text given: name at least one file or folder (or - for stdin)")
    if sum(1 for p in paths if p == "-") > 1:
        raise ValueError("- (standard input) can be given only once")
    out: list[TextSource] = []
    for given in paths:
        given = os.fspath(given)
        if given == "-":
            handle = stdin if stdin is not None else sys.stdin.buffer
            out.append(
                TextSource("<stdin>", decode_text(_read_bytes(handle, "<stdin>"), "<stdin>"))
            )
            continue
        for file in _files_of(Path(given), given):
            name = str(file)
            with open(file, "rb") as handle:
                out.append(TextSource(name, decode_text(_read_bytes(handle, name), name)))
    return out


def join_texts(sources: list[TextSource]) -> str:
    """The texts one after another, each ending with a line end."""
    return "".join(s.text if s.text.endswith("\n") else s.text + "\n" for s in sources)


def split_tail(text: str, fraction: float) -> tuple[str, str]:
    """``(head, tail)`` with about ``fraction`` of the characters in ``tail``, cut after a line
    end (or, in a text of one line, at the character).

    Raises:
        ValueError: ``fraction`` not in (0, 1), or a text too short to leave both parts.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction}")
    cut = round(len(text) * (1.0 - fraction))
    line_end = text.rfind("\n", 0, cut)
    if line_end > 0 and line_end + 1 < len(text):
        cut = line_end + 1
    head, tail = text[:cut], text[cut:]
    if len(head) < 2 or len(tail) < 2:
        raise ValueError(
            f"the text ({len(text):,} characters) is too short to hold out {fraction:g} of it; "
            f"give more text or a separate validation file"
        )
    return head, tail
