"""Forward and backward numerics against ``torch.nn`` with copied weights (test_nn's
``test_rnn_initial_hidden_state`` / ``test_variable_sequence`` style comparisons, over the
configurations of module_db's RNN, GRU, LSTM and cell entries).

The reference is always ``torch.nn``; under the ``torch`` id the module under test is a second
``torch.nn`` module (a check of the harness itself).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from ._helpers import CELLS, MODES, assert_all_close, make_hx, run_with_grads, twin

# torch warns that oneDNN has no projection kernel (and falls back to its own)
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

I, H, P, T, B = 3, 4, 2, 3, 2

CONFIGS = [
    (mode, layers, bidir, batch_first, bias, proj)
    for mode in MODES
    for layers, bidir, batch_first, bias in itertools.product((1, 2), *[(False, True)] * 3)
    for proj in ((0, P) if mode == "LSTM" else (0,))
]


def _config_id(c) -> str:
    mode, layers, bidir, batch_first, bias, proj = c
    bits = [mode, f"L{layers}", "bi" if bidir else "uni", "bf" if batch_first else "tf"]
    return "-".join(bits + ([] if bias else ["nobias"]) + ([f"p{proj}"] if proj else []))


@pytest.mark.parametrize("with_hx", [False, True], ids=["no_hx", "hx"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("config", CONFIGS, ids=[_config_id(c) for c in CONFIGS])
def test_module_matches_torch(nn, config, batched, with_hx) -> None:
    """Outputs, final states and the gradients w.r.t. input, hx and every weight (float64)."""
    mode, layers, bidir, batch_first, bias, proj = config
    kw = {"num_layers": layers, "bidirectional": bidir, "batch_first": batch_first, "bias": bias}
    if proj:
        kw["proj_size"] = proj
    ref, mine = twin(nn, mode, I, H, dtype=torch.float64, **kw)
    f64 = {"dtype": torch.float64}
    if batched:
        x = torch.randn((B, T, I) if batch_first else (T, B, I), **f64)
    else:
        x = torch.randn(T, I, **f64)
    n = layers * (2 if bidir else 1)
    hx = make_hx(mode, n, B if batched else None, H, proj, **f64) if with_hx else None
    x.requires_grad_()
    for t in [] if hx is None else (hx if isinstance(hx, tuple) else (hx,)):
        t.requires_grad_()
    args = (x,) if hx is None else (x, hx)
    want, want_grads = run_with_grads(ref, *args)
    got, got_grads = run_with_grads(mine, *args)
    assert_all_close(got, want, "outputs")
    assert_all_close(got_grads, want_grads, "gradients")
    d = 2 if bidir else 1
    lead = ((B, T) if batch_first else (T, B)) if batched else (T,)
    assert got[0].shape == (*lead, d * (proj or H))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("mode", MODES)
def test_module_matches_torch_in_each_dtype(nn, mode, dtype) -> None:
    """A two-layer bidirectional stack in float32 and float64; the outputs keep the dtype."""
    ref, mine = twin(nn, mode, I, H, num_layers=2, bidirectional=True, dtype=dtype)
    x = torch.randn(T, B, I, dtype=dtype, requires_grad=True)
    want, want_grads = run_with_grads(ref, x)
    got, got_grads = run_with_grads(mine, x)
    assert all(t.dtype == dtype for t in got)
    assert_all_close(got, want, "outputs")
    assert_all_close(got_grads, want_grads, "gradients")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("with_hx", [False, True], ids=["no_hx", "hx"])
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_matches_torch(nn, cell, bias, batched, with_hx, dtype) -> None:
    """test_nn's ``test_RNN_cell`` / ``test_LSTM_cell``, compared value for value."""
    ref, mine = twin(nn, cell, I, H, bias=bias, dtype=dtype)
    x = torch.randn(*((B,) if batched else ()), I, dtype=dtype, requires_grad=True)
    hx = make_hx(cell, 0, B if batched else None, H, dtype=dtype) if with_hx else None
    for t in [] if hx is None else (hx if isinstance(hx, tuple) else (hx,)):
        t.requires_grad_()
    args = (x,) if hx is None else (x, hx)
    want, want_grads = run_with_grads(ref, *args)
    got, got_grads = run_with_grads(mine, *args)
    assert_all_close(got, want, "outputs")
    assert_all_close(got_grads, want_grads, "gradients")
    assert all(t.shape == ((B, H) if batched else (H,)) for t in got)


@pytest.mark.parametrize("cell", CELLS)
def test_cell_unrolled_over_steps(nn, cell) -> None:
    """test_nn's ``test_RNN_cell`` smoke test: six steps feeding the state back, then backward."""
    ref, mine = twin(nn, cell, I, H)
    x = torch.randn(B, I)
    states = []
    for module in (ref, mine):
        hx = None
        for _ in range(6):
            hx = module(x, hx)
        states.append(list(hx) if isinstance(hx, tuple) else [hx])
        sum(t.sum() for t in states[-1]).backward()
    assert_all_close(states[1], states[0], "state after 6 steps")
    assert_all_close(
        [p.grad for p in mine.parameters()], [p.grad for p in ref.parameters()], "weight grads"
    )


@pytest.mark.parametrize("mode", MODES)
def test_zero_initial_state_is_no_initial_state(nn, mode) -> None:
    """test_nn's ``test_rnn_initial_hidden_state`` (and the projection variant for LSTM)."""
    proj = P if mode == "LSTM" else 0
    kw = {"proj_size": proj} if proj else {}
    _, mine = twin(nn, mode, I, H, num_layers=2, **kw)
    x = torch.randn(T, B, I)
    zeros = make_hx(mode, 2, B, H, proj)
    zeros = tuple(z.zero_() for z in zeros) if isinstance(zeros, tuple) else zeros.zero_()
    out_none, h_none = mine(x)
    out_zero, h_zero = mine(x, zeros)
    assert torch.equal(out_none, out_zero)
    assert_all_close(
        list(h_none) if mode == "LSTM" else [h_none],
        list(h_zero) if mode == "LSTM" else [h_zero],
        "h_n",
    )
