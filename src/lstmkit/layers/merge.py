"""Merge layers of the functional API: ``Concatenate``, ``Add``, ``Subtract``, ``Multiply``,
``Average``, ``Maximum``. Each takes a list of tensors of compatible shapes; output masks are the
logical AND of the inputs' masks (as Keras, for masks over ``(B, T)``), except for
``Concatenate``, which follows Keras's own rule (see :meth:`Concatenate.compute_mask`).
"""

from __future__ import annotations

from functools import reduce
from typing import Any

import torch
from torch import Tensor

from lstmkit.layers.base import Layer


class _Merge(Layer):
    supports_masking = True
    _min_inputs = 2

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.built = True

    def _check(self, inputs: Any) -> list[Tensor]:
        cls = type(self).__name__
        if not isinstance(inputs, (list, tuple)) or len(inputs) < self._min_inputs:
            got = len(inputs) if isinstance(inputs, (list, tuple)) else type(inputs).__name__
            raise ValueError(
                f"{cls} '{self.name}': expected a list of at least "
                f"{self._min_inputs} tensors, got {got}"
            )
        return list(inputs)

    def _combine(self, tensors: list[Tensor]) -> Tensor:
        raise NotImplementedError

    def forward(self, inputs: Any) -> Tensor:
        tensors = self._check(inputs)
        shapes = {tuple(t.shape) for t in tensors}
        if len(shapes) > 1 and not isinstance(self, Concatenate):
            raise ValueError(
                f"{type(self).__name__} '{self.name}': inputs must have the same "
                f"shape, got {[tuple(t.shape) for t in tensors]}"
            )
        return self._combine(tensors)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if mask is None:
            return None
        masks = [m for m in (mask if isinstance(mask, (list, tuple)) else [mask]) if m is not None]
        if not masks:
            return None
        return reduce(torch.logical_and, masks)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape[0])


class Concatenate(_Merge):
    """Concatenate along ``axis`` (default the last)."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.axis = axis

    def _combine(self, tensors: list[Tensor]) -> Tensor:
        ranks = {t.dim() for t in tensors}
        if len(ranks) != 1:
            raise ValueError(
                f"Concatenate '{self.name}': inputs must have the same rank, got "
                f"shapes {[tuple(t.shape) for t in tensors]}"
            )
        axis = self.axis % tensors[0].dim()
        for t in tensors[1:]:
            a = [d for i, d in enumerate(t.shape) if i != axis]
            b = [d for i, d in enumerate(tensors[0].shape) if i != axis]
            if a != b:
                raise ValueError(
                    f"Concatenate '{self.name}': shapes must match except on axis {self.axis}, "
                    f"got {[tuple(x.shape) for x in tensors]}"
                )
        return torch.cat(tensors, self.axis)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        """Keras 3's rule: each mask is broadcast to its input's shape (an unmasked input counts
        as all valid), the masks are concatenated like the inputs, then reduced with ``any``
        over the last axis — on the feature axis a step is valid if it is valid in any input;
        on the time axis the masks are joined end to end."""
        masks = mask if isinstance(mask, (list, tuple)) else [mask]
        if mask is None or all(m is None for m in masks):
            return None
        if not isinstance(inputs, (list, tuple)) or len(inputs) != len(masks):
            return super().compute_mask(inputs, mask)
        full = []
        for x, m in zip(inputs, masks):
            if m is None:
                full.append(torch.ones(x.shape, dtype=torch.bool, device=x.device))
            elif m.dim() < x.dim():
                full.append(m.to(torch.bool).unsqueeze(-1).expand(x.shape))
            else:
                full.append(m.to(torch.bool))
        return torch.cat(full, self.axis).any(-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        shapes = [tuple(s) for s in input_shape]
        axis = self.axis % len(shapes[0])
        sizes = [s[axis] for s in shapes]
        total = None if any(d is None for d in sizes) else sum(sizes)
        out = list(shapes[0])
        out[axis] = total
        return tuple(out)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}


class Add(_Merge):
    """Element-wise sum."""

    def _combine(self, tensors: list[Tensor]) -> Tensor:
        return reduce(torch.add, tensors)


class Subtract(_Merge):
    """``inputs[0] - inputs[1]`` (exactly two inputs)."""

    def _check(self, inputs: Any) -> list[Tensor]:
        tensors = super()._check(inputs)
        if len(tensors) != 2:
            raise ValueError(
                f"Subtract '{self.name}': expected exactly 2 inputs, got {len(tensors)}"
            )
        return tensors

    def _combine(self, tensors: list[Tensor]) -> Tensor:
        return tensors[0] - tensors[1]


class Multiply(_Merge):
    """Element-wise product."""

    def _combine(self, tensors: list[Tensor]) -> Tensor:
        return reduce(torch.mul, tensors)


class Average(_Merge):
    """Element-wise mean."""

    def _combine(self, tensors: list[Tensor]) -> Tensor:
        return reduce(torch.add, tensors) / len(tensors)


class Maximum(_Merge):
    """Element-wise maximum."""

    def _combine(self, tensors: list[Tensor]) -> Tensor:
        return reduce(torch.maximum, tensors)
