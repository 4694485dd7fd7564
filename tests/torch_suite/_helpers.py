"""Shared helpers: twin modules (torch's and the one under test with the same weights), inputs
shaped for a module, flattening of outputs, and the comparison with DESIGN.md's tolerances."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence

# DESIGN.md: a drop-in equals its reference to 1e-5 (float32) and 1e-10 (float64)
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}

# the modes of torch's RNNBase, and how to build each
MODES = ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
CELLS = ("LSTMCell", "GRUCell", "RNNCell_TANH", "RNNCell_RELU")


def class_and_kwargs(mode: str) -> tuple[str, dict[str, Any]]:
    """``"RNN_RELU"`` -> ``("RNN", {"nonlinearity": "relu"})``; ``"LSTM"`` -> ``("LSTM", {})``."""
    name, _, nl = mode.partition("_")
    return name, ({"nonlinearity": nl.lower()} if nl else {})


def build(nn: Any, mode: str, *args: Any, **kwargs: Any) -> torch.nn.Module:
    name, extra = class_and_kwargs(mode)
    return getattr(nn, name)(*args, **extra, **kwargs)


def twin(nn: Any, mode: str, *args: Any, seed: int = 0, **kwargs: Any):
    """``(reference, under_test)``: a ``torch.nn`` module and ``nn``'s, holding the same
    weights (copied through ``state_dict``)."""
    torch.manual_seed(seed)
    ref = build(torch.nn, mode, *args, **kwargs)
    mine = build(nn, mode, *args, **kwargs)
    mine.load_state_dict(ref.state_dict())
    return ref, mine


def flat(result: Any) -> list[Tensor]:
    """Every tensor of a module's result, in order: ``(out, (h, c))`` -> ``[out, h, c]``; a
    PackedSequence contributes its data."""
    if isinstance(result, PackedSequence):
        return [result.data]
    if isinstance(result, Tensor):
        return [result]
    return [t for item in result for t in flat(item)]


def state_shapes(mode: str, n: int, batch: int | None, hidden: int, proj: int = 0):
    """The shapes of ``hx``: ``n`` is D·num_layers for a module, 0 for a cell; ``batch`` is
    None for an unbatched input."""
    lead = (() if n == 0 else (n,)) + (() if batch is None else (batch,))
    h = (*lead, proj or hidden)
    return [h, (*lead, hidden)] if mode.startswith("LSTM") else [h]


def make_hx(mode: str, n: int, batch: int | None, hidden: int, proj: int = 0, **factory):
    """Random ``hx`` for a module or a cell: a tensor, or ``(h_0, c_0)`` for the LSTMs."""
    ts = [torch.randn(s, **factory) for s in state_shapes(mode, n, batch, hidden, proj)]
    return tuple(ts) if len(ts) == 2 else ts[0]


def hx_leaves(hx: Any) -> list[Tensor]:
    if hx is None:
        return []
    return list(hx) if isinstance(hx, tuple) else [hx]


def loss_of(tensors: list[Tensor]) -> Tensor:
    """A fixed, non-symmetric function of every output (so each element's gradient differs)."""
    total = tensors[0].new_zeros(())
    for t in tensors:
        weights = torch.arange(t.numel(), dtype=t.dtype).reshape(t.shape).mul(0.37).cos()
        total = total + (t * weights).sum()
    return total


def run_with_grads(module: torch.nn.Module, *inputs: Any) -> tuple[list[Tensor], list[Tensor]]:
    """Outputs of ``module(*inputs)`` and the gradients of :func:`loss_of` them with respect to
    every parameter and every input tensor that requires grad."""
    outs = flat(module(*inputs))
    leaves = [*module.parameters()]
    for item in inputs:
        data = item.data if isinstance(item, PackedSequence) else item
        leaves += [t for t in hx_leaves(data) if t.requires_grad]
    grads = torch.autograd.grad(loss_of(outs), leaves, allow_unused=True)
    return outs, [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, leaves)]


def assert_close(got: Tensor, want: Tensor, what: str = "value") -> None:
    """Same shape and dtype; ``max|got - want| <= tol · max(1, max|want|)``."""
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if want.numel() == 0:
        return
    err = float((got.detach() - want.detach()).abs().max())
    scale = max(1.0, float(want.detach().abs().max()))
    tol = TOL.get(want.dtype, 1e-2)
    assert err <= tol * scale, f"{what}: max abs difference {err:.3g} > {tol:g}·{scale:.3g}"


def assert_all_close(got: list[Tensor], want: list[Tensor], what: str = "value") -> None:
    assert len(got) == len(want), f"{what}: {len(got)} tensors, expected {len(want)}"
    for k, (a, b) in enumerate(zip(got, want)):
        assert_close(a, b, f"{what}[{k}]")


def raised(call: Any) -> BaseException | None:
    """The exception ``call()`` raises, or None."""
    try:
        call()
    except Exception as e:  # the class is what the tests look at
        return e
    return None
