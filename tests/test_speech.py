"""The speech application: CTC loss wiring, the model's masks, the feature cache, a small model
overfitting 20 synthesised utterances, transcription of files, bad input, save/load."""

from __future__ import annotations

import shutil
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from lstmkit.apps.speech.config import SpeechConfig
from lstmkit.apps.speech.evaluate import Recognizer, is_silent
from lstmkit.apps.speech.features import (
    BatchLoader,
    FeatureSet,
    FeatureSpec,
    LengthBatches,
    collate,
    decode_labels,
    encode_transcript,
    features_of_file,
    load_features,
    mel_warp,
    speed_perturber,
    time_stretch,
    warp_perturber,
)
from lstmkit.apps.speech.model import CTCLoss, SpeechRecognizer
from lstmkit.datasets.digits import VOCABULARY, Utterance, load_digits, synthesize_digits
from lstmkit.models import load_model
from lstmkit.training.optimizers import Adam
from lstmkit.utils import set_random_seed

HAVE_TOOLS = all(shutil.which(t) for t in ("espeak-ng", "flite", "sox"))
needs_tools = pytest.mark.skipif(not HAVE_TOOLS, reason="needs espeak-ng, flite and sox")
SPEC = FeatureSpec()  # the application's defaults: 8 kHz, 80 mels, 25 ms / 10 ms


def tiny_model(**kw) -> SpeechRecognizer:
    args = dict(n_mels=80, n_classes=len(VOCABULARY) + 1, conv_filters=8, lstm_units=48,
                lstm_layers=1, dropout=0.0)  # fmt: skip
    return SpeechRecognizer(**{**args, **kw})


# -- CTC loss ---------------------------------------------------------------------------------


def test_ctc_loss_equals_torch_ctc_with_mask_lengths_and_padding():
    torch.manual_seed(0)
    log_probs = torch.randn(3, 10, 5).log_softmax(-1)  # (B, T, C)
    mask = torch.arange(10)[None, :] < torch.tensor([[10], [7], [4]])
    targets = torch.tensor([[1, 2, 3], [4, 4, -1], [2, -1, -1]])
    got = CTCLoss(reduction="none")(targets, log_probs, mask=mask)
    want = torch.nn.CTCLoss(reduction="none")(
        log_probs.transpose(0, 1), targets.clamp_min(0), torch.tensor([10, 7, 4]),
        torch.tensor([3, 2, 1]),
    )  # fmt: skip
    torch.testing.assert_close(got, want)
    mean = CTCLoss()(targets, log_probs, mask=mask)
    torch.testing.assert_close(mean, want.mean())
    weighted = CTCLoss()(targets, log_probs, sample_weight=torch.tensor([1.0, 0.0, 2.0]), mask=mask)
    torch.testing.assert_close(weighted, (want[0] + 2 * want[2]) / 3)


def test_ctc_loss_reads_the_mask_travelling_on_the_model_output():
    model = tiny_model(n_mels=8, n_classes=4, lstm_units=6)
    x, lengths = torch.randn(2, 24, 8), torch.tensor([24, 13])
    out = model([x, lengths])
    assert out._keras_mask.sum(1).tolist() == model.output_lengths(lengths).tolist() == [6, 4]
    targets = torch.tensor([[1, 2], [3, -1]])
    explicit = CTCLoss()(targets, out.detach(), mask=out._keras_mask)
    torch.testing.assert_close(CTCLoss()(targets, out), explicit)


def test_gradients_flow_to_every_weight_and_the_loss_decreases_on_a_toy_batch():
    set_random_seed(0)
    model = tiny_model(n_mels=8, n_classes=4, lstm_units=12, conv_filters=4, lstm_layers=2)
    x, lengths = torch.randn(4, 32, 8), torch.tensor([32, 30, 21, 16])
    targets = torch.tensor([[1, 2, 3], [3, 3, -1], [2, -1, -1], [1, 3, -1]])
    loss = CTCLoss()(targets, model([x, lengths], training=True))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name
    model.zero_grad()
    model.compile(optimizer=Adam(learning_rate=3e-3), loss=CTCLoss(), device="cpu")
    history = model.fit([x, lengths], targets, batch_size=4, epochs=40, verbose=0, shuffle=False)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses


# -- the model --------------------------------------------------------------------------------


