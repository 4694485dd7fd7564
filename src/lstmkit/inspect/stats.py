"""Statistics of recorded gates: saturation, memory time scales, state magnitude.

Every function takes either arrays (``values (B, T, H)`` and an optional ``mask (B, T)``, true at
valid steps) or a recorded :class:`~lstmkit.inspect.record.Trace` / ``Recording``; masked and
padded steps never count.

* **Saturation** (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and Understanding Recurrent
  Networks", §4.3): for each gate and unit, the fraction of valid steps at which the gate is
  *left-saturated* (``value < 0.1``) and *right-saturated* (``value > 0.9``). A gate that is
  right-saturated most of the time is "always on" (a forget gate near 1 is an integrator); one
  that is neither is used in a graded, input-dependent way.
* **Memory time scale**: with a constant forget gate ``f`` the cell state decays as
  ``c_t ∝ f^t = exp(-t / τ)``, so the mean forget activation ``f̄`` of a unit implies the time
  scale ``τ = -1 / ln f̄`` (steps); ``f̄ → 1`` gives ``τ → ∞``. For the GRU the update gate ``z``
  plays the role of ``f`` (``h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}``).
* **State magnitude over time**: the mean and maximum of ``|c_t|`` (LSTM; ``|h_t|`` for GRU and
  SimpleRNN) over the batch and the units, at each step ``t``.

Example:
    >>> import numpy as np
    >>> f = np.array([[[0.05], [0.95], [0.5], [0.99]]])        # (B=1, T=4, H=1)
    >>> left, right = saturation_fractions(f)
    >>> float(left[0]), float(right[0])
    (0.25, 0.5)
    >>> round(float(time_scale(np.array([np.exp(-0.1)]))[0]), 6)
    10.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lstmkit.inspect.record import Recording, RecordLookupError, Trace

if TYPE_CHECKING:
    import pandas as pd

LEFT, RIGHT = 0.1, 0.9

#: The sigmoid gates of each cell (the ones saturation is defined for, as in Karpathy et al.).
SIGMOID_GATES: dict[str, tuple[str, ...]] = {
    "lstm": ("i", "f", "o"),
    "gru": ("r", "z"),
    "rnn": (),
    "custom": (),  # a user's cell: which of its values are gates is not known
}

#: The gate that keeps the state (whose mean gives the memory time scale).
KEEP_GATE: dict[str, str] = {"lstm": "f", "gru": "z"}


def _arrays(values: Any, mask: Any) -> tuple[np.ndarray, np.ndarray]:
    """``values (B, T, H)`` float array and ``mask (B, T)`` bool (padded NaNs masked out)."""
    v = values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
    if v.ndim != 3:
        raise ValueError(f"expected values of shape (B, T, H), got {v.shape}")
    if mask is None:
        m = np.ones(v.shape[:2], dtype=bool)
    else:
        m = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
        if m.shape != v.shape[:2]:
            raise ValueError(
                f"expected a mask of shape (B, T) = {v.shape[:2]} matching the values, "
                f"got {m.shape}"
            )
        m = m.astype(bool)
    return v.astype(np.float64, copy=False), m


def _masked_mean(indicator: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Mean over valid ``(b, t)`` of ``indicator (B, T, H)``: ``(H,)``, NaN without valid
    steps."""
    count = m.sum()
    if count == 0:
        return np.full(indicator.shape[-1], np.nan)
    return (indicator * m[..., None]).sum(axis=(0, 1)) / count


def saturation_fractions(
    values: Any, mask: Any = None, low: float = LEFT, high: float = RIGHT
) -> tuple[np.ndarray, np.ndarray]:
    """Per unit, the fractions of valid steps with ``value < low`` and ``value > high``.

    Args:
        values: ``(B, T, H)`` gate activations. mask: ``(B, T)``, true at valid steps.
        low, high: the saturation thresholds (0.1 and 0.9, as Karpathy et al.).

    Returns:
        ``(left (H,), right (H,))`` in ``[0, 1]`` (NaN if no step is valid).
    """
    if not low <= high:
        raise ValueError(f"saturation: expected low <= high, got low={low}, high={high}")
    v, m = _arrays(values, mask)
    v = np.where(m[..., None], v, np.nan)
    return _masked_mean(v < low, m), _masked_mean(v > high, m)


def masked_mean(values: Any, mask: Any = None) -> np.ndarray:
    """Per unit, the mean over valid steps: ``(H,)``."""
    v, m = _arrays(values, mask)
    return _masked_mean(np.where(m[..., None], v, 0.0), m)


def time_scale(mean_keep: Any) -> np.ndarray:
    """The memory time scale ``τ = -1 / ln f̄`` (in steps) implied by a mean forget (keep)
    activation ``f̄ ∈ [0, 1]``: ``inf`` at ``f̄ = 1``, ``0`` at ``f̄ = 0``."""
    f = np.asarray(mean_keep, dtype=np.float64)
    if np.any((f < 0) | (f > 1)):
        raise ValueError("time_scale: expected mean gate activations in [0, 1]")
    with np.errstate(divide="ignore"):
        tau = np.where(f >= 1.0, np.inf, -1.0 / np.log(np.where(f >= 1.0, 0.5, f)))
    return np.where(f <= 0.0, 0.0, tau)


