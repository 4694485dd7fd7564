"""The speech application's typed configuration: data, features, model, training, decoding.

Every field is a flag of ``lstmkit speech train`` (``lstm_units`` -> ``--lstm-units``) with the
help text written here; ``--config FILE.json`` may set any of them. Unknown keys and values of
the wrong type or range are rejected when the config is made, before any data is read.

The defaults are the configuration behind the figures in ``docs/speech.md``:

* data: 20,000 training utterances, 40 % spoken by festival's voices (one American man, and
  four women of other languages reading a respelling of the English words), 15 % by SVOX
  Pico's two English women and the rest by the espeak-ng training voices, 400 validation,
  600 test (held-out espeak-ng variants and every flite voice) and 300 real-voice utterances;
* features: 80 log-mel bands, 25 ms windows every 10 ms, of audio resampled to 8 kHz (telephone
  band: the real-voice recordings are 8 kHz telephone audio, so every utterance is heard through
  the same band), normalised per utterance; in training, speed perturbation (half the
  utterances' frames stretched in time by a factor in [0.9, 1.5]: espeak-ng's slowest voices
  are faster than careful human speech), vocal tract length perturbation on the mel axis (half
  the utterances, warp factors 0.85–1.15) and SpecAugment;
* model: 2 strided 3×3 ``Conv2D`` (32 filters, stride 2 in time and frequency: 40 ms frames) ->
  3 ``Bidirectional(LSTM(224))`` -> ``Dense(12)`` -> CTC over the 11 words and the blank;
* training: Adam 1e-3 with warm-up and cosine decay, global gradient-norm clipping, batches of
  32 utterances of similar length (sorted by length, batch order shuffled every epoch).

>>> cfg = SpeechConfig(epochs=2)
>>> cfg.lstm_layers, cfg.sample_rate, cfg.epochs
(3, 8000, 2)
>>> SpeechConfig.from_dict({"epoch": 2})
Traceback (most recent call last):
...
ValueError: SpeechConfig: unknown key 'epoch'; known keys: augment, batch_size, ...
"""

from __future__ import annotations

from dataclasses import dataclass

from lstmkit.apps import common
from lstmkit.apps.common import ConfigMixin
from lstmkit.apps.common import config_field as _opt

FRONTENDS = ("conv2d", "conv1d")
BUCKETS = ("exact", "sorted")
DEFAULT_MODEL_PATH = "runs/speech/model.lstmkit"
DEFAULT_DATA_DIR = "runs/speech/digits"
DEFAULT_CACHE_DIR = "runs/speech/features"


