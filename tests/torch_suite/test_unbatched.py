"""module_db's samples for RNN, GRU, LSTM and the cells are all about unbatched inputs: each
runs an unbatched input (with and without hx) and compares it with the same input as a batch
of one (``no_batch_dim_reference_rnn_gru`` / ``_lstm`` / ``_fn`` / ``_lstmcell``)."""

from __future__ import annotations

import itertools

import pytest
import torch

from ._helpers import CELLS, assert_all_close, build, flat

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

F64 = {"dtype": torch.float64}

# module_db's constructor grid: input 2, two layers; hidden 2 (3 when hx is given); LSTMs
# hidden 3 with proj_size 0 or 2
SAMPLES = [
    (mode, bias, batch_first, bidir, proj, with_hx)
    for mode in ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
    for bias, batch_first, bidir in itertools.product(*[(False, True)] * 3)
    for proj in ((0, 2) if mode == "LSTM" else (0,))
    for with_hx in (False, True)
]


def _id(s) -> str:
    mode, bias, batch_first, bidir, proj, with_hx = s
    parts = [mode, "bias" if bias else "nobias", "bf" if batch_first else "tf"]
    parts += ["bi" if bidir else "uni", f"p{proj}", "hx" if with_hx else "no_hx"]
    return "-".join(parts)


@pytest.mark.parametrize("sample", SAMPLES, ids=[_id(s) for s in SAMPLES])
def test_unbatched_module_equals_a_batch_of_one(nn, sample) -> None:
    mode, bias, batch_first, bidir, proj, with_hx = sample
    hidden = 3 if (with_hx or mode == "LSTM") else 2
    kw = {"num_layers": 2, "bias": bias, "batch_first": batch_first, "bidirectional": bidir}
    if proj:
        kw["proj_size"] = proj
    torch.manual_seed(0)
    m = build(nn, mode, 2, hidden, **kw, **F64)
    x = torch.randn(3, 2, **F64)
    n = 4 if bidir else 2
    hx = None
    if with_hx:
        h = torch.randn(n, proj or hidden, **F64)
        hx = (h, torch.randn(n, hidden, **F64)) if mode == "LSTM" else h
    unbatched = m(x) if hx is None else m(x, hx)
    xb = x.unsqueeze(0 if batch_first else 1)
    hb = (
        None
        if hx is None
        else (tuple(t.unsqueeze(1) for t in hx) if isinstance(hx, tuple) else hx.unsqueeze(1))
    )
    batched = m(xb) if hb is None else m(xb, hb)
    out, *states = flat(batched)
    want = [out.squeeze(0 if batch_first else 1)] + [s.squeeze(1) for s in states]
    assert_all_close(flat(unbatched), want, "unbatched vs batch of one")
    assert flat(unbatched)[0].shape == (3, (2 if bidir else 1) * (proj or hidden))


@pytest.mark.parametrize("with_hx", [False, True], ids=["no_hx", "hx"])
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("cell", CELLS)
def test_unbatched_cell_equals_a_batch_of_one(nn, cell, bias, with_hx) -> None:
    torch.manual_seed(0)
    m = build(nn, cell, 5, 10, bias=bias, **F64)
    x = torch.randn(5, **F64)
    hx = None
    if with_hx:
        h = torch.randn(10, **F64)
        hx = (h, torch.randn(10, **F64)) if cell == "LSTMCell" else h
    unbatched = flat(m(x, hx))
    hb = (
        None
        if hx is None
        else (tuple(t.unsqueeze(0) for t in hx) if isinstance(hx, tuple) else hx.unsqueeze(0))
    )
    want = [t.squeeze(0) for t in flat(m(x.unsqueeze(0), hb))]
    assert_all_close(unbatched, want, "unbatched vs batch of one")
    assert all(t.shape == (10,) for t in unbatched)
