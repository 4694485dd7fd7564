"""Reading model files from strangers: one validated path from a file name to bytes.

Every reader of lstmkit's files (``load_model``, ``load_weights``, backups, the applications'
loaders, ``serve``) comes through here, so that a hostile or damaged file ends in one clear
:class:`~lstmkit.models.errors.ModelFileError` within bounded memory and time:

* the path must be a **regular file** (a symlink is followed, but its target must be a regular
  file too: never a FIFO, a device such as ``/dev/zero``, a socket or a directory); it is opened
  with ``O_NONBLOCK`` and checked again on the open descriptor, so a FIFO swapped in between the
  check and the open cannot block;
* the **format is told by its structure**, never by a two-byte prefix (:func:`sniff`):
  safetensors is an 8-byte little-endian length ``N`` then ``N`` bytes of JSON that open with
  ``{``; a zip archive starts with a local file header ``PK\\x03\\x04`` (or is an empty archive);
  HDF5 has its 8-byte signature; a pickle starts with the ``PROTO`` opcode ``0x80`` and a
  protocol 2..5 *and* is not a valid safetensors file (a safetensors header of length 640, 896,
  1152 or 1408 bytes also starts ``0x80 0x02..0x05``);
* sizes are checked against :data:`LIMITS` before anything is read or inflated.

The limits are settable for files that are legitimately larger (:func:`set_limits`,
:func:`limits`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lstmkit.models.errors import ModelFileError

SAFETENSORS_MAX_HEADER = 100 * 2**20  # the safetensors library's own limit on its JSON header
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_LOCAL = b"PK\x03\x04"
_ZIP_EMPTY = b"PK\x05\x06"


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a model file may ask of the reader (defaults suit models up to a few GB).

    Attributes:
        max_file_bytes: the file itself.
        max_members: entries in a zip archive.
        max_member_bytes: one member's uncompressed size (the weights).
        max_total_bytes: all members' uncompressed sizes together.
        max_json_bytes: one JSON member (``config.json``, ``metadata.json`` …).
        max_json_depth: nesting of JSON arrays and objects.
        max_ratio: uncompressed / compressed size of a member larger than 1 MiB (zip bombs).
        max_layers: layer specs in a model config.
        max_parameters: parameters a model config may imply.
    """

    max_file_bytes: int = 16 * 2**30
    max_members: int = 64
    max_member_bytes: int = 8 * 2**30
    max_total_bytes: int = 16 * 2**30
    max_json_bytes: int = 64 * 2**20
    max_json_depth: int = 100
    max_ratio: float = 200.0
    max_layers: int = 2000
    max_parameters: int = 2 * 10**9


LIMITS = Limits()


def set_limits(**changes: Any) -> Limits:
    """Change the process-wide :data:`LIMITS` (``set_limits(max_member_bytes=32 * 2**30)``);
    returns the previous limits.

    Raises:
        TypeError: an unknown limit name.
        ValueError: a limit that is not a positive number.
    """
    global LIMITS
    fields = {f.name for f in dataclasses.fields(Limits)}
    for name, value in changes.items():
        if name not in fields:
            raise TypeError(
                f"set_limits: unknown limit {name!r}; known: {', '.join(sorted(fields))}"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"set_limits: {name} must be a positive number, got {value!r}")
    previous = LIMITS
    LIMITS = dataclasses.replace(LIMITS, **changes)
    return previous


@contextlib.contextmanager
def limits(**changes: Any) -> Iterator[Limits]:
    """:func:`set_limits` for the duration of a ``with`` block."""
    global LIMITS
    previous = set_limits(**changes)
    try:
        yield LIMITS
    finally:
        LIMITS = previous


# -- regular files only ------------------------------------------------------------------------


