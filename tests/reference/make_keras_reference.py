"""Generate Keras 3 reference numbers for lstmkit's Keras-style recurrent layers.

This script is NOT part of lstmkit and is never imported by the tests. It is run
once, by hand, with a throw-away virtual environment that has real Keras 3 in it:

    python3 -m venv /tmp/kerasref
    /tmp/kerasref/bin/pip install keras tensorflow-cpu numpy
    cd tests/reference && /tmp/kerasref/bin/python make_keras_reference.py

It writes, next to itself:

    keras_reference.npz   every array (inputs, masks, initial states, weights,
                          outputs, gradients), float32 unless a case says float64
    keras_reference.json  one entry per case: the Keras constructor arguments,
                          which npz keys are the inputs / outputs / weights /
                          gradients, plus Keras facts that are not arrays
                          (model summaries, optimizer defaults, BCE clipping)

``python make_keras_reference.py --checks`` only prints the small semantic
checks quoted in KERAS_NOTES.md; it writes nothing.

Before writing, and again after re-loading the files with plain numpy, every
case is recomputed by the hand-written numpy equations below (``np_*``); the
script fails if Keras and the equations disagree, so the weight layout stated
in the JSON is known to be the one Keras uses.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NPZ_PATH = os.path.join(HERE, "keras_reference.npz")
JSON_PATH = os.path.join(HERE, "keras_reference.json")

B, T, F, H = 3, 5, 4, 3  # batch, time steps, input features, units
WEIGHT_SCALE = 0.5  # weights ~ N(0, 0.5^2): gates mostly in their non-saturated range
SEED = 20240601

MASKS = {  # (B, T), 1 = step is used
    "mask_right": [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]],
    "mask_left": [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 1, 1]],
    "mask_gaps": [[1, 0, 1, 1, 0], [0, 1, 1, 0, 1], [1, 1, 1, 1, 1]],
    "mask_empty_row": [[1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 0, 0]],
}


# --------------------------------------------------------------------------------------
# The cases. Each is (name, layer, config, options); for "Bidirectional" the config is
# {"layer": {"class", "config"}, "merge_mode", "backward_layer"} as in the JSON.
# options: mask=<MASKS key>, initial_state=True, stateful_calls=True, x_scale=<float>.
# --------------------------------------------------------------------------------------


def _rnn(cls, **kw):
    return {"class": cls, "config": {"units": H, **kw}}


def _bidi(inner, merge_mode="concat", backward_layer=None):
    return {"layer": inner, "merge_mode": merge_mode, "backward_layer": backward_layer}


def build_cases():
    rs = {"return_sequences": True}
    rss = {"return_sequences": True, "return_state": True}
    cases = []

    def add(name, layer, config, **options):
        cases.append((name, layer, config, options))

    # ---- LSTM -------------------------------------------------------------------------
    add("lstm_plain", "LSTM", {"units": H})
    add("lstm_return_sequences", "LSTM", {"units": H, **rs})
    add("lstm_return_state", "LSTM", {"units": H, **rss})
    add("lstm_return_state_last", "LSTM", {"units": H, "return_state": True})
    add("lstm_go_backwards", "LSTM", {"units": H, "go_backwards": True, **rs})
    add("lstm_go_backwards_last", "LSTM", {"units": H, "go_backwards": True, "return_state": True})
    add("lstm_no_unit_forget_bias", "LSTM", {"units": H, "unit_forget_bias": False, **rs})
    add("lstm_no_bias", "LSTM", {"units": H, "use_bias": False, **rs})
    add("lstm_initial_state", "LSTM", {"units": H, **rss}, initial_state=True)
    add(
        "lstm_relu_hard_sigmoid",
        "LSTM",
        {"units": H, "activation": "relu", "recurrent_activation": "hard_sigmoid", **rss},
        x_scale=3.0,  # pushes pre-activations past +-3, into hard_sigmoid's clipped parts
    )
    add("lstm_mask_right", "LSTM", {"units": H, **rss}, mask="mask_right")
    add("lstm_mask_right_last", "LSTM", {"units": H, "return_state": True}, mask="mask_right")
    add("lstm_mask_left", "LSTM", {"units": H, **rss}, mask="mask_left")
    add(
        "lstm_mask_left_initial_state",
        "LSTM",
        {"units": H, **rss},
        mask="mask_left",
        initial_state=True,
    )
    add("lstm_mask_gaps", "LSTM", {"units": H, **rss}, mask="mask_gaps")
    add("lstm_mask_gaps_last", "LSTM", {"units": H, "return_state": True}, mask="mask_gaps")
    add(
        "lstm_mask_gaps_zero_output",
        "LSTM",
        {"units": H, "zero_output_for_mask": True, **rss},
        mask="mask_gaps",
    )
    add(
        "lstm_mask_gaps_zero_output_last",
        "LSTM",
        {"units": H, "zero_output_for_mask": True, "return_state": True},
        mask="mask_gaps",
    )
    add(
        "lstm_mask_right_go_backwards",
        "LSTM",
        {"units": H, "go_backwards": True, **rss},
        mask="mask_right",
    )
    add(
        "lstm_mask_gaps_go_backwards",
        "LSTM",
        {"units": H, "go_backwards": True, **rss},
        mask="mask_gaps",
    )
    add("lstm_mask_empty_row", "LSTM", {"units": H, **rss}, mask="mask_empty_row")
    add("lstm_stateful", "LSTM", {"units": H, "stateful": True, **rss}, stateful_calls=True)
    add("lstm_float64", "LSTM", {"units": H, "dtype": "float64", **rss})

    # ---- GRU: ra1 = reset_after=True (Keras default), ra0 = reset_after=False ---------
    for tag, ra in (("ra1", True), ("ra0", False)):
        g = {"units": H, "reset_after": ra}
        add(f"gru_{tag}_plain", "GRU", dict(g))
        add(f"gru_{tag}_return_sequences", "GRU", {**g, **rs})
        add(f"gru_{tag}_return_state", "GRU", {**g, **rss})
        add(f"gru_{tag}_go_backwards", "GRU", {**g, "go_backwards": True, **rs})
        add(f"gru_{tag}_mask_gaps", "GRU", {**g, **rss}, mask="mask_gaps")
        add(f"gru_{tag}_initial_state", "GRU", {**g, **rss}, initial_state=True)
        add(f"gru_{tag}_no_bias", "GRU", {**g, "use_bias": False, **rs})
        add(f"gru_{tag}_float64", "GRU", {**g, "dtype": "float64", **rss})
    add(
        "gru_ra1_mask_right_go_backwards",
        "GRU",
        {"units": H, "go_backwards": True, **rss},
        mask="mask_right",
    )
    add(
        "gru_ra1_mask_gaps_zero_output",
        "GRU",
        {"units": H, "zero_output_for_mask": True, **rss},
        mask="mask_gaps",
    )
    add(
        "gru_ra1_hard_sigmoid",
        "GRU",
        {"units": H, "recurrent_activation": "hard_sigmoid", **rs},
        x_scale=3.0,
    )
    add("gru_ra1_stateful", "GRU", {"units": H, "stateful": True, **rss}, stateful_calls=True)

    # ---- SimpleRNN ----------------------------------------------------------------------
    add("simplernn_plain", "SimpleRNN", {"units": H})
    add("simplernn_relu", "SimpleRNN", {"units": H, "activation": "relu", **rs})
    add("simplernn_return_state", "SimpleRNN", {"units": H, **rss})
    add("simplernn_mask_gaps", "SimpleRNN", {"units": H, **rss}, mask="mask_gaps")
    add(
        "simplernn_mask_gaps_zero_output",
        "SimpleRNN",
        {"units": H, "zero_output_for_mask": True, **rss},
        mask="mask_gaps",
    )
    add("simplernn_go_backwards", "SimpleRNN", {"units": H, "go_backwards": True, **rs})
    add("simplernn_initial_state", "SimpleRNN", {"units": H, **rss}, initial_state=True)
    add("simplernn_no_bias", "SimpleRNN", {"units": H, "use_bias": False, **rs})

    # ---- Bidirectional ------------------------------------------------------------------
    lstm_rs = _rnn("LSTM", **rs)
    for mode in ("concat", "sum", "mul", "ave", None):
        add(f"bidi_lstm_{str(mode).lower()}", "Bidirectional", _bidi(lstm_rs, mode))
    add("bidi_lstm_last", "Bidirectional", _bidi(_rnn("LSTM")))
    add("bidi_lstm_return_state", "Bidirectional", _bidi(_rnn("LSTM", **rss)))
    add("bidi_lstm_return_state_last", "Bidirectional", _bidi(_rnn("LSTM", return_state=True)))
    add("bidi_lstm_none_return_state", "Bidirectional", _bidi(_rnn("LSTM", **rss), None))
    add("bidi_lstm_initial_state", "Bidirectional", _bidi(_rnn("LSTM", **rss)), initial_state=True)
    add("bidi_lstm_mask_right", "Bidirectional", _bidi(_rnn("LSTM", **rss)), mask="mask_right")
    add(
        "bidi_lstm_mask_right_last",
        "Bidirectional",
        _bidi(_rnn("LSTM", return_state=True)),
        mask="mask_right",
    )
    add("bidi_lstm_mask_gaps", "Bidirectional", _bidi(_rnn("LSTM", **rss)), mask="mask_gaps")
    add("bidi_gru", "Bidirectional", _bidi(_rnn("GRU", **rs)))
    add("bidi_gru_return_state", "Bidirectional", _bidi(_rnn("GRU", **rss)))
    add("bidi_gru_mask_right", "Bidirectional", _bidi(_rnn("GRU", **rs)), mask="mask_right")
    add("bidi_simplernn", "Bidirectional", _bidi(_rnn("SimpleRNN", **rs), "sum"))
    add(
        "bidi_lstm_backward_layer",
        "Bidirectional",
        _bidi(
            lstm_rs,
            "concat",
            {
                "class": "LSTM",
                "config": {"units": 2, "activation": "relu", "go_backwards": True, **rs},
            },
        ),
    )
    return cases


# --------------------------------------------------------------------------------------
# Hand-written numpy equations (independent of Keras), used to validate the fixtures.
# --------------------------------------------------------------------------------------


def np_act(name, x):
    if name == "tanh":
        return np.tanh(x)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "hard_sigmoid":  # Keras 3: relu6(x + 3) / 6
        return np.clip(x / 6.0 + 0.5, 0.0, 1.0)
    if name == "linear":
        return x
    raise ValueError(name)


def _cfg_defaults(layer, cfg):
    out = {
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "return_sequences": False,
        "return_state": False,
        "go_backwards": False,
        "zero_output_for_mask": False,
        "reset_after": True,
    }
    out.update(cfg)
    return out


def np_step(layer, c, weights, x_t, states):
    """One step. weights in Keras order (get_weights()); states list as Keras returns."""
    act = lambda v: np_act(c["activation"], v)  # noqa: E731
    rec = lambda v: np_act(c["recurrent_activation"], v)  # noqa: E731
    kernel, recurrent = weights[0], weights[1]
    bias = weights[2] if c["use_bias"] else None
    h = states[0]
    if layer == "SimpleRNN":
        z = x_t @ kernel + h @ recurrent + (0 if bias is None else bias)
        h = act(z)
        return h, [h]
    if layer == "LSTM":
        cell = states[1]
        z = x_t @ kernel + h @ recurrent + (0 if bias is None else bias)  # (B, 4H)
        zi, zf, zc, zo = np.split(z, 4, axis=-1)  # Keras gate order i, f, c, o
        i, f, g, o = rec(zi), rec(zf), act(zc), rec(zo)
        cell = f * cell + i * g
        h = o * act(cell)
        return h, [h, cell]
    if layer == "GRU":
        n = recurrent.shape[0]
        if c["reset_after"]:
            b_in = 0 if bias is None else bias[0]
            b_rec = 0 if bias is None else bias[1]
            xz = x_t @ kernel + b_in  # (B, 3H): z, r, h
            hz = h @ recurrent + b_rec
            z = rec(xz[:, :n] + hz[:, :n])
            r = rec(xz[:, n : 2 * n] + hz[:, n : 2 * n])
            hh = act(xz[:, 2 * n :] + r * hz[:, 2 * n :])
        else:
            xz = x_t @ kernel + (0 if bias is None else bias)
            z = rec(xz[:, :n] + h @ recurrent[:, :n])
            r = rec(xz[:, n : 2 * n] + h @ recurrent[:, n : 2 * n])
            hh = act(xz[:, 2 * n :] + (r * h) @ recurrent[:, 2 * n :])
        h = z * h + (1.0 - z) * hh
        return h, [h]
    raise ValueError(layer)


def np_rnn(layer, cfg, weights, x, mask=None, initial_state=None):
    """Whole sequence, with Keras's masking / go_backwards / return_* semantics."""
    c = _cfg_defaults(layer, cfg)
    b, t = x.shape[0], x.shape[1]
    units = weights[1].shape[0]
    n_states = 2 if layer == "LSTM" else 1
    states = (
        [np.zeros((b, units), x.dtype) for _ in range(n_states)]
        if initial_state is None
        else [np.array(s) for s in initial_state]
    )
    order = range(t - 1, -1, -1) if c["go_backwards"] else range(t)
    prev_out = np.zeros((b, units), x.dtype)  # the "previous output" starts at zero
    outs = []
    for k in order:
        out, new_states = np_step(layer, c, weights, x[:, k], states)
        if mask is not None:
            m = mask[:, k][:, None].astype(bool)
            new_states = [np.where(m, ns, s) for ns, s in zip(new_states, states)]
            out = np.where(m, out, 0.0 if c["zero_output_for_mask"] else prev_out)
        states = new_states
        prev_out = out
        outs.append(out)
    seq = np.stack(outs, axis=1)  # in processing order (reversed when go_backwards)
    output = seq if c["return_sequences"] else seq[:, -1]
    return [output, *states] if c["return_state"] else [output]


