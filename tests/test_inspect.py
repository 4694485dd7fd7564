"""The glass box's recording: every gate of every recurrent layer, the equations they satisfy,
names, masks, engines, drop-ins, tables and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmkit import engines
from lstmkit import nn as lnn
from lstmkit.engines import RunOptions
from lstmkit.inspect import record
from lstmkit.inspect.record import RecordLookupError, Trace, UnitIndexError
from lstmkit.layers import GRU, LSTM, Bidirectional, Dense, SimpleRNN
from lstmkit.models import Sequential
from lstmkit.utils import clear_session, set_random_seed

B, T, I, H = 3, 7, 4, 5


@pytest.fixture(autouse=True)
def _seed() -> None:
    clear_session()  # layer names start again at "lstm", "gru" …
    set_random_seed(0)


def _x(dtype: torch.dtype = torch.float64, steps: int = T) -> torch.Tensor:
    return torch.randn(B, steps, I, dtype=dtype)


def _shifted(v: torch.Tensor) -> torch.Tensor:
    """``v_{t-1}`` with zeros before the first step."""
    return torch.cat([torch.zeros_like(v[:, :1]), v[:, :-1]], 1)


# -- equations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["auto", "reference", "fused", "compiled"])
def test_recorded_lstm_gates_satisfy_the_equations(engine: str) -> None:
    if engine == "compiled" and not (
        "compiled" in engines.ENGINES and engines.ENGINES["compiled"].available()
    ):
        pytest.skip("the compiled engine is not built on this machine")
    model = Sequential([LSTM(H, return_sequences=True, engine=engine, dtype="float64"), Dense(1)])
    x = _x()
    with record(model) as rec:
        model(x)
    tr = rec["lstm"]
    i, f, g, o, c, h = (tr[k] for k in "ifgoc" + "h")
    assert c.shape == (B, T, H) and tr.mask.shape == (B, T) and bool(tr.mask.all())
    torch.testing.assert_close(c, f * _shifted(c) + i * g, rtol=0, atol=1e-12)
    torch.testing.assert_close(h, o * torch.tanh(c), rtol=0, atol=1e-12)
    # the gates are the cell's: recompute them from the weights
    cell = model.get_layer("lstm").cell
    pre = x @ cell.weight_ih.T + cell.bias_ih + _shifted(h) @ cell.weight_hh.T  # (B, T, 4H)
    pi, pf, pg, po = pre.chunk(4, -1)
    for got, want in ((i, pi.sigmoid()), (f, pf.sigmoid()), (g, pg.tanh()), (o, po.sigmoid())):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_recorded_gru_gates_satisfy_the_equations() -> None:
    model = Sequential([GRU(H, return_sequences=True, dtype="float64")])
    x = _x()
    with record(model) as rec:
        out = model(x)
    tr = rec["gru"]
    assert tr.kind == "gru" and tr.gates == ("r", "z", "n", "h")
    r, z, n, h = (tr[k] for k in "rzn" + "h")
    h_prev = _shifted(h)
    torch.testing.assert_close(h, (1 - z) * n + z * h_prev, rtol=0, atol=1e-12)
    torch.testing.assert_close(h, out, rtol=0, atol=0)
    cell = model.get_layer("gru").cell
    xr, xz, xn = (x @ cell.weight_ih.T + cell.bias_ih).chunk(3, -1)
    hr, hz, hn = (h_prev @ cell.weight_hh.T + cell.bias_hh).chunk(3, -1)
    torch.testing.assert_close(r, (xr + hr).sigmoid(), rtol=0, atol=1e-12)
    torch.testing.assert_close(z, (xz + hz).sigmoid(), rtol=0, atol=1e-12)
    torch.testing.assert_close(n, (xn + r * hn).tanh(), rtol=0, atol=1e-12)


def test_simple_rnn_records_h_only() -> None:
    model = Sequential([SimpleRNN(H, return_sequences=True, dtype="float64")])
    x = _x()
    with record(model) as rec:
        out = model(x)
    tr = rec["simple_rnn"]
    assert tr.kind == "rnn" and tr.gates == ("h",)
    cell = model.get_layer("simple_rnn").cell
    pre = x @ cell.weight_ih.T + cell.bias_ih + _shifted(out) @ cell.weight_hh.T
    torch.testing.assert_close(tr["h"], pre.tanh(), rtol=0, atol=1e-12)


def test_recorded_values_equal_the_reference_loop() -> None:
    layer = LSTM(H, return_sequences=True, engine="fused")
    model = Sequential([layer])
    x = _x(torch.float32)
    with record(model) as rec:
        model.predict(x, verbose=0)
    cell = layer.cell
    ref = (
        engines.ENGINES["reference"]
        .run(cell, x, cell.initial_state(B), RunOptions(record=True))
        .record
    )
    for k in "ifgoch":
        assert float((rec["lstm"][k] - ref[k].detach()).abs().max()) <= 1e-6


# -- engines -----------------------------------------------------------------------------------


def test_recording_switches_a_fused_layer_to_an_engine_that_records(monkeypatch) -> None:
    layer = LSTM(H, return_sequences=True, engine="fused")
    model = Sequential([layer])
    x = _x(torch.float32)
    plain = model(x)
    ran: list[str] = []
    for eng in engines.ENGINES.values():
        monkeypatch.setattr(
            eng, "run", lambda *a, _e=eng, _run=eng.run, **k: ran.append(_e.name) or _run(*a, **k)
        )
    # what the engines promise: the fused kernels refuse to record, the automatic choice doesn't
    assert engines.ENGINES["fused"].unsupported(layer.cell, x, RunOptions(record=True))
    recording_engine = engines.choose(layer.cell, x, RunOptions(record=True)).name
    assert recording_engine != "fused"
    with pytest.raises(ValueError, match="fused"):
        engines.choose(layer.cell, x, RunOptions(record=True), engine="fused")
    with record(model) as rec:
        assert engines.for_recording(layer.engine, True) == "auto"  # fused yields ...
        recorded = model(x)
    assert layer.engine == "fused"  # ... without the model being modified
    assert ran == [recording_engine]
    torch.testing.assert_close(recorded, plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rec["lstm"]["h"], plain, rtol=1e-5, atol=1e-6)
    model(x)
    assert ran == [recording_engine, "fused"]  # fused again outside the recording


def test_engine_restored_after_an_exception() -> None:
    layer = GRU(H, engine="fused")
    model = Sequential([layer])
    model(_x(torch.float32))
    with pytest.raises(RuntimeError, match="boom"), record(model):
        raise RuntimeError("boom")
    assert layer.engine == "fused" and not engines.recording_active()


# -- names, directions, batches, masks ----------------------------------------------------------


def test_bidirectional_names_and_time_alignment() -> None:
    model = Sequential([Bidirectional(LSTM(H, return_sequences=True)), GRU(3)])
    x = _x(torch.float32)
    with record(model) as rec:
        out = model.get_layer("bidirectional")(x)
        model(x)
    assert rec.names == ["bidirectional/forward_lstm", "bidirectional/backward_lstm", "gru"]
    fwd, bwd = rec["bidirectional/forward_lstm"], rec["bidirectional/backward_lstm"]
    assert (fwd.direction, bwd.direction) == ("forward", "backward")
    # the layer ran twice (directly and inside the model): two calls stacked on the batch axis
    assert fwd.batch_size == 2 * B and len(fwd.chunks) == 2
    torch.testing.assert_close(fwd["h"][:B], out[..., :H], rtol=0, atol=0)
    torch.testing.assert_close(bwd["h"][:B], out[..., H:], rtol=0, atol=0)
    assert [t.name for t in rec.select("bidirectional")] == rec.names[:2]
    assert rec.layers == ["bidirectional/forward_lstm", "bidirectional/backward_lstm", "gru"]


def test_predict_batches_concatenate_and_lengths_pad() -> None:
    model = Sequential([LSTM(H)])
    x = np.random.default_rng(0).normal(size=(5, T, I)).astype(np.float32)
    with record(model) as rec:
        model.predict(x, batch_size=2, verbose=0)
        model(torch.zeros(1, T + 3, I))
    tr = rec["lstm"]
    assert [c["h"].shape[0] for c in tr.chunks] == [2, 2, 1, 1]
    assert tr["f"].shape == (6, T + 3, H)
    assert bool(tr.mask[:5, :T].all()) and not bool(tr.mask[:5, T:].any())
    assert bool(torch.isnan(tr["c"][:5, T:]).all()) and bool(tr.mask[5].all())
    full = model(torch.as_tensor(x))
    torch.testing.assert_close(tr["h"][:5, T - 1], full, rtol=1e-5, atol=1e-6)


def test_masks_are_carried() -> None:
    layer = LSTM(H, return_sequences=True, dtype="float64")
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, 4:] = False
    mask[1, 2] = False
    x = _x()
    with record(layer) as rec:
        layer(x, mask=mask)
    tr = rec["lstm"]
    assert tr.name == "lstm" and torch.equal(tr.mask, mask)
    # masked steps carry the state over
    torch.testing.assert_close(tr["c"][0, 4:], tr["c"][0, 3].expand(T - 4, H), rtol=0, atol=0)
    torch.testing.assert_close(tr["h"][1, 2], tr["h"][1, 1], rtol=0, atol=0)
    frame = rec.to_frame(gates=["f"])
    assert len(frame) == int(mask.sum()) * H


def test_tidy_table() -> None:
    model = Sequential([LSTM(H, return_sequences=True), GRU(2)])
    with record(model) as rec:
        model(_x(torch.float32))
    df = rec.to_frame()
    assert list(df.columns) == ["layer", "direction", "gate", "batch", "time", "unit", "value"]
    assert len(df) == B * T * (6 * H + 4 * 2)
    row = df[(df.layer == "lstm") & (df.gate == "o") & (df.batch == 2) & (df.time == 5)]
    np.testing.assert_allclose(row.sort_values("unit")["value"], rec["lstm"]["o"][2, 5].numpy())
    some = rec.to_frame(layers=["gru"], gates=["z"], units=[1])
    assert set(some.unit) == {1} and len(some) == B * T
    full = rec.to_frame(include_masked=True)
    assert "valid" in full.columns and bool(full.valid.all())
    arrays = rec.numpy()
    assert set(arrays) == {"lstm", "gru"} and arrays["gru"]["mask"].dtype == bool
    assert arrays["lstm"]["c"].shape == (B, T, H)


# -- the lstmkit.nn drop-ins --------------------------------------------------------------------


class Encoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = lnn.GRU(I, H, num_layers=2, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


def test_dropin_recording_and_return_gates() -> None:
    m = lnn.LSTM(I, H, num_layers=2, engine="fused", return_gates=False)
    x = torch.randn(T, B, I)  # (L, N, I): torch's layout
    with record(m) as rec:
        out, _ = m(x)
    assert rec.names == ["lstm/l0", "lstm/l1"] and m.engine == "fused"
    assert rec["lstm/l1"].direction == "l1"
    torch.testing.assert_close(rec["lstm/l1"]["h"], out.transpose(0, 1), rtol=1e-5, atol=1e-6)
    tr = rec["lstm/l0"]
    torch.testing.assert_close(tr["c"], tr["f"] * _shifted(tr["c"]) + tr["i"] * tr["g"])
    m.return_gates = True
    m.engine = "reference"
    out2, _, gates = m(x)
    torch.testing.assert_close(gates[0][0]["f"].transpose(0, 1), tr["f"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out2, out, rtol=1e-5, atol=1e-6)


def test_dropin_inside_a_torch_module() -> None:
    enc = Encoder()
    with record(enc) as rec:
        enc(torch.randn(T, B, I))
    assert rec.names == ["rnn/l0", "rnn/l0_reverse", "rnn/l1", "rnn/l1_reverse"]
    stack = torch.nn.ModuleList([lnn.RNN(I, H), lnn.RNN(H, H)])
    with record(stack) as rec2:
        stack[1](stack[0](torch.randn(T, B, I))[0])
    assert rec2.names == ["0/l0", "1/l0"]
    h_rev = rec["rnn/l0_reverse"]["h"]
    assert h_rev.shape == (B, T, H)
    tr = rec["rnn/l1"]
    torch.testing.assert_close(tr["h"], (1 - tr["z"]) * tr["n"] + tr["z"] * _shifted(tr["h"]))


# -- errors --------------------------------------------------------------------------------------


def test_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="no recurrent layers"):
        record(Sequential([Dense(3)]))
    with pytest.raises(ValueError, match=r"torch\.nn recurrent modules .* lstmkit\.nn drop-ins"):
        record(torch.nn.Sequential(torch.nn.LSTM(2, 3)))
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        record("model")  # type: ignore[arg-type]
    model = Sequential([GRU(H, return_sequences=True)])
    rec = record(model)
    with pytest.raises(KeyError, match="nothing was recorded"):
        rec["gru"]
    with rec:
        model(_x(torch.float32))
    with pytest.raises(KeyError, match=r"no recorded layer named 'lstm'.*recorded: gru"):
        rec["lstm"]
    tr = rec["gru"]
    with pytest.raises(ValueError, match=r"a GRU has no forget gate f; recorded values are r, z"):
        tr["f"]
    with pytest.raises(RecordLookupError, match="no cell state c"):
        tr.unit("c", 0)
    with pytest.raises(UnitIndexError, match=r"unit index 5 is out of range.*5 units"):
        tr.unit("z", 5)
    with pytest.raises(IndexError, match="out of range"):
        tr.unit("z", -6)
    torch.testing.assert_close(tr.unit("z", -1), tr["z"][..., H - 1])
    with pytest.raises(TypeError, match="unit must be an integer"):
        tr.unit("z", 1.5)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="already active"), rec, rec:
        pass


def test_handmade_trace() -> None:
    tr = Trace("x", "x", "forward", "rnn")
    tr._add({"h": torch.ones(1, 2, 3)}, torch.tensor([[True, False]]))
    assert tr.units() == 3 and tr.steps == 2 and "Trace('x', SimpleRNN" in repr(tr)
    assert tr.to_frame().shape[0] == 3
