"""Rows of the user's tables: CSV, TSV and JSON Lines, with errors naming the file and line.

:func:`read_columns` reads the named columns of a table whose format comes from its extension:

* ``*.csv`` / ``*.tsv`` (or ``*.tab``): a header row naming the columns, then one record per
  row, read with Python's ``csv`` module (quotes, delimiters and line breaks inside quoted
  fields work as spreadsheets export them);
* ``*.jsonl`` / ``*.ndjson``: one JSON object per line (blank lines skipped).

Every value must be a non-empty string (a JSON number becomes its text). Refused with a
``ValueError`` naming the file and, where there is one, the line: not UTF-8 (the byte offset), a
missing column (the columns found are listed, and the flag that names another), an empty value,
a row with more fields than the header, a line that is not a JSON object, an unknown extension,
a table without records.

>>> import io
>>> t = read_csv_text(io.StringIO('text,label\\n"good, really",pos\\nbad,neg\\n'), "r.csv", ",",
...                   {"text": "--text-column", "label": "--label-column"})
>>> t.rows, t.where
([('good, really', 'pos'), ('bad', 'neg')], ['r.csv:2', 'r.csv:3'])
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from lstmkit.data.user_text import decode_text

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class Table:
    """``rows[i]`` holds the wanted columns' values of record ``i``, read at ``where[i]``
    (``file:line``, the line where the record ends)."""

    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    where: list[str]


def is_table(path: str | Path) -> bool:
    """Whether :func:`read_columns` reads ``path`` (by its extension)."""
    suffix = Path(path).suffix.lower()
    return suffix in TABLE_SUFFIXES or suffix in JSONL_SUFFIXES


def _value(value: Any, column: str, where: str) -> str:
    if value is None:
        raise ValueError(f"{where}: no {column!r} in this record")
    if isinstance(value, (dict, list)):
        raise ValueError(f"{where}: {column!r} is a JSON {type(value).__name__}, expected a string")
    text = value if isinstance(value, str) else str(value)
    if not text.strip():
        raise ValueError(f"{where}: {column!r} is empty")
    return text


def _check_present(
    found: list[str], wanted: dict[str, str], where: str, noun: str, plural: str
) -> None:
    """Refuse a wanted column (or key) that ``found`` lacks, listing what is there."""
    for column, flag in wanted.items():
        if column not in found:
            raise ValueError(
                f"{where}: no {noun} {column!r} ({plural}: {', '.join(map(repr, found))}); "
                f"name the right one with {flag}"
            )


def read_csv_text(handle: TextIO, name: str, delimiter: str, wanted: dict[str, str]) -> Table:
    """The ``wanted`` columns (name -> the flag that chooses it) of a CSV/TSV text."""
    reader = csv.DictReader(handle, delimiter=delimiter, strict=True)
    try:
        columns = reader.fieldnames
    except csv.Error as e:
        raise ValueError(f"{name}:1: not a readable table: {e}") from None
    if not columns:
        raise ValueError(f"{name}: no header row (expected column names on the first line)")
    _check_present(columns, wanted, name, "column", "columns")
    rows, where = [], []
    try:
        for record in reader:
            at = f"{name}:{reader.line_num}"
            if None in record:
                raise ValueError(
                    f"{at}: {len(columns) + len(record[None])} fields where the header has "
                    f"{len(columns)} (an unquoted {delimiter!r} in a value?)"
                )
            rows.append(tuple(_value(record.get(c), c, at) for c in wanted))
            where.append(at)
    except csv.Error as e:
        raise ValueError(f"{name}:{reader.line_num}: not a readable table: {e}") from None
    return Table(tuple(wanted), rows, where)


def read_jsonl_text(text: str, name: str, wanted: dict[str, str]) -> Table:
    """The ``wanted`` keys of JSON Lines text."""
    rows, where = [], []
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
        _check_present(list(obj), wanted, at, "key", "keys")
        rows.append(tuple(_value(obj[c], c, at) for c in wanted))
        where.append(at)
    return Table(tuple(wanted), rows, where)


def read_columns(path: str | Path, wanted: dict[str, str]) -> Table:
    """The ``wanted`` columns (name -> the CLI flag that chooses it, for messages) of a table.

    Raises:
        FileNotFoundError: no such file.
        ValueError: see the module docstring.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if not is_table(path):
        known = ", ".join([*TABLE_SUFFIXES, *JSONL_SUFFIXES])
        raise ValueError(
            f"{path}: unknown table format {suffix or '(no extension)'!r}; expected one of {known}"
        )
    text = decode_text(path.read_bytes(), str(path))
    if suffix in TABLE_SUFFIXES:
        table = read_csv_text(io.StringIO(text, newline=""), str(path), TABLE_SUFFIXES[suffix],
                              wanted)  # fmt: skip
    else:
        table = read_jsonl_text(text, str(path), wanted)
    if not table.rows:
        raise ValueError(f"{path}: no records (only a header, or only blank lines)")
    return table