def np_layer(layer, config, weights, x, mask=None, initial_state=None):
    if layer != "Bidirectional":
        return np_rnn(layer, config, weights, x, mask, initial_state)
    fcls, fcfg = config["layer"]["class"], dict(config["layer"]["config"])
    bl = config["backward_layer"]
    if bl is None:
        bcls, bcfg = fcls, {**fcfg, "go_backwards": True}
    else:
        bcls, bcfg = bl["class"], dict(bl["config"])
    rseq = fcfg.get("return_sequences", False)
    fcfg["zero_output_for_mask"] = rseq  # Bidirectional forces this on both layers
    bcfg["zero_output_for_mask"] = rseq
    n_fw = 2 if not fcfg.get("use_bias", True) else 3
    fw_w, bw_w = weights[:n_fw], weights[n_fw:]
    fs = bs = None
    if initial_state is not None:
        half = len(initial_state) // 2
        fs, bs = initial_state[:half], initial_state[half:]
    y = np_rnn(fcls, fcfg, fw_w, x, mask, fs)
    y_rev = np_rnn(bcls, bcfg, bw_w, x, mask, bs)
    a, b_ = y[0], y_rev[0]
    if rseq:
        b_ = b_[:, ::-1]
    mode = config["merge_mode"]
    if mode == "concat":
        out = [np.concatenate([a, b_], axis=-1)]
    elif mode == "sum":
        out = [a + b_]
    elif mode == "ave":
        out = [(a + b_) / 2]
    elif mode == "mul":
        out = [a * b_]
    else:
        out = [a, b_]
    return out + y[1:] + y_rev[1:]


