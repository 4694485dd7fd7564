"""``lstmkit.nn``: drop-ins for ``torch.nn.LSTM/GRU/RNN`` and their cells.

With weights copied through ``state_dict``, every configuration gives torch's outputs, final
states and gradients of every parameter (fp32 ≤ 1e-5, fp64 ≤ 1e-10), on the fused and the
reference engine alike; ``state_dict`` keys, parameter names and order, and the initialisation
are torch's; the extras (gates, recording, peephole, layer norm) and the error messages work.
"""

from __future__ import annotations

import copy
import io
import itertools

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmkit import engines
from lstmkit import nn as lnn

# torch itself warns that oneDNN has no projection kernel (it falls back to its own)
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

ENGINES = ["fused", "reference"]
DTYPES = {"fp32": torch.float32, "fp64": torch.float64}
I, H, T, B = 4, 5, 6, 3


def pair(mode: str, dtype=torch.float64, engine: str = "auto", **kw):
    """A torch module and an lstmkit drop-in holding the same weights."""
    if mode == "RNN_RELU":
        kw["nonlinearity"] = "relu"
    cls = "RNN" if mode.startswith("RNN") else mode
    torch.manual_seed(0)
    ref = getattr(torch.nn, cls)(I, H, dtype=dtype, **kw)
    mine = getattr(lnn, cls)(I, H, dtype=dtype, engine=engine, **kw)
    assert mine.load_state_dict(ref.state_dict()) is not None
    return ref, mine


def outputs_and_grads(module, x, hx):
    """Run; return output (data for packed), final states, and the gradients of a random
    projection of them with respect to every parameter, the input and hx."""
    out, h = module(x, hx) if hx is not None else module(x)
    out_t = out.data if isinstance(out, PackedSequence) else out
    finals = list(h) if isinstance(h, tuple) else [h]
    g = torch.Generator().manual_seed(1)
    loss = sum(
        (t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in [out_t, *finals]
    )
    x_t = x.data if isinstance(x, PackedSequence) else x
    hx_list = [] if hx is None else (list(hx) if isinstance(hx, tuple) else [hx])
    targets = [*module.parameters(), x_t, *hx_list]
    grads = torch.autograd.grad(loss, targets)
    return [out_t, *finals], grads


def check_pair(ref, mine, x, hx, assert_close) -> None:
    want, want_g = outputs_and_grads(ref, x, hx)
    got, got_g = outputs_and_grads(mine, x, hx)
    assert len(got) == len(want)
    for k, (a, b) in enumerate(zip(got, want)):
        assert_close(a, b, ["output", "h_n", "c_n"][k])
    assert len(got_g) == len(want_g)
    names = [*names_of(ref), "input", "h_0", "c_0"]
    for k, (a, b) in enumerate(zip(got_g, want_g)):
        assert_close(a, b, f"d/d {names[k]}")


def names_of(module) -> list[str]:
    return [n for n, _ in module.named_parameters()]


def make_input(batch_first: bool, dtype, requires_grad=True):
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=dtype)
    return x.requires_grad_(requires_grad)


def make_hx(mode: str, layers: int, bidirectional: bool, proj: int, dtype, unbatched=False):
    n = layers * (2 if bidirectional else 1)
    lead = (n,) if unbatched else (n, B)
    h = torch.randn(*lead, proj or H, dtype=dtype, requires_grad=True)
    if mode != "LSTM":
        return h
    return h, torch.randn(*lead, H, dtype=dtype, requires_grad=True)


CONFIGS = [
    (mode, layers, bidirectional, proj)
    for mode in ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
    for layers, bidirectional in itertools.product((1, 2, 3), (False, True))
    for proj in ((0, 3) if mode == "LSTM" else (0,))
]


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("mode", "layers", "bidirectional", "proj"),
    CONFIGS,
    ids=[f"{m}-L{n}-{'bi' if b else 'uni'}-p{p}" for m, n, b, p in CONFIGS],
)
def test_parity_with_torch(mode, layers, bidirectional, proj, engine, dtype, assert_close):
    dt = DTYPES[dtype]
    kw = {"num_layers": layers, "bidirectional": bidirectional}
    if proj:
        kw["proj_size"] = proj
    for batch_first, with_hx in itertools.product((False, True), (False, True)):
        ref, mine = pair(mode, dt, engine, batch_first=batch_first, **kw)
        x = make_input(batch_first, dt)
        hx = make_hx(mode, layers, bidirectional, proj, dt) if with_hx else None
        check_pair(ref, mine, x, hx, assert_close)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
