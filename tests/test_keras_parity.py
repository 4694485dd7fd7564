"""lstmkit's Keras-style layers against numbers computed by Keras 3 itself.

The fixtures ``tests/reference/keras_reference.{json,npz}`` were written by
``tests/reference/make_keras_reference.py`` running Keras 3 (TensorFlow backend); the semantics
they pin are described in ``tests/reference/KERAS_NOTES.md``. For every case this test builds the
lstmkit layer from the case's config, loads Keras's weights with ``set_weights``, replays the
recorded calls (masks, initial states, stateful calls with ``reset_state``) and compares every
returned tensor; for the first call it also compares the gradients of the recorded loss with
respect to the inputs, the weights (in Keras's layout) and the initial states.

Weight gradients are taken with respect to the layer's torch-layout parameters and mapped to
Keras's layout by the layer's own ``get_weights`` conversion: that conversion is a permutation
and transposition of entries, so it maps gradients exactly as it maps weights (and the forward
comparison already proves it is the conversion Keras's weights need).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit import layers

REFERENCE = Path(__file__).parent / "reference"
JSON_PATH = REFERENCE / "keras_reference.json"
NPZ_PATH = REFERENCE / "keras_reference.npz"

if not (JSON_PATH.exists() and NPZ_PATH.exists()):  # pragma: no cover - fixtures are committed
    pytest.skip("Keras reference fixtures are missing", allow_module_level=True)

SPEC = json.loads(JSON_PATH.read_text())
ARRAYS = np.load(NPZ_PATH)
CASES = SPEC["cases"]
TOL = {"float32": 1e-5, "float64": 1e-10}
LAYER_CLASSES = {"LSTM": layers.LSTM, "GRU": layers.GRU, "SimpleRNN": layers.SimpleRNN}


def _array(key: str, dtype: str | None = None) -> np.ndarray:
    a = ARRAYS[key]
    return a.astype(dtype) if dtype is not None and a.dtype.kind == "f" else a


def _build(case: dict, engine: str = "auto") -> layers.Layer:
    config, dtype = case["config"], case["dtype"]
    extra = {"dtype": dtype, "engine": engine}
    if case["layer"] == "Bidirectional":
        inner = config["layer"]
        layer = LAYER_CLASSES[inner["class"]](**{**inner["config"], **extra})
        backward = None
        if config.get("backward_layer"):
            spec = config["backward_layer"]
            backward = LAYER_CLASSES[spec["class"]](**{**spec["config"], **extra})
        return layers.Bidirectional(
            layer, merge_mode=config.get("merge_mode", "concat"), backward_layer=backward
        )
    return LAYER_CLASSES[case["layer"]](**{**config, **extra})


def _close(got: torch.Tensor | np.ndarray, want: np.ndarray, dtype: str, what: str) -> None:
    got = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != Keras {want.shape}"
    err = float(np.max(np.abs(got - want))) if want.size else 0.0
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    assert err <= TOL[dtype] * scale, f"{what}: max |lstmkit - Keras| = {err:.3g}"


def _as_list(result: object) -> list[torch.Tensor]:
    return list(result) if isinstance(result, (list, tuple)) else [result]


def _loss_indices(expr: str) -> list[int]:
    indices = [int(i) for i in re.findall(r"sum\(outputs\[(\d+)\]\)", expr)]
    assert indices, f"cannot read the loss expression {expr!r}"
    return indices


@pytest.mark.parametrize("engine", ["auto", "reference"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case_matches_keras(case: dict, engine: str) -> None:
    """``auto`` takes the fused kernels where they apply; ``reference`` is the specification."""
    dtype = case["dtype"]
    torch_dtype = getattr(torch, dtype)
    layer = _build(case, engine)
    first = case["calls"][0]
    layer.build(tuple(_array(first["inputs"]).shape))
    layer.set_weights([_array(w, dtype) for w in case["weights"]])
    assert [w.shape for w in layer.get_weights()] == [tuple(s) for s in case["weight_shapes"]]

    grads = case.get("grads")
    for n_call, call in enumerate(case["calls"]):
        x = torch.tensor(_array(call["inputs"], dtype), dtype=torch_dtype)
        want_grads = grads is not None and n_call == 0
        x.requires_grad_(want_grads)
        kwargs: dict = {}
        if call["mask"] is not None:
            kwargs["mask"] = torch.tensor(_array(call["mask"])).bool()
        states: list[torch.Tensor] = []
        if call["initial_state"] is not None:
            states = [
                torch.tensor(_array(s, dtype), dtype=torch_dtype).requires_grad_(want_grads)
                for s in call["initial_state"]
            ]
            kwargs["initial_state"] = states
        outputs = _as_list(layer(x, **kwargs))
        assert len(outputs) == len(call["outputs"]), (
            f"call {n_call}: lstmkit returned {len(outputs)} tensors, Keras {len(call['outputs'])}"
        )
        for k, (got, key) in enumerate(zip(outputs, call["outputs"])):
            _close(got, _array(key), dtype, f"call {n_call} output {k}")

        if want_grads:
            loss = sum(outputs[i].sum() for i in _loss_indices(grads["loss"]))
            params = list(layer.parameters())
            targets = [x, *states, *params]
            g = torch.autograd.grad(loss, targets, allow_unused=True)
            g = [torch.zeros_like(t) if gi is None else gi for t, gi in zip(targets, g)]
            _close(g[0], _array(grads["inputs"]), dtype, "d loss / d inputs")
            for k, key in enumerate(grads.get("initial_state") or []):
                _close(g[1 + k], _array(key), dtype, f"d loss / d initial_state[{k}]")
            keras_grads = _in_keras_layout(layer, params, g[1 + len(states) :])
            for k, key in enumerate(grads["weights"]):
                _close(keras_grads[k], _array(key), dtype, f"d loss / d weight {k}")

        if call["after"] == "reset_state":
            layer.reset_state()
        else:
            assert call["after"] is None, f"unknown action {call['after']!r}"


@torch.no_grad()
def _in_keras_layout(
    layer: layers.Layer, params: list[torch.Tensor], grads: list[torch.Tensor]
) -> list[np.ndarray]:
    """Map torch-layout gradients to Keras's layout with the layer's own weight conversion."""
    saved = [p.detach().clone() for p in params]
    try:
        for p, g in zip(params, grads):
            p.copy_(g)
        return layer.get_weights()
    finally:
        for p, s in zip(params, saved):
            p.copy_(s)


def test_default_bias_matches_keras_initial_bias() -> None:
    """Keras's own freshly initialised bias (unit_forget_bias) is what lstmkit initialises."""
    checked = 0
    for case in CASES:
        if case.get("keras_initial_bias") is None:
            continue
        layer = _build(case)
        layer.build(tuple(_array(case["calls"][0]["inputs"]).shape))
        bias = layer.get_weights()[2]
        np.testing.assert_array_equal(bias.ravel(), np.asarray(case["keras_initial_bias"]))
        checked += 1
    assert checked > 0