def n_output_tensors(layer, config):
    """How many leading entries of the returned list are 'the output' (not states)."""
    return 2 if layer == "Bidirectional" and config["merge_mode"] is None else 1


# --------------------------------------------------------------------------------------
# Keras side
# --------------------------------------------------------------------------------------


def keras_layer(keras, layer, config):
    if layer == "Bidirectional":
        inner = config["layer"]
        fw = getattr(keras.layers, inner["class"])(**inner["config"])
        bw = None
        if config["backward_layer"] is not None:
            bl = config["backward_layer"]
            bw = getattr(keras.layers, bl["class"])(**bl["config"])
        return keras.layers.Bidirectional(fw, merge_mode=config["merge_mode"], backward_layer=bw)
    return getattr(keras.layers, layer)(**config)


def _dtype_of(layer, config):
    cfg = config["layer"]["config"] if layer == "Bidirectional" else config
    return np.float64 if cfg.get("dtype") == "float64" else np.float32


def _returns(layer, config):
    cfg = config["layer"]["config"] if layer == "Bidirectional" else config
    return cfg.get("return_state", False)


def _state_count(layer, config):
    if layer == "Bidirectional":
        cls = config["layer"]["class"]
        per = 2 if cls == "LSTM" else 1
        return 2 * per
    return 2 if layer == "LSTM" else 1


def _weight_family(layer, config):
    if layer == "Bidirectional":
        bl = config["backward_layer"]
        return f"Bidirectional({config['layer']['class']}, {bl['class'] if bl else None})"
    return layer


def _units(layer, config):
    return config["layer"]["config"]["units"] if layer == "Bidirectional" else config["units"]


def _to_list(result):
    if isinstance(result, (list, tuple)):
        out = []
        for r in result:
            out.extend(_to_list(r))
        return out
    return [result]


