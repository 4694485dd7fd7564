"""The Keras-style ``Layer``: a ``torch.nn.Module`` with lazy build, names, configs, Keras-layout
weights, masks, regularisers and constraints — and the symbolic tensors of the functional API.

Calling a layer:

* on tensors (torch or numpy): builds it on first use (``build(input_shape)``), then runs
  ``forward``. Masks travel on tensors as Keras does: a layer's output carries
  ``output._keras_mask`` when the layer produces or propagates one, and the next layer receives
  it as its ``mask`` argument.
* on :class:`SymbolicTensor` (from :func:`Input`): records a node in the graph that
  :class:`lstmkit.models.Model` executes, and returns symbolic outputs whose shapes are inferred
  (``compute_output_shape`` where a layer defines it, otherwise by running the layer on two small
  dummy inputs and marking the dimensions that follow the input's unknown ones as ``None``).
"""

from __future__ import annotations

import contextvars
import inspect
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lstmkit import constraints as constraints_mod
from lstmkit import regularizers as regularizers_mod
from lstmkit.utils import reset_names as reset_names  # re-exported (it was defined here)
from lstmkit.utils import unique_name

Shape = tuple[int | None, ...]

_SYMBOLIC = contextvars.ContextVar("lstmkit_symbolic_call", default=False)


def snake_case(name: str) -> str:
    """``"SimpleRNN"`` -> ``"simple_rnn"``, ``"LSTM"`` -> ``"lstm"`` (Keras's naming)."""
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


def in_symbolic_call() -> bool:
    """True while a layer runs on dummy data to infer shapes (stateful layers keep still)."""
    return _SYMBOLIC.get()


@contextmanager
def _symbolic_scope() -> Iterator[None]:
    token = _SYMBOLIC.set(True)
    try:
        yield
    finally:
        _SYMBOLIC.reset(token)


# -- symbolic tensors (functional API) -------------------------------------------------------


class Node:
    """One call of a layer on symbolic tensors: ``outputs = layer(*args, **kwargs)``."""

    def __init__(self, layer: Layer, args: tuple, kwargs: dict, outputs: list[SymbolicTensor]):
        self.layer, self.args, self.kwargs, self.outputs = layer, args, kwargs, outputs

    def inputs(self) -> list[SymbolicTensor]:
        return [t for t in _flatten((self.args, self.kwargs)) if isinstance(t, SymbolicTensor)]


class SymbolicTensor:
    """A placeholder in a functional graph: a shape with ``None`` for unknown sizes, a dtype,
    and the node that produces it.

    Attributes:
        shape: e.g. ``(None, None, 128)``; the first dimension is the batch.
        dtype: a torch dtype.
        has_mask: whether a mask travels with this tensor at run time.
    """

    def __init__(
        self,
        shape: Shape,
        dtype: torch.dtype = torch.float32,
        node: Node | None = None,
        index: int = 0,
        name: str | None = None,
        has_mask: bool = False,
    ) -> None:
        self.shape = tuple(shape)
        self.dtype = dtype
        self.node = node
        self.index = index
        self.name = name
        self.has_mask = has_mask

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype} name={self.name}>"

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __iter__(self):
        raise TypeError(
            "SymbolicTensor is not iterable; a layer with several outputs returns a list"
        )


class InputLayer(nn.Module):
    """The layer behind :func:`Input` (no weights)."""

    def __init__(self, shape: Shape, dtype: torch.dtype, name: str) -> None:
        super().__init__()
        self.name = name
        self.shape = shape
        self.dtype = dtype

    def get_config(self) -> dict[str, Any]:
        return {
            "batch_shape": list(self.shape),
            "dtype": _dtype_name(self.dtype),
            "name": self.name,
        }


_DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}


def to_dtype(dtype: Any, *, argument: str = "dtype") -> torch.dtype:
    """A torch dtype from a Keras-style name (``"float32"``, ``"int32"`` …) or a torch dtype."""
    if dtype is None:
        return torch.get_default_dtype()
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype in _DTYPES:
        return _DTYPES[dtype]
    if isinstance(dtype, np.dtype) or (isinstance(dtype, type) and issubclass(dtype, np.generic)):
        return to_dtype(np.dtype(dtype).name, argument=argument)
    raise ValueError(f"{argument}: expected one of {sorted(_DTYPES)}, got {dtype!r}")


def _dtype_name(dtype: torch.dtype) -> str:
    for name, dt in _DTYPES.items():
        if dt == dtype:
            return name
    return str(dtype)