def test_fixture_covers_the_issue_cases() -> None:
    names = {c["name"] for c in CASES}
    for required in (
        "lstm_plain",
        "lstm_go_backwards",
        "lstm_no_unit_forget_bias",
        "lstm_no_bias",
        "lstm_stateful",
        "lstm_initial_state",
        "lstm_mask_gaps_zero_output",
        "gru_ra0_plain",
        "gru_ra1_plain",
        "simplernn_plain",
        "bidi_lstm_concat",
    ):
        assert required in names, required


def test_parameter_counts_match_keras_summaries() -> None:
    """``count_params`` of the recurrent layers in the summaries Keras printed."""
    counts = {k: v["count_params"] for k, v in SPEC["summaries"].items()}
    built = {
        "gru64_16": layers.GRU(64),
        "bilstm32_16": layers.Bidirectional(layers.LSTM(32)),
        "gru64_16_reset_before": layers.GRU(64, reset_after=False),
        "simplernn32_16": layers.SimpleRNN(32, return_sequences=True),
    }
    for key, layer in built.items():
        layer.build((None, None, 16))
        assert layer.count_params() == counts[key], key
    # the sentiment model: Embedding(20000, 128) + LSTM(128) + LSTM(64) + Dense(64 -> 1)
    lstm_128, lstm_64 = layers.LSTM(128), layers.LSTM(64)
    lstm_128.build((None, None, 128))
    lstm_64.build((None, None, 128))
    total = 20000 * 128 + lstm_128.count_params() + lstm_64.count_params() + 64 + 1
    assert total == counts["sentiment_lstm"]