def generate(keras, tf):
    rng = np.random.default_rng(SEED)
    arrays: dict[str, np.ndarray] = {}
    x_shared = rng.normal(size=(B, T, F)).astype(np.float32)
    arrays["shared/x"] = x_shared
    for k, v in MASKS.items():
        arrays[f"shared/{k}"] = np.array(v, dtype=bool)

    entries = []
    weight_sets: dict[tuple, list[str]] = {}
    for name, layer, config, opts in build_cases():
        keras.backend.clear_session()
        dtype = _dtype_of(layer, config)
        lyr = keras_layer(keras, layer, config)
        lyr.build((B, T, F))
        init_weights = [np.array(w) for w in lyr.get_weights()]
        # Cases whose weights have the same class, shapes and dtype share one weight set
        # (keeps the npz small and makes cases comparable with each other).
        sig = (
            _weight_family(layer, config),
            tuple(w.shape for w in init_weights),
            np.dtype(dtype).name,
        )
        if sig not in weight_sets:
            tag = f"w{len(weight_sets):02d}"
            keys = []
            for i, w in enumerate(init_weights):
                arrays[f"weights/{tag}_{i}"] = (WEIGHT_SCALE * rng.normal(size=w.shape)).astype(
                    dtype
                )
                keys.append(f"weights/{tag}_{i}")
            weight_sets[sig] = keys
        wkeys = weight_sets[sig]
        new_w = [arrays[k] for k in wkeys]
        lyr.set_weights(new_w)
        got_w = lyr.get_weights()
        assert all(np.array_equal(a, b) for a, b in zip(got_w, new_w)), name
        assert len(lyr.weights) == len(new_w) == len(lyr.trainable_weights), name

        # inputs of the first call
        if opts.get("x_scale") or dtype != np.float32:
            x = (x_shared * opts.get("x_scale", 1.0)).astype(dtype)
            xkey = f"{name}/x"
            arrays[xkey] = x
        else:
            x, xkey = x_shared, "shared/x"
        mask_key = f"shared/{opts['mask']}" if opts.get("mask") else None
        mask = arrays[mask_key] if mask_key else None
        init_keys = None
        init = None
        if opts.get("initial_state"):
            units = _units(layer, config)
            init = [
                (0.5 * rng.normal(size=(B, units))).astype(dtype)
                for _ in range(_state_count(layer, config))
            ]
            init_keys = []
            for j, s in enumerate(init):
                arrays[f"{name}/s{j}"] = s
                init_keys.append(f"{name}/s{j}")

        n_out = n_output_tensors(layer, config)
        calls = []

        # first call, under the tape
        xt = tf.constant(x)
        init_t = [tf.constant(s) for s in init] if init is not None else None
        kwargs = {}
        if mask is not None:
            kwargs["mask"] = tf.constant(mask)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            if init_t is not None:
                for s in init_t:
                    tape.watch(s)
                kwargs["initial_state"] = init_t
            result = _to_list(lyr(xt, **kwargs))
            loss = tf.add_n([tf.reduce_sum(r) for r in result[:n_out]])
        sources = [xt] + list(lyr.weights) + (init_t or [])
        grads = tape.gradient(loss, sources)
        outs = [np.array(r) for r in result]
        out_keys = []
        for j, o in enumerate(outs):
            arrays[f"{name}/out0_{j}"] = o
            out_keys.append(f"{name}/out0_{j}")
        calls.append(
            {
                "inputs": xkey,
                "mask": mask_key,
                "initial_state": init_keys,
                "outputs": out_keys,
                "after": None,
            }
        )
        arrays[f"{name}/grad_x"] = np.array(grads[0])
        gw_keys = []
        for i, g in enumerate(grads[1 : 1 + len(new_w)]):
            g = np.zeros_like(new_w[i]) if g is None else np.array(g)
            arrays[f"{name}/grad_w{i}"] = g
            gw_keys.append(f"{name}/grad_w{i}")
        grad_entry = {
            "loss": "sum(outputs[0])" if n_out == 1 else "sum(outputs[0]) + sum(outputs[1])",
            "inputs": f"{name}/grad_x",
            "weights": gw_keys,
        }
        if init_t is not None:
            gs_keys = []
            for j, g in enumerate(grads[1 + len(new_w) :]):
                arrays[f"{name}/grad_s{j}"] = np.array(g)
                gs_keys.append(f"{name}/grad_s{j}")
            grad_entry["initial_state"] = gs_keys

        if opts.get("stateful_calls"):
            # second call continues from the state left by the first; then reset_state();
            # third call (same input as the first) starts from zeros again.
            x1 = rng.normal(size=(B, T, F)).astype(dtype)
            arrays[f"{name}/x1"] = x1
            r1 = [np.array(r) for r in _to_list(lyr(tf.constant(x1)))]
            k1 = []
            for j, o in enumerate(r1):
                arrays[f"{name}/out1_{j}"] = o
                k1.append(f"{name}/out1_{j}")
            calls.append(
                {
                    "inputs": f"{name}/x1",
                    "mask": None,
                    "initial_state": None,
                    "outputs": k1,
                    "after": "reset_state",
                }
            )
            lyr.reset_state()
            r2 = [np.array(r) for r in _to_list(lyr(tf.constant(x)))]
            k2 = []
            for j, o in enumerate(r2):
                arrays[f"{name}/out2_{j}"] = o
                k2.append(f"{name}/out2_{j}")
            calls.append(
                {"inputs": xkey, "mask": None, "initial_state": None, "outputs": k2, "after": None}
            )

        entry = {
            "name": name,
            "layer": layer,
            "config": config,
            "dtype": "float64" if dtype == np.float64 else "float32",
            "calls": calls,
            "n_output_tensors": n_out,
            "weights": wkeys,
            "weight_shapes": [list(w.shape) for w in new_w],
            "keras_weight_names": [v.path for v in lyr.weights],
            "keras_initial_bias": None,
            "grads": grad_entry,
        }
        if layer == "LSTM" and config.get("use_bias", True):
            # the bias Keras itself initialised (before set_weights) pins unit_forget_bias
            entry["keras_initial_bias"] = init_weights[2].tolist()
        entries.append(entry)
        validate_case(entry, arrays)
    return arrays, entries


def validate_case(entry, arrays):
    """Recompute a case with the numpy equations; raise if Keras disagrees."""
    tol = 1e-12 if entry["dtype"] == "float64" else 2e-5
    w = [arrays[k] for k in entry["weights"]]
    layer, config = entry["layer"], entry["config"]
    stateful_state = None
    for call in entry["calls"]:
        x = arrays[call["inputs"]]
        mask = arrays[call["mask"]] if call["mask"] else None
        init = (
            [arrays[k] for k in call["initial_state"]] if call["initial_state"] else stateful_state
        )
        want = [arrays[k] for k in call["outputs"]]
        got = np_layer(layer, config, w, x, mask, init)
        assert len(got) == len(want), (entry["name"], len(got), len(want))
        for g, k in zip(got, want):
            assert g.shape == k.shape, (entry["name"], g.shape, k.shape)
            err = float(np.max(np.abs(g - k)))
            assert err < tol, f"{entry['name']}: numpy equations differ from Keras by {err}"
        if config.get("stateful"):
            full = np_layer(layer, {**config, "return_state": True}, w, x, mask, init)
            stateful_state = full[1:]
            if call["after"] == "reset_state":
                stateful_state = None


def finite_difference_check(entry, arrays, eps=1e-6):
    """Central differences of the numpy equations (float64) against Keras's gradients."""
    layer, config = entry["layer"], entry["config"]
    call = entry["calls"][0]
    x = arrays[call["inputs"]].astype(np.float64)
    mask = arrays[call["mask"]] if call["mask"] else None
    init = (
        [arrays[k].astype(np.float64) for k in call["initial_state"]]
        if call["initial_state"]
        else None
    )
    w = [arrays[k].astype(np.float64) for k in entry["weights"]]
    n_out = entry["n_output_tensors"]

    def loss():
        return sum(float(o.sum()) for o in np_layer(layer, config, w, x, mask, init)[:n_out])

    targets = [(x, arrays[entry["grads"]["inputs"]])] + [
        (wi, arrays[k]) for wi, k in zip(w, entry["grads"]["weights"])
    ]
    for arr, keras_grad in targets:
        flat = arr.reshape(-1)
        fd = np.zeros_like(flat)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            fd[i] = (up - down) / (2 * eps)
        err = float(np.max(np.abs(fd.reshape(arr.shape) - keras_grad)))
        assert err < 1e-4, (
            f"{entry['name']}: finite differences differ from Keras gradient by {err}"
        )


