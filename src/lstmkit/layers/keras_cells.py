"""Keras 3's cell layers: ``SimpleRNNCell``, ``LSTMCell``, ``GRUCell``.

Each takes its layer's arguments (``LSTMCell(units, activation=…, dropout=…)`` as
``LSTM(units, …)``) and holds a layer of that kind (``cell.layer``) whose lstmkit cell does the
work, so that

* ``RNN(LSTMCell(8))`` is ``LSTM(8)``: the same numbers, on every engine (not the Python loop
  a user's cell runs on), with the same ``get_weights`` layout (Keras's ``kernel``,
  ``recurrent_kernel``, ``bias``);
* a cell called on one step, ``cell(x_t, states) -> (h_t, [h_t, c_t])``, is Keras's cell API,
  and such cells can be stacked (``RNN([LSTMCell(8), LSTMCell(8)])``) or used inside a user's
  cell.

>>> import torch
>>> from lstmkit.layers import RNN
>>> cell = LSTMCell(4)
>>> h, (h1, c1) = cell(torch.zeros(2, 3), [torch.zeros(2, 4), torch.zeros(2, 4)])
>>> tuple(h.shape), cell.state_size
((2, 4), [4, 4])
>>> tuple(RNN(cell, return_sequences=True)(torch.zeros(2, 5, 3)).shape)
(2, 5, 4)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import Tensor

from lstmkit.layers.base import Layer
from lstmkit.layers.recurrent import GRU, LSTM, SimpleRNN, _BuiltinRNN

__all__ = ["GRUCell", "LSTMCell", "SimpleRNNCell"]


class _KerasCell(Layer):
    """A Keras cell over the lstmkit cell of a built-in layer (``self.layer``)."""

    _layer_class: type[_BuiltinRNN] = _BuiltinRNN

    def __init__(self, units: int, **kwargs: Any) -> None:
        own = {k: kwargs.pop(k) for k in ("name", "trainable", "dtype") if k in kwargs}
        for k in ("input_shape", "input_dim", "batch_input_shape"):
            kwargs.pop(k, None)
        for k in ("return_sequences", "return_state", "go_backwards", "stateful", "unroll"):
            if k in kwargs:
                raise TypeError(f"{type(self).__name__}: unexpected keyword argument {k!r}")
        super().__init__(**own)
        self.layer = self._layer_class(units, name=f"{self.name}_layer", **kwargs)
        if "dtype" in own:
            self.layer.dtype_policy = self.dtype_policy
        self.units = self.layer.units

    @property
    def state_size(self) -> list[int] | int:
        sizes = self._sizes()
        return list(sizes) if len(sizes) > 1 else sizes[0]

    @property
    def output_size(self) -> int:
        if self.layer.cell is not None:
            return self.layer.cell.output_size
        return getattr(self.layer, "proj_size", 0) or self.units

    def _sizes(self) -> tuple[int, ...]:
        if self.layer.cell is not None:
            return self.layer.cell.state_sizes()
        if isinstance(self.layer, LSTM):
            return (self.output_size, self.units)  # h (projected if proj_size), c
        return (self.units,)

    def build(self, input_shape: Any) -> None:
        self.layer.build((None, None, int(input_shape[-1])))
        self.built = True

    def call(self, inputs: Tensor, states: Any, training: bool = False) -> Any:
        """One step: ``inputs (B, F)``, ``states`` a list (``[h, c]`` / ``[h]``)."""
        states = [states] if isinstance(states, Tensor) else list(states)
        cell = self.layer.cell
        state = self.layer._engine_state(tuple(states), inputs.unsqueeze(1))
        new_state, _ = cell.step(inputs, state)
        return new_state[0], list(new_state)

    def get_initial_state(self, batch_size: int) -> list[Tensor]:
        return list(self.layer.cell.initial_state(batch_size))

    def get_weights(self) -> list[np.ndarray]:
        return self.layer.get_weights()

    def set_weights(self, weights: list[Any]) -> None:
        self.layer.set_weights(weights)

    def get_config(self) -> dict[str, Any]:
        config = self.layer.get_config()
        for k in (
            "name",
            "return_sequences",
            "return_state",
            "go_backwards",
            "stateful",
            "unroll",
            "zero_output_for_mask",
            "use_cudnn",
        ):
            config.pop(k, None)
        return {**super().get_config(), **config}


class SimpleRNNCell(_KerasCell):
    """Keras 3's ``SimpleRNNCell`` (the arguments of :class:`~lstmkit.layers.SimpleRNN`)."""

    _layer_class = SimpleRNN


class LSTMCell(_KerasCell):
    """Keras 3's ``LSTMCell`` (the arguments of :class:`~lstmkit.layers.LSTM`)."""

    _layer_class = LSTM


class GRUCell(_KerasCell):
    """Keras 3's ``GRUCell`` (the arguments of :class:`~lstmkit.layers.GRU`)."""

    _layer_class = GRU
