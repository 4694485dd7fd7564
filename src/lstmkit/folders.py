"""Folders that lstmkit writes into and cleans up, shared with the user's own files.

The rule: lstmkit deletes only what it wrote. A folder (``BackupAndRestore``'s ``backup_dir``,
an application's run directory) holds lstmkit's *own names* (``backup.lstmkit``,
``state.json`` …), the temporary files of unfinished writes to them
(:func:`lstmkit.utils.atomic_write`) and, in a folder that lstmkit created, the marker
``.made-by-lstmkit``. Anything else is *foreign*:

* :func:`refuse_foreign` raises at the start of a run when a folder holds foreign entries
  (unless the user allowed them; they are then never touched);
* :func:`remove_own` deletes own names (files only) and their temporary files, and removes the
  folder itself only when it carries the marker and nothing else is left in it.

>>> import tempfile; from pathlib import Path
>>> d = Path(tempfile.mkdtemp()) / "run"
>>> make_folder(d)
True
>>> _ = (d / "state.json").write_text("{}")
>>> foreign_entries(d, {"state.json"})
[]
>>> remove_own(d, {"state.json"}); d.exists()
False
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Collection
from pathlib import Path

from lstmkit.utils import atomic_write, is_temp_file, temp_files

__all__ = ["MARKER", "foreign_entries", "make_folder", "refuse_foreign", "remove_own"]

MARKER = ".made-by-lstmkit"


def foreign_entries(folder: str | os.PathLike[str], own: Collection[str]) -> list[str]:
    """The names in ``folder`` that lstmkit does not recognise: neither an own name, nor the
    temporary file of a write to one, nor the marker. ``[]`` when the folder does not exist."""
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(
        n for n in names if n not in own and n != MARKER and not is_temp_file(n, [*own, MARKER])
    )


def refuse_foreign(
    folder: str | os.PathLike[str], own: Collection[str], *, what: str, flag: str
) -> None:
    """Raise when ``folder`` is not a folder, or holds files lstmkit did not write.

    Args:
        folder: the folder to check (a missing one is fine).
        own: the names lstmkit writes there.
        what: who asks, for the message (``"BackupAndRestore: backup_dir"``).
        flag: how the user allows other files (``"allow_other_files=True"``).

    Raises:
        ValueError: naming the folder, the first foreign entries and ``flag``.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{what}: {folder} is a file; expected a folder")
    foreign = foreign_entries(folder, own)
    if foreign:
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        shown = ", ".join(foreign[:5]) + more
        raise ValueError(
            f"{what}: {folder} holds files that lstmkit did not write ({shown}); lstmkit "
            f"writes and deletes its own files there ({', '.join(sorted(own))}). Give a folder "
            f"of its own, or pass {flag} to use this one (the other files are then left alone)."
        )


def make_folder(folder: str | os.PathLike[str]) -> bool:
    """Create ``folder`` (and its parents) if it does not exist; a folder made here carries the
    marker, so that :func:`remove_own` may remove it once it is empty. Returns whether it was
    made here."""
    folder = Path(folder)
    if folder.is_dir():
        return False
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir()
    except FileExistsError:
        if folder.is_dir():
            return False  # made by someone else meanwhile
        raise
    note = {
        "made_by": "lstmkit",
        "note": "lstmkit created this folder and removes it when it deletes its files here "
        "and nothing else is left in it",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    with atomic_write(folder / MARKER, "w") as fh:
        fh.write(json.dumps(note, indent=1) + "\n")
    return True


def remove_own(folder: str | os.PathLike[str], own: Collection[str]) -> None:
    """Delete the own files of ``folder`` (never a subfolder, never a foreign file) and the
    temporary files of unfinished writes to them; then the folder itself if lstmkit made it
    (the marker) and nothing else is left in it."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for name in own:
        path = folder / name
        for tmp in temp_files(path):
            tmp.unlink(missing_ok=True)
        if path.is_file() or path.is_symlink():
            path.unlink(missing_ok=True)
    for tmp in temp_files(folder / MARKER):
        tmp.unlink(missing_ok=True)
    if os.listdir(folder) == [MARKER]:
        (folder / MARKER).unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:  # something appeared meanwhile: leave the folder
            pass
