r"""The equations of the gated recurrent cells — written once, in the papers' symbols.

Every engine, layer and drop-in of lstmkit is an optimisation or a wrapper of the three step
functions here; the reference engine calls them directly, and the fast engines are tested
against them.

Legend for shapes: ``B`` batch, ``I`` input features, ``H`` hidden units, ``P`` the size of the
recurrent output (``P = H`` unless an LSTM has a projection), ``G`` the number of gate blocks
(LSTM 4, or 3 with coupled gates; GRU 3; SimpleRNN 1).

Weights are stored in torch's layout: ``weight_ih (G·H, I)``, ``weight_hh (G·H, P)``, gate
blocks stacked in the order ``i, f, g, o`` (LSTM), ``i, g, o`` (coupled LSTM), ``r, z, n`` (GRU).

The LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000)::

    i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)       input gate
    f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)       forget gate
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)    candidate
    o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)       output gate
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                       cell state
    h_t = o_t ⊙ tanh(c_t)                                 hidden state

``σ`` is ``recurrent_activation`` and ``tanh`` is ``activation`` (Keras's names).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

Activation = Callable[[Tensor], Tensor]

LAYER_NORM_EPS = 1e-5


class LSTMState(NamedTuple):
    """The LSTM's state: ``h (B, P)`` (hidden, or projected, output) and ``c (B, H)`` (cell)."""

    h: Tensor
    c: Tensor


class LSTMGates(NamedTuple):
    """The LSTM's gate activations at one step (or, stacked by an engine, every step).

    ``i`` input gate, ``f`` forget gate, ``g`` candidate, ``o`` output gate; each ``(B, H)``.
    """

    i: Tensor
    f: Tensor
    g: Tensor
    o: Tensor


class GRUGates(NamedTuple):
    """The GRU's gate activations: ``r`` reset, ``z`` update, ``n`` candidate; each ``(B, H)``."""

    r: Tensor
    z: Tensor
    n: Tensor


class RNNGates(NamedTuple):
    """A SimpleRNN has no gates; its step returns this empty tuple for a uniform interface."""


class Peephole(NamedTuple):
    """Diagonal peephole weights ``(H,)`` from the cell state to the ``i``, ``f``, ``o`` gates."""

    i: Tensor
    f: Tensor
    o: Tensor


class LayerNorm(NamedTuple):
    """Gains and biases of the layer-normalised LSTM (Ba, Kiros & Hinton 2016).

    ``ih_*`` and ``hh_*`` are ``(G·H,)`` and normalise the input and recurrent pre-activations;
    ``c_*`` are ``(H,)`` and normalise the cell state before the output non-linearity.
    """

    ih_weight: Tensor
    ih_bias: Tensor
    hh_weight: Tensor
    hh_bias: Tensor
    c_weight: Tensor
    c_bias: Tensor


def input_transform(
    x: Tensor,
    weight_ih: Tensor,
    bias_ih: Tensor | None = None,
    *,
    layer_norm: tuple[Tensor, Tensor] | None = None,
    dropout_mask: Tensor | None = None,
) -> Tensor:
    """The input's contribution to the pre-activations, ``W_ih x + b_ih``, for any leading shape.

    Because it does not depend on the state it can be computed for all time steps at once;
    engines do exactly that and pass the result to the step functions with
    ``projected_input=True``.

    Args:
        x: ``(B, I)`` or ``(B, T, I)``.
        weight_ih: ``(G·H, I)``.
        bias_ih: ``(G·H,)`` or ``None``.
        layer_norm: ``(gain, bias)`` each ``(G·H,)``: returns ``LN(W_ih x) + b_ih`` instead.
        dropout_mask: ``(B, I)`` one mask shared by all gates, or ``(G, B, I)`` one per gate
            block (Keras's variational dropout when ``recurrent_dropout > 0``); constant over time.

    Returns:
        ``(B, G·H)`` or ``(B, T, G·H)``.
    """
    if dropout_mask is not None and dropout_mask.dim() == 3:
        # One mask per gate block: (x ⊙ m_k) W_k^T for each block k.
        blocks = weight_ih.chunk(dropout_mask.shape[0], 0)
        expand = (lambda m: m.unsqueeze(1)) if x.dim() == 3 else (lambda m: m)
        xw = torch.cat([F.linear(x * expand(m), w) for m, w in zip(dropout_mask, blocks)], -1)
    else:
        if dropout_mask is not None:
            x = x * (dropout_mask.unsqueeze(1) if x.dim() == 3 else dropout_mask)
        xw = F.linear(x, weight_ih)
    if layer_norm is not None:
        xw = F.layer_norm(xw, xw.shape[-1:], layer_norm[0], layer_norm[1], LAYER_NORM_EPS)
    if bias_ih is not None:
        xw = xw + bias_ih
    return xw