@dataclass(frozen=True)
class SpeechConfig(ConfigMixin):
    """What ``lstmkit speech synthesize | train`` do; see the module docstring."""

    # -- data --------------------------------------------------------------------------------
    manifest: str = _opt(
        "",
        "Your recordings instead of the digits: a CSV/TSV/JSONL of audio paths and transcripts "
        "(--audio-column, --text-column) or a folder of x.wav + x.txt; modelled character by "
        "character; split 90/5/5 by a hash of the audio path unless --valid-manifest / "
        "--test-manifest are given.",
    )
    valid_manifest: str = _opt("", "Validation recordings (same formats as --manifest).")
    test_manifest: str = _opt("", "Test recordings (same formats as --manifest).")
    audio_column: str = _opt("audio", "The column (or JSON key) of the audio paths.")
    text_column: str = _opt("text", "The column (or JSON key) of the transcripts.")
    data_dir: str = _opt(DEFAULT_DATA_DIR, "Folder of the synthesised corpus (manifest + WAVs).")
    n_train: int = _opt(
        20000, "Training utterances (espeak-ng's training voices, festival's, pico's)."
    )
    n_val: int = _opt(400, "Validation utterances (espeak-ng validation voices).")
    n_test: int = _opt(600, "Test utterances (held-out espeak-ng variants and all flite voices).")
    n_real: int = _opt(300, "Real-voice test utterances assembled from asterisk's recordings.")
    festival_share: float = _opt(
        0.4,
        "Share of the training utterances spoken by festival's voices (not flite's speakers; "
        "an English man and four women of other languages) instead of espeak-ng's.",
    )
    pico_share: float = _opt(
        0.15,
        "Share of the training utterances spoken by SVOX Pico's two English women (package "
        "ttspico) instead of espeak-ng's; festival_share + pico_share must not pass 1.",
    )
    data_seed: int = _opt(0, "Seed of the corpus (what is said, by which voice, how).")
    workers: int = _opt(2, "Processes that render audio in `synthesize`.")
    # -- features ----------------------------------------------------------------------------
    cache_dir: str = _opt(DEFAULT_CACHE_DIR, "Folder of the cached log-mel features.")
    sample_rate: int = _opt(
        8000, "Audio is resampled to this rate (Hz) before the log-mel features."
    )
    n_mels: int = _opt(80, "Mel bands per frame.")
    win_ms: float = _opt(25.0, "Analysis window (ms).")
    hop_ms: float = _opt(10.0, "Frame step (ms).")
    cepstra: int = _opt(
        0,
        "Cepstral smoothing across mel bands: DCT coefficients kept per frame (the rest, "
        "the ripple of pitch harmonics, removed before normalising); 0 = none.",
    )
    # -- augmentation (training only) --------------------------------------------------------
    augment: bool = _opt(True, "SpecAugment time and frequency masking in training.")
    freq_masks: int = _opt(2, "SpecAugment: frequency masks per utterance.")
    freq_width: int = _opt(12, "SpecAugment: widest frequency mask (bands).")
    time_masks: int = _opt(2, "SpecAugment: time masks per utterance.")
    time_width: int = _opt(15, "SpecAugment: widest time mask (frames).")
    stretch_prob: float = _opt(
        0.5, "Speed perturbation: probability that an utterance's frames are time-stretched."
    )
    stretch_min: float = _opt(0.9, "Speed perturbation: smallest stretch factor (< 1 = faster).")
    stretch_max: float = _opt(
        1.5, "Speed perturbation: largest stretch factor (> 1 = slower, as careful speech)."
    )
    warp_prob: float = _opt(
        0.5,
        "Vocal tract length perturbation: probability that an utterance's mel bands are warped.",
    )
    warp_min: float = _opt(0.85, "Vocal tract length perturbation: smallest warp factor.")
    warp_max: float = _opt(1.15, "Vocal tract length perturbation: largest warp factor.")
    # -- model -------------------------------------------------------------------------------
    frontend: str = _opt(
        "conv2d",
        "Strided convolutions before the LSTMs: conv2d = over time and frequency (DeepSpeech2); "
        "conv1d = over time, the mel bands as channels.",
        FRONTENDS,
    )
    conv_filters: int = _opt(32, "Filters of each of the two convolutions.")
    conv_kernel: int = _opt(3, "Kernel size of the convolutions (in time, and in frequency).")
    time_stride: int = _opt(2, "Stride in time of each convolution (frames shrink by its square).")
    lstm_layers: int = _opt(3, "Bidirectional LSTM layers.")
    lstm_units: int = _opt(224, "Units of each LSTM direction.")
    dropout: float = _opt(0.15, "Dropout rate after the front end and between LSTM layers.")
    # -- training ----------------------------------------------------------------------------
    epochs: int = _opt(10, "Passes over the training utterances.")
    batch_size: int = _opt(32, "Most utterances per optimiser step.")
    bucket: str = _opt(
        "sorted",
        "Batching: sorted = neighbours in length order share a batch (little padding, masked); "
        "exact = only utterances of equal length after the front end (masks all true, batches "
        "of varying size).",
        BUCKETS,
    )
    learning_rate: float = _opt(1e-3, "Adam's peak learning rate.")
    warmup_steps: int = _opt(300, "Steps of linear learning-rate warm-up (then cosine decay).")
    clipnorm: float = _opt(5.0, "Global gradient-norm clipping.")
    seed: int = _opt(0, "Seed of weights, dropout, SpecAugment and batch order.")
    threads: int = _opt(2, "CPU threads for torch (0 = torch's default).")
    output: str = _opt(DEFAULT_MODEL_PATH, "Model file to write.")
    # -- decoding ----------------------------------------------------------------------------
    beam_size: int = _opt(8, "Prefix beam search width.")

    def __post_init__(self) -> None:
        self.check_fields()
        positive = (
            "n_train", "n_val", "workers", "sample_rate", "n_mels", "conv_filters",
            "conv_kernel", "time_stride", "lstm_layers", "lstm_units", "batch_size", "beam_size",
        )  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"SpeechConfig: {name} must be >= 1, got {getattr(self, name)}")
        non_negative = (
            "n_test", "n_real", "data_seed", "freq_masks", "freq_width", "time_masks",
            "time_width", "epochs", "warmup_steps", "seed", "threads", "cepstra",
        )  # fmt: skip
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"SpeechConfig: {name} must be >= 0, got {getattr(self, name)}")
        for name in ("win_ms", "hop_ms", "learning_rate", "clipnorm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SpeechConfig: {name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.stretch_prob <= 1.0:
            raise ValueError(
                f"SpeechConfig: stretch_prob must be in [0, 1], got {self.stretch_prob}"
            )
        for name in ("festival_share", "pico_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"SpeechConfig: {name} must be in [0, 1], got {getattr(self, name)}"
                )
        if self.festival_share + self.pico_share > 1.0:
            raise ValueError(
                f"SpeechConfig: festival_share + pico_share must not pass 1, got "
                f"{self.festival_share} + {self.pico_share}"
            )
        if not 0.0 <= self.warp_prob <= 1.0:
            raise ValueError(f"SpeechConfig: warp_prob must be in [0, 1], got {self.warp_prob}")
        if not 0.0 < self.warp_min <= self.warp_max:
            raise ValueError(
                f"SpeechConfig: expected 0 < warp_min <= warp_max, got "
                f"{self.warp_min} and {self.warp_max}"
            )
        if not 0.0 < self.stretch_min <= self.stretch_max:
            raise ValueError(
                f"SpeechConfig: expected 0 < stretch_min <= stretch_max, got "
                f"{self.stretch_min} and {self.stretch_max}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"SpeechConfig: dropout must be in [0, 1), got {self.dropout}")
        if (self.valid_manifest or self.test_manifest) and not self.manifest:
            raise ValueError("SpeechConfig: valid_manifest and test_manifest go with manifest")
        for name in ("audio_column", "text_column"):
            if not getattr(self, name).strip():
                raise ValueError(f"SpeechConfig: {name} must not be empty")


def field_help(name: str) -> str:
    """The help text of one field (the CLI's flag help), with its choices."""
    return common.field_help(SpeechConfig, name)