def test_unbatched_input(mode, engine, assert_close) -> None:
    for with_hx, bidirectional in itertools.product((False, True), (False, True)):
        ref, mine = pair(mode, torch.float64, engine, num_layers=2, bidirectional=bidirectional)
        x = torch.randn(T, I, dtype=torch.float64, requires_grad=True)
        hx = make_hx(mode, 2, bidirectional, 0, torch.float64, unbatched=True) if with_hx else None
        check_pair(ref, mine, x, hx, assert_close)
        out, _ = mine(x)
        assert out.shape == (T, (2 if bidirectional else 1) * H)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("enforce_sorted", [True, False], ids=["sorted", "unsorted"])
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
def test_packed_sequence(mode, engine, enforce_sorted, dtype, assert_close) -> None:
    dt = DTYPES[dtype]
    lengths = torch.tensor([6, 4, 1]) if enforce_sorted else torch.tensor([2, 6, 4])
    for batch_first, bidirectional, with_hx, proj in itertools.product(
        (False, True), (False, True), (False, True), (0, 2) if mode == "LSTM" else (0,)
    ):
        kw = {"num_layers": 2, "bidirectional": bidirectional, "batch_first": batch_first}
        if proj:
            kw["proj_size"] = proj
        ref, mine = pair(mode, dt, engine, **kw)
        x = make_input(batch_first, dt, requires_grad=False)
        packed = pack_padded_sequence(
            x, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted
        )
        packed = PackedSequence(packed.data.requires_grad_(), *packed[1:])
        hx = make_hx(mode, 2, bidirectional, proj, dt) if with_hx else None
        check_pair(ref, mine, packed, hx, assert_close)
        out, _ = mine(packed, hx)
        assert isinstance(out, PackedSequence)
        assert torch.equal(out.batch_sizes, packed.batch_sizes)
        for a, b in (
            (out.sorted_indices, packed.sorted_indices),
            (out.unsorted_indices, packed.unsorted_indices),
        ):
            assert (a is None and b is None) or torch.equal(a, b)
        _, got_lengths = pad_packed_sequence(out, batch_first=batch_first)
        assert torch.equal(got_lengths, lengths)


@pytest.mark.parametrize("engine", ENGINES)
def test_dropout_is_identity_in_eval_mode(engine, assert_close) -> None:
    ref, mine = pair("LSTM", torch.float64, engine, num_layers=3, dropout=0.5)
    ref.eval()
    mine.eval()
    check_pair(ref, mine, make_input(False, torch.float64), None, assert_close)
    mine.train()
    x = make_input(False, torch.float64)
    torch.manual_seed(3)
    a, _ = mine(x)
    b, _ = mine(x)
    assert not torch.allclose(a, b), "dropout between layers must act in training mode"


