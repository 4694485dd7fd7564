"""Sampling text from a trained language model.

**Priming.** The prompt is fed token by token from a zero state; the distribution after its
last token gives the first generated token. An empty prompt is read as one line end (the
start of a speech: the model then begins with a speaker's ``NAME:``).

**Drawing a token** (:class:`Sampler`, configured by :class:`~.config.SamplingConfig`)::

    z = logits / temperature                       (temperature 0: argmax z, no randomness)
    z[padding] = -inf; z[[UNK]] = -inf unless allow_unknown
    top_k > 0:  z[tokens outside the k largest] = -inf
    top_p < 1:  z[tokens outside the nucleus] = -inf  (the smallest set of most likely tokens
                whose probabilities, after the steps above, sum to >= top_p; the most
                likely token is always kept, however small top_p is)
    token = argmax(z + g),  g ~ Gumbel(0, 1) i.i.d.

The Gumbel-max trick draws exactly from ``softmax(z)`` with two tensor ops per token; the noise
comes in blocks from a ``torch.Generator`` seeded with ``seed``, so the same seed (and model)
gives the same text.

**Paths.** ``backend="fast"`` (default) runs :class:`~.fast.FastLSTM` (optionally with int8 or
bf16 weights); ``backend="layers"`` calls the Keras-style model once per token (the reference,
and the path for models :class:`~.fast.FastLSTM` does not cover).

**Streaming.** :meth:`TextGenerator.stream` yields each token's text as soon as it is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lstmkit.apps.textgen.config import SamplingConfig
from lstmkit.apps.textgen.data import EOL
from lstmkit.apps.textgen.fast import FastLSTM
from lstmkit.apps.textgen.model import LanguageModel, reset_states

BACKENDS = ("fast", "layers")


def filter_logits(
    logits: Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> Tensor:
    """``logits / temperature`` with every token outside the top-k and the top-p nucleus set to
    ``-inf`` (a new tensor; the last dimension is the vocabulary).

    >>> z = filter_logits(torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])), top_p=0.8)
    >>> torch.isfinite(z).tolist()
    [True, True, False, False]
    """
    if temperature <= 0:
        raise ValueError(f"filter_logits: temperature must be > 0, got {temperature}")
    z = logits.float() / temperature
    if top_k and top_k < z.shape[-1]:
        kth = torch.topk(z, top_k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, -math.inf)
    if top_p < 1.0:
        sorted_z, order = torch.sort(z, dim=-1, descending=True)
        probs = torch.softmax(sorted_z, dim=-1)
        # Keep a token if the probability of the tokens before it is still short of top_p.
        drop_sorted = (probs.cumsum(-1) - probs) >= top_p
        # The most likely token always stays: a top_p below float32's resolution (1e-300 is 0
        # in float32) or rounding in the cumulative sum would otherwise drop every token.
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        z = z.masked_fill(drop, -math.inf)
    return z


class Sampler:
    """Draws token ids from logits ``(V,)`` as the module docstring describes.

    Args:
        config: temperature, top-k, top-p, seed, ``allow_unknown``.
        vocab_size: ``V``.
        banned: ids never drawn (padding; ``[UNK]`` unless ``allow_unknown``).
        block: Gumbel noise rows drawn at once.
    """

    def __init__(
        self,
        config: SamplingConfig,
        vocab_size: int,
        banned: tuple[int, ...] = (0, 1),
        block: int = 512,
    ) -> None:
        self.config = config
        self.vocab_size = vocab_size
        self.generator = torch.Generator()
        if config.seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(config.seed)
        self.ban = torch.zeros(vocab_size)
        self.ban[list(banned)] = -math.inf
        self.greedy = config.temperature == 0
        self.filtered = config.top_k > 0 or config.top_p < 1.0
        self.block = block
        self._noise = torch.empty(0, vocab_size)
        self._next = 0
        self._buffer = torch.empty(vocab_size)

    def _noise_row(self) -> Tensor:
        if self._next == self._noise.shape[0]:
            u = torch.rand(self.block, self.vocab_size, generator=self.generator)
            # Gumbel(0, 1) = -log(-log U); U in (0, 1) keeps both logs finite.
            u.clamp_(min=torch.finfo(u.dtype).tiny, max=1.0 - torch.finfo(u.dtype).eps)
            self._noise = -torch.log(-torch.log(u))
            if not self.filtered:  # argmax(z / T + g) = argmax(z + T g): fold T and bans in
                self._noise.mul_(self.config.temperature).add_(self.ban)
            self._next = 0
        row = self._noise[self._next]
        self._next += 1
        return row

    def __call__(self, logits: Tensor) -> int:
        """The drawn id.

        Raises:
            FloatingPointError: the logits hold NaN (a model whose numbers overflowed), or no
                token may be drawn (every logit ``-inf`` or banned): nothing valid to return.
        """
        if self.greedy:
            score = torch.add(logits, self.ban, out=self._buffer)
        elif not self.filtered:
            score = torch.add(logits, self._noise_row(), out=self._buffer)
        else:
            cfg = self.config
            z = filter_logits(logits + self.ban, cfg.temperature, cfg.top_k, cfg.top_p)
            score = torch.add(z, self._noise_row(), out=self._buffer)
        token = int(score.argmax())
        # argmax picks a NaN if there is one; -inf means that every allowed token was -inf.
        if not score[token].item() > -math.inf:
            finite = f"{int(torch.isfinite(logits).sum())} of {logits.numel()} finite"
            why = (
                "hold NaN"
                if bool(torch.isnan(logits).any())
                else "are -inf for every token allowed"
            )
            raise FloatingPointError(
                f"Sampler: no token can be drawn: the model's logits {why} ({finite})"
            )
        return token


class TextGenerator:
    """Generates text from a :class:`~.model.LanguageModel`.

    Args:
        lm: the trained model, vocabulary and config.
        backend: ``"fast"`` (:class:`~.fast.FastLSTM`) or ``"layers"`` (the Keras-style model).
        weights: the fast path's weights: ``"fp32"``, ``"bf16"`` or ``"int8"``.
    """

    def __init__(self, lm: LanguageModel, backend: str = "fast", weights: str = "fp32") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend == "layers" and weights != "fp32":
            raise ValueError("weights other than fp32 need backend='fast'")
        self.lm, self.backend, self.weights = lm, backend, weights
        self.fast = FastLSTM(lm.model, weights=weights) if backend == "fast" else None

    def encode_prompt(self, prompt: str, unknown: str | None = None) -> list[int]:
        """Prompt ids (an empty prompt is one line end); see :meth:`Vocabulary.encode`."""
        vocab = self.lm.vocab
        ids = vocab.encode(prompt, unknown).tolist() if prompt else []
        if not ids:
            ids = [vocab.index["\n" if vocab.level == "char" else EOL]]
        return ids

    def sampler(self, sampling: SamplingConfig) -> Sampler:
        banned = (0,) if sampling.allow_unknown else (0, self.lm.vocab.unknown_id)
        return Sampler(sampling, len(self.lm.vocab), banned)

    def generate_ids(
        self,
        prompt_ids: list[int],
        length: int,
        sampling: SamplingConfig | None = None,
        on_token: Any = None,
    ) -> list[int]:
        """``length`` generated ids after ``prompt_ids``; ``on_token(id)`` sees each at once."""
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        if self.fast is not None:  # the tight loop
            return self.fast.run(
                prompt_ids, length, self.sampler(sampling or SamplingConfig()), on_token
            )
        out = []
        for token in self.iter_ids(prompt_ids, length, sampling):
            out.append(token)
            if on_token is not None:
                on_token(token)
        return out

    @torch.no_grad()
    def iter_ids(
        self, prompt_ids: list[int], length: int, sampling: SamplingConfig | None = None
    ) -> Iterator[int]:
        """Yield ``length`` generated ids after ``prompt_ids``, each as soon as it is drawn."""
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        choose = self.sampler(sampling or SamplingConfig())
        if self.fast is not None:
            fast = self.fast
            fast.reset()
            logits = fast.prime(prompt_ids)
            for n in range(length):
                token = choose(logits)
                yield token
                if n + 1 < length:
                    logits = fast.step(token)
            return
        model = self.lm.model
        model.eval()
        reset_states(model)
        try:
            x = torch.as_tensor(np.asarray(prompt_ids, dtype=np.int64)).view(1, -1)
            logits = model(x, training=False)[0, -1]  # (V,)
            for n in range(length):
                token = choose(logits)
                yield token
                if n + 1 < length:
                    logits = model(torch.tensor([[token]]), training=False)[0, -1]
        finally:
            reset_states(model)

    def stream(
        self,
        prompt: str = "",
        length: int = 500,
        sampling: SamplingConfig | None = None,
        unknown: str | None = None,
    ) -> Iterator[str]:
        """Yield the generated text piece by piece (one token's text each), as it is drawn."""
        prompt_ids = self.encode_prompt(prompt, unknown)
        previous = prompt_ids[-1]
        for token in self.iter_ids(prompt_ids, length, sampling):
            yield self.lm.vocab.decode([token], after=previous)
            previous = token

    def generate(
        self,
        prompt: str = "",
        length: int = 500,
        sampling: SamplingConfig | None = None,
        unknown: str | None = None,
    ) -> str:
        """The generated text (without the prompt)."""
        prompt_ids = self.encode_prompt(prompt, unknown)
        ids = self.generate_ids(prompt_ids, length, sampling)
        return self.lm.vocab.decode(ids, after=prompt_ids[-1])
