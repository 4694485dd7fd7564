r"""Gradient flow through time: the vanishing-gradient picture, measured.

For a recurrent layer run over ``x (B, T, I)`` and a loss ``L`` of its last state ``h_T``, two
curves against the lag ``T - t`` (``t = 1 … T``, so the last step has lag 0):

* ``‖∂L/∂h_t‖``: how much the loss still "hears" the state ``t`` steps before the end (the
  total derivative through every later step; for the LSTM also ``‖∂L/∂c_t‖``, the conveyor
  belt);
* ``‖∂h_T/∂x_t‖``: the Frobenius norm of the ``P × I`` Jacobian of the last state with respect
  to the input at step ``t``, i.e. how much an input long ago can still move the output.

Both are averaged over the batch. In a SimpleRNN, ``∂h_t/∂h_{t-1} = diag(1 - h_t²) W_hh``, so
the norms shrink at most by ``‖W_hh‖ · max tanh'`` per step: geometrically. In an LSTM,
``∂c_t/∂c_{t-1} = diag(f_t)`` (plus terms through the gates), so with forget gates near 1 the
gradient decays far more slowly — the reason LSTMs exist (Hochreiter 1991; Hochreiter &
Schmidhuber 1997; Bengio, Simard & Frasconi 1994).

The steps are computed with the cell's own step function (:mod:`lstmkit.functional`, the
reference loop's specification) on a float64 copy of the cell, so that decays far below float32's
range are still measured. :func:`decay_rate` fits ``log ‖g‖ = a + b · lag`` and returns the
per-step ratio ``exp(b)``.

Example:
    >>> import torch
    >>> from lstmkit.layers import SimpleRNN
    >>> flow = gradient_flow(SimpleRNN(8), torch.randn(4, 30, 2))
    >>> flow.lag[:3].tolist(), flow.dloss_dh.shape
    ([29, 28, 27], (30,))
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lstmkit.cells import RecurrentCell
from lstmkit.layers.recurrent import RNN as KerasRNN

LossFn = Any  # Callable[[Tensor], Tensor]: h_T (B, P) -> scalar


@dataclass
class GradientFlow:
    """Gradient norms against the lag, for one layer on one batch.

    Attributes:
        kind: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        lag: ``(T,)`` ``T - 1 - t`` for ``t = 0 … T-1`` (input order; ``lag[-1] == 0``).
        dloss_dh: ``(T,)`` mean over the batch of ``‖∂L/∂h_t‖₂``.
        dh_dx: ``(T,)`` mean over the batch of ``‖∂h_T/∂x_t‖_F`` (``None`` if not computed).
        dloss_dc: ``(T,)`` mean of ``‖∂L/∂c_t‖₂`` (LSTM only, else ``None``).
        label: a name for plots (default: the kind).
    """

    kind: str
    lag: np.ndarray
    dloss_dh: np.ndarray
    dh_dx: np.ndarray | None = None
    dloss_dc: np.ndarray | None = None
    label: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.label:
            self.label = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}.get(self.kind, "")

    def curve(self, quantity: str = "dloss_dh") -> np.ndarray:
        """One of ``"dloss_dh"``, ``"dh_dx"``, ``"dloss_dc"``."""
        if quantity not in ("dloss_dh", "dh_dx", "dloss_dc"):
            raise ValueError(
                f"GradientFlow: quantity must be 'dloss_dh', 'dh_dx' or 'dloss_dc', "
                f"got {quantity!r}"
            )
        values = getattr(self, quantity)
        if values is None:
            raise ValueError(f"GradientFlow: {quantity} was not computed for this {self.label}")
        return values

    def decay_rate(self, quantity: str = "dloss_dh", max_lag: int | None = None) -> float:
        """Per-step ratio ``exp(b)`` of the fit ``log ‖g‖ = a + b · lag`` (see
        :func:`decay_rate`)."""
        return decay_rate(self.lag, self.curve(quantity), max_lag=max_lag)


def decay_rate(lag: Any, norms: Any, max_lag: int | None = None, floor: float = 1e-280) -> float:
    """Least-squares fit of ``log norms = a + b · lag`` over ``lag <= max_lag`` (all lags by
    default) and ``norms > floor``: returns the per-step ratio ``exp(b)`` (below 1: the gradient
    vanishes geometrically at that rate; 1: it does not decay).

    Raises:
        ValueError: fewer than two usable points.
    """
    lag = np.asarray(lag, dtype=np.float64)
    norms = np.asarray(norms, dtype=np.float64)
    keep = np.isfinite(norms) & (norms > floor)
    if max_lag is not None:
        keep &= lag <= max_lag
    if keep.sum() < 2:
        raise ValueError("decay_rate: fewer than two positive, finite norms to fit")
    slope = np.polyfit(lag[keep], np.log(norms[keep]), 1)[0]
    return float(np.exp(slope))


def _cell_of(layer: Any, input_size: int) -> RecurrentCell:
    if isinstance(layer, RecurrentCell):
        return layer
    if isinstance(layer, KerasRNN):
        if layer.cell is None:
            layer.build((None, None, input_size))
        if layer.go_backwards:
            raise ValueError("gradient_flow: go_backwards layers are not supported")
        return layer.cell
    raise TypeError(
        f"gradient_flow: expected an lstmkit LSTM/GRU/SimpleRNN layer or cell, "
        f"got {type(layer).__name__}"
    )


def _readout(size: int, seed: int, dtype: torch.dtype) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(size, generator=gen, dtype=dtype)
    return u / u.norm()


def gradient_flow(
    layer: Any,
    x: Any,
    loss: LossFn | None = None,
    *,
    jacobian: bool = True,
    dtype: torch.dtype = torch.float64,
    readout_seed: int = 0,
) -> GradientFlow:
    """Measure ``‖∂L/∂h_t‖`` and ``‖∂h_T/∂x_t‖`` against the lag for ``layer`` on ``x``.

    Args:
        layer: an lstmkit ``LSTM``/``GRU``/``SimpleRNN`` layer (built for ``x`` if it is not
            yet) or cell; its weights are copied (the layer itself is not changed).
        x: ``(B, T, I)`` inputs (tensor or array).
        loss: ``h_T (B, P) -> scalar``; default a fixed random linear read-out averaged over the
            batch, ``L = mean_b u · h_T`` with a unit vector ``u`` (seeded by ``readout_seed``),
            so that ``‖∂L/∂h_T‖ = 1/B`` whatever the weights.
        jacobian: also compute ``‖∂h_T/∂x_t‖`` (``P`` extra backward passes).
        dtype: the precision of the computation (float64 measures decays down to 1e-300).

    Returns:
        A :class:`GradientFlow`.
    """
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x)
    cell = copy.deepcopy(_cell_of(layer, int(xt.shape[-1]) if xt.dim() else 1)).to(dtype)
    if xt.dim() != 3 or xt.shape[-1] != cell.input_size or xt.shape[1] == 0:
        raise ValueError(
            f"gradient_flow: expected x of shape (B, T, {cell.input_size}) with T >= 1, "
            f"got {tuple(xt.shape)}"
        )
    xt = xt.detach().to(dtype).requires_grad_(jacobian)
    batch, steps = xt.shape[0], xt.shape[1]
    with torch.enable_grad():
        state = cell.initial_state(batch, dtype=dtype, device=xt.device)
        if cell.kind == "lstm":
            state = type(state)(*(s.requires_grad_(True) for s in state))
        else:
            state = tuple(s.requires_grad_(True) for s in state)
        xw = cell.input_transform(xt).unbind(1)  # T × (B, G·H)
        hs: list[Tensor] = []
        cs: list[Tensor] = []
        for t in range(steps):
            state, _ = cell.step(xw[t], state, projected_input=True)
            hs.append(state[0])
            if cell.kind == "lstm":
                cs.append(state[1])
        h_last = hs[-1]
        if loss is None:
            u = _readout(h_last.shape[-1], readout_seed, dtype).to(h_last.device)
            value = (h_last @ u).mean()
        else:
            value = loss(h_last)
        if not isinstance(value, Tensor) or value.numel() != 1:
            raise ValueError("gradient_flow: loss must return a scalar tensor")
        grads = torch.autograd.grad(value, hs + cs, retain_graph=jacobian, allow_unused=True)
        dh = _norms(grads[:steps], hs)
        dc = _norms(grads[steps:], cs) if cs else None
        dx = None
        if jacobian:
            sq = torch.zeros(batch, steps, dtype=dtype, device=xt.device)
            for k in range(h_last.shape[-1]):
                (g,) = torch.autograd.grad(h_last[:, k].sum(), xt, retain_graph=True)
                sq += g.pow(2).sum(-1)
            dx = sq.sqrt().mean(0).cpu().numpy()
    lag = np.arange(steps - 1, -1, -1)
    return GradientFlow(cell.kind, lag, dh, dx, dc)


def _norms(grads: tuple[Tensor | None, ...], like: list[Tensor]) -> np.ndarray:
    out = []
    for g, ref in zip(grads, like):
        g = torch.zeros_like(ref) if g is None else g
        out.append(float(g.norm(dim=-1).mean()))
    return np.asarray(out)


def compare_gradient_flow(
    x: Any,
    cells: tuple[str, ...] = ("rnn", "gru", "lstm"),
    units: int = 32,
    seed: int = 0,
    layer_kwargs: dict[str, dict[str, Any]] | None = None,
    **kwargs: Any,
) -> dict[str, GradientFlow]:
    """Gradient flow of freshly initialised SimpleRNN, GRU and LSTM layers (Keras's default
    initialisation: ``glorot_uniform`` kernels, ``orthogonal`` recurrent kernels, LSTM forget
    bias 1) on the same inputs ``x (B, T, I)``.

    Args:
        cells: which of ``"rnn"``, ``"gru"``, ``"lstm"``.
        units: ``H`` of every layer. seed: seeds the initialisation (same seed per cell).
        layer_kwargs: extra constructor arguments per cell kind.
        kwargs: passed to :func:`gradient_flow`.
    """
    from lstmkit.layers import GRU, LSTM, SimpleRNN
    from lstmkit.utils import set_random_seed

    classes = {"rnn": SimpleRNN, "gru": GRU, "lstm": LSTM}
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).float()
    out = {}
    for kind in cells:
        if kind not in classes:
            raise ValueError(f"compare_gradient_flow: unknown cell {kind!r} (rnn, gru, lstm)")
        set_random_seed(seed)
        layer = classes[kind](units, **(layer_kwargs or {}).get(kind, {}))
        layer.build((None, None, xt.shape[-1]))
        out[kind] = gradient_flow(layer, xt, **kwargs)
    return out
