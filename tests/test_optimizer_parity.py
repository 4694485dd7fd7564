"""Every optimiser against Keras 3 itself: six ``fit`` steps of Embedding -> LSTM -> Dense.

The fixtures ``tests/reference/keras_optimizers.{json,npz}`` were written by
``tests/reference/make_keras_optimizers.py`` running Keras 3.15 on its torch backend: the same
model, the same initial weights (Keras layout, loaded with ``set_weights``), the same six
batches, each optimiser with the arguments of its case (clipping, weight decay, amsgrad,
EMA, gradient accumulation, loss scaling, a schedule). After one ``fit`` epoch the weights must
equal Keras's to 1e-5 of the total update (``‖w_lstmkit - w_keras‖ / ‖w_keras - w_0‖`` over
all weights) and to 1e-4 of it per weight. Keras's ``get_config()`` defaults, its variable
counts and iterations are checked too. The GRU bias-initialisation check at the end compares
with a Keras GRU built with constant initialisers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit import initializers, layers
from lstmkit.models import Sequential
from lstmkit.training import optimizers as O
from lstmkit.training import schedules as S

REFERENCE = Path(__file__).parent / "reference"
SPEC = json.loads((REFERENCE / "keras_optimizers.json").read_text())
ARRAYS = np.load(REFERENCE / "keras_optimizers.npz")
MODEL = SPEC["model"]
INIT = [ARRAYS[f"init/{i}"] for i in range(len(MODEL["weights"]))]


def _model() -> Sequential:
    model = Sequential([
        layers.Embedding(MODEL["V"], MODEL["E"]),
        layers.LSTM(MODEL["H"]),
        layers.Dense(MODEL["OUT"]),
    ])  # fmt: skip
    model(torch.zeros(1, MODEL["T"], dtype=torch.long))
    model.set_weights(INIT)
    return model


def _optimizer(cls: str, kwargs: dict) -> O.Optimizer:
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("learning_rate"), dict):
        kwargs["learning_rate"] = S.deserialize(kwargs["learning_rate"])
    return getattr(O, cls)(**kwargs)


def _fit(name: str) -> tuple[Sequential, O.Optimizer]:
    case = SPEC["cases"][name]
    model = _model()
    opt = _optimizer(case["class"], case["kwargs"])
    model.compile(optimizer=opt, loss="mse", device="cpu")
    model.fit(ARRAYS["x"], ARRAYS["y"], batch_size=MODEL["batch"], epochs=1, shuffle=False,
              verbose=0)  # fmt: skip
    return model, opt


@pytest.mark.parametrize("name", sorted(SPEC["cases"]))
def test_six_fit_steps_equal_keras(name: str) -> None:
    model, opt = _fit(name)
    got = model.get_weights()
    want = [ARRAYS[f"{name}/{i}"] for i in range(len(INIT))]
    update = np.sqrt(sum(float(((w - w0) ** 2).sum()) for w, w0 in zip(want, INIT)))
    error = np.sqrt(sum(float(((g - w) ** 2).sum()) for g, w in zip(got, want)))
    assert error <= 1e-5 * update, f"{name}: error {error:.3g}, total update {update:.3g}"
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-4 * update, err_msg=f"weight {i}")
    case = SPEC["cases"][name]
    assert opt.iterations == case["iterations"]
    assert opt.variables_count() == case["variables_count"]


@pytest.mark.parametrize("name", sorted(SPEC["cases"]))
def test_config_is_keras(name: str) -> None:
    case = SPEC["cases"][name]
    config = _optimizer(case["class"], case["kwargs"]).get_config()
    want = case["keras_config"]
    assert set(config) == set(want)
    for key, value in want.items():
        if key == "name":
            continue  # Keras numbers repeated names (adam_1, ...)
        if key == "learning_rate" and isinstance(value, dict):
            assert config[key]["class_name"] == value["class_name"]
            for k, v in value["config"].items():
                if k != "name":  # Keras's schedules carry a name, lstmkit's do not
                    assert config[key]["config"][k] == pytest.approx(v, rel=1e-7), k
        elif isinstance(value, float):
            assert math.isclose(config[key], value, rel_tol=1e-7), key
        else:
            assert config[key] == value, key


@pytest.mark.parametrize("cls", sorted(SPEC["defaults"]))
def test_defaults_are_keras(cls: str) -> None:
    # Keras 3.15's default names are its auto-names: "sgd", "adam", "adam_w", "rm_sprop", ...
    want = SPEC["defaults"][cls]
    opt = O.get(cls.lower())
    assert type(opt).__name__ == cls
    config = opt.get_config()
    assert list(config) == list(want)  # same keys in Keras's order
    for key, value in want.items():
        if isinstance(value, float):
            assert math.isclose(config[key], value, rel_tol=1e-7), key
        else:
            assert config[key] == value, key


def test_gru_reset_after_initialises_both_bias_rows_like_keras() -> None:
    ref = SPEC["gru_bias_init"]
    layer = layers.GRU(
        3,
        kernel_initializer=initializers.Constant(0.1),
        recurrent_initializer=initializers.Constant(-0.2),
        bias_initializer=initializers.Constant(0.3),
    )
    out = layer(torch.tensor(ref["x"]))
    np.testing.assert_allclose(layer.get_weights()[2], ref["bias"], rtol=0, atol=0)
    np.testing.assert_allclose(out.detach().numpy(), ref["output"], rtol=1e-6, atol=1e-6)
