"""Keras 3 model configs (a ``.keras`` file's ``config.json``) <-> lstmkit models.

Reading builds only classes from a fixed table (lstmkit's registered layers under their Keras
names, ``InputLayer``, and the ``NotEqual`` operation Keras records for ``mask_zero`` masks in
functional graphs); nothing named in the file is imported or executed. ``Lambda`` layers, custom
(registered) classes, serialised Python functions and other operations are refused with an
error that says so. Arguments Keras has and lstmkit does not are dropped when they cannot change
the numbers (``unroll``, ``seed``, ``quantization_config=None`` …) and refused otherwise.

Writing turns lstmkit's configs (which use Keras's argument names) into Keras's, adding
``module`` / ``registered_name`` and the ``InputLayer``; a layer variant Keras has no
counterpart for (peepholes, layer norm, projections) is refused.

Keras functional graphs are ``layers`` with ``inbound_nodes`` (one per call) whose arguments
reference tensors as ``{"class_name": "__keras_tensor__", "config": {"keras_history":
[layer, node, tensor]}}``; ``input_layers`` / ``output_layers`` name the ends.
"""

from __future__ import annotations

from typing import Any

import torch

from lstmkit.layers import base as layer_base
from lstmkit.layers.base import Layer, SymbolicTensor
from lstmkit.models.errors import ModelFileError

# Keras arguments lstmkit does not take that never change what a layer computes, and Keras
# arguments whose default (the value given here) is what lstmkit does.
_HARMLESS = {"unroll", "seed", "use_cudnn", "lora_alpha", "input_axes", "output_axes"}
_DEFAULT_ONLY: dict[str, Any] = {
    "quantization_config": None,
    "lora_rank": None,
    "lora_enabled": False,
    "sparse": False,
    "ragged": False,
    "optional": False,
    "autocast": True,
    "activity_regularizer": None,
}
_LSTMKIT_ONLY = {"engine"}  # lstmkit arguments Keras does not have (numerically neutral)
_NO_KERAS_COUNTERPART = ("peephole", "layer_norm", "coupled", "proj_size")
_RNN = {"LSTM", "GRU", "SimpleRNN"}


class KerasConfigError(ModelFileError):
    """A Keras config that lstmkit cannot (or will not) rebuild, or a model Keras cannot hold."""


def _layer_class(class_name: str) -> type[Layer]:
    from lstmkit.layers import get_layer_class

    try:
        return get_layer_class(class_name)
    except ValueError:
        pass
    from lstmkit.layers import conv

    cls = getattr(conv, class_name, None)
    if isinstance(cls, type) and issubclass(cls, Layer) and not class_name.startswith("_"):
        return cls
    raise KerasConfigError(f"Keras layer class {class_name!r} has no lstmkit counterpart")


def _refuse_code(spec: dict[str, Any], where: str) -> None:
    cls = spec.get("class_name")
    if cls == "Lambda":
        raise KerasConfigError(
            f"{where}: a Lambda layer stores Python code; lstmkit never runs code from a "
            f"file (rebuild the model with lstmkit layers instead)"
        )
    if cls in ("__lambda__", "function") or spec.get("registered_name") not in (None, cls):
        raise KerasConfigError(
            f"{where}: {cls!r} (registered as {spec.get('registered_name')!r}) is custom code; "
            f"lstmkit never imports or runs code named in a file"
        )
    module = spec.get("module")
    if module is not None and not str(module).startswith("keras"):
        raise KerasConfigError(
            f"{where}: class {cls!r} from module {module!r} is custom code; lstmkit never "
            f"imports or runs code named in a file"
        )


# -- Keras -> lstmkit --------------------------------------------------------------------------


def _dtype(value: Any, where: str) -> Any:
    if isinstance(value, dict):  # DTypePolicy
        name = value.get("config", {}).get("name")
        if not isinstance(name, str) or name.startswith("mixed"):
            raise KerasConfigError(f"{where}: dtype policy {name!r} is not supported")
        return name
    return value