# --------------------------------------------------------------------------------------
# Non-array Keras facts
# --------------------------------------------------------------------------------------


def summaries(keras):
    L = keras.layers

    def text(model):
        lines = []
        model.summary(print_fn=lambda s, **kw: lines.append(s))
        return "\n".join(lines)

    out = {}
    keras.backend.clear_session()
    m = keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            L.Embedding(20000, 128),
            L.LSTM(128, return_sequences=True),
            L.Dropout(0.2),
            L.LSTM(64),
            L.Dense(1, activation="sigmoid"),
        ]
    )
    out["sentiment_lstm"] = {
        "code": "Sequential([Input(shape=(None,), dtype='int32'), Embedding(20000, 128), "
        "LSTM(128, return_sequences=True), Dropout(0.2), LSTM(64), "
        "Dense(1, activation='sigmoid')])",
        "count_params": int(m.count_params()),
        "summary": text(m),
    }
    keras.backend.clear_session()
    m = keras.Sequential([keras.Input(shape=(None, 16)), L.GRU(64)])
    out["gru64_16"] = {
        "code": "Sequential([Input(shape=(None, 16)), GRU(64)])",
        "count_params": int(m.count_params()),
        "summary": text(m),
    }
    keras.backend.clear_session()
    m = keras.Sequential([keras.Input(shape=(None, 16)), L.Bidirectional(L.LSTM(32))])
    out["bilstm32_16"] = {
        "code": "Sequential([Input(shape=(None, 16)), Bidirectional(LSTM(32))])",
        "count_params": int(m.count_params()),
        "summary": text(m),
    }
    keras.backend.clear_session()
    m = keras.Sequential([keras.Input(shape=(None, 16)), L.GRU(64, reset_after=False)])
    out["gru64_16_reset_before"] = {
        "code": "Sequential([Input(shape=(None, 16)), GRU(64, reset_after=False)])",
        "count_params": int(m.count_params()),
        "summary": text(m),
    }
    keras.backend.clear_session()
    m = keras.Sequential([keras.Input(shape=(None, 16)), L.SimpleRNN(32, return_sequences=True)])
    out["simplernn32_16"] = {
        "code": "Sequential([Input(shape=(None, 16)), SimpleRNN(32, return_sequences=True)])",
        "count_params": int(m.count_params()),
        "summary": text(m),
    }
    keras.backend.clear_session()
    return out


OPT_KEYS = (
    "learning_rate",
    "beta_1",
    "beta_2",
    "epsilon",
    "rho",
    "momentum",
    "nesterov",
    "centered",
    "amsgrad",
    "weight_decay",
    "initial_accumulator_value",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
)


def optimizer_defaults(keras):
    out = {}
    for name in ("Adam", "AdamW", "SGD", "RMSprop", "Adagrad"):
        cfg = getattr(keras.optimizers, name)().get_config()
        out[name] = {k: _jsonable(cfg[k]) for k in OPT_KEYS if k in cfg}
    return out


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def bce_facts(keras):
    bce = keras.losses.binary_crossentropy
    cases = {
        "y=1,p=0": ([1.0], [0.0]),
        "y=1,p=1": ([1.0], [1.0]),
        "y=0,p=0": ([0.0], [0.0]),
        "y=0,p=1": ([0.0], [1.0]),
        "y=1,p=0.5": ([1.0], [0.5]),
        "y=1,p=1e-9": ([1.0], [1e-9]),
        "y=1,p=1e-7": ([1.0], [1e-7]),
        "y=1,p=1e-6": ([1.0], [1e-6]),
    }
    vals = {
        k: float(np.array(bce(np.array(y, "float32"), np.array(p, "float32"))))
        for k, (y, p) in cases.items()
    }
    return {
        "keras.config.epsilon()": keras.config.epsilon(),
        "binary_crossentropy(y_true, y_pred), from_logits=False, float32": vals,
        "BinaryCrossentropy().get_config()": {
            k: _jsonable(v)
            for k, v in keras.losses.BinaryCrossentropy().get_config().items()
            if k != "name"
        },
    }


# --------------------------------------------------------------------------------------
# Semantic checks quoted in KERAS_NOTES.md
# --------------------------------------------------------------------------------------


