"""Small utilities: reproducibility, sessions, devices, atomic file writes.

>>> set_random_seed(0); a = torch.rand(1)
>>> set_random_seed(0); bool(torch.equal(a, torch.rand(1)))
True
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator
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


def clear_session() -> None:
    """Restart automatic layer names (``lstm``, ``lstm_1``…), as ``keras.backend.clear_session``."""
    from lstmkit.layers.base import reset_names

    reset_names()


def default_device() -> torch.device:
    """``cuda`` when available, else ``cpu`` (override with ``LSTMKIT_DEVICE``)."""
    forced = os.environ.get("LSTMKIT_DEVICE")
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Write ``path`` atomically: into a temporary file in the same folder, flushed and
    fsync'ed, then renamed over ``path``. On any exception the target is left untouched and the
    temporary file removed — nothing half-written ever appears under ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates the file 0600; give it the permissions open() would have (0666 & ~umask).
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode) as fh:
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
