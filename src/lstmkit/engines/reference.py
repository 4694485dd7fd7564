"""The reference engine: a readable Python loop over :mod:`lstmkit.functional` — the
specification every other engine is tested against.

Per sequence: the input projection ``W_ih x + b_ih`` of all steps in one matrix product, then one
call of the cell's step per time step (``xw.unbind`` rather than indexing, so that backward stays
linear in ``T``). It supports every cell variant, masks, direction, dropout masks and recording.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lstmkit.cells import RecurrentCell
from lstmkit.engines.base import Engine, RunOptions, SequenceResult, State


class ReferenceEngine(Engine):
    """Python loop over time; supports everything."""

    name = "reference"

    def unsupported(self, cell: RecurrentCell, x: Tensor, opts: RunOptions) -> str | None:
        return None

    def run(self, cell: RecurrentCell, x: Tensor, state: State, opts: RunOptions) -> SequenceResult:
        batch, steps = x.shape[0], x.shape[1]
        xw = cell.input_transform(x, opts.input_dropout_mask)  # (B, T, G·H)
        x_steps = xw.unbind(1)
        mask_steps = opts.mask.unsqueeze(-1).unbind(1) if opts.mask is not None else None
        order = range(steps - 1, -1, -1) if opts.reverse else range(steps)

        outputs: list[Tensor] = [xw.new_empty(0)] * steps
        rec: dict[str, list[Tensor]] = {}
        prev_output = x.new_zeros(batch, cell.output_size)
        for t in order:
            new_state, gates = cell.step(
                x_steps[t],
                state,
                projected_input=True,
                recurrent_dropout_mask=opts.recurrent_dropout_mask,
            )
            output = new_state[0]
            if mask_steps is not None:
                valid = mask_steps[t]  # (B, 1)
                new_state = _like(
                    state, [torch.where(valid, n, s) for n, s in zip(new_state, state)]
                )
                carried = torch.zeros_like(output) if opts.zero_output_for_mask else prev_output
                output = torch.where(valid, output, carried)
            state = new_state
            prev_output = output
            outputs[t] = output
            if opts.record:
                for name, value in zip(cell.gate_names, gates):
                    rec.setdefault(name, [xw.new_empty(0)] * steps)[t] = value
                if cell.kind == "lstm":
                    rec.setdefault("c", [xw.new_empty(0)] * steps)[t] = state[1]
                rec.setdefault("h", [xw.new_empty(0)] * steps)[t] = state[0]
        out = torch.stack(outputs, 1) if steps else x.new_zeros(batch, 0, cell.output_size)
        record = {k: torch.stack(v, 1) for k, v in rec.items()} if opts.record and steps else None
        return SequenceResult(out, state, record)


def _like(state: State, values: list[Tensor]) -> State:
    """A state of the same kind (``LSTMState`` or plain tuple) holding ``values``."""
    return type(state)(*values) if hasattr(state, "_fields") else tuple(values)