def semantic_checks(keras, tf):
    np.set_printoptions(precision=4, suppress=True)

    def r4(a):
        return np.round(np.asarray(a, dtype=np.float64), 4).tolist()

    L = keras.layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 2)).astype("float32")
    m = np.array([[1, 0, 1, 1, 0], [0, 0, 1, 1, 1]], bool)

    print(
        "== zero_output_for_mask default, masked outputs (unit 0 shown), mask rows",
        m.astype(int).tolist(),
    )
    for cls in (L.LSTM, L.GRU, L.SimpleRNN):
        keras.utils.set_random_seed(1)
        a = cls(2, return_sequences=True, return_state=True)
        a.build(x.shape)
        b = cls(2, return_sequences=True, return_state=True, zero_output_for_mask=True)
        b.build(x.shape)
        b.set_weights(a.get_weights())
        ya, yb = a(x, mask=m), b(x, mask=m)
        print(f"{cls.__name__}: default zero_output_for_mask={a.zero_output_for_mask}")
        print("  default  seq:", r4(np.array(ya[0])[:, :, 0]), " h:", r4(np.array(ya[1])[:, 0]))
        print("  zofm=True seq:", r4(np.array(yb[0])[:, :, 0]), " h:", r4(np.array(yb[1])[:, 0]))

    same = []
    for cls in (L.LSTM, L.GRU, L.SimpleRNN):
        a = cls(2, return_sequences=True)
        a.build(x.shape)
        b = cls(2, return_sequences=True, zero_output_for_mask=True)
        b.build(x.shape)
        b.set_weights(a.get_weights())
        ones = np.ones(x.shape[:2], bool)
        same.append(
            bool(np.array_equal(np.array(a(x)), np.array(b(x))))
            and bool(np.array_equal(np.array(a(x, mask=ones)), np.array(b(x))))
        )
    print(
        "  no step masked (mask None or all ones): zofm False == True bit for bit "
        "(LSTM, GRU, SimpleRNN):",
        same,
    )

    print("\n== zero_output_for_mask=True, return_sequences=False, last step masked (row 0)")
    keras.utils.set_random_seed(1)
    a = L.LSTM(2, return_state=True, zero_output_for_mask=True)
    r = a(x, mask=m)
    print("  last output:", r4(r[0]), " h state:", r4(r[1]))

    print(
        "\n== go_backwards == forward layer on x[:, ::-1] (and mask[:, ::-1]); "
        "sequence NOT flipped back"
    )
    keras.utils.set_random_seed(1)
    a = L.LSTM(2, return_sequences=True, return_state=True, go_backwards=True)
    a.build(x.shape)
    f = L.LSTM(2, return_sequences=True, return_state=True)
    f.build(x.shape)
    f.set_weights(a.get_weights())
    for mm in (None, m):
        ra = a(x, mask=mm)
        rf = f(x[:, ::-1], mask=None if mm is None else mm[:, ::-1])
        print(
            f"  mask={'None' if mm is None else 'gaps'}: max|diff| seq",
            float(np.max(np.abs(np.array(ra[0]) - np.array(rf[0])))),
            " states",
            max(float(np.max(np.abs(np.array(p) - np.array(q)))) for p, q in zip(ra[1:], rf[1:])),
        )

    print(
        "\n== state returned when the last steps are masked == state after the last unmasked step"
    )
    keras.utils.set_random_seed(1)
    a = L.LSTM(2, return_sequences=True, return_state=True)
    r_mask = a(x, mask=np.array([[1, 1, 1, 0, 0]] * 2, bool))
    r_cut = a(x[:, :3])
    print(
        "  max|h_masked - h(x[:, :3])|",
        float(np.max(np.abs(np.array(r_mask[1]) - np.array(r_cut[1])))),
    )
    print(
        "  max|c_masked - c(x[:, :3])|",
        float(np.max(np.abs(np.array(r_mask[2]) - np.array(r_cut[2])))),
    )

    print("\n== leading masked steps with an initial_state: output is 0, not h0; state stays h0")
    keras.utils.set_random_seed(1)
    a = L.LSTM(2, return_sequences=True, return_state=True)
    h0 = np.full((2, 2), 0.7, "float32")
    r = a(x, mask=np.array([[0, 0, 1, 1, 1]] * 2, bool), initial_state=[h0, h0])
    print("  outputs t=0,1 (row 0):", np.array(r[0])[0, :2].tolist())
    r = a(x, mask=np.zeros((2, 5), bool), initial_state=[h0, h0])
    print("  fully masked row: h", r4(np.array(r[1])[0]), " c", r4(np.array(r[2])[0]))

    print("\n== Bidirectional(return_state=True): returned list")
    keras.utils.set_random_seed(1)
    bi = L.Bidirectional(L.LSTM(2, return_sequences=True, return_state=True))
    r = bi(x)
    print("  len", len(r), "shapes", [tuple(t.shape) for t in r])
    fwd = bi.forward_layer(x)
    bwd = bi.backward_layer(x)
    print(
        "  r[1:3] == forward (h, c):",
        all(np.allclose(np.array(p), np.array(q)) for p, q in zip(r[1:3], fwd[1:])),
        "  r[3:5] == backward (h, c):",
        all(np.allclose(np.array(p), np.array(q)) for p, q in zip(r[3:5], bwd[1:])),
    )
    print(
        "  output[..., 2:] == backward_layer sequence flipped in time:",
        bool(np.allclose(np.array(r[0])[..., 2:], np.array(bwd[0])[:, ::-1])),
    )
    print(
        "  forward/backward zero_output_for_mask:",
        bi.forward_layer.zero_output_for_mask,
        bi.backward_layer.zero_output_for_mask,
        "(inner LSTM had False; Bidirectional sets it to return_sequences)",
    )
    bi2 = L.Bidirectional(L.LSTM(2, return_state=True))
    print(
        "  return_sequences=False -> zero_output_for_mask:", bi2.forward_layer.zero_output_for_mask
    )
    bi_n = L.Bidirectional(L.LSTM(2, return_sequences=True, return_state=True), merge_mode=None)
    r = bi_n(x)
    print("  merge_mode=None, return_state: len", len(r), "shapes", [tuple(t.shape) for t in r])
    print("  weight paths:", [v.path for v in bi.weights])

    print("\n== Bidirectional with a right-padded mask: padded steps of the merged output are 0")
    mr = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)
    r = bi(x, mask=mr)
    print("  row 1, t=3,4:", np.array(r[0])[1, 3:].tolist())

    print("\n== initializers (LSTM(64) on 32 features, GRU(64), SimpleRNN(64))")
    keras.utils.set_random_seed(3)
    a = L.LSTM(64)
    a.build((None, 10, 32))
    k, rk, bias = [np.array(w) for w in a.get_weights()]
    lim = np.sqrt(6.0 / (32 + 256))
    print(
        f"  kernel {k.shape}: max|w|={np.abs(k).max():.5f}, sqrt(6/(I+4H))={lim:.5f}, "
        f"var={k.var():.6f}, lim^2/3={lim**2 / 3:.6f}"
    )
    print(f"  recurrent {rk.shape}: max|R R^T - I|={np.abs(rk @ rk.T - np.eye(64)).max():.2e}")
    blocks = [rk[:, 64 * j : 64 * (j + 1)] for j in range(4)]
    print(
        "  per-gate block (H,H) orthogonal? max|B B^T - I| =",
        [f"{np.abs(bb @ bb.T - np.eye(64)).max():.2f}" for bb in blocks],
    )
    print(
        "  bias (unit_forget_bias=True):",
        [float(np.unique(bias[64 * j : 64 * (j + 1)])[0]) for j in range(4)],
        "per gate i,f,c,o",
    )
    g = L.GRU(64)
    g.build((None, 10, 32))
    gk, grk, gb = [np.array(w) for w in g.get_weights()]
    print(
        f"  GRU kernel {gk.shape} recurrent {grk.shape} bias {gb.shape}; "
        f"max|R R^T - I|={np.abs(grk @ grk.T - np.eye(64)).max():.2e}"
    )
    g0 = L.GRU(64, reset_after=False)
    g0.build((None, 10, 32))
    print("  GRU(reset_after=False) shapes:", [tuple(w.shape) for w in g0.get_weights()])
    s = L.SimpleRNN(64)
    s.build((None, 10, 32))
    srk = np.array(s.get_weights()[1])
    print(
        f"  SimpleRNN recurrent {srk.shape}: "
        f"max|R R^T - I|={np.abs(srk @ srk.T - np.eye(64)).max():.2e}, "
        f"max|R^T R - I|={np.abs(srk.T @ srk - np.eye(64)).max():.2e}"
    )
    a8 = L.LSTM(8)
    a8.build((None, 10, 32))
    r8 = np.array(a8.get_weights()[1])
    print(
        f"  LSTM(8) recurrent {r8.shape}: max|R R^T - I|={np.abs(r8 @ r8.T - np.eye(8)).max():.2e}"
    )
    print("  LSTM().get_config()['seed'] =", L.LSTM(4).get_config()["seed"])
    print(
        "  kernel_initializer config:",
        keras.initializers.serialize(L.LSTM(4).cell.kernel_initializer),
    )
    w1 = L.LSTM(4)
    w1.build((None, 3, 2))
    w2 = L.LSTM(4)
    w2.build((None, 3, 2))
    print(
        "  two LSTM(4) built back to back have equal kernels:",
        bool(np.array_equal(w1.get_weights()[0], w2.get_weights()[0])),
    )
    keras.utils.set_random_seed(5)
    w1 = L.LSTM(4)
    w1.build((None, 3, 2))
    keras.utils.set_random_seed(5)
    w2 = L.LSTM(4)
    w2.build((None, 3, 2))
    print(
        "  same keras.utils.set_random_seed before each build -> equal kernels:",
        bool(np.array_equal(w1.get_weights()[0], w2.get_weights()[0])),
    )
    w1 = L.LSTM(4, seed=7)
    w1.build((None, 3, 2))
    w2 = L.LSTM(4, seed=7)
    w2.build((None, 3, 2))
    print(
        "  LSTM(4, seed=7) twice -> equal kernels:",
        bool(np.array_equal(w1.get_weights()[0], w2.get_weights()[0])),
    )

    print("\n== hard_sigmoid")
    z = np.array([-4, -3, -2.5, -1, 0, 1, 2.5, 3, 4], "float32")
    print("  x           ", z.tolist())
    print("  hard_sigmoid", r4(keras.activations.hard_sigmoid(z)))
    print("  relu6(x+3)/6", r4(np.clip(z + 3, 0, 6) / 6))
    print("  0.2x+0.5 clipped (Keras 2)", r4(np.clip(0.2 * z + 0.5, 0, 1)))

    print("\n== stateful LSTM: states after build, after reset_state")
    a = L.LSTM(2, stateful=True)
    a.build((2, 5, 2))
    print(
        "  states after build:", [tuple(v.shape) for v in a.states], "in weights:", len(a.weights)
    )
    a(x)
    print("  h after a call nonzero:", bool(np.any(keras.ops.convert_to_numpy(a.states[0]) != 0)))
    a.reset_state()
    print(
        "  after reset_state all zero:",
        all(not np.any(keras.ops.convert_to_numpy(v)) for v in a.states),
    )
    try:
        a(x[:1])
        print("  batch 1 after batch 2: accepted")
    except Exception as e:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
        msg = [ln.strip() for ln in text.splitlines() if "batch size" in ln]
        print("  batch 1 after batch 2:", type(e).__name__, " / ".join(msg[:2]))

    print(
        "\n== binary_crossentropy: clipping, and (TensorFlow backend) logits taken back "
        "from a sigmoid output"
    )
    bce = keras.losses.binary_crossentropy
    y = np.array([[1.0], [0.0], [1.0]], "float32")
    zl = tf.constant([[-50.0], [50.0], [0.0]])
    p = keras.activations.sigmoid(zl)
    print("  p = keras.activations.sigmoid([-50, 50, 0]) =", np.array(p).ravel().tolist())
    print("  bce(y=[1,0,1], p as numpy array) =", np.array(bce(y, np.array(p))).round(6).tolist())
    print("  bce(y=[1,0,1], p as returned by sigmoid) =", np.array(bce(y, p)).round(6).tolist())
    keras.utils.set_random_seed(0)
    md = keras.Sequential(
        [
            keras.Input((1,)),
            L.Dense(1, activation="sigmoid", kernel_initializer="ones", bias_initializer="zeros"),
        ]
    )
    md.compile(loss="binary_crossentropy")
    xe = np.array([[-50.0], [50.0], [0.0]], "float32")
    print(
        "  Dense(1, sigmoid) on x=[-50, 50, 0], model.evaluate loss =",
        round(float(md.evaluate(xe, y, verbose=0)), 5),
    )

    print("\n== Keras config defaults for LSTM / GRU / SimpleRNN")
    for cls in (L.LSTM, L.GRU, L.SimpleRNN):
        cfg = cls(4).get_config()
        keep = (
            "activation",
            "recurrent_activation",
            "use_bias",
            "unit_forget_bias",
            "reset_after",
            "dropout",
            "recurrent_dropout",
            "seed",
            "return_sequences",
            "return_state",
            "go_backwards",
            "stateful",
            "unroll",
            "zero_output_for_mask",
        )
        print(f"  {cls.__name__}:", {k: cfg[k] for k in keep if k in cfg})
    print("  Bidirectional merge_mode default:", L.Bidirectional(L.LSTM(4)).merge_mode)