def Input(
    shape: tuple[int | None, ...] | None = None,
    batch_size: int | None = None,
    dtype: Any = None,
    name: str | None = None,
    batch_shape: tuple[int | None, ...] | None = None,
) -> SymbolicTensor:
    """A symbolic input of shape ``(batch_size, *shape)`` for the functional API (Keras's).

    >>> x = Input(shape=(None, 16))
    >>> x.shape
    (None, None, 16)
    """
    if batch_shape is None:
        if shape is None:
            raise ValueError("Input: give shape= (without the batch dimension) or batch_shape=")
        if isinstance(shape, int):
            shape = (shape,)
        batch_shape = (batch_size, *tuple(shape))
    for d in batch_shape:
        if d is not None and (not isinstance(d, int) or d <= 0):
            raise ValueError(
                f"Input: dimensions must be positive integers or None, got {batch_shape}"
            )
    dt = to_dtype(dtype)
    layer = InputLayer(tuple(batch_shape), dt, name or unique_name("input_layer"))
    tensor = SymbolicTensor(tuple(batch_shape), dt, name=layer.name)
    tensor.node = Node(layer, (), {}, [tensor])  # type: ignore[arg-type]
    return tensor


# -- structure helpers -------------------------------------------------------------------------


def _flatten(obj: Any) -> list[Any]:
    if isinstance(obj, (list, tuple)):
        return [leaf for item in obj for leaf in _flatten(item)]
    if isinstance(obj, dict):
        return [leaf for key in sorted(obj) for leaf in _flatten(obj[key])]
    return [obj]


