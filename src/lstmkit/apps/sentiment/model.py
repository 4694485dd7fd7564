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


def build_model(config: SentimentConfig) -> Sequential:
    """The network of ``config.arch``, compiled with Adam and binary cross-entropy."""
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
            Dense(1, activation="sigmoid"),
        ],
        name=f"sentiment_{config.arch.replace('-', '_')}",
    )
    model.compile(
        optimizer=Adam(config.learning_rate), loss="binary_crossentropy", metrics=["accuracy"]
    )
    model.build((None, config.maxlen))  # (B, T) token ids
    return model


@dataclass(frozen=True)
class Prediction:
    """One text's result: ``label`` and its ``probability``; ``known`` counts in-vocabulary
    tokens (0 means the model saw no word it knows and answers with its prior)."""

    text: str
    label: str
    probability: float
    p_positive: float
    tokens: int
    known: int


class SentimentClassifier:
    """A trained model with its tokenizer and config (see the module docstring)."""

    def __init__(
        self,
        model: Sequential,
        tokenizer: Tokenizer,
        config: SentimentConfig,
        results: dict[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.results: dict[str, Any] = dict(results or {})

    # -- inference ---------------------------------------------------------------------------

    def predict_proba(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        """``p(positive)`` for each text, ``(N,)`` float32."""
        ids = self.tokenizer.encode(list(texts))
        if len(ids) == 0:
            return np.zeros((0,), dtype=np.float32)
        return self.model.predict(ids, batch_size=batch_size, verbose=0).reshape(-1)

    def predict(self, texts: list[str]) -> list[Prediction]:
        """Label, probability of that label, and token counts for each text."""
        texts = list(texts)
        probs = self.predict_proba(texts)
        results = []
        for text, ids, p in zip(texts, self.tokenizer.encode(texts), probs):
            p = float(p)
            label = LABELS[int(p >= 0.5)]
            results.append(
                Prediction(
                    text=text,
                    label=label,
                    probability=p if label == LABELS[1] else 1.0 - p,
                    p_positive=p,
                    tokens=int((ids != 0).sum()),
                    known=int((ids > 1).sum()),
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
            "labels": list(LABELS),
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
        if assets.get("version") != ASSETS_VERSION:
            raise ModelFileError(
                f"{path}: sentiment model format version {assets.get('version')!r}; "
                f"this lstmkit reads version {ASSETS_VERSION}"
            )
        tok = reader.mapping("tokenizer")
        vectorizer = reader.mapping("vectorizer", tok, "tokenizer.vectorizer")
        reader.strings("vocabulary", vectorizer, "tokenizer.vectorizer.vocabulary")
        with reader.rebuilding("config"):
            config = SentimentConfig.from_dict(reader.mapping("config"))
        with reader.rebuilding("tokenizer"):
            tokenizer = Tokenizer.from_config(tok)
        inputs = model.layers[0].input_dim if hasattr(model.layers[0], "input_dim") else None
        if inputs is not None and tokenizer.vocabulary_size() > inputs:
            raise ModelFileError(
                f"{path}: sentiment assets: the tokenizer has {tokenizer.vocabulary_size()} "
                f"tokens but the model's embedding only {inputs}"
            )
        return cls(model, tokenizer, config, assets.get("results"))
