"""German-English sentence pairs from the Ding dictionary (Debian package ``trans-de-en``).

Source: ``/usr/share/trans/de-en`` from ``apt-get install trans-de-en`` (Frank Richter's
German-English dictionary, https://dict.tu-chemnitz.de/; GPL version 2 or later; lstmkit ships
this loader, not the data). Each line is ``German :: English``; both sides hold the same number
of sub-entries separated by ``" | "`` (aligned by position); lines starting with ``#`` are
comments.

What is extracted:

1. Markup is removed from each sub-entry: grammar tags in braces (``{f}``, ``{vt}``,
   ``{prp; +Dat.}``), usage and subject labels in brackets (``[ugs.]``, ``[Br.]``, ``[geol.]``),
   alternative spellings in angle brackets (``<eelsmoking business>``), abbreviations between
   slashes (``/HHJK/``) and parenthesised
   material (``Sie wird (wohl) kaum Zeit haben.`` -> ``Sie wird kaum Zeit haben.``). The
   dictionary uses parentheses for optional words and explanations, so removing them leaves the
   core sentence, which is grammatical with or without the optional part.
2. Text is put in Unicode NFC, the typographic apostrophe ``’`` becomes ``'`` (the file mixes
   both), runs of whitespace become one space and spaces before ``. , ! ? ; :`` go.
3. After that, a side is split into alternatives at ``;`` directly after ``.``, ``!`` or ``?``
   (``Was meinst du?; Was sagst du dazu?``); a ``;`` inside a sentence is kept.
4. A **sentence pair** is every (German alternative, English alternative) of a sub-entry where
   both end with ``.``, ``!`` or ``?``, the German has at least 4 words and starts with a capital
   letter, digit or quotation mark, and neither side contains a dictionary placeholder (``etw.``,
   ``jdm.``, ``jdn.``, ``jds.``, ``jd.``, ``sth.``, ``sb.``), which marks a phrase template rather
   than a sentence. Inline alternatives with ``/`` (``Das ist nicht fair/gerecht!``) are kept.
5. Exact duplicate pairs are kept once (first occurrence in file order).

Split: by the SHA-256 of ``"lstmkit-de-en-v1\\0" + German sentence``: buckets 0-89 of 100 are
train, 90-94 validation, 95-99 test. A German sentence is therefore in exactly one split (with
all its English translations), and a new dictionary release only adds or removes pairs, never
moves one between splits. Pairs are returned in file order.

Phrase pairs (``include_phrases=True``, train only): each remaining sub-entry whose sides are not
both sentences, reduced to the first alternative (synonym) of each side after markup removal,
de-duplicated, and skipped when its German equals a validation or test sentence.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

SPLITS = ("train", "validation", "test")
SPLIT_SALT = "lstmkit-de-en-v1"
STANDARD_LOCATIONS = (Path("/usr/share/trans/de-en"), Path("/usr/local/share/trans/de-en"))
_INSTALL = "install the Debian package trans-de-en (apt-get install trans-de-en)"

_MARKUP = re.compile(r"\{[^{}]*\}|\[[^\[\]]*\]|<[^<>]*>|(?<!\S)/[^/\s]+/(?!\S)")
_PARENTHESES = re.compile(r"\([^()]*\)")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:])")
_ALTERNATIVES = re.compile(r"(?<=[.!?])\s*;\s+")
_SYNONYMS = re.compile(r"\s*;\s*")
_PLACEHOLDER = re.compile(r"(?<![\w.])(?:etw|jdm|jdn|jds|jd|sth|sb)\.")
_SENTENCE_END = ".!?"
_SENTENCE_START = "„“\"'‚»«"

Pair = tuple[str, str]


class _Corpus(NamedTuple):
    sentences: dict[str, list[Pair]]
    phrases: list[Pair]


def find_de_en_file() -> Path:
    """The Ding ``de-en`` file: ``$LSTMKIT_TRANS_DE_EN`` if set, else the standard locations.

    Raises:
        FileNotFoundError: no file found; the message says which package to install.
    """
    override = os.environ.get("LSTMKIT_TRANS_DE_EN")
    candidates = (Path(override),) if override else STANDARD_LOCATIONS
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"German-English dictionary not found (looked in {looked}); {_INSTALL}")


def normalize(text: str) -> str:
    """Removes the dictionary's markup from one side of a sub-entry and normalises it.

    >>> normalize("Sie wird (wohl) kaum Zeit haben [ugs.] .")
    'Sie wird kaum Zeit haben.'
    >>> normalize("It’s   his {pl} word.")
    "It's his word."
    """
    text = unicodedata.normalize("NFC", text)
    text = _MARKUP.sub(" ", text)
    previous = None
    while previous != text:  # innermost parentheses first, for nested ones
        previous, text = text, _PARENTHESES.sub(" ", text)
    text = text.replace("’", "'")
    text = " ".join(text.split())
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text)


def is_sentence_pair(german: str, english: str) -> bool:
    """The sentence rule of the module doc, applied to two normalised strings."""
    return (
        german[-1:] in _SENTENCE_END
        and english[-1:] in _SENTENCE_END
        and len(german.split()) >= 4
        and (german[0].isupper() or german[0].isdigit() or german[0] in _SENTENCE_START)
        and not _PLACEHOLDER.search(german)
        and not _PLACEHOLDER.search(english)
    )


def split_of(german: str) -> str:
    """The split (``"train"``, ``"validation"`` or ``"test"``) of a normalised German sentence."""
    digest = hashlib.sha256(f"{SPLIT_SALT}\0{german}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    return "train" if bucket < 90 else "validation" if bucket < 95 else "test"


def _sub_entries(path: Path) -> Iterator[Pair]:
    """Raw (German, English) sub-entries of the file, aligned on ``" | "``."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            sides = line.split(" :: ")
            if len(sides) != 2:
                raise ValueError(f"{path}:{number}: expected 'German :: English', got {line!r}")
            german, english = (side.split(" | ") for side in sides)
            if len(german) != len(english):
                raise ValueError(
                    f"{path}:{number}: {len(german)} German but {len(english)} English "
                    "sub-entries; expected them aligned one to one"
                )
            yield from zip(german, english)


