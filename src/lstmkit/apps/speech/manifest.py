"""The user's own recordings: a manifest of (audio, transcript) pairs, or a folder of pairs.

:func:`read_manifest` takes

* a table (``*.csv``, ``*.tsv``, ``*.jsonl``; :func:`lstmkit.data.tables.read_columns`) with an
  audio-path column (``audio_column``, default ``audio``) and a transcript column
  (``text_column``, default ``text``), the layout of LibriSpeech- and Common-Voice-style
  manifests; relative audio paths are relative to the manifest's folder;
* a folder holding ``x.wav`` (or ``.flac``, ``.ogg``) next to ``x.txt``, its transcript, at any
  depth.

Every audio file's header is read (``soundfile.info``) before anything trains, so a missing file
or one that is not audio is an error naming the manifest line (or the file), not a crash an hour
in. Transcripts are normalised by :func:`normalize_transcript` (NFC, lower case, single spaces)
and modelled character by character (:func:`char_vocabulary`: every character of the training
transcripts, the space included); the demo's digits keep their word vocabulary.

>>> normalize_transcript("  Hello,   World ")
'hello, world'
>>> char_vocabulary(["ab a", "ba"])
(' ', 'a', 'b')
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstmkit.data.tables import is_table, read_columns
from lstmkit.data.user_text import decode_text

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")


@dataclass(frozen=True)
class Recording:
    """One utterance of the user's data (what :func:`~.features.load_features` reads)."""

    id: str
    path: Path
    transcript: str
    where: str  # manifest line or transcript file, for messages
    params: dict[str, Any] = field(default_factory=dict)


def normalize_transcript(text: str) -> str:
    """NFC, lower case, single spaces."""
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


def char_vocabulary(transcripts: Sequence[str]) -> tuple[str, ...]:
    """The sorted characters of ``transcripts`` (the CTC classes after the blank)."""
    chars = sorted({c for t in transcripts for c in t})
    if not chars:
        raise ValueError("the transcripts hold no characters")
    return tuple(chars)


def _check_audio(path: Path, where: str) -> None:
    import soundfile

    if not path.is_file():
        raise FileNotFoundError(f"{where}: the audio file {path} does not exist")
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.LibsndfileError) as e:
        raise ValueError(
            f"{where}: {path} is not an audio file soundfile can read ({' '.join(str(e).split())})"
        ) from None
    if info.frames == 0:
        raise ValueError(f"{where}: {path} holds no samples")


def read_manifest(
    path: str | Path, audio_column: str = "audio", text_column: str = "text"
) -> list[Recording]:
    """The recordings of a manifest table or a folder (see the module docstring).

    Raises:
        FileNotFoundError: the manifest, or an audio file it names, does not exist.
        ValueError: a bad table (:func:`~lstmkit.data.tables.read_columns`), a file that is
            not audio, an empty transcript, a folder without pairs.
    """
    path = Path(path)
    out: list[Recording] = []
    if path.is_dir():
        audio = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        for file in audio:
            text_file = file.with_suffix(".txt")
            if not text_file.is_file():
                raise ValueError(f"{file}: no transcript {text_file.name} next to it")
            transcript = normalize_transcript(decode_text(text_file.read_bytes(), str(text_file)))
            out.append(Recording(str(file.relative_to(path)), file, transcript, str(text_file)))
        if not out:
            raise ValueError(
                f"{path}: a folder without recordings (expected x.wav next to x.txt, at any depth)"
            )
    elif not path.exists():
        raise FileNotFoundError(f"{path}: no such manifest file or folder")
    elif not is_table(path):
        raise ValueError(
            f"{path}: a manifest is a .csv, .tsv or .jsonl table (columns {audio_column!r} and "
            f"{text_column!r}) or a folder of x.wav + x.txt"
        )
    else:
        table = read_columns(path, {audio_column: "--audio-column", text_column: "--text-column"})
        for (audio_path, text), at in zip(table.rows, table.where, strict=True):
            file = Path(audio_path)
            file = file if file.is_absolute() else path.parent / file
            transcript = normalize_transcript(text)
            out.append(Recording(audio_path, file, transcript, at))
    for r in out:
        if not r.transcript:
            raise ValueError(f"{r.where}: the transcript is empty")
        _check_audio(r.path, r.where)
    ids = [r.id for r in out]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise ValueError(f"{path}: the audio file {dup!r} is listed twice")
    return out


def split_of(recording: Recording) -> str:
    """``train`` (90 %), ``val`` (5 %) or ``test`` (5 %), fixed by a hash of the audio path."""
    digest = hashlib.sha256(recording.id.encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    return "train" if bucket < 90 else "val" if bucket < 95 else "test"


def user_recordings(cfg: Any) -> dict[str, list[Recording]]:
    """``{"train", "val", "test"}`` recordings of ``cfg.manifest`` (a separate
    ``valid_manifest`` / ``test_manifest`` replaces that share of the hash split).

    Raises:
        ValueError: a split left empty (a manifest too small for the hash split).
    """

    def read(path: str) -> list[Recording]:
        return read_manifest(path, cfg.audio_column, cfg.text_column)

    given = {"val": cfg.valid_manifest, "test": cfg.test_manifest}
    parts: dict[str, list[Recording]] = {"train": [], "val": [], "test": []}
    for r in read(cfg.manifest):
        s = split_of(r)
        parts["train" if s != "train" and given[s] else s].append(r)
    for split, path in given.items():
        if path:
            parts[split] = read(path)
    for split, rows in parts.items():
        if not rows:
            flag = {"train": "--manifest", "val": "--valid-manifest", "test": "--test-manifest"}
            raise ValueError(
                f"{cfg.manifest}: the {split} split is empty; give more recordings or {flag[split]}"
            )
    return parts
