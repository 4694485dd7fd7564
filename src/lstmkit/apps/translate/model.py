"""A GNMT-style encoder–decoder (Wu et al. 2016, at 2-core scale), built from lstmkit's layers.

Encoder (source ids ``(B, S)``)::

    e      = Dropout(WordDropout(Embedding(src, mask_zero=True)))          (B, S, E)
    h^1    = Bidirectional(LSTM(U/2))(e)          forward ⊕ backward         (B, S, U)
    h^k    = LSTM(U)(Dropout(h^{k-1})) + h^{k-1}  k = 2..N_enc (residual)    (B, S, U)
    memory = h^{N_enc};  keys = W_k · memory (attention's key projection)

Decoder (teacher forcing: the gold previous token ``tgt_in = <s> y`` at every step)::

    x      = Dropout(WordDropout(Embedding(tgt_in)))  [⊕ a_{t-1} with input feeding]
                                                                            (B, T, E[+U])
    d^1    = LSTM(U)(x)                   bottom layer; its output queries the attention
    c_t    = Σ_s α_ts memory_s,  α_t = softmax_s(score(d^1_t, key_s)), padding masked
    d^k    = LSTM(U)(Dropout(d^{k-1}) ⊕ c) + d^{k-1}    k = 2..N_dec: context into every
                                                        upper layer (GNMT), residual
    a_t    = tanh(W_a [d^{N}_t ⊕ c_t])      the attentional vector (Luong et al. 2015)
    logits = W_o Dropout(a_t)                                               (B, T, V)

Scores: ``luong`` (multiplicative, ``Attention``): ``d · (W_k m)``; ``bahdanau`` (additive,
``AdditiveAttention``): ``v · tanh(W_q d + W_k m + b)``; ``none``: no context at all (the
ablation). ``WordDropout`` (training only) zeroes whole token embeddings: a ``Dropout`` whose
mask is shared over the embedding axis (``noise_shape=(None, None, 1)``). Decoder layer ``k``
starts from the final state of encoder layer ``k`` (the bidirectional layer's two halves
concatenated); deeper decoder layers start from zeros.

Without input feeding the whole target sequence runs through each layer at once (training is
parallel over time, as in GNMT); with it the decoder runs step by step. Inference always runs step
by step: :meth:`GNMT.step` (lstmkit layers) or the equivalent :meth:`GNMT.fast_step` (the same
weights through the cells and plain tensor operations, without the layers' call machinery).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.apps.translate.data import PAD
from lstmkit.functional import LSTMState
from lstmkit.layers import (
    LSTM,
    Add,
    Bidirectional,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
)
from lstmkit.layers.attention import AdditiveAttention, Attention
from lstmkit.models import Model, register_model


class Encoded(NamedTuple):
    """What the decoder attends to, per sentence."""

    memory: Tensor  # (B, S, U) top encoder outputs
    keys: Tensor | None  # (B, S, A) attention keys (None without attention)
    mask: Tensor  # (B, S) True on real tokens
    states: list[LSTMState]  # final (h, c) of each encoder layer, (B, U) each

    def select(self, index: Tensor) -> Encoded:
        """Rows ``index`` (e.g. each sentence repeated once per beam)."""
        return Encoded(
            self.memory.index_select(0, index),
            None if self.keys is None else self.keys.index_select(0, index),
            self.mask.index_select(0, index),
            [LSTMState(h.index_select(0, index), c.index_select(0, index)) for h, c in self.states],
        )


class DecoderState(NamedTuple):
    """The decoder's recurrent state between steps."""

    layers: list[LSTMState]  # (h, c) per decoder layer, (N, U) each
    feed: Tensor | None  # (N, U) the last attentional vector (input feeding only)

    def select(self, index: Tensor) -> DecoderState:
        return DecoderState(
            [LSTMState(h.index_select(0, index), c.index_select(0, index)) for h, c in self.layers],
            None if self.feed is None else self.feed.index_select(0, index),
        )


