"""Text, vocabularies and contiguous batches for truncated backpropagation through time.

**Text.** The Shakespeare plays of :mod:`lstmkit.datasets.shakespeare` (``NAME:`` lines, a
fixed split by whole plays: 32 for training, *Much Ado*, *Richard II* and *Macbeth* for
validation, *Twelfth Night*, *Julius Caesar* and *The Tempest* for test).

**Your own text** (:func:`user_texts`): any UTF-8 files or folders of ``.txt`` files instead of
the plays, with a validation share cut off the end (or a separate validation file) and an
optional test file.

**Tokens.** ``level="char"``: one token per character, case and punctuation kept; the
vocabulary is every character of the training plays (71) after the padding id 0 and
``[UNK]`` (id 1). ``level="word"``: the text is lower-cased and split by :func:`word_tokens`
into words (with inner apostrophes: ``o'er``, ``lord's``), single punctuation marks, and
``<eol>`` for each line end; the ``max_tokens - 2`` most frequent training tokens are kept and
the rest become ``[UNK]``. Both use :class:`lstmkit.data.TextVectorization`.

**Unknown tokens in a prompt** (:meth:`Vocabulary.encode`): ``unknown="error"`` raises a
``ValueError`` naming them; ``"skip"`` drops them; ``"unk"`` maps them to ``[UNK]``. The
default is ``"error"`` for characters (the model never saw ``[UNK]`` there) and ``"unk"`` for
words (the training text has ``[UNK]`` for every rare word).

**Batches** (:class:`TBPTTBatches`). The token stream is cut into ``B`` contiguous streams of
equal length, one per batch row, and each stream into chunks of ``T`` tokens; batch ``k`` holds
chunk ``k`` of every stream, so row ``i`` of batch ``k + 1`` continues row ``i`` of batch ``k``
and a stateful model carries its state from one batch to the next. Targets are the inputs
shifted by one token.

>>> batches = TBPTTBatches(np.arange(21), batch_size=2, seq_len=4)
>>> [(x.tolist(), y.tolist()) for x, y in batches][0]
([[0, 1, 2, 3], [10, 11, 12, 13]], [[1, 2, 3, 4], [11, 12, 13, 14]])
>>> len(batches), [tuple(x.shape) for x, _ in batches]
(3, [(2, 4), (2, 4), (2, 2)])
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from lstmkit.data import TextVectorization

EOL = "<eol>"
UNKNOWN_POLICIES = ("error", "skip", "unk")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+|\n|[^\w\s]")
_NO_SPACE_BEFORE = set(".,;:!?')]")
_NO_SPACE_AFTER = set("([")


def load_text(split: str, stage_directions: bool = False) -> str:
    """The plays of ``split`` (``"train"``, ``"validation"``, ``"test"``) as one string."""
    from lstmkit.datasets.shakespeare import load_shakespeare

    return load_shakespeare(split, stage_directions=stage_directions)


def user_texts(
    data: list[str],
    valid: list[str] | None = None,
    test: list[str] | None = None,
    valid_fraction: float = 0.1,
) -> tuple[dict[str, str], dict[str, Any]]:
    """The user's text as ``{"train", "validation"[, "test"]}`` and a description of it.

    ``data``, ``valid`` and ``test`` are what ``--data``, ``--valid`` and ``--test`` name (files,
    folders of ``*.txt``, ``-`` for stdin; read by :func:`lstmkit.data.user_text.read_texts`,
    which names the file and byte of any bad input). Without ``valid``, the last
    ``valid_fraction`` of the training text (cut at a line end) is the validation text.

    Raises:
        FileNotFoundError, ValueError: see :func:`~lstmkit.data.user_text.read_texts`;
            ``valid_fraction`` outside (0, 1); a text too short to split.
    """
    from lstmkit.data.user_text import join_texts, read_texts, split_tail

    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(
            f"valid_fraction (--valid-fraction) must be in (0, 1), got {valid_fraction}"
        )
    sources = read_texts(data)
    train = join_texts(sources)
    info: dict[str, Any] = {
        "corpus": "user",
        "train_files": [s.name for s in sources],
        "train_chars": len(train),
    }
    texts: dict[str, str] = {}
    if valid:
        valid_sources = read_texts(valid)
        texts["validation"] = join_texts(valid_sources)
        info["validation_files"] = [s.name for s in valid_sources]
    else:
        train, texts["validation"] = split_tail(train, valid_fraction)
        info["validation_fraction"] = valid_fraction
        info["train_chars"] = len(train)
    texts["train"] = train
    info["validation_chars"] = len(texts["validation"])
    if test:
        test_sources = read_texts(test)
        texts["test"] = join_texts(test_sources)
        info["test_files"] = [s.name for s in test_sources]
        info["test_chars"] = len(texts["test"])
    return texts, info


def word_tokens(text: str) -> list[str]:
    """Lower-cased words, numbers, single punctuation marks and ``<eol>`` for line ends.

    >>> word_tokens("KING:\\nO'er the hills, my lord's men!")
    ['king', ':', '<eol>', "o'er", 'the', 'hills', ',', 'my', "lord's", 'men', '!']
    """
    return [EOL if t == "\n" else t for t in _WORD.findall(text.lower())]


def join_words(tokens: list[str], after: str | None = None) -> str:
    """Text from word tokens: ``<eol>`` becomes a line end, no space before closing punctuation.

    ``after`` is the token that precedes ``tokens`` (for streaming one token at a time).

    >>> join_words(['king', ':', '<eol>', 'o', ',', 'my', 'lord', '!'])
    'king:\\no, my lord!'
    """
    out: list[str] = []
    previous = after
    for token in tokens:
        if token == EOL:
            out.append("\n")
        else:
            glue = not (
                previous is None
                or previous == EOL
                or token[0] in _NO_SPACE_BEFORE
                or previous in _NO_SPACE_AFTER
            )
            out.append((" " if glue else "") + token)
        previous = token
    return "".join(out)


class Vocabulary:
    """Tokens <-> ids for one level (``"char"`` or ``"word"``), on a ``TextVectorization``.

    Id 0 is padding (never produced), id 1 ``[UNK]``; the learnt tokens follow, most frequent
    first. ``get_config``/``from_config`` round-trip through JSON (stored in the model file's
    ``assets``).
    """

    def __init__(self, level: str, vectorizer: TextVectorization) -> None:
        if level not in ("char", "word"):
            raise ValueError(f"Vocabulary: level must be 'char' or 'word', got {level!r}")
        self.level = level
        self.vectorizer = vectorizer
        self.tokens = vectorizer.get_vocabulary()
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.unknown_id = 1

    @classmethod
    def build(cls, level: str, text: str, max_tokens: int | None = None) -> Vocabulary:
        """The vocabulary of ``text`` (the training plays)."""
        if level == "char":
            tv = TextVectorization(standardize=None, split="character")
            tv.adapt([text])
        elif level == "word":
            tv = TextVectorization(max_tokens=max_tokens, standardize=None, split="whitespace")
            tv.adapt([" ".join(word_tokens(text))])
        else:
            raise ValueError(f"Vocabulary: level must be 'char' or 'word', got {level!r}")
        return cls(level, tv)

    def __len__(self) -> int:
        return len(self.tokens)

    def split(self, text: str) -> list[str]:
        """The tokens of ``text`` (characters, or :func:`word_tokens`)."""
        return list(text) if self.level == "char" else word_tokens(text)

    def unknown(self, text: str) -> list[str]:
        """The distinct tokens of ``text`` not in the vocabulary, in order of appearance."""
        return list(dict.fromkeys(t for t in self.split(text) if t not in self.index))

    def encode(self, text: str, unknown: str | None = None) -> np.ndarray:
        """Token ids ``(N,)`` int64 of ``text``; ``unknown`` as in the module docstring."""
        policy = unknown or ("error" if self.level == "char" else "unk")
        if policy not in UNKNOWN_POLICIES:
            raise ValueError(
                f"unknown must be one of {', '.join(UNKNOWN_POLICIES)}, got {policy!r}"
            )
        tokens = self.split(text)
        if policy == "error":
            missing = self.unknown(text)
            if missing:
                shown = ", ".join(repr(t) for t in missing[:10])
                raise ValueError(
                    f"the prompt has {len(missing)} {self.level}(s) the model does not know: "
                    f"{shown}{' …' if len(missing) > 10 else ''}; remove them, or choose "
                    f"unknown 'skip' (drop them) or 'unk' (map them to [UNK]) "
                    f"(--unknown on the command line)"
                )
        ids = [self.index.get(t, self.unknown_id) for t in tokens]
        if policy == "skip":
            ids = [i for i, t in zip(ids, tokens) if t in self.index]
        return np.asarray(ids, dtype=np.int64)

    def encode_corpus(self, text: str) -> np.ndarray:
        """Ids of a whole split (rare words -> ``[UNK]``), via the ``TextVectorization``."""
        joined = text if self.level == "char" else " ".join(word_tokens(text))
        return np.asarray(self.vectorizer([joined])[0], dtype=np.int64)

    def decode(self, ids: Any, after: int | None = None) -> str:
        """Text of ids; ``after`` is the id that precedes them (word spacing when streaming)."""
        tokens = [self.tokens[int(i)] for i in np.asarray(ids).reshape(-1) if int(i) != 0]
        if self.level == "char":
            return "".join(tokens)
        return join_words(tokens, None if after is None else self.tokens[int(after)])

    def get_config(self) -> dict[str, Any]:
        return {"level": self.level, "vectorizer": self.vectorizer.get_config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Vocabulary:
        return cls(config["level"], TextVectorization.from_config(config["vectorizer"]))


class TBPTTBatches:
    """Contiguous ``(x, y)`` batches ``(B, T)`` of one token stream (see the module docstring).

    Args:
        ids: the token ids ``(N,)``.
        batch_size: ``B``, the number of parallel streams.
        seq_len: ``T``, the tokens per chunk; the last chunk may be shorter.
        offset: tokens skipped at the start (a different offset each epoch moves the chunk
            boundaries).
        drop_last: skip a last chunk shorter than ``seq_len``.
    """

    def __init__(
        self,
        ids: np.ndarray,
        batch_size: int,
        seq_len: int,
        offset: int = 0,
        drop_last: bool = False,
    ) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if batch_size < 1 or seq_len < 1:
            raise ValueError(
                f"TBPTTBatches: batch_size and seq_len must be >= 1, got {batch_size}, {seq_len}"
            )
        length = (len(ids) - 1 - offset) // batch_size
        if length < 1:
            raise ValueError(
                f"TBPTTBatches: {len(ids)} tokens (offset {offset}) are too few for "
                f"{batch_size} streams"
            )
        data = torch.from_numpy(ids[offset : offset + batch_size * length + 1].copy())
        self.inputs = data[:-1].view(batch_size, length)  # (B, L)
        self.targets = data[1:].view(batch_size, length)  # (B, L)
        self.batch_size, self.seq_len, self.stream_length = batch_size, seq_len, length
        self.drop_last = drop_last

    def __len__(self) -> int:
        full, rest = divmod(self.stream_length, self.seq_len)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for k in range(len(self)):
            sl = slice(k * self.seq_len, (k + 1) * self.seq_len)
            yield self.inputs[:, sl], self.targets[:, sl]

    @property
    def tokens(self) -> int:
        """Tokens predicted in one pass over all batches."""
        if self.drop_last:
            return self.batch_size * (self.stream_length // self.seq_len) * self.seq_len
        return self.batch_size * self.stream_length
