"""Text preparation with Keras's semantics: :func:`pad_sequences` and :class:`TextVectorization`.

Both work on plain Python strings and numpy arrays (no torch needed), so a vocabulary can be
built, saved as JSON inside a model file and re-created without the model.

>>> tv = TextVectorization(output_sequence_length=5)
>>> tv.adapt(["the cat sat", "the dog sat down"])
>>> tv.get_vocabulary()
['', '[UNK]', 'the', 'sat', 'down', 'dog', 'cat']
>>> tv(["The cat sat!", "a dog"]).tolist()
[[2, 6, 3, 0, 0], [1, 5, 0, 0, 0]]
>>> pad_sequences([[1, 2, 3], [4]], maxlen=2).tolist()
[[2, 3], [0, 4]]
"""

from __future__ import annotations

import collections
import string
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

_PADDING_CHOICES = ("pre", "post")
_STANDARDIZE_CHOICES = ("lower_and_strip_punctuation", "lower", "strip_punctuation", None)
_SPLIT_CHOICES = ("whitespace", "character", None)
_CONFIG_KEYS = (
    "max_tokens",
    "standardize",
    "split",
    "output_sequence_length",
    "oov_token",
    "pad_to_max_tokens",
    "vocabulary",
)
# Keras strips exactly the ASCII punctuation characters (its regex is string.punctuation).
_STRIP_TABLE = str.maketrans("", "", string.punctuation)
_MASK_TOKEN = ""


def pad_sequences(
    sequences: Sequence[Sequence[Any]],
    maxlen: int | None = None,
    dtype: Any = "int32",
    padding: str = "pre",
    truncating: str = "pre",
    value: Any = 0.0,
) -> np.ndarray:
    """Pads (and truncates) sequences to one length, as ``keras.utils.pad_sequences`` does.

    Sequences longer than ``maxlen`` lose values at the start (``truncating="pre"``) or the end
    (``"post"``); shorter ones get ``value`` added at the start (``padding="pre"``) or the end
    (``"post"``). Elements may themselves be arrays of one shape ``S`` (e.g. feature vectors);
    the result then has shape ``(N, maxlen, *S)``. Values are cast to ``dtype`` as numpy casts
    them (floats to ``"int32"`` are truncated towards zero).

    Two cases where Keras raises an error from deep inside numpy are defined here instead:
    ``maxlen=0`` gives an ``(N, 0)`` array and an empty ``sequences`` gives ``(0, maxlen or 0)``.
    Bad ``padding``/``truncating`` values are rejected even when every sequence is empty.

    Args:
        sequences: N sequences (lists, tuples or arrays) of possibly different lengths.
        maxlen: length of the output; ``None`` means the longest sequence's length.
        dtype: numpy dtype of the output.
        padding: ``"pre"`` or ``"post"``: where padding values go.
        truncating: ``"pre"`` or ``"post"``: where values are removed from long sequences.
        value: the padding value.

    Returns:
        ``np.ndarray`` of shape ``(N, maxlen, *S)`` and dtype ``dtype``.

    >>> pad_sequences([[1, 2], [3]], padding="post").tolist()
    [[1, 2], [3, 0]]
    >>> pad_sequences([[1, 2, 3]], maxlen=2, truncating="post").tolist()
    [[1, 2]]
    """
    if padding not in _PADDING_CHOICES:
        raise ValueError(f"pad_sequences: padding must be 'pre' or 'post', got {padding!r}")
    if truncating not in _PADDING_CHOICES:
        raise ValueError(f"pad_sequences: truncating must be 'pre' or 'post', got {truncating!r}")
    if maxlen is not None and (
        isinstance(maxlen, bool) or not isinstance(maxlen, int | np.integer)
    ):
        raise TypeError(f"pad_sequences: maxlen must be an int or None, got {maxlen!r}")
    if maxlen is not None and maxlen < 0:
        raise ValueError(f"pad_sequences: maxlen must be >= 0, got {maxlen}")
    if isinstance(sequences, str | bytes) or not hasattr(sequences, "__len__"):
        raise TypeError(
            f"pad_sequences: sequences must be a list of sequences, got {type(sequences).__name__}"
        )
    np_dtype = np.dtype(dtype)
    if isinstance(value, str) and np_dtype.kind not in "OUS":
        raise ValueError(
            f"pad_sequences: value is the string {value!r} but dtype is {np_dtype}; "
            "use dtype=object or a string dtype for string padding values"
        )

    lengths: list[int] = []
    sample_shape: tuple[int, ...] = ()
    found_sample = False
    for i, seq in enumerate(sequences):
        if isinstance(seq, str | bytes) or not hasattr(seq, "__len__"):
            raise TypeError(
                f"pad_sequences: sequences[{i}] must be a sequence (list, tuple or array), "
                f"got {type(seq).__name__}"
            )
        lengths.append(len(seq))
        if not found_sample and len(seq):
            sample_shape = np.asarray(seq).shape[1:]
            found_sample = True

    length = (max(lengths) if lengths else 0) if maxlen is None else int(maxlen)
    out = np.full((len(lengths), length, *sample_shape), value, dtype=np_dtype)
    if length == 0:
        return out
    for i, seq in enumerate(sequences):
        if not len(seq):
            continue
        kept = seq[-length:] if truncating == "pre" else seq[:length]
        kept = np.asarray(kept, dtype=np_dtype)
        if kept.shape[1:] != sample_shape:
            raise ValueError(
                f"pad_sequences: sequences[{i}] has elements of shape {kept.shape[1:]}, "
                f"expected {sample_shape} like the first non-empty sequence"
            )
        if padding == "post":
            out[i, : len(kept)] = kept
        else:
            out[i, length - len(kept) :] = kept
    return out