@functools.cache
def _corpus(path: Path, mtime_ns: int) -> _Corpus:
    """Sentence pairs by split and train phrase pairs of one file (cached per path and mtime)."""
    del mtime_ns  # part of the cache key only
    sentences: dict[str, list[Pair]] = {name: [] for name in SPLITS}
    candidates: list[Pair] = []
    seen: set[Pair] = set()
    for raw_german, raw_english in _sub_entries(path):
        german = _ALTERNATIVES.split(normalize(raw_german))
        english = _ALTERNATIVES.split(normalize(raw_english))
        found = False
        for de in german:
            for en in english:
                if de and en and is_sentence_pair(de, en):
                    found = True
                    if (de, en) not in seen:
                        seen.add((de, en))
                        sentences[split_of(de)].append((de, en))
        if not found:
            de = _SYNONYMS.split(german[0])[0]
            en = _SYNONYMS.split(english[0])[0]
            if de and en:
                candidates.append((de, en))
    held_out = {de for name in ("validation", "test") for de, _ in sentences[name]}
    phrases: list[Pair] = []
    for pair in candidates:
        if pair not in seen and pair[0] not in held_out:
            seen.add(pair)
            phrases.append(pair)
    return _Corpus(sentences, phrases)


def load_de_en(
    split: str = "train",
    include_phrases: bool = False,
    *,
    path: str | os.PathLike[str] | None = None,
) -> list[Pair]:
    """German-English sentence pairs of ``split`` (see the module doc for every rule).

    Args:
        split: ``"train"``, ``"validation"`` or ``"test"``.
        include_phrases: add the dictionary's phrase pairs (train split only).
        path: the dictionary file; default: :func:`find_de_en_file`.

    Returns:
        A list of ``(german, english)`` string pairs. With trans-de-en 1.9-6 (dictionary
        version "devel 2023-01-30"): 19,403 train, 1,043 validation, 1,055 test sentence pairs
        (20,039 distinct German sentences), plus 369,009 phrase pairs with
        ``include_phrases=True``.

    Raises:
        ValueError: unknown ``split``, ``include_phrases`` outside the train split, or a
            malformed file.
        FileNotFoundError: the dictionary is not installed.
    """
    if split not in SPLITS:
        raise ValueError(f"load_de_en: split must be one of {SPLITS}, got {split!r}")
    if not isinstance(include_phrases, bool):
        raise TypeError(f"load_de_en: include_phrases must be a bool, got {include_phrases!r}")
    if include_phrases and split != "train":
        raise ValueError(
            f"load_de_en: include_phrases=True is only for the train split, got split={split!r}"
        )
    file = find_de_en_file() if path is None else Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"load_de_en: no file at {file}; {_INSTALL}")
    corpus = _corpus(file.resolve(), file.stat().st_mtime_ns)
    pairs = list(corpus.sentences[split])
    if include_phrases:
        pairs += corpus.phrases
    return pairs
