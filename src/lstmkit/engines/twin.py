"""Differentiable twins of the compiled kernel's sequence functions, for higher-order gradients.

The C++ kernel's backward (``csrc/compiled.cpp``) computes first derivatives only; it is not
itself a graph that autograd can differentiate again. When a backward pass runs with
``create_graph=True`` (gradient penalties, MAML, Hessian-vector products, ``gradgradcheck``),
:mod:`lstmkit.engines.compiled` therefore recomputes the sequence with the functions here, which
take the kernel's exact inputs and return its exact outputs through :mod:`lstmkit.functional`'s
step functions, and differentiates that graph instead. Plain first-order training never comes
here, so it keeps the kernel's speed.

Shapes follow the kernel: ``xw (T, B, G·H)`` is the input projection of every step *without*
``b_ih`` (the kernel adds it); state buffers have ``T+1`` slots indexed by input time (forward
processing writes slot ``t+1`` from slot ``t``, reverse processing slot ``t`` from slot ``t+1``);
``mask (B, T)`` bool; ``rec_mask (1, B, P)`` (shared by the gate blocks) or ``(G, B, P)``;
``out (T, B, P)`` only when there is a mask (else an empty tensor).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from lstmkit import functional as fn

#: ``(x_t, state) -> (new_state, gates)`` with ``state`` a tuple of tensors and ``gates`` a tuple.
Step = Callable[[Tensor, tuple[Tensor, ...]], tuple[tuple[Tensor, ...], tuple[Tensor, ...]]]


def _rec_mask(rec_mask: Tensor | None) -> Tensor | None:
    if rec_mask is None:
        return None
    return rec_mask[0] if rec_mask.shape[0] == 1 else rec_mask


def _scan(
    step: Step,
    xw: Tensor,
    b_ih: Tensor | None,
    state: tuple[Tensor, ...],
    mask: Tensor | None,
    reverse: bool,
    zero_output: bool,
) -> tuple[list[Tensor], Tensor, Tensor]:
    """Run ``step`` over time as the kernel does; returns ``(state buffers, gates, out)``.

    Where ``mask`` is false the state is carried over and the output is zeros
    (``zero_output``) or the previous step's output, in processing order."""
    steps = xw.shape[0]
    xs = xw.unbind(0)
    valid = mask.t().unsqueeze(-1).unbind(0) if mask is not None else None  # T × (B, 1)
    bufs: list[list[Tensor | None]] = [[None] * (steps + 1) for _ in state]
    for k, s in enumerate(state):
        bufs[k][steps if reverse else 0] = s
    gates: list[Tensor | None] = [None] * steps
    outs: list[Tensor | None] = [None] * steps
    prev_out = torch.zeros_like(state[0])
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        x_t = xs[t] if b_ih is None else xs[t] + b_ih
        new, g = step(x_t, state)
        gates[t] = torch.cat(g, -1) if g else xw.new_empty(0)
        if valid is not None:
            out = torch.where(
                valid[t], new[0], torch.zeros_like(prev_out) if zero_output else prev_out
            )
            new = tuple(torch.where(valid[t], n, s) for n, s in zip(new, state))
            outs[t] = prev_out = out
        state = new
        for k, s in enumerate(state):
            bufs[k][t if reverse else t + 1] = s
    stacked = [torch.stack(b) for b in bufs]  # type: ignore[arg-type]
    out_t = torch.stack(outs) if valid is not None else xw.new_empty(0)  # type: ignore[arg-type]
    return stacked, torch.stack(gates), out_t  # type: ignore[arg-type]


