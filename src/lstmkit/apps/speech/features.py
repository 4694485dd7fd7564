"""Features of the digits corpus: log-mel filterbanks, cached on disk, and batches for training.

One utterance's features (:func:`features_of_audio`): the audio resampled to
``spec.sample_rate`` (soxr), log-mel power with librosa (``spec.n_mels`` bands, ``spec.win_ms``
windows every ``spec.hop_ms``), optionally smoothed across bands (``spec.cepstra`` cepstral
coefficients kept per frame), normalised per utterance to mean 0 and variance 1 per band —
all by :mod:`lstmkit.data.audio`. Shapes: ``(T, F)`` per utterance, ``(B, T, F)`` batched.

The cache (:func:`load_features`) holds one file per split and feature settings,
``<cache_dir>/<split>-<key>.npz`` with every utterance's frames (float16, concatenated), their
offsets, ids and transcripts. ``key`` hashes the feature settings and the utterances (file names
carry a hash of their audio's recipe), so other data or settings never read a stale file. The
file is written under a temporary name and renamed into place only when complete: an
interrupted run leaves no cache file (and no temporary one).

Batches (:class:`LengthBatches`, :func:`collate`): utterances grouped by length after the
model's front end, so that little of a batch is padding. ``bucket="sorted"`` cuts the
length-sorted list (ties in random order) into batches of ``batch_size``; ``"exact"`` puts only
utterances of equal output length together (their masks are all true after the front end),
splitting each length's group into nearly equal batches of at most ``batch_size``. The batch
order is shuffled every epoch from ``seed``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import track

from lstmkit.apps.parallel import process_share
from lstmkit.data.audio import (
    cepstral_smooth,
    load_audio,
    log_mel_spectrogram,
    normalize_features,
    spec_augment,
)
from lstmkit.datasets.digits import Utterance
from lstmkit.utils import atomic_write

_CACHE_VERSION = 1  # part of every cache key: bump when the computation changes


@dataclass(frozen=True)
class FeatureSpec:
    """How audio becomes features; saved with a model so that ``transcribe`` matches training."""

    sample_rate: int = 8000
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    cepstra: int = 0  # cepstral smoothing: coefficients kept per frame; 0 = none

    def to_dict(self) -> dict[str, float]:
        return {
            "sample_rate": self.sample_rate,
            "n_mels": self.n_mels,
            "win_ms": self.win_ms,
            "hop_ms": self.hop_ms,
            "cepstra": self.cepstra,
        }


def features_of_audio(audio: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """``(T, n_mels)`` float32 normalised log-mel features of ``audio`` at ``spec.sample_rate``.

    Raises:
        ValueError: empty audio (no samples).
    """
    if audio.ndim != 1 or audio.shape[0] == 0:
        raise ValueError(f"expected audio with at least one sample, got shape {audio.shape}")
    feats = log_mel_spectrogram(
        audio, spec.sample_rate, n_mels=spec.n_mels, win_ms=spec.win_ms, hop_ms=spec.hop_ms
    )  # (T, F)
    if spec.cepstra:
        feats = cepstral_smooth(feats, spec.cepstra)
    return normalize_features(feats)


def features_of_file(path: str | os.PathLike[str], spec: FeatureSpec) -> np.ndarray:
    """Features of an audio file of any rate, mono or multichannel (see :func:`load_audio`).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not audio, truncated, or no samples.
    """
    return features_of_audio(load_audio(path, spec.sample_rate), spec)


# --------------------------------------------------------------------------- the cache


@dataclass
class FeatureSet:
    """The features of one split: ``feats[i]`` is ``(T_i, F)`` float16, in manifest order."""

    ids: list[str]
    transcripts: list[str]
    feats: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: Sequence[int]) -> FeatureSet:
        return FeatureSet(
            [self.ids[i] for i in indices],
            [self.transcripts[i] for i in indices],
            [self.feats[i] for i in indices],
        )


def cache_key(utterances: Sequence[Utterance], spec: FeatureSpec) -> str:
    """A hash of the feature settings and of which audio files, in which order, are featurised."""
    content = {
        "v": _CACHE_VERSION,
        "spec": spec.to_dict(),
        "utterances": [[u.id, u.path.name, u.transcript] for u in utterances],
    }
    return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def load_features(
    utterances: Sequence[Utterance],
    spec: FeatureSpec,
    cache_dir: str | os.PathLike[str] | None,
    split: str = "data",
    progress: bool = True,
    compute: Callable[[Path, FeatureSpec], np.ndarray] = features_of_file,
) -> FeatureSet:
    """The features of ``utterances``, from the cache when present, else computed and cached.

    Args:
        utterances: from :func:`lstmkit.datasets.digits.load_digits`.
        spec: feature settings.
        cache_dir: folder of cache files; ``None`` computes without caching.
        split: name used in the cache file's name.
        progress: show a progress bar while computing.
        compute: ``(path, spec) -> (T, F)`` features (tests substitute it).
    """
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{split}-{cache_key(utterances, spec)}.npz"
        if path.is_file():
            cached = _read_cache(path)
            if cached is not None and cached.ids == [u.id for u in utterances]:
                return cached
    feats = [
        compute(u.path, spec).astype(np.float16)
        for u in track(utterances, description=f"features {split}", disable=not progress)
    ]
    result = FeatureSet([u.id for u in utterances], [u.transcript for u in utterances], feats)
    if path is not None:
        _write_cache(path, result)
    return result


def _write_cache(path: Path, data: FeatureSet) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file, renamed when complete."""
    lengths = np.array([f.shape[0] for f in data.feats], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    frames = np.concatenate(data.feats) if data.feats else np.zeros((0, 0), np.float16)
    with atomic_write(path) as fh:
        np.savez(
            fh,
            frames=frames,
            offsets=offsets,
            ids=np.array(data.ids, dtype=str),
            transcripts=np.array(data.transcripts, dtype=str),
        )


def _read_cache(path: Path) -> FeatureSet | None:
    """The cached features, or ``None`` when the file is unreadable (then it is recomputed)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            frames, offsets = z["frames"], z["offsets"]
            ids, transcripts = z["ids"].tolist(), z["transcripts"].tolist()
    except (OSError, ValueError, KeyError, EOFError):
        return None
    feats = [frames[a:b] for a, b in itertools.pairwise(offsets)]
    return FeatureSet(list(ids), list(transcripts), feats)


# --------------------------------------------------------------------------- batches


def encode_transcript(text: str, vocabulary: Sequence[str], unit: str = "word") -> list[int]:
    """Class ids of a transcript: its words (``unit="word"``, the digits) or its characters
    (``"char"``, the user's data, the space included); symbol ``k`` of ``vocabulary`` is class
    ``k + 1`` (class 0 is CTC's blank).

    Raises:
        ValueError: a word (or character) outside the vocabulary.
    """
    index = {w: k + 1 for k, w in enumerate(vocabulary)}
    symbols = list(text) if unit == "char" else text.split()
    try:
        return [index[w] for w in symbols]
    except KeyError as e:
        what = "character" if unit == "char" else "word"
        raise ValueError(
            f"transcript {text!r} has the {what} {e.args[0]!r}, not in the vocabulary "
            f"{''.join(vocabulary) if unit == 'char' else list(vocabulary)}"
        ) from None


def decode_labels(labels: Sequence[int], vocabulary: Sequence[str], unit: str = "word") -> str:
    """The words (or characters, spaces normalised) of class ids; blank and unknown ids are
    skipped."""
    symbols = [vocabulary[c - 1] for c in labels if 1 <= c <= len(vocabulary)]
    return " ".join("".join(symbols).split()) if unit == "char" else " ".join(symbols)


def pad_batch(
    feats: Sequence[np.ndarray | torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, T, F)`` float32 features padded with zeros after each utterance, and ``(B,)``
    lengths."""
    lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
    out = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
    for b, f in enumerate(feats):
        out[b, : f.shape[0]] = torch.as_tensor(np.asarray(f, dtype=np.float32))
    return out, lengths


def collate(
    feats: Sequence[np.ndarray],
    labels: Sequence[Sequence[int]],
    augment: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """One training batch: ``((features (B, T, F), lengths (B,)), targets (B, L))``.

    Targets are class ids padded with ``-1`` (what :class:`~.model.CTCLoss` expects).
    """
    x, lengths = pad_batch(feats)
    if augment is not None:
        x = augment(x, lengths)
    targets = torch.full((len(labels), max(len(t) for t in labels)), -1, dtype=torch.long)
    for b, t in enumerate(labels):
        targets[b, : len(t)] = torch.tensor(t, dtype=torch.long)
    return (x, lengths), targets


class LengthBatches:
    """Batches of utterance indices grouped by length (see the module docstring); iterable
    once per epoch, each time in a new order drawn from ``seed``.

    Args:
        lengths: each utterance's length after the model's front end.
        batch_size: most utterances per batch.
        bucket: ``"exact"`` or ``"sorted"``.
        shuffle: shuffle the batch order (and, within equal lengths, the utterances) per epoch.
        seed: seed of the shuffling.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        bucket: str = "sorted",
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if bucket not in ("exact", "sorted"):
            raise ValueError(f"LengthBatches: bucket must be 'exact' or 'sorted', got {bucket!r}")
        self.lengths = np.asarray(lengths)
        self.batch_size, self.bucket, self.shuffle, self.seed = batch_size, bucket, shuffle, seed
        self.epoch = 0
        self._batches = self._make(np.random.default_rng([seed, 0]))

    def _make(self, rng: np.random.Generator) -> list[list[int]]:
        jitter = rng.random(len(self.lengths)) if self.shuffle else np.zeros(len(self.lengths))
        order = np.lexsort((jitter, self.lengths))  # by length, ties in random order
        if self.bucket == "sorted":
            return [
                order[i : i + self.batch_size].tolist()
                for i in range(0, len(order), self.batch_size)
            ]
        batches = []
        sorted_lengths = self.lengths[order]
        starts = np.flatnonzero(np.r_[True, sorted_lengths[1:] != sorted_lengths[:-1]])
        for lo, hi in zip(starts, np.r_[starts[1:], len(order)]):
            group = order[lo:hi]
            n = math.ceil(len(group) / self.batch_size)
            batches += [part.tolist() for part in np.array_split(group, n)]
        return batches

    def __len__(self) -> int:
        return len(self._batches)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch + 1])
            self._batches = self._make(rng)
            batches = [self._batches[i] for i in rng.permutation(len(self._batches))]
        else:
            batches = self._batches
        self.epoch += 1
        return iter(batches)


class BatchLoader:
    """Training or evaluation batches for ``Model.fit`` (an iterable of
    ``((features, lengths), targets)``; ``len`` is the number of batches per epoch).
    ``perturb`` changes each utterance's frames before padding (speed perturbation),
    ``augment`` the padded batch (SpecAugment). With ``shard`` under torchrun, each process
    takes its ``rank::world_size`` share of every global batch (a batch smaller than the
    number of processes is repeated to fill them, as ``DistributedSampler`` pads)."""

    def __init__(
        self,
        data: FeatureSet,
        vocabulary: Sequence[str],
        batches: LengthBatches,
        augment: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        perturb: Callable[[np.ndarray], np.ndarray] | None = None,
        shard: bool = False,
        unit: str = "word",
    ) -> None:
        self.data, self.batches, self.augment, self.perturb = data, batches, augment, perturb
        self.shard = shard
        self.labels = [encode_transcript(t, vocabulary, unit) for t in data.transcripts]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]]:
        rank, world = process_share() if self.shard else (0, 1)
        for indices in self.batches:
            if world > 1:  # this process's share of the global batch (padded as DDP needs)
                indices = list(indices)
                indices = (indices * world)[: max(len(indices), world)][rank::world]
            feats = [self.data.feats[i] for i in indices]
            if self.perturb is not None:
                feats = [self.perturb(f) for f in feats]
            yield collate(
                feats,
                [self.labels[i] for i in indices],
                self.augment,
            )


def _resample_axis(feats: np.ndarray, positions: np.ndarray, axis: int) -> np.ndarray:
    """``feats`` (float32) read at fractional ``positions`` along ``axis`` (0 time, 1 bands) by
    linear interpolation between the two neighbouring rows or columns."""
    last = feats.shape[axis] - 1
    lo = np.floor(positions).astype(np.int64)
    hi = np.minimum(lo + 1, last)
    w = (positions - lo).astype(np.float32)
    x = feats.astype(np.float32)
    if axis == 0:
        return (1 - w[:, None]) * x[lo] + w[:, None] * x[hi]
    return (1 - w[None, :]) * x[:, lo] + w[None, :] * x[:, hi]


def time_stretch(feats: np.ndarray, factor: float) -> np.ndarray:
    """``(T, F)`` frames resampled to ``max(1, round(T · factor))`` frames by linear
    interpolation along time: ``factor > 1`` is slower speech, ``< 1`` faster (speed
    perturbation of the features; the spectrum of each frame is unchanged)."""
    steps = feats.shape[0]
    new = max(1, round(steps * factor))
    return _resample_axis(feats, np.linspace(0.0, steps - 1, new), axis=0)


def mel_warp(feats: np.ndarray, factor: float) -> np.ndarray:
    """``(T, F)`` log-mel frames warped along the band axis: band ``k`` takes the value at band
    ``k / factor`` (linear interpolation, clipped to the top band). ``factor > 1`` moves the
    formants up, as a shorter vocal tract does; ``< 1`` moves them down. Vocal tract length
    perturbation (Jaitly & Hinton 2013), applied on the mel scale instead of in Hz."""
    bands = feats.shape[1]
    positions = np.minimum(np.arange(bands, dtype=np.float64) / factor, bands - 1)
    return _resample_axis(feats, positions, axis=1)


def _random_perturber(
    change: Callable[[np.ndarray, float], np.ndarray],
    prob: float,
    low: float,
    high: float,
    rng: np.random.Generator,
) -> Callable[[np.ndarray], np.ndarray]:
    def perturb(feats: np.ndarray) -> np.ndarray:
        if rng.random() >= prob:
            return feats
        return change(feats, float(rng.uniform(low, high)))

    return perturb


def speed_perturber(
    prob: float, low: float, high: float, seed: int
) -> Callable[[np.ndarray], np.ndarray]:
    """``feats -> feats``: with probability ``prob``, :func:`time_stretch` by a factor drawn
    uniformly from ``[low, high]`` (a generator seeded once)."""
    return _random_perturber(time_stretch, prob, low, high, np.random.default_rng([seed, 7]))


def warp_perturber(
    prob: float, low: float, high: float, seed: int
) -> Callable[[np.ndarray], np.ndarray]:
    """``feats -> feats``: with probability ``prob``, :func:`mel_warp` by a factor drawn
    uniformly from ``[low, high]`` (a generator seeded once)."""
    return _random_perturber(mel_warp, prob, low, high, np.random.default_rng([seed, 11]))


def spec_augmenter(
    freq_masks: int, freq_width: int, time_masks: int, time_width: int, seed: int
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(x (B, T, F), lengths) -> x`` with SpecAugment masks from a generator seeded once."""
    generator = torch.Generator().manual_seed(seed)

    def augment(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return spec_augment(
            x,
            freq_masks=freq_masks,
            freq_width=freq_width,
            time_masks=time_masks,
            time_width=time_width,
            lengths=lengths,
            generator=generator,
        )

    return augment