def _as_text_list(texts: Any, where: str) -> list[str]:
    """Checks that ``texts`` is a batch of strings and returns it as a list."""
    if isinstance(texts, str | bytes):
        raise TypeError(
            f"{where}: expected a list of strings, got a single {type(texts).__name__}; "
            "wrap it in a list: [text]"
        )
    if isinstance(texts, np.ndarray):
        if texts.ndim == 2 and texts.shape[1] == 1:
            texts = texts[:, 0]
        if texts.ndim != 1:
            raise ValueError(
                f"{where}: expected a 1-D array of strings, got an array of shape {texts.shape}"
            )
        texts = texts.tolist()
    if not isinstance(texts, Iterable):
        raise TypeError(f"{where}: expected a list of strings, got {type(texts).__name__}")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"{where}: element {i} must be a str, got {type(text).__name__}")
    return out


class TextVectorization:
    """Maps strings to padded integer sequences, as Keras's ``TextVectorization`` (``"int"`` mode).

    Each text is standardised, split into tokens and looked up in a vocabulary learnt by
    :meth:`adapt`. Index 0 is padding (the token ``""``), index 1 the out-of-vocabulary token
    ``oov_token``; learnt tokens follow, most frequent first, ties broken by *descending* string
    order (Keras's ``np.lexsort((tokens, counts))[::-1]``). ``max_tokens`` counts the two
    special tokens, so at most ``max_tokens - 2`` tokens are learnt.

    Standardisation (``standardize``):
        ``"lower_and_strip_punctuation"`` (default), ``"lower"``, ``"strip_punctuation"`` or
        ``None``. Stripping removes Keras's set, the 32 ASCII punctuation characters, and nothing
        else: "don't" becomes "dont" and "n't" becomes "nt", so negations survive as their own
        tokens ("isnt", "didnt") rather than being split off; typographic marks such as ``’``
        or ``„`` are kept. Lower-casing is Unicode-aware (``str.lower``: "ÄRGER" -> "ärger"),
        where Keras's ``tf.strings.lower`` changes ASCII letters only.

    Splitting (``split``):
        ``"whitespace"`` (runs of Unicode whitespace, leading/trailing ignored),
        ``"character"`` (one token per code point, spaces included) or ``None`` (whole text).

    Output of a call on N texts: ``np.ndarray`` of dtype int64 and shape ``(N, L)``, with
    ``L = output_sequence_length`` (longer texts lose their *last* tokens) or, when that is
    ``None``, the longest text's token count in the batch; shorter rows end with zeros.
    An empty text gives a row of zeros.

    Args:
        max_tokens: vocabulary size cap including ``""`` and ``oov_token``; ``None`` = no cap.
        standardize: see above.
        split: see above.
        output_sequence_length: fixed output length, or ``None`` to pad to the batch's longest.
        oov_token: the token at index 1, returned by :meth:`decode` for unknown tokens.
        pad_to_max_tokens: accepted for Keras compatibility; as in Keras it only matters for
            the multi-hot/count outputs, which this class does not produce. Requires
            ``max_tokens``.
        vocabulary: optional fixed vocabulary (with or without the leading ``""`` and
            ``oov_token``), instead of calling :meth:`adapt`.

    >>> tv = TextVectorization(split="character", standardize=None)
    >>> tv.adapt(["abba"])
    >>> tv(["abc", ""]).tolist()
    [[3, 2, 1], [0, 0, 0]]
    >>> tv.decode([3, 2, 2, 0])
    'abb'
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        standardize: str | None = "lower_and_strip_punctuation",
        split: str | None = "whitespace",
        output_sequence_length: int | None = None,
        oov_token: str = "[UNK]",
        pad_to_max_tokens: bool = False,
        vocabulary: Sequence[str] | None = None,
    ) -> None:
        name = "TextVectorization"
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
        ):
            raise TypeError(f"{name}: max_tokens must be an int or None, got {max_tokens!r}")
        if max_tokens is not None and max_tokens < 2:
            raise ValueError(
                f"{name}: max_tokens must be >= 2 (it counts the padding and OOV tokens), "
                f"got {max_tokens}"
            )
        if standardize not in _STANDARDIZE_CHOICES:
            raise ValueError(
                f"{name}: standardize must be one of {_STANDARDIZE_CHOICES}, got {standardize!r}"
            )
        if split not in _SPLIT_CHOICES:
            raise ValueError(f"{name}: split must be one of {_SPLIT_CHOICES}, got {split!r}")
        if output_sequence_length is not None and (
            isinstance(output_sequence_length, bool) or not isinstance(output_sequence_length, int)
        ):
            raise TypeError(
                f"{name}: output_sequence_length must be an int or None, "
                f"got {output_sequence_length!r}"
            )
        if output_sequence_length is not None and output_sequence_length < 1:
            raise ValueError(
                f"{name}: output_sequence_length must be >= 1, got {output_sequence_length}"
            )
        if not isinstance(oov_token, str) or oov_token == _MASK_TOKEN:
            raise ValueError(f"{name}: oov_token must be a non-empty str, got {oov_token!r}")
        if not isinstance(pad_to_max_tokens, bool):
            raise TypeError(f"{name}: pad_to_max_tokens must be a bool, got {pad_to_max_tokens!r}")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(f"{name}: pad_to_max_tokens=True needs max_tokens to be set")
        self.max_tokens = max_tokens
        self.standardize = standardize
        self.split = split
        self.output_sequence_length = output_sequence_length
        self.oov_token = oov_token
        self.pad_to_max_tokens = pad_to_max_tokens
        self._vocabulary: list[str] | None = None
        self._index: dict[str, int] = {}
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)

    # -- tokenising ---------------------------------------------------------------------------

    def _standardize(self, text: str) -> str:
        if self.standardize in ("lower", "lower_and_strip_punctuation"):
            text = text.lower()
        if self.standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
            text = text.translate(_STRIP_TABLE)
        return text

    def tokenize(self, text: str) -> list[str]:
        """Standardises and splits one text into its tokens (before vocabulary lookup)."""
        if not isinstance(text, str):
            raise TypeError(
                f"TextVectorization.tokenize: expected a str, got {type(text).__name__}"
            )
        text = self._standardize(text)
        if self.split == "whitespace":
            return text.split()
        if self.split == "character":
            return list(text)
        return [text]

    # -- vocabulary ---------------------------------------------------------------------------

    def adapt(self, texts: Iterable[str]) -> None:
        """Learns the vocabulary from ``texts`` (a list of strings), replacing any earlier one."""
        counts: collections.Counter[str] = collections.Counter()
        for text in _as_text_list(texts, "TextVectorization.adapt"):
            counts.update(self.tokenize(text))
        counts.pop(_MASK_TOKEN, None)
        counts.pop(self.oov_token, None)
        ranked = sorted(counts.items(), key=lambda item: (item[1], item[0]), reverse=True)
        if self.max_tokens is not None:
            ranked = ranked[: self.max_tokens - 2]
        self._set_tokens([token for token, _ in ranked])

    def set_vocabulary(self, vocabulary: Sequence[str]) -> None:
        """Sets a fixed vocabulary: tokens in index order, optionally led by ``""`` and OOV."""
        tokens = _as_text_list(vocabulary, "TextVectorization.set_vocabulary")
        if tokens[:2] == [_MASK_TOKEN, self.oov_token]:
            tokens = tokens[2:]
        if _MASK_TOKEN in tokens or self.oov_token in tokens:
            raise ValueError(
                "TextVectorization.set_vocabulary: '' and the OOV token may only appear as the "
                f"first two entries, in that order; got them at other positions in {tokens[:10]}"
            )
        repeated = sorted(t for t, n in collections.Counter(tokens).items() if n > 1)
        if repeated:
            raise ValueError(
                f"TextVectorization.set_vocabulary: vocabulary has repeated tokens {repeated[:10]}"
            )
        if self.max_tokens is not None and len(tokens) + 2 > self.max_tokens:
            raise ValueError(
                f"TextVectorization.set_vocabulary: {len(tokens) + 2} tokens (with '' and OOV) "
                f"exceed max_tokens={self.max_tokens}"
            )
        self._set_tokens(tokens)

    def _set_tokens(self, tokens: list[str]) -> None:
        self._vocabulary = [_MASK_TOKEN, self.oov_token, *tokens]
        self._index = {token: i for i, token in enumerate(self._vocabulary)}

    def _require_vocabulary(self, where: str) -> list[str]:
        if self._vocabulary is None:
            raise RuntimeError(
                f"TextVectorization.{where}: no vocabulary yet; call adapt(texts) first "
                "or pass vocabulary=[...]"
            )
        return self._vocabulary

    def get_vocabulary(self, include_special_tokens: bool = True) -> list[str]:
        """The vocabulary in index order; with the special tokens, ``vocab[i]`` is index ``i``."""
        vocabulary = self._require_vocabulary("get_vocabulary")
        return list(vocabulary) if include_special_tokens else vocabulary[2:]

    def vocabulary_size(self) -> int:
        """Number of indices, padding and OOV included (the ``input_dim`` of an Embedding)."""
        return len(self._require_vocabulary("vocabulary_size"))

    # -- mapping ------------------------------------------------------------------------------

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Maps N texts to an int64 array ``(N, L)``; see the class docstring for ``L``."""
        self._require_vocabulary("__call__")
        batch = _as_text_list(texts, "TextVectorization")
        rows = [[self._index.get(token, 1) for token in self.tokenize(text)] for text in batch]
        return pad_sequences(
            rows,
            maxlen=self.output_sequence_length,
            dtype="int64",
            padding="post",
            truncating="post",
            value=0,
        )

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        """Maps one row of indices back to text, skipping padding (0).

        Tokens are joined with a space, or with nothing for ``split="character"``. Standardisation
        cannot be undone, so ``decode(tv([text])[0])`` is the standardised text, with
        ``oov_token`` in place of unknown tokens.
        """
        vocabulary = self._require_vocabulary("decode")
        array = np.asarray(ids)
        if array.ndim != 1:
            raise ValueError(
                f"TextVectorization.decode: expected a 1-D sequence of ids, got shape {array.shape}"
            )
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise TypeError(f"TextVectorization.decode: ids must be integers, got {array.dtype}")
        bad = [int(i) for i in array if not 0 <= i < len(vocabulary)]
        if bad:
            raise ValueError(
                f"TextVectorization.decode: ids must be in [0, {len(vocabulary)}), got {bad[:5]}"
            )
        separator = "" if self.split == "character" else " "
        return separator.join(vocabulary[int(i)] for i in array if i != 0)

    # -- serialisation ------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """A JSON-serialisable dict, vocabulary included, that :meth:`from_config` restores."""
        return {
            "max_tokens": self.max_tokens,
            "standardize": self.standardize,
            "split": self.split,
            "output_sequence_length": self.output_sequence_length,
            "oov_token": self.oov_token,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "vocabulary": None if self._vocabulary is None else list(self._vocabulary),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TextVectorization:
        """Rebuilds a vectoriser from :meth:`get_config`'s dict (e.g. after a JSON round trip)."""
        if not isinstance(config, dict):
            raise TypeError(
                f"TextVectorization.from_config: expected a dict, got {type(config).__name__}"
            )
        unknown = sorted(set(config) - set(_CONFIG_KEYS))
        if unknown:
            raise ValueError(
                f"TextVectorization.from_config: unknown keys {unknown}; "
                f"expected keys among {list(_CONFIG_KEYS)}"
            )
        return cls(**config)

    def __repr__(self) -> str:
        size = "not adapted" if self._vocabulary is None else f"{len(self._vocabulary)} tokens"
        return (
            f"TextVectorization(max_tokens={self.max_tokens}, standardize={self.standardize!r}, "
            f"split={self.split!r}, output_sequence_length={self.output_sequence_length}, "
            f"vocabulary: {size})"
        )
