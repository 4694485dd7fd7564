"""Audio loading, log-mel features, normalisation and SpecAugment."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile
import torch

from lstmkit.data.audio import (
    LOG_FLOOR,
    cepstral_smooth,
    load_audio,
    log_mel_spectrogram,
    normalize_features,
    spec_augment,
)


def sine(freq: float, sample_rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_frequency(audio: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / sample_rate)[np.argmax(spectrum)])


# ----------------------------------------------------------------------------- load_audio


def test_int16_wav_is_scaled_to_unit_range(tmp_path):
    samples = np.array([0, 1, -1, 16384, -32768, 32767] * 100, dtype=np.int16)
    soundfile.write(tmp_path / "a.wav", samples, 16000, subtype="PCM_16")
    audio = load_audio(tmp_path / "a.wav")
    assert audio.dtype == np.float32 and audio.shape == samples.shape
    np.testing.assert_array_equal(audio, samples / np.float32(32768))


@pytest.mark.parametrize(("name", "subtype"), [("f.wav", "FLOAT"), ("p.flac", "PCM_24")])
def test_float_wav_and_flac_read_back(tmp_path, name, subtype):
    audio = sine(300, 16000)
    soundfile.write(tmp_path / name, audio, 16000, subtype=subtype)
    np.testing.assert_allclose(load_audio(str(tmp_path / name)), audio, atol=2**-22)


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = sine(300, 16000), sine(700, 16000, amp=0.2)
    soundfile.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), (left + right) / 2, atol=1e-7)


@pytest.mark.parametrize("file_rate", [8000, 44100])
def test_other_rates_are_resampled_keeping_pitch_and_level(tmp_path, file_rate):
    soundfile.write(tmp_path / "r.wav", sine(440, file_rate), file_rate, subtype="FLOAT")
    audio = load_audio(tmp_path / "r.wav", sample_rate=16000)
    assert audio.shape == (16000,)
    assert peak_frequency(audio, 16000) == pytest.approx(440, abs=1.5)
    middle = audio[1000:-1000]  # away from the filter's edge effects
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_not_audio_is_a_value_error_naming_the_file(tmp_path):
    (tmp_path / "notes.wav").write_text("these are not samples " * 20)
    np.save(tmp_path / "array.npy", np.zeros(1000))
    for path in (tmp_path / "notes.wav", tmp_path / "array.npy"):
        with pytest.raises(ValueError, match=path.name):
            load_audio(path)


def test_truncated_files_are_value_errors(tmp_path):
    audio = sine(300, 16000)
    soundfile.write(tmp_path / "full.wav", audio, 16000, subtype="PCM_16")
    soundfile.write(tmp_path / "full.flac", audio, 16000)
    for name in ("full.wav", "full.flac"):
        data = (tmp_path / name).read_bytes()
        cut = tmp_path / f"cut-{name}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match=f"cut-{name}"):
            load_audio(cut)
    header_only = tmp_path / "header.wav"
    header_only.write_bytes((tmp_path / "full.wav").read_bytes()[:30])
    with pytest.raises(ValueError, match=r"header\.wav"):
        load_audio(header_only)


def test_zero_length_missing_and_bad_arguments(tmp_path):
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match="no"):
        load_audio(tmp_path / "empty.wav")
    with pytest.raises(FileNotFoundError):
        load_audio(tmp_path / "absent.wav")
    soundfile.write(tmp_path / "ok.wav", sine(300, 16000), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        load_audio(tmp_path / "ok.wav", sample_rate=0)
    with pytest.raises(TypeError, match="path"):
        load_audio(123)


# ----------------------------------------------------------------------------- features


@pytest.mark.parametrize(
    ("sample_rate", "win_ms", "hop_ms", "n_mels", "n_fft", "win_length", "hop_length"),
    [(16000, 25, 10, 80, 512, 400, 160), (8000, 32, 16, 40, 256, 256, 128)],
)
def test_log_mel_equals_librosa_with_documented_parameters(
    sample_rate, win_ms, hop_ms, n_mels, n_fft, win_length, hop_length
):
    audio = np.random.default_rng(0).normal(scale=0.1, size=sample_rate).astype(np.float32)
    feats = log_mel_spectrogram(audio, sample_rate, n_mels=n_mels, win_ms=win_ms, hop_ms=hop_ms)
    reference = librosa.feature.melspectrogram(
        y=audio,
        sr=sample_rate,
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        window="hann",
        center=True,
        pad_mode="constant",
        power=2.0,
        n_mels=n_mels,
    )
    assert feats.shape == (1 + sample_rate // hop_length, n_mels)
    assert feats.dtype == np.float32
    np.testing.assert_allclose(feats, np.log(np.maximum(reference, LOG_FLOOR)).T, rtol=1e-5)


def test_log_mel_puts_a_tone_in_its_mel_band_and_floors_silence():
    feats = log_mel_spectrogram(sine(1000, 16000))
    centres = librosa.mel_frequencies(n_mels=82, fmax=8000)[1:-1]  # band centres, Hz
    assert abs(int(np.argmax(feats.mean(axis=0))) - int(np.argmin(abs(centres - 1000)))) <= 1
    silence = log_mel_spectrogram(np.zeros(1600, np.float32))
    np.testing.assert_allclose(silence, np.log(LOG_FLOOR), rtol=1e-6)


def test_log_mel_rejects_bad_input():
    with pytest.raises(ValueError, match=r"audio of shape \(N,\)"):
        log_mel_spectrogram(np.zeros((2, 1600), np.float32))
    with pytest.raises(ValueError, match="N ≥ 1"):
        log_mel_spectrogram(np.zeros(0, np.float32))
    with pytest.raises(TypeError, match="audio"):
        log_mel_spectrogram([0.0] * 1600)
    with pytest.raises(ValueError, match="n_fft"):
        log_mel_spectrogram(np.zeros(1600, np.float32), n_fft=256)


def dct_basis(n_bands: int) -> np.ndarray:
    """``(F, F)`` orthonormal DCT-II basis from its formula: row k is cos(pi k (n + 1/2) / F)."""
    n = np.arange(n_bands)
    basis = np.cos(np.pi * np.outer(n, n + 0.5) / n_bands)
    return basis / np.linalg.norm(basis, axis=1, keepdims=True)


def test_cepstral_smooth_is_the_projection_on_the_first_cosines():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(7, 40)).astype(np.float32)
    for n_keep in (1, 5, 16):
        kept = dct_basis(40)[:n_keep]  # (K, F)
        expected = feats @ kept.T @ kept  # least-squares fit by the K lowest cosines
        out = cepstral_smooth(feats, n_keep)
        assert out.dtype == np.float32 and out.shape == feats.shape
        np.testing.assert_allclose(out, expected, atol=1e-5)
    np.testing.assert_array_equal(cepstral_smooth(feats, 40), feats)
    np.testing.assert_array_equal(cepstral_smooth(feats, 99), feats)


def test_cepstral_smooth_removes_a_harmonic_ripple_and_keeps_the_envelope():
    bands = np.arange(80)
    envelope = np.exp(-(((bands - 25) / 8.0) ** 2)) + 0.5 * np.exp(-(((bands - 55) / 10.0) ** 2))
    ripple = 0.3 * np.cos(2 * np.pi * bands / 5.0)  # harmonics every 5 bands: k = 32
    smooth = cepstral_smooth(np.tile(envelope, (3, 1)).astype(np.float32), 16)
    assert np.abs(smooth - envelope).max() < 0.005  # the formants stay
    out = cepstral_smooth(np.tile(envelope + ripple, (3, 1)).astype(np.float32), 16)
    assert np.abs(out - envelope).max() < 0.1  # ripple of amplitude 0.3: a little leaks
    with pytest.raises(ValueError, match="n_keep"):
        cepstral_smooth(out, 0)
    with pytest.raises(ValueError, match=r"\(T, F\)"):
        cepstral_smooth(out[0], 4)


def test_normalize_features_zero_mean_unit_variance_per_dimension():
    rng = np.random.default_rng(1)
    feats = (rng.normal(size=(200, 6)) * [1, 5, 0.1, 3, 2, 0] + [4, -2, 9, 0, 1, 7]).astype(
        np.float32
    )
    out = normalize_features(feats)
    assert out.dtype == np.float32 and out.shape == feats.shape
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out[:, :5].std(axis=0), 1, atol=1e-3)
    np.testing.assert_array_equal(out[:, 5], 0)  # a constant feature becomes 0, not NaN
    torch_out = normalize_features(torch.from_numpy(feats))
    np.testing.assert_allclose(torch_out.numpy(), out, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(T, F\)"):
        normalize_features(feats[:, 0])
    with pytest.raises(TypeError, match="feats"):
        normalize_features(feats.tolist())


# ----------------------------------------------------------------------------- SpecAugment


def masked_runs(flags: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D boolean array."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


def test_frequency_masks_cover_whole_bands_of_the_drawn_widths():
    ones = torch.ones(400, 50, 80)
    out = spec_augment(ones, freq_masks=1, freq_width=15, time_masks=0, generator=_gen(0))
    widths = []
    for b in range(len(out)):
        band_masked = (out[b] == 0).all(dim=0).numpy()  # (F,)
        assert ((out[b] == 0).any(dim=0).numpy() == band_masked).all()  # whole bands only
        runs = masked_runs(band_masked)
        assert len(runs) <= 1
        widths.append(runs[0] if runs else 0)
    assert set(widths) == set(range(16))  # every width 0..15 occurs, never more


def test_two_frequency_masks_stay_within_two_bands_of_the_limit():
    out = spec_augment(torch.ones(200, 20, 80), freq_masks=2, freq_width=15, time_masks=0)
    for b in range(len(out)):
        runs = masked_runs((out[b] == 0).all(dim=0).numpy())
        assert len(runs) <= 2 and sum(runs) <= 30
        assert all(run <= 15 for run in runs) or len(runs) == 1  # overlapping masks merge


def test_time_masks_respect_lengths_and_the_ratio_limit():
    lengths = torch.tensor([100, 60, 25, 0])
    feats = torch.ones(4, 100, 10)
    for seed in range(50):
        out = spec_augment(
            feats, freq_masks=2, freq_width=4, time_masks=2, time_width=30,
            max_time_ratio=0.2, lengths=lengths, mask_value=-5.0, generator=_gen(seed),
        )  # fmt: skip
        for b, n in enumerate(lengths.tolist()):
            assert (out[b, n:] == 1).all()  # padding untouched, by time and frequency masks
            frames = (out[b, :n] == -5).all(dim=1).numpy()
            assert sum(masked_runs(frames)) <= 2 * min(30, int(0.2 * n))
    assert torch.equal(feats, torch.ones(4, 100, 10))  # the input is not modified


def test_spec_augment_2d_input_is_reproducible_with_a_generator():
    feats = torch.randn(70, 40)
    a = spec_augment(feats, generator=_gen(7))
    b = spec_augment(feats, generator=_gen(7))
    assert a.shape == (70, 40) and torch.equal(a, b)
    assert not torch.equal(a, spec_augment(feats, generator=_gen(8)))
    assert torch.equal(spec_augment(feats, freq_masks=0, time_masks=0), feats)


def test_spec_augment_rejects_bad_input():
    with pytest.raises(TypeError, match="floating-point"):
        spec_augment(torch.ones(2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        spec_augment(torch.ones(2, 3, 4, 5))
    with pytest.raises(ValueError, match="lengths"):
        spec_augment(torch.ones(2, 10, 4), lengths=[10, 11])
    with pytest.raises(ValueError, match="2 lengths"):
        spec_augment(torch.ones(2, 10, 4), lengths=[10])
    with pytest.raises(ValueError, match="freq_width"):
        spec_augment(torch.ones(10, 4), freq_width=-1)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