def map_structure(fn: Callable[[Any], Any], obj: Any) -> Any:
    """Apply ``fn`` to every leaf of nested lists/tuples/dicts."""
    if isinstance(obj, list):
        return [map_structure(fn, o) for o in obj]
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return tuple(map_structure(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: map_structure(fn, v) for k, v in obj.items()}
    return fn(obj)


def to_tensor(x: Any, *, layer: str = "layer", argument: str = "inputs") -> Any:
    """numpy arrays and Python lists of numbers -> torch tensors (float64 -> float32 as Keras)."""
    if isinstance(x, Tensor) or x is None:
        return x
    if isinstance(x, np.ndarray):
        if x.dtype == np.float64:
            x = x.astype(np.float32)
        if x.dtype.kind in "OUS":
            raise TypeError(f"{layer}: {argument} must be numeric, got a numpy array of {x.dtype}")
        return torch.from_numpy(np.ascontiguousarray(x))
    return x


def get_mask(x: Any) -> Tensor | None:
    """The mask travelling with ``x`` (``x._keras_mask``), if any."""
    return getattr(x, "_keras_mask", None)


def set_mask(x: Any, mask: Tensor | None) -> None:
    """Attach ``mask`` to tensor ``x`` (or remove it with ``None``)."""
    if isinstance(x, Tensor):
        if mask is None:
            if hasattr(x, "_keras_mask"):
                del x._keras_mask
        else:
            x._keras_mask = mask


def shape_of(x: Any) -> Any:
    """Shapes of (nested) tensors, as tuples."""
    return map_structure(lambda t: tuple(t.shape) if hasattr(t, "shape") else None, x)


# -- the Layer ---------------------------------------------------------------------------------


class Layer(nn.Module):
    """Base class of lstmkit's Keras-style layers.

    Subclasses define ``build(input_shape)`` (create parameters once the input size is known),
    ``forward(inputs, ...)``, and ``get_config()``; optionally ``compute_output_shape`` and
    ``compute_mask``. Parameters registered in ``build`` appear in ``weights`` in registration
    order; layers whose Keras layout differs (recurrent layers) override ``get_weights`` /
    ``set_weights``.

    Args:
        name: unique by default (``"dense"``, ``"dense_1"``…).
        trainable: ``False`` freezes the layer's weights.
        dtype: the weights' dtype (``"float32"`` default).
        input_shape: accepted for Keras compatibility (the shape without batch); the model
            builds the layer from it.
    """

    supports_masking: bool = False
    _keeps_output_masks: bool = False  # models leave their inner layers' masks in place
    _output_shape: Any = None

    def __init__(
        self,
        *,
        name: str | None = None,
        trainable: bool = True,
        dtype: Any = None,
        input_shape: tuple[int | None, ...] | None = None,
        input_dim: int | None = None,
        batch_input_shape: tuple[int | None, ...] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword argument(s) {', '.join(sorted(kwargs))}"
            )
        super().__init__()
        # Keras: calling a layer or model directly runs in inference mode unless training=True
        # is passed; fit() switches to training mode for its steps (torch's default is train).
        self.training = False
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(
                f"{type(self).__name__}: name must be a non-empty string, got {name!r}"
            )
        self.name = name or unique_name(snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        self.dtype_policy = to_dtype(dtype, argument=f"{type(self).__name__}: dtype")
        self.built = False
        if input_dim is not None and input_shape is None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        self._input_shape_arg = tuple(input_shape) if input_shape is not None else None
        self._regularized: list[tuple[str, regularizers_mod.Regularizer]] = []
        self._constrained: list[tuple[str, constraints_mod.Constraint]] = []
        self.activity_regularizer: regularizers_mod.Regularizer | None = None
        self._activity_loss: Tensor | None = None
        self._inbound_nodes: list[Node] = []

    # -- building ------------------------------------------------------------------------

    def build(self, input_shape: Any) -> None:
        """Create the weights for inputs of ``input_shape`` (batch dimension first)."""
        self.built = True

    def _maybe_build(self, inputs: Any) -> None:
        if self.built:
            return
        shapes = shape_of(inputs)
        self.build(shapes)
        self.built = True
        device = next((t.device for t in _flatten(inputs) if isinstance(t, Tensor)), None)
        if device is not None and device.type != "cpu":
            self.to(device)

    def add_weight(
        self,
        shape: tuple[int, ...] | None = None,
        initializer: Any = None,
        dtype: Any = None,
        trainable: bool = True,
        autocast: bool = True,
        regularizer: Any = None,
        constraint: Any = None,
        aggregation: str = "none",
        name: str | None = None,
        *,
        transpose: bool = False,
    ) -> nn.Parameter:
        """Create and register a parameter (Keras 3's ``add_weight`` signature).

        ``shape`` is Keras's; with ``transpose=True`` the parameter is stored transposed
        (torch's ``(out, in)`` layout) and the initialiser still sees Keras's shape. The default
        initialiser is ``glorot_uniform`` for floating weights, as Keras.
        """
        from lstmkit import initializers

        if shape is None:
            raise ValueError(f"{self.name}: add_weight needs a shape")
        name = name or f"weight_{len(self._parameters)}"
        init = initializers.get(
            initializer if initializer is not None else "glorot_uniform",
            argument=f"{self.name}: {name} initializer",
        )
        dt = to_dtype(dtype) if dtype is not None else self.dtype_policy
        value = init(tuple(int(d) for d in shape), dt)
        if transpose:
            value = value.T.contiguous()
        param = nn.Parameter(value, requires_grad=trainable and self._trainable)
        self.register_parameter(name, param)
        self._track(name, regularizer, constraint)
        return param

    def _track(self, name: str, regularizer: Any, constraint: Any) -> None:
        reg = regularizers_mod.get(regularizer, argument=f"{self.name}: {name} regularizer")
        con = constraints_mod.get(constraint, argument=f"{self.name}: {name} constraint")
        if reg is not None:
            self._regularized.append((name, reg))
        if con is not None:
            self._constrained.append((name, con))

    # -- calling -------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if any(isinstance(t, SymbolicTensor) for t in _flatten((args, kwargs))):
            return self._symbolic_call(args, kwargs)
        args = map_structure(lambda t: to_tensor(t, layer=self.name), args)
        kwargs = {
            k: (v if k in ("training", "mask") else map_structure(to_tensor, v))
            for k, v in kwargs.items()
        }
        if "mask" in kwargs and kwargs["mask"] is not None:
            kwargs["mask"] = map_structure(
                lambda m: to_tensor(m, layer=self.name, argument="mask"), kwargs["mask"]
            )
        inputs = args[0] if args else kwargs.get("inputs")
        self._maybe_build(inputs)
        accepts_mask = "mask" in self._call_params()
        incoming_mask = kwargs.get("mask")
        if incoming_mask is None:
            incoming_mask = map_structure(get_mask, inputs)
            if not any(m is not None for m in _flatten(incoming_mask)):
                incoming_mask = None
            elif not isinstance(inputs, (list, tuple)):
                incoming_mask = get_mask(inputs)
            if accepts_mask and incoming_mask is not None:
                kwargs["mask"] = incoming_mask
        if "training" in kwargs and "training" not in self._call_params():
            kwargs.pop("training")
        outputs = super().__call__(*args, **kwargs)
        if self.activity_regularizer is not None:
            first = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
            batch = first.shape[0] if first.dim() else 1
            self._activity_loss = self.activity_regularizer(first) / max(batch, 1)
        if self._keeps_output_masks:
            self._output_shape = _batchless(shape_of(outputs))
            return outputs
        out_mask = self.compute_mask(inputs, incoming_mask)
        self._output_shape = _batchless(shape_of(outputs))
        if isinstance(outputs, (list, tuple)):
            masks = (
                out_mask
                if isinstance(out_mask, (list, tuple))
                else [out_mask] + [None] * (len(outputs) - 1)
            )
            for o, m in zip(outputs, masks):
                set_mask(o, m)
        else:
            set_mask(outputs, out_mask)
        return outputs

    def _call_params(self) -> dict[str, inspect.Parameter]:
        cache = type(self).__dict__.get("_call_params_cache")
        if cache is None:
            cache = _signature(self.forward)
            type(self)._call_params_cache = cache
        return cache

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Keras-style layers written with ``call`` (as in Keras) work unchanged."""
        call = getattr(self, "call", None)
        if call is None:
            raise NotImplementedError(f"{type(self).__name__}: define forward() or call()")
        return call(*args, **kwargs)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """The mask of the output: the input's if the layer ``supports_masking``, else None."""
        return mask if self.supports_masking else None

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Output shape(s) for ``input_shape``; the default infers it by running the layer."""
        raise NotImplementedError

    def _symbolic_call(self, args: tuple, kwargs: dict) -> Any:
        inputs = args[0] if args else kwargs.get("inputs")
        out_shapes = None
        try:
            if not self.built:
                self._maybe_build(map_structure(_dummy_spec_tensor, inputs))
            out_shapes = self.compute_output_shape(
                map_structure(lambda t: t.shape if isinstance(t, SymbolicTensor) else t, inputs)
            )
        except NotImplementedError:
            out_shapes = None
        dummies = [_dummy_outputs(self, args, kwargs, size) for size in (0, 1)]
        if out_shapes is None:
            out_shapes = _merge_shapes(*[shape_of(d) for d in dummies])
        out_dtypes = map_structure(lambda t: t.dtype, dummies[0])
        out_masks = map_structure(lambda t: get_mask(t) is not None, dummies[0])
        multi = isinstance(dummies[0], (list, tuple))
        shapes_list = list(out_shapes) if multi else [out_shapes]
        dtypes_list = list(out_dtypes) if multi else [out_dtypes]
        masks_list = list(out_masks) if multi else [out_masks]
        outputs = [
            SymbolicTensor(tuple(s), d, None, i, f"{self.name}/{i}", m)
            for i, (s, d, m) in enumerate(zip(shapes_list, dtypes_list, masks_list))
        ]
        node = Node(self, args, kwargs, outputs)
        for o in outputs:
            o.node = node
        self._inbound_nodes.append(node)
        return outputs if multi else outputs[0]

    # -- weights -------------------------------------------------------------------------

    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for p in self.parameters():
            p.requires_grad_(self._trainable)
        for m in self.modules():
            if isinstance(m, Layer) and m is not self:
                m._trainable = bool(value)

    @property
    def weights(self) -> list[nn.Parameter]:
        return list(self.parameters())

    @property
    def trainable_weights(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def non_trainable_weights(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if not p.requires_grad]

    def count_params(self) -> int:
        """Number of scalar weights (Keras's count, which never includes optimiser state)."""
        if not self.built:
            raise ValueError(
                f"{self.name}: the layer is not built yet (call it on data, or build it, first)"
            )
        return sum(p.numel() for p in self.parameters())

    def get_weights(self) -> list[np.ndarray]:
        """Weights as numpy arrays in Keras's layout and order."""
        return [p.detach().cpu().numpy().copy() for p in self.parameters()]

    def set_weights(self, weights: list[Any]) -> None:
        """Set weights from arrays in Keras's layout and order (as from Keras's
        ``get_weights``)."""
        params = list(self.parameters())
        _check_weight_list(self.name, weights, [tuple(p.shape) for p in params])
        with torch.no_grad():
            for p, w in zip(params, weights):
                p.copy_(torch.as_tensor(np.asarray(w), dtype=p.dtype))

    # -- regularisation and constraints --------------------------------------------------

    @property
    def losses(self) -> list[Tensor]:
        """Regularisation penalties of this layer and its sub-layers (added to the loss)."""
        out: list[Tensor] = []
        for module in self.modules():
            if not isinstance(module, Layer):
                continue
            for name, reg in module._regularized:
                param = module._regularized_param(name)
                if param is not None:
                    out.append(reg(param))
            if module._activity_loss is not None:
                out.append(module._activity_loss)
        return out

    def _regularized_param(self, name: str) -> Tensor | None:
        try:
            return self.get_parameter(name)
        except AttributeError:
            return None

    @torch.no_grad()
    def apply_constraints(self) -> None:
        """Project constrained weights (called by the trainer after every optimiser step)."""
        for module in self.modules():
            if not isinstance(module, Layer):
                continue
            for name, con in module._constrained:
                param = module._regularized_param(name)
                if param is not None:
                    param.copy_(con(param))

    # -- configuration -------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments as a JSON-serialisable dict (Keras's ``get_config``)."""
        config: dict[str, Any] = {
            "name": self.name,
            "trainable": self._trainable,
            "dtype": _dtype_name(self.dtype_policy),
        }
        if self._input_shape_arg is not None:
            config["input_shape"] = list(self._input_shape_arg)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild a layer from :meth:`get_config`'s output."""
        return cls(**config)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


def _positive_int(layer: str, argument: str, value: Any) -> int:
    """``value`` as an int; ``ValueError`` naming the layer and argument unless it is a positive
    integer (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{layer}: {argument} must be a positive integer, got {value!r}")
    return int(value)


def _check_weight_list(name: str, weights: list[Any], shapes: list[tuple[int, ...]]) -> None:
    if not isinstance(weights, (list, tuple)):
        raise TypeError(
            f"{name}: set_weights expects a list of arrays, got {type(weights).__name__}"
        )
    if len(weights) != len(shapes):
        raise ValueError(
            f"{name}: set_weights expected {len(shapes)} arrays with shapes {shapes}, "
            f"got {len(weights)}"
        )
    for i, (w, s) in enumerate(zip(weights, shapes)):
        got = tuple(np.shape(w))
        if got != tuple(s):
            raise ValueError(f"{name}: weight {i} must have shape {tuple(s)}, got {got}")


def _dummy_spec_tensor(t: Any, size: int = 0) -> Any:
    if not isinstance(t, SymbolicTensor):
        return t
    fill = (2, 16) if size == 0 else (3, 17)
    shape = [fill[0] if i == 0 else fill[1] for i in range(len(t.shape))]
    shape = [d if d is not None else shape[i] for i, d in enumerate(t.shape)]
    if t.dtype.is_floating_point:
        out = torch.zeros(shape, dtype=t.dtype)
    else:
        out = torch.zeros(shape, dtype=t.dtype)
    if t.has_mask:
        set_mask(out, torch.ones(shape[:2], dtype=torch.bool))
    return out


def _dummy_outputs(layer: Layer, args: tuple, kwargs: dict, size: int) -> Any:
    def sub(t: Any) -> Any:
        return _dummy_spec_tensor(t, size)

    dargs = map_structure(sub, args)
    dkwargs = {k: map_structure(sub, v) for k, v in kwargs.items()}
    was_training = layer.training
    layer.eval()
    try:
        with torch.no_grad(), _symbolic_scope():
            return layer(*dargs, **dkwargs)
    finally:
        layer.train(was_training)


def _signature(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The parameters of ``fn`` (of ``call`` for layers written Keras-style)."""
    target = getattr(fn, "__self__", None)
    if target is not None and getattr(fn, "__func__", None) is Layer.forward:
        call = getattr(target, "call", None)
        if call is not None:
            return dict(inspect.signature(call).parameters)
    return dict(inspect.signature(fn).parameters)


def _batchless(shapes: Any) -> Any:
    if isinstance(shapes, tuple) and (not shapes or not isinstance(shapes[0], tuple)):
        return (None, *shapes[1:]) if shapes else shapes
    if isinstance(shapes, (list, tuple)):
        return [_batchless(s) for s in shapes]
    return shapes


def _merge_shapes(a: Any, b: Any) -> Any:
    if isinstance(a, (list, tuple)) and a and isinstance(a[0], (list, tuple)):
        return [_merge_shapes(x, y) for x, y in zip(a, b)]
    return tuple(x if x == y else None for x, y in zip(a, b))
