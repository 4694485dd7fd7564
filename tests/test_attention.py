"""Attention layers: Keras 3's formulas and semantics, masks, weights, configs, save/load."""

from __future__ import annotations

import math

import pytest
import torch

from lstmkit.layers import LSTM, Dense, Embedding, Input, get_layer_class
from lstmkit.layers.attention import AdditiveAttention, Attention
from lstmkit.models import Model
from lstmkit.models.saving import load_model

torch.manual_seed(0)


def _qkv(b: int = 2, tq: int = 3, tv: int = 5, d: int = 4, dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    return (
        torch.randn(b, tq, d, generator=g, dtype=dtype),
        torch.randn(b, tv, d + 2, generator=g, dtype=dtype),
        torch.randn(b, tv, d, generator=g, dtype=dtype),
    )


def test_dot_scores_and_output_follow_the_formula():
    q, v, k = _qkv()
    out, w = Attention()([q, v, k], return_attention_scores=True)
    want_w = torch.softmax(q @ k.transpose(1, 2), -1)
    assert torch.allclose(w, want_w, atol=1e-6)
    assert torch.allclose(out, want_w @ v, atol=1e-6)
    assert out.shape == (2, 3, 6) and w.shape == (2, 3, 5)


def test_key_defaults_to_value():
    q, _, k = _qkv()
    a = Attention()
    assert torch.allclose(a([q, k]), a([q, k, k]))


def test_use_scale_multiplies_dot_scores():
    q, v, k = _qkv()
    layer = Attention(use_scale=True)
    layer([q, v, k])
    with torch.no_grad():
        layer.scale.fill_(0.5)
    _, w = layer([q, v, k], return_attention_scores=True)
    assert torch.allclose(w, torch.softmax(0.5 * q @ k.transpose(1, 2), -1), atol=1e-6)
    assert [p.shape for p in layer.weights] == [torch.Size([])]


def test_concat_score_mode():
    q, v, k = _qkv()
    layer = Attention(score_mode="concat", use_scale=True)
    layer([q, v, k])
    with torch.no_grad():
        layer.scale.fill_(2.0)
        layer.concat_score_weight.fill_(0.3)
    _, w = layer([q, v, k], return_attention_scores=True)
    scores = 0.3 * torch.tanh(2.0 * (q.unsqueeze(2) + k.unsqueeze(1))).sum(-1)
    assert torch.allclose(w, torch.softmax(scores, -1), atol=1e-6)


def test_additive_scores_follow_the_formula():
    q, v, k = _qkv()
    layer = AdditiveAttention()
    _, w = layer([q, v, k], return_attention_scores=True)
    scores = (layer.scale * torch.tanh(q.unsqueeze(2) + k.unsqueeze(1))).sum(-1)
    assert torch.allclose(w, torch.softmax(scores, -1), atol=1e-6)
    # Keras: scale (dim,) glorot-uniform, limit sqrt(6 / (dim + dim))
    assert layer.scale.shape == (4,) and float(layer.scale.detach().abs().max()) <= math.sqrt(6 / 8)
    unscaled = AdditiveAttention(use_scale=False)
    _, w2 = unscaled([q, v, k], return_attention_scores=True)
    want = torch.softmax(torch.tanh(q.unsqueeze(2) + k.unsqueeze(1)).sum(-1), -1)
    assert torch.allclose(w2, want, atol=1e-6)
    assert unscaled.weights == []


@pytest.mark.parametrize("layer_cls", [Attention, AdditiveAttention])
def test_weights_sum_to_one_and_are_zero_on_padding(layer_cls):
    q, v, k = _qkv(b=3, tv=6)
    v_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]]).bool()
    layer = layer_cls()
    out, w = layer([q, v, k], mask=[None, v_mask], return_attention_scores=True)
    w = w.detach()
    assert torch.allclose(w.sum(-1), torch.ones(3, 3), atol=1e-6)
    assert float(w.masked_select(~v_mask.unsqueeze(1).expand_as(w)).abs().max()) == 0.0
    assert torch.allclose(w[2, :, 0], torch.ones(3))  # one real step takes all the weight
    # whatever the padded steps hold cannot reach the output
    v2, k2 = v.clone(), k.clone()
    v2[~v_mask], k2[~v_mask] = 1e6, -1e6
    assert torch.equal(layer([q, v2, k2], mask=[None, v_mask]), out)


def test_padded_value_steps_do_not_change_the_output():
    q, v, k = _qkv(b=1, tv=4)
    layer = Attention()
    short = layer([q, v[:, :2], k[:, :2]])
    long = layer([q, v, k], mask=[None, torch.tensor([[True, True, False, False]])])
    assert torch.allclose(short, long, atol=1e-6)