CONVENTIONS = {
    "weights": "exactly layer.get_weights(): LSTM kernel (I,4H), recurrent_kernel (H,4H), "
    "bias (4H,), gates i,f,c,o; GRU kernel (I,3H), recurrent_kernel (H,3H), gates z,r,h, "
    "bias (2,3H) [row 0 input bias, row 1 recurrent bias] when reset_after=True else (3H,); "
    "SimpleRNN kernel (I,H), recurrent_kernel (H,H), bias (H,); use_bias=False drops the bias; "
    "Bidirectional: forward weights then backward weights",
    "outputs": "the flat list Keras returns: output (two tensors, forward then backward, when "
    "merge_mode=None), then states if return_state (LSTM: h, c; Bidirectional: forward states "
    "then backward states)",
    "masks": "bool (B,T), True = step used; passed as layer(x, mask=mask)",
    "initial_state": "list passed as layer(x, initial_state=[...]) (LSTM: [h0, c0]; "
    "Bidirectional: forward states then backward states)",
    "stateful": "calls run in order on one layer; after='reset_state' means layer.reset_state() "
    "was called after that call; the third call repeats the first call's input",
    "grads": "d loss / d input and d loss / d each weight (same order as weights), first call "
    "only; loss = sum of all elements of the output tensor(s) named in grads.loss (outputs[i] = "
    "the i-th entry of the first call's returned list; states never enter the loss)",
}


