"""Small utilities: reproducibility, sessions, devices, atomic file writes (and their leftovers).

>>> set_random_seed(0); a = torch.rand(1)
>>> set_random_seed(0); bool(torch.equal(a, torch.rand(1)))
True
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import re
import socket
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import torch


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; done once, at import
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def set_random_seed(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (all devices), as Keras's
    ``keras.utils.set_random_seed``: two runs with the same seed give identical weights and
    training histories (on the same machine and engine)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"set_random_seed: seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def max_threads() -> int:
    """The largest thread count lstmkit accepts: the CPUs of this machine (``os.cpu_count()``,
    or the CPUs this process may run on if that is more). Larger counts only oversubscribe the
    cores, and very large ones crash or hang OpenMP (32768 segfaults libgomp)."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        allowed = 0
    return max(os.cpu_count() or 1, allowed, 1)


def check_threads(threads: object, name: str = "threads") -> int:
    """``threads`` as a thread count: an integer in ``[0, max_threads()]`` (0: torch's default).

    Raises:
        TypeError: not an integer (``True`` is not one).
        ValueError: negative, or more than this machine's CPUs.
    """
    if isinstance(threads, bool) or not isinstance(threads, int):
        raise TypeError(f"{name} must be an integer, got {threads!r} ({type(threads).__name__})")
    top = max_threads()
    if not 0 <= threads <= top:
        raise ValueError(
            f"{name} must be between 0 (torch's default) and {top} (the CPUs of this machine), "
            f"got {threads}"
        )
    return threads


def set_threads(threads: object, name: str = "threads") -> None:
    """``torch.set_num_threads(threads)`` after :func:`check_threads`; 0 keeps torch's setting."""
    if check_threads(threads, name):
        torch.set_num_threads(int(threads))  # type: ignore[arg-type]


def check_number_fields(config: object) -> None:
    """Checks a dataclass's numbers: a field whose default is an ``int`` must hold an ``int``,
    one whose default is a ``float`` an ``int`` or a ``float`` (``True`` is neither), and no
    field may hold a NaN or an infinity. Ranges are the caller's to check.

    Raises:
        TypeError: ``"{name} must be an integer|a number, got {value!r}"``.
        ValueError: ``"{name} must be a finite number, got {value!r}"``.
    """
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        value, default = getattr(config, f.name), f.default
        if not isinstance(default, bool) and isinstance(default, int | float):
            wanted = int if isinstance(default, int) else (int, float)
            if isinstance(value, bool) or not isinstance(value, wanted):
                kind = "an integer" if wanted is int else "a number"
                raise TypeError(f"{f.name} must be {kind}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{f.name} must be a finite number, got {value!r}")


_NAME_COUNTS: defaultdict[str, int] = defaultdict(int)


def unique_name(base: str) -> str:
    """Keras-style automatic layer name of this session: ``base``, then ``base_1``, ``base_2``…"""
    count = _NAME_COUNTS[base]
    _NAME_COUNTS[base] += 1
    return base if count == 0 else f"{base}_{count}"


def reset_names() -> None:
    """Restart automatic layer names (``lstm``, ``lstm_1``, …)."""
    _NAME_COUNTS.clear()


def clear_session() -> None:
    """Restart automatic layer names (``lstm``, ``lstm_1``…), as ``keras.backend.clear_session``."""
    reset_names()


def default_device() -> torch.device:
    """``cuda`` when available, else ``cpu`` (override with ``LSTMKIT_DEVICE``)."""
    forced = os.environ.get("LSTMKIT_DEVICE")
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# -- atomic writes ---------------------------------------------------------------------------
#
# A write goes to ``.<name>.lstmkit-unfinished-<host>-<pid>-<random>.tmp`` next to the target
# and is renamed over it when complete. A process killed mid-write (kill -9, power loss) leaves
# that file behind, named so that a user can tell what it is and who left it; the next write
# to the same target removes it once its writer is gone.

