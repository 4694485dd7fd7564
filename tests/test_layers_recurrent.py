"""Keras-style recurrent layers: ``LSTM``, ``GRU``, ``SimpleRNN``, ``Bidirectional``.

* With weights converted from ``torch.nn.LSTM/GRU/RNN`` (the conversion is written out here:
  kernel transposes, the single Keras bias = ``b_ih + b_hh``, GRU blocks ``r, z, n`` ->
  ``z, r, h``), outputs, states and gradients equal torch's.
* Keras behaviour: merge modes, ``return_state``, ``stateful`` + ``reset_state``,
  ``go_backwards``, dropout, regularisers, configs.
* Bad input gives ``ValueError`` / ``TypeError`` naming the layer, the argument, what was
  expected and what came.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmkit import layers as L
from lstmkit import regularizers

B, T, F, H = 3, 6, 4, 5
TORCH = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "SimpleRNN": torch.nn.RNN}
LAYERS = {"LSTM": L.LSTM, "GRU": L.GRU, "SimpleRNN": L.SimpleRNN}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _zrh(a: np.ndarray) -> np.ndarray:
    """torch's GRU blocks r, z, n (axis 0) -> Keras's z, r, h."""
    r, z, n = np.split(a, 3, axis=0)
    return np.concatenate([z, r, n], axis=0)


def keras_weights(kind: str, module: torch.nn.Module, suffix: str = "") -> list[np.ndarray]:
    """A torch module's weights (one direction) in Keras's ``get_weights`` layout."""
    w_ih, w_hh, b_ih, b_hh = (
        _np(getattr(module, f"{n}_l0{suffix}"))
        for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    )
    if kind == "GRU":  # reset_after=True keeps both biases, as rows of a (2, 3H) array
        return [_zrh(w_ih).T, _zrh(w_hh).T, np.stack([_zrh(b_ih), _zrh(b_hh)])]
    return [w_ih.T, w_hh.T, b_ih + b_hh]  # LSTM gate order i, f, g(c), o is the same


def torch_pair(kind: str, dtype: str = "float32", bidirectional: bool = False, **layer_kw):
    torch.manual_seed(0)
    ref = TORCH[kind](F, H, batch_first=True, bidirectional=bidirectional, dtype=DTYPES[dtype])
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.4)
    layer = LAYERS[kind](H, dtype=dtype, **layer_kw)
    if bidirectional:
        layer = L.Bidirectional(layer)
    layer.build((B, T, F))
    weights = keras_weights(kind, ref)
    if bidirectional:
        weights += keras_weights(kind, ref, "_reverse")
    layer.set_weights(weights)
    return ref, layer


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_equals_torch_after_weight_conversion(kind, dtype, assert_close) -> None:
    ref, layer = torch_pair(kind, dtype, return_sequences=True, return_state=True)
    x = torch.randn(B, T, F, dtype=DTYPES[dtype])
    n_states = 2 if kind == "LSTM" else 1
    states = [torch.randn(B, H, dtype=DTYPES[dtype]) for _ in range(n_states)]
    for initial in (None, states):
        x_ref = x.clone().requires_grad_()
        x_mine = x.clone().requires_grad_()
        hx = None
        if initial is not None:
            hx = tuple(s.unsqueeze(0) for s in initial) if kind == "LSTM" else initial[0][None]
        out_ref, h_ref = ref(x_ref, hx)
        h_ref = list(h_ref) if kind == "LSTM" else [h_ref]
        got = layer(x_mine, initial_state=initial)
        assert len(got) == 1 + n_states
        assert_close(got[0], out_ref, "sequence")
        for k, s in enumerate(got[1:]):
            assert_close(s, h_ref[k][0], f"state {k}")
        weight = torch.linspace(-1, 1, out_ref.numel(), dtype=x.dtype).view(out_ref.shape)
        g_ref = torch.autograd.grad(
            (out_ref * weight).sum(), [x_ref, ref.weight_ih_l0, ref.weight_hh_l0, ref.bias_ih_l0]
        )
        g_mine = torch.autograd.grad(
            (got[0] * weight).sum(),
            [x_mine, layer.cell.weight_ih, layer.cell.weight_hh, layer.cell.bias_ih],
        )
        for name, a, b in zip(["x", "kernel", "recurrent_kernel", "bias"], g_mine, g_ref):
            assert_close(a, b, f"d/d {name}")
    # last output only
    layer.return_sequences, layer.return_state = False, False
    assert_close(layer(x), ref(x)[0][:, -1], "last output")


@pytest.mark.parametrize("kind", list(LAYERS))
def test_get_weights_is_keras_layout(kind) -> None:
    ref, layer = torch_pair(kind)
    shapes = [w.shape for w in layer.get_weights()]
    g = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[kind]
    bias = (2, g * H) if kind == "GRU" else (g * H,)
    assert shapes == [(F, g * H), (H, g * H), bias]
    for got, want in zip(layer.get_weights(), keras_weights(kind, ref)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert layer.count_params() == sum(int(np.prod(s)) for s in shapes)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merge_modes_equal_torch(kind, merge_mode, assert_close) -> None:
    ref, layer = torch_pair(kind, "float64", bidirectional=True, return_sequences=True)
    layer.merge_mode = merge_mode
    x = torch.randn(B, T, F, dtype=torch.float64)
    out, _ = ref(x)
    fwd, bwd = out[..., :H], out[..., H:]
    want = {
        "concat": out,
        "sum": fwd + bwd,
        "mul": fwd * bwd,
        "ave": (fwd + bwd) / 2,
    }
    got = layer(x)
    if merge_mode is None:
        assert isinstance(got, list) and len(got) == 2
        assert_close(got[0], fwd, "forward")
        assert_close(got[1], bwd, "backward")
    else:
        assert_close(got, want[merge_mode], merge_mode)


def test_bidirectional_last_output_and_states_equal_torch(assert_close) -> None:
    ref, layer = torch_pair("LSTM", "float64", bidirectional=True, return_state=True)
    x = torch.randn(B, T, F, dtype=torch.float64)
    out, (h_n, c_n) = ref(x)
    got = layer(x)
    assert len(got) == 5
    # forward: its last step; backward: its state after reading x[:, 0]
    assert_close(got[0], torch.cat([out[:, -1, :H], out[:, 0, H:]], -1), "last output")
    for k, want in enumerate([h_n[0], c_n[0], h_n[1], c_n[1]]):
        assert_close(got[1 + k], want, f"state {k}")
    # initial_state: forward states then backward states
    s = [torch.randn(B, H, dtype=torch.float64) for _ in range(4)]
    out, (h_n, c_n) = ref(x, (torch.stack([s[0], s[2]]), torch.stack([s[1], s[3]])))
    got = layer(x, initial_state=s)
    for k, want in enumerate([h_n[0], c_n[0], h_n[1], c_n[1]]):
        assert_close(got[1 + k], want, f"state {k} from initial_state")


def test_bidirectional_mask_zeroes_padded_steps() -> None:
    """Keras 3 forces zero_output_for_mask = return_sequences on the inner layers."""
    layer = L.Bidirectional(L.LSTM(3, return_sequences=True))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]]).bool()
    out = layer(torch.randn(B, T, F), mask=mask)
    assert torch.equal(out[~mask], torch.zeros(int((~mask).sum()), 6))
    assert layer.forward_layer.zero_output_for_mask and layer.backward_layer.zero_output_for_mask
    assert not L.Bidirectional(L.LSTM(3)).forward_layer.zero_output_for_mask


@pytest.mark.parametrize("kind", list(LAYERS))
def test_go_backwards_is_the_layer_on_the_reversed_input(kind, assert_close) -> None:
    ref, fwd = torch_pair(kind, "float64", return_sequences=True)
    back = LAYERS[kind](H, go_backwards=True, return_sequences=True, dtype="float64")
    back.build((B, T, F))
    back.set_weights(fwd.get_weights())
    x = torch.randn(B, T, F, dtype=torch.float64)
    mask = torch.tensor([[1, 0, 1, 1, 1, 0]] * B).bool()
    # processing order, not flipped back (Keras): out[:, 0] belongs to the last input step
    assert_close(back(x), ref(x.flip(1))[0], "go_backwards sequence")
    assert_close(back(x, mask=mask), fwd(x.flip(1), mask=mask.flip(1)), "masked")
    back.return_sequences = False
    assert_close(back(x), ref(x.flip(1))[0][:, -1], "go_backwards last output")


@pytest.mark.parametrize("kind", list(LAYERS))
def test_stateful_carries_state_until_reset(kind, assert_close) -> None:
    _, whole = torch_pair(kind, "float64", return_sequences=True)
    stateful = LAYERS[kind](H, stateful=True, return_sequences=True, dtype="float64")
    stateful.build((B, T, F))
    stateful.set_weights(whole.get_weights())
    x = torch.randn(B, T, F, dtype=torch.float64)
    first = stateful(x[:, :2])
    second = stateful(x[:, 2:])
    assert_close(torch.cat([first, second], 1), whole(x), "two calls == one call")
    stateful.reset_state()
    assert_close(stateful(x[:, :2]), first, "after reset_state")
    assert len(stateful.get_weights()) == 3  # the states are not weights (Keras)
    with pytest.raises(
        ValueError, match=r"stateful layer built for batch size 3, got a batch of 2"
    ):
        stateful(x[:2])
    # reset_state(states) sets them
    n = 2 if kind == "LSTM" else 1
    stateful.reset_state([torch.ones(B, H, dtype=torch.float64)] * n)
    assert_close(
        stateful(x),
        whole(x, initial_state=[torch.ones(B, H, dtype=torch.float64)] * n),
        "set state",
    )


@pytest.mark.parametrize("kind", list(LAYERS))
def test_dropout_train_eval_and_seed(kind) -> None:
    x = torch.randn(B, T, F)

    def make(**kw):
        torch.manual_seed(1)
        layer = LAYERS[kind](H, return_sequences=True, **kw)
        layer.build((B, T, F))
        return layer

    plain = make()
    for kw in (
        {"dropout": 0.5},
        {"recurrent_dropout": 0.5},
        {"dropout": 0.3, "recurrent_dropout": 0.3},
    ):
        a, b = make(seed=7, **kw), make(seed=7, **kw)
        assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), plain.get_weights()))
        train_a = a(x, training=True)
        assert not torch.allclose(train_a, plain(x)), f"{kw}: dropout changed nothing"
        assert torch.equal(train_a, b(x, training=True)), f"{kw}: not reproducible with seed"
        assert torch.equal(a(x, training=False), plain(x, training=False)), "eval must be identity"
        a.eval()
        assert torch.equal(a(x), plain(x, training=False)), "eval mode must be identity"
        a.train()
        assert not torch.equal(a(x, training=True), train_a), "masks must change between calls"


def test_input_dropout_is_one_mask_per_sequence() -> None:
    """dropout alone: one (B, F) mask for every step (variational), scaled by 1/(1-rate)."""
    layer = L.SimpleRNN(
        F,
        activation="linear",
        use_bias=False,
        dropout=0.5,
        seed=3,
        return_sequences=True,
        kernel_initializer="identity",
        recurrent_initializer="zeros",
    )
    x = torch.rand(B, T, F) + 0.5  # no zeros
    out = layer(x, training=True)  # h_t = x_t ⊙ m / 0.5
    keep = out != 0
    assert torch.equal(keep, keep[:, :1].expand_as(keep)), "the mask must be constant in time"
    torch.testing.assert_close(out[keep], (x * 2)[keep])
    assert 0 < int(keep[:, 0].sum()) < B * F


def test_regularizer_losses_by_hand() -> None:
    layer = L.LSTM(
        H,
        return_sequences=True,
        kernel_regularizer=regularizers.L2(0.01),
        recurrent_regularizer="l1",
        bias_regularizer=regularizers.L1L2(l1=0.1, l2=0.2),
        activity_regularizer=regularizers.L2(0.5),
    )
    x = torch.randn(B, T, F)
    out = layer(x)
    kernel, recurrent, bias = layer.get_weights()
    want = [
        0.01 * np.sum(kernel**2),
        0.01 * np.sum(np.abs(recurrent)),  # "l1" = L1(0.01)
        0.1 * np.sum(np.abs(bias)) + 0.2 * np.sum(bias**2),
        0.5 * float((out.detach() ** 2).sum()) / B,  # activity: per sample, as Keras
    ]
    got = [float(v.detach()) for v in layer.losses]
    np.testing.assert_allclose(sorted(got), sorted(want), rtol=1e-5)
    assert layer.losses[0].requires_grad


CONFIG_LAYERS = {
    "LSTM": lambda: L.LSTM(
        4,
        return_sequences=True,
        go_backwards=True,
        unit_forget_bias=False,
        dropout=0.1,
        recurrent_dropout=0.2,
        seed=3,
        kernel_regularizer="l2",
        activation="relu",
        recurrent_activation="hard_sigmoid",
        kernel_initializer="he_normal",
        name="enc",
    ),
    "GRU": lambda: L.GRU(4, reset_after=False, return_state=True, use_bias=False, stateful=True),
    "SimpleRNN": lambda: L.SimpleRNN(4, activation="relu", zero_output_for_mask=True),
    "Bidirectional": lambda: L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="ave"),
    "Bidirectional-backward": lambda: L.Bidirectional(
        L.LSTM(3, return_sequences=True),
        backward_layer=L.SimpleRNN(2, go_backwards=True, return_sequences=True),
    ),
}


@pytest.mark.parametrize("name", list(CONFIG_LAYERS))
def test_config_round_trip(name) -> None:
    layer = CONFIG_LAYERS[name]()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    layer.build((B, T, F))
    clone.build((B, T, F))
    clone.set_weights(layer.get_weights())
    x = torch.randn(B, T, F)
    a, b = layer(x, training=False), clone(x, training=False)
    for u, v in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
        assert torch.equal(u, v)


def test_keras_defaults_in_config() -> None:
    c = L.LSTM(8).get_config()
    for key, value in {
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "unit_forget_bias": True,
        "dropout": 0.0,
        "recurrent_dropout": 0.0,
        "seed": None,
        "return_sequences": False,
        "return_state": False,
        "go_backwards": False,
        "stateful": False,
        "unroll": False,
        "zero_output_for_mask": False,
    }.items():
        assert c[key] == value, key
    assert c["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert c["recurrent_initializer"]["class_name"] == "Orthogonal"
    assert L.GRU(8).get_config()["reset_after"] is True
    assert "recurrent_activation" not in L.SimpleRNN(8).get_config()


def test_numpy_inputs_and_masks() -> None:
    layer = L.GRU(H, return_sequences=True)
    x = np.random.default_rng(0).normal(size=(B, T, F))  # float64 numpy -> float32 as Keras
    mask = np.array([[True] * T] * B)
    out = layer(x, mask=mask)
    assert out.dtype == torch.float32 and out.shape == (B, T, H)
    torch.testing.assert_close(out, layer(torch.tensor(x, dtype=torch.float32)))


# -- bad input ---------------------------------------------------------------------------------


def test_bad_input_names_layer_argument_expected_and_got() -> None:
    layer = L.LSTM(H, name="enc")
    with pytest.raises(
        ValueError,
        match=r"LSTM 'enc': expected inputs of shape \(B, T, F\) with a known F, got \(3, 4\)",
    ):
        layer(torch.zeros(B, F))
    layer.build((B, T, F))
    with pytest.raises(
        ValueError, match=r"LSTM 'enc': expected inputs of shape \(B, T, 4\), got \(3, 6, 7\)"
    ):
        layer(torch.zeros(B, T, 7))
    with pytest.raises(
        ValueError, match=r"LSTM 'enc': expected inputs of shape \(B, T, 4\), got \(3, 6\)"
    ):
        layer(torch.zeros(B, T))
    with pytest.raises(
        TypeError, match=r"LSTM 'enc': expected floating-point inputs, got torch.int64"
    ):
        layer(torch.zeros(B, T, F, dtype=torch.long))
    with pytest.raises(
        TypeError, match=r"LSTM 'enc': expected floating-point inputs, got torch.int32"
    ):
        layer(np.zeros((B, T, F), dtype=np.int32))
    with pytest.raises(
        ValueError, match=r"LSTM 'enc': expected initial_state as a list of 2 tensor\(s\), got 1"
    ):
        layer(torch.zeros(B, T, F), initial_state=[torch.zeros(B, H)])
    with pytest.raises(
        ValueError, match=r"LSTM 'enc': expected initial_state\[1\] of shape \(3, 5\), got \(2, 5\)"
    ):
        layer(torch.zeros(B, T, F), initial_state=[torch.zeros(B, H), torch.zeros(2, H)])
    with pytest.raises(
        ValueError, match=r"GRU '\w+': expected initial_state\[0\] of shape \(3, 5\), got \(3, 4\)"
    ):
        L.GRU(H)(torch.zeros(B, T, F), initial_state=torch.zeros(B, 4))
    with pytest.raises(
        ValueError, match=r"LSTM 'enc': expected mask of shape \(3, 6\) \(B, T\), got \(3, 5\)"
    ):
        layer(torch.zeros(B, T, F), mask=torch.ones(B, T - 1, dtype=torch.bool))
    with pytest.raises(
        ValueError, match=r"LSTM 'enc': expected mask of shape \(3, 6\) \(B, T\), got \(3, 6, 4\)"
    ):
        layer(torch.zeros(B, T, F), mask=torch.ones(B, T, F, dtype=torch.bool))


def test_bad_constructor_arguments() -> None:
    with pytest.raises(
        ValueError,
        match=r"LSTM: kernel_initializer: unknown initializer 'glorot'; "
        r"expected one of .*glorot_uniform",
    ):
        L.LSTM(H, kernel_initializer="glorot")
    with pytest.raises(
        ValueError, match=r"GRU: recurrent_initializer: unknown initializer 'orthogonall'"
    ):
        L.GRU(H, recurrent_initializer="orthogonall")
    with pytest.raises(
        ValueError, match=r"GRU: activation: unknown activation 'tanhh'; expected one of .*tanh"
    ):
        L.GRU(H, activation="tanhh")
    with pytest.raises(
        ValueError, match=r"LSTM: recurrent_activation: unknown activation 'sigmod'"
    ):
        L.LSTM(H, recurrent_activation="sigmod")
    with pytest.raises(
        TypeError,
        match=r"SimpleRNN: activation: expected an activation name or a callable, got int",
    ):
        L.SimpleRNN(H, activation=3)
    with pytest.raises(ValueError, match=r"SimpleRNN: units must be a positive integer, got 0"):
        L.SimpleRNN(0)
    with pytest.raises(ValueError, match=r"LSTM: units must be a positive integer, got 2\.5"):
        L.LSTM(2.5)
    with pytest.raises(ValueError, match=r"GRU: units must be a positive integer, got True"):
        L.GRU(True)
    sized = L.LSTM(np.int64(3))  # numpy integers count as integers, as in Keras
    assert sized.units == 3 and type(sized.units) is int
    with pytest.raises(ValueError, match=r"LSTM: dropout must be a float in \[0, 1\), got 1\.5"):
        L.LSTM(H, dropout=1.5)
    with pytest.raises(
        ValueError, match=r"GRU: recurrent_dropout must be a float in \[0, 1\), got -0\.1"
    ):
        L.GRU(H, recurrent_dropout=-0.1)
    with pytest.raises(ValueError, match=r"LSTM: kernel_regularizer: unknown regularizer 'l3'"):
        L.LSTM(H, kernel_regularizer="l3")
    with pytest.raises(ValueError, match=r"Bidirectional: merge_mode must be one of .*got 'max'"):
        L.Bidirectional(L.LSTM(H), merge_mode="max")
    with pytest.raises(
        ValueError,
        match=r"Bidirectional: layer must be an LSTM, GRU or SimpleRNN layer, got Linear",
    ):
        L.Bidirectional(torch.nn.Linear(2, 2))
    with pytest.raises(
        ValueError, match=r"Bidirectional: backward_layer.go_backwards must be the opposite"
    ):
        L.Bidirectional(L.LSTM(H), backward_layer=L.LSTM(H))
    with pytest.raises(
        TypeError, match=r"SimpleRNN: unexpected keyword argument recurrent_activation"
    ):
        L.SimpleRNN(H, recurrent_activation="sigmoid")
    with pytest.raises(TypeError, match=r"LSTM: unexpected keyword argument\(s\) bogus"):
        L.LSTM(H, bogus=1)


def test_bidirectional_bad_initial_state() -> None:
    layer = L.Bidirectional(L.LSTM(3, return_state=True))
    with pytest.raises(
        ValueError,
        match=r"Bidirectional '\w+': initial_state must be a list with the forward states "
        r"followed by the backward states \(an even number\), got 3",
    ):
        layer(torch.zeros(2, 4, 3), initial_state=[torch.zeros(2, 3)] * 3)
    with pytest.raises(
        ValueError,
        match=r"Bidirectional '\w+': set_weights expects 6 arrays \(forward then backward\), got 3",
    ):
        layer.set_weights(layer.get_weights()[:3])
    with pytest.raises(ValueError, match=r"weight 0 must have shape \(3, 12\), got \(4, 12\)"):
        layer.set_weights([np.zeros((4, 12)), *layer.get_weights()[1:]])
