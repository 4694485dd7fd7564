"""Data of the sentiment application: the fixed movie-review splits, the Amazon out-of-domain
set, and the tokenizer that turns snippets into the model's input.

The splits come from :func:`lstmkit.datasets.load_movie_reviews` (fixed, seeded, stratified
80/10/10: 8,452 / 1,056 / 1,058 snippets); the Amazon product-review sentences (3,610) from
:func:`lstmkit.datasets.load_amazon_reviews`. Label 1 is positive, 0 negative.

The tokenizer is Keras's ``TextVectorization`` (lower-case, ASCII punctuation stripped, split on
whitespace, vocabulary of the ``max_tokens - 2`` most frequent training words, optionally only
those seen ``min_count`` times; 0 = padding, 1 = unknown word) followed by front padding to
``maxlen``: a snippet's last word is always the last step the LSTM reads, so the final state
that the classifier sees is never followed by padding. Texts longer than ``maxlen`` tokens
keep their first ``maxlen`` tokens.

>>> tok = Tokenizer.adapt(["a good film", "a bad film"], max_tokens=10, maxlen=4)
>>> tok.encode(["good film", ""]).tolist()
[[0, 0, 4, 2], [0, 0, 0, 0]]
>>> tok.tokens("A GOOD, unseen film!")
['a', 'good', '[UNK]', 'film']
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lstmkit.data.text import TextVectorization, pad_sequences
from lstmkit.datasets.sentiment import (
    AMAZON_FILE,
    MOVIE_FILE,
    load_amazon_reviews,
    load_movie_reviews,
)

LABELS = ("negative", "positive")
TOKENIZER_FORMAT = "lstmkit-sentiment-tokenizer-v1"

Texts = list[str]


@dataclass(frozen=True)
class Split:
    """Texts and their 0/1 labels."""

    texts: Texts
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class SentimentData:
    """The movie-review splits and the out-of-domain Amazon set."""

    train: Split
    validation: Split
    test: Split
    amazon: Split


def load_split(name: str, data_dir: str | None = None) -> Split:
    """One of ``train``, ``validation``, ``test``, ``all`` (movie reviews) or ``amazon``.

    Raises:
        FileNotFoundError: the data is missing; the message says what to install.
    """
    if name == "amazon":
        path = None if data_dir is None else Path(data_dir) / AMAZON_FILE
        texts, labels = load_amazon_reviews(path=path)
    else:
        path = None if data_dir is None else Path(data_dir) / MOVIE_FILE
        texts, labels = load_movie_reviews(name, path=path)
    return Split(texts, labels)


def load_data(data_dir: str | None = None, train_limit: int = 0) -> SentimentData:
    """All four sets; ``train_limit > 0`` keeps a class-balanced subset of the training split."""
    train = load_split("train", data_dir)
    if train_limit:
        train = balanced_subset(train, train_limit)
    return SentimentData(
        train=train,
        validation=load_split("validation", data_dir),
        test=load_split("test", data_dir),
        amazon=load_split("amazon", data_dir),
    )


def balanced_subset(split: Split, n: int) -> Split:
    """The first ``n // 2`` snippets of each class (deterministic; file order kept)."""
    if n >= len(split):
        return split
    by_class = [np.flatnonzero(split.labels == c) for c in (0, 1)]
    half = n // 2
    take0 = min(len(by_class[0]), max(half, n - len(by_class[1])))
    keep = np.sort(np.concatenate([by_class[0][:take0], by_class[1][: n - take0]]))
    return Split([split.texts[i] for i in keep], split.labels[keep])


class Tokenizer:
    """``TextVectorization`` plus front padding to ``maxlen`` (see the module docstring).

    Args:
        vectorizer: an adapted ``TextVectorization`` whose ``output_sequence_length`` is
            ``maxlen``.
    """

    def __init__(self, vectorizer: TextVectorization) -> None:
        if vectorizer.output_sequence_length is None:
            raise ValueError("Tokenizer: the vectorizer needs an output_sequence_length (maxlen)")
        vectorizer.get_vocabulary()  # raises if not adapted
        self.vectorizer = vectorizer

    @classmethod
    def adapt(cls, texts: Texts, max_tokens: int, maxlen: int, min_count: int = 1) -> Tokenizer:
        """Learns the vocabulary of ``texts``: the ``max_tokens - 2`` most frequent words that
        occur at least ``min_count`` times (rarer words become the unknown token)."""
        vectorizer = TextVectorization(max_tokens=max_tokens, output_sequence_length=maxlen)
        vectorizer.adapt(texts)
        if min_count > 1:
            counts = collections.Counter(w for text in texts for w in vectorizer.tokenize(text))
            words = vectorizer.get_vocabulary(include_special_tokens=False)
            vectorizer.set_vocabulary([w for w in words if counts[w] >= min_count])
        return cls(vectorizer)

    @property
    def maxlen(self) -> int:
        return int(self.vectorizer.output_sequence_length)

    def vocabulary_size(self) -> int:
        return self.vectorizer.vocabulary_size()

    def encode(self, texts: Texts) -> np.ndarray:
        """``(N, maxlen)`` int64 ids, padded with 0 at the front."""
        if not texts:
            return np.zeros((0, self.maxlen), dtype=np.int64)
        back_padded = self.vectorizer(texts)  # (N, maxlen), zeros at the end
        lengths = (back_padded != 0).sum(axis=1)
        rows = [row[:n] for row, n in zip(back_padded, lengths)]
        return pad_sequences(rows, maxlen=self.maxlen, dtype="int64", padding="pre", value=0)

    def tokens(self, text: str) -> list[str]:
        """The tokens the model reads for ``text``: words, or the OOV token for unknown ones."""
        ids = self.vectorizer([text])[0]
        vocabulary = self.vectorizer.get_vocabulary()
        return [vocabulary[i] for i in ids if i != 0]

    def get_config(self) -> dict[str, Any]:
        """JSON-serialisable; stored in the model file's ``assets["tokenizer"]``."""
        return {"format": TOKENIZER_FORMAT, "vectorizer": self.vectorizer.get_config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Tokenizer:
        if not isinstance(config, dict) or config.get("format") != TOKENIZER_FORMAT:
            raise ValueError(
                f"Tokenizer.from_config: expected a dict with format {TOKENIZER_FORMAT!r}, "
                f"got {str(config)[:80]}"
            )
        return cls(TextVectorization.from_config(config["vectorizer"]))