def lstm_sequence(
    xw: Tensor,
    h0: Tensor,
    c0: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    peephole: Tensor | None,
    ln_hh_w: Tensor | None,
    ln_hh_b: Tensor | None,
    ln_c_w: Tensor | None,
    ln_c_b: Tensor | None,
    w_hr: Tensor | None,
    rec_mask: Tensor | None,
    mask: Tensor | None,
    coupled: bool,
    reverse: bool,
    zero_output: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The kernel's ``lstm_forward``: ``hbuf (T+1, B, P)``, ``cbuf (T+1, B, H)``,
    ``gates (T, B, 4H)`` (blocks ``i, f, g, o``; ``f = 1 - i`` when ``coupled``), ``out``.
    ``peephole (3, H)`` holds ``p_i, p_f, p_o``."""
    pe = fn.Peephole(*peephole.unbind(0)) if peephole is not None else None
    ln = None
    if ln_hh_w is not None:
        # The input layer norm is already in ``xw``; the step reads only the other four.
        ln = fn.LayerNorm(None, None, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b)  # type: ignore[arg-type]
    rmask = _rec_mask(rec_mask)

    def step(
        x_t: Tensor, state: tuple[Tensor, ...]
    ) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        new, gates = fn.lstm_step(
            x_t,
            (state[0], state[1]),
            None,
            w_hh,
            None,
            b_hh,
            peephole=pe,
            layer_norm=ln,
            coupled=coupled,
            weight_hr=w_hr,
            recurrent_dropout_mask=rmask,
            projected_input=True,
        )
        return tuple(new), tuple(gates)

    (hbuf, cbuf), gates, out = _scan(step, xw, b_ih, (h0, c0), mask, reverse, zero_output)
    return hbuf, cbuf, gates, out


def gru_sequence(
    xw: Tensor,
    h0: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    rec_mask: Tensor | None,
    mask: Tensor | None,
    reset_after: bool,
    reverse: bool,
    zero_output: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """The kernel's ``gru_forward``: ``hbuf (T+1, B, H)``, ``gates (T, B, 3H)`` (``r, z, n``),
    ``out``."""
    rmask = _rec_mask(rec_mask)

    def step(
        x_t: Tensor, state: tuple[Tensor, ...]
    ) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        h, gates = fn.gru_step(
            x_t,
            state[0],
            None,
            w_hh,
            None,
            b_hh,
            reset_after=reset_after,
            recurrent_dropout_mask=rmask,
            projected_input=True,
        )
        return (h,), tuple(gates)

    (hbuf,), gates, out = _scan(step, xw, b_ih, (h0,), mask, reverse, zero_output)
    return hbuf, gates, out


def rnn_sequence(
    xw: Tensor,
    h0: Tensor,
    w_hh: Tensor,
    b_ih: Tensor | None,
    b_hh: Tensor | None,
    rec_mask: Tensor | None,
    mask: Tensor | None,
    relu: bool,
    reverse: bool,
    zero_output: bool,
) -> tuple[Tensor, Tensor]:
    """The kernel's ``rnn_forward``: ``hbuf (T+1, B, H)``, ``out``."""
    rmask = _rec_mask(rec_mask)
    activation = torch.relu if relu else torch.tanh

    def step(
        x_t: Tensor, state: tuple[Tensor, ...]
    ) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        h, _ = fn.rnn_step(
            x_t,
            state[0],
            None,
            w_hh,
            None,
            b_hh,
            activation=activation,
            recurrent_dropout_mask=rmask,
            projected_input=True,
        )
        return (h,), ()

    (hbuf,), _, out = _scan(step, xw, b_ih, (h0,), mask, reverse, zero_output)
    return hbuf, out


def differentiate(
    twin: Callable[..., tuple[Tensor, ...]],
    inputs: tuple[Tensor | None, ...],
    flags: tuple[bool, ...],
    grads: tuple[Tensor | None, ...],
    needs_input_grad: tuple[bool, ...],
) -> tuple[Tensor | None, ...]:
    """The vector-Jacobian product of ``twin(*inputs, *flags)`` with ``grads``, as a graph
    (``create_graph=True``), so that it can be differentiated again. One entry per input and
    flag, ``None`` where no gradient is needed."""
    wanted = [
        k for k, t in enumerate(inputs) if t is not None and needs_input_grad[k] and t.requires_grad
    ]
    result: list[Tensor | None] = [None] * len(needs_input_grad)
    with torch.enable_grad():
        outputs = twin(*inputs, *flags)
    pairs = [(o, g) for o, g in zip(outputs, grads) if g is not None and o.requires_grad]
    if not wanted or not pairs:
        return tuple(result)
    found = torch.autograd.grad(
        [o for o, _ in pairs],
        [inputs[k] for k in wanted],  # type: ignore[misc]
        [g for _, g in pairs],
        create_graph=True,
        allow_unused=True,
    )
    for k, g in zip(wanted, found):
        result[k] = g
    return tuple(result)
