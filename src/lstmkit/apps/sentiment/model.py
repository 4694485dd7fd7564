"""The sentiment models and the classifier that carries its own tokenizer.

The seed program (``arch="lstm"``), in shapes (B snippets of T = maxlen tokens)::

    ids (B, T) -> Embedding(20000, 128) -> (B, T, 128)
               -> LSTM(128, return_sequences=True) -> (B, T, 128) -> Dropout(0.2)
               -> LSTM(64) -> (B, 64) -> Dense(1, sigmoid) -> p(positive) (B, 1)

Variants keep that shape and swap the recurrent layers: ``bilstm`` wraps both LSTMs in
``Bidirectional`` (outputs concatenated: 256 and 128 features), ``gru`` uses ``GRU`` layers,
``lstm-ln`` uses ``LSTM(layer_norm=True)`` (layer-normalised gate pre-activations and cell).

A :class:`SentimentClassifier` is the model plus its :class:`~.data.Tokenizer` and config; it
is saved as one lstmkit model file whose ``model.assets`` hold the tokenizer, the config and
the training results, so ``load`` needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lstmkit.apps.assets import AssetReader
from lstmkit.apps.sentiment.config import SentimentConfig
from lstmkit.apps.sentiment.data import LABELS, Tokenizer
from lstmkit.layers import GRU, LSTM, Bidirectional, Dense, Dropout, Embedding
from lstmkit.models import ModelFileError, Sequential, load_model
from lstmkit.optimizers import Adam

ASSETS_APP = "lstmkit.sentiment"
ASSETS_VERSION = 1


def build_model(config: SentimentConfig, n_classes: int = 2) -> Sequential:
    """The network of ``config.arch``, compiled with Adam: for two classes a ``Dense(1,
    sigmoid)`` head (p of the second class) and binary cross-entropy; for more a ``Dense(C,
    softmax)`` head and sparse categorical cross-entropy on class indices."""
    if n_classes < 2:
        raise ValueError(f"build_model: n_classes must be >= 2, got {n_classes}")
    if config.arch == "gru":

        def recurrent(units: int, return_sequences: bool) -> Any:
            return GRU(units, return_sequences=return_sequences)

    else:
        layer_norm = config.arch == "lstm-ln"

        def recurrent(units: int, return_sequences: bool) -> Any:
            return LSTM(units, return_sequences=return_sequences, layer_norm=layer_norm)

    first, second = recurrent(config.units, True), recurrent(config.units2, False)
    if config.arch == "bilstm":
        first, second = Bidirectional(first), Bidirectional(second)
    model = Sequential(
        [
            Embedding(config.max_tokens, config.embedding_dim, mask_zero=config.mask_zero),
            first,
            Dropout(config.dropout),
            second,
            Dense(1, activation="sigmoid") if n_classes == 2 else Dense(n_classes, "softmax"),
        ],
        name=f"sentiment_{config.arch.replace('-', '_')}",
    )
    loss = "binary_crossentropy" if n_classes == 2 else "sparse_categorical_crossentropy"
    model.compile(optimizer=Adam(config.learning_rate), loss=loss, metrics=["accuracy"])
    model.build((None, config.maxlen))  # (B, T) token ids
    return model


def head_mismatch(model: Sequential, labels: tuple[str, ...] | list[str]) -> str:
    """Why ``labels`` do not fit the model's ``Dense`` head (one sigmoid output for two
    classes, one softmax output per class for more), or ``""`` when they do."""
    head = getattr(model.layers[-1], "units", None)
    if head is None or head == (1 if len(labels) == 2 else len(labels)):
        return ""
    return f"{len(labels)} class names for a head of {head} output(s)"


@dataclass(frozen=True)
class Prediction:
    """One text's result: ``label`` and its ``probability``; ``scores`` every class's
    probability; ``p_positive`` the second class's probability for a two-class model (the
    sigmoid's output; ``None`` for more classes); ``known`` counts in-vocabulary tokens (0 means
    the model saw no word it knows and answers with its prior)."""

    text: str
    label: str
    probability: float
    p_positive: float | None
    tokens: int
    known: int
    scores: dict[str, float]


class SentimentClassifier:
    """A trained model with its tokenizer and config (see the module docstring)."""

    def __init__(
        self,
        model: Sequential,
        tokenizer: Tokenizer,
        config: SentimentConfig,
        results: dict[str, Any] | None = None,
        labels: tuple[str, ...] | list[str] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.results: dict[str, Any] = dict(results or {})
        self.labels: tuple[str, ...] = tuple(labels or LABELS)
        mismatch = head_mismatch(model, self.labels)
        if mismatch:
            raise ValueError(f"SentimentClassifier: {mismatch}")

    @property
    def binary(self) -> bool:
        """Two classes: one sigmoid output, p(``labels[1]``)."""
        return len(self.labels) == 2

    # -- inference ---------------------------------------------------------------------------

    def predict_proba(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """The model's output for each text: ``(N,)`` p(``labels[1]``) for two classes (the
        positive class of the demo), ``(N, C)`` class probabilities for more; float32."""
        ids = self.tokenizer.encode(list(texts))
        if len(ids) == 0:
            return np.zeros((0,) if self.binary else (0, len(self.labels)), dtype=np.float32)
        out = self.model.predict(ids, batch_size=batch_size, verbose=0)
        return out.reshape(-1) if self.binary else out.reshape(len(ids), -1)

    def class_probabilities(self, texts: list[str]) -> np.ndarray:
        """``(N, C)`` probabilities of every class (columns in the order of ``labels``)."""
        p = self.predict_proba(texts)
        return np.stack([1.0 - p, p], axis=1) if self.binary else p

    def predict_class(self, texts: list[str]) -> np.ndarray:
        """``(N,)`` int64 class indices (``p >= 0.5`` for two classes, else the argmax)."""
        p = self.predict_proba(texts)
        return (p >= 0.5).astype(np.int64) if self.binary else p.argmax(axis=1).astype(np.int64)

    def predict(self, texts: list[str]) -> list[Prediction]:
        """Label, probability of that label, every class's probability, and token counts."""
        texts = list(texts)
        probs = self.class_probabilities(texts)
        classes = self.predict_class(texts) if texts else []
        results = []
        for text, ids, row, k in zip(texts, self.tokenizer.encode(texts), probs, classes):
            results.append(
                Prediction(
                    text=text,
                    label=self.labels[int(k)],
                    probability=float(row[int(k)]),
                    p_positive=float(row[1]) if self.binary else None,
                    tokens=int((ids != 0).sum()),
                    known=int((ids > 1).sum()),
                    scores={c: float(v) for c, v in zip(self.labels, row)},
                )
            )
        return results

    # -- files -------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Writes one lstmkit model file (weights, tokenizer, config, results in ``assets``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model.assets = {
            "app": ASSETS_APP,
            "version": ASSETS_VERSION,
            "labels": list(self.labels),
            "tokenizer": self.tokenizer.get_config(),
            "config": self.config.to_dict(),
            "results": self.results,
        }
        self.model.save(path, include_optimizer=False)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SentimentClassifier:
        """Reads a file written by :meth:`save`.

        Raises:
            FileNotFoundError: no such file (the message says how to make one).
            ValueError: a model file of another kind, or a damaged one.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"no sentiment model at {path}; train one with: lstmkit sentiment train "
                f"--output {path}"
            )
        model = load_model(path, compile=False)
        reader = AssetReader(path, "sentiment", model.assets)
        assets = reader.assets
        if assets.get("app") != ASSETS_APP:
            raise ModelFileError(
                f"{path} is an lstmkit model file but not a sentiment model "
                f"(its assets have app={assets.get('app')!r})"
            )
        reader.equal("version", ASSETS_VERSION, "sentiment model format version")
        tok = reader.mapping("tokenizer")
        reader.vectorizer(tok, "tokenizer.vectorizer")
        results = reader.get("results", (dict, type(None)), required=False)
        labels = reader.get("labels", list, required=False) or list(LABELS)
        if len(labels) < 2 or not all(isinstance(x, str) and x for x in labels):
            raise ModelFileError(
                f"{reader.where}: 'labels' must list at least two class names, got {labels!r}"
            )
        with reader.rebuilding("config"):
            config = SentimentConfig.from_dict(reader.mapping("config"))
        with reader.rebuilding("tokenizer", "tokenizer.vectorizer"):
            tokenizer = Tokenizer.from_config(tok)
        inputs = model.layers[0].input_dim if hasattr(model.layers[0], "input_dim") else None
        if inputs is not None and tokenizer.vocabulary_size() > inputs:
            raise ModelFileError(
                f"{reader.where}: the tokenizer has {tokenizer.vocabulary_size()} tokens but "
                f"the model's embedding only {inputs}"
            )
        mismatch = head_mismatch(model, labels)
        if mismatch:
            raise ModelFileError(f"{reader.where}: {mismatch}")
        return cls(model, tokenizer, config, results, labels)
