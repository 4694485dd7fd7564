"""What every engine promises: run one cell over a whole sequence, or a stack of cells.

Shapes: ``x (B, T, I)`` batch-first; ``outputs (B, T, P)`` aligned with the input's time index
(also when the sequence is processed in reverse); states are tuples of ``(B, P)`` / ``(B, H)``
tensors (``LSTMState(h, c)`` or ``(h,)``).

Masking follows Keras: where ``mask[b, t]`` is false the state is carried over unchanged and
the output is the previous step's output (zero before the first valid step), or zero if
``zero_output_for_mask``. A right-padded mask with ``zero_output_for_mask=True`` is exactly
torch's ``PackedSequence`` semantics.

Recording: with ``record=True`` an engine also returns every step's gate activations and states
as ``(B, T, ·)`` tensors keyed by name (``i, f, g, o, c, h`` for the LSTM; ``r, z, n, h`` for the
GRU; ``h`` for SimpleRNN), aligned with the input's time index.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from lstmkit.cells import RecurrentCell

State = tuple[Tensor, ...]


@dataclass(frozen=True)
class RunOptions:
    """How to run a sequence (everything but the weights, the inputs and the initial state).

    Attributes:
        mask: ``(B, T)`` bool, true where the step is valid; ``None`` = all valid.
        reverse: process ``t = T-1 … 0`` (outputs stay aligned with the input's time index).
        input_dropout_mask: ``(B, I)`` or ``(G, B, I)``, multiplied into ``x`` (constant in time).
        recurrent_dropout_mask: ``(B, P)`` or ``(G, B, P)``, multiplied into ``h_{t-1}``.
        zero_output_for_mask: masked steps output zeros instead of the previous output.
        record: also return every step's gates and states.
    """

    mask: Tensor | None = None
    reverse: bool = False
    input_dropout_mask: Tensor | None = None
    recurrent_dropout_mask: Tensor | None = None
    zero_output_for_mask: bool = False
    record: bool = False


class SequenceResult(NamedTuple):
    """``outputs (B, T, P)``, the final ``state``, and ``record`` (name -> ``(B, T, ·)``)."""

    outputs: Tensor
    state: State
    record: dict[str, Tensor] | None


class StackResult(NamedTuple):
    """A stack's ``outputs (B, T, D·P)``, final states ``[layer][direction]`` and records."""

    outputs: Tensor
    states: list[list[State]]
    records: list[list[dict[str, Tensor] | None]]


def active_transforms() -> set[str]:
    r"""The ``torch.func`` transforms the current call runs under, e.g. ``{"vmap", "grad"}``
    (``jacrev`` is ``vmap`` over ``grad``; ``functional_call`` alone is none). Engines whose
    kernels have no batching rule, or are ``autograd.Function``\ s of the old style, decline
    them so that ``auto`` picks one that computes the right answer."""
    if not torch._C._are_functorch_transforms_active():
        return set()
    stack = torch._C._functorch.get_interpreter_stack() or []
    return {str(i.key()).rsplit(".", 1)[-1].lower() for i in stack}


class Engine:
    """Base class of engines. Subclasses implement :meth:`unsupported` and :meth:`run`;
    :meth:`run_stack` composes :meth:`run` unless an engine has a faster whole-stack path."""

    name: str = "engine"
    records: bool = True  # whether the engine can return every step's gates (RunOptions.record)

    def available(self) -> bool:
        """Whether this engine can run on this machine at all."""
        return True

    def unsupported(self, cell: RecurrentCell, x: Tensor, opts: RunOptions) -> str | None:
        """``None`` if this engine computes ``cell`` with ``opts`` exactly, else the reason."""
        raise NotImplementedError

    def run(self, cell: RecurrentCell, x: Tensor, state: State, opts: RunOptions) -> SequenceResult:
        raise NotImplementedError

    def declines(self, cell: RecurrentCell, x: Tensor, opts: RunOptions) -> str | None:
        """For ``engine="auto"`` only: why to pass over this engine although it supports the
        configuration (another engine is faster there); ``None`` = take it."""
        return None

    def declines_stack(
        self, cells: list[list[RecurrentCell]], x: Tensor, record: bool
    ) -> str | None:
        """:meth:`declines` for :meth:`run_stack`."""
        return None

    def unsupported_stack(
        self, cells: list[list[RecurrentCell]], x: Tensor, record: bool
    ) -> str | None:
        opts = RunOptions(record=record)
        for layer in cells:
            for cell in layer:
                reason = self.unsupported(cell, x, opts)
                if reason:
                    return reason
        return None

    def run_stack(
        self,
        cells: list[list[RecurrentCell]],
        x: Tensor,
        states: list[list[State]],
        *,
        dropout: float = 0.0,
        training: bool = False,
        record: bool = False,
    ) -> StackResult:
        """Run layers of (1 or 2 direction) cells, as ``torch.nn.LSTM(num_layers, bidirectional,
        dropout)`` does: each layer's directions are concatenated; dropout between layers."""
        out_states: list[list[State]] = []
        records: list[list[dict[str, Tensor] | None]] = []
        inputs = x
        for k, layer in enumerate(cells):
            outs, layer_states, layer_records = [], [], []
            for d, cell in enumerate(layer):
                res = self.run(
                    cell, inputs, states[k][d], RunOptions(reverse=d == 1, record=record)
                )
                outs.append(res.outputs)
                layer_states.append(res.state)
                layer_records.append(res.record)
            inputs = outs[0] if len(outs) == 1 else torch.cat(outs, -1)
            if dropout and training and k < len(cells) - 1:
                inputs = torch.nn.functional.dropout(inputs, dropout, training=True)
            out_states.append(layer_states)
            records.append(layer_records)
        return StackResult(inputs, out_states, records)


# -- recording hooks: how the glass box (lstmkit.inspect) sees inside any layer ---------------

RecordSink = Callable[[Any, str, dict[str, Tensor], Tensor | None], None]
_SINKS: contextvars.ContextVar[tuple[RecordSink, ...]] = contextvars.ContextVar(
    "lstmkit_record_sinks", default=()
)


@contextmanager
def recording(sink: RecordSink) -> Iterator[None]:
    """While active, layers run their engines with ``record=True`` and call
    ``sink(owner_module, direction, record, mask)`` for every recurrent run."""
    token = _SINKS.set((*_SINKS.get(), sink))
    try:
        yield
    finally:
        _SINKS.reset(token)


def recording_active() -> bool:
    """Whether some :func:`recording` context is active."""
    return bool(_SINKS.get())


def emit(owner: Any, direction: str, record: dict[str, Tensor] | None, mask: Tensor | None) -> None:
    """Hand a run's record to every active sink (called by layers, not by users)."""
    if record is None:
        return
    for sink in _SINKS.get():
        sink(owner, direction, record, mask)