def recurrent_transform(h: Tensor, weight_hh: Tensor, dropout_mask: Tensor | None = None) -> Tensor:
    """The state's contribution ``W_hh h`` ``(B, G·H)``; ``h (B, P)``, ``weight_hh (G·H, P)``.

    ``dropout_mask`` is ``(B, P)`` shared by all gates or ``(G, B, P)`` one per gate block.
    """
    if dropout_mask is None:
        return F.linear(h, weight_hh)
    if dropout_mask.dim() == 2:
        return F.linear(h * dropout_mask, weight_hh)
    n_blocks = dropout_mask.shape[0]
    w = weight_hh.view(n_blocks, -1, weight_hh.shape[-1])  # (G, H, P)
    hw = torch.bmm(h.unsqueeze(0) * dropout_mask, w.transpose(1, 2))  # (G, B, H)
    return hw.transpose(0, 1).reshape(h.shape[0], -1)  # (B, G·H)


def lstm_step(
    x: Tensor,
    state: LSTMState | tuple[Tensor, Tensor],
    weight_ih: Tensor | None,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    *,
    peephole: Peephole | None = None,
    layer_norm: LayerNorm | None = None,
    coupled: bool = False,
    weight_hr: Tensor | None = None,
    activation: Activation = torch.tanh,
    recurrent_activation: Activation = torch.sigmoid,
    recurrent_dropout_mask: Tensor | None = None,
    projected_input: bool = False,
) -> tuple[LSTMState, LSTMGates]:
    r"""One LSTM step: ``(x_t, (h_{t-1}, c_{t-1})) -> ((h_t, c_t), (i_t, f_t, g_t, o_t))``.

    The plain cell is the module docstring's six equations. Variants are switches:

    * **Peephole** (Gers, Schraudolph & Schmidhuber 2002, "Learning precise timing with LSTM
      recurrent networks"): the gates also see the cell state through diagonal weights,
      ``i_t = σ(… + p_i ⊙ c_{t-1})``, ``f_t = σ(… + p_f ⊙ c_{t-1})`` and the output gate the
      *new* cell, ``o_t = σ(… + p_o ⊙ c_t)``.
    * **Layer norm** (Ba, Kiros & Hinton 2016, "Layer Normalization", §3.1): the input and
      recurrent pre-activations are normalised separately over all ``G·H`` units,
      ``z = LN(W_ih x) + LN(W_hh h) + b``, and ``h_t = o_t ⊙ tanh(LN(c_t))``; the stored cell
      ``c_t`` is not normalised.
    * **Coupled input–forget gate, CIFG** (Greff et al. 2017, "LSTM: A Search Space Odyssey"):
      ``f_t = 1 - i_t``; the weights then hold three blocks ``i, g, o``.
    * **Projection, LSTMP** (Sak, Senior & Beaufays 2014; torch's ``proj_size``):
      ``h_t = W_hr (o_t ⊙ tanh(c_t))`` with ``weight_hr (P, H)``; the recurrence uses the
      projected ``h_{t-1} (B, P)``.

    Args:
        x: ``(B, I)``, or ``(B, G·H)`` from :func:`input_transform` if ``projected_input``.
        state: ``LSTMState(h (B, P), c (B, H))``.
        weight_ih: ``(G·H, I)``; ignored (may be ``None``) when ``projected_input``.
        weight_hh: ``(G·H, P)``.
        bias_ih, bias_hh: ``(G·H,)`` or ``None``. Keras-style layers have one bias (``bias_ih``).
        peephole, layer_norm, coupled, weight_hr: the variants above.
        activation, recurrent_activation: Keras's names; ``tanh`` and ``σ`` above.
        recurrent_dropout_mask: ``(B, P)`` or ``(G, B, P)``, applied to ``h_{t-1}`` before
            ``W_hh`` (variational recurrent dropout, Gal & Ghahramani 2016); ``c`` is untouched.
        projected_input: ``x`` already holds ``W_ih x + b_ih`` (``LN(W_ih x) + b_ih``).

    Returns:
        ``(LSTMState(h_t, c_t), LSTMGates(i_t, f_t, g_t, o_t))``.

    Example:
        >>> B, I, H = 2, 3, 4
        >>> w_ih, w_hh = torch.zeros(4 * H, I), torch.zeros(4 * H, H)
        >>> state = LSTMState(torch.zeros(B, H), torch.ones(B, H))
        >>> (h, c), (i, f, g, o) = lstm_step(torch.ones(B, I), state, w_ih, w_hh)
        >>> float(f[0, 0]), float(c[0, 0])   # σ(0) = 0.5 forgets half, g = tanh(0) adds nothing
        (0.5, 0.5)
    """
    h, c = state
    if projected_input:
        xw = x  # (B, G·H)
    else:
        if weight_ih is None:
            raise ValueError("lstm_step: weight_ih is required unless projected_input=True")
        ln_ih = (layer_norm.ih_weight, layer_norm.ih_bias) if layer_norm is not None else None
        xw = input_transform(x, weight_ih, bias_ih, layer_norm=ln_ih)
    hw = recurrent_transform(h, weight_hh, recurrent_dropout_mask)  # (B, G·H)
    if layer_norm is not None:
        hw = F.layer_norm(
            hw, hw.shape[-1:], layer_norm.hh_weight, layer_norm.hh_bias, LAYER_NORM_EPS
        )
    if bias_hh is not None:
        hw = hw + bias_hh
    z = xw + hw  # (B, G·H) pre-activations

    if coupled:
        z_i, z_g, z_o = z.chunk(3, 1)
        z_f = None
    else:
        z_i, z_f, z_g, z_o = z.chunk(4, 1)
    if peephole is not None:
        z_i = z_i + peephole.i * c
        if z_f is not None:
            z_f = z_f + peephole.f * c

    i = recurrent_activation(z_i)
    f = 1.0 - i if z_f is None else recurrent_activation(z_f)
    g = activation(z_g)
    c = f * c + i * g
    if peephole is not None:
        z_o = z_o + peephole.o * c
    o = recurrent_activation(z_o)
    if layer_norm is not None:
        h = o * activation(
            F.layer_norm(c, c.shape[-1:], layer_norm.c_weight, layer_norm.c_bias, LAYER_NORM_EPS)
        )
    else:
        h = o * activation(c)
    if weight_hr is not None:
        h = F.linear(h, weight_hr)  # (B, P)
    return LSTMState(h, c), LSTMGates(i, f, g, o)


