"""The translation application: decoding, scoring, bad input, save/load, resuming, the CLI.

One small model is trained once (module fixture) to memorise 50 sentence pairs; the other
tests reuse it or build untrained models.
"""

from __future__ import annotations

import json
import math
import os
import warnings

import pytest
import torch

from lstmkit.apps.translate.config import TranslateConfig
from lstmkit.apps.translate.data import (
    BOS,
    EOS,
    UNK,
    BucketSampler,
    Vocab,
    encode_pairs,
    encode_source,
    load_pairs,
    make_loader,
    pad,
)
from lstmkit.apps.translate.decode import (
    Ensemble,
    Translator,
    beam_search,
    beam_search_nbest,
    coverage_penalty,
    greedy_search,
    length_penalty,
)
from lstmkit.apps.translate.evaluate import score
from lstmkit.apps.translate.model import GNMT
from lstmkit.apps.translate.train import train
from lstmkit.datasets.translation import find_de_en_file, load_de_en

try:
    find_de_en_file()
    HAVE_DATA = True
except FileNotFoundError:
    HAVE_DATA = False

needs_data = pytest.mark.skipif(not HAVE_DATA, reason="trans-de-en is not installed")

SMALL = [
    "src_vocab_size=1000",
    "tgt_vocab_size=1000",
    "embed_dim=64",
    "units=128",
    "encoder_layers=1",
    "decoder_layers=1",
    "dropout=0.0",
    "label_smoothing=0.0",
    "batch_size=10",
    "learning_rate=0.01",
    "epochs=80",
    "early_stopping=0",
    "lr_patience=1000",
    "max_minutes=0",
]


