"""Using a trained recogniser: transcribe audio, and score transcripts (WER, CER, SER).

A :class:`Recognizer` is a :class:`~.model.SpeechRecognizer` with what it needs around it,
saved in the same model file (``model.assets["speech"]``): the vocabulary, the feature settings
and the training configuration. Decoding is CTC greedy (best path) or prefix beam search
(:mod:`.decoding`); scores are corpus-level word, character and sentence error rates by
``jiwer`` (:func:`~.decoding.error_rates`).

Silence: audio whose loudest 25 ms frame is below ``SILENCE_DBFS`` (−60 dBFS RMS) is
transcribed as ``""`` without running the network (the corpus's speech is at −32…−20 dBFS, and
per-utterance normalisation would otherwise blow a silent signal's noise up to full scale).

Example (needs a trained model file)::

    >>> rec = Recognizer.load("runs/speech/model.lstmkit")   # doctest: +SKIP
    >>> rec.transcribe_file("one_two.flac")                  # doctest: +SKIP
    'one two'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmkit.apps.assets import AssetReader
from lstmkit.apps.speech.decoding import ctc_greedy_decode, ctc_prefix_beam_search, error_rates
from lstmkit.apps.speech.features import (
    FeatureSet,
    FeatureSpec,
    LengthBatches,
    decode_labels,
    features_of_audio,
    load_features,
    pad_batch,
)
from lstmkit.apps.speech.model import SpeechRecognizer
from lstmkit.data.audio import load_audio
from lstmkit.datasets.digits import load_digits
from lstmkit.layers.base import get_mask
from lstmkit.models import ModelFileError, load_model

SILENCE_DBFS = -60.0
MAX_SECONDS = 120.0
"""The longest audio transcribed by default (the CLI's ``--max-seconds``, the server's limit):
the prefix beam search's time and memory grow with the length (an hour took 60 s and 1.3 GB)."""
ASSET_KEY = "speech"
UNITS = ("word", "char")
ASSET_FORMAT = 1
DECODERS = ("greedy", "beam")


def is_silent(audio: np.ndarray, sample_rate: int, threshold_dbfs: float = SILENCE_DBFS) -> bool:
    """Whether no 25 ms frame of ``audio`` reaches ``threshold_dbfs`` (RMS re full scale 1.0)."""
    frame = max(1, round(0.025 * sample_rate))
    n = len(audio) // frame * frame
    frames = audio[:n].reshape(-1, frame) if n else audio.reshape(1, -1)
    loudest = float(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)).max())
    return loudest < 10 ** (threshold_dbfs / 20)


