"""``layers.RNN(cell)`` (issue 23 user-written cells, issue 21 Keras API): a cell lstmkit does
not have runs through the same layer, masks, directions, states, recording and ``fit`` as the
built-in cells, and equals a hand-written loop; Keras's ``LSTMCell``/``GRUCell``/
``SimpleRNNCell`` inside ``RNN`` equal the ``LSTM``/``GRU``/``SimpleRNN`` layers on every engine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lstmkit.layers as L
from lstmkit.inspect import record
from lstmkit.models import Sequential, load_model
from lstmkit.optimizers import Adam


# A minimal gated unit (Zhou et al. 2016's MGU, two weight blocks): not one of lstmkit's cells.
@L.register_layer
class MGU(L.Layer):
    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = self.state_size = units

    def build(self, input_shape):
        self.w = self.add_weight((input_shape[-1] + self.units, 2 * self.units), name="w")
        self.b = self.add_weight((2 * self.units,), initializer="zeros", name="b")

    def call(self, inputs, states):
        h = states[0]
        f, n = (torch.cat([inputs, h], -1) @ self.w + self.b).chunk(2, -1)
        f = torch.sigmoid(f)
        h = (1 - f) * h + f * torch.tanh(n)
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def hand_loop(cell: MGU, x, mask=None, reverse=False, h=None):
    """MGU over ``x (B, T, F)`` written out, with Keras's masking (carry state and output)."""
    batch, steps, _ = x.shape
    h = torch.zeros(batch, cell.units, dtype=x.dtype) if h is None else h
    y_prev = torch.zeros_like(h)
    outs = [None] * steps
    for t in range(steps - 1, -1, -1) if reverse else range(steps):
        gate = torch.cat([x[:, t], h], -1) @ cell.w + cell.b
        f, n = gate.chunk(2, -1)
        f = torch.sigmoid(f)
        new = (1 - f) * h + f * torch.tanh(n)
        if mask is not None:
            keep = mask[:, t : t + 1]
            new = torch.where(keep, new, h)
            y = torch.where(keep, new, y_prev)
        else:
            y = new
        h, y_prev, outs[t] = new, y, y
    return torch.stack(outs, 1), h


X = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(0))
MASK = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)


def test_user_cell_equals_the_hand_written_loop() -> None:
    torch.manual_seed(0)
    layer = L.RNN(MGU(5), return_sequences=True, return_state=True)
    seq, h = layer(X)
    ref_seq, ref_h = hand_loop(layer.cell, X)
    torch.testing.assert_close(seq, ref_seq, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, ref_h, atol=1e-6, rtol=0)


def test_user_cell_is_masked_as_keras() -> None:
    torch.manual_seed(0)
    layer = L.RNN(MGU(5), return_sequences=True, return_state=True)
    seq, h = layer(X, mask=MASK)
    ref_seq, ref_h = hand_loop(layer.cell, X, MASK)
    torch.testing.assert_close(seq, ref_seq, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, ref_h, atol=1e-6, rtol=0)
    # a masked step repeats the previous output, and the masked tail leaves the state alone
    torch.testing.assert_close(seq[1, 3], seq[1, 2])
    assert not torch.allclose(h[1], layer(X)[1][1])


def test_user_cell_backwards_bidirectional_and_initial_state() -> None:
    torch.manual_seed(0)
    back = L.RNN(MGU(5), go_backwards=True, return_sequences=True)
    seq = back(X)
    ref_seq, _ = hand_loop(back.cell, X, reverse=True)
    torch.testing.assert_close(seq, ref_seq.flip(1), atol=1e-6, rtol=0)  # Keras's order

    bi = L.Bidirectional(L.RNN(MGU(5), return_sequences=True))
    out = bi(X, mask=MASK)
    fwd, _ = hand_loop(bi.forward_layer.cell, X, MASK)
    bwd, _ = hand_loop(bi.backward_layer.cell, X, MASK, reverse=True)
    keep = MASK.unsqueeze(-1)
    torch.testing.assert_close(out[..., :5], fwd * keep, atol=1e-6, rtol=0)
    torch.testing.assert_close(out[..., 5:], bwd * keep, atol=1e-6, rtol=0)

    h0 = torch.randn(3, 5)
    layer = L.RNN(MGU(5), return_state=True)
    _, h = layer(X, initial_state=[h0])
    _, ref_h = hand_loop(layer.cell, X, h=h0)
    torch.testing.assert_close(h, ref_h, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"expected initial_state\[0\] of shape \(3, 5\)"):
        layer(X, initial_state=[torch.zeros(3, 4)])


def test_user_cell_stateful_carries_the_state() -> None:
    torch.manual_seed(0)
    layer = L.RNN(MGU(5), stateful=True, return_state=True)
    _, h1 = layer(X[:, :3])
    _, h2 = layer(X[:, 3:])
    _, ref = hand_loop(layer.cell, X)
    torch.testing.assert_close(h2, ref, atol=1e-6, rtol=0)
    layer.reset_state()
    _, again = layer(X[:, :3])
    torch.testing.assert_close(again, h1)


def test_user_cell_is_recorded_by_the_glass_box() -> None:
    torch.manual_seed(0)
    model = Sequential([L.Input((6, 4)), L.RNN(MGU(5), return_sequences=True, name="mgu")])
    with record(model) as rec:
        out = model(X)
    trace = rec["mgu"]
    assert trace.kind == "custom" and trace.gates == ("s0", "h")
    ref_seq, _ = hand_loop(model.layers[0].cell, X)
    torch.testing.assert_close(trace["h"], ref_seq, atol=1e-6, rtol=0)
    torch.testing.assert_close(trace["s0"], out, atol=1e-6, rtol=0)


