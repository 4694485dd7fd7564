"""A second real corpus: the translations installed with Debian packages' message catalogues.

Programs ship their user interface's messages translated by people, as gettext catalogues
(``/usr/share/locale/<lang>/LC_MESSAGES/*.mo``: English ``msgid`` → translated ``msgstr``); this
is how OPUS builds its GNOME, KDE and Ubuntu corpora. :func:`catalogue_pairs` reads every
installed catalogue of a language with ``polib`` and keeps the pairs that are full sentences,
cleaned the same way on both sides:

* dropped: untranslated, fuzzy and plural entries, messages of several lines or paragraphs,
  command-line help (a line starting with ``-``), and pairs whose two sides hold different
  format specifiers (``%s``, ``%1$d``, ``%(name)s``, ``{0}``, ``${var}``) or different numbers;
* stripped: keyboard accelerators (``_File``, ``&File``, ``~File``), markup tags (``<b>``),
  format specifiers (replaced by nothing, then spaces collapsed), a final line end, German
  quotation marks ``»…«``/``„…“`` become ``"…"`` (the English side's ``'…'``/```…'`` too);
* kept: pairs whose source (the translation) has at least ``min_words`` words and both sides
  start with a letter or digit and end with ``.``, ``!`` or ``?`` (sentences, not labels);
* dropped too: a "translation" identical to the English (commands and names copied over);
* de-duplicated: one pair per source sentence (the first catalogue in sorted order wins).

The pairs are written as a TSV of ``<lang> sentence<TAB>English sentence`` (the direction of
the dictionary demo: German into English for ``--lang de``), atomically.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LOCALE_DIR = Path("/usr/share/locale")
_FORMAT = re.compile(
    r"%(?:\d+\$)?[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|L|z|j|t)?[diouxXeEfFgGcsp]"
    r"|%\([A-Za-z_]+\)[sdif]|\{[A-Za-z0-9_]*\}|\$\{[A-Za-z0-9_]+\}"
)
_MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_ACCELERATOR = re.compile(r"(?<![\w&])[_&~](?=\w)")
_NUMBER = re.compile(r"\d+")
_EMPTY = re.compile(r"\(\s*\)|\[\s*\]|\"\s*\"|'\s*'")
_SPACE_BEFORE = re.compile(r"\s+([.,;:!?])")
_QUOTES = str.maketrans({"»": '"', "«": '"', "„": '"', "“": '"', "”": '"', "‘": "'", "’": "'",
                         "`": "'"})  # fmt: skip


@dataclass
class CorpusStats:
    """What :func:`catalogue_pairs` read and why it dropped what it dropped."""

    catalogues: int = 0
    entries: int = 0
    kept: int = 0
    duplicates: int = 0
    not_sentences: int = 0
    format_mismatch: int = 0
    multi_line: int = 0


def clean(text: str) -> str:
    """Accelerators, markup and format specifiers removed, quotes plain, spaces single."""
    text = _MARKUP.sub("", text)
    text = _ACCELERATOR.sub("", text)
    text = _FORMAT.sub("", text)
    text = text.translate(_QUOTES)
    text = _EMPTY.sub("", text)  # what held a removed specifier: (), [], "", ''
    text = " ".join(text.split())
    return _SPACE_BEFORE.sub(r"\1", text)


def _sentence(text: str, min_words: int) -> bool:
    return (
        len(text.split()) >= min_words
        and text[0].isalnum()
        and text[-1] in ".!?"
        and not text.startswith("-")
    )


def catalogue_pairs(
    lang: str = "de", locale_dir: Path = LOCALE_DIR, min_words: int = 4
) -> tuple[list[tuple[str, str]], CorpusStats]:
    """``(translation, English)`` sentence pairs of every ``<lang>`` catalogue installed.

    Raises:
        FileNotFoundError: no catalogue of ``lang`` under ``locale_dir``.
    """
    import polib

    files = sorted((Path(locale_dir) / lang / "LC_MESSAGES").glob("*.mo"))
    if not files:
        raise FileNotFoundError(
            f"no gettext catalogues in {Path(locale_dir) / lang / 'LC_MESSAGES'}; install "
            f"packages with {lang} translations (their .mo files)"
        )
    stats = CorpusStats(catalogues=len(files))
    seen: dict[str, str] = {}
    for file in files:
        for source, target in _entries(polib.mofile(str(file)), stats):
            if not (_sentence(source, min_words) and _sentence(target, 2)):
                stats.not_sentences += 1
            elif source == target:  # copied, not translated (commands, names)
                stats.not_sentences += 1
            elif source in seen:
                stats.duplicates += 1
            else:
                seen[source] = target
    stats.kept = len(seen)
    return list(seen.items()), stats


def _entries(mo: object, stats: CorpusStats) -> Iterator[tuple[str, str]]:
    for entry in mo:  # type: ignore[attr-defined]
        stats.entries += 1
        if not entry.msgstr or entry.msgid_plural or "fuzzy" in entry.flags:
            continue
        english, translated = entry.msgid.strip("\n"), entry.msgstr.strip("\n")
        if "\n" in english or "\n" in translated or "\t" in english + translated:
            stats.multi_line += 1
            continue
        if sorted(_FORMAT.findall(english)) != sorted(_FORMAT.findall(translated)) or sorted(
            _NUMBER.findall(_FORMAT.sub("", english))
        ) != sorted(_NUMBER.findall(_FORMAT.sub("", translated))):
            stats.format_mismatch += 1
            continue
        source, target = clean(translated), clean(english)
        if source and target:
            yield source, target


def write_tsv(pairs: list[tuple[str, str]], path: str | Path) -> Path:
    """``source<TAB>target`` lines, written atomically."""
    from lstmkit.utils import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as fh:
        for source, target in pairs:
            fh.write(f"{source}\t{target}\n")
    return path
