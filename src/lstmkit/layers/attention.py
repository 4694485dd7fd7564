"""Attention layers with Keras 3's names, arguments and semantics: ``Attention`` (dot-product,
Luong et al. 2015) and ``AdditiveAttention`` (Bahdanau et al. 2015).

Both take ``inputs = [query, value]`` or ``[query, value, key]`` (``key`` defaults to
``value``), with ``query (B, Tq, D)``, ``value (B, Tv, Dv)``, ``key (B, Tv, D)``, and return

    scores  (B, Tq, Tv)    one score per (query step, value step)
    weights = softmax(scores over Tv)         value steps masked out get weight 0
    output  = weights · value   (B, Tq, Dv)   query steps masked out are zeroed

Scores (``s`` = the layer's learned scalar ``scale``, ``w`` its vector ``scale``, ``c`` the
``concat_score_weight``):

* ``Attention(score_mode="dot")``:    ``q · k``, times ``s`` with ``use_scale``;
* ``Attention(score_mode="concat")``: ``c · Σ_d tanh(q_d + k_d)`` (``tanh(s·(q + k))`` with
  ``use_scale``);
* ``AdditiveAttention``:              ``Σ_d w_d · tanh(q_d + k_d)`` (``w = 1`` without
  ``use_scale``).

As in Keras, neither layer projects its inputs: Luong's *general* score ``h_t^T W_a h_s`` is
``Attention()([h_t, h_s, Dense(D, use_bias=False)(h_s)])``, and Bahdanau's
``v^T tanh(W_1 q + W_2 k)`` is ``AdditiveAttention()([Dense(A)(q), h_s, Dense(A)(h_s)])``.

Masks: ``mask=[query_mask (B, Tq), value_mask (B, Tv)]`` (or taken from the inputs' travelling
masks, e.g. after ``Embedding(mask_zero=True)``). Masked value steps get ``-1e9`` added to their
scores (``-65504`` in float16), so their softmax weight is exactly zero; the output's mask is the
query mask. ``use_causal_mask=True`` also hides value steps after the query step.
``return_attention_scores=True`` returns ``(output, weights)`` — the softmax distribution, as
Keras 3 does despite the name. ``dropout`` drops attention weights in training.

Example:
    >>> import torch
    >>> q, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4)
    >>> out, w = Attention()([q, v], mask=[None, torch.tensor([[1, 1, 1, 0, 0]] * 2).bool()],
    ...                      return_attention_scores=True)
    >>> tuple(out.shape), tuple(w.shape), float(w[..., 3:].abs().sum())
    ((2, 3, 4), (2, 3, 5), 0.0)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.layers import register_layer
from lstmkit.layers.base import Layer

SCORE_MODES = ("dot", "concat")


class Attention(Layer):
    """Dot-product attention layer (Luong-style), Keras 3's ``Attention``.

    Args:
        use_scale: learn a scalar that multiplies the scores (initialised to 1).
        score_mode: ``"dot"`` (``q · k``) or ``"concat"`` (``Σ tanh(q + k)``).
        dropout: fraction of the attention weights to drop in training.
        seed: seed of the dropout masks (``None``: torch's global generator).

    Call arguments:
        inputs: ``[query, value]`` or ``[query, value, key]``.
        mask: ``[query_mask, value_mask]`` (either may be ``None``); boolean ``(B, T)``.
        training: dropout is active only in training.
        return_attention_scores: also return the attention weights ``(B, Tq, Tv)``.
        use_causal_mask: query step ``i`` attends to value steps ``<= i`` only.
    """

    supports_masking = True

    def __init__(
        self,
        use_scale: bool = False,
        score_mode: str = "dot",
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        cls = type(self).__name__
        if score_mode not in SCORE_MODES:
            raise ValueError(f"{cls}: score_mode must be one of {SCORE_MODES}, got {score_mode!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
            raise ValueError(f"{cls}: dropout must be a float in [0, 1), got {dropout!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{cls}: dropout must be a float in [0, 1), got {dropout!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"{cls}: seed must be an int or None, got {seed!r}")
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self.seed = seed
        self._generator: torch.Generator | None = None
        self.register_parameter("scale", None)
        self.register_parameter("concat_score_weight", None)

    # -- building --------------------------------------------------------------------------

    def _check_shapes(self, shapes: Any) -> tuple[tuple, tuple, tuple]:
        cls = type(self).__name__
        if (
            not isinstance(shapes, (list, tuple))
            or len(shapes) not in (2, 3)
            or any(not isinstance(s, (list, tuple)) for s in shapes)
        ):
            got = (
                f"one tensor of shape {tuple(shapes)}"
                if isinstance(shapes, (list, tuple)) and all(isinstance(s, int) for s in shapes)
                else f"{len(shapes)} inputs"
                if isinstance(shapes, (list, tuple))
                else type(shapes).__name__
            )
            raise ValueError(
                f"{cls} '{self.name}': expected inputs [query, value] or [query, value, key], "
                f"got {got}"
            )
        query, value = tuple(shapes[0]), tuple(shapes[1])
        key = tuple(shapes[2]) if len(shapes) == 3 else value
        for what, s in (("query", query), ("value", value), ("key", key)):
            if len(s) != 3:
                raise ValueError(
                    f"{cls} '{self.name}': expected {what} of shape (B, T, D), got {s}"
                )
        if query[-1] is not None and key[-1] is not None and query[-1] != key[-1]:
            raise ValueError(
                f"{cls} '{self.name}': query and key must have the same last dimension, got "
                f"query {query} and key {key}"
            )
        if key[1] is not None and value[1] is not None and key[1] != value[1]:
            raise ValueError(
                f"{cls} '{self.name}': key and value must have the same number of steps, got "
                f"key {key} and value {value}"
            )
        return query, value, key

    def build(self, input_shape: Any) -> None:
        if self.built:
            return
        self._check_shapes(input_shape)
        if self.use_scale:
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")
        if self.score_mode == "concat":
            self.concat_score_weight = self.add_weight(
                shape=(), initializer="ones", name="concat_score_weight"
            )
        self.built = True

    # -- calling ---------------------------------------------------------------------------

    def score(self, query: Tensor, key: Tensor) -> Tensor:
        """Scores ``(B, Tq, Tv)`` of ``query (B, Tq, D)`` against ``key (B, Tv, D)``."""
        if self.score_mode == "dot":
            scores = torch.matmul(query, key.transpose(1, 2))  # (B, Tq, Tv)
            return scores * self.scale if self.scale is not None else scores
        pair = query.unsqueeze(-2) + key.unsqueeze(-3)  # (B, Tq, Tv, D)
        if self.scale is not None:
            pair = self.scale * pair
        return self.concat_score_weight * torch.tanh(pair).sum(-1)

    def _checked_inputs(self, inputs: Any) -> tuple[Tensor, Tensor, Tensor]:
        cls = type(self).__name__
        if not isinstance(inputs, (list, tuple)) or not all(isinstance(t, Tensor) for t in inputs):
            got = (
                [type(t).__name__ for t in inputs]
                if isinstance(inputs, (list, tuple))
                else type(inputs).__name__
            )
            raise ValueError(
                f"{cls} '{self.name}': expected inputs [query, value] or [query, value, key] "
                f"as tensors, got {got}"
            )
        self._check_shapes([tuple(t.shape) for t in inputs])
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) == 3 else value
        if query.shape[0] != value.shape[0] or key.shape[0] != value.shape[0]:
            raise ValueError(
                f"{cls} '{self.name}': query, value and key must have the same batch size, got "
                f"{[tuple(t.shape) for t in inputs]}"
            )
        return query, value, key

    def _checked_mask(self, mask: Any, like: Tensor, what: str) -> Tensor | None:
        if mask is None:
            return None
        mask = torch.as_tensor(mask, device=like.device)
        want = tuple(like.shape[:2])
        if tuple(mask.shape) != want:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': expected the {what} mask of shape "
                f"{want} (B, T), got {tuple(mask.shape)}"
            )
        return mask.to(torch.bool)

    def forward(
        self,
        inputs: Any,
        mask: Any = None,
        training: bool | None = None,
        return_attention_scores: bool = False,
        use_causal_mask: bool = False,
    ) -> Any:
        query, value, key = self._checked_inputs(inputs)
        if mask is not None and (not isinstance(mask, (list, tuple)) or len(mask) < 2):
            raise ValueError(
                f"{type(self).__name__} '{self.name}': mask must be a list "
                f"[query_mask, value_mask], got {type(mask).__name__}"
            )
        q_mask = self._checked_mask(mask[0], query, "query") if mask is not None else None
        v_mask = self._checked_mask(mask[1], value, "value") if mask is not None else None
        scores = self.score(query, key)  # (B, Tq, Tv)
        keep = None if v_mask is None else v_mask.unsqueeze(1)  # (B, 1, Tv)
        if use_causal_mask:
            tq, tv = scores.shape[-2:]
            causal = torch.ones(tq, tv, dtype=torch.bool, device=scores.device).tril()
            keep = causal.unsqueeze(0) if keep is None else keep & causal
        if keep is not None:
            big = 65504.0 if scores.dtype == torch.float16 else 1.0e9
            scores = scores - big * (~keep).to(scores.dtype)
        weights = torch.softmax(scores, dim=-1)  # (B, Tq, Tv)
        training = self.training if training is None else bool(training)
        if training and self.dropout > 0:
            weights = self._drop(weights)
        output = torch.matmul(weights, value)  # (B, Tq, Dv)
        if q_mask is not None:
            output = output * q_mask.unsqueeze(-1).to(output.dtype)
        if return_attention_scores:
            return output, weights
        return output

    def _drop(self, weights: Tensor) -> Tensor:
        if self.seed is None:
            return F.dropout(weights, self.dropout, training=True)
        if self._generator is None:
            self._generator = torch.Generator(device=weights.device).manual_seed(self.seed)
        keep = torch.empty_like(weights).bernoulli_(1.0 - self.dropout, generator=self._generator)
        return weights * keep / (1.0 - self.dropout)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if mask is None or not isinstance(mask, (list, tuple)) or mask[0] is None:
            return None
        return torch.as_tensor(mask[0]).to(torch.bool)

    # -- configuration -----------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "use_scale": self.use_scale,
            "score_mode": self.score_mode,
            "dropout": self.dropout,
            "seed": self.seed,
        }

    def extra_repr(self) -> str:
        return f"score_mode={self.score_mode!r}, use_scale={self.use_scale}, name={self.name!r}"


class AdditiveAttention(Attention):
    """Additive attention layer (Bahdanau-style), Keras 3's ``AdditiveAttention``:
    ``score = Σ_d scale_d · tanh(q_d + k_d)``.

    Args:
        use_scale: learn the vector ``scale (D,)`` (glorot-uniform initialised, as Keras);
            without it every ``scale_d`` is 1.
        dropout: fraction of the attention weights to drop in training.
        seed: seed of the dropout masks.

    Call arguments, masks and outputs: as :class:`Attention`.

    Example:
        >>> import torch
        >>> layer = AdditiveAttention()
        >>> tuple(layer([torch.randn(2, 3, 4), torch.randn(2, 5, 4)]).shape)
        (2, 3, 4)
    """

    def __init__(
        self,
        use_scale: bool = True,
        dropout: float = 0.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("score_mode", None)  # accepted in configs; always additive
        super().__init__(
            use_scale=use_scale, score_mode="dot", dropout=dropout, seed=seed, **kwargs
        )

    def build(self, input_shape: Any) -> None:
        if self.built:
            return
        query, _, _ = self._check_shapes(input_shape)
        if query[-1] is None:
            raise ValueError(
                f"AdditiveAttention '{self.name}': the query's last dimension must be known, "
                f"got {query}"
            )
        if self.use_scale:
            self.scale = self.add_weight(
                shape=(int(query[-1]),), initializer="glorot_uniform", name="scale"
            )
        self.built = True

    def score(self, query: Tensor, key: Tensor) -> Tensor:
        """``Σ_d scale_d · tanh(q_d + k_d)``: ``(B, Tq, D)``, ``(B, Tv, D)`` -> ``(B, Tq, Tv)``."""
        pair = torch.tanh(query.unsqueeze(-2) + key.unsqueeze(-3))  # (B, Tq, Tv, D)
        if self.scale is None:
            return pair.sum(-1)
        return torch.matmul(pair, self.scale)  # Σ_d scale_d · tanh(…)_d

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("score_mode")
        return config

    def extra_repr(self) -> str:
        return f"use_scale={self.use_scale}, name={self.name!r}"


register_layer(Attention)
register_layer(AdditiveAttention)
