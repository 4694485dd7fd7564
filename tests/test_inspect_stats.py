"""Glass-box statistics on hand-made arrays, and gradient flow asserted on numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lstmkit.initializers import Orthogonal
from lstmkit.inspect import (
    cell_magnitude,
    compare_gradient_flow,
    decay_rate,
    gradient_flow,
    memory_time_scales,
    saturation,
    saturation_fractions,
    state_magnitude,
    summary,
    time_scale,
)
from lstmkit.inspect.record import Trace
from lstmkit.layers import LSTM, SimpleRNN
from lstmkit.utils import set_random_seed


def _trace(kind: str, values: dict[str, np.ndarray], mask: np.ndarray | None = None) -> Trace:
    tr = Trace("layer", "layer", "forward", kind)
    tensors = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in values.items()}
    first = next(iter(tensors.values()))
    m = torch.ones(first.shape[:2], dtype=torch.bool) if mask is None else torch.as_tensor(mask)
    tr._add(tensors, m)
    return tr


# -- saturation ----------------------------------------------------------------------------------


def test_saturation_fractions_by_hand() -> None:
    # (B=2, T=3, H=2); unit 0: 0.05, 0.95, 0.5 | 0.02, 0.99, 0.98 ; unit 1 always 0.5
    v = np.array([[[0.05, 0.5], [0.95, 0.5], [0.5, 0.5]], [[0.02, 0.5], [0.99, 0.5], [0.98, 0.5]]])
    left, right = saturation_fractions(v)
    np.testing.assert_allclose(left, [2 / 6, 0.0])
    np.testing.assert_allclose(right, [3 / 6, 0.0])
    mask = np.array([[True, True, True], [True, False, False]])  # drop 0.99 and 0.98
    left, right = saturation_fractions(v, mask)
    np.testing.assert_allclose(left, [2 / 4, 0.0])
    np.testing.assert_allclose(right, [1 / 4, 0.0])
    left, right = saturation_fractions(v, np.zeros((2, 3), bool))
    assert np.isnan(left).all() and np.isnan(right).all()
    with pytest.raises(ValueError, match=r"mask of shape \(B, T\)"):
        saturation_fractions(v, np.ones((3, 2), bool))
    with pytest.raises(ValueError, match=r"\(B, T, H\)"):
        saturation_fractions(v[0])


def test_saturation_table_on_a_trace_skips_masked_steps() -> None:
    f = np.full((1, 4, 2), 0.95)
    f[0, 3] = 0.01  # masked: must not count
    i = np.full((1, 4, 2), 0.05)
    o = np.full((1, 4, 2), 0.5)
    tr = _trace("lstm", {"i": i, "f": f, "g": o, "o": o, "c": o, "h": o}, [[1, 1, 1, 0]])
    table = saturation(tr)
    assert list(table.columns) == ["layer", "direction", "gate", "unit", "left", "right", "mean"]
    assert list(dict.fromkeys(table.gate)) == ["i", "f", "o"]  # the sigmoid gates
    fr = table[table.gate == "f"]
    np.testing.assert_allclose(fr.right, [1.0, 1.0])
    np.testing.assert_allclose(fr.left, [0.0, 0.0])
    np.testing.assert_allclose(fr["mean"], [0.95, 0.95])
    np.testing.assert_allclose(table[table.gate == "i"].left, [1.0, 1.0])
    with pytest.raises(ValueError, match="has no reset gate"):
        saturation(tr, gates=["r"])


# -- memory time scale -----------------------------------------------------------------------------


def test_time_scale() -> None:
    tau = time_scale([math.exp(-0.1), math.exp(-1.0), 1.0, 0.0])
    np.testing.assert_allclose(tau[:2], [10.0, 1.0])
    assert tau[2] == np.inf and tau[3] == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        time_scale([1.5])


def test_memory_time_scales_lstm_and_gru() -> None:
    f = np.empty((2, 3, 2))
    f[..., 0] = math.exp(-1 / 20)  # τ = 20
    f[..., 1] = 0.5
    zeros = np.zeros_like(f)
    lstm = _trace("lstm", {"i": zeros, "f": f, "g": zeros, "o": zeros, "c": zeros, "h": zeros})
    table = memory_time_scales(lstm)
    np.testing.assert_allclose(table["mean"], [math.exp(-1 / 20), 0.5])
    np.testing.assert_allclose(table["time_scale"], [20.0, 1 / math.log(2)])
    gru = _trace("gru", {"r": zeros, "z": f, "n": zeros, "h": zeros})
    assert list(memory_time_scales(gru).gate) == ["z", "z"]
    with pytest.raises(ValueError, match="SimpleRNN has no forget/update gate"):
        memory_time_scales(_trace("rnn", {"h": zeros}))


# -- state magnitude -------------------------------------------------------------------------------


def test_state_magnitude_by_hand() -> None:
    c = np.array([[[1.0, -3.0], [2.0, 2.0]], [[-1.0, 1.0], [10.0, 10.0]]])  # (2, 2, 2)
    mag = state_magnitude(c)
    np.testing.assert_allclose(mag.mean, [1.5, 6.0])
    np.testing.assert_allclose(mag.max, [3.0, 10.0])
    mag = state_magnitude(c, np.array([[True, True], [True, False]]))
    np.testing.assert_allclose(mag.mean, [1.5, 2.0])
    np.testing.assert_allclose(mag.max, [3.0, 2.0])
    mag = state_magnitude(c, np.array([[True, False], [True, False]]))
    assert np.isnan(mag.mean[1]) and np.isnan(mag.max[1])
    zeros = np.zeros_like(c)
    tr = _trace("lstm", {"i": zeros, "f": zeros, "g": zeros, "o": zeros, "c": c, "h": zeros})
    assert cell_magnitude(tr).state == "c"
    np.testing.assert_allclose(cell_magnitude(tr).mean, [1.5, 6.0])
    assert cell_magnitude(_trace("rnn", {"h": c})).state == "h"


def test_summary_table() -> None:
    h = np.array([[[0.05], [0.95], [0.5], [0.5]]])
    table = summary(_trace("rnn", {"h": h}))
    row = table.iloc[0]
    assert (row.gate, row.units) == ("h", 1)
    assert row.left == pytest.approx(0.25) and row.right == pytest.approx(0.25)
    assert row["mean"] == pytest.approx(0.5)


# -- gradient flow -------------------------------------------------------------------------------


def _inputs(steps: int = 60) -> torch.Tensor:
    return torch.randn(8, steps, 2, generator=torch.Generator().manual_seed(0))


def test_simple_rnn_with_small_weights_vanishes_geometrically_lstm_does_not() -> None:
    set_random_seed(0)
    x = _inputs()
    rnn = SimpleRNN(16, recurrent_initializer=Orthogonal(gain=0.5))
    rnn.build((None, None, 2))
    flow = gradient_flow(rnn, x)
    # ‖∂h_t/∂h_{t-1}‖ <= ‖W_hh‖ · max tanh' = 0.5: a straight line on a log scale
    rate = flow.decay_rate()
    assert rate < 0.5 + 1e-9
    logs = np.log(flow.dloss_dh)
    slope, intercept = np.polyfit(flow.lag, logs, 1)
    residual = logs - (slope * flow.lag + intercept)
    assert np.abs(residual).max() < 0.1 * np.abs(logs).max()  # geometric
    per_step = flow.dloss_dh[:-1] / flow.dloss_dh[1:]  # ‖g_t‖ / ‖g_{t+1}‖
    assert per_step.max() <= 0.5 + 1e-9
    assert flow.decay_rate("dh_dx") < 0.5 + 1e-9
    set_random_seed(0)
    lstm = LSTM(16)  # Keras defaults: forget bias 1
    lstm.build((None, None, 2))
    slow = gradient_flow(lstm, x)
    assert slow.decay_rate() > rate + 0.2
    assert slow.dloss_dh[0] > 1e6 * flow.dloss_dh[0]  # 59 steps back
    assert slow.dloss_dc is not None and flow.dloss_dc is None
    assert slow.decay_rate("dloss_dc") > rate + 0.2


def test_gradient_flow_definitions() -> None:
    set_random_seed(1)
    x = _inputs(5)[:2]
    flows = compare_gradient_flow(x, units=3)
    assert list(flows) == ["rnn", "gru", "lstm"]
    for flow in flows.values():
        assert flow.lag.tolist() == [4, 3, 2, 1, 0]
        # default loss: a unit-norm read-out averaged over the batch -> ‖∂L/∂h_T‖ = 1/B
        assert flow.dloss_dh[-1] == pytest.approx(1 / 2)
    # ‖∂h_T/∂x_t‖ against torch's own Jacobian
    set_random_seed(1)
    layer = SimpleRNN(3)
    layer.build((None, None, 2))
    flow = gradient_flow(layer, x)
    cell = layer.cell.double()

    def last(xs: torch.Tensor) -> torch.Tensor:
        h = torch.zeros(1, 3, dtype=torch.float64)
        for t in range(xs.shape[0]):
            (h,), _ = cell.step(xs[t : t + 1], (h,))
        return h[0]

    want = []
    for b in range(2):
        jac = torch.autograd.functional.jacobian(last, x[b].double())  # (P, T, I)
        want.append(jac.pow(2).sum((0, 2)).sqrt())
    np.testing.assert_allclose(flow.dh_dx, torch.stack(want).mean(0).numpy(), rtol=1e-10)


def test_gradient_flow_errors() -> None:
    layer = LSTM(3)
    assert gradient_flow(layer, np.zeros((1, 4, 2))).dloss_dc.shape == (4,)  # built for x
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, 2\)"):
        gradient_flow(layer, np.zeros((1, 4, 5)))
    with pytest.raises(TypeError, match="LSTM/GRU/SimpleRNN"):
        gradient_flow(torch.nn.Linear(2, 2), np.zeros((1, 4, 2)))
    with pytest.raises(ValueError, match="scalar"):
        gradient_flow(layer, np.zeros((1, 4, 2)), loss=lambda h: h)
    with pytest.raises(ValueError, match="fewer than two"):
        decay_rate([0, 1], [1.0, 0.0])
    with pytest.raises(ValueError, match="unknown cell"):
        compare_gradient_flow(np.zeros((1, 4, 2)), cells=("lstm", "tcn"))