def test_state_dict_keys_names_and_order_are_torchs() -> None:
    for mode, kw in [
        ("LSTM", {"num_layers": 3, "bidirectional": True, "proj_size": 2}),
        ("LSTM", {"num_layers": 2, "bias": False}),
        ("GRU", {"num_layers": 2, "bidirectional": True}),
        ("RNN_RELU", {"num_layers": 2}),
    ]:
        ref, mine = pair(mode, **kw)
        assert list(mine.state_dict()) == list(ref.state_dict())
        assert [(n, p.shape) for n, p in mine.named_parameters()] == [
            (n, p.shape) for n, p in ref.named_parameters()
        ]
        assert mine._flat_weights_names == ref._flat_weights_names
        assert [[p.shape for p in w] for w in mine.all_weights] == [
            [p.shape for p in w] for w in ref.all_weights
        ]
        # load the other way too: torch <- lstmkit
        with torch.no_grad():
            for p in mine.parameters():
                p.add_(1.0)
        ref.load_state_dict(mine.state_dict())
        for (n, a), (_, b) in zip(ref.named_parameters(), mine.named_parameters()):
            assert torch.equal(a, b), n


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_initialisation_is_torchs_draw_for_draw(mode) -> None:
    kw = {"num_layers": 2, "bidirectional": True}
    if mode == "LSTM":
        kw["proj_size"] = 3
    torch.manual_seed(42)
    ref = getattr(torch.nn, mode)(I, H, **kw)
    torch.manual_seed(42)
    mine = getattr(lnn, mode)(I, H, **kw)
    for (n, a), (_, b) in zip(ref.named_parameters(), mine.named_parameters()):
        assert torch.equal(a, b), n
        assert float(b.detach().abs().max()) <= 1 / H**0.5


def test_attribute_assignment_and_to_stay_consistent(assert_close) -> None:
    ref, mine = pair("LSTM", torch.float32, num_layers=2)
    new = torch.nn.Parameter(torch.randn(4 * H, I))
    mine.weight_ih_l0 = new
    ref.weight_ih_l0 = torch.nn.Parameter(new.detach().clone())
    assert mine.weight_ih_l0 is new and mine.state_dict()["weight_ih_l0"] is not None
    x = make_input(False, torch.float32)
    check_pair(ref, mine, x, None, assert_close)
    ref.double()
    mine.double()
    assert all(p.dtype == torch.float64 for p in mine.parameters())
    check_pair(ref, mine, make_input(False, torch.float64), None, assert_close)
    for m in (copy.deepcopy(mine), _pickled(mine)):
        out, _ = m(make_input(False, torch.float64).detach())
        assert out.dtype == torch.float64
        with torch.no_grad():
            m.weight_hh_l1.zero_()  # the copy's parameters are its own
        assert not torch.equal(m.weight_hh_l1, mine.weight_hh_l1)


