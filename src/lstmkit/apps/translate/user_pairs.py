"""The user's parallel data: a TSV, a pair of aligned files, or Moses-style ``PREFIX.<lang>``.

:func:`read_pairs` gives ``(source, target)`` pairs from one of

* a TSV file: one pair per line, ``source<TAB>target`` (a line with another number of tabs is
  an error naming it; blank lines are skipped);
* two aligned files, one sentence per line (``source_file``, ``target_file``): the line counts
  must agree (the error names the line where the shorter file ends), and a line empty on one
  side only is an error naming it; lines empty on both sides are skipped;
* a Moses-style prefix: ``PREFIX.<source_lang>`` and ``PREFIX.<target_lang>`` (``corpus.de``,
  ``corpus.en``) read as two aligned files.

Files are UTF-8 (:func:`lstmkit.data.user_text.decode_text` names the byte of any other
encoding); sentences are NFC-normalised with single spaces (:func:`clean_line`).
:func:`user_split` cuts the pairs 90/5/5 by a hash of the source, as the dictionary is split.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from lstmkit.apps.translate.config import TranslateConfig
from lstmkit.data.user_text import decode_text

Pair = tuple[str, str]


def clean_line(text: str) -> str:
    """Unicode NFC and single spaces (what the dataset's sentences look like)."""
    text = unicodedata.normalize("NFC", text)
    return " ".join(text.replace("’", "'").split())


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return decode_text(path.read_bytes(), str(path)).split("\n")


def read_tsv(path: str | Path) -> list[Pair]:
    """Pairs of a ``source<TAB>target`` file."""
    path = Path(path)
    pairs = []
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise ValueError(
                f"{path}:{number}: {len(fields)} tab-separated field(s); expected 2 "
                f"(source<TAB>target)"
            )
        source, target = clean_line(fields[0]), clean_line(fields[1])
        if not source or not target:
            side = "source" if not source else "target"
            raise ValueError(f"{path}:{number}: the {side} side is empty")
        pairs.append((source, target))
    return pairs


def read_aligned(source_file: str | Path, target_file: str | Path) -> list[Pair]:
    """Pairs of two files aligned line by line."""
    source_file, target_file = Path(source_file), Path(target_file)
    sources, targets = _lines(source_file), _lines(target_file)
    for lines in (sources, targets):  # a final line end is no extra line
        if lines and lines[-1] == "":
            lines.pop()
    if len(sources) != len(targets):
        short, long_ = (
            (source_file, target_file)
            if len(sources) < len(targets)
            else (target_file, source_file)
        )
        n = min(len(sources), len(targets))
        raise ValueError(
            f"misaligned files: {source_file} has {len(sources):,} lines and {target_file} "
            f"{len(targets):,}; {short} ends after line {n:,} where {long_} goes on (expected "
            f"one sentence per line in both)"
        )
    pairs = []
    for number, (s, t) in enumerate(zip(sources, targets, strict=True), start=1):
        source, target = clean_line(s), clean_line(t)
        if not source and not target:
            continue
        if not source or not target:
            empty, other = (source_file, target_file) if not source else (target_file, source_file)
            raise ValueError(
                f"{empty}:{number}: an empty line where {other}:{number} has a sentence "
                f"(misaligned files?)"
            )
        pairs.append((source, target))
    return pairs


def read_pairs(spec: str, cfg: TranslateConfig) -> list[Pair]:
    """Pairs of a TSV file or of a Moses-style prefix (``spec.<source_lang>``)."""
    path = Path(spec)
    moses = Path(f"{spec}.{cfg.source_lang}"), Path(f"{spec}.{cfg.target_lang}")
    if path.is_file():
        pairs = read_tsv(path)
    elif moses[0].is_file() or moses[1].is_file():
        pairs = read_aligned(*moses)
    else:
        raise FileNotFoundError(
            f"{spec}: no such file, nor {moses[0]} / {moses[1]} (expected a TSV of "
            f"source<TAB>target lines or Moses-style files PREFIX.{cfg.source_lang} and "
            f"PREFIX.{cfg.target_lang})"
        )
    if not pairs:
        raise ValueError(f"{spec}: no sentence pairs")
    return pairs


_LAST_READ: dict[tuple, list[Pair]] = {}  # the main data last read, by its files' identity


def _main_pairs(cfg: TranslateConfig) -> list[Pair]:
    """The pairs of ``cfg.data`` (or the aligned files), read and checked once while the files
    stay the same: training asks for each split in turn, and each split is cut from them."""
    if cfg.source_file:
        candidates = [cfg.source_file, cfg.target_file]
    else:
        candidates = [cfg.data, f"{cfg.data}.{cfg.source_lang}", f"{cfg.data}.{cfg.target_lang}"]
    stamps = []
    for name in candidates:
        try:
            st = os.stat(name)
            stamps.append((name, st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            stamps.append((name, None))
    key = (bool(cfg.source_file), cfg.source_lang, cfg.target_lang, tuple(stamps))
    if key not in _LAST_READ:
        if cfg.source_file:
            pairs = read_aligned(cfg.source_file, cfg.target_file)
        else:
            pairs = read_pairs(cfg.data, cfg)
        _LAST_READ.clear()
        _LAST_READ[key] = pairs
    return _LAST_READ[key]


def user_split(split: str, cfg: TranslateConfig) -> list[Pair]:
    """The pairs of ``split`` (``train``, ``validation``, ``test``) of the user's data."""
    from lstmkit.datasets.translation import split_of

    separate = {"validation": cfg.valid_data, "test": cfg.test_data}.get(split, "")
    if separate:
        return read_pairs(separate, cfg)
    pairs = _main_pairs(cfg)
    where = cfg.source_file or cfg.data
    held_out = {"validation": bool(cfg.valid_data), "test": bool(cfg.test_data)}

    def side(source: str) -> str:
        s = split_of(source)
        return "train" if s != "train" and held_out[s] else s  # a given file replaces it

    out = [p for p in pairs if side(p[0]) == split]
    if not out:
        raise ValueError(
            f"{where}: the {split} split of the {len(pairs)} pairs is empty; give more pairs "
            f"or a separate {'valid' if split == 'validation' else split}_data file"
        )
    return out
