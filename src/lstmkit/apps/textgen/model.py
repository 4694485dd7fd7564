"""The language model: ``Embedding -> [LSTM -> Dropout] x L -> Dense(vocabulary)`` logits.

A Keras-style :class:`~lstmkit.models.Sequential` whose LSTM layers are ``stateful``: each call
starts from the state the previous call ended in (detached, so gradients stop at the chunk
boundary — truncated backpropagation through time). :func:`reset_states` forgets it, and lets
the next call use any batch size. The output layer gives logits; the loss is
``SparseCategoricalCrossentropy(from_logits=True)``.

With ``tie_weights`` the output layer's weight *is* the embedding matrix (Press & Wolf 2017);
after loading a file the tie is restored by :meth:`LanguageModel.load`.

:class:`LanguageModel` bundles the network, its :class:`~.data.Vocabulary` and its
:class:`~.config.TextgenConfig`, and saves them as one lstmkit model file (vocabulary and config
in ``model.assets``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lstmkit.apps.assets import AssetReader
from lstmkit.apps.textgen.config import TextgenConfig
from lstmkit.apps.textgen.data import TBPTTBatches, Vocabulary
from lstmkit.initializers import RandomUniform
from lstmkit.layers import LSTM, Dense, Dropout, Embedding
from lstmkit.models import ModelFileError, Sequential, load_model
from lstmkit.training.losses import SparseCategoricalCrossentropy

ASSET_KEY = "textgen"


def build_model(cfg: TextgenConfig, vocab_size: int) -> Sequential:
    """The network of ``cfg`` for ``vocab_size`` tokens (built, weights initialised)."""
    init = RandomUniform(-cfg.embedding_init, cfg.embedding_init)
    layers: list[Any] = [
        Embedding(vocab_size, cfg.embedding_dim, embeddings_initializer=init, name="embedding")
    ]
    if cfg.level == "word" and cfg.dropout:
        layers.append(Dropout(cfg.dropout, name="embedding_dropout"))
    for k in range(cfg.layers):
        layers.append(
            LSTM(
                cfg.units,
                return_sequences=True,
                stateful=True,
                recurrent_dropout=cfg.recurrent_dropout,
                engine=cfg.engine,
                name=f"lstm_{k + 1}",
            )
        )
        if cfg.dropout:
            layers.append(Dropout(cfg.dropout, name=f"dropout_{k + 1}"))
    layers.append(Dense(vocab_size, name="logits"))
    model = Sequential(layers, name=f"textgen_{cfg.level}")
    model.build((None, None), dtype="int64")
    reset_states(model)
    if cfg.tie_weights:
        tie_weights(model)
    return model


def tie_weights(model: Sequential) -> None:
    """Make the output layer's weight the embedding matrix itself (one parameter)."""
    embedding, output = model.get_layer("embedding"), model.get_layer("logits")
    if tuple(output.weight.shape) != tuple(embedding.embeddings.shape):
        raise ValueError(
            f"tie_weights: the output weight {tuple(output.weight.shape)} and the embedding "
            f"{tuple(embedding.embeddings.shape)} must have the same shape"
        )
    output.weight = embedding.embeddings


def lstm_layers(model: Sequential) -> list[LSTM]:
    """The model's LSTM layers, input to output."""
    return [layer for layer in model.layers if isinstance(layer, LSTM)]


def reset_states(model: Sequential) -> None:
    """Forget the carried state: the next call starts from zeros, with any batch size."""
    for layer in lstm_layers(model):
        layer.states = None


def get_states(model: Sequential) -> list[list[torch.Tensor] | None]:
    """The carried ``[h, c]`` of every LSTM layer (``None`` where none is carried yet)."""
    return [None if layer.states is None else list(layer.states) for layer in lstm_layers(model)]


def set_states(model: Sequential, states: list[list[torch.Tensor] | None]) -> None:
    """Restore states from :func:`get_states`."""
    for layer, state in zip(lstm_layers(model), states):
        layer.states = None if state is None else list(state)