@dataclass
class Recognizer:
    """A speech model with its vocabulary and feature settings.

    Attributes:
        model: the network.
        vocabulary: words of classes ``1 … C − 1`` (class 0 is the blank).
        spec: how audio becomes features.
        config: the training configuration (a dict), for the record.
    """

    model: SpeechRecognizer
    vocabulary: tuple[str, ...]
    spec: FeatureSpec
    config: dict[str, Any] = field(default_factory=dict)
    unit: str = "word"  # "word": the digits' words; "char": the user's data, letter by letter

    # -- files -------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Recognizer:
        """Load a model file written by :meth:`save` (``lstmkit speech train``).

        Raises:
            FileNotFoundError: no such file.
            ValueError: not an lstmkit model file, or not a speech model.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no model file at {path}; train one with `lstmkit speech train`"
            )
        model = load_model(path, compile=False)
        assets = model.assets.get(ASSET_KEY) if isinstance(model.assets, dict) else None
        if not isinstance(model, SpeechRecognizer) or not isinstance(assets, dict):
            raise ModelFileError(
                f"{path} is an lstmkit model file but not a speech model "
                f"(written by `lstmkit speech train`)"
            )
        reader = AssetReader(path, "speech", assets)
        reader.equal("format", ASSET_FORMAT, "speech assets format")
        vocabulary = tuple(reader.strings("vocabulary"))
        features = reader.mapping("features")
        unknown = sorted(set(features) - {f.name for f in dataclasses.fields(FeatureSpec)})
        if unknown:
            raise ModelFileError(f"{reader.where}: features has unknown keys {unknown}")
        spec = FeatureSpec(
            sample_rate=reader.positive_int(features, "sample_rate", "features"),
            n_mels=reader.positive_int(features, "n_mels", "features"),
            win_ms=reader.positive_number(features, "win_ms", "features"),
            hop_ms=reader.positive_number(features, "hop_ms", "features"),
            cepstra=reader.positive_int(features, "cepstra", "features", minimum=0),
        )
        if getattr(model, "n_mels", spec.n_mels) != spec.n_mels:
            raise ModelFileError(
                f"{reader.where}: features.n_mels is {spec.n_mels} but the model takes "
                f"{model.n_mels} mel bands"
            )
        config = reader.mapping("config", required=False)
        unit = reader.get("unit", str, required=False) or "word"
        if unit not in UNITS:
            raise ModelFileError(
                f"{reader.where}: 'unit' must be one of {', '.join(UNITS)}, got {unit!r}"
            )
        classes = getattr(model, "n_classes", None)
        if isinstance(classes, int) and classes != len(vocabulary) + 1:
            raise ModelFileError(
                f"{reader.where}: the vocabulary has {len(vocabulary)} symbols but the model "
                f"outputs {classes} classes (expected the symbols plus the CTC blank)"
            )
        model.eval()
        return cls(model, vocabulary, spec, dict(config), unit)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model, vocabulary, feature settings and config to one file, atomically.

        The file holds no optimiser or compile settings: it is for inference, and loads with
        ``lstmkit.models.load_model`` anywhere (the CTC loss is not a built-in loss name).
        """
        clean = SpeechRecognizer.from_config(self.model.get_config())
        clean.load_state_dict(self.model.state_dict())
        clean.assets = {
            "app": "lstmkit.speech",
            ASSET_KEY: {
                "format": ASSET_FORMAT,
                "vocabulary": list(self.vocabulary),
                "unit": self.unit,
                "features": self.spec.to_dict(),
                "config": self.config,
            },
        }
        clean.save(path)

    # -- network outputs ---------------------------------------------------------------------

    @torch.no_grad()
    def log_probs(
        self, feats: Sequence[np.ndarray | torch.Tensor], batch_size: int = 32
    ) -> list[np.ndarray]:
        """``(T'_i, C)`` log-probabilities per utterance of ``(T_i, F)`` features, in order.

        Utterances are batched in length order (little padding); masks keep padding out of
        the results, which do not depend on the batching beyond rounding.
        """
        model = self.model
        was_training = model.training
        model.eval()
        try:
            lengths = model.output_lengths(torch.tensor([f.shape[0] for f in feats]))
            out: list[np.ndarray | None] = [None] * len(feats)
            for indices in LengthBatches(lengths.tolist(), batch_size, "sorted", shuffle=False):
                x, n = pad_batch([feats[i] for i in indices])
                y = model([x, n], training=False)  # (B, T', C)
                valid = get_mask(y).sum(1).tolist()
                for row, i in enumerate(indices):
                    out[i] = y[row, : valid[row]].cpu().numpy()
        finally:
            model.train(was_training)
        return out  # type: ignore[return-value]

    def decode(self, log_probs: np.ndarray, decoder: str = "greedy", beam_size: int = 8) -> str:
        """The transcript of one utterance's ``(T', C)`` log-probabilities."""
        if decoder == "greedy":
            labels = ctc_greedy_decode(torch.from_numpy(log_probs))[0]
        elif decoder == "beam":
            labels = ctc_prefix_beam_search(torch.from_numpy(log_probs), beam_size)[0][0]
        else:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        return decode_labels(labels, self.vocabulary, self.unit)

    # -- transcription -----------------------------------------------------------------------

    def transcribe_audio(
        self, audio: np.ndarray, sample_rate: int, decoder: str = "greedy", beam_size: int = 8
    ) -> str:
        """Transcript of floating-point samples ``(N,)`` or ``(N, channels)`` at ``sample_rate``.

        Raises:
            TypeError: integer (or other non-float) samples.
            ValueError: no samples, or a shape other than ``(N,)`` / ``(N, channels)``.
            FloatingPointError: the network's outputs are not finite (diverged weights).
        """
        audio = np.asarray(audio)
        if not np.issubdtype(audio.dtype, np.floating):
            raise TypeError(
                f"transcribe_audio: expected floating-point samples in [-1, 1], got {audio.dtype} "
                f"(scale integer PCM by its full scale, e.g. int16 / 32768)"
            )
        if audio.ndim == 2:
            audio = audio.mean(axis=1)
        if audio.ndim != 1 or audio.shape[0] == 0:
            raise ValueError(
                f"transcribe_audio: expected samples of shape (N,) or (N, channels) with N ≥ 1, "
                f"got {audio.shape}"
            )
        if sample_rate != self.spec.sample_rate:
            import soxr

            audio = soxr.resample(audio.astype(np.float32), sample_rate, self.spec.sample_rate)
        audio = audio.astype(np.float32)
        if is_silent(audio, self.spec.sample_rate):
            return ""
        feats = features_of_audio(audio, self.spec)
        log_probs = self.log_probs([feats])[0]
        if not np.isfinite(log_probs).all():
            raise FloatingPointError(
                f"the speech model computed {int((~np.isfinite(log_probs)).sum())} non-finite "
                f"log-probabilities (NaN or infinity) of {log_probs.size} for this audio; its "
                f"weights overflow or have diverged, so no transcript is given"
            )
        return self.decode(log_probs, decoder, beam_size)

    def transcribe_file(
        self,
        path: str | os.PathLike[str],
        decoder: str = "greedy",
        beam_size: int = 8,
        max_seconds: float | None = MAX_SECONDS,
    ) -> str:
        """Transcript of an audio file: WAV, FLAC (any format libsndfile reads), any sample
        rate, mono or multichannel (channels are averaged). Files longer than ``max_seconds``
        (default: the server's limit, 120 s; ``None``: no limit) are refused before decoding.

        Raises:
            FileNotFoundError: no such file.
            ValueError: not audio, truncated or corrupt, no samples, or an unreadable sample
                format.
        """
        audio = load_audio(path, self.spec.sample_rate, max_seconds=max_seconds)
        return self.transcribe_audio(audio, self.spec.sample_rate, decoder, beam_size)

    # -- scoring -----------------------------------------------------------------------------

    def evaluate(
        self,
        data: FeatureSet,
        decoders: Sequence[str] = DECODERS,
        beam_size: int = 8,
        batch_size: int = 32,
        groups: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Error rates of the transcripts of ``data`` against its references.

        Args:
            groups: a label per utterance (e.g. the synthesiser that spoke it); the error
                rates are then also given per label.

        Returns:
            ``{"n": utterances, "<decoder>": {"wer", "cer", "ser"}, "errors": {"<decoder>":
            [(id, reference, hypothesis), …]}}`` for each decoder; ``errors`` lists the
            utterances transcribed wrongly. With ``groups``, also ``"groups": {"<decoder>":
            {label: {"n", "wer", "cer", "ser"}}}``.
        """
        if groups is not None and len(groups) != len(data):
            raise ValueError(
                f"evaluate: expected one group label per utterance ({len(data)}), got {len(groups)}"
            )
        members: dict[str, list[int]] = {}
        for i, label in enumerate(groups or ()):
            members.setdefault(label, []).append(i)
        outputs = self.log_probs(data.feats, batch_size)
        result: dict[str, Any] = {"n": len(data), "errors": {}}
        if groups is not None:
            result["groups"] = {}
        for decoder in decoders:
            hyps = [self.decode(lp, decoder, beam_size) for lp in outputs]
            result[decoder] = error_rates(data.transcripts, hyps)
            if groups is not None:
                result["groups"][decoder] = {
                    label: {
                        "n": len(rows),
                        **error_rates([data.transcripts[i] for i in rows], [hyps[i] for i in rows]),
                    }
                    for label, rows in sorted(members.items())
                }
            result["errors"][decoder] = [
                (i, r, h)
                for i, r, h in zip(data.ids, data.transcripts, hyps)
                if r.split() != h.split()
            ]
        return result

    def evaluate_split(
        self,
        manifest_or_dir: str | os.PathLike[str],
        split: str,
        cache_dir: str | os.PathLike[str] | None,
        beam_size: int = 8,
        progress: bool = False,
    ) -> dict[str, Any]:
        """:meth:`evaluate` on one split of a digits corpus (features from the cache in
        ``cache_dir``, computed and cached if missing), with the error rates per synthesiser:
        ``groups`` are the utterances' engines (``espeak-ng``, ``flite``, ``asterisk`` …)."""
        utterances = load_digits(manifest_or_dir, split)
        feats = load_features(utterances, self.spec, cache_dir, split, progress)
        engines = [u.params["engine"] for u in utterances]
        return self.evaluate(feats, beam_size=beam_size, groups=engines)


def evaluate_manifest(
    recognizer: Recognizer,
    path: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    beam_size: int = 8,
    audio_column: str | None = None,
    text_column: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """:meth:`Recognizer.evaluate` on the recordings of a manifest or folder of the user's
    (:mod:`.manifest`; columns default to the training run's)."""
    from lstmkit.apps.speech.manifest import read_manifest

    cfg = recognizer.config
    recordings = read_manifest(
        path, audio_column or cfg.get("audio_column", "audio"),
        text_column or cfg.get("text_column", "text"),
    )  # fmt: skip
    feats = load_features(recordings, recognizer.spec, cache_dir, "manifest", progress)
    return recognizer.evaluate(feats, beam_size=beam_size)


def by_group_line(groups: dict[str, dict[str, float]]) -> str:
    """One line of per-group WERs, e.g. ``"beam WER by synthesiser: espeak-ng 1.23% (299), …"``
    (empty when there is a single group)."""
    if len(groups) < 2:
        return ""
    return "  beam WER by synthesiser: " + ", ".join(
        f"{g} {100 * v['wer']:.2f}% ({v['n']})" for g, v in groups.items()
    )