def test_user_cell_trains_with_fit_and_saves() -> None:
    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 8, 2)).astype("float32")
    y = (x[:, :, 0].sum(1) > 0).astype("float32")[:, None]
    model = Sequential([L.Input((8, 2)), L.RNN(MGU(8)), L.Dense(1, activation="sigmoid")])
    model.compile(Adam(learning_rate=0.02), "binary_crossentropy", metrics=["accuracy"])
    before = model.layers[0].cell.w.detach().clone()
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0] and history.history["accuracy"][-1] > 0.9
    assert not torch.equal(before, model.layers[0].cell.w)
    assert model.count_params() == (2 + 8) * 16 + 16 + 8 + 1


def test_user_cell_model_file_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    model = Sequential([L.Input((6, 4)), L.RNN(MGU(5)), L.Dense(2)])
    path = tmp_path / "mgu.lstmkit"
    model.save(path)
    again = load_model(path)
    torch.testing.assert_close(again(X), model(X))
    assert type(again.layers[0].cell).__name__ == "MGU"


def test_torch_style_cell_module() -> None:
    """A plain ``torch.nn.Module`` with ``forward(inputs, states)`` works too."""

    class Elman(torch.nn.Module):
        state_size = 3

        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4 + 3, 3)

        def forward(self, x, states):
            h = torch.tanh(self.lin(torch.cat([x, states[0]], -1)))
            return h, h

    torch.manual_seed(0)
    cell = Elman()
    out = L.RNN(cell, return_sequences=True)(X)
    h = torch.zeros(3, 3)
    for t in range(6):
        h = torch.tanh(cell.lin(torch.cat([X[:, t], h], -1)))
        torch.testing.assert_close(out[:, t], h)


def test_bad_cells_are_named() -> None:
    with pytest.raises(TypeError, match="RNN: cell must be a layer"):
        L.RNN(lambda x, s: (x, s))

    class NoSize(L.Layer):
        def call(self, inputs, states):
            return inputs, states

    with pytest.raises(ValueError, match=r"cell NoSize must have a state_size"):
        L.RNN(NoSize())

    class Wrong(L.Layer):
        state_size = 5

        def call(self, inputs, states):
            return inputs, states  # the input, not a (B, 5) output

    with pytest.raises(
        ValueError, match=r"returned an output of shape \(3, 4\), expected \(3, 5\)"
    ):
        L.RNN(Wrong())(X)


# -- Keras's own cells -----------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["reference", "fused", "compiled"])
@pytest.mark.parametrize(
    ("cell_cls", "layer_cls"),
    [(L.LSTMCell, L.LSTM), (L.GRUCell, L.GRU), (L.SimpleRNNCell, L.SimpleRNN)],
)
def test_keras_cells_in_rnn_equal_their_layers(cell_cls, layer_cls, engine: str) -> None:
    torch.manual_seed(0)
    rnn = L.RNN(cell_cls(5, engine=engine), return_sequences=True, return_state=True)
    mask = None if engine == "fused" else MASK  # torch's fused kernels take no mask
    ours = rnn(X, mask=mask)
    layer = layer_cls(5, engine=engine, return_sequences=True, return_state=True)
    layer(X)
    layer.set_weights(rnn.get_weights())
    theirs = layer(X, mask=mask)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert [w.shape for w in rnn.get_weights()] == [w.shape for w in layer.get_weights()]
    assert rnn._core is rnn.cell.layer.cell  # the built-in cell runs, not a Python step loop


def test_keras_cell_one_step_and_stacking() -> None:
    torch.manual_seed(0)
    cell = L.LSTMCell(5)
    h, (h1, c1) = cell(X[:, 0], [torch.zeros(3, 5), torch.zeros(3, 5)])
    torch.testing.assert_close(h1, h)
    full = L.RNN(cell, return_state=True)(X[:, :1])
    torch.testing.assert_close(h, full[0])
    torch.testing.assert_close(c1, full[2])

    stack = L.RNN([L.LSTMCell(5), L.GRUCell(3)], return_sequences=True, return_state=True)
    seq, h_a, _c_a, h_b = stack(X)
    first = L.LSTM(5, return_sequences=True)
    second = L.GRU(3, return_sequences=True)
    first(X)
    second(first(X))
    weights = stack.get_weights()
    first.set_weights(weights[:3])
    second.set_weights(weights[3:])
    torch.testing.assert_close(seq, second(first(X)), atol=1e-6, rtol=0)
    torch.testing.assert_close(h_a, first(X)[:, -1], atol=1e-6, rtol=0)
    torch.testing.assert_close(h_b, seq[:, -1])
    assert stack.cell.state_size == [5, 5, 3]


def test_rnn_config_round_trip_with_keras_and_stacked_cells() -> None:
    torch.manual_seed(0)
    for cell in (L.GRUCell(4, reset_after=False), [L.LSTMCell(4), MGU(3)]):
        layer = L.RNN(cell, return_sequences=True)
        out = layer(X)
        again = L.deserialize(L.serialize(layer))
        again(X)
        again.set_weights(layer.get_weights())
        torch.testing.assert_close(again(X), out)
