"""Cells written by the user, Keras style, for :class:`lstmkit.layers.RNN`.

A cell is a layer (or any ``torch.nn.Module``) with

* ``state_size``: an int, or a list of ints (one per state tensor, each ``(B, size)``);
* ``call(inputs, states)`` (or ``forward``): ``inputs (B, F)`` and the list of ``states``
  give ``(output, new_states)``, ``output (B, P)`` and ``new_states`` a list (or a single tensor
  when there is one state);
* optionally ``output_size`` (default ``state_size[0]``), ``get_initial_state(batch_size)`` and
  ``state_names`` (what the glass box calls the states; default ``s0, s1, …``).

:class:`CellAdapter` presents such a cell to lstmkit's reference engine, so that masks,
``go_backwards``, ``return_state``, ``stateful``, ``Bidirectional``, recording and ``fit``
behave exactly as for the built-in cells. The engine's state is ``(y_{t-1}, *states)``: the
previous output travels with the states, so a masked step repeats it, as Keras does.

Example (a minimal gated unit, two gates):

>>> import torch
>>> from lstmkit.layers import Layer, RNN
>>> class MGU(Layer):
...     def __init__(self, units, **kw):
...         super().__init__(**kw)
...         self.units, self.state_size = units, units
...     def build(self, input_shape):
...         self.w = self.add_weight((input_shape[-1] + self.units, 2 * self.units))
...     def call(self, inputs, states):
...         h = states[0]
...         f, n = torch.cat([inputs, h], -1).matmul(self.w).chunk(2, -1)
...         f = torch.sigmoid(f)
...         h = (1 - f) * h + f * torch.tanh(n)
...         return h, [h]
>>> tuple(RNN(MGU(4), return_sequences=True)(torch.zeros(2, 5, 3)).shape)
(2, 5, 4)
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lstmkit.layers.base import Layer

__all__ = ["CellAdapter", "StackedRNNCells", "state_sizes"]


def state_sizes(cell: Any, owner: str = "RNN") -> tuple[int, ...]:
    """The cell's ``state_size`` as a tuple of positive ints, checked."""
    size = getattr(cell, "state_size", None)
    sizes = tuple(size) if isinstance(size, (list, tuple)) else (size,)
    if not sizes or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes
    ):
        raise ValueError(
            f"{owner}: cell {type(cell).__name__} must have a state_size (an int >= 1 or a list "
            f"of them), got {size!r}"
        )
    return sizes


def _check_cell(cell: Any, owner: str) -> None:
    if not isinstance(cell, nn.Module):
        raise TypeError(
            f"{owner}: cell must be a layer (a torch.nn.Module with call(inputs, states) and "
            f"state_size), got {type(cell).__name__}"
        )
    if not callable(getattr(cell, "call", None)) and type(cell).forward is nn.Module.forward:
        raise TypeError(f"{owner}: cell {type(cell).__name__} defines neither call() nor forward()")
    state_sizes(cell, owner)


def _takes_training(fn: Any) -> bool:
    try:
        return "training" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class CellAdapter:
    """A user cell as the reference engine sees a cell (:class:`lstmkit.cells.RecurrentCell`'s
    duck type): ``kind = "custom"``, ``input_size``, ``output_size``, ``state_sizes()``,
    ``initial_state``, ``input_transform`` (identity) and ``step``.

    Not a module: the cell stays registered once, under its layer.
    """

    kind = "custom"
    gate_blocks = 1

    def __init__(self, cell: nn.Module, input_size: int, owner: str) -> None:
        self.cell, self.input_size, self.owner = cell, int(input_size), owner
        self.sizes = state_sizes(cell, owner)
        out = getattr(cell, "output_size", None)
        self.output_size = int(out) if isinstance(out, int) and out >= 1 else self.sizes[0]
        names = getattr(cell, "state_names", None)
        if names is None:
            names = tuple(f"s{k}" for k in range(len(self.sizes)))
        names = tuple(names)
        if len(names) != len(self.sizes) or "h" in names or len(set(names)) != len(names):
            raise ValueError(
                f"{owner}: cell.state_names must give {len(self.sizes)} distinct names other "
                f"than 'h' (the output), got {names!r}"
            )
        self.gate_names = names  # what the glass box records each step, with h = the output
        self.training = False
        self._call = cell.call if callable(getattr(cell, "call", None)) else cell.forward
        self._pass_training = _takes_training(self._call)

    # the engine's view ----------------------------------------------------------------------

    @property
    def dtype(self) -> torch.dtype | None:
        p = next(self.cell.parameters(), None)
        return None if p is None else p.dtype

    def state_sizes(self) -> tuple[int, ...]:
        """The engine state: the previous output, then the cell's states."""
        return (self.output_size, *self.sizes)

    def user_initial_state(self, batch: int, device: Any, dtype: torch.dtype) -> list[Tensor]:
        make = getattr(self.cell, "get_initial_state", None)
        if callable(make):
            states = make(batch)
            states = [states] if isinstance(states, Tensor) else list(states)
            return [torch.as_tensor(s, device=device, dtype=dtype) for s in states]
        return [torch.zeros(batch, s, device=device, dtype=dtype) for s in self.sizes]

    def initial_state(
        self, batch_size: int, device: Any = None, dtype: torch.dtype | None = None
    ) -> tuple[Tensor, ...]:
        dt = dtype or self.dtype or torch.get_default_dtype()
        states = self.user_initial_state(batch_size, device, dt)
        return (torch.zeros(batch_size, self.output_size, device=device, dtype=dt), *states)

    def input_transform(self, x: Tensor, dropout_mask: Tensor | None = None) -> Tensor:
        return x if dropout_mask is None else x * dropout_mask.unsqueeze(1)

    def step(
        self,
        x: Tensor,
        state: tuple[Tensor, ...],
        projected_input: bool = True,
        recurrent_dropout_mask: Tensor | None = None,
    ) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        """One step: ``(y_t, *states_t)`` and the states again as the recorded values."""
        states = list(state[1:])
        result = (
            self._call(x, states, training=self.training)
            if self._pass_training
            else self._call(x, states)
        )
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise ValueError(
                f"{self.owner}: cell {type(self.cell).__name__}.call must return "
                f"(output, new_states), got {type(result).__name__}"
            )
        output, new = result
        new = [new] if isinstance(new, Tensor) else list(new)
        batch = x.shape[0]
        if not isinstance(output, Tensor) or tuple(output.shape) != (batch, self.output_size):
            got = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise ValueError(
                f"{self.owner}: cell {type(self.cell).__name__} returned an output of shape "
                f"{got}, expected ({batch}, {self.output_size}) (output_size)"
            )
        shapes = [tuple(s.shape) if isinstance(s, Tensor) else None for s in new]
        if shapes != [(batch, s) for s in self.sizes]:
            raise ValueError(
                f"{self.owner}: cell {type(self.cell).__name__} returned states of shapes "
                f"{shapes}, expected {[(batch, s) for s in self.sizes]} (state_size)"
            )
        return (output, *new), tuple(new)

    def public(self, state: Sequence[Tensor]) -> list[Tensor]:
        """The cell's states of an engine state (without the carried output)."""
        return list(state[1:])