@pytest.mark.parametrize("frontend", ["conv2d", "conv1d"])
def test_an_utterance_gets_the_same_outputs_alone_as_in_a_padded_batch(frontend):
    torch.manual_seed(1)
    model = tiny_model(n_mels=12, n_classes=5, lstm_layers=2, lstm_units=8, frontend=frontend)
    model.eval()
    lengths = torch.tensor([29, 18, 7, 1])
    x = torch.randn(4, 29, 12)
    out = model([x, lengths])
    for b, n in enumerate(lengths.tolist()):
        alone = model([x[b : b + 1, :n], lengths[b : b + 1]])
        valid = int(out._keras_mask[b].sum())
        assert valid == alone.shape[1]
        torch.testing.assert_close(out[b, :valid], alone[0], rtol=0, atol=1e-5)


def test_model_input_errors_are_clear():
    model = tiny_model(n_mels=8, n_classes=4)
    with pytest.raises(ValueError, match=r"expected inputs \[features"):
        model(torch.zeros(1, 10, 8))
    with pytest.raises(ValueError, match=r"expected features of shape \(B, T, 8\)"):
        model([torch.zeros(1, 10, 9), torch.tensor([10])])
    with pytest.raises(ValueError, match=r"expected 1 lengths in \[1, 10\]"):
        model([torch.zeros(1, 10, 8), torch.tensor([11])])
    with pytest.raises(ValueError, match="frontend must be one of"):
        SpeechRecognizer(frontend="conv3d")


# -- features, batches, cache ------------------------------------------------------------------


def test_transcripts_encode_to_classes_after_the_blank_and_back():
    ids = encode_transcript("oh one nine zero", VOCABULARY)
    assert ids == [2, 3, 11, 1] and decode_labels(ids, VOCABULARY) == "oh one nine zero"
    with pytest.raises(ValueError, match="'ten', not in the vocabulary"):
        encode_transcript("one ten", VOCABULARY)


def test_length_batches_cover_everything_once_and_reshuffle_every_epoch():
    lengths = [5, 9, 5, 7, 9, 9, 5, 3, 7, 9, 1]
    for bucket in ("sorted", "exact"):
        batches = LengthBatches(lengths, 3, bucket, seed=4)
        first, second = list(batches), list(batches)
        assert sorted(i for b in first for i in b) == list(range(len(lengths)))
        assert first != second and all(len(b) <= 3 for b in first)
        if bucket == "exact":
            assert all(len({lengths[i] for i in b}) == 1 for b in first)
    fixed = LengthBatches(lengths, 3, shuffle=False)
    assert list(fixed) == list(fixed)


def test_collate_pads_features_with_zeros_and_targets_with_minus_one():
    feats = [np.ones((4, 3), np.float16), np.ones((2, 3), np.float16)]
    (x, lengths), y = collate(feats, [[1, 2, 3], [4]])
    assert x.dtype == torch.float32 and x.shape == (2, 4, 3) and lengths.tolist() == [4, 2]
    assert float(x[1, 2:].abs().sum()) == 0.0
    assert y.tolist() == [[1, 2, 3], [4, -1, -1]]


def test_time_stretch_resamples_frames_linearly_and_perturbation_is_seeded():
    x = np.arange(5, dtype=np.float16)[:, None] * np.ones((1, 2), np.float16)  # (T=5, F=2)
    slow = time_stretch(x, 2.0)
    assert slow.shape == (10, 2) and slow.dtype == np.float32
    assert slow[0, 0] == 0.0 and slow[-1, 0] == 4.0 and np.all(np.diff(slow[:, 0]) > 0)
    assert time_stretch(x, 0.6)[:, 1].tolist() == [0.0, 2.0, 4.0]
    assert time_stretch(x[:1], 0.1).shape == (1, 2)
    a, b = speed_perturber(0.5, 0.9, 1.5, seed=1), speed_perturber(0.5, 0.9, 1.5, seed=1)
    shapes = [a(np.zeros((100, 2))).shape[0] for _ in range(40)]
    assert shapes == [b(np.zeros((100, 2))).shape[0] for _ in range(40)]
    assert 100 in shapes and all(90 <= n <= 150 for n in shapes) and len(set(shapes)) > 5