def test_query_mask_zeroes_output_and_is_the_output_mask():
    q, v, k = _qkv()
    q_mask = torch.tensor([[1, 1, 0], [1, 0, 0]]).bool()
    out = Attention()([q, v, k], mask=[q_mask, None])
    assert float(out[~q_mask].abs().max()) == 0.0
    assert torch.equal(out._keras_mask, q_mask)


def test_masks_travel_from_embeddings():
    ids_q = torch.tensor([[3, 4, 0]])
    ids_v = torch.tensor([[5, 6, 7, 0, 0]])
    emb = Embedding(10, 4, mask_zero=True)
    with torch.no_grad():
        out, w = Attention()([emb(ids_q), emb(ids_v)], return_attention_scores=True)
    assert float(w[..., 3:].abs().max()) == 0.0
    assert out._keras_mask.tolist() == [[True, True, False]]
    assert float(out[0, 2].abs().max()) == 0.0


def test_causal_mask():
    q, v, k = _qkv(tq=4, tv=4)
    _, w = Attention()([q, v, k], use_causal_mask=True, return_attention_scores=True)
    assert float(torch.triu(w, diagonal=1).abs().max()) == 0.0
    assert torch.allclose(w.sum(-1), torch.ones(2, 4), atol=1e-6)


def test_dropout_only_in_training_and_seeded():
    q, v, k = _qkv()
    layer = Attention(dropout=0.5, seed=3)
    eval_out = layer([q, v, k], training=False)
    assert torch.allclose(eval_out, Attention()([q, v, k]))
    _, w = layer([q, v, k], training=True, return_attention_scores=True)
    assert (w == 0).any()
    values = w[w > 0]
    assert values.max() <= 2.0 + 1e-6  # kept weights are scaled by 1 / (1 - rate)


def test_gradients_reach_query_key_value_and_scale():
    q, v, k = (t.double().requires_grad_() for t in _qkv())
    layer = AdditiveAttention(dtype="float64")
    torch.autograd.gradcheck(lambda a, b, c: layer([a, b, c]), (q, v, k))
    layer([q, v, k]).sum().backward()
    assert layer.scale.grad is not None and q.grad is not None


def test_float16_mask_value():
    q, v, k = (t.half() for t in _qkv())
    mask = torch.tensor([[1, 1, 0, 0, 0]] * 2).bool()
    _, w = Attention(dtype="float16")([q, v, k], mask=[None, mask], return_attention_scores=True)
    assert float(w[..., 2:].abs().max()) == 0.0


def test_config_round_trip_and_registration():
    for layer in (
        Attention(use_scale=True, score_mode="concat", dropout=0.1, seed=2, name="att"),
        AdditiveAttention(use_scale=False, dropout=0.2, name="add"),
    ):
        config = layer.get_config()
        clone = get_layer_class(type(layer).__name__).from_config(config)
        assert clone.get_config() == config
    assert "score_mode" not in AdditiveAttention().get_config()


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="score_mode"):
        Attention(score_mode="general")
    with pytest.raises(ValueError, match="dropout"):
        Attention(dropout=1.5)
    q, v, k = _qkv()
    with pytest.raises(ValueError, match="query and key must have the same last dimension"):
        Attention()([q, v])
    with pytest.raises(ValueError, match=r"\[query, value\]"):
        Attention()(q)
    with pytest.raises(ValueError, match="value mask of shape"):
        Attention()([q, v, k], mask=[None, torch.ones(2, 3, dtype=torch.bool)])


def test_functional_model_with_attention_saves_and_loads(tmp_path):
    src = Input((None,), dtype="int64")
    tgt = Input((None,), dtype="int64")
    enc = LSTM(8, return_sequences=True)(Embedding(20, 8, mask_zero=True)(src))
    dec = LSTM(8, return_sequences=True)(Embedding(20, 8, mask_zero=True)(tgt))
    ctx, weights = AdditiveAttention()(
        [Dense(6)(dec), enc, Dense(6)(enc)], return_attention_scores=True
    )
    model = Model([src, tgt], [Dense(20)(ctx), weights])
    a = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    b = torch.tensor([[6, 7, 8], [9, 1, 0]])
    logits, w = model([a, b])
    assert w.shape == (2, 3, 4)
    assert float(w[1, :, 2:].detach().abs().max()) == 0.0
    path = tmp_path / "att.lstmkit"
    model.save(path)
    loaded = load_model(path)
    logits2, w2 = loaded([a, b])
    assert torch.allclose(logits, logits2) and torch.allclose(w, w2)
