"""Shape layers with Keras 3's names: ``RepeatVector`` and ``Flatten``.

>>> import torch
>>> RepeatVector(3)(torch.ones(2, 4)).shape
torch.Size([2, 3, 4])
>>> Flatten()(torch.ones(2, 3, 4)).shape
torch.Size([2, 12])
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from lstmkit.layers.base import Layer, _positive_int


class RepeatVector(Layer):
    """``(B, F) -> (B, n, F)``: the input repeated ``n`` times along a new time axis."""

    def __init__(self, n: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n = _positive_int("RepeatVector", "n", n)
        self.built = True

    def forward(self, inputs: Tensor) -> Tensor:
        if inputs.dim() != 2:
            raise ValueError(
                f"RepeatVector: inputs must have shape (batch, features), got {tuple(inputs.shape)}"
            )
        return inputs.unsqueeze(1).expand(-1, self.n, -1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (input_shape[0], self.n, input_shape[1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n": self.n}


class Flatten(Layer):
    """``(B, d1, …, dk) -> (B, d1 · … · dk)``."""

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = data_format
        self.built = True

    def forward(self, inputs: Tensor) -> Tensor:
        return inputs.reshape(inputs.shape[0], -1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        rest = input_shape[1:]
        return (input_shape[0], None if None in rest else math.prod(rest))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "data_format": self.data_format}
