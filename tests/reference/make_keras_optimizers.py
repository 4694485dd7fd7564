"""Keras 3 reference numbers for lstmkit's optimisers (and the GRU bias initialisation).

NOT part of lstmkit and never imported by the tests. Run by hand with real Keras 3 on its
**torch** backend (dense embedding gradients, as lstmkit's; the TensorFlow backend gives the
embedding sparse gradient slices, which change what Adam's moments see):

    cd tests/reference && KERAS_BACKEND=torch /work/venvs/kt/bin/python make_keras_optimizers.py

It writes, next to itself:

    keras_optimizers.npz   the data (x, y), the initial weights (Keras layout, get_weights()
                           order) and, per case, the weights after one fit() epoch of six
                           batches (``<case>/<i>``); float32
    keras_optimizers.json  per case: the optimiser's class and arguments, Keras's get_config(),
                           its variable count and iterations after fit; every optimiser's
                           default get_config(); the GRU bias-initialisation check

The model is ``Input((T,), int32) -> Embedding(V, E) -> LSTM(H) -> Dense(2)``, loss MSE,
``fit(batch_size=4, epochs=1, shuffle=False)``: six optimiser steps from identical weights.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NPZ_PATH = os.path.join(HERE, "keras_optimizers.npz")
JSON_PATH = os.path.join(HERE, "keras_optimizers.json")

V, T, E, H, OUT = 12, 5, 4, 3, 2
BATCH, STEPS = 4, 6
SEED = 20250521

# (case name, Keras class, constructor arguments). Clipping thresholds are chosen small
# enough that they bind at every step (gradient norms here are ~0.1-1).
CASES = [
    ("sgd", "SGD", {"learning_rate": 0.1}),
    ("sgd_momentum", "SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("sgd_nesterov_decay", "SGD",
     {"learning_rate": 0.1, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("sgd_clipnorm", "SGD", {"learning_rate": 0.1, "clipnorm": 0.05}),
    ("sgd_accumulate", "SGD",
     {"learning_rate": 0.1, "momentum": 0.9, "gradient_accumulation_steps": 2}),
    ("adam", "Adam", {"learning_rate": 0.01}),
    ("adam_amsgrad", "Adam", {"learning_rate": 0.01, "amsgrad": True}),
    ("adam_clipnorm", "Adam", {"learning_rate": 0.01, "clipnorm": 0.05}),
    ("adam_global_clipnorm", "Adam", {"learning_rate": 0.01, "global_clipnorm": 0.1}),
    ("adam_clipvalue", "Adam", {"learning_rate": 0.01, "clipvalue": 0.01}),
    ("adam_decay", "Adam", {"learning_rate": 0.01, "weight_decay": 0.5}),
    ("adam_ema", "Adam",
     {"learning_rate": 0.01, "use_ema": True, "ema_momentum": 0.7,
      "ema_overwrite_frequency": 4}),
    ("adam_ema_final", "Adam", {"learning_rate": 0.01, "use_ema": True, "ema_momentum": 0.5}),
    ("adam_accumulate", "Adam", {"learning_rate": 0.01, "gradient_accumulation_steps": 3}),
    ("adam_loss_scale", "Adam", {"learning_rate": 0.01, "loss_scale_factor": 128.0}),
    ("adam_schedule", "Adam",
     {"learning_rate": {"class_name": "ExponentialDecay",
                        "config": {"initial_learning_rate": 0.02, "decay_steps": 2,
                                   "decay_rate": 0.5, "staircase": True}}}),
    ("adamw", "AdamW", {"learning_rate": 0.01}),
    ("adamw_amsgrad_clip", "AdamW",
     {"learning_rate": 0.01, "weight_decay": 0.3, "amsgrad": True, "clipnorm": 0.05}),
    ("rmsprop", "RMSprop", {"learning_rate": 0.01}),
    ("rmsprop_centered_momentum", "RMSprop",
     {"learning_rate": 0.01, "centered": True, "momentum": 0.5}),
    ("rmsprop_decay_clip", "RMSprop",
     {"learning_rate": 0.01, "weight_decay": 0.2, "global_clipnorm": 0.1}),
    ("adagrad", "Adagrad", {"learning_rate": 0.1}),
    ("adagrad_clipvalue", "Adagrad", {"learning_rate": 0.1, "clipvalue": 0.01}),
    ("adadelta", "Adadelta", {"learning_rate": 1.0}),
    ("adadelta_decay", "Adadelta", {"learning_rate": 1.0, "rho": 0.9, "weight_decay": 0.1}),
    ("adamax", "Adamax", {"learning_rate": 0.01}),
    ("adamax_clipnorm", "Adamax", {"learning_rate": 0.01, "clipnorm": 0.05}),
    ("nadam", "Nadam", {"learning_rate": 0.01}),
    ("nadam_decay", "Nadam", {"learning_rate": 0.01, "weight_decay": 0.2}),
    ("lion", "Lion", {"learning_rate": 0.001}),
    ("lion_decay", "Lion", {"learning_rate": 0.001, "weight_decay": 1.0, "beta_2": 0.9}),
    ("ftrl", "Ftrl", {"learning_rate": 0.1}),
    ("ftrl_regularized", "Ftrl",
     {"learning_rate": 0.1, "learning_rate_power": -0.6, "l1_regularization_strength": 0.001,
      "l2_regularization_strength": 0.01, "l2_shrinkage_regularization_strength": 0.01,
      "beta": 0.1}),
    ("adafactor", "Adafactor", {"learning_rate": 0.01}),
    ("adafactor_clip", "Adafactor", {"learning_rate": 0.5, "clip_threshold": 0.5}),
]  # fmt: skip

DEFAULT_CLASSES = [
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Lion",
    "Ftrl", "Adafactor",
]  # fmt: skip


def make_model():
    return keras.Sequential([
        keras.Input((T,), dtype="int32"),
        keras.layers.Embedding(V, E),
        keras.layers.LSTM(H),
        keras.layers.Dense(OUT),
    ])  # fmt: skip


def make_optimizer(cls, kwargs):
    kwargs = dict(kwargs)
    if isinstance(kwargs.get("learning_rate"), dict):
        kwargs["learning_rate"] = keras.optimizers.schedules.deserialize(kwargs["learning_rate"])
    return getattr(keras.optimizers, cls)(**kwargs)


def jsonable(v):
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def gru_bias_check():
    """GRU(reset_after=True) with bias_initializer=Constant(0.3): Keras fills both rows."""
    layer = keras.layers.GRU(
        3,
        kernel_initializer=keras.initializers.Constant(0.1),
        recurrent_initializer=keras.initializers.Constant(-0.2),
        bias_initializer=keras.initializers.Constant(0.3),
    )
    x = np.linspace(-1, 1, 2 * 4 * 2, dtype="float32").reshape(2, 4, 2)
    out = keras.ops.convert_to_numpy(layer(x))
    return {
        "x": x.tolist(),
        "output": out.tolist(),
        "bias": keras.ops.convert_to_numpy(layer.get_weights()[2]).tolist(),
    }


def main():
    assert keras.backend.backend() == "torch", "run with KERAS_BACKEND=torch"
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    n = BATCH * STEPS
    x = rng.integers(0, V, size=(n, T)).astype("int32")
    x[:, 0] = rng.integers(0, 3, size=n)  # a few ids are common, some rows of E stay unused
    y = rng.normal(size=(n, OUT)).astype("float32")
    model = make_model()
    init = [w.astype("float32") * 3 for w in model.get_weights()]  # larger: gates move
    arrays = {"x": x, "y": y}
    arrays.update({f"init/{i}": w for i, w in enumerate(init)})
    doc = {
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "model": {"V": V, "T": T, "E": E, "H": H, "OUT": OUT, "batch": BATCH, "steps": STEPS,
                  "loss": "mse", "weights": [list(w.shape) for w in init]},
        "cases": {},
    }  # fmt: skip
    for name, cls, kwargs in CASES:
        model = make_model()
        model.set_weights(init)
        opt = make_optimizer(cls, kwargs)
        model.compile(optimizer=opt, loss="mse")
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        final = [np.asarray(w, dtype="float32") for w in model.get_weights()]
        moved = sum(float(np.abs(f - w).sum()) for f, w in zip(final, init))
        assert moved > 0, name
        arrays.update({f"{name}/{i}": w for i, w in enumerate(final)})
        doc["cases"][name] = {
            "class": cls,
            "kwargs": kwargs,
            "keras_config": jsonable(opt.get_config()),
            "variables_count": int(sum(int(np.prod(v.shape)) for v in opt.variables)),
            "iterations": int(keras.ops.convert_to_numpy(opt.iterations)),
        }
        print(f"{name:28s} moved {moved:.4g}")
    doc["defaults"] = {}
    for c in DEFAULT_CLASSES:
        keras.backend.clear_session()  # un-numbered default names ("adam", not "adam_3")
        doc["defaults"][c] = jsonable(getattr(keras.optimizers, c)().get_config())
    doc["gru_bias_init"] = gru_bias_check()
    np.savez_compressed(NPZ_PATH, **arrays)
    with open(JSON_PATH, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {NPZ_PATH} and {JSON_PATH}")


if __name__ == "__main__":
    main()