@torch.no_grad()
def evaluate_ids(
    model: Sequential,
    ids: np.ndarray,
    batch_size: int = 16,
    seq_len: int = 256,
    max_tokens: int = 0,
) -> float:
    """Mean cross-entropy in nats per token of ``ids`` (each token predicted from all before it
    in its stream); the model's carried state is left as it was.

    The text is cut into ``batch_size`` contiguous streams, each starting from a zero state;
    ``max_tokens`` > 0 scores only the first ``max_tokens + 1`` ids.
    """
    if max_tokens:
        ids = ids[: max_tokens + 1]
    saved, was_training = get_states(model), model.training
    model.eval()
    reset_states(model)
    loss = SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
    total, count = 0.0, 0
    try:
        for x, y in TBPTTBatches(ids, min(batch_size, len(ids) - 1), seq_len):
            logits = model(x, training=False)  # (B, T, V)
            total += float(loss(y, logits.float()))
            count += y.numel()
    finally:
        set_states(model, saved)
        model.train(was_training)
    return total / count


class LanguageModel:
    """A trained network with its vocabulary and configuration; one file on disk."""

    def __init__(self, model: Sequential, vocab: Vocabulary, config: TextgenConfig) -> None:
        self.model, self.vocab, self.config = model, vocab, config

    @classmethod
    def create(cls, config: TextgenConfig, vocab: Vocabulary) -> LanguageModel:
        return cls(build_model(config, len(vocab)), vocab, config)

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write model, optimiser state (if compiled), vocabulary, config and ``extra``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model.assets = {
            "app": "lstmkit.textgen",
            ASSET_KEY: {
                "vocabulary": self.vocab.get_config(),
                "config": self.config.to_dict(),
                **(extra or {}),
            },
        }
        self.model.save(path)
        return path

    @classmethod
    def load(cls, path: str | Path, compile: bool = False) -> LanguageModel:
        """Load a file written by :meth:`save` (``compile=True`` also restores the optimiser)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"no model file at {path}; train one with `lstmkit textgen train`"
            )
        model = load_model(path, compile=compile)
        assets = (getattr(model, "assets", None) or {}).get(ASSET_KEY)
        if not assets:
            raise ModelFileError(
                f"{path} is an lstmkit model but not a textgen model (no vocabulary)"
            )
        reader = AssetReader(path, "textgen", assets)
        voc = reader.mapping("vocabulary")
        reader.get("level", str, voc, "vocabulary.level")
        vectorizer = reader.mapping("vectorizer", voc, "vocabulary.vectorizer")
        reader.strings("vocabulary", vectorizer, "vocabulary.vectorizer.vocabulary")
        with reader.rebuilding("config"):
            config = TextgenConfig.from_dict(reader.mapping("config"), base=TextgenConfig())
        with reader.rebuilding("vocabulary"):
            vocab = Vocabulary.from_config(voc)
        with reader.rebuilding("model (the vocabulary must fit its embedding and output)"):
            size, embedding = len(vocab), model.get_layer("embedding")
            if size > embedding.input_dim:
                raise ValueError(
                    f"the vocabulary has {size} tokens, the embedding {embedding.input_dim}"
                )
            if config.tie_weights:
                tie_weights(model)
        reset_states(model)
        model.eval()
        return cls(model, vocab, config)

    @property
    def info(self) -> dict[str, Any]:
        """What :meth:`save` stored besides vocabulary and config (training results)."""
        assets = (getattr(self.model, "assets", None) or {}).get(ASSET_KEY, {})
        return {k: v for k, v in assets.items() if k not in ("vocabulary", "config")}

    @torch.no_grad()
    def next_token_logits(self, ids: np.ndarray | list[int]) -> torch.Tensor:
        """Logits ``(V,)`` of the token after ``ids``, from a zero state, with the layers."""
        reset_states(self.model)
        x = torch.as_tensor(np.asarray(ids, dtype=np.int64)).view(1, -1)
        logits = self.model(x, training=False)[0, -1]
        reset_states(self.model)
        return logits

    def evaluate(self, ids: np.ndarray, **kwargs: Any) -> dict[str, float]:
        """``nats`` per token, ``bits`` per token and ``perplexity`` of ``ids``."""
        nats = evaluate_ids(self.model, ids, **kwargs)
        return {"nats": nats, "bits": nats / math.log(2), "perplexity": math.exp(nats)}