def _object(value: Any, where: str) -> Any:
    """An initialiser / regulariser / constraint / activation from its Keras form."""
    if isinstance(value, dict) and "class_name" in value:
        _refuse_code(value, where)
        config = value.get("config", {})
        if not isinstance(config, dict):
            raise KerasConfigError(f"{where}: unexpected config {config!r}")
        config = {
            k: v
            for k, v in config.items()
            if not (k in _HARMLESS and k != "seed" and v is None) and k != "shared_object_id"
        }
        return {"class_name": value["class_name"], "config": config}
    return value


def layer_spec_from_keras(spec: dict[str, Any], where: str = "config.json") -> dict[str, Any]:
    """lstmkit's ``{"class_name", "config"}`` for one Keras layer spec (nested layers too)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str):
        raise KerasConfigError(f"{where}: expected a layer spec, got {spec!r}")
    _refuse_code(spec, where)
    cls_name = spec["class_name"]
    config = spec.get("config")
    if not isinstance(config, dict):
        raise KerasConfigError(f"{where}: layer {cls_name!r} has no config")
    where = f"{where}: {cls_name} {config.get('name', '')!r}"
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "dtype":
            out[key] = _dtype(value, where)
        elif key in ("layer", "backward_layer") and isinstance(value, dict):
            out[key] = layer_spec_from_keras(value, where)
        elif isinstance(value, dict):
            out[key] = _object(value, f"{where} {key}")
        else:
            out[key] = value
    return {"class_name": cls_name, "config": out}


def build_layer(spec: dict[str, Any], where: str = "config.json") -> Layer:
    """Construct an lstmkit layer from a translated spec, dropping the Keras-only arguments
    that cannot change its numbers (and refusing the others)."""
    cls = _layer_class(spec["class_name"])
    config = dict(spec["config"])
    for key in ("layer", "backward_layer"):
        if isinstance(config.get(key), dict) and "class_name" in config[key]:
            config[key] = build_layer(config[key], where)
    name = f"{spec['class_name']} {config.get('name', '')!r}"
    for _ in range(len(config) + 1):
        try:
            return _from_config(cls, config)
        except TypeError as e:
            keys = _unexpected_keywords(e)
            if not keys or not all(k in config for k in keys):
                raise KerasConfigError(f"{where}: cannot rebuild {name}: {e}") from None
            for key in keys:
                value = config.pop(key)
                if key in _HARMLESS or (key in _DEFAULT_ONLY and value == _DEFAULT_ONLY[key]):
                    continue
                raise KerasConfigError(
                    f"{where}: {name} has {key}={value!r}, which lstmkit does not support"
                ) from None
    raise KerasConfigError(f"{where}: cannot rebuild {name}")  # pragma: no cover


def _from_config(cls: type[Layer], config: dict[str, Any]) -> Layer:
    """``cls.from_config`` for already-built nested layers (Bidirectional / TimeDistributed
    take layer objects in their constructors)."""
    if any(isinstance(config.get(k), Layer) for k in ("layer", "backward_layer")):
        config = dict(config)
        layer = config.pop("layer")
        return cls(layer, **config)
    return cls.from_config(dict(config))


def _unexpected_keywords(error: TypeError) -> list[str]:
    """The argument names of Python's or lstmkit's "unexpected keyword argument" errors."""
    text = str(error)
    if "unexpected keyword argument '" in text:
        return [text.split("unexpected keyword argument '", 1)[1].split("'", 1)[0]]
    if "unexpected keyword argument(s) " in text:
        names = text.split("unexpected keyword argument(s) ", 1)[1]
        return [n.strip(" '\"") for n in names.split(",") if n.strip()]
    return []


class _NotEqual(Layer):
    """``x != value``: the operation Keras's functional graphs record for ``mask_zero`` masks."""

    def __init__(self, value: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x != self.value

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return None


def _model_class(name: str) -> Any:
    """``Sequential`` or ``Model``, found through the layer registry the model classes join
    (as :mod:`saving` does), so that this module imports no model class: the model classes
    reach this module through saving, and an import back would close a cycle."""
    from lstmkit.layers import get_layer_class

    return get_layer_class(name)


def sequential_from_keras(config: dict[str, Any], where: str) -> Any:
    Sequential = _model_class("Sequential")

    specs = config.get("layers")
    if not isinstance(specs, list):
        raise KerasConfigError(f"{where}: the Sequential config has no layers list")
    shape, dtype = None, None
    layers = []
    for spec in specs:
        if isinstance(spec, dict) and spec.get("class_name") == "InputLayer":
            c = spec.get("config", {})
            shape, dtype = c.get("batch_shape") or c.get("batch_input_shape"), c.get("dtype")
            continue
        if shape is None and isinstance(spec, dict):
            build = spec.get("build_config") or {}
            shape = build.get("input_shape")
        layers.append(build_layer(layer_spec_from_keras(spec, where), where))
    model = Sequential(layers, name=config.get("name"), trainable=config.get("trainable", True))
    if shape is None:
        raise KerasConfigError(f"{where}: the Sequential model records no input shape")
    model.build(tuple(shape), dtype=_dtype(dtype, where))
    return model


def functional_from_keras(config: dict[str, Any], where: str) -> Any:
    Model = _model_class("Model")

    specs = config.get("layers")
    if not isinstance(specs, list):
        raise KerasConfigError(f"{where}: the functional config has no layers list")
    layers: dict[str, Any] = {}
    produced: dict[tuple[str, int], list[Any]] = {}
    calls: dict[str, int] = {}

    def deref(obj: Any) -> Any:
        if isinstance(obj, dict) and obj.get("class_name") == "__keras_tensor__":
            layer, node, index = obj["config"]["keras_history"]
            try:
                return produced[(layer, int(node))][int(index)]
            except (KeyError, IndexError):
                raise KerasConfigError(
                    f"{where}: reference to an unknown tensor {[layer, node, index]}"
                ) from None
        if isinstance(obj, list):
            return [deref(o) for o in obj]
        if isinstance(obj, dict):
            return {k: deref(v) for k, v in obj.items()}
        return obj

    for spec in specs:
        if not isinstance(spec, dict):
            raise KerasConfigError(f"{where}: expected a layer spec, got {spec!r}")
        name = spec.get("name") or spec.get("config", {}).get("name")
        cls = spec.get("class_name")
        if cls == "InputLayer":
            c = spec.get("config", {})
            shape = c.get("batch_shape") or c.get("batch_input_shape")
            tensor = layer_base.Input(
                batch_shape=tuple(shape), dtype=_dtype(c.get("dtype"), where), name=name
            )
            produced[(name, 0)] = [tensor]
            continue
        if cls == "NotEqual":
            _refuse_code({**spec, "registered_name": None, "module": None}, where)
            layer: Any = None  # built per call: its operand is in the node's args
        else:
            layer = build_layer(layer_spec_from_keras(spec, where), where)
        for node in spec.get("inbound_nodes") or []:
            args = deref(node.get("args", []))
            kwargs = {
                k: deref(v)
                for k, v in (node.get("kwargs") or {}).items()
                if k != "training" and v is not None
            }
            if cls == "NotEqual":
                if len(args) != 2 or isinstance(args[1], (SymbolicTensor, list, dict)):
                    raise KerasConfigError(f"{where}: unsupported NotEqual operation {name!r}")
                k = calls.get(name, 0)
                out = _NotEqual(args[1], name=name if k == 0 else f"{name}_{k}")(args[0])
            else:
                out = layer(*args, **kwargs)
            k = calls.get(name, 0)
            produced[(name, k)] = list(out) if isinstance(out, (list, tuple)) else [out]
            calls[name] = k + 1
        if layer is not None:
            layers[name] = layer

    def ends(refs: Any) -> Any:
        if isinstance(refs, list) and len(refs) == 3 and isinstance(refs[0], str):
            layer, node, index = refs
            return produced[(layer, int(node))][int(index)]
        if isinstance(refs, list):
            return [ends(r) for r in refs]
        if isinstance(refs, dict):
            return {k: ends(v) for k, v in refs.items()}
        raise KerasConfigError(f"{where}: unexpected model input/output reference {refs!r}")

    try:
        inputs, outputs = ends(config["input_layers"]), ends(config["output_layers"])
    except KeyError as e:
        raise KerasConfigError(f"{where}: reference to an unknown layer {e}") from None
    return Model(inputs, outputs, name=config.get("name"))


def model_from_keras(doc: dict[str, Any], where: str = "config.json") -> Any:
    """An lstmkit model from a ``.keras`` file's ``config.json``."""
    if not isinstance(doc, dict) or doc.get("class_name") not in ("Sequential", "Functional"):
        got = doc.get("class_name") if isinstance(doc, dict) else type(doc).__name__
        if isinstance(doc, dict) and doc.get("class_name") == "Model":
            got = "Model"  # a subclassed model: Keras stores only its class name
        raise KerasConfigError(
            f"{where}: expected a Sequential or Functional model, got {got!r} (subclassed "
            f"Keras models hold code and cannot be rebuilt)"
        )
    _refuse_code(doc, where)
    config = doc.get("config")
    if not isinstance(config, dict):
        raise KerasConfigError(f"{where}: the model has no config")
    if doc["class_name"] == "Sequential":
        return sequential_from_keras(config, where)
    return functional_from_keras(config, where)


# -- lstmkit -> Keras --------------------------------------------------------------------------


def _keras_object(value: Any, module: str) -> Any:
    if isinstance(value, dict) and "class_name" in value and "config" in value:
        return {
            "module": module,
            "class_name": value["class_name"],
            "config": value["config"],
            "registered_name": None,
        }
    return value


_OBJECT_MODULES = {
    "initializer": "keras.initializers",
    "regularizer": "keras.regularizers",
    "constraint": "keras.constraints",
}


def layer_spec_to_keras(layer: Layer) -> dict[str, Any]:
    """Keras's spec of one lstmkit layer (without ``inbound_nodes``)."""
    cls = type(layer).__name__
    config = dict(layer.get_config())
    for key in _NO_KERAS_COUNTERPART:
        if config.get(key):
            raise KerasConfigError(
                f"{cls} {layer.name!r}: {key}={config[key]!r} has no Keras 3 counterpart; "
                f"save it in lstmkit's format (any other file name) instead"
            )
        config.pop(key, None)
    for key in _LSTMKIT_ONLY:
        config.pop(key, None)
    if config.get("use_cudnn") == "auto" or cls not in ("LSTM", "GRU"):
        config.pop("use_cudnn", None)  # Keras's default (and not in its get_config)
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("layer", "backward_layer") and isinstance(value, dict):
            inner = layer.forward_layer if key == "layer" and cls == "Bidirectional" else None
            if cls == "Bidirectional" and key == "backward_layer":
                inner = layer.backward_layer
            if cls == "TimeDistributed":
                inner = layer.layer
            spec = layer_spec_to_keras(inner)
            if key == "layer":
                spec["config"]["name"] = value["config"].get("name", spec["config"]["name"])
            out[key] = spec
            continue
        module = next((m for s, m in _OBJECT_MODULES.items() if key.endswith(s)), None)
        out[key] = _keras_object(value, module) if module else value
    return {"module": "keras.layers", "class_name": cls, "config": out, "registered_name": None}


def _input_spec(shape: Any, dtype: str, name: str) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {
            "batch_shape": list(shape),
            "dtype": dtype,
            "sparse": False,
            "ragged": False,
            "name": name,
        },
        "registered_name": None,
    }


