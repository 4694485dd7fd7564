"""The fused engine: torch's own RNN kernels (``torch._VF.lstm/gru/rnn_*``), the code behind
``torch.nn.LSTM`` — oneDNN on CPU, cuDNN on CUDA.

It computes the plain cells only (default activations, no peephole / layer norm / coupling,
GRU with ``reset_after=True``), without masks or recurrent dropout, and cannot record gates.
A Keras-style cell with a single bias gets a zero ``bias_hh``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lstmkit import activations
from lstmkit.cells import RecurrentCell
from lstmkit.engines.base import (
    Engine,
    RunOptions,
    SequenceResult,
    StackResult,
    State,
    active_transforms,
)
from lstmkit.functional import LSTMState


def _flat_weights(cell: RecurrentCell, with_bias: bool) -> list[Tensor]:
    weights = [cell.weight_ih, cell.weight_hh]
    if with_bias:
        b_ih = (
            cell.bias_ih
            if cell.bias_ih is not None
            else cell.weight_ih.new_zeros(cell.weight_ih.shape[0])
        )
        b_hh = cell.bias_hh if cell.bias_hh is not None else b_ih.new_zeros(b_ih.shape)
        weights += [b_ih, b_hh]
    if getattr(cell, "weight_hr", None) is not None:
        weights.append(cell.weight_hr)
    return weights


def _call_vf(
    cells: list[list[RecurrentCell]],
    x: Tensor,
    hx: list[Tensor],
    dropout: float,
    training: bool,
) -> tuple[Tensor, list[Tensor]]:
    """One call of torch's fused kernel for a whole stack (batch-first)."""
    first = cells[0][0]
    with_bias = any(
        c.bias_ih is not None or c.bias_hh is not None for layer in cells for c in layer
    )
    weights = [w for layer in cells for c in layer for w in _flat_weights(c, with_bias)]
    bidirectional = len(cells[0]) == 2
    num_layers = len(cells)
    if first.kind == "lstm":
        out, h, c = torch._VF.lstm(
            x, tuple(hx), weights, with_bias, num_layers, dropout, training, bidirectional, True
        )
        return out, [h, c]
    if first.kind == "gru":
        out, h = torch._VF.gru(
            x, hx[0], weights, with_bias, num_layers, dropout, training, bidirectional, True
        )
        return out, [h]
    fn = (
        torch._VF.rnn_relu
        if activations.is_default(first.activation, "relu")
        else (torch._VF.rnn_tanh)
    )
    out, h = fn(x, hx[0], weights, with_bias, num_layers, dropout, training, bidirectional, True)
    return out, [h]


class FusedEngine(Engine):
    """torch's fused RNN kernels (oneDNN / cuDNN)."""

    name = "fused"
    records = False

    def unsupported(self, cell: RecurrentCell, x: Tensor, opts: RunOptions) -> str | None:
        if not cell.is_plain:
            return "the cell has a variant or activation that torch's kernels do not compute"
        if opts.record:
            return "torch's kernels do not expose the gates (recording)"
        if opts.mask is not None and not bool(opts.mask.all()):
            return "torch's kernels do not take a mask"
        if opts.recurrent_dropout_mask is not None:
            return "torch's kernels have no recurrent dropout"
        if opts.input_dropout_mask is not None and opts.input_dropout_mask.dim() != 2:
            return "per-gate input dropout masks"
        if x.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            return f"dtype {x.dtype}"
        if "vmap" in active_transforms():
            # torch's own kernels fail under vmap ("output with shape ... doesn't match the
            # broadcast shape"), torch.nn.LSTM included; the reference loop is plain torch ops.
            return "torch.func.vmap (jacrev, per-sample gradients): no batching rule in torch"
        return None

    def run(self, cell: RecurrentCell, x: Tensor, state: State, opts: RunOptions) -> SequenceResult:
        if opts.input_dropout_mask is not None:
            x = x * opts.input_dropout_mask.unsqueeze(1)
        if opts.reverse:
            x = x.flip(1)
        hx = [s.unsqueeze(0) for s in state]
        out, final = _call_vf([[cell]], x, hx, 0.0, False)
        if opts.reverse:
            out = out.flip(1)
        new_state = tuple(s.squeeze(0) for s in final)
        if cell.kind == "lstm":
            new_state = LSTMState(*new_state)
        return SequenceResult(out, new_state, None)

    def unsupported_stack(
        self, cells: list[list[RecurrentCell]], x: Tensor, record: bool
    ) -> str | None:
        reason = super().unsupported_stack(cells, x, record)
        if reason:
            return reason
        kinds = {c.kind for layer in cells for c in layer}
        if len(kinds) != 1:
            return "a stack mixing cell kinds"
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
        n_state = len(states[0][0])
        hx = [torch.stack([s[j] for layer in states for s in layer]) for j in range(n_state)]
        out, final = _call_vf(cells, x, hx, dropout, training)
        directions = len(cells[0])
        out_states: list[list[State]] = []
        for k in range(len(cells)):
            layer_states = []
            for d in range(directions):
                st = tuple(f[k * directions + d] for f in final)
                layer_states.append(LSTMState(*st) if cells[0][0].kind == "lstm" else st)
            out_states.append(layer_states)
        return StackResult(out, out_states, [[None] * directions for _ in cells])
