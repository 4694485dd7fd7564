"""float64 ``gradcheck`` and ``gradgradcheck`` (test_modules' ``test_grad`` / ``test_gradgrad``,
test_nn's ``test_LSTM_grad_and_gradgrad``): analytic first and second derivatives with
respect to the input, the initial state and every weight agree with finite differences.
lstmkit runs on its default engine (``engine="auto"``)."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck

from ._helpers import CELLS, build, flat, make_hx

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

I, H, T, B = 3, 2, 3, 2
F64 = {"dtype": torch.float64}

MODULE_CASES = {
    "LSTM": ("LSTM", {}),
    "LSTM-bi-2layers": ("LSTM", {"num_layers": 2, "bidirectional": True}),
    "LSTM-proj": ("LSTM", {"proj_size": 1, "batch_first": True}),
    "GRU": ("GRU", {"num_layers": 2}),
    "GRU-bi-nobias": ("GRU", {"bidirectional": True, "bias": False}),
    "RNN_TANH": ("RNN_TANH", {"bidirectional": True}),
    "RNN_RELU": ("RNN_RELU", {"num_layers": 2}),
}


def as_function(module, n_state: int):
    """``f(x, *states, *weights)`` -> every output of ``module``, the weights passed in."""
    names = [n for n, _ in module.named_parameters()]

    def f(x, *rest):
        states, weights = rest[:n_state], rest[n_state:]
        hx = None if not states else (tuple(states) if n_state == 2 else states[0])
        params = dict(zip(names, weights))
        args = (x,) if hx is None else (x, hx)
        return tuple(flat(torch.func.functional_call(module, params, args)))

    return f


def module_inputs(case: str, nn):
    mode, kw = MODULE_CASES[case]
    torch.manual_seed(0)
    m = build(nn, mode, I, H, **kw, **F64)
    batch_first = kw.get("batch_first", False)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), **F64)
    n = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    hx = make_hx(mode, n, B, H, kw.get("proj_size", 0), **F64)
    states = list(hx) if isinstance(hx, tuple) else [hx]
    leaves = [t.detach().requires_grad_() for t in [x, *states, *m.parameters()]]
    return as_function(m, len(states)), leaves


def cell_inputs(cell: str, nn, batched: bool):
    torch.manual_seed(0)
    m = build(nn, cell, I, H, **F64)
    x = torch.randn(*((B,) if batched else ()), I, **F64)
    hx = make_hx(cell, 0, B if batched else None, H, **F64)
    states = list(hx) if isinstance(hx, tuple) else [hx]
    leaves = [t.detach().requires_grad_() for t in [x, *states, *m.parameters()]]
    return as_function(m, len(states)), leaves


@pytest.mark.parametrize("case", MODULE_CASES)
def test_module_gradcheck(nn, case) -> None:
    f, leaves = module_inputs(case, nn)
    assert gradcheck(f, leaves)


@pytest.mark.parametrize("case", MODULE_CASES)
def test_module_gradgradcheck(nn, case) -> None:
    f, leaves = module_inputs(case, nn)
    assert gradgradcheck(f, leaves, fast_mode=True)


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_gradcheck_and_gradgradcheck(nn, cell, batched) -> None:
    f, leaves = cell_inputs(cell, nn, batched)
    assert gradcheck(f, leaves)
    assert gradgradcheck(f, leaves)


def test_unbatched_module_gradcheck(nn) -> None:
    torch.manual_seed(0)
    m = nn.GRU(I, H, num_layers=2, bidirectional=True, **F64)
    x = torch.randn(T, I, **F64, requires_grad=True)
    h = torch.randn(4, H, **F64, requires_grad=True)
    assert gradcheck(lambda x, h: tuple(flat(m(x, h))), (x, h))
    assert gradgradcheck(lambda x, h: tuple(flat(m(x, h))), (x, h))
