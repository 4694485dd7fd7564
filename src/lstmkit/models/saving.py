"""lstmkit model files: one zip archive that loads without running any code from it.

Layout (all JSON or safetensors; nothing is ever unpickled)::

    metadata.json          {"format": "lstmkit-model", "format_version": 1, "kind": ...}
    config.json            {"model": {"class_name", "config"}, "compile": ..., "assets": {...}}
    model.safetensors      the weights, by state_dict key
    optimizer.safetensors  the optimiser's tensors (optional)
    optimizer.json         the optimiser's scalars and hyper-parameters (optional)
    training_state.json    epoch, batch, RNG states (backups only)
    rng.safetensors        torch generator states (backups only)

Models are rebuilt from class names that lstmkit knows (``Sequential``, ``Model`` and classes
registered with :func:`lstmkit.models.register_model` / :func:`lstmkit.layers.register_layer`).
Every write goes to a temporary file that is renamed into place, so a crash never leaves a
half-written file.
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

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from lstmkit.models import archive
from lstmkit.models.errors import ModelFileError
from lstmkit.training.state import TrainingState, random_states, set_random_states
from lstmkit.utils import atomic_write

FORMAT = "lstmkit-model"
FORMAT_VERSION = 1


# -- writing ----------------------------------------------------------------------------------


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def _weights_blob(model: Any, kind: str = "") -> bytes:
    """The weights as safetensors, with the model's order of keys in the metadata (safetensors
    sorts tensors by name; the order lets a model whose layers got other automatic names —
    another instance of the same architecture — load them, as Keras's ``load_weights``)."""
    state = _tensors(model.state_dict())
    metadata = {"format": FORMAT + kind, "order": json.dumps(list(state))}
    return st_save(state, metadata=metadata)