def _dump_json(doc):
    """Indented JSON, except that each case sits on one line (keeps the file small)."""
    head = {k: v for k, v in doc.items() if k != "cases"}
    text = json.dumps(head, indent=1, ensure_ascii=False)
    cases = ",\n  ".join(json.dumps(c, ensure_ascii=False) for c in doc["cases"])
    return text[:-2] + ',\n "cases": [\n  ' + cases + "\n ]\n}\n"


def crosscheck(keras):
    """Re-run every stored case with the current Keras backend and compare with the files.

    Forward outputs for every backend; gradients too when the backend is torch.
    """
    with np.load(NPZ_PATH) as z:
        arrays = {k: z[k] for k in z.files}
    with open(JSON_PATH) as fh:
        doc = json.load(fh)
    backend = keras.backend.backend()
    if backend == "torch":
        import torch
    worst_out, worst_grad, failures = 0.0, 0.0, []
    for e in doc["cases"]:
        keras.backend.clear_session()
        tol = 1e-12 if e["dtype"] == "float64" else 2e-5
        if e["dtype"] == "float64" and backend == "torch":
            # Keras 3.15's torch-backend generic RNN loop agrees with float64 numpy only to
            # ~1e-7 (its fused torch kernels and the TensorFlow loop agree to 1e-15).
            tol = 1e-6
        lyr = keras_layer(keras, e["layer"], e["config"])
        lyr.build((B, T, F))
        lyr.set_weights([arrays[k] for k in e["weights"]])
        for n, call in enumerate(e["calls"]):
            kwargs = {}
            if call["mask"]:
                kwargs["mask"] = keras.ops.convert_to_tensor(arrays[call["mask"]])
            if call["initial_state"]:
                kwargs["initial_state"] = [
                    keras.ops.convert_to_tensor(arrays[k]) for k in call["initial_state"]
                ]
            x = keras.ops.convert_to_tensor(arrays[call["inputs"]])
            # (torch: a stateful layer assigns its state in place, which autograd refuses)
            stateful = (
                e["config"]["layer"]["config"] if e["layer"] == "Bidirectional" else e["config"]
            ).get("stateful", False)
            track = backend == "torch" and n == 0 and not stateful
            if track:
                x.requires_grad_(True)
            got = _to_list(lyr(x, **kwargs))
            for g, k in zip(got, call["outputs"]):
                err = float(np.max(np.abs(keras.ops.convert_to_numpy(g) - arrays[k])))
                worst_out = max(worst_out, err)
                if err > tol:
                    failures.append(f"{e['name']} {k}: {err:.2e}")
            if len(got) != len(call["outputs"]):
                failures.append(f"{e['name']}: {len(got)} outputs, expected {len(call['outputs'])}")
            if track:
                loss = sum(g.sum() for g in got[: e["n_output_tensors"]])
                params = [v.value for v in lyr.weights]
                grads = torch.autograd.grad(loss, [x, *params], allow_unused=True)
                keys = [e["grads"]["inputs"]] + e["grads"]["weights"]
                for g, k in zip(grads, keys):
                    g = np.zeros_like(arrays[k]) if g is None else g.detach().cpu().numpy()
                    err = float(np.max(np.abs(g - arrays[k])))
                    worst_grad = max(worst_grad, err)
                    if err > 10 * tol:
                        failures.append(f"{e['name']} {k}: {err:.2e}")
            if call["after"] == "reset_state":
                lyr.reset_state()
    print(
        f"backend {backend}: {len(doc['cases'])} cases, max |output diff| {worst_out:.2e}"
        + (f", max |grad diff| {worst_grad:.2e}" if backend == "torch" else "")
    )
    for f in failures:
        print("  MISMATCH", f)
    return not failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checks", action="store_true", help="print the semantic checks and exit")
    ap.add_argument(
        "--crosscheck",
        action="store_true",
        help="re-run the stored cases with the current KERAS_BACKEND and compare (writes nothing)",
    )
    args = ap.parse_args()

    import keras

    if args.crosscheck:
        sys.exit(0 if crosscheck(keras) else 1)

    import tensorflow as tf

    assert keras.backend.backend() == "tensorflow", "run with the TensorFlow backend"
    if args.checks:
        semantic_checks(keras, tf)
        return

    arrays, entries = generate(keras, tf)
    by_name = {e["name"]: e for e in entries}
    for n in (
        "lstm_plain",
        "lstm_mask_gaps",
        "gru_ra1_mask_gaps",
        "gru_ra0_plain",
        "simplernn_mask_gaps",
        "bidi_lstm_mask_right",
    ):
        finite_difference_check(by_name[n], arrays)

    doc = {
        "description": "Keras 3 reference numbers for lstmkit's Keras-style recurrent layers; "
        "written by tests/reference/make_keras_reference.py (see its docstring).",
        "keras_version": keras.__version__,
        "backend": keras.backend.backend(),
        "backend_version": tf.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "generated_by": "cd tests/reference && /tmp/kerasref/bin/python make_keras_reference.py",
        "shapes": {"B": B, "T": T, "F": F, "units": H},
        "weight_init": f"numpy default_rng({SEED}) normal * {WEIGHT_SCALE}, "
        "set with layer.set_weights()",
        "conventions": CONVENTIONS,
        "cases": entries,
        "summaries": summaries(keras),
        "optimizer_defaults": optimizer_defaults(keras),
        "binary_crossentropy": bce_facts(keras),
    }
    np.savez_compressed(NPZ_PATH, **arrays)
    with open(JSON_PATH, "w") as fh:
        fh.write(_dump_json(doc))

    # Re-load with plain numpy / json and check every case again against the equations.
    with np.load(NPZ_PATH) as z:
        loaded = {k: z[k] for k in z.files}
    with open(JSON_PATH) as fh:
        doc2 = json.load(fh)
    for e in doc2["cases"]:
        keys = (
            [c["inputs"] for c in e["calls"]]
            + e["weights"]
            + e["grads"]["weights"]
            + [e["grads"]["inputs"]]
        )
        for c in e["calls"]:
            keys += c["outputs"] + (c["initial_state"] or []) + ([c["mask"]] if c["mask"] else [])
        missing = [k for k in keys if k not in loaded]
        assert not missing, (e["name"], missing)
        validate_case(e, loaded)
    size = os.path.getsize(NPZ_PATH) + os.path.getsize(JSON_PATH)
    print(
        f"wrote {len(doc2['cases'])} cases, {len(loaded)} arrays, {size / 1024:.0f} KiB; "
        "all re-validated"
    )


if __name__ == "__main__":
    main()