def _kind_of_mode(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path, what: str = "model file") -> Any:
    """``path`` opened for binary reading, refusing anything but a regular file.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: a directory, FIFO, device or socket; or larger than
            ``LIMITS.max_file_bytes``.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such {what}: {path}") from None
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelFileError(f"{path}: expected a regular {what}, got {_kind_of_mode(st.st_mode)}")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise ModelFileError(f"{path}: cannot open the {what}: {e.strerror or e}") from None
    st = os.fstat(fd)  # the file actually opened (it may have been swapped since the stat)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ModelFileError(f"{path}: expected a regular {what}, got {_kind_of_mode(st.st_mode)}")
    if st.st_size > LIMITS.max_file_bytes:
        os.close(fd)
        raise ModelFileError(
            f"{path}: the {what} is {st.st_size} bytes, over the limit of "
            f"{LIMITS.max_file_bytes} (lstmkit.models.archive.set_limits(max_file_bytes=...))"
        )
    return os.fdopen(fd, "rb")


def read_regular(path: Path, what: str = "model file") -> bytes:
    """The whole content of a regular file (see :func:`open_regular`), read with a bound."""
    with open_regular(path, what) as fh:
        data = fh.read(LIMITS.max_file_bytes + 1)
    if len(data) > LIMITS.max_file_bytes:
        raise ModelFileError(f"{path}: the {what} grew past {LIMITS.max_file_bytes} bytes")
    return data


# -- telling formats apart by their structure ---------------------------------------------------


def safetensors_header(data: bytes, size: int | None = None) -> dict[str, Any] | None:
    """The JSON header of a safetensors file whose first bytes are ``data`` (at least the
    8-byte length and the header itself), or ``None`` when the bytes are not one: the length
    ``N`` must fit in the file (``size``, default ``len(data)``) and the safetensors limit, and
    the ``N`` bytes after it must be a JSON object."""
    size = len(data) if size is None else size
    if len(data) < 8:
        return None
    n = int.from_bytes(data[:8], "little")
    if n < 2 or n > SAFETENSORS_MAX_HEADER or 8 + n > size or 8 + n > len(data):
        return None
    raw = data[8 : 8 + n]
    if raw[:1] != b"{":
        return None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def sniff(data: bytes, size: int | None = None) -> str:
    """The format of a file that starts with ``data`` (of total length ``size``):
    ``"safetensors"``, ``"zip"``, ``"hdf5"``, ``"pickle"`` or ``"unknown"``.

    Give at least the first ``8 + N`` bytes for a safetensors file (``N`` its header length;
    :func:`sniff_file` reads what is needed).

    >>> from safetensors.torch import save
    >>> import torch
    >>> blob = save({"w": torch.zeros(1)}, metadata={"pad": "x" * 1060})
    >>> blob[:2], sniff(blob)  # a header of 1152 bytes starts like a protocol-4 pickle
    (b'\\x80\\x04', 'safetensors')
    >>> import pickle
    >>> sniff(pickle.dumps([1, 2], protocol=4))
    'pickle'
    """
    if safetensors_header(data, size) is not None:
        return "safetensors"
    if data[:4] == _ZIP_LOCAL or data[:4] == _ZIP_EMPTY:
        return "zip"
    if data[:8] == _HDF5_SIGNATURE:
        return "hdf5"
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "pickle"
    return "unknown"


def sniff_file(fh: Any, size: int) -> str:
    """:func:`sniff` of an open binary file of ``size`` bytes (reads the safetensors header
    when the first 8 bytes announce one that fits; leaves the position at 0)."""
    fh.seek(0)
    head = fh.read(8)
    n = int.from_bytes(head, "little") if len(head) == 8 else 0
    if 2 <= n <= SAFETENSORS_MAX_HEADER and 8 + n <= size:
        head += fh.read(n)
    else:
        head += fh.read(8)
    fh.seek(0)
    return sniff(head, size)


DESCRIPTIONS = {
    "safetensors": "a safetensors weights file",
    "zip": "a zip archive",
    "hdf5": "an HDF5 file",
    "pickle": "a pickle file",
    "unknown": "of no format lstmkit reads",
}