def _pickled(module):
    buf = io.BytesIO()
    torch.save(module, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def test_parametrization_is_seen_by_the_forward(assert_close) -> None:
    ref, mine = pair("GRU", torch.float64)
    for m in (ref, mine):
        torch.nn.utils.parametrize.register_parametrization(m, "weight_hh_l0", _Double())
    check_pair(ref, mine, make_input(False, torch.float64), None, assert_close)


class _Double(torch.nn.Module):
    def forward(self, w):
        return 2 * w


# -- cells -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("kind", ["LSTMCell", "GRUCell", "RNNCell", "RNNCell-relu"])
def test_cells_match_torch(kind, dtype, assert_close) -> None:
    dt = DTYPES[dtype]
    name, _, nl = kind.partition("-")
    kw = {"nonlinearity": nl} if nl else {}
    for bias, batched, with_hx in itertools.product((True, False), (True, False), (True, False)):
        torch.manual_seed(0)
        ref = getattr(torch.nn, name)(I, H, bias=bias, dtype=dt, **kw)
        torch.manual_seed(0)
        mine = getattr(lnn, name)(I, H, bias=bias, dtype=dt, **kw)
        assert list(mine.state_dict()) == list(ref.state_dict())
        for (n, a), (_, b) in zip(ref.named_parameters(), mine.named_parameters()):
            assert torch.equal(a, b), f"init of {n}"
        lead = (B,) if batched else ()
        x = torch.randn(*lead, I, dtype=dt, requires_grad=True)
        hx = None
        if with_hx:
            hx = torch.randn(*lead, H, dtype=dt, requires_grad=True)
            if name == "LSTMCell":
                hx = (hx, torch.randn(*lead, H, dtype=dt, requires_grad=True))

        def run(m, x=x, hx=hx):
            out = m(x, hx)
            outs = list(out) if isinstance(out, tuple) else [out]
            loss = sum(
                (o * torch.arange(o.numel(), dtype=dt).view(o.shape).cos()).sum() for o in outs
            )
            hx_list = [] if hx is None else (list(hx) if isinstance(hx, tuple) else [hx])
            return outs, torch.autograd.grad(loss, [*m.parameters(), x, *hx_list])

        (want, want_g), (got, got_g) = run(ref), run(mine)
        for a, b in zip(got + list(got_g), want + list(want_g)):
            assert_close(a, b, f"{kind} bias={bias} batched={batched}")


def test_cell_errors() -> None:
    cell = lnn.LSTMCell(I, H)
    with pytest.raises(
        ValueError,
        match=r"LSTMCell: expected input of shape \(B, 4\) or unbatched \(4,\), got \(2, 3, 4\)",
    ):
        cell(torch.zeros(2, 3, I))
    with pytest.raises(ValueError, match=r"LSTMCell: expected h_0 of shape \(2, 5\), got \(2, 4\)"):
        cell(torch.zeros(2, I), (torch.zeros(2, 4), torch.zeros(2, H)))
    with pytest.raises(TypeError, match=r"LSTMCell: expected hx as a tuple \(h_0, c_0\)"):
        cell(torch.zeros(2, I), torch.zeros(2, H))
    with pytest.raises(
        TypeError, match=r"GRUCell: expected input of dtype torch.float32 .*got torch.int64"
    ):
        lnn.GRUCell(I, H)(torch.zeros(2, I, dtype=torch.long))
    with pytest.raises(
        ValueError, match="RNNCell: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"
    ):
        lnn.RNNCell(I, H, nonlinearity="sigmoid")


# -- extras ----------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
def test_return_gates_structure_and_values(batch_first) -> None:
    torch.manual_seed(0)
    m = lnn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=batch_first, return_gates=True)
    x = make_input(batch_first, torch.float32).detach()
    out, (h_n, c_n), gates = m(x)
    assert len(gates) == 2 and all(len(layer) == 2 for layer in gates)
    t_axis = 1 if batch_first else 0
    for layer in gates:
        for rec in layer:
            assert set(rec) == {"i", "f", "g", "o", "c", "h"}
            for v in rec.values():
                assert v.shape == ((B, T, H) if batch_first else (T, B, H))
    top = gates[1]
    # the top layer's h, both directions, is the output; the reverse h at t = 0 is h_n
    torch.testing.assert_close(torch.cat([top[0]["h"], top[1]["h"]], -1), out, rtol=0, atol=0)
    last = top[0]["h"].select(t_axis, T - 1)
    torch.testing.assert_close(last, h_n[2], rtol=0, atol=0)
    torch.testing.assert_close(top[1]["h"].select(t_axis, 0), h_n[3], rtol=0, atol=0)
    torch.testing.assert_close(top[1]["c"].select(t_axis, 0), c_n[3], rtol=0, atol=0)
    # without return_gates: the same numbers, two items
    m.return_gates = False
    result = m(x)
    assert len(result) == 2
    torch.testing.assert_close(result[0], out)


def test_return_gates_gru_unbatched_and_packed() -> None:
    m = lnn.GRU(I, H, return_gates=True)
    out, h_n, gates = m(torch.randn(T, I))
    assert set(gates[0][0]) == {"r", "z", "n", "h"} and gates[0][0]["h"].shape == (T, H)
    torch.testing.assert_close(gates[0][0]["h"], out, rtol=0, atol=0)
    packed = pack_padded_sequence(
        torch.randn(T, B, I), torch.tensor([3, 6, 2]), enforce_sorted=False
    )
    out, h_n, gates = m(packed)
    assert isinstance(out, PackedSequence) and gates[0][0]["h"].shape == (T, B, H)
    padded, lengths = pad_packed_sequence(out)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(gates[0][0]["h"][:n, b], padded[:n, b], rtol=0, atol=0)
        torch.testing.assert_close(padded[n - 1, b], h_n[0, b], rtol=0, atol=0)