TEMP_TAG = "lstmkit-unfinished"
STALE_AFTER_S = 24 * 3600.0  # a temporary file untouched this long is left over, whoever wrote it
_LEGACY_AFTER_S = 3600.0  # earlier lstmkit's temporary files (``.<name>.<random or pid>.tmp``)
_HOST = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:32] or "host"


def _temp_prefix(target: Path) -> str:
    return f".{target.name[:150]}.{TEMP_TAG}-"


def _legacy_name(target_name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(target_name)}\.([a-z0-9_]{{8}}|\d+)\.tmp")


def temp_files(target: str | os.PathLike[str]) -> list[Path]:
    """The temporary files of unfinished atomic writes to ``target`` (of any process)."""
    target = Path(target)
    prefix = _temp_prefix(target)
    legacy = _legacy_name(target.name)
    try:
        names = os.listdir(target.parent)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(
        target.parent / n
        for n in names
        if (n.startswith(prefix) and n.endswith(".tmp")) or legacy.fullmatch(n)
    )


def is_temp_file(name: str, target_names: Iterable[str]) -> bool:
    """Whether ``name`` is the temporary file of an atomic write to one of ``target_names``
    (in the same folder)."""
    if not name.startswith(".") or not name.endswith(".tmp"):
        return False
    return any(
        name.startswith(_temp_prefix(Path(t))) or _legacy_name(t).fullmatch(name) is not None
        for t in target_names
    )


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OverflowError:
        return False
    try:  # a killed process that its parent has not reaped yet is a zombie: gone
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _is_left_over(path: Path, prefix: str) -> bool:
    """Whether the writer of the temporary file ``path`` is gone (a dead process on this host,
    or a file untouched for a day; an old-style name: untouched for an hour)."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    name = path.name
    if not name.startswith(prefix):
        return age > _LEGACY_AFTER_S
    if age > STALE_AFTER_S:
        return True
    host, _, rest = name[len(prefix) : -len(".tmp")].rpartition("-")[0].rpartition("-")
    try:
        pid = int(rest)
    except ValueError:
        return False
    return host == _HOST and not _pid_alive(pid)


def remove_left_over_temp_files(target: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that killed writes to ``target`` left behind (never those of
    a write still in progress); returns the paths removed. :func:`atomic_write` calls it."""
    target = Path(target)
    prefix = _temp_prefix(target)
    removed = []
    for path in temp_files(target):
        if _is_left_over(path, prefix):
            try:
                path.unlink()
            except (FileNotFoundError, PermissionError):
                continue
            removed.append(path)
    return removed


def remove_left_over_temp_files_in(folder: str | os.PathLike[str]) -> list[Path]:
    """:func:`remove_left_over_temp_files` for every target in ``folder`` at once (one listing,
    for writers of many files to one folder: they pass ``clean=False`` to :func:`atomic_write`)."""
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for name in names:
        head, tag, _ = name.partition(f".{TEMP_TAG}-")
        if tag and name.startswith(".") and name.endswith(".tmp"):
            path = folder / name
            if _is_left_over(path, head + tag):
                try:
                    path.unlink()
                except (FileNotFoundError, PermissionError):
                    continue
                removed.append(path)
    return removed


@contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "wb",
    encoding: str | None = None,
    *,
    clean: bool = True,
) -> Iterator[IO]:
    """Write ``path`` atomically: into a temporary file in the same folder, flushed and
    fsync'ed, then renamed over ``path``. On any exception the target is left untouched and the
    temporary file removed — nothing half-written ever appears under ``path``. Temporary files
    that earlier, killed writes to ``path`` left behind are removed first
    (:func:`remove_left_over_temp_files`; ``clean=False`` skips that listing of the folder).
    Text modes write UTF-8 unless ``encoding`` says otherwise."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if clean:
        remove_left_over_temp_files(target)
    fd, tmp = tempfile.mkstemp(
        prefix=f"{_temp_prefix(target)}{_HOST}-{os.getpid()}-", suffix=".tmp", dir=target.parent
    )
    try:
        # mkstemp creates the file 0600; give it the permissions open() would have (0666 & ~umask).
        os.chmod(tmp, 0o666 & ~_UMASK)
        text = {"encoding": encoding or "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
