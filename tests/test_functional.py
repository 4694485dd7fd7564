"""The step equations of :mod:`lstmkit.functional`.

1. Fixed numbers: constant weights whose results were worked out by hand (with ``math``),
   written here as literals, so that a changed gate order, a missing bias or a wrong equation
   shows.
2. The variants (peephole, CIFG, layer norm, projection, dropout masks) against independent
   expressions written in this file.
3. ``gradcheck`` in float64 for every variant of ``lstm_step``, both GRU conventions and the RNN.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from lstmkit import activations
from lstmkit import functional as fn
from lstmkit.functional import LayerNorm, LSTMState, Peephole

D64 = torch.float64


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


# -- 1. fixed numbers ----------------------------------------------------------------------


def test_lstm_all_zero_weights_halves_the_cell() -> None:
    # All pre-activations are 0: i = f = o = σ(0) = 0.5, g = tanh(0) = 0.
    # c = 0.5·c0 + 0.5·0 = 0.5 (c0 = 1); h = 0.5·tanh(0.5) = 0.23105857863000487.
    B, I, H = 2, 3, 4
    state = LSTMState(torch.full((B, H), 0.3), torch.ones(B, H))
    (h, c), (i, f, g, o) = fn.lstm_step(
        torch.randn(B, I), state, torch.zeros(4 * H, I), torch.zeros(4 * H, H)
    )
    for gate in (i, f, o):
        assert torch.equal(gate, torch.full((B, H), 0.5))
    assert torch.equal(g, torch.zeros(B, H))
    assert torch.equal(c, torch.full((B, H), 0.5))
    torch.testing.assert_close(h, torch.full((B, H), 0.23105857863000487), rtol=0, atol=1e-7)


def test_lstm_constant_weights() -> None:
    # W_ih = 0.1, W_hh = 0.2 everywhere; b_ih = b_hh = 0.05; x = [1, 2, 3]; h0 = 0.5; c0 = -1.
    # Every gate sees z = 0.1·6 + 0.2·(0.5 + 0.5) + 0.1 = 0.9.
    # i = f = o = σ(0.9) = 0.7109495026250039, g = tanh(0.9) = 0.7162978701990245
    # c = -i + i·g = -0.2016978880756578; h = o·tanh(c) = -0.1414835831643036.
    H = 2
    x = torch.tensor([[1.0, 2.0, 3.0]], dtype=D64)
    state = LSTMState(torch.full((1, H), 0.5, dtype=D64), torch.full((1, H), -1.0, dtype=D64))
    (h, c), (i, f, g, o) = fn.lstm_step(
        x,
        state,
        torch.full((4 * H, 3), 0.1, dtype=D64),
        torch.full((4 * H, H), 0.2, dtype=D64),
        torch.full((4 * H,), 0.05, dtype=D64),
        torch.full((4 * H,), 0.05, dtype=D64),
    )
    for gate in (i, f, o):
        torch.testing.assert_close(gate, torch.full_like(gate, 0.7109495026250039))
    torch.testing.assert_close(g, torch.full_like(g, 0.7162978701990245))
    torch.testing.assert_close(c, torch.full_like(c, -0.2016978880756578))
    torch.testing.assert_close(h, torch.full_like(h, -0.1414835831643036))


def test_lstm_gate_order_is_i_f_g_o() -> None:
    # Zero weights, one bias per gate block: b = [1 (i), -1 (f), 0.5 (g), 2 (o)]; c0 = 2.
    # i = σ(1) = 0.7310585786300049, f = σ(-1) = 0.2689414213699951, g = tanh(0.5) =
    # 0.46211715726000974, o = σ(2) = 0.8807970779778823; c = f·2 + i·g = 0.8757175548870313;
    # h = o·tanh(c) = 0.6203167029871306.
    H = 3
    bias = torch.tensor([1.0, -1.0, 0.5, 2.0], dtype=D64).repeat_interleave(H)
    state = LSTMState(torch.zeros(1, H, dtype=D64), torch.full((1, H), 2.0, dtype=D64))
    (h, c), gates = fn.lstm_step(
        torch.ones(1, 2, dtype=D64),
        state,
        torch.zeros(4 * H, 2, dtype=D64),
        torch.zeros(4 * H, H, dtype=D64),
        bias,
    )
    want = {
        "i": 0.7310585786300049,
        "f": 0.2689414213699951,
        "g": 0.46211715726000974,
        "o": 0.8807970779778823,
    }
    for name, value in want.items():
        got = getattr(gates, name)
        torch.testing.assert_close(got, torch.full_like(got, value), msg=name)
    torch.testing.assert_close(c, torch.full_like(c, 0.8757175548870313))
    torch.testing.assert_close(h, torch.full_like(h, 0.6203167029871306))


def _gru_scalar_weights() -> tuple[torch.Tensor, ...]:
    # H = I = 1; blocks r, z, n.
    w_ih = torch.tensor([[0.5], [-0.5], [1.0]], dtype=D64)
    w_hh = torch.tensor([[0.25], [0.75], [-1.0]], dtype=D64)
    b_ih = torch.tensor([0.1, 0.2, 0.3], dtype=D64)
    b_hh = torch.tensor([-0.1, 0.4, 0.6], dtype=D64)
    return w_ih, w_hh, b_ih, b_hh


@pytest.mark.parametrize(
    ("reset_after", "n_want", "h_want"),
    [
        # n = tanh(1·2 + 0.3 + r·(-1·0.5 + 0.6))
        (True, 0.9828617397455348, 0.7444485985744443),
        # n = tanh(1·2 + 0.3 + (-1)·(r·0.5) + 0.6)
        (False, 0.9872006141709335, 0.7466451523399967),
    ],
)
def test_gru_fixed_numbers(reset_after: bool, n_want: float, h_want: float) -> None:
    # x = 2, h0 = 0.5:  r = σ(0.5·2 + 0.1 + 0.25·0.5 - 0.1) = 0.7549149868676283,
    # z = σ(-0.5·2 + 0.2 + 0.75·0.5 + 0.4) = 0.49375032550048964, h = (1 - z)·n + z·h0.
    x, h0 = torch.tensor([[2.0]], dtype=D64), torch.tensor([[0.5]], dtype=D64)
    h, (r, z, n) = fn.gru_step(x, h0, *_gru_scalar_weights(), reset_after=reset_after)
    assert float(r) == pytest.approx(0.7549149868676283, abs=1e-14)
    assert float(z) == pytest.approx(0.49375032550048964, abs=1e-14)
    assert float(n) == pytest.approx(n_want, abs=1e-14)
    assert float(h) == pytest.approx(h_want, abs=1e-14)


@pytest.mark.parametrize(
    ("activation", "h0", "want"),
    [("tanh", 0.25, -0.8336546070121552), ("relu", 1.0, 0.3)],  # v = -1.2, then 0.3
)
def test_rnn_fixed_numbers(activation: str, h0: float, want: float) -> None:
    # v = 0.5·1 - 1·2 + 2·h0 + 0.1 - 0.3;  h = tanh(v) or relu(v).
    h, gates = fn.rnn_step(
        torch.tensor([[1.0, 2.0]], dtype=D64),
        torch.tensor([[h0]], dtype=D64),
        torch.tensor([[0.5, -1.0]], dtype=D64),
        torch.tensor([[2.0]], dtype=D64),
        torch.tensor([0.1], dtype=D64),
        torch.tensor([-0.3], dtype=D64),
        activation=activations.get(activation),
    )
    assert gates == ()
    assert float(h) == pytest.approx(want, abs=1e-14)


def test_hard_sigmoid_recurrent_activation_is_used() -> None:
    # Zero weights, bias 2 on every gate: hard_sigmoid(2) = relu6(5)/6 = 5/6 (σ(2) would be 0.88).
    H = 2
    (_, _), (i, f, g, o) = fn.lstm_step(
        torch.zeros(1, 1),
        LSTMState(torch.zeros(1, H), torch.zeros(1, H)),
        torch.zeros(4 * H, 1),
        torch.zeros(4 * H, H),
        torch.full((4 * H,), 2.0),
        recurrent_activation=activations.get("hard_sigmoid"),
    )
    for gate in (i, f, o):
        torch.testing.assert_close(gate, torch.full_like(gate, 5.0 / 6.0))
    torch.testing.assert_close(g, torch.full_like(g, math.tanh(2.0)))


# -- 2. variants against independent expressions --------------------------------------------


def _layer_norm(v: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    mean = v.mean(-1, keepdim=True)
    var = ((v - mean) ** 2).mean(-1, keepdim=True)  # biased, as Ba et al.
    return (v - mean) / torch.sqrt(var + 1e-5) * gain + bias


def _rand(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=D64)


def _expected_lstm(
    x, h, c, w_ih, w_hh, b_ih, b_hh, *, peep=None, ln=None, coupled=False, w_hr=None
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """The LSTM variants written out directly, one equation per line."""
    xw, hw = x @ w_ih.T, h @ w_hh.T
    if ln is not None:
        xw, hw = (
            _layer_norm(xw, ln.ih_weight, ln.ih_bias),
            _layer_norm(hw, ln.hh_weight, ln.hh_bias),
        )
    z = xw + b_ih + hw + b_hh
    H = c.shape[-1]
    if coupled:
        z_i, z_g, z_o = z[:, :H], z[:, H : 2 * H], z[:, 2 * H :]
        i = torch.sigmoid(z_i + (peep.i * c if peep else 0))
        f = 1 - i
    else:
        z_i, z_f, z_g, z_o = (z[:, k * H : (k + 1) * H] for k in range(4))
        i = torch.sigmoid(z_i + (peep.i * c if peep else 0))
        f = torch.sigmoid(z_f + (peep.f * c if peep else 0))
    g = torch.tanh(z_g)
    c_new = f * c + i * g
    o = torch.sigmoid(z_o + (peep.o * c_new if peep else 0))
    c_out = _layer_norm(c_new, ln.c_weight, ln.c_bias) if ln is not None else c_new
    h_new = o * torch.tanh(c_out)
    if w_hr is not None:
        h_new = h_new @ w_hr.T
    return h_new, c_new, [i, f, g, o]


VARIANTS = {
    "plain": {},
    "peephole": {"peephole": True},
    "layer_norm": {"layer_norm": True},
    "coupled": {"coupled": True},
    "projection": {"proj": 3},
    "peephole_coupled": {"peephole": True, "coupled": True},
    "all": {"peephole": True, "layer_norm": True, "coupled": True, "proj": 3},
}


def _lstm_args(B=3, I=4, H=5, peephole=False, layer_norm=False, coupled=False, proj=0):
    G, P = (3 if coupled else 4), (proj or H)
    args = {
        "x": _rand(B, I),
        "h": _rand(B, P),
        "c": _rand(B, H),
        "w_ih": _rand(G * H, I),
        "w_hh": _rand(G * H, P),
        "b_ih": _rand(G * H),
        "b_hh": _rand(G * H),
        "peep": Peephole(_rand(H), _rand(H), _rand(H)) if peephole else None,
        "ln": LayerNorm(*(_rand(n) for n in (G * H, G * H, G * H, G * H, H, H)))
        if layer_norm
        else None,
        "coupled": coupled,
        "w_hr": _rand(P, H) if proj else None,
    }
    return args


def _call_lstm(a: dict, **extra):
    return fn.lstm_step(
        a["x"],
        LSTMState(a["h"], a["c"]),
        a["w_ih"],
        a["w_hh"],
        a["b_ih"],
        a["b_hh"],
        peephole=a["peep"],
        layer_norm=a["ln"],
        coupled=a["coupled"],
        weight_hr=a["w_hr"],
        **extra,
    )


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_lstm_variants_match_written_out_equations(variant: str) -> None:
    torch.manual_seed(1)
    a = _lstm_args(**VARIANTS[variant])
    (h, c), gates = _call_lstm(a)
    h_want, c_want, gates_want = _expected_lstm(
        a["x"],
        a["h"],
        a["c"],
        a["w_ih"],
        a["w_hh"],
        a["b_ih"],
        a["b_hh"],
        peep=a["peep"],
        ln=a["ln"],
        coupled=a["coupled"],
        w_hr=a["w_hr"],
    )
    torch.testing.assert_close(h, h_want, rtol=0, atol=1e-12)
    torch.testing.assert_close(c, c_want, rtol=0, atol=1e-12)
    for got, want, name in zip(gates, gates_want, "ifgo"):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12, msg=name)
    assert h.shape == (3, VARIANTS[variant].get("proj", 5))


def test_peephole_output_gate_sees_the_new_cell() -> None:
    # Only p_o is non-zero: o must move with c_t, not c_{t-1}. With zero weights and c0 = 0,
    # c_t = σ(0)·tanh(0) = 0... so give g a bias: g = tanh(1), c_t = 0.5·tanh(1) (c0 = 0).
    H = 1
    bias = torch.tensor([0.0, 0.0, 1.0, 0.0], dtype=D64)
    zero = torch.zeros(1, dtype=D64)
    peep = Peephole(zero, zero, torch.tensor([2.0], dtype=D64))
    (h, c), (i, _, _, o) = fn.lstm_step(
        torch.zeros(1, 1, dtype=D64),
        LSTMState(torch.zeros(1, H, dtype=D64), torch.zeros(1, H, dtype=D64)),
        torch.zeros(4, 1, dtype=D64),
        torch.zeros(4, 1, dtype=D64),
        bias,
        peephole=peep,
    )
    c_t = 0.5 * math.tanh(1.0)
    assert float(c) == pytest.approx(c_t, abs=1e-14)
    assert float(o) == pytest.approx(sig(2.0 * c_t), abs=1e-14)  # σ(0 + p_o·c_t) ≠ σ(0)
    assert float(i) == 0.5  # p_i = 0
    assert float(h) == pytest.approx(sig(2.0 * c_t) * math.tanh(c_t), abs=1e-14)


def test_projected_input_equals_full_step() -> None:
    torch.manual_seed(2)
    a = _lstm_args(layer_norm=True)
    xw = fn.input_transform(a["x"], a["w_ih"], a["b_ih"], layer_norm=(a["ln"][0], a["ln"][1]))
    full = _call_lstm(a)
    pre = fn.lstm_step(
        xw,
        LSTMState(a["h"], a["c"]),
        None,
        a["w_hh"],
        None,
        a["b_hh"],
        layer_norm=a["ln"],
        projected_input=True,
    )
    torch.testing.assert_close(pre[0].h, full[0].h, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="weight_ih is required"):
        fn.lstm_step(a["x"], LSTMState(a["h"], a["c"]), None, a["w_hh"])


def test_dropout_masks_per_gate_block() -> None:
    torch.manual_seed(3)
    B, I, H, G = 2, 3, 4, 4
    x, w_ih = _rand(B, I), _rand(G * H, I)
    mask = (torch.rand(G, B, I) > 0.5).double() * 2.0
    got = fn.input_transform(x, w_ih, dropout_mask=mask)
    want = torch.cat([(x * mask[k]) @ w_ih[k * H : (k + 1) * H].T for k in range(G)], -1)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    # a (B, T, I) input takes the same per-sequence masks at every step
    xs = _rand(B, 5, I)
    got_seq = fn.input_transform(xs, w_ih, dropout_mask=mask)
    torch.testing.assert_close(
        got_seq[:, 2], fn.input_transform(xs[:, 2], w_ih, dropout_mask=mask), rtol=0, atol=1e-12
    )
    h, w_hh = _rand(B, H), _rand(G * H, H)
    rmask = (torch.rand(G, B, H) > 0.5).double()
    got_h = fn.recurrent_transform(h, w_hh, rmask)
    want_h = torch.cat([(h * rmask[k]) @ w_hh[k * H : (k + 1) * H].T for k in range(G)], -1)
    torch.testing.assert_close(got_h, want_h, rtol=0, atol=1e-12)
    shared = rmask[0]
    torch.testing.assert_close(
        fn.recurrent_transform(h, w_hh, shared), (h * shared) @ w_hh.T, rtol=0, atol=1e-12
    )


def test_recurrent_dropout_leaves_cell_and_interpolation_alone() -> None:
    torch.manual_seed(4)
    B, H = 2, 3
    a = _lstm_args(B=B, H=H)
    zero_mask = torch.zeros(B, H, dtype=D64)
    (h, c), _ = _call_lstm(a, recurrent_dropout_mask=zero_mask)
    # h_{t-1} fully dropped == a zero h_{t-1}, while c_{t-1} still flows.
    b = dict(a, h=torch.zeros_like(a["h"]))
    (h2, c2), _ = _call_lstm(b)
    torch.testing.assert_close(c, c2, rtol=0, atol=1e-12)
    torch.testing.assert_close(h, h2, rtol=0, atol=1e-12)
    # GRU: the interpolation z·h_{t-1} uses the undropped state (Keras).
    w_ih, w_hh, b_ih, b_hh = _rand(3 * H, 2), _rand(3 * H, H), _rand(3 * H), _rand(3 * H)
    x, h0 = _rand(B, 2), _rand(B, H)
    h_drop, (r, z, n) = fn.gru_step(x, h0, w_ih, w_hh, b_ih, b_hh, recurrent_dropout_mask=zero_mask)
    _, (r0, z0, n0) = fn.gru_step(x, torch.zeros_like(h0), w_ih, w_hh, b_ih, b_hh)
    torch.testing.assert_close(r, r0)
    torch.testing.assert_close(z, z0)
    torch.testing.assert_close(n, n0)
    torch.testing.assert_close(h_drop, (1 - z0) * n0 + z0 * h0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_matches_written_out_equations(reset_after: bool) -> None:
    torch.manual_seed(5)
    B, I, H = 3, 4, 5
    x, h = _rand(B, I), _rand(B, H)
    w_ih, w_hh, b_ih, b_hh = _rand(3 * H, I), _rand(3 * H, H), _rand(3 * H), _rand(3 * H)
    got, (r, z, n) = fn.gru_step(x, h, w_ih, w_hh, b_ih, b_hh, reset_after=reset_after)
    blk = [slice(k * H, (k + 1) * H) for k in range(3)]
    r_w = torch.sigmoid(x @ w_ih[blk[0]].T + b_ih[blk[0]] + h @ w_hh[blk[0]].T + b_hh[blk[0]])
    z_w = torch.sigmoid(x @ w_ih[blk[1]].T + b_ih[blk[1]] + h @ w_hh[blk[1]].T + b_hh[blk[1]])
    if reset_after:
        n_w = torch.tanh(
            x @ w_ih[blk[2]].T + b_ih[blk[2]] + r_w * (h @ w_hh[blk[2]].T + b_hh[blk[2]])
        )
    else:
        n_w = torch.tanh(
            x @ w_ih[blk[2]].T + b_ih[blk[2]] + (r_w * h) @ w_hh[blk[2]].T + b_hh[blk[2]]
        )
    torch.testing.assert_close(r, r_w, rtol=0, atol=1e-12)
    torch.testing.assert_close(z, z_w, rtol=0, atol=1e-12)
    torch.testing.assert_close(n, n_w, rtol=0, atol=1e-12)
    torch.testing.assert_close(got, (1 - z_w) * n_w + z_w * h, rtol=0, atol=1e-12)


# -- 3. gradcheck in float64 -----------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_gradcheck_lstm_step(variant: str) -> None:
    torch.manual_seed(6)
    a = _lstm_args(
        B=2, I=3, H=3, **{**VARIANTS[variant], "proj": 2 if "proj" in VARIANTS[variant] else 0}
    )
    names = [k for k, v in a.items() if isinstance(v, torch.Tensor)]
    extra = []
    if a["peep"] is not None:
        extra += list(a["peep"])
    if a["ln"] is not None:
        extra += list(a["ln"])
    tensors = [a[k].requires_grad_() for k in names] + [t.requires_grad_() for t in extra]
    n_peep = 3 if a["peep"] is not None else 0

    def f(*ts):
        b = dict(a, **dict(zip(names, ts)))
        rest = ts[len(names) :]
        b["peep"] = Peephole(*rest[:n_peep]) if n_peep else None
        b["ln"] = LayerNorm(*rest[n_peep:]) if a["ln"] is not None else None
        (h, c), gates = _call_lstm(b)
        return h, c, *gates

    assert gradcheck(f, tensors, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gradcheck_gru_step(reset_after: bool) -> None:
    torch.manual_seed(7)
    B, I, H = 2, 3, 3
    ts = [_rand(B, I), _rand(B, H), _rand(3 * H, I), _rand(3 * H, H), _rand(3 * H), _rand(3 * H)]
    for t in ts:
        t.requires_grad_()

    def f(*args):
        h, gates = fn.gru_step(*args, reset_after=reset_after)
        return h, *gates

    assert gradcheck(f, ts, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_gradcheck_rnn_step(activation: str) -> None:
    torch.manual_seed(8)
    B, I, H = 2, 3, 3
    ts = [_rand(B, I), _rand(B, H), _rand(H, I), _rand(H, H), _rand(H), _rand(H)]
    for t in ts:
        t.requires_grad_()
    act = activations.get(activation)
    assert gradcheck(lambda *a: fn.rnn_step(*a, activation=act)[0], ts, eps=1e-6, atol=1e-7)


def test_gradcheck_with_per_gate_recurrent_dropout_masks() -> None:
    torch.manual_seed(9)
    B, H = 2, 3
    a = _lstm_args(B=B, I=2, H=H)
    mask = (torch.rand(4, B, H) > 0.4).double() / 0.6
    ts = [a[k].requires_grad_() for k in ("x", "h", "c", "w_ih", "w_hh", "b_ih", "b_hh")]

    def lstm(x, h, c, w_ih, w_hh, b_ih, b_hh):
        (h, c), _ = fn.lstm_step(
            x, LSTMState(h, c), w_ih, w_hh, b_ih, b_hh, recurrent_dropout_mask=mask
        )
        return h, c

    assert gradcheck(lstm, ts, eps=1e-6, atol=1e-7)
    gru_ts = [_rand(B, 2), _rand(B, H), _rand(3 * H, 2), _rand(3 * H, H)]
    for t in gru_ts:
        t.requires_grad_()
    assert gradcheck(
        lambda *g: fn.gru_step(*g, recurrent_dropout_mask=mask[:3])[0], gru_ts, eps=1e-6, atol=1e-7
    )
