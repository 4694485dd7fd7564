"""Data for translation: sentence pairs, SentencePiece vocabularies, length-bucketed batches.

* Pairs come from :func:`lstmkit.datasets.load_de_en` (the Ding dictionary's sentence pairs,
  split by a hash of the German sentence), optionally with a fixed random subset of the
  dictionary's phrase pairs added to the training split (``TranslateConfig.phrases``).
* One SentencePiece model per language, trained on the **training split only**, with byte
  fallback: a character never seen in training becomes its UTF-8 bytes (``<0xE2>`` …) instead of
  ``<unk>``, so any input encodes and decodes. Ids: 0 padding, 1 unknown, 2 begin, 3 end of
  sentence. A :class:`Vocab` serialises to base64 text, which is how it travels inside the model
  file (``model.assets``).
* Batches hold pairs of similar length (:class:`BucketSampler`), padded with 0 on the right:
  ``x = [src (B, S), tgt_in (B, T)]`` with ``tgt_in = <s> y``, ``y = tgt_out (B, T) = y </s>``.
  The order is a function of ``(seed, epoch)`` so that an interrupted run resumes exactly.
"""

from __future__ import annotations

import base64
import io
import math
import random
import warnings
from collections.abc import Iterable, Iterator, Sequence

import sentencepiece as spm
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lstmkit.apps.translate.config import TranslateConfig
from lstmkit.apps.translate.user_pairs import clean_line, user_split
from lstmkit.datasets.translation import load_de_en

PAD, UNK, BOS, EOS = 0, 1, 2, 3

Pair = tuple[str, str]


# -- sentence pairs -----------------------------------------------------------------------------


def load_pairs(split: str, cfg: TranslateConfig) -> list[Pair]:
    """``(German, English)`` pairs of ``split`` (``(source, target)`` pairs of the user's data
    when ``cfg.data`` or ``cfg.source_file`` is set: :mod:`~.user_pairs`).

    Of the training split, ``cfg.train_fraction`` of the sentence pairs are kept (the first of a
    shuffle drawn with ``cfg.seed``, in their original order, so a smaller fraction's pairs are a
    subset of a larger one's), and ``cfg.phrases`` phrase pairs are added (a subset drawn with
    ``cfg.seed``, the same for every run with that seed)."""
    if cfg.data or cfg.source_file:
        sentences = pairs = user_split(split, cfg)
    else:
        sentences = pairs = load_de_en(split)
    if split == "train" and cfg.train_fraction < 1.0:
        order = list(range(len(pairs)))
        random.Random(cfg.seed).shuffle(order)
        keep = sorted(order[: max(1, round(cfg.train_fraction * len(pairs)))])
        pairs = [pairs[i] for i in keep]
    if split == "train" and cfg.phrases:
        phrases = load_de_en("train", include_phrases=True)[len(sentences) :]
        if 0 < cfg.phrases < len(phrases):
            phrases = random.Random(cfg.seed).sample(phrases, cfg.phrases)
        pairs = pairs + phrases
    return pairs


# -- vocabularies ---------------------------------------------------------------------------------


class Vocab:
    """A SentencePiece model: text <-> subword ids (0 pad, 1 unk, 2 <s>, 3 </s>).

    >>> v = Vocab.train(["ein kleiner Test.", "noch ein Test!"] * 20, vocab_size=300)
    >>> v.decode(v.encode("ein Test ☃"))
    'ein Test ☃'
    """

    def __init__(self, proto: bytes) -> None:
        self.proto = bytes(proto)
        self.sp = spm.SentencePieceProcessor(model_proto=self.proto)
        if (self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id()) != (
            PAD,
            UNK,
            BOS,
            EOS,
        ):
            raise ValueError(
                "Vocab: the SentencePiece model must use ids 0 pad, 1 unk, 2 bos, 3 eos"
            )

    @classmethod
    def train(cls, sentences: Iterable[str], vocab_size: int, model_type: str = "unigram") -> Vocab:
        """Train a SentencePiece model on ``sentences`` (with byte fallback). A ``vocab_size``
        larger than the text supports gives the largest vocabulary it does support; one too
        small to hold the 4 special ids, the 256 bytes and every character is raised to that."""
        sentences = list(sentences)
        chars = len(set("".join(sentences)) - {" "})
        buffer = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=buffer,
            vocab_size=max(vocab_size, 4 + 256 + chars + 1),
            model_type=model_type,
            character_coverage=0.9999,
            byte_fallback=True,
            hard_vocab_limit=False,
            pad_id=PAD,
            unk_id=UNK,
            bos_id=BOS,
            eos_id=EOS,
            num_threads=1,
            minloglevel=2,
        )
        return cls(buffer.getvalue())

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text, out_type=int)

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.decode([int(i) for i in ids if int(i) > EOS])

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.sp.id_to_piece(int(i)) for i in ids]

    def to_text(self) -> str:
        """The model as base64 text (for ``model.assets``)."""
        return base64.b64encode(self.proto).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls(base64.b64decode(text.encode("ascii")))