def test_mel_warp_moves_the_spectrum_along_the_bands_and_perturbation_is_seeded():
    x = np.zeros((3, 10), np.float16)
    x[:, 4] = 1.0  # one "formant" at band 4
    assert np.array_equal(mel_warp(x, 1.0), x.astype(np.float32))
    up = mel_warp(x, 1.25)  # band k reads band k / 1.25: the peak moves to band 5
    assert up.shape == (3, 10) and up.dtype == np.float32 and int(up[0].argmax()) == 5
    assert up[0, 5] == 1.0 and up[0, 4] == pytest.approx(0.2) and up[0, 6] == pytest.approx(0.2)
    down = mel_warp(x, 0.5)  # band k reads band 2k: the peak moves to band 2
    assert int(down[0].argmax()) == 2 and down[0, 2] == 1.0
    ramp = np.tile(np.arange(10, dtype=np.float32), (2, 1))
    assert mel_warp(ramp, 0.5)[0].tolist() == [0, 2, 4, 6, 8, 9, 9, 9, 9, 9]  # clipped at the top
    a, b = warp_perturber(0.5, 0.8, 1.2, seed=1), warp_perturber(0.5, 0.8, 1.2, seed=1)
    y = np.random.default_rng(0).standard_normal((20, 10)).astype(np.float32)
    outs_a, outs_b = [a(y) for _ in range(30)], [b(y) for _ in range(30)]
    assert all(np.array_equal(p, q) for p, q in zip(outs_a, outs_b, strict=True))
    unchanged = sum(np.array_equal(p, y) for p in outs_a)
    assert 5 < unchanged < 25  # about half the utterances are warped


def _fake_utterances(tmp_path: Path, n: int) -> list[Utterance]:
    out = []
    for i in range(n):
        path = tmp_path / f"u{i}.wav"
        t = np.arange(8000 + 800 * i) / 16000
        soundfile.write(path, 0.1 * np.sin(2 * np.pi * (300 + 50 * i) * t), 16000)
        out.append(Utterance(f"train-{i}", path, "one two", "x", "train", {}, 0.5, None))
    return out


def test_feature_cache_is_reused_and_never_written_half_way(tmp_path):
    utts = _fake_utterances(tmp_path, 4)
    cache = tmp_path / "cache"
    calls = []

    def failing(path, spec):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user stops the run in the middle
        return features_of_file(path, spec)

    with pytest.raises(KeyboardInterrupt):
        load_features(utts, SPEC, cache, "train", progress=False, compute=failing)
    assert not cache.exists() or list(cache.iterdir()) == []  # no file, no temporary file

    def counting(path, spec):
        calls.append(path)
        return features_of_file(path, spec)

    calls.clear()
    first = load_features(utts, SPEC, cache, "train", progress=False, compute=counting)
    assert len(calls) == 4 and [p.name for p in cache.iterdir()] == [
        next(cache.iterdir()).name
    ]  # one complete file
    second = load_features(utts, SPEC, cache, "train", progress=False, compute=counting)
    assert len(calls) == 4  # read from the cache
    assert second.ids == first.ids and all(
        np.array_equal(a, b) for a, b in zip(first.feats, second.feats)
    )
    assert first.feats[0].shape[1] == 80 and first.feats[0].dtype == np.float16
    # Other settings -> another file; a corrupt file is recomputed.
    load_features(utts, FeatureSpec(n_mels=40), cache, "train", progress=False)
    assert len(list(cache.iterdir())) == 2
    cached = sorted(cache.iterdir())[0]
    cached.write_bytes(b"not an npz")
    load_features(utts, SPEC, cache, "train", progress=False, compute=counting)
    load_features(utts, FeatureSpec(n_mels=40), cache, "train", progress=False, compute=counting)
    assert len(calls) == 8  # only the corrupt one was recomputed
    # Cepstral smoothing is part of the key: its features are another file, and smoother.
    smoothed = load_features(utts, FeatureSpec(cepstra=12), cache, "train", progress=False)
    assert len(list(cache.iterdir())) == 3
    ripple = [np.abs(np.diff(f.astype(np.float32), 2, axis=1)).mean() for f in first.feats]
    smooth_ripple = [
        np.abs(np.diff(f.astype(np.float32), 2, axis=1)).mean() for f in smoothed.feats
    ]
    assert all(s < 0.5 * r for s, r in zip(smooth_ripple, ripple))


