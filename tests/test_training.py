"""``compile`` / ``fit`` / ``evaluate`` / ``predict``, optimisers and learning-rate schedules.

Expected numbers come from plain torch written in this file: a linear model's forward pass
``x @ kernel + bias`` and its gradient by autograd, optimiser updates written out from Keras 3's
update rules, and hand-written training loops over the same batches. Keras facts (defaults,
``sum_over_batch_size``, decoupled weight decay) are quoted from ``tests/reference/KERAS_NOTES.md``
or Keras 3's source where the notes are silent.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lstmkit.layers import LSTM, Dense, Dropout, Embedding, Input
from lstmkit.models import Model, Sequential
from lstmkit.training import losses as losses_mod
from lstmkit.training import metrics as metrics_mod
from lstmkit.training import optimizers as O
from lstmkit.training import schedules as S
from lstmkit.training.data import adapt
from lstmkit.utils import set_random_seed

# -- helpers ------------------------------------------------------------------------------------


def linear_model(seed: int = 0, features: int = 3, activation: str | None = None) -> Sequential:
    set_random_seed(seed)
    return Sequential([Input(shape=(features,)), Dense(1, activation=activation)])


def regression_data(n: int = 10, features: int = 3, seed: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    y = (x @ np.arange(1, features + 1, dtype=np.float32) + 0.5).reshape(n, 1)
    return x, y.astype(np.float32)


def kernel_bias(model: Sequential) -> tuple[torch.Tensor, torch.Tensor]:
    k, b = model.layers[-1].get_weights()  # Keras layout: kernel (I, 1), bias (1,)
    return torch.tensor(k, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)


def sgd_by_hand(model: Sequential, x, y, lr: float, batch: int, epochs: int = 1, order=None):
    """Plain-torch SGD on ``mean((x @ k + b - y)²)`` over the same batches as ``fit``."""
    k, b = kernel_bias(model)
    k.requires_grad_(True)
    b.requires_grad_(True)
    x, y = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    losses = []
    for _ in range(epochs):
        idx = torch.arange(len(x)) if order is None else order
        for lo in range(0, len(x), batch):
            sl = idx[lo : lo + batch]
            loss = ((x[sl] @ k + b - y[sl]) ** 2).mean()
            losses.append(float(loss.detach()))
            gk, gb = torch.autograd.grad(loss, [k, b])
            with torch.no_grad():
                k -= lr * gk
                b -= lr * gb
    return k.detach(), b.detach(), losses


def assert_weights(model: Sequential, k: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> None:
    got_k, got_b = kernel_bias(model)
    torch.testing.assert_close(got_k, k, rtol=tol, atol=tol)
    torch.testing.assert_close(got_b, b, rtol=tol, atol=tol)


# -- compile ------------------------------------------------------------------------------------


def test_compile_by_string_and_by_object() -> None:
    model = linear_model()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    assert isinstance(model.optimizer, O.Adam) and model.optimizer.learning_rate == 0.001
    sgd = O.SGD(learning_rate=0.05)
    model.compile(optimizer=sgd, loss=losses_mod.MeanSquaredError(), metrics=[metrics_mod.AUC()])
    assert model.optimizer is sgd
    assert isinstance(O.get("RMSprop"), O.RMSprop) and isinstance(O.get("sgd"), O.SGD)


def test_fit_equals_a_hand_written_sgd_loop() -> None:
    # 10 samples in batches of 4: the last batch has 2 samples, each batch's loss is its mean.
    x, y = regression_data()
    model = linear_model()
    k, b, losses = sgd_by_hand(model, x, y, lr=0.1, batch=4, epochs=2)
    model.compile(optimizer=O.SGD(learning_rate=0.1), loss="mse")
    history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert_weights(model, k, b)
    # The epoch loss is the sample-weighted mean of the batch losses (Keras's loss tracker).
    sizes = [4, 4, 2]
    want = [sum(s * v for s, v in zip(sizes, losses[3 * e : 3 * e + 3])) / 10 for e in range(2)]
    np.testing.assert_allclose(history.history["loss"], want, rtol=1e-5)


def test_device_cpu_can_be_forced() -> None:
    x, y = regression_data()
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse", device="cpu")
    model.fit(x, y, epochs=1, verbose=0)
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert model._trainer.device == torch.device("cpu")


# -- optimisers: Keras defaults and one-step updates ------------------------------------------

# Keras 3's get_config() of each optimiser, printed by Keras (keras_reference.json, tabled in
# KERAS_NOTES.md "Optimizer defaults").
KERAS_DEFAULTS = json.loads(
    (Path(__file__).parent / "reference" / "keras_reference.json").read_text()
)["optimizer_defaults"]


@pytest.mark.parametrize("cls", sorted(KERAS_DEFAULTS))
def test_optimizer_defaults_are_keras(cls: str) -> None:
    config = O.get(cls.lower()).get_config()
    assert type(O.get(cls.lower())).__name__ == cls
    for key, want in KERAS_DEFAULTS[cls].items():
        if isinstance(want, float):
            # Keras reports float32 values (0.0010000000474974513): float32 precision.
            assert math.isclose(config[key], want, rel_tol=1e-7), (key, config[key])
        else:
            assert config[key] == want, (key, config[key])
    # Keras 3's default names are checked in test_optimizer_parity.py (measured with 3.15).


def _bound(opt: O.Optimizer, *values: list[float]) -> list[torch.nn.Parameter]:
    params = [torch.nn.Parameter(torch.tensor(v, dtype=torch.float64)) for v in values]
    opt.build(params)
    return params


def _step(opt: O.Optimizer, params: list[torch.nn.Parameter], *grads: list[float]) -> None:
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g, dtype=torch.float64)
    opt.step()


W0 = [0.5, -1.0, 2.0]
G1, G2 = [0.3, -0.2, 1.5], [-0.1, 0.4, 0.25]


def keras_sgd(lr, momentum, nesterov, wd=0.0):
    w, v = torch.tensor(W0, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    out = []
    for g in (G1, G2):
        g = torch.tensor(g, dtype=torch.float64)
        w = w - w * wd * lr  # Keras 3 base optimiser: decoupled weight decay first
        v = momentum * v - lr * g
        w = w + (momentum * v - lr * g if nesterov else v)
        out.append(w.clone())
    return out


def keras_adam(lr, b1=0.9, b2=0.999, eps=1e-7, wd=0.0):
    w = torch.tensor(W0, dtype=torch.float64)
    m, v = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    out = []
    for t, g in enumerate((G1, G2), start=1):
        g = torch.tensor(g, dtype=torch.float64)
        w = w - w * wd * lr
        m = m + (g - m) * (1 - b1)
        v = v + (g * g - v) * (1 - b2)
        lr_t = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        w = w - lr_t * m / (v.sqrt() + eps)
        out.append(w.clone())
    return out


def keras_rmsprop(lr, rho=0.9, eps=1e-7):
    w, v = torch.tensor(W0, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    out = []
    for g in (G1, G2):
        g = torch.tensor(g, dtype=torch.float64)
        v = rho * v + (1 - rho) * g * g
        w = w - lr * g / torch.sqrt(v + eps)
        out.append(w.clone())
    return out


def keras_adagrad(lr, init=0.1, eps=1e-7):
    w, acc = torch.tensor(W0, dtype=torch.float64), torch.full((3,), init, dtype=torch.float64)
    out = []
    for g in (G1, G2):
        g = torch.tensor(g, dtype=torch.float64)
        acc = acc + g * g
        w = w - lr * g / torch.sqrt(acc + eps)
        out.append(w.clone())
    return out


@pytest.mark.parametrize(
    "make, reference",
    [
        (lambda: O.SGD(0.1), lambda: keras_sgd(0.1, 0.0, False)),
        (lambda: O.SGD(0.1, momentum=0.9), lambda: keras_sgd(0.1, 0.9, False)),
        (lambda: O.SGD(0.1, momentum=0.9, nesterov=True), lambda: keras_sgd(0.1, 0.9, True)),
        (
            lambda: O.SGD(0.1, momentum=0.9, weight_decay=0.2),
            lambda: keras_sgd(0.1, 0.9, False, wd=0.2),
        ),
        (lambda: O.Adam(0.01), lambda: keras_adam(0.01)),
        (lambda: O.Adam(0.01, beta_1=0.5, beta_2=0.9), lambda: keras_adam(0.01, 0.5, 0.9)),
        (lambda: O.Adam(0.01, weight_decay=0.5), lambda: keras_adam(0.01, wd=0.5)),
        (lambda: O.AdamW(0.01), lambda: keras_adam(0.01, wd=0.004)),
        (lambda: O.AdamW(0.01, weight_decay=0.5), lambda: keras_adam(0.01, wd=0.5)),
        (lambda: O.RMSprop(0.01), lambda: keras_rmsprop(0.01)),
        (lambda: O.Adagrad(0.1), lambda: keras_adagrad(0.1)),
    ],
    ids=[
        "sgd", "sgd_momentum", "sgd_nesterov", "sgd_decay", "adam", "adam_betas", "adam_decay",
        "adamw", "adamw_decay", "rmsprop", "adagrad",
    ],
)  # fmt: skip
def test_two_updates_match_keras_update_rules(make, reference) -> None:
    opt = make()
    (w,) = _bound(opt, W0)
    want = reference()
    _step(opt, [w], G1)
    # Keras's own formulas in float64: equal to rounding.
    torch.testing.assert_close(w.detach(), want[0], rtol=1e-12, atol=1e-14)
    _step(opt, [w], G2)
    torch.testing.assert_close(w.detach(), want[1], rtol=1e-12, atol=1e-14)
    assert opt.iterations == 2


def test_clipnorm_clips_each_variable_separately() -> None:
    opt = O.SGD(1.0, clipnorm=1.0)
    a, b = _bound(opt, [0.0, 0.0], [0.0, 0.0])
    _step(opt, [a, b], [3.0, 4.0], [0.3, 0.4])  # norms 5 (clipped to 1) and 0.5 (kept)
    torch.testing.assert_close(a.detach(), torch.tensor([-0.6, -0.8], dtype=torch.float64))
    torch.testing.assert_close(b.detach(), torch.tensor([-0.3, -0.4], dtype=torch.float64))


def test_global_clipnorm_scales_all_variables_together() -> None:
    opt = O.SGD(1.0, global_clipnorm=1.0)
    a, b = _bound(opt, [0.0, 0.0], [0.0, 0.0])
    _step(opt, [a, b], [3.0, 0.0], [0.0, 4.0])  # global norm 5 -> everything / 5
    torch.testing.assert_close(a.detach(), torch.tensor([-0.6, 0.0], dtype=torch.float64))
    torch.testing.assert_close(b.detach(), torch.tensor([0.0, -0.8], dtype=torch.float64))


def test_clipvalue_clips_elementwise() -> None:
    opt = O.SGD(1.0, clipvalue=0.5)
    (a,) = _bound(opt, [0.0, 0.0, 0.0])
    _step(opt, [a], [3.0, -4.0, 0.2])
    torch.testing.assert_close(a.detach(), torch.tensor([-0.5, 0.5, -0.2], dtype=torch.float64))


def test_optimizer_argument_errors() -> None:
    with pytest.raises(ValueError, match="only one of clipnorm"):
        O.Adam(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match=r"learning_rate must be a positive number.*-0.1"):
        O.SGD(-0.1)
    with pytest.raises(ValueError, match="nesterov"):
        O.SGD(nesterov=True)
    with pytest.raises(TypeError, match=r"torch.optim"):
        O.get(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))


# -- schedules ----------------------------------------------------------------------------------


def test_schedule_values_by_hand() -> None:
    e = S.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert math.isclose(e(10), 0.05) and math.isclose(e(5), 0.1 * 0.5**0.5)
    stair = S.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert math.isclose(stair(15), 0.05) and math.isclose(stair(9), 0.1)
    assert math.isclose(S.InverseTimeDecay(0.1, 10, 1.0)(10), 0.05)
    assert math.isclose(S.InverseTimeDecay(0.1, 10, 1.0, staircase=True)(19), 0.05)
    pc = S.PiecewiseConstantDecay([5, 10], [1.0, 0.5, 0.1])
    assert [pc(s) for s in (0, 5, 6, 10, 11)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    poly = S.PolynomialDecay(0.1, 10, end_learning_rate=0.01, power=2.0)
    assert math.isclose(poly(5), 0.09 * 0.25 + 0.01) and math.isclose(poly(20), 0.01)
    cyc = S.PolynomialDecay(0.1, 10, end_learning_rate=0.01, power=2.0, cycle=True)
    assert math.isclose(cyc(15), 0.09 * (1 - 15 / 20) ** 2 + 0.01)
    cos = S.CosineDecay(0.1, 10, alpha=0.1)
    assert math.isclose(cos(0), 0.1) and math.isclose(cos(5), 0.1 * (0.9 * 0.5 + 0.1))
    assert math.isclose(cos(10), 0.01) and math.isclose(cos(50), 0.01)
    warm = S.CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=5)
    assert math.isclose(warm(2), 0.04) and math.isclose(warm(5), 0.1)
    assert math.isclose(warm(10), 0.1 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    again = S.deserialize(S.serialize(cos))
    assert isinstance(again, S.CosineDecay) and math.isclose(again(5), cos(5))


def test_schedule_drives_the_optimizer_step_by_step() -> None:
    # Step k uses schedule(k): steps 0 and 1 use 1.0, step 2 uses 0.1; gradient 1 each time.
    opt = O.SGD(S.PiecewiseConstantDecay([1], [1.0, 0.1]))
    (w,) = _bound(opt, [0.0])
    for _ in range(3):
        _step(opt, [w], [1.0])
    assert math.isclose(float(w.detach()), -2.1)
    assert opt.learning_rate == 0.1  # schedule(iterations = 3), as Keras reports it
    with pytest.raises(ValueError, match="schedule"):
        opt.learning_rate = 0.5


# -- data: input forms -------------------------------------------------------------------------


class _Pairs(Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]


def _fit_weights(data_kwargs: dict, batch: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    model = linear_model()
    model.compile(optimizer=O.SGD(0.1), loss="mse")
    model.fit(epochs=2, shuffle=False, verbose=0, **data_kwargs)
    return kernel_bias(model)


def test_every_input_form_trains_identically() -> None:
    x, y = regression_data()
    k, b, _ = sgd_by_hand(linear_model(), x, y, lr=0.1, batch=4, epochs=2)

    def gen():
        for _ in range(2):
            for lo in range(0, 10, 4):
                yield x[lo : lo + 4], y[lo : lo + 4]

    forms = {
        "numpy": {"x": x, "y": y, "batch_size": 4},
        "tensors": {"x": torch.tensor(x), "y": torch.tensor(y), "batch_size": 4},
        "lists": {"x": x.tolist(), "y": y.tolist(), "batch_size": 4},
        "float64 numpy": {"x": x.astype(np.float64), "y": y.astype(np.float64), "batch_size": 4},
        "Dataset": {"x": _Pairs(x, y), "batch_size": 4},
        "DataLoader": {"x": DataLoader(TensorDataset(torch.tensor(x), torch.tensor(y)), 4)},
        "generator": {"x": gen(), "steps_per_epoch": 3},
    }
    for name, kwargs in forms.items():
        got_k, got_b = _fit_weights(kwargs)
        torch.testing.assert_close(got_k, k, rtol=1e-5, atol=1e-5, msg=name)
        torch.testing.assert_close(got_b, b, rtol=1e-5, atol=1e-5, msg=name)


def test_dict_and_list_inputs_to_a_functional_model() -> None:
    set_random_seed(0)
    a, b = Input(shape=(2,), name="a"), Input(shape=(1,), name="b")
    from lstmkit.layers import Concatenate

    out = Dense(1)(Concatenate()([a, b]))
    model = Model([a, b], out)
    x, y = regression_data()
    k0, b0 = model.layers[-1].get_weights()
    model.compile(optimizer=O.SGD(0.1), loss="mse")
    model.fit({"a": x[:, :2], "b": x[:, 2:]}, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    by_dict = model.get_weights()
    model.layers[-1].set_weights([k0, b0])
    model.compile(optimizer=O.SGD(0.1), loss="mse")
    model.fit([x[:, :2], x[:, 2:]], y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    by_list = model.get_weights()
    # Concatenate([a, b]) @ kernel is x @ kernel: the same as the linear model's hand loop.
    ref = Sequential([Input(shape=(3,)), Dense(1)])
    ref.layers[0].set_weights([k0, b0])
    k, bb, _ = sgd_by_hand(ref, x, y, lr=0.1, batch=4, epochs=2)
    for got in (by_dict, by_list):
        np.testing.assert_allclose(got[0], k.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[1], bb.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"missing input\(s\) \['b'\]"):
        model.predict({"a": x[:, :2]}, verbose=0)


def test_shuffle_draws_a_new_permutation_each_epoch() -> None:
    x = np.arange(10, dtype=np.float32).reshape(10, 1)
    data = adapt(x, x, batch_size=4, shuffle=True, seed=3)
    orders = [torch.cat([xb[:, 0] for xb, _, _ in data.batches(e)]).long() for e in (0, 1)]
    for order in orders:
        assert sorted(order.tolist()) == list(range(10))  # every sample exactly once
    assert orders[0].tolist() != list(range(10)) and orders[0].tolist() != orders[1].tolist()
    # fit(shuffle=True) follows the same permutation: it equals the hand loop in that order.
    xr, y = regression_data()
    model = linear_model()
    set_random_seed(7)
    seed = int(torch.randint(0, 2**31 - 1, (1,)).item())  # the seed fit draws after seeding
    order = adapt(xr, y, batch_size=4, shuffle=True, seed=seed).indices(0)
    k, b, _ = sgd_by_hand(model, xr, y, lr=0.1, batch=4, order=order)
    model.compile(optimizer=O.SGD(0.1), loss="mse")
    set_random_seed(7)
    model.fit(xr, y, batch_size=4, epochs=1, shuffle=True, verbose=0)
    assert_weights(model, k, b)
    unshuffled, _, _ = sgd_by_hand(linear_model(), xr, y, lr=0.1, batch=4)
    assert not torch.allclose(k, unshuffled)


def test_validation_split_takes_the_last_fraction_before_shuffling() -> None:
    x, y = regression_data(n=12)
    y[-3:] += 100.0  # the validation part is far from the rest
    split = linear_model()
    split.compile(optimizer=O.SGD(0.05), loss="mse")
    set_random_seed(5)
    history = split.fit(x, y, batch_size=4, epochs=1, validation_split=0.25, verbose=0)
    direct = linear_model()
    direct.compile(optimizer=O.SGD(0.05), loss="mse")
    set_random_seed(5)
    direct.fit(x[:9], y[:9], batch_size=4, epochs=1, verbose=0)
    for a, b in zip(split.get_weights(), direct.get_weights()):
        np.testing.assert_array_equal(a, b)
    val = split.evaluate(x[9:], y[9:], verbose=0)
    assert val > 1000 and math.isclose(history.history["val_loss"][0], val, rel_tol=1e-6)


def test_validation_data_with_and_without_weights() -> None:
    x, y = regression_data()
    model = linear_model()
    model.compile(optimizer=O.SGD(0.05), loss="mse")
    h = model.fit(x, y, batch_size=4, epochs=2, validation_data=(x[:5], y[:5]), verbose=0)
    assert len(h.history["val_loss"]) == 2
    assert math.isclose(
        h.history["val_loss"][-1], model.evaluate(x[:5], y[:5], verbose=0), rel_tol=1e-6
    )
    sw = np.array([1.0, 0.0, 2.0, 0.0, 1.0], dtype=np.float32)
    h = model.fit(x, y, epochs=1, validation_data=(x[:5], y[:5], sw), verbose=0)
    k, b = kernel_bias(model)
    per = ((torch.tensor(x[:5], dtype=torch.float64) @ k + b - torch.tensor(y[:5])) ** 2)[:, 0]
    want = float((per * torch.tensor(sw)).sum() / 5)
    assert math.isclose(h.history["val_loss"][0], want, rel_tol=1e-5)


def test_sample_weight_and_class_weight_weight_the_loss() -> None:
    set_random_seed(0)
    model = Sequential([Input(shape=(3,)), Dense(1, activation="sigmoid")])
    x, _ = regression_data()
    y = (x[:, :1] > 0).astype(np.float32)
    k, b = kernel_bias(model)
    p = torch.sigmoid(torch.tensor(x, dtype=torch.float64) @ k + b).clamp(1e-7, 1 - 1e-7)
    t = torch.tensor(y, dtype=torch.float64)
    per = -(t * p.log() + (1 - t) * (1 - p).log())[:, 0]
    cw = {0: 1.0, 1: 3.0}
    w = torch.where(t[:, 0] > 0.5, 3.0, 1.0).double()
    want = float((per * w).sum() / 10)  # one batch: the logged loss is the pre-update loss
    model.compile(optimizer=O.SGD(0.1), loss="binary_crossentropy")
    h = model.fit(x, y, batch_size=10, epochs=1, class_weight=cw, verbose=0)
    assert math.isclose(h.history["loss"][0], want, rel_tol=1e-5)
    after_cw = model.get_weights()
    model.layers[0].set_weights([k.numpy().astype(np.float32), b.numpy().astype(np.float32)])
    model.compile(optimizer=O.SGD(0.1), loss="binary_crossentropy")
    h = model.fit(x, y, batch_size=10, epochs=1, sample_weight=w.numpy(), verbose=0)
    assert math.isclose(h.history["loss"][0], want, rel_tol=1e-5)
    for a, c in zip(model.get_weights(), after_cw):
        np.testing.assert_allclose(a, c, rtol=1e-6)
    with pytest.raises(ValueError, match=r"no weight for class\(es\) \[1\]"):
        model.fit(x, y, class_weight={0: 1.0}, verbose=0)


def test_metrics_ignore_sample_weights_weighted_metrics_use_them() -> None:
    # Keras 3: ``metrics`` are updated without sample weights, ``weighted_metrics`` with them.
    model = linear_model(activation="sigmoid")
    x, _ = regression_data()
    k, b = kernel_bias(model)
    p = torch.sigmoid(torch.tensor(x, dtype=torch.float64) @ k + b)[:, 0]
    y = np.zeros((10, 1), dtype=np.float32)
    y[:5] = 1.0
    hits = ((p > 0.5).double() == torch.tensor(y[:, 0]).double()).double()
    sw = np.linspace(0.1, 1.0, 10).astype(np.float32)
    model.compile(
        optimizer=O.SGD(1e-9), loss="binary_crossentropy", metrics=["accuracy"],
        weighted_metrics=["accuracy"],
    )  # fmt: skip
    logs = model.evaluate(x, y, sample_weight=sw, verbose=0, return_dict=True)
    assert math.isclose(logs["accuracy"], float(hits.mean()), rel_tol=1e-9)
    weighted = float((hits * torch.tensor(sw)).sum() / float(sw.sum()))
    assert math.isclose(logs["weighted_accuracy"], weighted, rel_tol=1e-6)


def test_initial_epoch_and_history_contents() -> None:
    x, y = regression_data()
    model = linear_model(activation="sigmoid")
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    yb = (y > 0).astype(np.float32)
    history = model.fit(x, yb, epochs=5, initial_epoch=3, validation_split=0.2, verbose=0)
    assert history is model.history
    assert history.epoch == [3, 4]
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 2 for v in history.history.values())
    assert history.params["epochs"] == 5 and history.params["steps"] == 1
    with pytest.raises(ValueError, match=r"initial_epoch must be in \[0, epochs=2\], got 3"):
        model.fit(x, yb, epochs=2, initial_epoch=3, verbose=0)


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_verbose_output(verbose: int, capsys: pytest.CaptureFixture[str]) -> None:
    x, y = regression_data()
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    model.fit(x, y, batch_size=4, epochs=2, verbose=verbose, validation_data=(x, y))
    out = capsys.readouterr().out
    if verbose == 0:
        assert out == ""
        return
    lines = [line for line in out.splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("Epoch")] == ["Epoch 1/2", "Epoch 2/2"]
    summaries = [line for line in lines if line.startswith("3/3 - ")]
    assert len(summaries) == 2
    for line in summaries:
        for key in ("loss: ", "mean_absolute_error: ", "val_loss: ", "ms/step"):
            assert key in line, (key, line)
    model.evaluate(x, y, verbose=verbose)
    assert "loss: " in capsys.readouterr().out


def test_train_test_predict_on_batch() -> None:
    x, y = regression_data(n=6)
    model = linear_model()
    model.compile(optimizer=O.SGD(0.1), loss="mse", metrics=["mae"])
    k, b = kernel_bias(model)
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    mse = float(((xt @ k + b - yt) ** 2).mean())
    mae = float((xt @ k + b - yt).abs().mean())
    got = model.test_on_batch(x, y)
    np.testing.assert_allclose(got, [mse, mae], rtol=1e-5)
    assert model.test_on_batch(x, y, return_dict=True).keys() == {"loss", "mean_absolute_error"}
    np.testing.assert_allclose(model.predict_on_batch(x), (xt @ k + b).numpy(), rtol=1e-5)
    k1, b1, _ = sgd_by_hand(model, x, y, lr=0.1, batch=6)
    loss, _ = model.train_on_batch(x, y)
    assert math.isclose(loss, mse, rel_tol=1e-5)  # the loss before the update, as Keras
    assert_weights(model, k1, b1)


def test_evaluate_return_forms_and_uneven_last_batch() -> None:
    x, y = regression_data()
    model = linear_model()
    k, b = kernel_bias(model)
    err = torch.tensor(x, dtype=torch.float64) @ k + b - torch.tensor(y)
    model.compile(optimizer="sgd", loss="mse")
    scalar = model.evaluate(x, y, batch_size=4, verbose=0)  # batches of 4, 4, 2
    assert isinstance(scalar, float) and math.isclose(scalar, float((err**2).mean()), rel_tol=1e-5)
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    as_list = model.evaluate(x, y, batch_size=3, verbose=0)
    np.testing.assert_allclose(
        as_list, [float((err**2).mean()), float(err.abs().mean())], rtol=1e-5
    )
    as_dict = model.evaluate(x, y, batch_size=3, verbose=0, return_dict=True)
    assert list(as_dict) == ["loss", "mean_absolute_error"]


def test_predict_in_batches_equals_one_batch() -> None:
    set_random_seed(0)
    model = Sequential([Embedding(20, 4), LSTM(5, return_sequences=True), Dropout(0.5), Dense(2)])
    x = np.random.default_rng(0).integers(1, 20, size=(11, 6))
    whole = model.predict(x, batch_size=11, verbose=0)
    parts = model.predict(x, batch_size=3, verbose=0)
    assert isinstance(parts, np.ndarray) and parts.shape == (11, 6, 2)
    np.testing.assert_allclose(parts, whole, rtol=1e-6, atol=1e-6)
    # Inference mode: Dropout is off, so the result is the plain forward pass (no training).
    with torch.no_grad():
        np.testing.assert_allclose(
            model(torch.tensor(x), training=False).numpy(), whole, rtol=1e-6, atol=1e-6
        )


def test_multi_output_losses_weights_and_log_names() -> None:
    set_random_seed(0)
    inp = Input(shape=(3,))
    reg = Dense(1, name="reg")(inp)
    cls = Dense(1, activation="sigmoid", name="cls")(inp)
    model = Model(inp, [reg, cls])
    x, y = regression_data()
    yc = (y > 2).astype(np.float32)
    model.compile(
        optimizer="sgd", loss={"reg": "mse", "cls": "binary_crossentropy"},
        loss_weights={"reg": 0.5, "cls": 2.0}, metrics={"cls": ["accuracy"]},
    )  # fmt: skip
    logs = model.evaluate(x, {"reg": y, "cls": yc}, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "reg_loss", "cls_loss", "cls_accuracy"}
    pr, pc = model.predict(x, verbose=0)
    mse = float(np.mean((pr - y) ** 2))
    p = np.clip(pc, 1e-7, 1 - 1e-7)
    bce = float(np.mean(-(yc * np.log(p) + (1 - yc) * np.log(1 - p))))
    assert math.isclose(logs["reg_loss"], mse, rel_tol=1e-5)
    assert math.isclose(logs["cls_loss"], bce, rel_tol=1e-5)
    assert math.isclose(logs["loss"], 0.5 * mse + 2.0 * bce, rel_tol=1e-5)
    assert math.isclose(logs["cls_accuracy"], float(np.mean((pc > 0.5) == yc)))
    history = model.fit(x, [y, yc], epochs=1, verbose=0)
    assert set(history.history) == {"loss", "reg_loss", "cls_loss", "cls_accuracy"}


# -- reproducibility ----------------------------------------------------------------------------


def _seeded_run(seed: int):
    set_random_seed(seed)
    model = Sequential([Embedding(30, 4), LSTM(6), Dropout(0.3), Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.integers(1, 30, size=(40, 5))
    y = (x == 3).any(1).astype(np.float32)
    history = model.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0)
    return model.get_weights(), history.history


def test_set_random_seed_makes_runs_identical() -> None:
    w1, h1 = _seeded_run(11)
    w2, h2 = _seeded_run(11)
    w3, h3 = _seeded_run(12)
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2
    assert any(not np.array_equal(a, c) for a, c in zip(w1, w3)) and h1 != h3
    with pytest.raises(ValueError, match="non-negative integer"):
        set_random_seed(-1)


# -- bad input --------------------------------------------------------------------------------


def test_fit_before_compile() -> None:
    x, y = regression_data()
    with pytest.raises(RuntimeError, match=r"compile\(\) before fit\(\)"):
        linear_model().fit(x, y)
    with pytest.raises(RuntimeError, match=r"compile\(\) before evaluate\(\)"):
        linear_model().evaluate(x, y)


def test_bad_data_errors_name_expected_and_got() -> None:
    x, y = regression_data()
    model = linear_model()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="same number of samples, got 10 and 7"):
        model.fit(x, y[:7], verbose=0)
    with pytest.raises(TypeError, match=r"y: expected numeric data.*<U"):
        model.fit(x, np.array(["yes"] * 10), verbose=0)
    with pytest.raises(TypeError, match="y: expected numbers, got elements of type str"):
        model.fit(x, ["a"] * 10, verbose=0)
    with pytest.raises(ValueError, match=r"same shape, got \(10, 3\) and \(10, 1\)"):
        model.fit(x, np.zeros((10, 3), dtype=np.float32), verbose=0)
    with pytest.raises(ValueError, match=r"expected inputs of shape \(\.\.\., 3\), got \(10, 4\)"):
        model.fit(np.zeros((10, 4), dtype=np.float32), y, verbose=0)
    for bad in (1.0, 1.5, -0.1):
        with pytest.raises(
            ValueError, match=rf"validation_split must be a float in \[0, 1\), got {bad}"
        ):
            model.fit(x, y, validation_split=bad, verbose=0)
    # Keras: the split point is floor(n · (1 - split)); 0 training samples is an error.
    with pytest.raises(ValueError, match="leaves no training samples out of 10"):
        model.fit(x, y, validation_split=0.95, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        model.fit(x, y, batch_size=0, verbose=0)


def test_unknown_names_fail_at_compile() -> None:
    model = linear_model()
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'.*adam"):
        model.compile(optimizer="adamm", loss="mse")
    with pytest.raises(ValueError, match=r"unknown loss 'mse2'.*mse"):
        model.compile(optimizer="adam", loss="mse2")
    with pytest.raises(ValueError, match=r"unknown metric 'accuracyy'"):
        model.compile(optimizer="adam", loss="mse", metrics=["accuracyy"])
    with pytest.raises(ValueError, match="a loss is required"):
        model.compile(optimizer="adam")


def test_token_ids_beyond_input_dim() -> None:
    model = Sequential([Embedding(10, 3), LSTM(2), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 10\), got 12"):
        model.fit(np.array([[1, 2, 12], [0, 1, 2]]), np.zeros(2), verbose=0)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 10\), got -1"):
        model.predict(np.array([[1, -1, 2]]), verbose=0)


def test_wrong_number_of_inputs_to_a_functional_model() -> None:
    a, b = Input(shape=(2,), name="left"), Input(shape=(2,), name="right")
    from lstmkit.layers import Add

    model = Model([a, b], Dense(1)(Add()([a, b])))
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"expected 2 inputs \(left, right\), got 1"):
        model.fit([x], np.zeros((4, 1)), verbose=0)
    with pytest.raises(ValueError, match=r"expected 2 inputs \(left, right\), got 3"):
        model.predict([x, x, x], verbose=0)