@register_model
class GNMT(Model):
    """The translation model; ``model([src, tgt_in])`` -> logits ``(B, T, V)``.

    Args:
        src_vocab_size, tgt_vocab_size: vocabulary sizes (id 0 is padding).
        embed_dim: ``E``; units: ``U`` (even).
        encoder_layers: ``N_enc >= 1`` (the first is bidirectional); decoder_layers: ``N_dec``.
        attention: ``"luong"``, ``"bahdanau"`` or ``"none"``.
        attention_units: ``A`` of the additive attention (``luong`` uses ``U``).
        input_feeding: feed ``a_{t-1}`` into the bottom decoder layer.
        residual: residual connections from the second layer of each stack.
        dropout: rate of the ``Dropout`` layers; attention_dropout: on the attention weights.
        word_dropout: rate at which whole source and target token embeddings are zeroed in
            training (the rest scaled by ``1 / (1 - rate)``).
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        embed_dim: int = 256,
        units: int = 256,
        encoder_layers: int = 2,
        decoder_layers: int = 2,
        attention: str = "luong",
        attention_units: int = 256,
        input_feeding: bool = False,
        residual: bool = True,
        dropout: float = 0.3,
        attention_dropout: float = 0.0,
        word_dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if attention not in ("luong", "bahdanau", "none"):
            raise ValueError(
                f"GNMT: attention must be 'luong', 'bahdanau' or 'none', got {attention!r}"
            )
        if units % 2 or encoder_layers < 1 or decoder_layers < 1:
            raise ValueError(
                f"GNMT: units must be even and both stacks at least one layer deep, got "
                f"units={units}, encoder_layers={encoder_layers}, decoder_layers={decoder_layers}"
            )
        self.config = {
            "src_vocab_size": src_vocab_size,
            "tgt_vocab_size": tgt_vocab_size,
            "embed_dim": embed_dim,
            "units": units,
            "encoder_layers": encoder_layers,
            "decoder_layers": decoder_layers,
            "attention": attention,
            "attention_units": attention_units,
            "input_feeding": bool(input_feeding),
            "residual": bool(residual),
            "dropout": float(dropout),
            "attention_dropout": float(attention_dropout),
            "word_dropout": float(word_dropout),
        }
        self.units = units
        self.attention_kind = attention
        self.input_feeding = bool(input_feeding)
        self.residual = bool(residual)

        self.src_embedding = Embedding(src_vocab_size, embed_dim, mask_zero=True)
        self.tgt_embedding = Embedding(tgt_vocab_size, embed_dim, mask_zero=True)
        self.drop = Dropout(dropout)
        self.word_drop = Dropout(word_dropout, noise_shape=(None, None, 1))
        self.concat = Concatenate()
        self.add = Add()
        self.encoder_bi = Bidirectional(LSTM(units // 2, return_sequences=True, return_state=True))
        self.encoder_stack: list[LSTM] = []
        for k in range(1, encoder_layers):
            layer = LSTM(units, return_sequences=True, return_state=True)
            setattr(self, f"encoder_lstm_{k + 1}", layer)
            self.encoder_stack.append(layer)
        self.decoder_stack: list[LSTM] = []
        for k in range(decoder_layers):
            layer = LSTM(units, return_sequences=True, return_state=True)
            setattr(self, f"decoder_lstm_{k + 1}", layer)
            self.decoder_stack.append(layer)
        if attention == "luong":
            self.attention_key = Dense(units, use_bias=False)
            self.attention = Attention(dropout=attention_dropout)
        elif attention == "bahdanau":
            self.attention_query = Dense(attention_units, use_bias=False)
            self.attention_key = Dense(attention_units)
            self.attention = AdditiveAttention(dropout=attention_dropout)
        self.attentional = Dense(units, activation="tanh")
        self.output_layer = Dense(tgt_vocab_size)
        self._build_weights()

    def _build_weights(self) -> None:
        """Create every weight now (layers build lazily) so that a loaded file fits."""
        was = self.training
        self.eval()
        with torch.no_grad():
            ids = torch.ones(1, 2, dtype=torch.long)
            self.call([ids, ids], training=False)
        self.train(was)
        self.built = True

    # -- encoder ----------------------------------------------------------------------------------

    def encode(self, src: Tensor, training: bool | None = None) -> Encoded:
        """Run the encoder over ``src (B, S)`` (0 = padding)."""
        x = self.word_drop(self.src_embedding(src), training=training)  # (B, S, E), masked
        x = self.drop(x, training=training)
        seq, h_f, c_f, h_b, c_b = self.encoder_bi(x, training=training)  # (B, S, U)
        states = [LSTMState(torch.cat([h_f, h_b], -1), torch.cat([c_f, c_b], -1))]
        for lstm in self.encoder_stack:
            y, h, c = lstm(self.drop(seq, training=training), training=training)
            seq = self.add([y, seq]) if self.residual else y
            states.append(LSTMState(h, c))
        keys = self.attention_key(seq) if self.attention_kind != "none" else None
        return Encoded(seq, keys, src != PAD, states)

    def initial_state(self, enc: Encoded) -> DecoderState:
        """Decoder layer ``k`` starts from encoder layer ``k``'s final state (else zeros)."""
        batch = enc.memory.shape[0]
        layers = []
        for k in range(len(self.decoder_stack)):
            if k < len(enc.states):
                layers.append(enc.states[k])
            else:
                zero = enc.memory.new_zeros(batch, self.units)
                layers.append(LSTMState(zero, zero))
        feed = enc.memory.new_zeros(batch, self.units) if self.input_feeding else None
        return DecoderState(layers, feed)

    # -- decoder ----------------------------------------------------------------------------------

    def _attend(self, query: Tensor, enc: Encoded, training: bool | None) -> tuple[Tensor, Tensor]:
        if self.attention_kind == "bahdanau":
            query = self.attention_query(query)
        return self.attention(
            [query, enc.memory, enc.keys],
            mask=[None, enc.mask],
            training=training,
            return_attention_scores=True,
        )  # (B, T, U), (B, T, S)

    def decode(
        self,
        tgt_in: Tensor,
        enc: Encoded,
        state: DecoderState,
        training: bool | None = None,
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """Logits ``(B, T, V)`` for ``tgt_in (B, T)`` from ``state``; the new state; the
        attention weights ``(B, T, S)`` (``None`` without attention)."""
        x = self.word_drop(self.tgt_embedding(tgt_in), training=training)  # (B, T, E)
        x = self.drop(x, training=training)
        if self.input_feeding:
            return self._decode_fed(x, enc, state, training)
        out, layers, weights = self._decoder_layers(x, enc, state.layers, training)
        logits = self.output_layer(self.drop(out, training=training))
        return logits, DecoderState(layers, None), weights

    def _decoder_layers(
        self, x: Tensor, enc: Encoded, states: list[LSTMState], training: bool | None
    ) -> tuple[Tensor, list[LSTMState], Tensor | None]:
        new_states = []
        seq, h, c = self.decoder_stack[0](x, initial_state=list(states[0]), training=training)
        new_states.append(LSTMState(h, c))
        context = weights = None
        if self.attention_kind != "none":
            context, weights = self._attend(seq, enc, training)
        for lstm, s in zip(self.decoder_stack[1:], states[1:]):
            inp = self.drop(seq, training=training)
            if context is not None:
                inp = self.concat([inp, context])
            y, h, c = lstm(inp, initial_state=list(s), training=training)
            seq = self.add([y, seq]) if self.residual else y
            new_states.append(LSTMState(h, c))
        top = self.concat([seq, context]) if context is not None else seq
        return self.attentional(top), new_states, weights

    def _decode_fed(
        self, x: Tensor, enc: Encoded, state: DecoderState, training: bool | None
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        layers, feed = state.layers, state.feed
        outs, all_weights = [], []
        for t in range(x.shape[1]):
            step_in = torch.cat([x[:, t : t + 1], feed.unsqueeze(1)], -1)  # (B, 1, E + U)
            out, layers, weights = self._decoder_layers(step_in, enc, layers, training)
            feed = out[:, 0]
            outs.append(out)
            if weights is not None:
                all_weights.append(weights)
        out = torch.cat(outs, 1)  # (B, T, U)
        logits = self.output_layer(self.drop(out, training=training))
        weights = torch.cat(all_weights, 1) if all_weights else None
        return logits, DecoderState(layers, feed), weights

    def call(self, inputs: Any, training: bool | None = None) -> Tensor:
        """``inputs = [src (B, S), tgt_in (B, T)]`` -> logits ``(B, T, V)`` (teacher forcing)."""
        src, tgt_in = inputs
        enc = self.encode(src, training=training)
        logits, _, _ = self.decode(tgt_in, enc, self.initial_state(enc), training=training)
        return logits

    # -- one step of inference --------------------------------------------------------------------

    @torch.no_grad()
    def step(
        self, tokens: Tensor, state: DecoderState, enc: Encoded
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoding step through the layers: ``tokens (N,)`` -> log-probabilities
        ``(N, V)``, the new state, attention ``(N, S)`` (or ``None``)."""
        logits, state, weights = self.decode(tokens.unsqueeze(1), enc, state, training=False)
        return (
            torch.log_softmax(logits[:, 0], -1),
            state,
            None if weights is None else weights[:, 0],
        )

    @torch.no_grad()
    def fast_step(
        self, tokens: Tensor, state: DecoderState, enc: Encoded
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """:meth:`step` computed with the same weights by the cells and tensor operations
        directly (no per-layer call overhead); equal to :meth:`step` up to rounding."""
        x = F.embedding(tokens, self.tgt_embedding.embeddings)  # (N, E)
        if self.input_feeding:
            x = torch.cat([x, state.feed], -1)
        layers = []
        (h, c), _ = self.decoder_stack[0].cell(x, state.layers[0])
        layers.append(LSTMState(h, c))
        seq, context, weights = h, None, None
        if self.attention_kind != "none":
            context, weights = self._fast_attend(seq, enc)
        for lstm, s in zip(self.decoder_stack[1:], state.layers[1:]):
            inp = seq if context is None else torch.cat([seq, context], -1)
            (h, c), _ = lstm.cell(inp, s)
            seq = h + seq if self.residual else h
            layers.append(LSTMState(h, c))
        top = seq if context is None else torch.cat([seq, context], -1)
        out = _dense(self.attentional, top)
        logits = _dense(self.output_layer, out)
        return (
            torch.log_softmax(logits, -1),
            DecoderState(layers, out if self.input_feeding else None),
            weights,
        )

    def _fast_attend(self, query: Tensor, enc: Encoded) -> tuple[Tensor, Tensor]:
        att = self.attention
        if self.attention_kind == "bahdanau":
            q = _dense(self.attention_query, query)  # (N, A)
            pair = torch.tanh(q.unsqueeze(1) + enc.keys)  # (N, S, A)
            scores = pair @ att.scale if att.scale is not None else pair.sum(-1)  # (N, S)
        else:
            scores = torch.bmm(enc.keys, query.unsqueeze(-1)).squeeze(-1)  # (N, S)
            if att.scale is not None:
                scores = scores * att.scale
        scores = scores - 1.0e9 * (~enc.mask).to(scores.dtype)
        weights = torch.softmax(scores, -1)  # (N, S)
        context = torch.bmm(weights.unsqueeze(1), enc.memory).squeeze(1)  # (N, U)
        return context, weights

    # -- configuration ----------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        return {**self.config, "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GNMT:
        return cls(**config)


def _dense(layer: Dense, x: Tensor) -> Tensor:
    return layer.activation(F.linear(x, layer.weight, layer.bias))
