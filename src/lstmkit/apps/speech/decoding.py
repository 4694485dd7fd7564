"""Turning CTC outputs into label sequences, and scoring them against references.

A CTC model emits, for each of ``T`` frames, log-probabilities over ``C`` classes, one of
which is the blank (index ``blank``, 0 by default). A path (one class per frame) maps to a
label sequence by collapsing repeated classes and then removing blanks: ``a a _ a`` → ``a a``
(Graves et al. 2006). Shapes use the legend ``(B, T, C)``: batch, frames, classes.

- ``ctc_greedy_decode``: the most probable *path*, collapsed (best-path decoding).
- ``ctc_prefix_beam_search``: approximately the most probable *label sequence*, summing the
  probabilities of all paths that collapse to it (prefix beam search, Hannun et al. 2014,
  without a language model). The two can differ: for two frames with P(blank) = 0.6 and
  P(a) = 0.4 each, the best path is ``_ _`` → ``[]`` (0.36), but ``[a]`` has 0.64.
- ``error_rates``: word, character and sentence error rates of transcripts, via ``jiwer``.

Example:
    >>> import torch
    >>> log_probs = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()  # (T=2, C=2), blank = 0
    >>> ctc_greedy_decode(log_probs)
    [[]]
    >>> [(labels, round(score, 4)) for labels, score in ctc_prefix_beam_search(log_probs)]
    [([1], -0.4463), ([], -1.0217)]
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import jiwer
import numpy as np
import torch

__all__ = ["ctc_greedy_decode", "ctc_prefix_beam_search", "error_rates"]

_NEG_INF = -math.inf


def ctc_greedy_decode(
    log_probs: torch.Tensor | np.ndarray,
    lengths: torch.Tensor | Sequence[int] | None = None,
    blank: int = 0,
) -> list[list[int]]:
    """Best-path decoding: the most probable class per frame, repeats collapsed, blanks dropped.

    Args:
        log_probs: ``(T, C)`` or ``(B, T, C)`` scores per frame (log-probabilities, or anything
            with the same argmax, e.g. logits).
        lengths: ``(B,)`` valid frames per sequence; default all ``T``.
        blank: index of the blank class.

    Returns:
        One label list per sequence (a single list inside a list for ``(T, C)`` input).
    """
    x = _as_tensor("ctc_greedy_decode", log_probs)
    if x.ndim == 2:
        x = x.unsqueeze(0)  # (1, T, C)
    if x.ndim != 3:
        raise ValueError(
            f"ctc_greedy_decode: expected log_probs of shape (T, C) or (B, T, C), "
            f"got {tuple(x.shape)}"
        )
    B, T, C = x.shape
    _check_blank("ctc_greedy_decode", blank, C)
    if lengths is None:
        lengths = [T] * B
    lengths = [int(n) for n in torch.as_tensor(lengths).reshape(-1).tolist()]
    if len(lengths) != B or any(not 0 <= n <= T for n in lengths):
        raise ValueError(f"ctc_greedy_decode: expected {B} lengths in [0, {T}], got {lengths}")
    best = x.argmax(dim=-1)  # (B, T)
    out = []
    for b in range(B):
        path = torch.unique_consecutive(best[b, : lengths[b]])  # collapse repeats
        out.append([int(c) for c in path.tolist() if c != blank])
    return out


MAX_BEAM_SIZE = 1024
"""The widest prefix beam search: each frame scores ``beam_size × classes`` extensions, so an
unbounded width (``10**12``) never finishes."""


def ctc_prefix_beam_search(
    log_probs: torch.Tensor | np.ndarray, beam_size: int = 8, blank: int = 0
) -> list[tuple[list[int], float]]:
    """CTC prefix beam search (Hannun et al. 2014) without a language model.

    Each kept prefix ``ℓ`` carries two log-probabilities over the frames so far: ``p_b``, of
    the paths that collapse to ``ℓ`` and end in a blank, and ``p_nb``, of those ending in
    ``ℓ``'s last label. At frame ``t`` with class log-probabilities ``y``:

    - blank: ``ℓ`` stays; ``p_b(ℓ) ⊕= (p_b ⊕ p_nb)(ℓ) + y[blank]``;
    - the last label ``c`` of ``ℓ`` again: collapses, ``p_nb(ℓ) ⊕= p_nb(ℓ) + y[c]``; after a
      blank it is a new label, ``p_nb(ℓ + c) ⊕= p_b(ℓ) + y[c]``;
    - any other label ``c``: ``p_nb(ℓ + c) ⊕= (p_b ⊕ p_nb)(ℓ) + y[c]``;

    (``⊕`` is log-sum-exp), then the ``beam_size`` prefixes with the largest ``p_b ⊕ p_nb``
    are kept. With a beam as large as the number of prefixes the scores are exact: the log
    of the summed probability of every path that collapses to the prefix.

    Args:
        log_probs: ``(T, C)`` log-probabilities (each row a log-softmax) of one sequence.
        beam_size: prefixes kept after each frame.
        blank: index of the blank class.

    Returns:
        Up to ``beam_size`` pairs ``(labels, log_probability)``, most probable first.
    """
    x = _as_tensor("ctc_prefix_beam_search", log_probs)
    if x.ndim != 2:
        raise ValueError(
            f"ctc_prefix_beam_search: expected log_probs of shape (T, C), got {tuple(x.shape)}"
        )
    if (
        isinstance(beam_size, bool)
        or not isinstance(beam_size, int)
        or not 1 <= beam_size <= MAX_BEAM_SIZE
    ):
        raise ValueError(
            f"ctc_prefix_beam_search: expected beam_size in [1, {MAX_BEAM_SIZE}], got {beam_size!r}"
        )
    _check_blank("ctc_prefix_beam_search", blank, x.shape[1])
    frames = x.detach().to("cpu", torch.float64).tolist()  # (T, C) as Python floats

    beam: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, _NEG_INF)}  # ℓ: (p_b, p_nb)
    for y in frames:
        nxt: defaultdict[tuple[int, ...], list[float]] = defaultdict(lambda: [_NEG_INF, _NEG_INF])
        for prefix, (p_b, p_nb) in beam.items():
            p_total = _logaddexp(p_b, p_nb)
            for c, y_c in enumerate(y):
                if y_c == _NEG_INF:
                    continue
                if c == blank:
                    stay = nxt[prefix]
                    stay[0] = _logaddexp(stay[0], p_total + y_c)
                elif prefix and c == prefix[-1]:
                    stay, extend = nxt[prefix], nxt[(*prefix, c)]
                    stay[1] = _logaddexp(stay[1], p_nb + y_c)
                    extend[1] = _logaddexp(extend[1], p_b + y_c)
                else:
                    extend = nxt[(*prefix, c)]
                    extend[1] = _logaddexp(extend[1], p_total + y_c)
        scored = [(_logaddexp(*probs), prefix, probs) for prefix, probs in nxt.items()]
        ranked = sorted((item for item in scored if item[0] > _NEG_INF), reverse=True)
        beam = {prefix: (p_b, p_nb) for _, prefix, (p_b, p_nb) in ranked[:beam_size]}
    return [(list(prefix), _logaddexp(p_b, p_nb)) for prefix, (p_b, p_nb) in beam.items()]


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """Corpus-level word, character and sentence error rates.

    ``wer``: word edits (substitutions + deletions + insertions) over reference words;
    ``cer``: the same over characters (spaces included); ``ser``: fraction of sentences whose
    words differ at all. Computed by ``jiwer`` (WER, CER) after splitting on whitespace.

    Args:
        refs: reference transcripts, each with at least one word.
        hyps: hypotheses, one per reference (may be empty strings).

    Returns:
        ``{"wer": …, "cer": …, "ser": …}``, fractions (WER and CER may exceed 1).
    """
    for name, texts in (("refs", refs), ("hyps", hyps)):
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"error_rates: expected {name} to be a sequence of str, got {texts!r}")
    if len(refs) != len(hyps) or not refs:
        raise ValueError(
            f"error_rates: expected equally many refs and hyps (at least one), "
            f"got {len(refs)} refs and {len(hyps)} hyps"
        )
    ref_words = [r.split() for r in refs]
    hyp_words = [h.split() for h in hyps]
    empty = [i for i, words in enumerate(ref_words) if not words]
    if empty:
        raise ValueError(
            f"error_rates: expected every reference to have words, refs {empty} are empty"
        )
    refs_clean = [" ".join(w) for w in ref_words]
    hyps_clean = [" ".join(w) for w in hyp_words]
    return {
        "wer": float(jiwer.wer(refs_clean, hyps_clean)),
        "cer": float(jiwer.cer(refs_clean, hyps_clean)),
        "ser": sum(r != h for r, h in zip(ref_words, hyp_words)) / len(refs),
    }


def _logaddexp(a: float, b: float) -> float:
    if a == _NEG_INF:
        return b
    if b == _NEG_INF:
        return a
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def _as_tensor(fn: str, log_probs: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(log_probs, np.ndarray):
        return torch.from_numpy(log_probs)
    if not isinstance(log_probs, torch.Tensor):
        raise TypeError(
            f"{fn}: expected log_probs to be a torch.Tensor or NumPy array, "
            f"got {type(log_probs).__name__}"
        )
    return log_probs


def _check_blank(fn: str, blank: int, classes: int) -> None:
    if isinstance(blank, bool) or not isinstance(blank, int) or not 0 <= blank < classes:
        raise ValueError(f"{fn}: expected blank in [0, {classes}), got {blank!r}")
