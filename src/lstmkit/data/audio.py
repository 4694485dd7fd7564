"""Audio input and features for speech models: load, log-mel, smooth, normalise, SpecAugment.

Audio is a 1-D ``float32`` NumPy array of samples in [-1, 1] at a known sample rate (Hz).
Features are ``(T, F)`` arrays: ``T`` frames (one every ``hop_ms`` milliseconds), ``F`` mel
bands. Batched features for a model are torch tensors ``(B, T, F)``.

The signal processing is done by the libraries that own it: ``soundfile`` (libsndfile) reads
files, ``soxr`` (the SoX resampler library) changes the sample rate, and ``librosa`` computes
the mel spectrogram with its mel filterbank. This module chooses and documents the parameters.

Example:
    >>> import numpy as np
    >>> audio = np.zeros(16000, dtype=np.float32)  # one second at 16 kHz
    >>> log_mel_spectrogram(audio).shape  # 1 + 16000 // 160 frames, 80 mel bands
    (101, 80)
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch

__all__ = ["load_audio", "log_mel_spectrogram", "normalize_features", "spec_augment"]

LOG_FLOOR = 1e-10
"""Power floor applied before the logarithm: ``log(max(mel_power, LOG_FLOOR))`` (-23.03)."""

# libsndfile's header log says ``data : 32000 (should be 15978)`` when a WAV/AIFF file ends
# before its data chunk does. Streaming writers that do not know the length put a huge
# placeholder there instead; those files are not truncated, just unsized.
_SHORT_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_UNSIZED_PLACEHOLDER = 0x7FFF0000


def load_audio(
    path: str | os.PathLike[str], sample_rate: int = 16000, max_seconds: float | None = None
) -> np.ndarray:
    """Read an audio file as mono ``float32`` samples at ``sample_rate`` Hz.

    Any format libsndfile reads (WAV, FLAC, OGG, AIFF …), any sample rate, any number of
    channels, integer or floating-point samples. Channels are averaged to mono; the signal is
    resampled with soxr's high-quality filter when the file's rate differs.

    Args:
        path: the audio file.
        sample_rate: the rate of the returned samples, in Hz.
        max_seconds: refuse a longer file (its header's length, before decoding it);
            ``None``: no limit.

    Returns:
        ``(N,)`` float32 samples, nominally in [-1, 1] (integer PCM maps ``2**15`` to 1.0).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not audio, is truncated or corrupt, holds no samples, or
            lasts longer than ``max_seconds``.
        TypeError: ``path`` is not a path or ``sample_rate`` not an integer.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"load_audio: expected path to be a str or os.PathLike, got {path!r}")
    _check_positive_int("load_audio", "sample_rate", sample_rate)
    if max_seconds is not None and (
        isinstance(max_seconds, bool)
        or not isinstance(max_seconds, int | float)
        or not max_seconds > 0
        or max_seconds != max_seconds
    ):
        raise ValueError(f"load_audio: max_seconds must be a positive number, got {max_seconds!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_audio: no such file: {path}")
    try:
        with soundfile.SoundFile(path) as f:
            _check_not_truncated(path, f.extra_info)
            file_rate = f.samplerate
            if max_seconds is not None and f.frames / file_rate > max_seconds:
                raise ValueError(
                    f"load_audio: {path} lasts {f.frames / file_rate:.1f} s; at most "
                    f"{max_seconds:g} s are read (max_seconds)"
                )
            samples = f.read(dtype="float32", always_2d=True)  # (N, channels)
    except soundfile.LibsndfileError as e:
        raise ValueError(
            f"load_audio: expected a readable audio file (WAV, FLAC, OGG …), "
            f"but {path} could not be decoded: {e}"
        ) from e
    if samples.shape[0] == 0:
        raise ValueError(f"load_audio: expected at least one sample, but {path} has none")
    audio = samples.mean(axis=1, dtype=np.float32)  # (N,)
    if file_rate != sample_rate:
        audio = soxr.resample(audio, file_rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _check_not_truncated(path: Path, header_log: str) -> None:
    match = _SHORT_DATA_CHUNK.search(header_log)
    if match is None:
        return
    declared, present = int(match.group(1)), int(match.group(2))
    if present < declared < _UNSIZED_PLACEHOLDER:
        raise ValueError(
            f"load_audio: {path} is truncated: its header declares {declared} bytes of "
            f"audio data but the file holds only {present}"
        )


def log_mel_spectrogram(
    audio: np.ndarray,
    sample_rate: int = 16000,
    n_mels: int = 80,
    win_ms: float = 25.0,
    hop_ms: float = 10.0,
    n_fft: int | None = None,
) -> np.ndarray:
    """Log mel power spectrogram, one row per frame.

    Computed by ``librosa.feature.melspectrogram`` with a Hann window of
    ``win_length = round(win_ms * sample_rate / 1000)`` samples, hop of
    ``hop_length = round(hop_ms * sample_rate / 1000)`` samples, ``n_fft`` the next power of
    two ≥ ``win_length`` (512 at 16 kHz / 25 ms) unless given, frames centred on
    ``t * hop_length`` (zero padding at the ends), power 2, and librosa's default
    Slaney-normalised mel filterbank from 0 Hz to ``sample_rate / 2``. Then
    ``log(max(power, LOG_FLOOR))``.

    Args:
        audio: ``(N,)`` samples in [-1, 1].
        sample_rate: sample rate of ``audio`` in Hz.
        n_mels: number of mel bands ``F``.
        win_ms: analysis window length in milliseconds.
        hop_ms: frame step in milliseconds.
        n_fft: FFT size in samples; default the next power of two ≥ the window.

    Returns:
        ``(T, n_mels)`` float32 natural-log mel power, ``T = 1 + N // hop_length``.
    """
    import librosa  # imported here: a slow import that text-only users never need

    audio = _as_signal("log_mel_spectrogram", audio)
    for name, value in (("sample_rate", sample_rate), ("n_mels", n_mels)):
        _check_positive_int("log_mel_spectrogram", name, value)
    win_length = round(win_ms * sample_rate / 1000)
    hop_length = round(hop_ms * sample_rate / 1000)
    if win_length < 1 or hop_length < 1:
        raise ValueError(
            f"log_mel_spectrogram: expected win_ms and hop_ms of at least one sample at "
            f"{sample_rate} Hz, got win_ms={win_ms}, hop_ms={hop_ms}"
        )
    if n_fft is None:
        n_fft = 1 << (win_length - 1).bit_length()
    elif not isinstance(n_fft, int) or n_fft < win_length:
        raise ValueError(
            f"log_mel_spectrogram: expected n_fft ≥ the window ({win_length} samples), "
            f"got {n_fft!r}"
        )
    power = librosa.feature.melspectrogram(
        y=audio,
        sr=sample_rate,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window="hann",
        center=True,
        pad_mode="constant",
        power=2.0,
        n_mels=n_mels,
    )  # (F, T)
    return np.log(np.maximum(power, LOG_FLOOR)).T.astype(np.float32)  # (T, F)


def cepstral_smooth(log_mel: np.ndarray, n_keep: int) -> np.ndarray:
    """Smooth each frame's log-mel bands by keeping its first ``n_keep`` cepstral coefficients.

    ``c = DCT-II(x)`` over the ``F`` bands of a frame (orthonormal, ``scipy.fft.dct``),
    ``c_k = 0`` for ``k ≥ n_keep``, ``x' = DCT-III(c)`` (the inverse). The kept coefficients
    are those of MFCCs; projecting them back gives ``F`` bands again, a spectral envelope
    without the ripple of the voice's pitch harmonics (cosines of period ``< 2F / n_keep``
    bands are removed). ``n_keep ≥ F`` returns ``log_mel`` unchanged.

    Args:
        log_mel: ``(T, F)`` log-mel features.
        n_keep: coefficients kept per frame, ≥ 1.

    Returns:
        ``(T, F)`` smoothed features, same dtype.
    """
    import scipy.fft  # a dependency of librosa

    _check_positive_int("cepstral_smooth", "n_keep", n_keep)
    if not isinstance(log_mel, np.ndarray) or log_mel.ndim != 2:
        raise ValueError(
            f"cepstral_smooth: expected log_mel as a NumPy array of shape (T, F), "
            f"got {getattr(log_mel, 'shape', type(log_mel).__name__)}"
        )
    if n_keep >= log_mel.shape[1]:
        return log_mel
    ceps = scipy.fft.dct(log_mel, type=2, norm="ortho", axis=1)  # (T, F)
    ceps[:, n_keep:] = 0.0
    return scipy.fft.idct(ceps, type=2, norm="ortho", axis=1).astype(log_mel.dtype, copy=False)


def normalize_features(
    feats: np.ndarray | torch.Tensor, eps: float = 1e-5
) -> np.ndarray | torch.Tensor:
    """Per-utterance mean and variance normalisation of each feature dimension.

    ``(x - mean_t x) / sqrt(var_t x + eps)``, statistics over the ``T`` frames of this one
    utterance (population variance), so every feature has mean 0 and variance ≈ 1.

    Args:
        feats: ``(T, F)`` features, NumPy array or torch tensor (floating point).
        eps: added to the variance; keeps constant features finite (they become 0).

    Returns:
        ``(T, F)`` normalised features, same type, dtype and device as ``feats``.
    """
    if not isinstance(feats, np.ndarray | torch.Tensor):
        raise TypeError(
            f"normalize_features: expected feats to be a NumPy array or torch tensor, "
            f"got {type(feats).__name__}"
        )
    if feats.ndim != 2 or feats.shape[0] == 0:
        raise ValueError(
            f"normalize_features: expected feats of shape (T, F) with T ≥ 1, "
            f"got {tuple(feats.shape)}"
        )
    if isinstance(feats, torch.Tensor):
        mean = feats.mean(dim=0, keepdim=True)  # (1, F)
        var = feats.var(dim=0, unbiased=False, keepdim=True)  # (1, F)
        return (feats - mean) / torch.sqrt(var + eps)
    mean = feats.mean(axis=0, keepdims=True)  # (1, F)
    var = feats.var(axis=0, keepdims=True)  # (1, F)
    return ((feats - mean) / np.sqrt(var + eps)).astype(feats.dtype, copy=False)


def spec_augment(
    feats: torch.Tensor,
    freq_masks: int = 2,
    freq_width: int = 15,
    time_masks: int = 2,
    time_width: int = 40,
    max_time_ratio: float = 0.2,
    lengths: torch.Tensor | Sequence[int] | None = None,
    mask_value: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment frequency and time masking (Park et al. 2019), without time warping.

    For each utterance, independently: ``freq_masks`` times, a width ``f`` is drawn uniformly
    from ``{0, …, freq_width}`` and bands ``[f0, f0 + f)`` with ``f0`` uniform in
    ``{0, …, F - f}`` are set to ``mask_value``; ``time_masks`` times, a width ``t`` uniform
    in ``{0, …, min(time_width, floor(max_time_ratio * length))}`` and frames
    ``[t0, t0 + t)`` with ``t0`` uniform in ``{0, …, length - t}``. Masks may overlap. Frames
    at or beyond an utterance's length (padding) are never changed.

    Args:
        feats: ``(B, T, F)`` or ``(T, F)`` floating-point features (normalised: mean 0).
        freq_masks: number of frequency masks per utterance.
        freq_width: largest frequency-mask width, in bands.
        time_masks: number of time masks per utterance.
        time_width: largest time-mask width, in frames.
        max_time_ratio: a time mask covers at most this fraction of the utterance (Park's p).
        lengths: ``(B,)`` valid frames per utterance; default all ``T``.
        mask_value: value written into masked cells.
        generator: CPU random generator, for reproducible masks.

    Returns:
        A new tensor shaped like ``feats``; ``feats`` itself is not modified.
    """
    if not isinstance(feats, torch.Tensor) or not feats.is_floating_point():
        got = f"{feats.dtype} tensor" if isinstance(feats, torch.Tensor) else type(feats).__name__
        raise TypeError(f"spec_augment: expected feats to be a floating-point tensor, got {got}")
    if feats.ndim not in (2, 3):
        raise ValueError(
            f"spec_augment: expected feats of shape (B, T, F) or (T, F), got {tuple(feats.shape)}"
        )
    for name, value in (
        ("freq_masks", freq_masks),
        ("freq_width", freq_width),
        ("time_masks", time_masks),
        ("time_width", time_width),
    ):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"spec_augment: expected {name} ≥ 0 (int), got {value!r}")
    if not 0.0 <= max_time_ratio <= 1.0:
        raise ValueError(f"spec_augment: expected max_time_ratio in [0, 1], got {max_time_ratio}")
    batched = feats.ndim == 3
    x = feats if batched else feats.unsqueeze(0)  # (B, T, F)
    B, T, F = x.shape
    lengths = _lengths_tensor(lengths, B, T)  # (B,)

    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"spec_augment: expected a CPU generator, got one on {generator.device}")
    freq_limit = torch.full((B,), min(freq_width, F))  # (B,)
    freq = _band_mask(generator, freq_masks, freq_limit, torch.full((B,), F), F)  # (B, F)
    time_limit = torch.clamp(
        torch.floor(max_time_ratio * lengths.double()).long(), max=time_width
    )  # (B,)
    time = _band_mask(generator, time_masks, time_limit, lengths, T)  # (B, T)
    valid = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)

    mask = (freq[:, None, :] | time[:, :, None]) & valid[:, :, None]  # (B, T, F)
    out = x.masked_fill(mask.to(x.device), mask_value)
    return out if batched else out.squeeze(0)


def _band_mask(
    generator: torch.Generator | None,
    n_masks: int,
    max_width: torch.Tensor,
    extent: torch.Tensor,
    size: int,
) -> torch.Tensor:
    """``(B, size)`` union of ``n_masks`` random bands per row; widths in [0, max_width]."""
    B = extent.shape[0]

    def rand(shape: tuple[int, int]) -> torch.Tensor:
        return torch.rand(shape, generator=generator, dtype=torch.float64)

    widths = torch.floor(rand((B, n_masks)) * (max_width[:, None] + 1)).long()  # (B, M)
    starts = torch.floor(rand((B, n_masks)) * (extent[:, None] - widths + 1)).long()  # (B, M)
    pos = torch.arange(size)[None, None, :]  # (1, 1, size)
    inside = (pos >= starts[..., None]) & (pos < (starts + widths)[..., None])  # (B, M, size)
    return inside.any(dim=1)  # (B, size)


def _lengths_tensor(
    lengths: torch.Tensor | Sequence[int] | None, batch: int, frames: int
) -> torch.Tensor:
    if lengths is None:
        return torch.full((batch,), frames, dtype=torch.long)
    out = torch.as_tensor(lengths).to(device="cpu", dtype=torch.long).reshape(-1)
    if out.shape[0] != batch:
        raise ValueError(f"spec_augment: expected {batch} lengths, got {out.shape[0]}")
    if (out < 0).any() or (out > frames).any():
        raise ValueError(f"spec_augment: expected lengths in [0, {frames}], got {out.tolist()}")
    return out


def _as_signal(fn: str, audio: np.ndarray) -> np.ndarray:
    if not isinstance(audio, np.ndarray):
        raise TypeError(f"{fn}: expected audio to be a NumPy array, got {type(audio).__name__}")
    if audio.ndim != 1 or audio.shape[0] == 0:
        raise ValueError(f"{fn}: expected audio of shape (N,) with N ≥ 1, got {audio.shape}")
    return audio.astype(np.float32, copy=False)


def _check_positive_int(fn: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{fn}: expected {name} to be an int, got {value!r}")
    if value <= 0:
        raise ValueError(f"{fn}: expected {name} > 0, got {value}")
