"""The translation application's configuration: one typed dataclass, every field documented.

The defaults are the configuration behind the figures in ``docs/translate.md``. Overrides come
as ``key=value`` strings (the CLI's ``--set``) or a dict (a JSON file); unknown keys and values of
the wrong type are rejected with the list of known fields.

>>> cfg = TranslateConfig.from_overrides(["units=128", "attention=bahdanau"])
>>> cfg.units, cfg.attention
(128, 'bahdanau')
>>> TranslateConfig.from_overrides(["unit=128"])
Traceback (most recent call last):
...
ValueError: unknown configuration key 'unit'; did you mean 'units'? (known: ...)
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from lstmkit.utils import check_number_fields

ATTENTIONS = ("luong", "bahdanau", "none")


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


MAX_BEAM_SIZE = 256
"""The widest beam: the search keeps ``beam_size`` decoder states per sentence in memory."""
MAX_LENGTH_PENALTY = 10.0
"""The largest GNMT length-normalisation exponent α (``((5 + |Y|) / 6) ** α`` overflows
beyond)."""


@dataclass
class TranslateConfig:
    """Every setting of a translation run (data, vocabulary, model, training, decoding)."""

    # -- data and vocabulary --------------------------------------------------------------
    data: str = _f(
        "",
        "your parallel data instead of the dictionary: a TSV of source<TAB>target lines, or "
        "the prefix of Moses-style files PREFIX.<source_lang> and PREFIX.<target_lang>; split "
        "90/5/5 by a hash of the source unless valid_data / test_data are given",
    )
    source_file: str = _f("", "your source sentences, one per line (with target_file)")
    target_file: str = _f("", "their translations, line by line (with source_file)")
    valid_data: str = _f("", "validation pairs (TSV or Moses prefix); default: the hash split")
    test_data: str = _f("", "test pairs (TSV or Moses prefix); default: the hash split")
    source_lang: str = _f("de", "language code of the source side (kept in the model file)")
    target_lang: str = _f("en", "language code of the target side (kept in the model file)")
    src_vocab_size: int = _f(4000, "SentencePiece vocabulary size of the source (German) side")
    tgt_vocab_size: int = _f(4000, "SentencePiece vocabulary size of the target (English) side")
    spm_model_type: str = _f("unigram", "SentencePiece model type: unigram or bpe")
    phrases: int = _f(
        0,
        "dictionary phrase pairs added to the training data (0: none; -1: all ~369k); "
        "a fixed random subset, also used to train the vocabulary",
    )
    train_fraction: float = _f(
        1.0,
        "fraction of the dictionary's training sentence pairs used (a fixed subset drawn with "
        "seed, nested: a smaller fraction's pairs are among a larger one's); for learning curves",
    )
    max_src_tokens: int = _f(100, "longest source (in subword tokens) used; longer is cut")
    max_tgt_tokens: int = _f(100, "longest training target (in subword tokens); longer is cut")
    max_input_chars: int = _f(2000, "longest input line translated; longer lines are cut")

    # -- model ----------------------------------------------------------------------------
    embed_dim: int = _f(256, "embedding size of both languages")
    units: int = _f(256, "LSTM units per layer (the bidirectional layer has units/2 per side)")
    encoder_layers: int = _f(2, "encoder layers: one bidirectional, then unidirectional ones")
    decoder_layers: int = _f(2, "decoder LSTM layers")
    attention: str = _f(
        "bahdanau",
        "attention: bahdanau (additive; the default: measured best, docs/translate.md), luong "
        "(multiplicative), none",
    )
    attention_units: int = _f(256, "hidden size of the additive (bahdanau) attention")
    input_feeding: bool = _f(False, "feed the attentional vector into the next step (Luong)")
    residual: bool = _f(True, "residual connections from the second layer of each stack")
    dropout: float = _f(
        0.5,
        "dropout rate on embeddings, between layers and before the softmax (0.5: measured "
        "better than 0.3 on this small corpus, docs/translate.md)",
    )
    attention_dropout: float = _f(0.0, "dropout rate on the attention weights")
    word_dropout: float = _f(
        0.0, "rate at which whole token embeddings (source and target) are zeroed in training"
    )

    # -- training -------------------------------------------------------------------------
    batch_size: int = _f(32, "sentence pairs per batch (batches hold pairs of similar length)")
    epochs: int = _f(60, "maximum number of epochs")
    max_minutes: float = _f(110.0, "stop training after this many minutes (0: no limit)")
    clock: str = _f(
        "cpu",
        "what max_minutes counts: cpu (this process's CPU time: with threads=1, the time the run "
        "takes on an idle core; on a busy shared machine the wall time is longer) or wall",
    )
    learning_rate: float = _f(2e-3, "Adam learning rate")
    lr_patience: int = _f(1, "epochs without val_loss improvement before halving the rate")
    min_learning_rate: float = _f(1e-4, "the learning rate is never halved below this")
    clipnorm: float = _f(5.0, "global gradient-norm clipping")
    label_smoothing: float = _f(0.1, "label smoothing of the cross-entropy")
    early_stopping: int = _f(4, "stop after this many epochs without val_loss improvement")
    init_from: str = _f(
        "",
        "model file of an earlier run whose weights and vocabularies start this one "
        "(fine-tuning, e.g. on the sentence pairs after a run with phrases); its model and "
        "vocabulary settings must equal these. Empty: random initialisation",
    )
    seed: int = _f(1234, "random seed (data order, initialisation, dropout)")
    threads: int = _f(
        1,
        "torch CPU threads (0: torch's default); 1 is fastest on a shared machine, where "
        "more threads than free cores slow every step many times over",
    )

    # -- decoding -------------------------------------------------------------------------
    beam_size: int = _f(5, "beam width (1: greedy)")
    length_penalty: float = _f(0.6, "GNMT length-normalisation exponent alpha")
    coverage_penalty: float = _f(0.0, "GNMT coverage-penalty weight beta")
    max_decode_ratio: float = _f(2.0, "decode at most ratio * source length + 10 tokens")
    max_decode_len: int = _f(150, "absolute maximum output length in tokens")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field with an impossible value."""
        check_number_fields(self)  # numbers must be numbers (True is not 1), and finite
        positive = (
            "src_vocab_size",
            "tgt_vocab_size",
            "max_src_tokens",
            "max_tgt_tokens",
            "max_input_chars",
            "embed_dim",
            "units",
            "encoder_layers",
            "decoder_layers",
            "attention_units",
            "batch_size",
            "beam_size",
            "max_decode_len",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if self.clock not in ("cpu", "wall"):
            raise ValueError(f"clock must be 'cpu' or 'wall', got {self.clock!r}")
        if self.spm_model_type not in ("unigram", "bpe"):
            raise ValueError(
                f"spm_model_type must be 'unigram' or 'bpe', got {self.spm_model_type!r}"
            )
        if self.units % 2:
            raise ValueError(f"units must be even (split over two directions), got {self.units}")
        for name in ("dropout", "attention_dropout", "word_dropout", "label_smoothing"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not 0.0 < self.train_fraction <= 1.0:
            raise ValueError(f"train_fraction must be in (0, 1], got {self.train_fraction!r}")
        if bool(self.source_file) != bool(self.target_file):
            raise ValueError("source_file and target_file go together (aligned line by line)")
        if self.data and self.source_file:
            raise ValueError("give data or source_file/target_file, not both")
        user = bool(self.data or self.source_file)
        if (self.valid_data or self.test_data) and not user:
            raise ValueError("valid_data and test_data go with data or source_file/target_file")
        if user and self.phrases:
            raise ValueError("phrases adds the dictionary's phrase pairs: not with your own data")
        for name in ("source_lang", "target_lang"):
            code = getattr(self, name)
            if not (isinstance(code, str) and 1 <= len(code) <= 16 and code.replace("-", "")
                    .replace("_", "").isalnum()):  # fmt: skip
                raise ValueError(f"{name} must be a language code such as 'de', got {code!r}")
        if self.source_lang == self.target_lang:
            raise ValueError(f"source_lang and target_lang are both {self.source_lang!r}")
        if self.phrases < -1:
            raise ValueError(f"phrases must be -1 (all), 0 or a count, got {self.phrases}")
        for name in ("epochs", "early_stopping", "lr_patience", "seed", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.learning_rate <= 0 or self.clipnorm <= 0 or self.max_decode_ratio <= 0:
            raise ValueError("learning_rate, clipnorm and max_decode_ratio must be positive")
        if self.beam_size > MAX_BEAM_SIZE:
            raise ValueError(f"beam_size must be at most {MAX_BEAM_SIZE}, got {self.beam_size}")
        if self.length_penalty > MAX_LENGTH_PENALTY:
            raise ValueError(
                f"length_penalty must be at most {MAX_LENGTH_PENALTY} (GNMT uses 0.6-1), got "
                f"{self.length_penalty!r}"
            )
        for name in ("length_penalty", "coverage_penalty", "max_minutes", "min_learning_rate"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    # -- conversions ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def fields_help(cls) -> dict[str, tuple[str, Any, str]]:
        """``{name: (type name, default, help)}`` for every field."""
        hints = get_type_hints(cls)
        return {
            f.name: (hints[f.name].__name__, f.default, f.metadata.get("help", ""))
            for f in dataclasses.fields(cls)
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any], base: TranslateConfig | None = None) -> Any:
        """A config from ``base`` (default: the defaults) with ``values`` replaced; each value
        is checked against its field's type."""
        hints = get_type_hints(cls)
        known = [f.name for f in dataclasses.fields(cls)]
        out = dict((base or cls()).to_dict())
        for key, value in values.items():
            if key not in known:
                raise ValueError(_unknown(key, known))
            out[key] = _coerce(key, value, hints[key])
        return cls(**out)

    @classmethod
    def from_overrides(cls, items: list[str], base: TranslateConfig | None = None) -> Any:
        """A config from ``["key=value", ...]`` strings (the CLI's ``--set``)."""
        values: dict[str, Any] = {}
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"expected key=value, got {item!r}")
            values[key.strip()] = value.strip()
        return cls.from_dict(values, base)

    @classmethod
    def from_json(cls, text: str) -> Any:
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError("a configuration file must hold a JSON object")
        return cls.from_dict(values)


def _unknown(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown configuration key {key!r}{hint} (known: {', '.join(known)})"


def _coerce(key: str, value: Any, kind: type) -> Any:
    if isinstance(value, str) and kind is not str:
        text = value.strip().lower()
        try:
            if kind is bool:
                if text in ("1", "true", "yes", "on"):
                    return True
                if text in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return kind(value)
        except ValueError:
            raise ValueError(f"{key}: expected {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{key}: expected {kind.__name__}, got {value!r}")
    return value
