"""Keras 3 files: ``.keras`` models and ``.weights.h5`` weights, read and written by lstmkit.

A ``.keras`` file is a zip of ``metadata.json`` (``{"keras_version", "date_saved"}``),
``config.json`` (the model's config, see :mod:`lstmkit.models.keras_config`) and
``model.weights.h5``. The HDF5 file holds each layer's variables under a path that follows the
model's layer list, not the layers' names: ``layers/<snake_case(class)>[_k]`` (``k`` counts
the earlier layers of the same class), with the variables at ``vars/0``, ``vars/1`` … in
``get_weights()`` order and Keras's layout; a recurrent layer's under ``cell/vars``, a
``Bidirectional``'s under ``forward_layer/cell/vars`` and ``backward_layer/cell/vars``, a
``TimeDistributed``'s under ``layer/…``. A ``.weights.h5`` file is that HDF5 file alone.

Reading is defensive, as for lstmkit's own files: only the three members are accepted, each
under a size limit, HDF5 links must be plain (no external or soft links, no external or
virtual datasets), datasets numeric and of the shape the model expects, and nothing from the
file is executed (see :mod:`~lstmkit.models.keras_config`). The optimiser's state in a Keras
file is not read (its variables are in Keras's layout and order; the model is compiled from
``compile_config`` when possible, with a fresh optimiser). Writes are atomic.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from lstmkit.models.keras_config import KerasConfigError, model_from_keras, model_to_keras
from lstmkit.utils import atomic_write

KERAS_VERSION = "3.15.1"  # the Keras version lstmkit's .keras files were verified with
MEMBERS = ("metadata.json", "config.json", "model.weights.h5")
MAX_JSON_BYTES = 64 * 2**20
MAX_WEIGHTS_BYTES = 8 * 2**30
MAX_RATIO = 200  # uncompressed / compressed size above which a member is a zip bomb
_RNN = {"LSTM", "GRU", "SimpleRNN"}


def file_kind(path: Any) -> str | None:
    """``"keras"`` (``.keras``), ``"keras_weights"`` (``.weights.h5``), ``"legacy_h5"``
    (another ``.h5`` / ``.hdf5`` name: the Keras 2 format) or ``None`` (lstmkit's format)."""
    name = Path(os.fspath(path)).name.lower()
    if name.endswith(".keras"):
        return "keras"
    if name.endswith(".weights.h5"):
        return "keras_weights"
    if name.endswith((".h5", ".hdf5")):
        return "legacy_h5"
    return None


def is_keras_archive(path: Path) -> bool:
    """Whether a zip file holds Keras's members (a ``.keras`` name may hold lstmkit's own
    format, written by lstmkit before it wrote Keras files)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return "model.weights.h5" in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return True  # let the Keras reader report what is wrong with it


def refuse_legacy_h5(path: Any) -> None:
    raise ValueError(
        f"{os.fspath(path)}: the legacy Keras HDF5 format (.h5 / .hdf5) is not supported; use "
        f"a .keras name for a Keras 3 model file, .weights.h5 for Keras 3 weights, or any other "
        f"name for lstmkit's own format"
    )


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:  # pragma: no cover - a declared dependency
        raise ImportError("Keras files need h5py (pip install h5py)") from None
    return h5py


def snake_case(name: str) -> str:
    """Keras's ``to_snake_case`` (``SimpleRNN`` -> ``simple_rnn``, ``Conv1D`` -> ``conv1d``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _layer_paths(layers: list[Any], prefix: str = "layers") -> list[tuple[str, Any]]:
    """Each layer with its HDF5 path (Keras names them by class, counting repeats)."""
    used: dict[str, int] = {}
    out = []
    for layer in layers:
        name = snake_case(_keras_class(layer))
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        out.append((f"{prefix}/{name}", layer))
    return out


def _keras_class(layer: Any) -> str:
    return "InputLayer" if type(layer).__name__ == "InputLayer" else type(layer).__name__


def _container_layers(model: Any) -> list[Any]:
    """The layer list Keras walks: a functional model's input layers come first (Keras lists
    them in ``model.layers``; they hold no variables but take their paths)."""
    from lstmkit.models.keras_config import _NotEqual

    layers = [la for la in model.layers if not isinstance(la, _NotEqual)]  # ops: no variables
    if getattr(model, "_functional", False):
        return [t.node.layer for t in model._input_tensors] + layers
    return layers


# -- the variables of one layer, in Keras's groups ----------------------------------------------


def _groups(layer: Any, path: str) -> list[tuple[str, str, list[np.ndarray] | int]]:
    """``(group path, Keras name, arrays)`` of every variable group of ``layer`` (arrays from
    ``get_weights()``), in Keras's nesting."""
    cls = _keras_class(layer)
    if cls == "InputLayer":
        return [(f"{path}/vars", layer.name, [])]
    if cls in _RNN:
        return [
            (f"{path}/vars", layer.name, []),
            (f"{path}/cell/vars", f"{snake_case(cls)}_cell", layer.get_weights()),
        ]
    if cls == "Bidirectional":
        return [
            (f"{path}/vars", layer.name, []),
            *_groups(layer.forward_layer, f"{path}/forward_layer"),
            *_groups(layer.backward_layer, f"{path}/backward_layer"),
        ]
    if cls == "TimeDistributed":
        return [(f"{path}/vars", layer.name, []), *_groups(layer.layer, f"{path}/layer")]
    if cls in ("Sequential", "Model", "Functional"):
        groups = [(f"{path}/vars", layer.name, [])]
        for sub_path, sub in _layer_paths(_container_layers(layer), f"{path}/layers"):
            groups += _groups(sub, sub_path)
        return groups
    return [(f"{path}/vars", layer.name, layer.get_weights())]


def _assign(layer: Any, path: str, read: Any) -> None:
    """Set ``layer``'s weights from the groups :func:`_groups` names (read by ``read``)."""
    cls = _keras_class(layer)
    if cls == "InputLayer":
        return
    if cls == "Bidirectional":
        _assign(layer.forward_layer, f"{path}/forward_layer", read)
        _assign(layer.backward_layer, f"{path}/backward_layer", read)
        return
    if cls == "TimeDistributed":
        _assign(layer.layer, f"{path}/layer", read)
        return
    if cls in ("Sequential", "Model", "Functional"):
        for sub_path, sub in _layer_paths(_container_layers(layer), f"{path}/layers"):
            _assign(sub, sub_path, read)
        return
    group = f"{path}/cell/vars" if cls in _RNN else f"{path}/vars"
    expected = [w.shape for w in layer.get_weights()]
    arrays = read(group, expected)
    try:
        layer.set_weights(arrays)
    except ValueError as e:
        raise KerasConfigError(f"{group}: {e}") from None


# -- HDF5 ---------------------------------------------------------------------------------------


def write_weights_h5(model: Any) -> bytes:
    """The model's variables as Keras's ``model.weights.h5`` bytes."""
    h5py = _h5py()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("vars").attrs["name"] = model.name
        f.create_group("layers")
        for path, layer in _layer_paths(_container_layers(model)):
            for group, name, arrays in _groups(layer, path):
                g = f.create_group(group)
                g.attrs["name"] = name
                for i, a in enumerate(arrays):
                    g.create_dataset(str(i), data=np.ascontiguousarray(a))
    return buf.getvalue()


def _plain(h5py: Any, group: Any, name: str, where: str) -> Any:
    link = group.get(name, getlink=True)
    if link is None:
        raise KerasConfigError(f"{where}: missing {name!r}")
    if not isinstance(link, h5py.HardLink):
        raise KerasConfigError(f"{where}: {name!r} is a {type(link).__name__}; refused")
    return group[name]


def read_weights_h5(model: Any, blob: bytes, where: str) -> None:
    """Set ``model``'s weights from Keras ``.weights.h5`` bytes (see the module docstring)."""
    h5py = _h5py()
    try:
        f = h5py.File(io.BytesIO(blob), "r")
    except OSError as e:
        raise KerasConfigError(f"{where}: not an HDF5 file ({e})") from None
    with f:

        def read(path: str, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
            node = f
            for part in path.split("/"):
                node = _plain(h5py, node, part, f"{where} {path}")
            if not isinstance(node, h5py.Group):
                raise KerasConfigError(f"{where}: {path} is not a group")
            if set(node.keys()) != {str(i) for i in range(len(shapes))}:
                raise KerasConfigError(
                    f"{where}: {path} holds {sorted(node.keys())}, the model expects "
                    f"{len(shapes)} variables"
                )
            out = []
            for i, shape in enumerate(shapes):
                ds = _plain(h5py, node, str(i), f"{where} {path}")
                if (
                    not isinstance(ds, h5py.Dataset)
                    or ds.dtype.kind not in "fiub"
                    or ds.is_virtual
                    or ds.external
                ):
                    raise KerasConfigError(f"{where}: {path}/{i} is not a plain numeric dataset")
                if tuple(ds.shape) != tuple(shape):
                    raise KerasConfigError(
                        f"{where}: {path}/{i} has shape {tuple(ds.shape)}, the model expects "
                        f"{tuple(shape)}"
                    )
                out.append(np.asarray(ds[()]))
            return out

        for path, layer in _layer_paths(_container_layers(model)):
            _assign(layer, path, read)


# -- the zip --------------------------------------------------------------------------------------


def _read_member(zf: zipfile.ZipFile, name: str, limit: int, where: str) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise KerasConfigError(f"{where}: {name} is {info.file_size} bytes (limit {limit})")
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > 2**20 and ratio > MAX_RATIO:
        raise KerasConfigError(f"{where}: {name} expands {ratio:.0f}-fold; refused (zip bomb)")
    with zf.open(info) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise KerasConfigError(f"{where}: {name} exceeds {limit} bytes")
    return data


def _json(blob: bytes, name: str, where: str) -> Any:
    try:
        return json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KerasConfigError(f"{where}: {name} is not valid JSON: {e}") from None


def load_keras_model(filepath: Any, compile: bool = True) -> Any:
    """An lstmkit model from a Keras 3 ``.keras`` file: architecture and weights (and the
    loss / metrics of ``compile_config`` where lstmkit knows them)."""
    path = Path(os.fspath(filepath))
    where = str(path)
    if not path.exists():
        raise FileNotFoundError(f"no such model file: {path}")
    if not zipfile.is_zipfile(path):
        raise KerasConfigError(f"{where}: not a .keras file (expected a zip archive)")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise KerasConfigError(f"{where}: damaged archive: {e}") from None
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        unknown = sorted(set(names) - set(MEMBERS))
        if unknown:
            raise KerasConfigError(
                f"{where}: unexpected members {unknown[:5]} (a .keras file holds "
                f"{', '.join(MEMBERS)}; assets are not supported)"
            )
        missing = [m for m in MEMBERS if m not in names]
        if missing:
            raise KerasConfigError(f"{where}: missing {missing}")
        meta = _json(_read_member(zf, "metadata.json", MAX_JSON_BYTES, where), "metadata", where)
        if not isinstance(meta, dict) or "keras_version" not in meta:
            raise KerasConfigError(f"{where}: metadata.json names no keras_version")
        doc = _json(_read_member(zf, "config.json", MAX_JSON_BYTES, where), "config", where)
        model = model_from_keras(doc, f"{where} config.json")
        weights = _read_member(zf, "model.weights.h5", MAX_WEIGHTS_BYTES, where)
    read_weights_h5(model, weights, f"{where} model.weights.h5")
    model.eval()
    compile_config = doc.get("compile_config")
    if compile and isinstance(compile_config, dict) and compile_config.get("loss"):
        _compile(model, compile_config)
    return model


def _compile(model: Any, config: dict[str, Any]) -> None:
    """Compile with Keras's ``compile_config`` where it only names built-in objects."""
    from lstmkit.training import optimizers

    def plain(v: Any) -> Any:
        if isinstance(v, dict) and "class_name" in v:
            return {"class_name": v["class_name"], "config": v.get("config", {})}
        return v

    opt = config.get("optimizer")
    try:
        optimizer = optimizers.get(plain(opt)) if opt is not None else "rmsprop"
        model.compile(
            optimizer=optimizer,
            loss=config.get("loss"),
            metrics=config.get("metrics"),
            loss_weights=config.get("loss_weights"),
        )
    except (ValueError, TypeError) as e:
        raise KerasConfigError(f"cannot compile from the file's compile_config: {e}") from None


def save_keras_model(model: Any, filepath: Any, overwrite: bool = True) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` file (no optimiser state), atomically."""
    path = Path(os.fspath(filepath))
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists and overwrite=False")
    if not model.built:
        raise ValueError(f"{model.name}: build the model before saving it")
    doc = model_to_keras(model)
    meta = {
        "keras_version": KERAS_VERSION,
        "date_saved": _dt.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    weights = write_weights_h5(model)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", json.dumps(meta))
        zf.writestr("config.json", json.dumps(doc))
        zf.writestr("model.weights.h5", weights)
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())


def save_keras_weights(model: Any, filepath: Any, overwrite: bool = True) -> None:
    """Write the weights as a Keras 3 ``.weights.h5`` file, atomically."""
    path = Path(os.fspath(filepath))
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists and overwrite=False")
    blob = write_weights_h5(model)
    with atomic_write(path) as fh:
        fh.write(blob)


def load_keras_weights(model: Any, filepath: Any) -> None:
    """Set ``model``'s weights from a Keras 3 ``.weights.h5`` file (Keras's layer order)."""
    path = Path(os.fspath(filepath))
    if not path.exists():
        raise FileNotFoundError(f"no such weights file: {path}")
    if path.stat().st_size > MAX_WEIGHTS_BYTES:
        raise KerasConfigError(f"{path}: larger than {MAX_WEIGHTS_BYTES} bytes")
    read_weights_h5(model, path.read_bytes(), str(path))