def _stored_order(blob: bytes) -> list[str] | None:
    """The key order recorded by :func:`_weights_blob` (parsed from the JSON header)."""
    try:
        size = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8 : 8 + size].decode("utf-8"))
        order = json.loads(header["__metadata__"]["order"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return order if isinstance(order, list) and all(isinstance(k, str) for k in order) else None


def _structural(key: str) -> str:
    """A state-dict key without the (automatic) layer names: ``_layers.dense_3.weight`` ->
    ``_layers.*.weight``."""
    return re.sub(r"(^|\.)_layers\.[^.]+", r"\1_layers.*", key)


def _optimizer_blobs(opt: Any) -> tuple[bytes, str]:
    state = opt.state_dict()
    torch_state = state.pop("torch") or {"state": {}, "param_groups": []}
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, entries in torch_state["state"].items():
        for key, value in entries.items():
            name = f"state/{idx}/{key}"
            if isinstance(value, torch.Tensor):
                tensors[name] = value.detach().cpu().contiguous().clone()
            else:
                scalars[name] = value
    meta = {"wrapper": state, "param_groups": torch_state["param_groups"], "scalars": scalars}
    return st_save(tensors), json.dumps(meta)


def _archive(
    model: Any, include_optimizer: bool, extra: dict[str, bytes] | None = None, kind: str = "model"
) -> bytes:
    from lstmkit.layers import serialize

    if not model.built:
        raise ValueError(
            f"{model.name}: cannot save an unbuilt model; call it on data or build() it first"
        )
    try:
        model_spec = serialize(model)
    except NotImplementedError as e:
        raise ValueError(str(e)) from None
    trainer = getattr(model, "_trainer", None)
    config = {
        "model": model_spec,
        "compile": trainer.get_config() if trainer is not None else None,
        "assets": getattr(model, "assets", {}),
        "build": getattr(model, "_build_spec", None),  # subclassed models: the first input
    }
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "lstmkit_version": _version(),
        "torch_version": torch.__version__,
        "saved_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("metadata.json", json.dumps(metadata, indent=1))
        zf.writestr("config.json", json.dumps(config, indent=1))
        zf.writestr("model.safetensors", _weights_blob(model))
        if include_optimizer and trainer is not None and trainer.optimizer.built:
            tensors, meta = _optimizer_blobs(trainer.optimizer)
            zf.writestr("optimizer.safetensors", tensors)
            zf.writestr("optimizer.json", meta)
        for name, blob in (extra or {}).items():
            zf.writestr(name, blob)
    return buf.getvalue()


def _version() -> str:
    from lstmkit import __version__

    return __version__


def _check_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists and overwrite=False")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give a file name")


def _keras_kind(path: Path) -> str | None:
    """Keras 3 file names (``.keras``, ``.weights.h5``) go to :mod:`keras_files`; a legacy
    ``.h5`` name is refused; any other name is lstmkit's format."""
    from lstmkit.models import keras_files

    kind = keras_files.file_kind(path)
    if kind == "legacy_h5":
        keras_files.refuse_legacy_h5(path)
    return kind


def save_model(
    model: Any, filepath: Any, overwrite: bool = True, include_optimizer: bool = True
) -> None:
    """Write ``model`` to ``filepath`` (see the module docstring), atomically; a ``.keras``
    name writes Keras 3's format (:mod:`lstmkit.models.keras_files`)."""
    path = Path(os.fspath(filepath))
    kind = _keras_kind(path)
    if kind is not None:
        from lstmkit.models import keras_files

        if kind == "keras_weights":
            raise ValueError(f"{path}: a .weights.h5 name is for save_weights(); use .keras")
        keras_files.save_keras_model(model, path, overwrite=overwrite)
        return
    _check_target(path, overwrite)
    blob = _archive(model, include_optimizer)
    with atomic_write(path) as fh:
        fh.write(blob)


def save_weights(model: Any, filepath: Any, overwrite: bool = True) -> None:
    """Write the weights as one safetensors file, atomically; a ``.weights.h5`` name writes
    Keras 3's HDF5 layout."""
    path = Path(os.fspath(filepath))
    kind = _keras_kind(path)
    if kind == "keras":
        raise ValueError(f"{path}: save_weights() needs a .weights.h5 name for Keras's format")
    if kind == "keras_weights":
        from lstmkit.models import keras_files

        keras_files.save_keras_weights(model, path, overwrite=overwrite)
        return
    _check_target(path, overwrite)
    blob = _weights_blob(model, "-weights")
    with atomic_write(path) as fh:
        fh.write(blob)


# -- reading ----------------------------------------------------------------------------------
#
# Every read goes through lstmkit.models.archive: a regular file, told by its structure, a zip
# member list checked against the limits before anything is inflated, JSON of bounded depth
# and checked types, the config checked before the model is built and built within a memory
# budget that the weights in the file justify, non-finite weights refused.

_REQUIRED = ("metadata.json", "config.json", "model.safetensors")


def _open_archive(path: Path, what: str = "model file") -> archive.Archive:
    """The validated archive of an lstmkit model file (or backup), its metadata checked."""
    ar = archive.open_zip(path, what)
    try:
        for member in _REQUIRED:
            if member not in ar:
                raise ModelFileError(f"{path} is not an lstmkit model file: {member} is missing")
        meta = ar.json("metadata.json")
        if meta.get("format") != FORMAT:
            raise ModelFileError(
                f"{path} is not an lstmkit model file (format "
                f"{meta.get('format')!r}, expected {FORMAT!r})"
            )
        version = meta.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelFileError(
                f"{path} has format version {version!r}; this lstmkit reads "
                f"versions up to {FORMAT_VERSION} (upgrade lstmkit)"
            )
    except BaseException:
        ar.close()
        raise
    return ar


def _read_tensors(blob: bytes, what: str, path: Path) -> dict[str, torch.Tensor]:
    if archive.safetensors_header(blob) is None:
        raise ModelFileError(
            f"{path}: {what} is not a valid safetensors blob (expected an 8-byte header "
            f"length and a JSON header that fit in its {len(blob)} bytes)"
        )
    try:
        return st_load(blob)
    except (SafetensorError, Exception) as e:  # the library's errors, whatever their class
        raise ModelFileError(f"{path}: {what} is not a valid safetensors blob: {e}") from None


def _read_config(ar: archive.Archive, path: Path) -> dict[str, Any]:
    """``config.json``, its shape checked before anything is built."""
    config = ar.json("config.json")
    where = f"{path}: config.json"
    if "model" not in config:
        raise ModelFileError(f"{where} has no model description ('model' is missing)")
    archive.check_config(config["model"], where)
    for key in ("compile", "assets", "build"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise ModelFileError(
                f"{where}: {key!r} must be a JSON object or null, got "
                f"{archive.json_type(config[key])}"
            )
    return config


def _rebuild(config: dict[str, Any], weights_bytes: int, path: Path) -> Any:
    """The model of ``config``, built within :func:`archive.build_budget` of the weights."""
    where = f"{path}: config.json"
    try:
        with archive.AllocationBudget(archive.build_budget(weights_bytes), where):
            model = _build_model(config["model"], path)
            if config.get("build"):
                _build_by_calling(model, config["build"], path)
    except ModelFileError:
        raise
    except RecursionError:
        raise ModelFileError(f"{where}: the model config is nested too deeply") from None
    except Exception as e:  # a config is data from a stranger: every failure is the file's
        raise ModelFileError(
            f"{path}: cannot rebuild the model from its config: {type(e).__name__}: {e}"
        ) from None
    return model


def _build_model(spec: dict[str, Any], path: Path) -> Any:
    from lstmkit.layers import deserialize, get_layer_class

    # Sequential, Model and the classes of register_model are registered layer classes too
    # (so this module needs no import of the model classes); Keras calls Model "Functional".
    name = spec.get("class_name") if isinstance(spec, dict) else None
    if name == "Functional":
        spec, name = {**spec, "class_name": "Model"}, "Model"
    try:
        get_layer_class(str(name))
    except ValueError:
        raise ModelFileError(
            f"{path}: the model class {name!r} is unknown; register it with "
            f"lstmkit.models.register_model before loading (files never carry code)"
        ) from None
    return deserialize(spec)


def _load_state(
    model: Any, tensors: dict[str, torch.Tensor], path: Path, order: list[str] | None = None
) -> None:
    own = model.state_dict()
    if set(own) != set(tensors) and order is not None and sorted(order) == sorted(tensors):
        # Same structure, other (automatic) layer names: match the weights by position; the
        # shapes are checked below.
        if len(order) == len(own) and all(
            _structural(a) == _structural(b) for a, b in zip(order, own)
        ):
            tensors = {b: tensors[a] for a, b in zip(order, own)}
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    wrong = [
        f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(tensors))
        if tensors[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{'…' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}")
        if wrong:
            parts.append(f"shape mismatch {wrong[:3]}")
        raise ModelFileError(f"{path}: the weights do not fit this model: " + "; ".join(parts))
    model.load_state_dict(tensors, strict=True)


def _is_keras_archive(path: Path) -> bool:
    from lstmkit.models import keras_files

    return keras_files.is_keras_archive(path)


def _build_by_calling(model: Any, spec: Any, path: Path) -> None:
    """Create a subclassed model's lazy weights by calling it once on zeros of the recorded
    input shape (unknown sizes -> 1) and dtype."""
    from lstmkit.layers.base import to_dtype

    try:
        shape = [1 if d is None else int(d) for d in spec["shape"]]
        dtype = to_dtype(spec["dtype"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{path}: config.json has an invalid build entry: {e}") from None
    with torch.no_grad():
        model(torch.zeros(shape, dtype=dtype), training=False)


def _load_optimizer(model: Any, ar: archive.Archive, path: Path) -> None:
    trainer = model._trainer
    if trainer is None or "optimizer.json" not in ar:
        return
    where = f"{path}: optimizer.json"
    meta = ar.json("optimizer.json")
    scalars = archive.require(meta, "scalars", dict, where)
    wrapper = archive.require(meta, "wrapper", dict, where)
    groups = archive.require(meta, "param_groups", list, where)
    blob = ar.read("optimizer.safetensors")
    tensors = _read_tensors(blob, "optimizer.safetensors", path)
    state: dict[int, dict[str, Any]] = {}
    for name, value in list(tensors.items()) + list(scalars.items()):
        parts = name.split("/", 2)
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
            raise ModelFileError(
                f"{path}: optimizer state entry {name!r}: expected 'state/<index>/<name>'"
            )
        state.setdefault(int(parts[1]), {})[parts[2]] = value
    opt = trainer.optimizer
    try:
        if not opt.built:
            opt.build(model.parameters())
        opt.load_state_dict({**wrapper, "torch": {"state": state, "param_groups": groups}})
    except Exception as e:  # the optimiser's own checks of data from the file
        raise ModelFileError(
            f"{path}: the optimizer state does not fit this model: {type(e).__name__}: {e}"
        ) from None


def _compile(model: Any, settings: dict[str, Any], path: Path) -> None:
    try:
        model.compile(**settings)
    except Exception as e:
        raise ModelFileError(
            f"{path}: config.json: cannot compile the model with its stored settings "
            f"({type(e).__name__}: {e}); load it with compile=False"
        ) from None


def load_model(filepath: Any, compile: bool = True, *, allow_nonfinite: bool = False) -> Any:
    """Load a model written by ``model.save``: architecture, weights, (compile config and
    optimiser state), and ``model.assets``. Never executes code from the file; reads it within
    the limits of :mod:`lstmkit.models.archive` (``archive.set_limits`` changes them).

    Args:
        filepath: the file.
        compile: also compile the model with its stored settings and optimiser state.
        allow_nonfinite: load weights that hold NaN or infinity (refused by default).

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: (a ``ValueError``) not an lstmkit model file, damaged, a newer format,
            over a limit, an unknown model class, weights that do not fit or are not finite.
    """
    path = Path(os.fspath(filepath))
    kind = _keras_kind(path)
    if kind == "keras_weights":
        raise ValueError(f"{path}: a .weights.h5 file holds weights only; use load_weights()")
    if kind == "keras" and (not path.is_file() or _is_keras_archive(path)):
        from lstmkit.models import keras_files

        return keras_files.load_keras_model(path, compile=compile)
    with _open_archive(path) as ar:
        config = _read_config(ar, path)
        blob = ar.read("model.safetensors")
        model = _rebuild(config, len(blob), path)
        tensors = _read_tensors(blob, "model.safetensors", path)
        del blob
        archive.check_finite(tensors, f"{path}: model.safetensors", allow_nonfinite)
        _load_state(model, tensors, path)
        model.assets = config.get("assets") or {}
        if compile and config.get("compile"):
            _compile(model, config["compile"], path)
            _load_optimizer(model, ar, path)
    return model


def read_assets(filepath: Any) -> dict[str, Any]:
    """``model.assets`` of an lstmkit model file, read from its ``config.json`` only (through
    the same validated reader as :func:`load_model`; ``{}`` when it has none).

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: not an lstmkit model file, damaged or over a limit.
    """
    path = Path(os.fspath(filepath))
    with _open_archive(path) as ar:
        config = _read_config(ar, path)
    assets = config.get("assets")
    return assets if isinstance(assets, dict) else {}


def load_weights(model: Any, filepath: Any, *, allow_nonfinite: bool = False) -> None:
    """Load weights from a :func:`save_weights` file or a full model file (NaN or infinite
    weights are refused unless ``allow_nonfinite``)."""
    path = Path(os.fspath(filepath))
    if not getattr(model, "built", True):
        raise ValueError(
            f"{model.name}: build the model (call it on data, or build(input_shape)) before "
            f"load_weights"
        )
    kind = _keras_kind(path)
    if kind == "keras_weights":
        from lstmkit.models import keras_files

        keras_files.load_keras_weights(model, path)
        return
    with archive.open_regular(path, "weights file") as fh:
        size = os.fstat(fh.fileno()).st_size
        kind = archive.sniff_file(fh, size)
        if kind == "safetensors":
            if size > archive.LIMITS.max_member_bytes:
                raise ModelFileError(
                    f"{path}: the weights file is {size} bytes, over the limit of "
                    f"{archive.LIMITS.max_member_bytes}"
                )
            blob = fh.read(size + 1)
    if kind == "zip":
        with _open_archive(path) as ar:
            blob = ar.read("model.safetensors")
    elif kind == "pickle":
        raise ModelFileError(f"{path} looks like a pickle file; lstmkit never unpickles")
    elif kind != "safetensors":
        raise ModelFileError(
            f"{path}: the weights file is not a valid safetensors file nor an lstmkit model "
            f"file (it is {archive.DESCRIPTIONS[kind]})"
        )
    tensors = _read_tensors(blob, "the weights file", path)
    archive.check_finite(tensors, f"{path}: the weights", allow_nonfinite)
    _load_state(model, tensors, path, _stored_order(blob))


# -- training state (BackupAndRestore) ---------------------------------------------------------


def save_training_state(model: Any, filepath: Any, state: TrainingState) -> None:
    """A model file plus the training position ``state`` and every RNG state, written
    atomically (what ``Model.save_training_state`` writes)."""
    rng_json, rng = random_states()
    meta = {
        **state.to_json(),
        **rng_json,
        "model_config": json.dumps(_nameless(_model_spec(model)), sort_keys=True),
    }
    extra = {"training_state.json": json.dumps(meta).encode(), "rng.safetensors": st_save(rng)}
    blob = _archive(model, include_optimizer=True, extra=extra, kind="training_state")
    with atomic_write(Path(os.fspath(filepath))) as fh:
        fh.write(blob)


def _model_spec(model: Any) -> Any:
    from lstmkit.layers import serialize

    try:
        return serialize(model)
    except NotImplementedError:
        return {
            "class_name": type(model).__name__,
            "weights": {k: list(v.shape) for k, v in model.state_dict().items()},
        }


def _nameless(spec: Any) -> Any:
    """A model spec without layer names (automatic names differ between two instances of the
    same architecture); functional nodes refer to their layer by position instead."""
    if isinstance(spec, dict):
        if isinstance(spec.get("nodes"), list) and isinstance(spec.get("layers"), list):
            index = {
                layer.get("config", {}).get("name"): i
                for i, layer in enumerate(spec["layers"])
                if isinstance(layer, dict)
            }
            spec = {
                **spec,
                "nodes": [
                    {**n, "layer": index.get(n.get("layer"), n.get("layer"))}
                    if isinstance(n, dict) and isinstance(n.get("layer"), str)
                    else n
                    for n in spec["nodes"]
                ],
            }
        return {k: _nameless(v) for k, v in spec.items() if k != "name"}
    if isinstance(spec, list):
        return [_nameless(v) for v in spec]
    return spec


def restore_training_state(
    model: Any, filepath: Any, world_size: int = 1, *, allow_nonfinite: bool = False
) -> TrainingState:
    """Restore weights, optimiser and RNGs from a backup of *this* model, written by as many
    processes as ``world_size``; returns the saved position (``resumed=True``).

    Raises:
        ModelFileError: a damaged backup or one written by a different model — never silently
            restarting from scratch over good checkpoints.
    """
    path = Path(os.fspath(filepath))
    with _open_archive(path, "training backup") as ar:
        if "training_state.json" not in ar:
            raise ModelFileError(f"{path} is a model file, not a training backup")
        state = ar.json("training_state.json")
        if state.get("model_config") != json.dumps(_nameless(_model_spec(model)), sort_keys=True):
            raise ModelFileError(
                f"{path}: this backup was written by a different model "
                f"(architecture differs); refusing to restore it. Delete the "
                f"backup directory to start over."
            )
        try:
            position = TrainingState.from_json(state, resumed=True)
        except ValueError as e:
            raise ModelFileError(f"{path}: training_state.json: {e}") from None
        if position.world_size != world_size:
            raise ModelFileError(
                f"{path}: this backup was written by {position.world_size} process(es) but this "
                f"run has {world_size}; the data position would not match. Resume with "
                f"the same number of processes."
            )
        blob = ar.read("model.safetensors")
        tensors = _read_tensors(blob, "model.safetensors", path)
        archive.check_finite(tensors, f"{path}: model.safetensors", allow_nonfinite)
        _load_state(model, tensors, path, _stored_order(blob))
        _load_optimizer(model, ar, path)
        rng = _read_tensors(ar.read("rng.safetensors"), "rng.safetensors", path)
    try:
        set_random_states(state, rng)
    except Exception as e:
        raise ModelFileError(
            f"{path}: the random generator states do not fit: {type(e).__name__}: {e}"
        ) from None
    return position
