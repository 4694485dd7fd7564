"""``get_file`` for programs written for Keras: it reads local files and never downloads.

lstmkit works offline; ``keras.utils.get_file(fname, origin)`` returns a path that already
exists (``origin`` given as a local path or ``file://`` URL, or ``fname`` already in the cache
folder ``~/.keras/<cache_subdir>``) and raises :class:`OfflineError` saying where to put the
file otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse


class OfflineError(OSError):
    """``get_file`` was asked for a file it would have to download."""


def get_file(
    fname: str | None = None,
    origin: str | None = None,
    untar: bool = False,
    md5_hash: str | None = None,
    file_hash: str | None = None,
    cache_subdir: str = "datasets",
    hash_algorithm: str = "auto",
    extract: bool = False,
    archive_format: str = "auto",
    cache_dir: str | os.PathLike[str] | None = None,
    force_download: bool = False,
) -> str:
    """The local path of a file a Keras program asks for (Keras's arguments).

    Looks in order at: ``origin`` as a local path or ``file://`` URL; ``fname`` as a path;
    ``<cache_dir or ~/.keras>/<cache_subdir>/<fname or origin's file name>``. ``untar`` /
    ``extract``, hashes and ``force_download`` are not supported (an archive must be unpacked
    by the user) and raise ``ValueError``.

    Raises:
        OfflineError: the file is not on this machine (the message names where to put it).
        ValueError: neither ``fname`` nor ``origin``, or an unsupported option.
    """
    if fname is None and origin is None:
        raise ValueError("get_file: give fname or origin, got neither")
    for flag, value in (("untar", untar), ("extract", extract), ("force_download", force_download)):
        if value:
            raise ValueError(f"get_file: {flag}=True is not supported (lstmkit never downloads)")
    if md5_hash or file_hash:
        raise ValueError("get_file: file hashes are not supported (lstmkit never downloads)")
    url = urlparse(origin) if origin else None
    if url is not None and url.scheme in ("", "file"):
        path = Path(unquote(url.path) if url.scheme == "file" else origin).expanduser()
        if path.exists():
            return str(path)
    if fname is not None and Path(fname).expanduser().is_absolute():
        if Path(fname).expanduser().exists():
            return str(Path(fname).expanduser())
    name = fname or Path(url.path if url is not None else "").name
    root = Path(cache_dir).expanduser() if cache_dir is not None else Path.home() / ".keras"
    cached = root / cache_subdir / name
    if name and cached.exists():
        return str(cached)
    raise OfflineError(
        f"get_file: {origin or fname!r} is not on this machine and lstmkit does not download "
        f"files (it works offline); download it yourself and pass its local path as origin, "
        f"or put it at {cached}"
    )