# -- a small model on real synthesised speech ----------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    if not HAVE_TOOLS:
        pytest.skip("needs espeak-ng, flite and sox")
    root = tmp_path_factory.mktemp("digits")
    return synthesize_digits(root, n_train=20, n_val=0, n_test=0, n_real=0, seed=3,
                             workers=2, progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def overfit(corpus, tmp_path_factory) -> tuple[Recognizer, FeatureSet, list[Utterance]]:
    """A small model trained on 20 utterances until it transcribes all of them right."""
    utts = load_digits(corpus, "train")
    data = load_features(utts, SPEC, None, progress=False)
    set_random_seed(0)
    # Small and quick: Conv1D front end with time stride 3 (90 ms frames), one BiLSTM(64).
    model = tiny_model(frontend="conv1d", conv_filters=16, time_stride=3, lstm_units=64)
    rec = Recognizer(model, VOCABULARY, SPEC, {"note": "test"})
    lengths = model.output_lengths(torch.tensor([f.shape[0] for f in data.feats])).tolist()
    loader = BatchLoader(data, VOCABULARY, LengthBatches(lengths, 4, seed=0))
    model.compile(optimizer=Adam(learning_rate=1e-2, global_clipnorm=5.0), loss=CTCLoss(),
                  device="cpu")  # fmt: skip
    for _ in range(30):  # at most 150 epochs; about 30 are needed
        model.fit(loader, epochs=5, verbose=0)
        if rec.evaluate(data, decoders=("greedy",))["greedy"]["wer"] == 0.0:
            break
    return rec, data, utts


@needs_tools
def test_a_small_model_overfits_20_utterances_to_zero_wer(overfit):
    rec, data, _ = overfit
    scores = rec.evaluate(data)
    assert len(data) == 20
    assert scores["greedy"] == {"wer": 0.0, "cer": 0.0, "ser": 0.0}, scores["errors"]
    assert scores["beam"]["wer"] == 0.0


@needs_tools
def test_evaluate_gives_error_rates_per_group(overfit):
    rec, data, _ = overfit
    # Utterances 0-4 get a wrong reference (one word more), so only group "b" has errors.
    wrong = [t + " one" if i < 5 else t for i, t in enumerate(data.transcripts)]
    altered = FeatureSet(data.ids, wrong, data.feats)
    groups = ["b" if i < 5 else "a" for i in range(len(data))]
    scores = rec.evaluate(altered, groups=groups)
    by = scores["groups"]["beam"]
    assert by["a"] == {"n": 15, "wer": 0.0, "cer": 0.0, "ser": 0.0}
    words = sum(len(t.split()) for t in wrong[:5])
    assert by["b"]["n"] == 5 and by["b"]["ser"] == 1.0
    assert by["b"]["wer"] == pytest.approx(5 / words)
    assert scores["beam"]["wer"] == pytest.approx(5 / sum(len(t.split()) for t in wrong))
    with pytest.raises(ValueError, match="one group label per utterance \\(20\\), got 2"):
        rec.evaluate(data, groups=["a", "b"])


@needs_tools
def test_files_of_any_rate_and_channels_transcribe_like_the_original(overfit, tmp_path):
    rec, _, utts = overfit
    u = utts[0]
    audio, rate = soundfile.read(u.path, dtype="float32")
    assert rec.transcribe_file(u.path) == u.transcript
    stereo = np.stack([audio, audio], axis=1)
    flac = tmp_path / "stereo_44k.flac"
    import soxr

    soundfile.write(flac, soxr.resample(stereo, rate, 44100), 44100, subtype="PCM_24")
    assert rec.transcribe_file(flac) == u.transcript
    assert rec.transcribe_file(flac, decoder="beam", beam_size=4) == u.transcript
    assert rec.transcribe_audio(audio.astype(np.float64), rate) == u.transcript


@needs_tools
def test_save_then_load_gives_identical_outputs_and_transcripts(overfit, tmp_path):
    rec, data, _ = overfit
    path = tmp_path / "speech.lstmkit"
    rec.save(path)
    loaded = Recognizer.load(path)
    assert loaded.vocabulary == rec.vocabulary and loaded.spec == rec.spec
    assert loaded.config == {"note": "test"}
    for a, b in zip(rec.log_probs(data.feats[:5]), loaded.log_probs(data.feats[:5])):
        assert np.array_equal(a, b)
    hyps = [loaded.decode(lp, "beam") for lp in loaded.log_probs(data.feats)]
    assert hyps == data.transcripts
    # The file is an ordinary lstmkit model file (no custom loss needed to load it).
    assert isinstance(load_model(path), SpeechRecognizer)


def test_recognizer_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        Recognizer.load(tmp_path / "missing.lstmkit")
    bad = tmp_path / "bad.lstmkit"
    bad.write_text("hello")
    with pytest.raises(ValueError, match="not an lstmkit model file"):
        Recognizer.load(bad)
    from lstmkit.layers import Dense
    from lstmkit.models import Sequential

    other = Sequential([Dense(2)])
    other(torch.zeros(1, 3))
    other.save(tmp_path / "other.lstmkit")
    with pytest.raises(ValueError, match="not a speech model"):
        Recognizer.load(tmp_path / "other.lstmkit")


# -- bad input ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def untrained() -> Recognizer:
    set_random_seed(0)
    return Recognizer(tiny_model(), VOCABULARY, SPEC)


def test_silence_gives_an_empty_transcript(untrained, tmp_path):
    silent = tmp_path / "silence.wav"
    soundfile.write(silent, np.zeros(16000, np.float32), 16000)
    assert untrained.transcribe_file(silent) == ""
    quiet_noise = np.random.default_rng(0).normal(0, 1e-5, 32000)  # −100 dBFS
    assert untrained.transcribe_audio(quiet_noise, 16000) == ""
    assert is_silent(np.zeros(10), 8000)
    assert not is_silent(0.05 * np.ones(8000), 8000)


def test_not_audio_truncated_empty_and_wrong_format_are_clear_errors(untrained, tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("these are not samples\n" * 50)
    with pytest.raises(ValueError, match="could not be decoded"):
        untrained.transcribe_file(text)

    good = tmp_path / "good.wav"
    soundfile.write(good, 0.1 * np.ones(16000, np.float32), 16000, subtype="PCM_16")
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:12000])
    with pytest.raises(ValueError, match="truncated"):
        untrained.transcribe_file(truncated)

    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
    with pytest.raises(ValueError, match="has none"):
        untrained.transcribe_file(empty)

    odd_format = tmp_path / "format.wav"
    blob = bytearray(good.read_bytes())
    assert blob[12:16] == b"fmt "
    blob[20:22] = struct.pack("<H", 0x0050)  # format tag: MPEG, which libsndfile cannot decode
    odd_format.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="could not be decoded"):
        untrained.transcribe_file(odd_format)

    with pytest.raises(FileNotFoundError):
        untrained.transcribe_file(tmp_path / "missing.flac")
    with pytest.raises(TypeError, match="expected floating-point samples"):
        untrained.transcribe_audio(np.zeros(100, np.int16), 16000)
    with pytest.raises(ValueError, match="with N ≥ 1"):
        untrained.transcribe_audio(np.zeros(0, np.float32), 16000)