def _sequential_to_keras(model: Any) -> dict[str, Any]:
    shape = getattr(model, "_build_shape", None)
    if shape is None:
        raise KerasConfigError(f"{model.name}: build the model before saving it as .keras")
    dtype = getattr(model, "_build_dtype", None) or torch.get_default_dtype()
    layers = [_input_spec(shape, layer_base._dtype_name(dtype), "input_layer")]
    layers += [layer_spec_to_keras(layer) for layer in model.layers]
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": model.name, "trainable": model.trainable, "layers": layers},
        "registered_name": None,
        "build_config": {"input_shape": list(shape)},
    }


def _functional_to_keras(model: Any) -> dict[str, Any]:
    history: dict[int, list[Any]] = {}  # id(symbolic tensor) -> [layer, node, index]
    for t in model._input_tensors:
        history[id(t)] = [t.node.layer.name, 0, 0]
    specs: dict[str, dict[str, Any]] = {}
    calls: dict[str, int] = {}

    def ref(obj: Any) -> Any:
        if isinstance(obj, SymbolicTensor):
            return {
                "class_name": "__keras_tensor__",
                "config": {
                    "shape": list(obj.shape),
                    "dtype": layer_base._dtype_name(obj.dtype),
                    "keras_history": history[id(obj)],
                },
            }
        if isinstance(obj, (list, tuple)):
            return [ref(o) for o in obj]
        if isinstance(obj, dict):
            return {k: ref(v) for k, v in obj.items()}
        if isinstance(obj, torch.Tensor):
            raise KerasConfigError(f"{model.name}: a constant tensor in a layer call")
        return obj

    layers = [
        {**_input_spec(t.shape, layer_base._dtype_name(t.dtype), t.node.layer.name),
         "name": t.node.layer.name, "inbound_nodes": []}
        for t in model._input_tensors
    ]  # fmt: skip
    for node in model._nodes:
        name = node.layer.name
        if name not in specs:
            if isinstance(node.layer, _NotEqual):
                spec = {
                    "module": "keras.src.ops.numpy",
                    "class_name": "NotEqual",
                    "config": {"name": name},
                    "registered_name": "NotEqual",
                }
            else:
                spec = layer_spec_to_keras(node.layer)
            specs[name] = {**spec, "name": name, "inbound_nodes": []}
            layers.append(specs[name])
        k = calls.get(name, 0)
        args = list(node.args)
        if isinstance(node.layer, _NotEqual):
            args = [*args, node.layer.value]
        specs[name]["inbound_nodes"].append(
            {
                "args": ref(args),
                "kwargs": {key: ref(v) for key, v in node.kwargs.items() if key != "training"},
            }
        )
        for i, out in enumerate(node.outputs):
            history[id(out)] = [name, k, i]
        calls[name] = k + 1

    def ends(struct: Any) -> Any:
        if isinstance(struct, SymbolicTensor):
            return history[id(struct)]
        if isinstance(struct, (list, tuple)):
            return [ends(s) for s in struct]
        if isinstance(struct, dict):
            return {k: ends(v) for k, v in struct.items()}
        raise KerasConfigError(f"{model.name}: unexpected input/output structure {struct!r}")

    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": model.name,
            "trainable": model.trainable,
            "layers": layers,
            "input_layers": ends(model._inputs_struct),
            "output_layers": ends(model._outputs_struct),
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
    }


def model_to_keras(model: Any) -> dict[str, Any]:
    """Keras's ``config.json`` for an lstmkit Sequential or functional model."""
    Sequential = _model_class("Sequential")

    if isinstance(model, Sequential):
        return _sequential_to_keras(model)
    if getattr(model, "_functional", False):
        return _functional_to_keras(model)
    raise KerasConfigError(
        f"{model.name}: only Sequential and functional models can be saved as .keras "
        f"(Keras stores subclassed models as code); use save_weights('x.weights.h5')"
    )
