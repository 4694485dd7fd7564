"""Keras 3 ``.keras`` files for lstmkit's file exchange tests, and the check the other way.

NOT part of lstmkit and never run by the tests (they import only :func:`layout`). Three steps,
run by hand from the repository root:

    KERAS_BACKEND=torch /work/venvs/kt/bin/python tests/reference/make_keras_files.py keras
    PYTHONPATH=src /work/main/.venv/bin/python tests/reference/make_keras_files.py lstmkit
    KERAS_BACKEND=torch /work/venvs/kt/bin/python tests/reference/make_keras_files.py verify

1. ``keras`` (real Keras 3): builds the models of :data:`MODELS` with seeded random weights,
   saves ``keras_files/<name>.keras`` and writes their inputs and Keras's predictions to
   ``keras_files/keras_predictions.npz`` (``<name>/x<i>``, ``<name>/y<i>``);
2. ``lstmkit``: loads each file with ``lstmkit.models.load_model`` (its predictions must equal
   Keras's to 1e-5), saves it again with lstmkit as ``keras_files/lstmkit_<name>.keras`` and
   ``.weights.h5``, and writes lstmkit's predictions to ``lstmkit_predictions.npz``;
3. ``verify`` (real Keras 3): loads every ``lstmkit_<name>.keras`` with
   ``keras.saving.load_model`` and loads ``lstmkit_<name>.weights.h5`` into the model Keras
   built from its own file; both must predict what lstmkit predicted (1e-5). It writes
   ``keras_files/verified.json``: the differences and, per file, its :func:`layout` (zip
   members, the config's key skeleton, every HDF5 group and dataset with shape and ``name``
   attribute), which the tests compare with what lstmkit writes now.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "keras_files")
SEED = 20250522
TOL = 1e-5


# -- the layout of a .keras file (shared with the tests) -----------------------------------------


def _skeleton(obj: Any) -> Any:
    """The key structure of a JSON document (values dropped, except class names)."""
    if isinstance(obj, dict):
        out = {k: _skeleton(v) for k, v in sorted(obj.items())}
        if isinstance(obj.get("class_name"), str):
            out["class_name"] = obj["class_name"]
        return out
    if isinstance(obj, list):
        return [_skeleton(v) for v in obj]
    return None


def h5_layout(f: Any) -> list[list[Any]]:
    """Every group and dataset of an open h5py file: ``[path, shape or None, name attr]``."""
    rows: list[list[Any]] = []

    def visit(name: str, obj: Any) -> None:
        shape = list(obj.shape) if hasattr(obj, "shape") else None
        attr = obj.attrs.get("name")
        rows.append([name, shape, None if attr is None else str(attr)])

    f.visititems(visit)
    return sorted(rows)


def layout(path: str) -> dict[str, Any]:
    """Members, config key skeleton and HDF5 layout of a ``.keras`` file."""
    import io

    import h5py

    with zipfile.ZipFile(path) as zf:
        members = sorted(zf.namelist())
        config = json.loads(zf.read("config.json"))
        with h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r") as f:
            h5 = h5_layout(f)
        meta = sorted(json.loads(zf.read("metadata.json")))
    return {"members": members, "metadata_keys": meta, "config": _skeleton(config), "h5": h5}


# -- the models ------------------------------------------------------------------------------------


def _models(keras: Any) -> dict[str, tuple[Any, list[np.ndarray]]]:
    """name -> (Keras model, inputs)."""
    L = keras.layers
    rng = np.random.default_rng(SEED)
    tokens = rng.integers(1, 20, size=(3, 6)).astype("int32")
    tokens[1, 4:] = 0  # padding: masked by mask_zero
    tokens[2, 2:] = 0
    seq = rng.normal(size=(3, 8, 3)).astype("float32")
    out: dict[str, tuple[Any, list[np.ndarray]]] = {}

    out["seq_embedding_lstm"] = (keras.Sequential([
        keras.Input((6,), dtype="int32"),
        L.Embedding(20, 5, mask_zero=True),
        L.LSTM(4, return_sequences=True),
        L.Dropout(0.2),
        L.LSTM(3),
        L.Dense(2, activation="softmax"),
    ]), [tokens])  # fmt: skip
    out["seq_bidirectional_gru"] = (keras.Sequential([
        keras.Input((6,), dtype="int32"),
        L.Embedding(20, 5),
        L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum"),
        L.TimeDistributed(L.Dense(4, activation="tanh")),
        L.SimpleRNN(3),
        L.Dense(1, activation="sigmoid"),
    ]), [tokens])  # fmt: skip
    out["seq_conv_gru_bidi_lstm"] = (keras.Sequential([
        keras.Input((8, 3)),
        L.Conv1D(4, 3, padding="same", activation="relu"),
        L.GRU(3, reset_after=False, return_sequences=True),
        L.Bidirectional(L.LSTM(2)),
        L.Dense(2),
    ]), [seq])  # fmt: skip

    enc_in = keras.Input((6,), dtype="int32", name="tokens")
    e = L.Embedding(20, 5, mask_zero=True)(enc_in)
    enc_out, h, c = L.LSTM(4, return_state=True)(e)
    dec_in = keras.Input((8, 3), name="decoder_inputs")
    d = L.LSTM(4, return_sequences=True)(dec_in, initial_state=[h, c])
    y = L.TimeDistributed(L.Dense(3, activation="softmax"))(d)
    z = L.Concatenate()([enc_out, h])
    out["func_seq2seq"] = (keras.Model([enc_in, dec_in], [y, z]), [tokens, seq])

    a_in, b_in = keras.Input((8, 3), name="a"), keras.Input((8, 3), name="b")
    shared = L.SimpleRNN(3, activation="relu")
    s = L.Add()([shared(a_in), shared(b_in)])
    g = L.GRU(2)(a_in)
    out["func_shared"] = (
        keras.Model([a_in, b_in], L.Dense(1)(L.Concatenate()([s, g]))),
        [seq, seq[::-1].copy()],
    )

    for model, _ in out.values():
        model.set_weights([
            rng.normal(scale=0.5, size=w.shape).astype("float32") for w in model.get_weights()
        ])  # fmt: skip
    return out


def _predict(model: Any, xs: list[np.ndarray]) -> list[np.ndarray]:
    y = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return [np.asarray(v) for v in (y if isinstance(y, list) else [y])]


def step_keras() -> None:
    import keras

    os.makedirs(OUT, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for name, (model, xs) in _models(keras).items():
        model.save(os.path.join(OUT, f"{name}.keras"))
        for i, x in enumerate(xs):
            arrays[f"{name}/x{i}"] = x
        for i, y in enumerate(_predict(model, xs)):
            arrays[f"{name}/y{i}"] = y
        print(f"{name}: saved, {len(model.get_weights())} weights")
    lam = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2.0),
                            keras.layers.Dense(1)])  # fmt: skip
    lam.save(os.path.join(OUT, "lambda_refused.keras"))
    np.savez_compressed(os.path.join(OUT, "keras_predictions.npz"), **arrays)


def step_lstmkit() -> None:
    from lstmkit.models import load_model

    ref = np.load(os.path.join(OUT, "keras_predictions.npz"))
    names = sorted({k.split("/")[0] for k in ref.files})
    arrays: dict[str, np.ndarray] = {}
    for name in names:
        model = load_model(os.path.join(OUT, f"{name}.keras"))
        xs = [ref[k] for k in sorted(k for k in ref.files if k.startswith(f"{name}/x"))]
        ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        ys = ys if isinstance(ys, list) else [ys]
        for i, y in enumerate(ys):
            diff = float(np.abs(y - ref[f"{name}/y{i}"]).max())
            assert diff <= TOL, (name, i, diff)
            arrays[f"{name}/y{i}"] = y
        model.save(os.path.join(OUT, f"lstmkit_{name}.keras"))
        model.save_weights(os.path.join(OUT, f"lstmkit_{name}.weights.h5"))
        print(f"{name}: lstmkit predicts Keras's numbers; re-saved by lstmkit")
    np.savez_compressed(os.path.join(OUT, "lstmkit_predictions.npz"), **arrays)


def step_verify() -> None:
    import keras

    ref = np.load(os.path.join(OUT, "keras_predictions.npz"))
    mine = np.load(os.path.join(OUT, "lstmkit_predictions.npz"))
    names = sorted({k.split("/")[0] for k in mine.files})
    doc: dict[str, Any] = {"keras_version": keras.__version__,
                           "backend": keras.backend.backend(), "files": {}}  # fmt: skip
    for name in names:
        xs = [ref[k] for k in sorted(k for k in ref.files if k.startswith(f"{name}/x"))]
        path = os.path.join(OUT, f"lstmkit_{name}.keras")
        loaded = keras.saving.load_model(path)
        own = keras.saving.load_model(os.path.join(OUT, f"{name}.keras"))
        own.set_weights([np.zeros_like(w) for w in own.get_weights()])
        own.load_weights(os.path.join(OUT, f"lstmkit_{name}.weights.h5"))
        diffs = {}
        for label, model in (("load_model", loaded), ("load_weights", own)):
            for i, y in enumerate(_predict(model, xs)):
                d = float(np.abs(y - mine[f"{name}/y{i}"]).max())
                assert d <= TOL, (name, label, i, d)
                diffs[f"{label}/y{i}"] = d
        doc["files"][name] = {"max_abs_diff": diffs, "layout": layout(path)}
        print(f"{name}: Keras loads lstmkit's file and weights: {diffs}")
    with open(os.path.join(OUT, "verified.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    step = sys.argv[1] if len(sys.argv) > 1 else ""
    steps = {"keras": step_keras, "lstmkit": step_lstmkit, "verify": step_verify}
    if step not in steps:
        sys.exit(f"usage: make_keras_files.py {{{'|'.join(steps)}}}")
    if step != "lstmkit":
        os.environ.setdefault("KERAS_BACKEND", "torch")
    steps[step]()
