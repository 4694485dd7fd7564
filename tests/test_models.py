"""Building models: the seed program, Sequential, the functional API, subclassing, configs,
masks, summaries.

Expected values are independent of the code under test: Keras's summary texts and parameter
counts (``tests/reference/keras_reference.json``, described in KERAS_NOTES.md), parameter counts
worked out by hand, and outputs recomputed by calling the same layer objects one by one, or on
unpadded sequences, in plain Python loops.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit import layers as L
from lstmkit.layers import (
    GRU,
    LSTM,
    Add,
    Bidirectional,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
    Input,
    Masking,
    SimpleRNN,
    TimeDistributed,
)
from lstmkit.models import Model, Sequential, load_model, register_model
from lstmkit.utils import clear_session, set_random_seed

REFERENCE = json.loads((Path(__file__).parent / "reference" / "keras_reference.json").read_text())


# -- the seed program ------------------------------------------------------------------------------


def seed_program() -> Sequential:
    # The program of issue 3, verbatim apart from its imports.
    model = Sequential([
        Embedding(input_dim=20000, output_dim=128),
        LSTM(128, return_sequences=True),
        Dropout(0.2),
        LSTM(64),
        Dense(1, activation='sigmoid')
    ])  # fmt: skip
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def token_task(n: int, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Label = whether token 7 occurs. Distractors come from ids 1..99 (each appears in both
    classes, so only token 7 carries the label); the model keeps its 20,000-row embedding."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 100, size=(n, steps))
    x[x == 7] = 8
    y = rng.integers(0, 2, size=n).astype(np.float32)
    where = rng.integers(0, steps, size=n)
    x[y == 1, where[y == 1]] = 7
    return x, y


def test_seed_program_summary_is_keras(capsys: pytest.CaptureFixture[str]) -> None:
    clear_session()  # Keras's names come from a fresh session
    model = seed_program()
    model.build((None, None))  # keras.Model.build(input_shape): tokens of any length
    text = model.summary()
    assert capsys.readouterr().out.rstrip("\n") == text
    assert text == REFERENCE["summaries"]["sentiment_lstm"]["summary"].rstrip("\n")
    assert model.count_params() == 2_741_057


def test_seed_program_learns_a_token_task_and_round_trips(tmp_path: Path) -> None:
    set_random_seed(0)
    model = seed_program()
    x, y = token_task(800, 10)
    history = model.fit(x, y, batch_size=32, epochs=5, validation_split=0.2, verbose=0)
    accuracy = history.history["val_accuracy"]
    assert accuracy[-1] >= 0.95, accuracy
    assert history.history["loss"][-1] < history.history["loss"][0]
    path = tmp_path / "seed.lstmkit"
    model.save(path)
    loaded = load_model(path)
    xv = x[-160:]
    np.testing.assert_array_equal(loaded.predict(xv, verbose=0), model.predict(xv, verbose=0))
    assert loaded.evaluate(xv, y[-160:], verbose=0) == model.evaluate(xv, y[-160:], verbose=0)


@pytest.mark.parametrize("key", sorted(REFERENCE["summaries"]))
def test_summaries_match_keras_text(key: str) -> None:
    spec = REFERENCE["summaries"][key]
    clear_session()
    names = {
        "Sequential": Sequential, "Input": Input, "Embedding": Embedding, "LSTM": LSTM,
        "GRU": GRU, "SimpleRNN": SimpleRNN, "Bidirectional": Bidirectional, "Dropout": Dropout,
        "Dense": Dense,
    }  # fmt: skip
    model = eval(spec["code"], {"__builtins__": {}}, names)  # the fixture's own Keras code
    assert model.count_params() == spec["count_params"]
    assert model.summary(print_fn=lambda _: None) == spec["summary"].rstrip("\n")


# -- Sequential ------------------------------------------------------------------------------------


def test_sequential_list_add_pop_and_names() -> None:
    set_random_seed(0)
    a = Sequential([Dense(4, activation="relu", name="h"), Dense(2, name="out")])
    b = Sequential(name="added")
    b.add(Dense(4, activation="relu", name="h2"))
    b.add(Dense(2, name="out2"))
    x = torch.randn(3, 5)
    a(x), b(x)
    b.set_weights(a.get_weights())
    torch.testing.assert_close(a(x), b(x))
    assert [layer.name for layer in b.layers] == ["h2", "out2"] and b.name == "added"
    # 5·4 + 4 + 4·2 + 2
    assert a.count_params() == 34
    popped = a.pop()
    assert popped.name == "out" and [layer.name for layer in a.layers] == ["h"]
    assert tuple(a(x).shape) == (3, 4)
    with pytest.raises(ValueError, match="unique names; 'h' is already used"):
        a.add(Dense(1, name="h"))
    with pytest.raises(ValueError, match="unique names; 'd' is already used"):
        Sequential([Dense(1, name="d"), Dense(1, name="d")])
    with pytest.raises(TypeError, match="expected an lstmkit layer, got Linear"):
        Sequential([torch.nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="no layers to pop"):
        Sequential().pop()


def test_sequential_input_first_and_input_shape_on_first_layer() -> None:
    with_input = Sequential([Input(shape=(None, 6)), LSTM(4), Dense(1)])
    with_arg = Sequential([LSTM(4, input_shape=(None, 6)), Dense(1)])
    for model in (with_input, with_arg):
        assert model.built
        assert model.count_params() == 4 * (6 * 4 + 4 * 4 + 4) + 4 + 1
    text = with_arg.summary(print_fn=lambda _: None)
    assert "(None, 4)" in text and "(None, 1)" in text
    with pytest.raises(ValueError, match="an Input can only be the first element"):
        Sequential([Dense(2), Input(shape=(3,))])


def test_lazy_build_and_count_params() -> None:
    model = Sequential([Embedding(50, 8), LSTM(6, return_sequences=True), Dense(3)])
    assert not model.built
    with pytest.raises(ValueError, match="not built yet"):
        model.count_params()
    out = model(torch.randint(0, 50, (2, 7)))
    assert model.built and tuple(out.shape) == (2, 7, 3)
    assert model.count_params() == 50 * 8 + 4 * (8 * 6 + 6 * 6 + 6) + 6 * 3 + 3
    dense = Dense(5)
    assert not dense.built
    with pytest.raises(ValueError, match="not built yet"):
        dense.count_params()
    dense(torch.zeros(1, 2))
    assert dense.count_params() == 15


def test_get_layer() -> None:
    model = Sequential([Embedding(10, 3, name="emb"), LSTM(2, name="rnn"), Dense(1, name="out")])
    assert model.get_layer("rnn") is model.layers[1]
    assert model.get_layer(index=-1).name == "out"
    with pytest.raises(ValueError, match="no layer named 'cnn'; layers: emb, rnn, out"):
        model.get_layer("cnn")
    with pytest.raises(ValueError, match="index 3 out of range"):
        model.get_layer(index=3)


# -- functional API ------------------------------------------------------------------------------


def test_encoder_decoder_passes_states() -> None:
    set_random_seed(0)
    enc_in, dec_in = Input(shape=(None, 6), name="source"), Input(shape=(None, 5), name="target")
    encoder = LSTM(8, return_state=True, name="encoder")
    decoder = LSTM(8, return_sequences=True, name="decoder")
    head = Dense(5, activation="softmax", name="head")
    _, h, c = encoder(enc_in)
    probs = head(decoder(dec_in, initial_state=[h, c]))
    model = Model([enc_in, dec_in], probs)
    xs, xt = torch.randn(3, 7, 6), torch.randn(3, 4, 5)
    got = model([xs, xt])
    # The same layer objects, called by hand.
    _, h_, c_ = encoder(xs)
    want = head(decoder(xt, initial_state=[h_, c_]))
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert not torch.allclose(got, head(decoder(xt)))  # the states matter
    assert model.input_names == ["source", "target"] and model.output_names == ["head"]
    assert model.count_params() == 4 * (6 * 8 + 64 + 8) + 4 * (5 * 8 + 64 + 8) + 8 * 5 + 5
    # A dict keyed by input names works too.
    torch.testing.assert_close(model({"target": xt, "source": xs}), got)


def test_multiple_inputs_and_outputs_and_shared_layers() -> None:
    set_random_seed(0)
    left, right = Input(shape=(4,)), Input(shape=(4,))
    shared = Dense(3, activation="tanh", name="shared")
    a, b = shared(left), shared(right)
    merged = Concatenate()([a, b])
    total = Add()([a, b])
    model = Model([left, right], [Dense(1, name="score")(merged), total])
    assert model.count_params() == (4 * 3 + 3) + (6 + 1)  # the shared layer counted once
    assert [layer.name for layer in model.layers].count("shared") == 1
    xl, xr = torch.randn(2, 4), torch.randn(2, 4)
    score, added = model([xl, xr])
    torch.testing.assert_close(added, shared(xl) + shared(xr))
    torch.testing.assert_close(
        score, model.get_layer("score")(torch.cat([shared(xl), shared(xr)], -1))
    )
    # Both branches send gradients into the one shared kernel.
    score.sum().backward()
    grad_both = shared.weight.grad.clone()
    shared.weight.grad = None
    model.get_layer("score")(torch.cat([shared(xl), shared(xr).detach()], -1)).sum().backward()
    assert not torch.allclose(shared.weight.grad, grad_both)


def test_functional_model_errors() -> None:
    x = Input(shape=(3,))
    with pytest.raises(TypeError, match="must be symbolic tensors"):
        Model(x, torch.zeros(1))
    with pytest.raises(ValueError, match="give both inputs and outputs"):
        Model(inputs=x)
    other = Input(shape=(3,))
    with pytest.raises(ValueError, match="is not connected to any output"):
        Model([x, other], Dense(1)(x))
    model = Model(x, Dense(2)(x))
    with pytest.raises(ValueError, match=r"expects shape \(None, 3\), got \(2, 3, 1\)"):
        model(torch.zeros(2, 3, 1))


# -- subclassing -----------------------------------------------------------------------------------


@register_model
class Tagger(Model):
    """A Keras-style subclassed model: layers as attributes, ``call(inputs, training)``."""

    def __init__(self, vocab: int = 20, units: int = 6, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vocab, self.units = vocab, units
        self.embed = Embedding(vocab, 4, mask_zero=True)
        self.rnn = LSTM(units, return_sequences=True)
        self.drop = Dropout(0.5)
        self.out = Dense(3)

    def call(self, inputs, training=None):
        return self.out(self.drop(self.rnn(self.embed(inputs)), training=training))

    def get_config(self):
        return {"vocab": self.vocab, "units": self.units, "name": self.name}


def test_subclassed_model_call_training_and_fit(tmp_path: Path) -> None:
    set_random_seed(0)
    model = Tagger()
    x = torch.randint(1, 20, (4, 5))
    y = model(x)
    assert tuple(y.shape) == (4, 5, 3)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Embedding", "LSTM", "Dropout", "Dense",
    ]  # fmt: skip
    assert model.count_params() == 20 * 4 + 4 * (4 * 6 + 36 + 6) + 6 * 3 + 3
    torch.testing.assert_close(model(x), y)  # inference by default: no dropout
    assert not torch.allclose(model(x, training=True), y)  # dropout in training mode
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    h = model.fit(x.numpy(), np.ones((4, 5)), epochs=2, verbose=0)
    assert set(h.history) == {"loss", "accuracy"}
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    torch.testing.assert_close(model(x), model(x))  # back in inference mode after fit
    model.save(tmp_path / "tagger.lstmkit")  # registered: saved whole by its config
    loaded = load_model(tmp_path / "tagger.lstmkit")
    assert isinstance(loaded, Tagger)
    torch.testing.assert_close(loaded(x), model(x))


# -- configs ---------------------------------------------------------------------------------------


LAYER_CASES = [
    (lambda: Dense(3, activation="relu", use_bias=False), (2, 4)),
    (lambda: Embedding(10, 3, mask_zero=True), "ids"),
    (lambda: Dropout(0.3, seed=1), (2, 4)),
    (lambda: Masking(mask_value=-1.0), (2, 5, 4)),
    (lambda: L.Activation("tanh"), (2, 4)),
    (lambda: TimeDistributed(Dense(3, activation="sigmoid")), (2, 5, 4)),
    (lambda: LSTM(3, return_sequences=True, go_backwards=True), (2, 5, 4)),
    (lambda: GRU(3, return_state=True, reset_after=False), (2, 5, 4)),
    (lambda: SimpleRNN(3, activation="relu"), (2, 5, 4)),
    (lambda: Bidirectional(LSTM(3, return_sequences=True), merge_mode="sum"), (2, 5, 4)),
    (lambda: Concatenate(axis=1), "pair"),
    (lambda: Add(), "pair"),
    (lambda: L.Subtract(), "pair"),
    (lambda: L.Multiply(), "pair"),
    (lambda: L.Average(), "pair"),
    (lambda: L.Maximum(), "pair"),
]


def _inputs(kind):
    if kind == "ids":
        return torch.tensor([[1, 2, 0], [4, 0, 0]])
    if kind == "pair":
        return [torch.randn(2, 3), torch.randn(2, 3)]
    return torch.randn(*kind)


def _flat(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


@pytest.mark.parametrize("make, kind", LAYER_CASES, ids=lambda v: getattr(v, "__name__", str(v)))
def test_every_layer_config_round_trip(make, kind) -> None:
    set_random_seed(0)
    layer = make()
    x = _inputs(kind)
    out = layer(x)
    clone = L.deserialize(json.loads(json.dumps(L.serialize(layer))))  # JSON-serialisable
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    clone(x)
    clone.set_weights(layer.get_weights())
    for a, b in zip(_flat(out), _flat(clone(x))):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_model_config_round_trips() -> None:
    set_random_seed(0)
    seq = Sequential([Input(shape=(None,), dtype="int32"), Embedding(30, 4, mask_zero=True),
                      Bidirectional(GRU(3)), Dense(2)])  # fmt: skip
    inp = Input(shape=(None, 4))
    mid = LSTM(5, return_sequences=True)(Masking()(inp))
    func = Model(inp, [TimeDistributed(Dense(2))(mid), GRU(3)(mid)])
    nested_in = Input(shape=(None,), dtype="int64")
    nested = Model(nested_in, Dense(1)(seq(nested_in)))
    cases = [
        (seq, torch.tensor([[3, 4, 0], [5, 0, 0]])),
        (func, torch.randn(2, 6, 4)),
        (nested, torch.tensor([[3, 4, 0], [5, 0, 0]])),
    ]
    for model, x in cases:
        config = json.loads(json.dumps(model.get_config()))
        clone = type(model).from_config(config)
        assert clone.get_config() == model.get_config()
        clone.set_weights(model.get_weights())
        for a, b in zip(_flat(model(x)), _flat(clone(x))):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


# -- masks -----------------------------------------------------------------------------------------


def test_embedding_mask_reaches_the_lstm() -> None:
    set_random_seed(0)
    emb = Embedding(20, 4, mask_zero=True)
    last = LSTM(5)
    seq = LSTM(5, return_sequences=True)
    ids = torch.tensor([[3, 4, 5, 0, 0], [6, 7, 0, 0, 0], [8, 9, 10, 11, 12]])
    lengths = [3, 2, 5]
    model_last = Sequential([emb, last])
    out = model_last(ids)
    for i, n in enumerate(lengths):
        torch.testing.assert_close(out[i : i + 1], last(emb(ids[i : i + 1, :n])), rtol=0, atol=1e-6)
    model_seq = Sequential([emb, seq])
    full = model_seq(ids)
    assert torch.equal(full._keras_mask, ids != 0)  # the mask travels on to the next layer
    for i, n in enumerate(lengths):
        alone = seq(emb(ids[i : i + 1, :n]))[0]
        torch.testing.assert_close(full[i, :n], alone, rtol=0, atol=1e-6)
        # Keras (zero_output_for_mask=False): padded steps repeat the last valid output.
        torch.testing.assert_close(full[i, n:], alone[-1].expand(5 - n, 5), rtol=0, atol=1e-6)
    unmasked = Sequential([Embedding(20, 4), LSTM(5)])
    unmasked(ids)
    unmasked.set_weights(model_last.get_weights())
    assert not torch.allclose(unmasked(ids)[0], out[0])  # without the mask, padding counts


def test_mask_excludes_padding_from_the_loss() -> None:
    set_random_seed(0)
    model = Sequential([Embedding(20, 4, mask_zero=True), LSTM(5, return_sequences=True),
                        TimeDistributed(Dense(1))])  # fmt: skip
    model.compile(optimizer="sgd", loss="mse")
    ids = np.array([[3, 4, 5, 0], [6, 0, 0, 0], [7, 8, 9, 10]])
    y = np.random.default_rng(0).normal(size=(3, 4, 1)).astype(np.float32)
    pred = model.predict(ids, verbose=0)
    valid = ids != 0
    want = float(((pred - y) ** 2)[valid].mean())
    assert abs(model.evaluate(ids, y, verbose=0) - want) < 1e-6
    assert abs(float(((pred - y) ** 2).mean()) - want) > 1e-3  # padding would change it


def test_masking_layer() -> None:
    set_random_seed(0)
    x = torch.randn(2, 5, 3)
    x[0, 3:] = -1.0  # padding by mask_value
    masking, rnn = Masking(mask_value=-1.0), GRU(4)
    out = masking(x)
    assert torch.equal(out._keras_mask, torch.tensor([[1, 1, 1, 0, 0], [1] * 5]).bool())
    assert torch.equal(out[0, 3:], torch.zeros(2, 3)) and torch.equal(out[1], x[1])
    model = Sequential([masking, rnn])
    torch.testing.assert_close(model(x)[0], rnn(x[:1, :3])[0], rtol=0, atol=1e-6)


def test_time_distributed_equals_a_loop_over_steps() -> None:
    set_random_seed(0)
    inner = Dense(3, activation="tanh")
    td = TimeDistributed(inner)
    x = torch.randn(2, 4, 5)
    want = torch.stack([inner(x[:, t]) for t in range(4)], 1)
    torch.testing.assert_close(td(x), want, rtol=0, atol=0)
    assert td.count_params() == 5 * 3 + 3
    ids = torch.tensor([[1, 2, 0, 0]])
    model = Sequential([Embedding(5, 5, mask_zero=True), td])
    assert torch.equal(model(ids)._keras_mask, ids != 0)  # the mask passes through
    with pytest.raises(ValueError, match=r"rank >= 3 \(B, T, \.\.\.\), got shape \(2, 5\)"):
        TimeDistributed(Dense(2))(torch.zeros(2, 5))


def test_merge_layers_values_and_masks() -> None:
    a, b = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    ma = torch.tensor([[1, 1, 0], [1, 0, 0]]).bool()
    mb = torch.tensor([[1, 0, 0], [1, 1, 1]]).bool()
    a._keras_mask, b._keras_mask = ma, mb
    added = Add()([a, b])
    torch.testing.assert_close(added, a + b)
    assert torch.equal(added._keras_mask, ma & mb)  # Keras: all() of the masks
    cat = Concatenate()([a, b])
    torch.testing.assert_close(cat, torch.cat([a, b], -1))
    # Keras 3: masks broadcast over features, concatenated, any() over the last axis.
    assert torch.equal(cat._keras_mask, ma | mb)
    c = torch.randn(2, 2, 4)
    c._keras_mask = torch.tensor([[1, 0], [0, 0]]).bool()
    joined = Concatenate(axis=1)([a, c])
    assert tuple(joined.shape) == (2, 5, 4)
    assert torch.equal(joined._keras_mask, torch.cat([ma, c._keras_mask], 1))  # end to end
    plain = torch.randn(2, 3, 4)
    assert torch.equal(Concatenate()([a, plain])._keras_mask, torch.ones(2, 3).bool())
    with pytest.raises(ValueError, match=r"same shape, got \[\(2, 3, 4\), \(2, 2, 4\)\]"):
        Add()([a, c])
    with pytest.raises(ValueError, match="at least 2 tensors, got 1"):
        Add()([a])
    for layer, want in (
        (L.Subtract(), a - b),
        (L.Multiply(), a * b),
        (L.Average(), (a + b) / 2),
        (L.Maximum(), torch.maximum(a, b)),
    ):
        torch.testing.assert_close(layer([a, b]), want)


def test_summary_of_a_multi_input_model_is_not_cut() -> None:
    clear_session()
    src, tgt = Input(shape=(None, 6)), Input(shape=(None, 5))
    _, h, c = LSTM(7, return_state=True)(src)
    model = Model([src, tgt], Dense(5)(LSTM(7, return_sequences=True)(tgt, initial_state=[h, c])))
    text = model.summary(print_fn=lambda _: None)
    table = text.splitlines()[1:-3]
    assert len({len(line) for line in table}) == 1  # every row as wide as the box
    assert all(line[-1] in "┓┃┩│┤┘" for line in table)
    assert "Connected to" in table[1]
    assert "input_layer_1[0][0], lstm[0][1], lstm[0][2]" in text
    assert "[(None, 7), (None, 7), (None, 7)]" in text  # Keras prints several outputs as a list
    assert " Total params: 796 (3.11 KB)" in text  # 4·(6·7+49+7) + 4·(5·7+49+7) + 7·5+5