def train_vocabs(pairs: Sequence[Pair], cfg: TranslateConfig) -> tuple[Vocab, Vocab]:
    """The German and the English vocabulary, trained on ``pairs`` (the training split)."""
    src = Vocab.train((de for de, _ in pairs), cfg.src_vocab_size, cfg.spm_model_type)
    tgt = Vocab.train((en for _, en in pairs), cfg.tgt_vocab_size, cfg.spm_model_type)
    return src, tgt


# -- encoding -------------------------------------------------------------------------------------


def encode_source(text: str, vocab: Vocab, cfg: TranslateConfig, *, warn: bool = True) -> list[int]:
    """Ids of one input line followed by ``</s>``; an empty line gives ``[]``.

    Lines longer than ``cfg.max_input_chars`` characters, or ``cfg.max_src_tokens`` tokens,
    are cut, with a ``UserWarning`` saying so.
    """
    text = clean_line(text)
    if not text:
        return []
    if len(text) > cfg.max_input_chars:
        if warn:
            warnings.warn(
                f"input line of {len(text)} characters cut to its first {cfg.max_input_chars} "
                f"(max_input_chars)",
                UserWarning,
                stacklevel=2,
            )
        text = text[: cfg.max_input_chars]
    ids = vocab.encode(text)
    limit = cfg.max_src_tokens - 1
    if len(ids) > limit:
        if warn:
            warnings.warn(
                f"input line of {len(ids)} subword tokens cut to its first {limit} "
                f"(max_src_tokens)",
                UserWarning,
                stacklevel=2,
            )
        ids = ids[:limit]
    return [*ids, EOS]


def encode_pairs(
    pairs: Sequence[Pair], src: Vocab, tgt: Vocab, cfg: TranslateConfig
) -> list[tuple[list[int], list[int]]]:
    """``(source ids + </s>, target ids)`` for every pair, both cut to the configured maxima."""
    out = []
    for de, en in pairs:
        s = [*src.encode(clean_line(de))[: cfg.max_src_tokens - 1], EOS]
        t = tgt.encode(clean_line(en))[: cfg.max_tgt_tokens - 1]
        out.append((s, t))
    return out


def pad(rows: Sequence[Sequence[int]], length: int | None = None) -> Tensor:
    """Right-pad id lists with 0 into a ``(B, max len)`` int64 tensor."""
    length = max((len(r) for r in rows), default=0) if length is None else length
    out = torch.zeros(len(rows), max(length, 1), dtype=torch.long)
    for i, r in enumerate(rows):
        if r:
            out[i, : len(r)] = torch.as_tensor(r[:length], dtype=torch.long)
    return out


# -- batches --------------------------------------------------------------------------------------


class BucketSampler:
    """Batches of indices of similar length.

    With ``shuffle``: each epoch draws a permutation from ``(seed, epoch)``, sorts it by length
    within chunks of 50 batches, cuts batches and shuffles their order. Without: batches of
    the length-sorted data, in order. Every epoch has ``len(self)`` batches.
    """

    def __init__(
        self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by ``fit`` at each epoch's start (the DistributedSampler convention)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = sorted(range(n), key=lambda i: self.lengths[i])
            yield from (order[i : i + bs] for i in range(0, n, bs))
            return
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(n, generator=gen).tolist()
        chunk = bs * 50
        batches = []
        for lo in range(0, n, chunk):
            part = sorted(order[lo : lo + chunk], key=lambda i: self.lengths[i])
            batches.extend(part[i : i + bs] for i in range(0, len(part), bs))
        for j in torch.randperm(len(batches), generator=gen).tolist():
            yield batches[j]


class PairBatches(Dataset):
    """``dataset[list of indices]`` -> ``([src, tgt_in], tgt_out)`` padded tensors."""

    def __init__(self, encoded: Sequence[tuple[list[int], list[int]]]) -> None:
        self.encoded = list(encoded)

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, indices: list[int]) -> tuple[list[Tensor], Tensor]:
        rows = [self.encoded[i] for i in indices]
        src = pad([s for s, _ in rows])
        tgt_in = pad([[BOS, *t] for _, t in rows])
        tgt_out = pad([[*t, EOS] for _, t in rows])
        return [src, tgt_in], tgt_out


def _identity(batch: object) -> object:
    return batch


def make_loader(
    encoded: Sequence[tuple[list[int], list[int]]],
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
) -> DataLoader:
    """A ``DataLoader`` of padded, length-bucketed batches for ``Model.fit``/``evaluate``."""
    lengths = [max(len(s), len(t) + 1) for s, t in encoded]
    sampler = BucketSampler(lengths, batch_size, shuffle=shuffle, seed=seed)
    return DataLoader(PairBatches(encoded), sampler=sampler, batch_size=None, collate_fn=_identity)