def gru_step(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor | None,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    *,
    reset_after: bool = True,
    activation: Activation = torch.tanh,
    recurrent_activation: Activation = torch.sigmoid,
    recurrent_dropout_mask: Tensor | None = None,
    projected_input: bool = False,
) -> tuple[Tensor, GRUGates]:
    r"""One GRU step (Cho et al. 2014): ``(x_t, h_{t-1}) -> (h_t, (r_t, z_t, n_t))``::

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)          reset gate
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)          update gate
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))     reset_after=True
        n_t = tanh(W_in x_t + b_in + W_hn (r_t ⊙ h_{t-1}) + b_hn)     reset_after=False
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    ``reset_after=True`` is the convention of cuDNN, ``torch.nn.GRU`` and Keras 3's default
    (arXiv:1406.1078v3); ``False`` is the original paper's (v1) and Keras's other option.

    Args:
        x: ``(B, I)``, or ``(B, 3H)`` from :func:`input_transform` if ``projected_input``.
        h: ``(B, H)``.
        weight_ih: ``(3H, I)`` blocks ``r, z, n``. weight_hh: ``(3H, H)``.
        bias_ih, bias_hh: ``(3H,)`` or ``None``.
        recurrent_dropout_mask: ``(B, H)`` or ``(3, B, H)``, applied to ``h_{t-1}`` where it
            enters a weight matrix; the interpolation uses the undropped ``h_{t-1}`` (as Keras).

    Returns:
        ``(h_t (B, H), GRUGates(r_t, z_t, n_t))``.

    Example:
        >>> H = 2
        >>> h, (r, z, n) = gru_step(torch.zeros(1, 3), torch.ones(1, H),
        ...                         torch.zeros(3 * H, 3), torch.zeros(3 * H, H))
        >>> h.tolist()   # z = 0.5, n = 0: half of the old state is kept
        [[0.5, 0.5]]
    """
    if projected_input:
        xw = x
    else:
        if weight_ih is None:
            raise ValueError("gru_step: weight_ih is required unless projected_input=True")
        xw = input_transform(x, weight_ih, bias_ih)
    x_r, x_z, x_n = xw.chunk(3, 1)
    masks = _split_mask(recurrent_dropout_mask, 3)
    w_hr, w_hz, w_hn = weight_hh.chunk(3, 0)
    b_hr, b_hz, b_hn = bias_hh.chunk(3, 0) if bias_hh is not None else (None, None, None)

    r = recurrent_activation(x_r + F.linear(_drop(h, masks[0]), w_hr, b_hr))
    z = recurrent_activation(x_z + F.linear(_drop(h, masks[1]), w_hz, b_hz))
    if reset_after:
        n = activation(x_n + r * F.linear(_drop(h, masks[2]), w_hn, b_hn))
    else:
        n = activation(x_n + F.linear(r * _drop(h, masks[2]), w_hn, b_hn))
    h = (1.0 - z) * n + z * h
    return h, GRUGates(r, z, n)


