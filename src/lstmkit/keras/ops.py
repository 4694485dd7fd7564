"""``keras.ops``: the subset of Keras 3's ops that custom layers and cells use, on torch tensors.

Each follows Keras 3's name and arguments (``axis``, ``keepdims``): ``convert_to_tensor``,
``cast``, ``shape``, ``zeros``, ``ones``, ``zeros_like``, ``ones_like``, ``arange``; arithmetic
``add``, ``subtract``, ``multiply``, ``divide``, ``matmul``, ``dot``, ``einsum``, ``maximum``,
``minimum``, ``clip``, ``abs``, ``square``, ``sqrt``, ``exp``, ``log``; reductions ``sum``,
``mean``, ``max``, ``min``, ``argmax``; shapes ``reshape``, ``transpose``, ``expand_dims``,
``squeeze``, ``concatenate``, ``stack``, ``split``, ``where``; activations ``sigmoid``,
``tanh``, ``relu``, ``softmax``, ``one_hot``. Anything else: use torch directly.

>>> import lstmkit.keras as keras
>>> keras.ops.sum(keras.ops.ones((2, 3)), axis=-1).tolist()
[3.0, 3.0]
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.layers.base import to_dtype

__all__ = [
    "abs",
    "add",
    "arange",
    "argmax",
    "cast",
    "clip",
    "concatenate",
    "convert_to_tensor",
    "divide",
    "dot",
    "einsum",
    "exp",
    "expand_dims",
    "log",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "multiply",
    "one_hot",
    "ones",
    "ones_like",
    "relu",
    "reshape",
    "shape",
    "sigmoid",
    "softmax",
    "split",
    "sqrt",
    "square",
    "squeeze",
    "stack",
    "subtract",
    "sum",
    "tanh",
    "transpose",
    "where",
    "zeros",
    "zeros_like",
]


def convert_to_tensor(x: Any, dtype: Any = None) -> Tensor:
    t = x if isinstance(x, Tensor) else torch.as_tensor(x)
    return t if dtype is None else t.to(to_dtype(dtype))


def cast(x: Any, dtype: Any) -> Tensor:
    return convert_to_tensor(x).to(to_dtype(dtype))


def shape(x: Any) -> tuple[int, ...]:
    return tuple(convert_to_tensor(x).shape)


def zeros(shape: Any, dtype: Any = "float32") -> Tensor:
    return torch.zeros(
        tuple(shape) if not isinstance(shape, int) else (shape,), dtype=to_dtype(dtype)
    )


def ones(shape: Any, dtype: Any = "float32") -> Tensor:
    return torch.ones(
        tuple(shape) if not isinstance(shape, int) else (shape,), dtype=to_dtype(dtype)
    )


def zeros_like(x: Any, dtype: Any = None) -> Tensor:
    return torch.zeros_like(convert_to_tensor(x), dtype=None if dtype is None else to_dtype(dtype))


def ones_like(x: Any, dtype: Any = None) -> Tensor:
    return torch.ones_like(convert_to_tensor(x), dtype=None if dtype is None else to_dtype(dtype))


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> Tensor:
    if stop is None:
        start, stop = 0, start
    out = torch.arange(start, stop, step)
    return out if dtype is None else out.to(to_dtype(dtype))


def add(x1: Any, x2: Any) -> Tensor:
    return torch.add(convert_to_tensor(x1), convert_to_tensor(x2))


def subtract(x1: Any, x2: Any) -> Tensor:
    return torch.subtract(convert_to_tensor(x1), convert_to_tensor(x2))


def multiply(x1: Any, x2: Any) -> Tensor:
    return torch.multiply(convert_to_tensor(x1), convert_to_tensor(x2))


def divide(x1: Any, x2: Any) -> Tensor:
    return torch.divide(convert_to_tensor(x1), convert_to_tensor(x2))


def matmul(x1: Any, x2: Any) -> Tensor:
    return torch.matmul(convert_to_tensor(x1), convert_to_tensor(x2))


dot = matmul


def einsum(subscripts: str, *operands: Any) -> Tensor:
    return torch.einsum(subscripts, *(convert_to_tensor(o) for o in operands))


def maximum(x1: Any, x2: Any) -> Tensor:
    return torch.maximum(convert_to_tensor(x1), convert_to_tensor(x2))


def minimum(x1: Any, x2: Any) -> Tensor:
    return torch.minimum(convert_to_tensor(x1), convert_to_tensor(x2))


def clip(x: Any, x_min: Any, x_max: Any) -> Tensor:
    return torch.clamp(convert_to_tensor(x), x_min, x_max)


def abs(x: Any) -> Tensor:
    return torch.abs(convert_to_tensor(x))


def square(x: Any) -> Tensor:
    return torch.square(convert_to_tensor(x))


def sqrt(x: Any) -> Tensor:
    return torch.sqrt(convert_to_tensor(x))


def exp(x: Any) -> Tensor:
    return torch.exp(convert_to_tensor(x))


def log(x: Any) -> Tensor:
    return torch.log(convert_to_tensor(x))


def _reduce(fn: Any, x: Any, axis: Any, keepdims: bool) -> Tensor:
    t = convert_to_tensor(x)
    if axis is None:
        out = fn(t)
        return out.reshape([1] * t.dim()) if keepdims else out
    return fn(t, dim=axis, keepdim=keepdims)


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return _reduce(torch.sum, x, axis, keepdims)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return _reduce(torch.mean, x, axis, keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return _reduce(torch.amax, x, axis, keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    return _reduce(torch.amin, x, axis, keepdims)


def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    return torch.argmax(convert_to_tensor(x), dim=axis, keepdim=keepdims)


def reshape(x: Any, newshape: Any) -> Tensor:
    return torch.reshape(convert_to_tensor(x), tuple(newshape))


def transpose(x: Any, axes: Any = None) -> Tensor:
    t = convert_to_tensor(x)
    return t.permute(*(reversed(range(t.dim())) if axes is None else axes))


def expand_dims(x: Any, axis: int) -> Tensor:
    return torch.unsqueeze(convert_to_tensor(x), axis)


def squeeze(x: Any, axis: int | None = None) -> Tensor:
    t = convert_to_tensor(x)
    return t.squeeze() if axis is None else t.squeeze(axis)


def concatenate(xs: Any, axis: int = 0) -> Tensor:
    return torch.cat([convert_to_tensor(x) for x in xs], dim=axis)


def stack(x: Any, axis: int = 0) -> Tensor:
    return torch.stack([convert_to_tensor(t) for t in x], dim=axis)


def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    t = convert_to_tensor(x)
    if isinstance(indices_or_sections, int):
        return list(torch.tensor_split(t, indices_or_sections, dim=axis))
    return list(torch.tensor_split(t, list(indices_or_sections), dim=axis))


def where(condition: Any, x1: Any, x2: Any) -> Tensor:
    return torch.where(convert_to_tensor(condition), convert_to_tensor(x1), convert_to_tensor(x2))


def sigmoid(x: Any) -> Tensor:
    return torch.sigmoid(convert_to_tensor(x))


def tanh(x: Any) -> Tensor:
    return torch.tanh(convert_to_tensor(x))


def relu(x: Any) -> Tensor:
    return torch.relu(convert_to_tensor(x))


def softmax(x: Any, axis: int = -1) -> Tensor:
    return F.softmax(convert_to_tensor(x), dim=axis)


def one_hot(x: Any, num_classes: int, dtype: Any = "float32") -> Tensor:
    return F.one_hot(convert_to_tensor(x).long(), num_classes).to(to_dtype(dtype))