@dataclass
class StateMagnitude:
    """Magnitude of the state at each step: ``mean`` and ``max`` of ``|state|`` over valid
    batch rows and all units, each ``(T,)`` (NaN at steps where no row is valid); ``state`` is
    ``"c"`` (LSTM) or ``"h"``."""

    state: str
    mean: np.ndarray
    max: np.ndarray


def state_magnitude(values: Any, mask: Any = None, state: str = "c") -> StateMagnitude:
    """``|c_t|`` (or ``|h_t|``) over time from ``values (B, T, H)``: see
    :class:`StateMagnitude`."""
    v, m = _arrays(values, mask)
    a = np.abs(v)
    valid = m.sum(axis=0)  # (T,)
    total = (np.where(m[..., None], a, 0.0)).sum(axis=(0, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid > 0, total / (valid * v.shape[-1]), np.nan)
    peak = np.where(m[..., None], a, -np.inf).max(axis=(0, 2)) if v.size else np.zeros(0)
    peak = np.where(valid > 0, peak, np.nan)
    return StateMagnitude(state, mean, peak)


# -- on recordings -----------------------------------------------------------------------------


def _traces(source: Recording | Trace) -> list[Trace]:
    if isinstance(source, Trace):
        return [source]
    if isinstance(source, Recording):
        return source.traces()
    raise TypeError(f"expected a Recording or a Trace, got {type(source).__name__}")


def saturation(
    source: Recording | Trace,
    gates: list[str] | tuple[str, ...] | None = None,
    low: float = LEFT,
    high: float = RIGHT,
) -> pd.DataFrame:
    """The saturation table of a recording: one row per (layer, direction, gate, unit) with
    ``left`` and ``right`` fractions (see :func:`saturation_fractions`) and the gate's ``mean``.

    ``gates`` defaults to each cell's sigmoid gates (LSTM ``i, f, o``; GRU ``r, z``); a gate
    that a selected cell does not have is an error. A SimpleRNN has no gates and adds no rows.
    """
    import pandas as pd

    rows = []
    for trace in _traces(source):
        for g in gates if gates is not None else SIGMOID_GATES[trace.kind]:
            values = trace[g]
            left, right = saturation_fractions(values, trace.mask, low, high)
            mean = masked_mean(values, trace.mask)
            for u in range(len(left)):
                rows.append((trace.name, trace.direction, g, u, left[u], right[u], mean[u]))
    return pd.DataFrame(
        rows, columns=["layer", "direction", "gate", "unit", "left", "right", "mean"]
    )


def memory_time_scales(source: Recording | Trace) -> pd.DataFrame:
    """Per gated layer and unit: the mean keep gate ``f̄`` (LSTM ``f``; GRU ``z``) and its time
    scale ``τ = -1 / ln f̄``. Columns: layer, direction, gate, unit, mean, time_scale.

    Raises:
        ValueError: ``source`` is a single SimpleRNN trace (no gate keeps its state).
    """
    import pandas as pd

    traces = _traces(source)
    if isinstance(source, Trace) and source.kind not in KEEP_GATE:
        raise RecordLookupError(
            f"{source.name}: a SimpleRNN has no forget/update gate, so no memory time scale"
        )
    rows = []
    for trace in traces:
        gate = KEEP_GATE.get(trace.kind)
        if gate is None:
            continue
        fbar = masked_mean(trace[gate], trace.mask)
        tau = time_scale(np.clip(fbar, 0.0, 1.0))
        for u in range(len(fbar)):
            rows.append((trace.name, trace.direction, gate, u, fbar[u], tau[u]))
    return pd.DataFrame(rows, columns=["layer", "direction", "gate", "unit", "mean", "time_scale"])


def cell_magnitude(trace: Trace) -> StateMagnitude:
    """``|c_t|`` over time for an LSTM trace (``|h_t|`` for GRU / SimpleRNN)."""
    if not isinstance(trace, Trace):
        raise TypeError(f"cell_magnitude: expected a Trace, got {type(trace).__name__}")
    state = "c" if trace.kind == "lstm" else "h"
    return state_magnitude(trace[state], trace.mask, state)


def summary(source: Recording | Trace) -> pd.DataFrame:
    """One row per (layer, direction, gate): mean and standard deviation over valid steps and
    units, and the fractions of left/right saturated activations (all gates, incl. states)."""
    import pandas as pd

    rows = []
    for trace in _traces(source):
        m = trace.mask.numpy()
        for g in trace.gates:
            v, _ = _arrays(trace[g], m)
            sel = v[m]  # (N, H)
            if sel.size:
                mean, std = float(sel.mean()), float(sel.std())
                left, right = float((sel < LEFT).mean()), float((sel > RIGHT).mean())
            else:
                mean = std = left = right = float("nan")
            rows.append((trace.name, trace.direction, g, v.shape[-1], mean, std, left, right))
    return pd.DataFrame(
        rows,
        columns=["layer", "direction", "gate", "units", "mean", "std", "left", "right"],
    )