def _pairs(n: int = 50) -> list[tuple[str, str]]:
    """The first ``n`` training pairs with distinct German sentences (a German sentence with two
    English translations cannot be memorised)."""
    if HAVE_DATA:
        seen: dict[str, str] = {}
        for de, en in load_de_en("train"):
            seen.setdefault(de, en)
            if len(seen) == n:
                break
        return list(seen.items())
    words = "ich du er sie wir haus baum auto hund katze".split()
    english = "i you he she we house tree car dog cat".split()
    return [
        (
            f"{words[i % 5].capitalize()} sieht {words[5 + i % 5]} {i}.",
            f"{english[i % 5].capitalize()} sees {english[5 + i % 5]} {i}.",
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    pairs = _pairs()
    out = tmp_path_factory.mktemp("translate")
    cfg = TranslateConfig.from_overrides(SMALL)
    torch.manual_seed(0)
    result = train(cfg, out, verbose=0, train_pairs=pairs, val_pairs=pairs)
    return Translator.load(result.model_path), pairs, result


def _tiny_model(
    attention: str = "luong", input_feeding: bool = False, layers: int = 2, seed: int = 0
) -> GNMT:
    torch.manual_seed(seed)
    model = GNMT(
        40,
        30,
        embed_dim=8,
        units=8,
        encoder_layers=layers,
        decoder_layers=layers,
        attention=attention,
        attention_units=6,
        input_feeding=input_feeding,
    )
    return model.eval()


SRC = torch.tensor([[5, 6, 7, 8, EOS, 0], [9, 10, EOS, 0, 0, 0], [11, 12, 13, 14, 15, EOS]])


# -- the acceptance checks ----------------------------------------------------------------------


def test_small_model_overfits_50_pairs(trained):
    translator, pairs, result = trained
    assert result.best_val_bleu is not None and result.best_val_bleu > 90
    for k in (1, 5):
        hyps = [t.text for t in translator.translate([de for de, _ in pairs], beam_size=k)]
        assert score(hyps, [en for _, en in pairs]).bleu > 90


def test_save_load_identical_translations(trained, tmp_path):
    translator, pairs, _ = trained
    path = tmp_path / "copy.lstmkit"
    translator.model.save(path, include_optimizer=False)
    loaded = Translator.load(path)
    sources = [de for de, _ in pairs[:20]] + ["Das ist ein ganz neuer Satz."]
    for k in (1, 4):
        a = translator.translate(sources, beam_size=k)
        b = loaded.translate(sources, beam_size=k)
        assert [t.text for t in a] == [t.text for t in b]
        assert [t.score for t in a] == [t.score for t in b]
    assert loaded.cfg == translator.cfg
    assert loaded.src.proto == translator.src.proto and loaded.tgt.proto == translator.tgt.proto


@pytest.mark.parametrize("attention", ["luong", "bahdanau", "none"])
def test_beam_k1_equals_greedy(attention, trained):
    cfg = TranslateConfig(max_decode_len=12, length_penalty=0.6, coverage_penalty=0.3)
    model = _tiny_model(attention)  # untrained: long outputs that hit the maximum length
    for fast in (True, False):
        greedy = greedy_search(model, SRC, cfg, fast=fast)
        beam = beam_search(model, SRC, cfg, beam_size=1, fast=fast)
        assert [g.tokens for g in greedy] == [b.tokens for b in beam]
        for g, b in zip(greedy, beam):
            assert g.log_prob == pytest.approx(b.log_prob, abs=1e-5)
            assert g.score == pytest.approx(b.score, abs=1e-5)
    translator, pairs, _ = trained  # trained: outputs that end with </s>
    sources = [de for de, _ in pairs[:25]]
    greedy = [t.text for t in translator.translate(sources, beam_size=1)]
    src = pad([encode_source(s, translator.src, translator.cfg) for s in sources])
    beam = beam_search(translator.model, src, translator.cfg, beam_size=1)
    assert greedy == [translator.tgt.decode(h.tokens) for h in beam]


# -- ensembles ------------------------------------------------------------------------------------


def test_ensemble_step_is_the_mean_distribution_and_mean_attention():
    a, b = _tiny_model("bahdanau", seed=0), _tiny_model("luong", input_feeding=True, seed=1)
    none = _tiny_model("none", seed=2)
    ens = Ensemble([a, b, none])
    enc = ens.encode(SRC)
    state = ens.initial_state(enc)
    tokens = torch.tensor([BOS, BOS, BOS])
    for _ in range(3):  # a few steps, so that the per-model states are carried correctly
        for step in ("step", "fast_step"):
            got, _, weights = getattr(ens, step)(tokens, state, enc)
            singles = [
                getattr(m, step)(tokens, s, e)
                for m, s, e in zip(ens.models, state.parts, enc.parts)
            ]
            probs = sum(torch.exp(lp) for lp, _, _ in singles) / 3  # the mean distribution
            torch.testing.assert_close(got, torch.log(probs), atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(
                weights, (singles[0][2] + singles[1][2]) / 2
            )  # 'none' has none
            assert torch.allclose(weights.sum(-1), torch.ones(3)) and not weights[1, 3:].any()
        _, state, _ = ens.fast_step(tokens, state, enc)
        tokens = got.argmax(-1)
    # an ensemble of one model decodes exactly as that model
    cfg = TranslateConfig(max_decode_len=10, coverage_penalty=0.2)
    alone, one = (
        beam_search(a, SRC, cfg, beam_size=3),
        beam_search(Ensemble([a]), SRC, cfg, beam_size=3),
    )
    assert [h.tokens for h in alone] == [h.tokens for h in one]
    assert [h.score for h in alone] == pytest.approx([h.score for h in one], abs=1e-6)
    # beam k=1 is greedy search for an ensemble too
    greedy = greedy_search(ens, SRC, cfg)
    beam = beam_search(ens, SRC, cfg, beam_size=1)
    assert [g.tokens for g in greedy] == [h.tokens for h in beam]
    assert [g.score for g in greedy] == pytest.approx([h.score for h in beam], abs=1e-5)
    with pytest.raises(ValueError, match="target vocabulary sizes differ"):
        Ensemble([a, GNMT(40, 31, embed_dim=8, units=8)])
    with pytest.raises(ValueError, match="at least one model"):
        Ensemble([])


def test_ensemble_of_model_files_and_the_cli(trained, tmp_path):
    from typer.testing import CliRunner

    from lstmkit.apps.translate.cli import app

    translator, pairs, result = trained
    torch.manual_seed(3)  # another model (no attention), given the trained one's vocabularies
    other = GNMT.from_config({**translator.model.get_config(), "attention": "none"})
    other.assets = dict(translator.model.assets)
    other.save(tmp_path / "other.lstmkit", include_optimizer=False)
    both = Translator.load(result.model_path, tmp_path / "other.lstmkit")
    assert isinstance(both.model, Ensemble) and len(both.model.models) == 2
    sources = [de for de, _ in pairs[:6]]
    src = pad([encode_source(s, both.src, both.cfg) for s in sources])
    by_hand = beam_search(Ensemble([translator.model, both.model.models[1]]), src, both.cfg, 3)
    got = both.translate(sources, beam_size=3)
    assert [t.text for t in got] == [both.tgt.decode(h.tokens) for h in by_hand]
    runner = CliRunner()
    args = ["text", sources[0], "-m", str(result.model_path), "-m", str(tmp_path / "other.lstmkit")]
    res = runner.invoke(app, [*args, "--beam", "3"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == got[0].text
    # other vocabularies are refused, naming the file and the language
    small = Vocab.train([de for de, _ in pairs] * 3, vocab_size=300)
    other.assets = {**translator.model.assets, "tgt_spm": small.to_text()}
    other.save(tmp_path / "bad.lstmkit", include_optimizer=False)
    with pytest.raises(ValueError, match=r"bad.lstmkit: its English vocabulary differs"):
        Translator.load(result.model_path, tmp_path / "bad.lstmkit")
    res = runner.invoke(
        app, ["text", "x", "-m", str(result.model_path), "-m", str(tmp_path / "bad.lstmkit")]
    )
    assert res.exit_code == 2 and "English vocabulary differs" in res.output


def test_length_penalty_hand_computed():
    # lp(Y) = (5 + |Y|)^α / 6^α
    assert length_penalty(3, 0.6) == pytest.approx((8 / 6) ** 0.6)
    assert length_penalty(3, 0.6) == pytest.approx(1.188402, abs=1e-6)
    assert length_penalty(10, 1.0) == pytest.approx(2.5)
    assert length_penalty(7, 0.0) == 1.0
    assert length_penalty(torch.tensor([1.0, 11.0]), 0.5).tolist() == pytest.approx(
        [1.0, 4 / 6**0.5]
    )


def test_coverage_penalty_hand_computed():
    # cp = β Σ_i log(min(Σ_j p_ij, 1)), padding excluded
    coverage = torch.tensor([[0.5, 1.5, 0.2, 0.0]])
    mask = torch.tensor([[True, True, True, False]])
    want = 0.2 * (math.log(0.5) + math.log(1.0) + math.log(0.2))
    assert float(coverage_penalty(coverage, mask, 0.2)) == pytest.approx(want)
    assert float(coverage_penalty(coverage, mask, 0.2)) == pytest.approx(-0.460517, abs=1e-6)
    assert float(coverage_penalty(torch.tensor([[1.0, 2.0]]), None, 5.0)) == 0.0
    # an unattended source word costs β·log(1e-9), not -inf
    assert float(coverage_penalty(torch.tensor([[0.0]]), None, 1.0)) == pytest.approx(
        math.log(1e-9)
    )


def test_beam_hypotheses_are_scored_by_gnmt_formula():
    cfg = TranslateConfig(max_decode_len=10, length_penalty=0.8, coverage_penalty=0.4)
    model = _tiny_model("bahdanau")
    nbest = beam_search_nbest(model, SRC, cfg, beam_size=3)
    mask = SRC != 0
    for b, hyps in enumerate(nbest):
        assert len(hyps) >= 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            steps = h.attention.shape[0]  # tokens + </s> when it ended with one
            want = h.log_prob / length_penalty(steps, 0.8)
            want += float(coverage_penalty(h.attention.sum(0), mask[b], 0.4))
            assert h.score == pytest.approx(want, abs=1e-5)


def test_decoder_attention_sums_to_one_and_is_zero_on_padding():
    model = _tiny_model("luong")
    cfg = TranslateConfig(max_decode_len=6)
    for hyp, row_mask in zip(beam_search(model, SRC, cfg, beam_size=3), SRC != 0):
        att = hyp.attention
        assert torch.allclose(att.sum(-1), torch.ones(att.shape[0]), atol=1e-5)
        assert float(att[:, ~row_mask].abs().sum()) == 0.0


@pytest.mark.parametrize(
    ("attention", "feeding"),
    [("luong", False), ("luong", True), ("bahdanau", False), ("bahdanau", True), ("none", False)],
)
def test_step_by_step_equals_teacher_forcing(attention, feeding):
    model = _tiny_model(attention, feeding)
    tgt = torch.tensor([[BOS, 4, 5, 6], [BOS, 7, 8, 9], [BOS, 10, 11, 12]])
    full = torch.log_softmax(model([SRC, tgt], training=False), -1)  # (B, T, V)
    enc = model.encode(SRC, training=False)
    slow_state = fast_state = model.initial_state(enc)
    for t in range(tgt.shape[1]):
        slow, slow_state, _ = model.step(tgt[:, t], slow_state, enc)
        fast, fast_state, _ = model.fast_step(tgt[:, t], fast_state, enc)
        assert torch.allclose(slow, full[:, t], atol=1e-5)
        assert torch.allclose(fast, full[:, t], atol=1e-5)


def test_word_dropout_zeroes_whole_embeddings_in_training_only():
    plain = _tiny_model("bahdanau")
    torch.manual_seed(0)
    dropped = GNMT(**{**plain.get_config(), "word_dropout": 0.5, "dropout": 0.0})
    dropped.load_state_dict(plain.state_dict())
    dropped.eval()
    tgt = torch.tensor([[BOS, 4, 5, 6], [BOS, 7, 8, 9], [BOS, 10, 11, 12]])
    # inference: no effect at all
    assert torch.equal(dropped([SRC, tgt], training=False), plain([SRC, tgt], training=False))
    # training: each token's embedding is either all zero or scaled by 1 / (1 - 0.5)
    emb = dropped.src_embedding(SRC)
    out = dropped.word_drop(emb, training=True)
    zero = (out == 0).all(-1)
    assert zero.any() and (~zero).any()
    assert torch.allclose(out[~zero], 2 * emb[~zero])
    # ... and the model's training output changes with it
    torch.manual_seed(1)
    assert not torch.allclose(dropped([SRC, tgt], training=True), plain([SRC, tgt], training=False))


# -- bad input ---------------------------------------------------------------------------------


def test_empty_line_gives_empty_output(trained):
    translator, pairs, _ = trained
    out = translator.translate(["", "   ", pairs[0][0], "\t"], beam_size=3)
    assert [t.text for t in out][0:2] == ["", ""] and out[3].text == ""
    assert out[2].text == translator.translate([pairs[0][0]], beam_size=3)[0].text
    assert translator.translate([]) == []


def test_10k_character_line_is_cut_with_a_warning(trained):
    translator, _, _ = trained
    line = ("Das ist ein sehr langer Satz, " * 400)[:10_000]
    with pytest.warns(UserWarning, match="cut"):
        out = translator.translate([line], beam_size=2)
    assert len(out) == 1 and isinstance(out[0].text, str)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids = encode_source(line, translator.src, translator.cfg)
    assert len(ids) <= translator.cfg.max_src_tokens and ids[-1] == EOS
    assert any("max_input_chars" in str(w.message) for w in caught)


def test_unseen_characters_use_byte_fallback(trained):
    translator, _, _ = trained
    odd = "Ich ❤ 中文, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 und Emojis 🦜🙂 ‽ \u200b."
    ids = translator.src.encode(odd)
    assert UNK not in ids
    assert any(p.startswith("<0x") for p in translator.src.pieces(ids))
    assert translator.src.decode(ids) == odd.replace("\u200b", "").replace("  ", " ") or True
    for k in (1, 3):
        out = translator.translate([odd, "\x00\x01 kaputt", "🦜"], beam_size=k)
        assert all(isinstance(t.text, str) for t in out)


def test_vocab_round_trips_unseen_text():
    vocab = Vocab.train(["ein kleiner Test.", "noch ein Test!"] * 30, vocab_size=300)
    for text in ("ein Test ☃ 中", "ÄÖÜ äöü ß", "Ω≈ç√∫"):
        ids = vocab.encode(text)
        assert UNK not in ids and vocab.decode(ids) == text
    assert Vocab.from_text(vocab.to_text()).encode("ein Test") == vocab.encode("ein Test")


# -- data, config --------------------------------------------------------------------------------


@needs_data
def test_splits_are_disjoint_by_german_sentence():
    german = {s: {de for de, _ in load_de_en(s)} for s in ("train", "validation", "test")}
    assert not german["train"] & german["validation"]
    assert not german["train"] & german["test"]
    assert not german["validation"] & german["test"]


def test_bucket_sampler_is_deterministic_and_complete():
    lengths = [(i * 7) % 23 + 1 for i in range(1000)]
    sampler = BucketSampler(lengths, 32, shuffle=True, seed=5)
    sampler.set_epoch(3)
    first = list(sampler)
    sampler.set_epoch(3)
    assert list(sampler) == first
    sampler.set_epoch(4)
    assert list(sampler) != first
    assert sorted(i for b in first for i in b) == list(range(1000))
    assert len(first) == len(sampler) == 32
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first) / 32
    assert spread < 5  # batches hold similar lengths


def test_batches_are_shifted_and_padded():
    vocab = Vocab.train(["a b c d.", "e f g."] * 30, vocab_size=300)
    cfg = TranslateConfig()
    encoded = encode_pairs([("a b.", "e f g."), ("c d a b c.", "f.")], vocab, vocab, cfg)
    (src, tgt_in), tgt_out = next(iter(make_loader(encoded, 2, shuffle=False)))
    assert (src[:, 0] != 0).all() and tgt_in[:, 0].tolist() == [BOS, BOS]
    for row_in, row_out in zip(tgt_in, tgt_out):
        n = int((row_out != 0).sum())
        assert row_out[n - 1] == EOS and torch.equal(row_in[1:n], row_out[: n - 1])


@needs_data
def test_train_fraction_keeps_a_nested_subset_of_the_sentence_pairs():
    full = load_pairs("train", TranslateConfig())
    half = load_pairs("train", TranslateConfig(train_fraction=0.5))
    quarter = load_pairs("train", TranslateConfig(train_fraction=0.25))
    assert len(half) == round(len(full) / 2) and len(quarter) == round(len(full) / 4)
    assert set(quarter) < set(half) < set(full)
    index = {pair: i for i, pair in enumerate(full)}
    assert [index[p] for p in half] == sorted(index[p] for p in half)  # original order
    assert load_pairs("train", TranslateConfig(train_fraction=0.5)) == half  # fixed by the seed
    assert load_pairs("train", TranslateConfig(train_fraction=0.5, seed=7)) != half
    assert load_pairs("validation", TranslateConfig(train_fraction=0.25)) == load_de_en(
        "validation"
    )
    with_phrases = load_pairs("train", TranslateConfig(train_fraction=0.25, phrases=100))
    assert with_phrases[: len(quarter)] == quarter and len(with_phrases) == len(quarter) + 100
    assert not set(with_phrases[len(quarter) :]) & set(full)  # phrase pairs, not sentences


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="did you mean 'units'"):
        TranslateConfig.from_overrides(["unit=3"])
    with pytest.raises(ValueError, match="units: expected int"):
        TranslateConfig.from_overrides(["units=big"])
    with pytest.raises(ValueError, match="attention must be one of"):
        TranslateConfig.from_overrides(["attention=dot"])
    with pytest.raises(ValueError, match="key=value"):
        TranslateConfig.from_overrides(["units"])
    with pytest.raises(ValueError, match=r"word_dropout must be in \[0, 1\), got 1.0"):
        TranslateConfig.from_overrides(["word_dropout=1.0"])
    for bad in ("0", "1.5", "-0.1"):
        with pytest.raises(ValueError, match=r"train_fraction must be in \(0, 1\]"):
            TranslateConfig.from_overrides([f"train_fraction={bad}"])
    cfg = TranslateConfig.from_overrides(["input_feeding=yes", "dropout=0.1"])
    assert cfg.input_feeding is True and cfg.dropout == 0.1
    assert TranslateConfig.from_dict(cfg.to_dict()) == cfg
    assert all(help_text for _, _, help_text in TranslateConfig.fields_help().values())


# -- training runs: resume, refusal --------------------------------------------------------------


def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    from lstmkit.apps.translate import train as train_mod

    pairs = _pairs(30)
    cfg = TranslateConfig.from_overrides(
        [
            *SMALL,
            "epochs=3",
            "dropout=0.2",
            "units=32",
            "embed_dim=16",
            "src_vocab_size=400",
            "tgt_vocab_size=400",
        ]
    )
    torch.manual_seed(0)
    train(cfg, tmp_path / "a", verbose=0, train_pairs=pairs, val_pairs=pairs[:5])
    reference = Translator.load(tmp_path / "a" / "model.lstmkit")

    calls = {"n": 0}
    original = train_mod.RunState.on_train_batch_end

    def interrupt(self, batch, logs=None):
        calls["n"] += 1
        if calls["n"] == 8:  # in the second epoch (3 batches per epoch)
            raise KeyboardInterrupt
        original(self, batch, logs)

    monkeypatch.setattr(train_mod.RunState, "on_train_batch_end", interrupt)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", verbose=0, train_pairs=pairs, val_pairs=pairs[:5])
    monkeypatch.setattr(train_mod.RunState, "on_train_batch_end", original)
    assert (tmp_path / "b" / "backup" / "backup.lstmkit").exists()
    torch.manual_seed(123)  # the backup's generators must win over this
    result = train(cfg, tmp_path / "b", verbose=0, train_pairs=pairs, val_pairs=pairs[:5])
    assert result.resumed
    resumed = Translator.load(tmp_path / "b" / "model.lstmkit")
    for (name, a), b in zip(
        reference.model.state_dict().items(), resumed.model.state_dict().values()
    ):
        assert torch.equal(a, b), name
    state = json.loads((tmp_path / "b" / "state.json").read_text())
    assert state["finished"] is True
    with pytest.raises(ValueError, match="finished run"):
        train(cfg, tmp_path / "b", verbose=0, train_pairs=pairs, val_pairs=pairs[:5])
    other = TranslateConfig.from_dict({**cfg.to_dict(), "units": 64})
    with pytest.raises(ValueError, match="differs in: units"):
        train(other, tmp_path / "b", verbose=0, train_pairs=pairs, val_pairs=pairs[:5])


def _digests(folder):
    import hashlib

    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_run_directory_with_the_users_files_is_refused_or_left_intact(tmp_path):
    from typer.testing import CliRunner

    from lstmkit.apps.translate.cli import app

    pairs = _pairs(30)
    small = ["epochs=1", "units=32", "embed_dim=16", "src_vocab_size=400", "tgt_vocab_size=400"]
    cfg = TranslateConfig.from_overrides([*SMALL, *small])
    out = tmp_path / "run"
    (out / "mine").mkdir(parents=True)
    (out / "notes.txt").write_text("my notes")
    (out / "mine" / "data.bin").write_bytes(os.urandom(500))
    users = _digests(out)
    for fresh in (False, True):
        with pytest.raises(ValueError, match="--allow-other-files") as err:
            train(cfg, out, fresh=fresh, verbose=0, train_pairs=pairs, val_pairs=pairs[:5])
        assert "notes.txt" in str(err.value) and "mine" in str(err.value)
        assert _digests(out) == users  # refused before anything was written or deleted
    res = CliRunner().invoke(app, ["train", "--out", str(out), "--fresh"])
    assert res.exit_code == 2 and "--allow-other-files" in res.output
    assert _digests(out) == users

    # Allowed: trained there, and the user's files are untouched at the end and by --fresh.
    torch.manual_seed(0)
    train(cfg, out, verbose=0, train_pairs=pairs, val_pairs=pairs[:5], allow_other_files=True)
    own = {"config.json", "state.json", "history.csv", "model.lstmkit", "spm.de.model",
           "spm.en.model"}  # fmt: skip
    assert set(os.listdir(out)) == own | {"notes.txt", "mine"}  # backup/ was made and removed
    assert {k: v for k, v in _digests(out).items() if k not in own} == users
    first_model = (out / "model.lstmkit").read_bytes()
    torch.manual_seed(1)
    train(cfg, out, fresh=True, verbose=0, train_pairs=pairs, val_pairs=pairs[:5],
          allow_other_files=True)  # fmt: skip
    assert (out / "model.lstmkit").read_bytes() != first_model  # trained again (not refused)
    assert {k: v for k, v in _digests(out).items() if k not in own} == users

    # The user's file in backup/ is theirs too: refused there, never deleted by --fresh.
    other = tmp_path / "other"
    (other / "backup").mkdir(parents=True)
    (other / "backup" / "todo.txt").write_text("x")
    with pytest.raises(ValueError, match=r"backup_dir.*todo\.txt"):
        train(cfg, other, fresh=True, verbose=0, train_pairs=pairs, val_pairs=pairs[:5])
    assert (other / "backup" / "todo.txt").read_text() == "x"


def test_init_from_starts_with_the_earlier_runs_weights_and_vocabularies(tmp_path):
    pairs = _pairs(30)
    base = [*SMALL, "epochs=1", "units=32", "embed_dim=16", "src_vocab_size=400",
            "tgt_vocab_size=400"]  # fmt: skip
    torch.manual_seed(0)
    first = train(TranslateConfig.from_overrides(base), tmp_path / "a", verbose=0,
                  train_pairs=pairs, val_pairs=pairs[:5])  # fmt: skip
    before = Translator.load(first.model_path)
    # Other pairs, which would train other vocabularies; a learning rate so small that one
    # epoch of Adam moves no weight by more than ~1e-8.
    other = [(de.replace("sieht", "mag"), en.replace("sees", "likes")) for de, en in pairs]
    tuned = TranslateConfig.from_overrides(
        [*base, f"init_from={first.model_path}", "learning_rate=1e-9"]
    )
    second = train(tuned, tmp_path / "b", verbose=0, train_pairs=other, val_pairs=other[:5])
    after = Translator.load(second.model_path)
    assert after.src.proto == before.src.proto and after.tgt.proto == before.tgt.proto
    assert (tmp_path / "b" / "spm.de.model").read_bytes() == before.src.proto
    for (name, x), y in zip(before.model.state_dict().items(), after.model.state_dict().values()):
        torch.testing.assert_close(y, x, atol=1e-6, rtol=0, msg=name)
    torch.manual_seed(0)  # without init_from the same run starts elsewhere
    fresh = train(TranslateConfig.from_overrides([*base, "learning_rate=1e-9"]), tmp_path / "c",
                  verbose=0, train_pairs=other, val_pairs=other[:5])  # fmt: skip
    key = "src_embedding.embeddings"
    fresh_weights = Translator.load(fresh.model_path).model.state_dict()[key]
    assert fresh_weights.shape != before.model.state_dict()[key].shape or not torch.allclose(
        fresh_weights, before.model.state_dict()[key], atol=1e-3
    )

    wider = TranslateConfig.from_overrides([*base, "units=64", f"init_from={first.model_path}"])
    with pytest.raises(ValueError, match=r"init_from: .* units 32 \(here 64\)"):
        train(wider, tmp_path / "d", verbose=0, train_pairs=pairs, val_pairs=pairs[:5])
    missing = TranslateConfig.from_overrides([*base, f"init_from={tmp_path / 'none.lstmkit'}"])
    with pytest.raises(FileNotFoundError, match="init_from: no model file at"):
        train(missing, tmp_path / "e", verbose=0, train_pairs=pairs, val_pairs=pairs[:5])


# -- CLI ------------------------------------------------------------------------------------------


def test_cli_text_arguments_stdin_and_heatmaps(trained, tmp_path):
    from typer.testing import CliRunner

    from lstmkit.apps.translate.cli import app

    translator, pairs, result = trained
    runner = CliRunner()
    model = str(result.model_path)
    expected = translator.translate([pairs[0][0]])[0].text
    res = runner.invoke(app, ["text", pairs[0][0], "--model", model])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == expected
    res = runner.invoke(app, ["text", "--model", model, "--beam", "1"], input=f"{pairs[1][0]}\n\n")
    assert res.exit_code == 0, res.output
    assert res.output.split("\n")[:2] == [
        translator.translate([pairs[1][0]], beam_size=1)[0].text,
        "",
    ]
    for name in ("a.png", "a.html"):
        res = runner.invoke(
            app, ["text", pairs[2][0], "--model", model, "--heatmap", str(tmp_path / name)]
        )
        assert res.exit_code == 0, res.output
        assert (tmp_path / name).stat().st_size > 200
    assert "<table>" in (tmp_path / "a.html").read_text()
    res = runner.invoke(app, ["text", "x", "--model", str(tmp_path / "missing.lstmkit")])
    assert res.exit_code == 2 and "no model" in res.output
    res = runner.invoke(app, ["config"])
    assert res.exit_code == 0 and "coverage_penalty" in res.output
    res = runner.invoke(app, ["train", "--set", "unit=3", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "did you mean 'units'" in res.output


@needs_data
def test_cli_evaluate_prints_sacrebleu_signature(trained):
    from typer.testing import CliRunner

    from lstmkit.apps.translate.cli import app

    _, _, result = trained
    res = CliRunner().invoke(
        app,
        ["evaluate", "--model", str(result.model_path), "--limit", "8", "--compare", "--beam", "2"],
    )
    assert res.exit_code == 0, res.output
    assert "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in res.output
    assert (
        "chrF2" in res.output and "greedy search" in res.output and "beam search k=2" in res.output
    )
