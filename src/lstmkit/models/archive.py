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
import math
import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

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
        build_bytes_base, build_bytes_factor: rebuilding a model from its config may allocate
            ``base + factor × (bytes of weights in the file)`` in all (initialisers'
            temporaries included), so that a small file cannot declare a huge model.
    """

    max_file_bytes: int = 16 * 2**30
    max_members: int = 64
    max_member_bytes: int = 8 * 2**30
    max_total_bytes: int = 16 * 2**30
    max_json_bytes: int = 64 * 2**20
    max_json_depth: int = 100
    max_ratio: float = 200.0
    max_layers: int = 1000
    build_bytes_base: int = 256 * 2**20
    build_bytes_factor: float = 32.0


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


# -- zip archives: the member list is checked before anything is inflated ---------------------

_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_RATIO_FLOOR = 2**20  # members below 1 MiB may compress as well as they like


class Archive:
    """A validated zip archive (see :func:`open_zip`); members are read with :meth:`read` and
    :meth:`json`, each bounded by :data:`LIMITS`."""

    def __init__(self, path: Path, fh: Any, what: str) -> None:
        self.path, self.what, self._fh = path, what, fh
        size = os.fstat(fh.fileno()).st_size
        try:
            self.zip = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
            raise ModelFileError(
                f"{path} is not an lstmkit {what} (expected a zip archive written by "
                f"model.save(); the file may be truncated or of another format: {e})"
            ) from None
        try:
            self._check_members(size)
        except BaseException:
            self.zip.close()
            raise
        self.names = [info.filename for info in self.zip.infolist()]

    def _check_members(self, size: int) -> None:
        infos = self.zip.infolist()
        lim = LIMITS
        if len(infos) > lim.max_members:
            raise ModelFileError(
                f"{self.path}: the archive has {len(infos)} members, over the limit of "
                f"{lim.max_members}"
            )
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = info.filename
            where = f"{self.path}: member {name!r}"
            if name in seen:
                raise ModelFileError(f"{where} appears twice in the archive")
            seen.add(name)
            if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
                raise ModelFileError(f"{where}: expected a plain member name, got a path")
            mode = info.external_attr >> 16
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise ModelFileError(
                    f"{where}: expected a regular file, got {_kind_of_mode(mode)} "
                    f"(mode {mode:o}; symlinks and devices are refused)"
                )
            if info.flag_bits & 0x1:
                raise ModelFileError(f"{where} is encrypted")
            if info.compress_type not in _METHODS:
                raise ModelFileError(
                    f"{where}: expected a stored or deflated member, got compression method "
                    f"{info.compress_type}"
                )
            if info.header_offset + info.compress_size > size:
                raise ModelFileError(
                    f"{where} declares {info.compress_size} bytes at offset {info.header_offset}, "
                    f"past the end of the {size}-byte file (truncated?)"
                )
            if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
                raise ModelFileError(
                    f"{where}: a stored member whose sizes differ ({info.compress_size} stored, "
                    f"{info.file_size} declared)"
                )
            limit = lim.max_json_bytes if name.endswith(".json") else lim.max_member_bytes
            if info.file_size > limit:
                raise ModelFileError(
                    f"{where} declares {info.file_size} bytes, over the limit of {limit}"
                )
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > _RATIO_FLOOR and ratio > lim.max_ratio:
                raise ModelFileError(
                    f"{where} would expand {ratio:.0f}-fold ({info.compress_size} -> "
                    f"{info.file_size} bytes), over the limit of {lim.max_ratio:g} (a zip bomb?)"
                )
            total += info.file_size
        if total > lim.max_total_bytes:
            raise ModelFileError(
                f"{self.path}: the members declare {total} bytes in all, over the limit of "
                f"{lim.max_total_bytes}"
            )

    def __contains__(self, name: str) -> bool:
        return name in self.names

    def read(self, name: str, required: bool = True) -> bytes | None:
        """The bytes of member ``name``, inflated with a bound (its declared size, checked on
        opening) and its checksum verified; ``None`` for a missing optional member."""
        where = f"{self.path}: member {name!r}"
        if name not in self.names:
            if not required:
                return None
            raise ModelFileError(
                f"{self.path} is not a valid lstmkit {self.what}: {name} is missing"
            )
        info = self.zip.getinfo(name)
        try:
            with self.zip.open(info) as member:
                data = member.read(info.file_size + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
                zlib.error, RuntimeError) as e:  # fmt: skip
            if "CRC" in str(e):
                raise ModelFileError(
                    f"{self.path} is damaged: member {name!r} fails its checksum"
                ) from None
            raise ModelFileError(f"{where} is damaged: {e}") from None
        if len(data) != info.file_size:
            raise ModelFileError(
                f"{where} is damaged: {len(data)} bytes, {info.file_size} declared"
            )
        return data

    def json(self, name: str, expect: type = dict, required: bool = True) -> Any:
        """Member ``name`` parsed as JSON (depth and size bounded) and of type ``expect``."""
        data = self.read(name, required)
        if data is None:
            return None
        return parse_json(data, f"{self.path}: {name}", expect)

    def close(self) -> None:
        try:
            self.zip.close()
        finally:
            self._fh.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_zip(path: Path, what: str = "model file") -> Archive:
    """``path`` as a validated zip :class:`Archive`: a regular file (:func:`open_regular`),
    a zip by its structure (a pickle or another format is named in the error), with a member
    list within :data:`LIMITS` (count, names, no symlinks or devices, stored/deflated only,
    declared sizes, total size and compression ratios) — all checked before any member is
    inflated."""
    fh = open_regular(path, what)
    try:
        kind = sniff_file(fh, os.fstat(fh.fileno()).st_size)
        if kind == "pickle":
            raise ModelFileError(
                f"{path} looks like a pickle file; lstmkit never unpickles (pickles can run "
                f"code). Expected an lstmkit {what}."
            )
        if kind != "zip":
            raise ModelFileError(
                f"{path} is not an lstmkit {what} (expected a zip archive written by "
                f"model.save(); it is {DESCRIPTIONS[kind]}; the file may be truncated or of "
                f"another format)"
            )
        return Archive(path, fh, what)
    except BaseException:
        fh.close()
        raise


# -- JSON with bounded depth ---------------------------------------------------------------------

_TYPE_NAMES = {dict: "a JSON object", list: "a JSON array", str: "a string", int: "an integer"}


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    for kind, name in _TYPE_NAMES.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, float) else type(value).__name__


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        nxt: list[Any] = []
        for v in level:
            if isinstance(v, dict):
                nxt.extend(v.values())
            elif isinstance(v, list):
                nxt.extend(v)
        level = nxt
    return depth - 1


def parse_json(data: bytes, where: str, expect: type | None = dict) -> Any:
    """``data`` as JSON: UTF-8, at most ``LIMITS.max_json_bytes``, nested at most
    ``LIMITS.max_json_depth`` deep, of type ``expect`` (``None``: any).

    Raises:
        ModelFileError: naming ``where`` and what was expected.
    """
    if len(data) > LIMITS.max_json_bytes:
        raise ModelFileError(
            f"{where}: {len(data)} bytes of JSON, over the limit of {LIMITS.max_json_bytes}"
        )
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ModelFileError(f"{where} is not valid JSON (not UTF-8: {e})") from None
    except RecursionError:
        raise ModelFileError(
            f"{where}: JSON nested deeper than this Python can parse (limit "
            f"{LIMITS.max_json_depth})"
        ) from None
    except ValueError as e:  # JSONDecodeError, or an integer of too many digits
        raise ModelFileError(f"{where} is not valid JSON: {e}") from None
    depth = _depth(value)
    if depth > LIMITS.max_json_depth:
        raise ModelFileError(
            f"{where}: JSON nested {depth} deep, over the limit of {LIMITS.max_json_depth}"
        )
    if expect is not None and not isinstance(value, expect):
        raise ModelFileError(
            f"{where}: expected {_TYPE_NAMES.get(expect, expect.__name__)}, got {json_type(value)}"
        )
    return value


def require(mapping: dict[str, Any], key: str, expect: type | tuple[type, ...], where: str) -> Any:
    """``mapping[key]``, which must exist and be of type ``expect`` (``bool`` is not an int)."""
    if key not in mapping:
        raise ModelFileError(f"{where}: {key!r} is missing")
    value = mapping[key]
    kinds = expect if isinstance(expect, tuple) else (expect,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise ModelFileError(f"{where}: {key!r} must be {names}, got {json_type(value)}")
    return value


# -- model configs: counted before anything is built, built within a memory budget --------------


_NOT_LAYERS = ("initializer", "regularizer", "constraint", "activation", "dtype", "policy")


def count_layers(spec: Any) -> int:
    """Layer specs (objects with a ``class_name``) in a model config, nested ones included;
    the specs of initialisers, regularisers, constraints and activations are not layers."""
    count, stack = 0, [("", spec)]
    while stack:
        key, v = stack.pop()
        if isinstance(v, dict):
            count += "class_name" in v and not key.endswith(_NOT_LAYERS)
            stack.extend(v.items())
        elif isinstance(v, list):
            stack.extend((key, x) for x in v)
    return count


def check_config(spec: Any, where: str) -> None:
    """A model spec's shape before anything is built: an object with a string ``class_name``
    and an object ``config``, at most ``LIMITS.max_layers`` layer specs in all."""
    if not isinstance(spec, dict):
        raise ModelFileError(
            f"{where}: the model spec must be a JSON object, got {json_type(spec)}"
        )
    require(spec, "class_name", str, where)
    if not isinstance(spec.get("config", {}), dict):
        raise ModelFileError(
            f"{where}: the model's 'config' must be a JSON object, got {json_type(spec['config'])}"
        )
    layers = count_layers(spec)
    if layers > LIMITS.max_layers:
        raise ModelFileError(
            f"{where}: the config has {layers} layer specs, over the limit of {LIMITS.max_layers} "
            f"(lstmkit.models.archive.set_limits(max_layers=...))"
        )


_FACTORIES = {
    torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint,
    torch.eye, torch.empty_strided, torch.Tensor.new_empty, torch.Tensor.new_zeros,
    torch.Tensor.new_ones, torch.Tensor.new_full, torch.Tensor.new_tensor,
}  # fmt: skip


def _requested_bytes(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    """The bytes a tensor factory call asks for (its size argument: the first sequence of ints,
    or the leading ints), before it runs."""
    rest = args[1:] if func in (torch.Tensor.new_empty, torch.Tensor.new_zeros,
                                torch.Tensor.new_ones, torch.Tensor.new_full) else args  # fmt: skip
    size: Any = kwargs.get("size")
    if size is None:
        for a in rest:
            if isinstance(a, (tuple, list, torch.Size)):
                size = a
                break
    if size is None:
        size = []
        for a in rest:
            if not isinstance(a, int) or isinstance(a, bool):
                break
            size.append(a)
    try:
        numel = math.prod(max(int(d), 0) for d in size)
    except (TypeError, ValueError):
        return 0
    dtype = kwargs.get("dtype") or torch.get_default_dtype()
    try:
        itemsize = torch.empty((), dtype=dtype).element_size() if dtype else 8
    except (TypeError, RuntimeError):
        itemsize = 8
    return numel * itemsize


class AllocationBudget(TorchFunctionMode):
    """Refuses, with a :class:`ModelFileError`, tensor allocations past ``budget`` bytes in all
    while a model is rebuilt from a config: factory calls (``torch.empty`` …) are checked
    *before* they allocate; other results are counted after (in-place results and views are
    not counted). Cumulative, so it bounds peak memory from above."""

    def __init__(self, budget: int, where: str) -> None:
        super().__init__()
        self.budget, self.where, self.used = budget, where, 0

    def _refuse(self, more: int) -> None:
        raise ModelFileError(
            f"{self.where}: building the model from its config would allocate more than "
            f"{self.budget} bytes ({self.used} so far, {more} more asked), more than its "
            f"weights justify; refused before allocating (raise LIMITS.build_bytes_base / "
            f"build_bytes_factor with lstmkit.models.archive.set_limits for unusual models)"
        )

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _FACTORIES:
            want = _requested_bytes(func, args, kwargs)
            if self.used + want > self.budget:
                self._refuse(want)
            self.used += want
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        if not getattr(func, "__name__", "_").endswith("_"):
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor) and not any(t is a for a in args):
                    try:
                        if t._is_view():
                            continue
                        self.used += t.numel() * t.element_size()
                    except RuntimeError:  # tensors without storage
                        continue
            if self.used > self.budget:
                self._refuse(0)
        return out


def build_budget(weights_bytes: int) -> int:
    """The bytes a model with ``weights_bytes`` of weights may allocate while being rebuilt
    (initialisers make temporaries several times a weight's size, e.g. orthogonal ones)."""
    return LIMITS.build_bytes_base + int(LIMITS.build_bytes_factor * weights_bytes)


# -- weights -----------------------------------------------------------------------------------


def check_finite(tensors: dict[str, torch.Tensor], where: str, allow: bool = False) -> None:
    """Refuse weights holding NaN or infinity unless ``allow``.

    Raises:
        ModelFileError: naming the first tensor that holds one, and how many values.
    """
    if allow:
        return
    for name, t in tensors.items():
        if t.is_floating_point() or t.is_complex():
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                raise ModelFileError(
                    f"{where}: weight {name!r} holds {bad} non-finite value(s) (NaN or "
                    f"infinity) of {t.numel()}; refused (pass allow_nonfinite=True to load it "
                    f"anyway, e.g. to debug a diverged training run)"
                )