def test_recording_names_layers_and_directions() -> None:
    m = lnn.LSTM(I, H, num_layers=2, bidirectional=True)
    seen = []
    with engines.recording(
        lambda owner, d, rec, mask: seen.append((owner, d, rec["h"].shape, mask))
    ):
        m(make_input(False, torch.float32).detach())
    assert [s[1] for s in seen] == ["l0", "l0_reverse", "l1", "l1_reverse"]
    assert all(s[0] is m and s[2] == (B, T, H) and s[3] is None for s in seen)
    m(make_input(False, torch.float32).detach())  # recording off again
    assert len(seen) == 4


@pytest.mark.parametrize("engine", ["auto", "reference"])
def test_peephole_and_layer_norm_extras(engine, assert_close) -> None:
    ref, _ = pair("LSTM", torch.float64, num_layers=2)
    peep = lnn.LSTM(I, H, num_layers=2, peephole=True, dtype=torch.float64, engine=engine)
    names = [n for n, _ in peep.named_parameters()]
    assert names[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert {"peephole_i_l0", "peephole_f_l0", "peephole_o_l1"} <= set(names)
    # zero peepholes: the plain LSTM (torch's numbers)
    peep.load_state_dict(ref.state_dict(), strict=False)
    with torch.no_grad():
        for n, p in peep.named_parameters():
            if n.startswith("peephole"):
                p.zero_()
    check_pair(ref, _without_extras(peep), make_input(False, torch.float64), None, assert_close)
    # a non-zero peephole changes the result
    x = make_input(False, torch.float64).detach()
    before, _ = peep(x)
    with torch.no_grad():
        peep.peephole_o_l1.fill_(1.0)
    after, _ = peep(x)
    assert not torch.allclose(before, after)
    ln = lnn.LSTM(I, H, layer_norm=True)
    assert torch.equal(ln.ln_c_weight_l0, torch.ones(H)) and torch.equal(
        ln.ln_ih_bias_l0, torch.zeros(4 * H)
    )
    out, (h_n, c_n) = ln(torch.randn(T, B, I))
    assert out.shape == (T, B, H) and h_n.shape == c_n.shape == (1, B, H)
    with pytest.raises(ValueError, match=r"engine='fused' cannot run this stack"):
        lnn.LSTM(I, H, layer_norm=True, engine="fused")(torch.randn(T, B, I))


class _without_extras(torch.nn.Module):
    """Expose only torch's parameters of a peephole LSTM (so gradients line up with torch's)."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def named_parameters(self, *a, **k):
        return [(n, p) for n, p in self.m.named_parameters() if not n.startswith("peephole")]

    def parameters(self, *a, **k):
        return [p for _, p in self.named_parameters()]

    def forward(self, x, hx=None):
        return self.m(x, hx)


def test_engine_choice_is_honoured() -> None:
    x = make_input(False, torch.float32).detach()
    # Asking for the gates outranks an engine that cannot give them (engines.for_recording):
    # the numbers are the same, only the engine differs.
    m = lnn.LSTM(I, H, engine="fused", return_gates=True)
    ref = lnn.LSTM(I, H, engine="reference", return_gates=True)
    ref.load_state_dict(m.state_dict())
    out, _, gates = m(x)
    out_ref, _, gates_ref = ref(x)
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gates[0][0]["c"], gates_ref[0][0]["c"], rtol=1e-5, atol=1e-6)
    assert m.engine == "fused"
    with pytest.raises(ValueError, match=r"LSTM: engine must be one of .*got 'fast'"):
        lnn.LSTM(I, H, engine="fast")
    assert "engine='reference'" in repr(lnn.LSTM(I, H, engine="reference"))
    assert repr(lnn.LSTM(I, H, num_layers=2, bidirectional=True)) == repr(
        torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)
    )


# -- bad input ---------------------------------------------------------------------------------


def test_bad_input_messages() -> None:
    lstm = lnn.LSTM(I, H, num_layers=2)
    with pytest.raises(
        ValueError,
        match=r"LSTM: expected input of shape \(T, B, 4\) \(batch_first=False\) or unbatched "
        r"\(T, 4\), got \(6, 3, 7\)",
    ):
        lstm(torch.zeros(T, B, 7))
    with pytest.raises(ValueError, match=r"LSTM: expected input of shape .*got \(1, 6, 3, 4\)"):
        lstm(torch.zeros(1, T, B, I))
    with pytest.raises(
        ValueError, match=r"LSTM: expected input of shape \(B, T, 4\) \(batch_first=True\)"
    ):
        lnn.LSTM(I, H, batch_first=True)(torch.zeros(B, T, 2))
    with pytest.raises(TypeError, match=r"LSTM: expected a floating-point input .*got torch.int64"):
        lstm(torch.zeros(T, B, I, dtype=torch.long))
    with pytest.raises(
        TypeError,
        match=r"LSTM: expected input of dtype torch.float32 \(the parameters' dtype\), "
        r"got torch.float64",
    ):
        lstm(torch.zeros(T, B, I, dtype=torch.float64))
    with pytest.raises(
        ValueError, match=r"LSTM: expected hx h_0 of shape \(2, 3, 5\).*got \(1, 3, 5\)"
    ):
        lstm(torch.zeros(T, B, I), (torch.zeros(1, B, H), torch.zeros(2, B, H)))
    with pytest.raises(
        ValueError, match=r"LSTM: expected hx c_0 of shape \(2, 3, 5\).*got \(2, 3, 4\)"
    ):
        lstm(torch.zeros(T, B, I), (torch.zeros(2, B, H), torch.zeros(2, B, 4)))
    with pytest.raises(
        ValueError,
        match=r"LSTM: for unbatched 2-D input, hx h_0 should be 2-D \(2, 5\), "
        r"got a 3-D tensor \(2, 1, 5\)",
    ):
        lstm(torch.zeros(T, I), (torch.zeros(2, 1, H), torch.zeros(2, 1, H)))
    with pytest.raises(TypeError, match=r"LSTM: expected hx as a tuple \(h_0, c_0\)"):
        lstm(torch.zeros(T, B, I), torch.zeros(2, B, H))
    with pytest.raises(
        TypeError, match=r"LSTM: expected hx h_0 of dtype torch.float32 .*got torch.float64"
    ):
        lstm(
            torch.zeros(T, B, I), (torch.zeros(2, B, H, dtype=torch.float64), torch.zeros(2, B, H))
        )
    with pytest.raises(TypeError, match="GRU: expected hx as a tensor h_0, got tuple"):
        lnn.GRU(I, H)(torch.zeros(T, B, I), (torch.zeros(1, B, H),))
    with pytest.raises(
        TypeError, match="RNN: expected input as a tensor or a PackedSequence, got list"
    ):
        lnn.RNN(I, H)([[0.0] * I])
    packed = pack_padded_sequence(torch.zeros(T, B, 2), torch.tensor([6, 5, 1]))
    with pytest.raises(
        ValueError, match=r"GRU: expected PackedSequence data of shape \(N, 4\), got \(12, 2\)"
    ):
        lnn.GRU(I, H)(packed)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="GRU: proj_size is only supported by LSTM"):
        lnn.GRU(I, H, proj_size=2)  # torch.nn.GRU raises ValueError too
    with pytest.raises(
        ValueError, match=r"LSTM: proj_size must be smaller than hidden_size \(5\), got 5"
    ):
        lnn.LSTM(I, H, proj_size=H)
    with pytest.raises(ValueError, match=r"LSTM: dropout must be a number in \[0, 1\], got 1.5"):
        lnn.LSTM(I, H, dropout=1.5)
    with pytest.raises(ValueError, match="LSTM: hidden_size must be an integer >= 1, got 0"):
        lnn.LSTM(I, 0)
    with pytest.raises(TypeError, match=r"GRU: num_layers must be an int, got 2\.0 \(float\)"):
        lnn.GRU(I, H, num_layers=2.0)
    with pytest.raises(ValueError, match="RNN: nonlinearity must be 'tanh' or 'relu', got 'gelu'"):
        lnn.RNN(I, H, nonlinearity="gelu")
    with pytest.raises(TypeError):
        lnn.LSTM(I, H, 1, True, False, 0.0, False, 0, None, None, True)  # extras are keyword-only
    with pytest.warns(UserWarning, match="num_layers=1"):
        lnn.LSTM(I, H, dropout=0.2)