def _weights_of(cell: nn.Module) -> list[Any]:
    if isinstance(cell, Layer):
        return cell.get_weights()
    return [p.detach().cpu().numpy().copy() for p in cell.parameters()]


class StackedRNNCells(Layer):
    """Several cells as one (Keras's ``StackedRNNCells``, what ``RNN([cell, cell])`` builds):
    each cell's output is the next one's input; the states are all the cells' states in order,
    and the output is the last cell's.
    """

    def __init__(self, cells: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(cells, nn.Module) or not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(
                f"StackedRNNCells: cells must be a non-empty list of cells, got {cells!r}"
            )
        for cell in cells:
            _check_cell(cell, "StackedRNNCells")
        self.cells = nn.ModuleList(cells)
        names = [getattr(c, "state_names", None) for c in cells]
        if all(n is not None for n in names):
            self.state_names = [f"{k}.{n}" for k, ns in enumerate(names) for n in ns]

    @property
    def _sizes(self) -> list[tuple[int, ...]]:
        return [state_sizes(c, "StackedRNNCells") for c in self.cells]

    @property
    def state_size(self) -> list[int]:
        return [s for sizes in self._sizes for s in sizes]

    @property
    def output_size(self) -> int:
        out = getattr(self.cells[-1], "output_size", None)
        return out if isinstance(out, int) else self._sizes[-1][0]

    def build(self, input_shape: Any) -> None:
        size = int(input_shape[-1])
        for cell in self.cells:
            if isinstance(cell, Layer) and not cell.built:
                cell.build((None, size))
                cell.built = True
            out = getattr(cell, "output_size", None)
            size = out if isinstance(out, int) else state_sizes(cell)[0]
        self.built = True

    def call(self, inputs: Tensor, states: list[Tensor], training: bool = False) -> Any:
        new_states: list[Tensor] = []
        k = 0
        x = inputs
        for cell, sizes in zip(self.cells, self._sizes):
            mine = list(states[k : k + len(sizes)])
            k += len(sizes)
            fn = cell.call if callable(getattr(cell, "call", None)) else cell.forward
            x, new = fn(x, mine, training=training) if _takes_training(fn) else fn(x, mine)
            new_states.extend([new] if isinstance(new, Tensor) else list(new))
        return x, new_states

    def get_weights(self) -> list[Any]:
        """Every cell's weights, cell after cell (Keras's order)."""
        return [w for cell in self.cells for w in _weights_of(cell)]

    def set_weights(self, weights: list[Any]) -> None:
        weights = list(weights)
        counts = [len(_weights_of(cell)) for cell in self.cells]
        if len(weights) != sum(counts):
            raise ValueError(
                f"{self.name}: expected {sum(counts)} weight arrays ({counts} per cell), got "
                f"{len(weights)}"
            )
        k = 0
        for cell, n in zip(self.cells, counts):
            if isinstance(cell, Layer):
                cell.set_weights(weights[k : k + n])
            else:
                with torch.no_grad():
                    for p, w in zip(cell.parameters(), weights[k : k + n], strict=True):
                        p.copy_(torch.as_tensor(w, dtype=p.dtype))
            k += n

    def get_config(self) -> dict[str, Any]:
        from lstmkit.layers.serialization import serialize

        return {**super().get_config(), "cells": [serialize(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> StackedRNNCells:
        from lstmkit.layers.serialization import deserialize

        config = dict(config)
        config["cells"] = [deserialize(c) for c in config["cells"]]
        return cls(**config)
