"""Long-range tasks (Hochreiter & Schmidhuber 1997) as data generators.

Each generator draws a batch from a ``numpy.random.Generator`` (or a seed) and returns float32
inputs ``x (B, L, I)`` and targets. One sequence length ``L`` is drawn per batch (so a batch is
a plain array and torch's fused kernels can train on it); with ``per_sequence=True`` each
sequence draws its own length and the batch is right-padded with a ``(B, L)`` mask.

**Adding problem** (H&S 1997, experiment 4). Each step is a pair ``(value, marker)``. The length
is drawn from ``[T, T + T/10]``. Exactly two pairs are marked with ``marker = 1``: the first
among the first ten pairs, the second among the first ``T/2 - 1`` still unmarked pairs; the
first and the last pair have ``marker = -1`` unless marked, all others ``0``. The target is a
function of the two marked values ``X1, X2``:

* default (the modern scale of Le, Jaitly & Hinton 2015 and later work): values uniform in
  ``[0, 1]``, target ``X1 + X2``; predicting the mean 1 gives ``MSE = 2 · 1/12 = 1/6 ≈ 0.167``,
  and the task counts as solved at ``MSE < 0.01``;
* ``original=True`` (the paper's): values uniform in ``[-1, 1]``, ``X1 = 0`` if the first pair
  is marked, target ``0.5 + (X1 + X2) / 4``; the mean predictor scores ``1/24 ≈ 0.042``.

Because both marks fall in the first half, the network must carry the information over at least
``T/2`` steps of distractors.

**Temporal order** (H&S 1997, experiment 6a). Symbols ``a, b, c, d`` (distractors), ``X, Y``
(relevant), ``B``/``E`` (begin/end), one-hot in this order (8 inputs). A sequence of length
``L ∈ [T, T + T/10]`` starts with ``B`` and ends with ``E``; ``X`` or ``Y`` appears at one
position in ``[T/10, 2T/10]`` and one in ``[5T/10, 6T/10]``; the rest are distractors. The class
is the order ``XX, XY, YX, YY`` (0–3); chance is 25 % correct.

**Copy memory** (Hochreiter & Schmidhuber 1997, experiment 2's "remember a sequence" theme in
the form of Arjovsky, Shah & Bengio 2016): ``n`` symbols from ``1 … K`` (``K = 8``), then
``T - 1`` blanks (``0``), a go marker (``K + 1``) and ``n`` more blanks; the target is blank
everywhere except the last ``n`` steps, which must repeat the ``n`` symbols. Inputs are one-hot
(``K + 2``); targets are class indices per step. Guessing scores ``1 - 1/K`` symbol error.

Example:
    >>> x, y = adding_problem(4, 100, rng=0)
    >>> x.shape[0], 100 <= x.shape[1] <= 110, x.shape[2], y.shape
    (4, True, 2, (4, 1))
    >>> bool(((x[:, :, 1] == 1).sum(1) == 2).all())
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

RNG = np.random.Generator | int | None


def _rng(rng: RNG) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check(name: str, batch_size: int, length: int, minimum: int) -> None:
    for arg, value, low in (("batch_size", batch_size, 1), ("length", length, minimum)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name}: {arg} must be an integer >= {low}, got {value!r}")


def draw_length(length: int, rng: np.random.Generator) -> int:
    """A sequence length from ``[T, T + T/10]`` (H&S 1997)."""
    return int(rng.integers(length, length + length // 10 + 1))


def _pad(seqs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad ``(L_b, I)`` arrays to ``(B, L_max, I)``; mask ``(B, L_max)``."""
    longest = max(s.shape[0] for s in seqs)
    x = np.zeros((len(seqs), longest, seqs[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(seqs), longest), dtype=bool)
    for b, s in enumerate(seqs):
        x[b, : len(s)] = s
        mask[b, : len(s)] = True
    return x, mask


# -- adding ------------------------------------------------------------------------------------


def _adding_one(
    length: int, base: int, rng: np.random.Generator, original: bool
) -> tuple[np.ndarray, float]:
    """One sequence of ``length`` pairs for the minimal length ``base`` (``T``)."""
    low = -1.0 if original else 0.0
    seq = np.zeros((length, 2), dtype=np.float32)
    seq[:, 0] = rng.uniform(low, 1.0, size=length)
    first = int(rng.integers(0, min(10, length)))
    half = max(base // 2 - 1, 2)  # the second mark is among the first T/2 - 1 pairs
    if first < half:
        second = int(rng.integers(0, half - 1))
        second += second >= first
    else:
        second = int(rng.integers(0, half))
    seq[0, 1] = seq[-1, 1] = -1.0
    seq[first, 1] = seq[second, 1] = 1.0
    x1, x2 = float(seq[first, 0]), float(seq[second, 0])
    if original:
        if first == 0:
            x1 = 0.0
        return seq, 0.5 + (x1 + x2) / 4.0
    return seq, x1 + x2


def adding_problem(
    batch_size: int,
    length: int,
    rng: RNG = None,
    *,
    original: bool = False,
    per_sequence: bool = False,
) -> tuple[np.ndarray, ...]:
    """A batch of the adding problem (see the module docstring).

    Returns:
        ``(x (B, L, 2), y (B, 1))``, or ``(x, y, mask (B, L))`` with ``per_sequence``.
    """
    _check("adding_problem", batch_size, length, 4)
    gen = _rng(rng)
    common = draw_length(length, gen)
    seqs, ys = [], []
    for _ in range(batch_size):
        size = draw_length(length, gen) if per_sequence else common
        seq, y = _adding_one(size, length, gen, original)
        seqs.append(seq)
        ys.append(y)
    y = np.asarray(ys, dtype=np.float32)[:, None]
    if per_sequence:
        x, mask = _pad(seqs)
        return x, y, mask
    return np.stack(seqs), y


# -- temporal order ----------------------------------------------------------------------------

ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y", "B", "E")
ORDER_CLASSES = ("XX", "XY", "YX", "YY")


def _order_one(length: int, base: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    symbols = rng.integers(0, 4, size=length)
    symbols[0], symbols[-1] = 6, 7
    t1 = int(rng.integers(max(1, base // 10), max(2, 2 * base // 10) + 1))
    t2 = int(rng.integers(max(t1 + 1, 5 * base // 10), max(t1 + 2, 6 * base // 10) + 1))
    t2 = min(t2, length - 2)
    a, b = int(rng.integers(0, 2)), int(rng.integers(0, 2))
    symbols[t1], symbols[t2] = 4 + a, 4 + b
    return np.eye(8, dtype=np.float32)[symbols], 2 * a + b


def temporal_order(
    batch_size: int, length: int, rng: RNG = None, *, per_sequence: bool = False
) -> tuple[np.ndarray, ...]:
    """A batch of the temporal-order problem: ``(x (B, L, 8), y (B,) int64 class 0–3)``
    (``+ mask`` with ``per_sequence``)."""
    _check("temporal_order", batch_size, length, 10)
    gen = _rng(rng)
    common = draw_length(length, gen)
    seqs, ys = [], []
    for _ in range(batch_size):
        seq, y = _order_one(draw_length(length, gen) if per_sequence else common, length, gen)
        seqs.append(seq)
        ys.append(y)
    y = np.asarray(ys, dtype=np.int64)
    if per_sequence:
        x, mask = _pad(seqs)
        return x, y, mask
    return np.stack(seqs), y


# -- copy memory -------------------------------------------------------------------------------


def copy_memory(
    batch_size: int,
    delay: int,
    rng: RNG = None,
    *,
    n_symbols: int = 8,
    copy_length: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of the copy-memory task: ``x (B, L, K + 2)`` one-hot with
    ``L = delay + 2 · copy_length``, and ``y (B, L)`` int64 (0 = blank, ``1 … K`` symbols)."""
    _check("copy_memory", batch_size, delay, 1)
    if n_symbols < 1 or copy_length < 1:
        raise ValueError(
            f"copy_memory: n_symbols and copy_length must be >= 1, got {n_symbols}, {copy_length}"
        )
    gen = _rng(rng)
    total = delay + 2 * copy_length
    data = gen.integers(1, n_symbols + 1, size=(batch_size, copy_length))
    tokens = np.zeros((batch_size, total), dtype=np.int64)
    tokens[:, :copy_length] = data
    tokens[:, copy_length + delay - 1] = n_symbols + 1
    y = np.zeros((batch_size, total), dtype=np.int64)
    y[:, -copy_length:] = data
    return np.eye(n_symbols + 2, dtype=np.float32)[tokens], y


# -- a common description for experiments --------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """A task for the experiments: how to draw a batch, what the model outputs and how the
    error is measured.

    Attributes:
        name: CLI name. input_size: ``I``. output_size: regression outputs or classes.
        sequence_output: the model predicts at every step (copy memory) instead of at the end.
        loss: the Keras loss name. error_name: what :attr:`error` measures.
        trivial_error: the error of the best input-independent predictor.
        solved_below: the task counts as solved when the test error is below this.
    """

    name: str
    input_size: int
    output_size: int
    sequence_output: bool
    loss: str
    error_name: str
    trivial_error: float
    solved_below: float
    sample: Callable[[int, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]

    def error(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """MSE (adding) or the fraction of wrong classes (temporal order: per sequence; copy:
        per recalled symbol)."""
        if self.loss == "mse":
            return float(np.mean((np.asarray(y_pred).reshape(-1) - y_true.reshape(-1)) ** 2))
        pred = np.asarray(y_pred).argmax(-1)
        if self.sequence_output:
            n = COPY_LENGTH
            return float(np.mean(pred[:, -n:] != y_true[:, -n:]))
        return float(np.mean(pred != y_true))

    def batches(self, batch_size: int, length: int, seed: int) -> Iterator[tuple[Any, Any]]:
        """Endless ``(x, y)`` batches (one length per batch) from ``seed``."""
        gen = np.random.default_rng(seed)
        while True:
            yield self.sample(batch_size, length, gen)


COPY_LENGTH = 10

TASKS: dict[str, Task] = {
    "adding": Task(
        "adding",
        2,
        1,
        False,
        "mse",
        "MSE",
        1.0 / 6.0,
        0.01,
        lambda b, t, g: adding_problem(b, t, g),
    ),
    "temporal-order": Task(
        "temporal-order",
        8,
        4,
        False,
        "sparse_categorical_crossentropy",
        "error rate",
        0.75,
        0.01,
        lambda b, t, g: temporal_order(b, t, g),
    ),
    "copy": Task(
        "copy",
        10,
        10,
        True,
        "sparse_categorical_crossentropy",
        "symbol error",
        1.0 - 1.0 / 8.0,
        0.01,
        lambda b, t, g: copy_memory(b, t, g, copy_length=COPY_LENGTH),
    ),
}


def get_task(name: str) -> Task:
    """The task called ``name`` (``adding``, ``temporal-order``, ``copy``)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}") from None