def rnn_step(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor | None,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    *,
    activation: Activation = torch.tanh,
    recurrent_dropout_mask: Tensor | None = None,
    projected_input: bool = False,
) -> tuple[Tensor, RNNGates]:
    r"""One step of the plain (Elman) RNN: ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Its gradient through time is a product of ``W_hh`` and ``tanh'`` factors, which vanishes
    or explodes geometrically with the lag — the problem the LSTM's additive cell fixes.

    Args:
        x: ``(B, I)`` or ``(B, H)`` if ``projected_input``. h: ``(B, H)``.
        weight_ih: ``(H, I)``. weight_hh: ``(H, H)``. bias_ih, bias_hh: ``(H,)`` or ``None``.
        activation: ``tanh`` (Keras default; torch's ``nonlinearity='relu'`` is ``relu``).
        recurrent_dropout_mask: ``(B, H)``, applied to ``h_{t-1}``.

    Returns:
        ``(h_t (B, H), RNNGates())``.
    """
    if projected_input:
        xw = x
    else:
        if weight_ih is None:
            raise ValueError("rnn_step: weight_ih is required unless projected_input=True")
        xw = input_transform(x, weight_ih, bias_ih)
    mask = _split_mask(recurrent_dropout_mask, 1)[0]
    h = activation(xw + F.linear(_drop(h, mask), weight_hh, bias_hh))
    return h, RNNGates()


def _split_mask(mask: Tensor | None, n_blocks: int) -> tuple[Tensor | None, ...]:
    if mask is None:
        return (None,) * n_blocks
    if mask.dim() == 3:
        return tuple(mask.unbind(0))
    return (mask,) * n_blocks


def _drop(h: Tensor, mask: Tensor | None) -> Tensor:
    return h if mask is None else h * mask