# -- config -------------------------------------------------------------------------------------


def test_config_rejects_unknown_keys_wrong_types_and_ranges(tmp_path):
    with pytest.raises(ValueError, match="unknown key 'epoch'"):
        SpeechConfig.from_dict({"epoch": 3})
    with pytest.raises(TypeError, match="lstm_units must be int"):
        SpeechConfig(lstm_units="big")
    with pytest.raises(ValueError, match="dropout must be in"):
        SpeechConfig(dropout=1.5)
    with pytest.raises(ValueError, match="frontend must be one of"):
        SpeechConfig(frontend="rnn")
    path = tmp_path / "cfg.json"
    path.write_text('{"epochs": 3, "learning_rate": 0.002}')
    cfg = SpeechConfig.from_json(path)
    assert cfg.epochs == 3 and cfg.learning_rate == 0.002 and cfg.lstm_layers == 3


def test_batch_loader_shards_each_global_batch(monkeypatch):
    """Under torchrun each process gets its rank::world share of every global batch: the
    shares are disjoint and together make the batch; the number of steps is unchanged."""
    from lstmkit.apps.speech.features import BatchLoader, FeatureSet, LengthBatches
    from lstmkit.datasets.digits import VOCABULARY

    n = 10
    feats = [np.full((20 + i, 4), i, dtype=np.float16) for i in range(n)]
    data = FeatureSet([f"u{i}" for i in range(n)], ["one two"] * n, feats)

    def utterances(rank: int, world: int) -> list[set[int]]:
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", str(world))
        batches = LengthBatches([20 + i for i in range(n)], 4, shuffle=True, seed=3)
        loader = BatchLoader(data, VOCABULARY, batches, shard=True)
        return [{int(v) for v in x[:, 0, 0].tolist()} for (x, _), _ in loader]

    whole, first, second = utterances(0, 1), utterances(0, 2), utterances(1, 2)
    assert len(whole) == len(first) == len(second) == 3
    for w, a, b in zip(whole, first, second, strict=True):
        assert a and b and a | b == w
        assert not a & b or len(w) < 2
