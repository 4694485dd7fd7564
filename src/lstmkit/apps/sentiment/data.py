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
    """The movie-review splits and the out-of-domain Amazon set, or the user's splits
    (``amazon`` is then ``None`` and ``classes`` the user's class names)."""

    train: Split
    validation: Split
    test: Split
    amazon: Split | None
    classes: tuple[str, ...] = LABELS
    source: dict[str, Any] | None = None  # where the user's data came from (the model file)


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


def load_user_data(config: Any) -> SentimentData:
    """The user's examples of ``config.data`` (and ``valid_data``/``test_data``), labels as
    class indices; without separate files, ``valid_fraction`` and ``test_fraction`` of
    ``data`` are held out by a hash of each text (:func:`~.user_data.hash_fraction`).

    Raises:
        FileNotFoundError, ValueError: see :mod:`lstmkit.apps.sentiment.user_data`; a split
            left empty; a validation or test label the training data does not have.
    """
    from lstmkit.apps.sentiment.user_data import (
        class_names,
        hash_fraction,
        label_ids,
        read_labelled,
    )

    def read(path: str) -> Any:
        return read_labelled(path, config.text_column, config.label_column)

    main = read(config.data)
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for i, text in enumerate(main.texts):
        u = hash_fraction(text)
        if config.valid_data is None and u < config.valid_fraction:
            parts["validation"].append(i)
        elif config.test_data is None and u >= 1.0 - config.test_fraction:
            parts["test"].append(i)
        else:
            parts["train"].append(i)
    train_labels = [main.labels[i] for i in parts["train"]]
    if not train_labels:
        raise ValueError(f"{config.data}: no training examples are left after the split")
    classes = class_names(train_labels, config.data, config.label_column)

    def subset(indices: list[int], name: str) -> Split:
        if not indices:
            raise ValueError(
                f"{config.data}: the {name} split is empty ({len(main)} examples); give "
                f"--{'valid' if name == 'validation' else name}-data or a larger fraction"
            )
        picked = type(main)(
            [main.texts[i] for i in indices],
            [main.labels[i] for i in indices],
            [main.where[i] for i in indices],
        )
        return Split(picked.texts, np.asarray(label_ids(picked, classes), dtype=np.int64))

    def separate(path: str) -> Split:
        other = read(path)
        return Split(other.texts, np.asarray(label_ids(other, classes), dtype=np.int64))

    train = subset(parts["train"], "train")
    validation = (
        separate(config.valid_data)
        if config.valid_data
        else subset(parts["validation"], "validation")
    )
    test = separate(config.test_data) if config.test_data else subset(parts["test"], "test")
    source = {
        "data": config.data,
        "valid_data": config.valid_data,
        "test_data": config.test_data,
        "sizes": {"train": len(train), "validation": len(validation), "test": len(test)},
    }
    return SentimentData(train, validation, test, None, classes, source)


def balanced_subset(split: Split, n: int) -> Split:
    """The first ``n // C`` snippets of each of the ``C`` classes (a class with fewer gives its
    share to the others, the last classes first); deterministic, file order kept."""
    if n >= len(split):
        return split
    by_class = [np.flatnonzero(split.labels == c) for c in np.unique(split.labels)]
    take = [min(len(rows), n // len(by_class)) for rows in by_class]
    left = n - sum(take)
    for k in reversed(range(len(take))):
        extra = min(left, len(by_class[k]) - take[k])
        take[k], left = take[k] + extra, left - extra
    keep = np.sort(np.concatenate([rows[:t] for rows, t in zip(by_class, take)]))
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
