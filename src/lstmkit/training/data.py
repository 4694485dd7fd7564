"""Turning what users pass to ``fit``/``evaluate``/``predict`` into batches.

Accepted, as Keras: numpy arrays, torch tensors, nested Python lists of numbers, a list (or dict
by input name) of arrays for multi-input models, a ``torch.utils.data.Dataset`` or
``DataLoader`` yielding ``(x, y)`` or ``(x, y, sample_weight)``, and Python generators/iterators
yielding batches.

In-memory arrays are sliced directly (no DataLoader, no per-sample Python): each epoch draws one
permutation from a generator seeded with ``(seed, epoch)`` so that shuffling is reproducible,
can be sharded across processes (``rank::world_size``, as ``DistributedSampler``) and can resume
mid-epoch at a given batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

Structure = Any  # a tensor, or a list/tuple/dict of tensors


def _to_tensor(a: Any, argument: str) -> Tensor:
    if isinstance(a, Tensor):
        return a
    if isinstance(a, np.ndarray):
        if a.dtype.kind in "OUS":
            raise TypeError(f"{argument}: expected numeric data, got a numpy array of {a.dtype}")
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(a))
    if isinstance(a, (list, tuple)):
        try:
            arr = np.asarray(a)
        except ValueError as e:
            raise ValueError(
                f"{argument}: a ragged nested list cannot become an array "
                f"(pad it, e.g. with lstmkit.data.pad_sequences): {e}"
            ) from None
        if arr.dtype.kind in "OUS":
            raise TypeError(
                f"{argument}: expected numbers, got elements of type "
                f"{type(np.ravel(arr)[0]).__name__}"
            )
        return _to_tensor(arr, argument)
    if np.isscalar(a):
        raise TypeError(f"{argument}: expected an array, got the scalar {a!r}")
    raise TypeError(
        f"{argument}: expected a numpy array, torch tensor, list, Dataset, DataLoader "
        f"or generator, got {type(a).__name__}"
    )


def _is_multi(x: Any) -> bool:
    return (
        isinstance(x, (list, tuple))
        and len(x) > 0
        and all(isinstance(e, (np.ndarray, Tensor)) for e in x)
    )


def to_structure(x: Any, argument: str) -> Structure:
    """Tensors (or a list/dict of them) from arrays, tensors, lists."""
    if x is None:
        return None
    if isinstance(x, dict):
        return {k: _to_tensor(v, f"{argument}[{k!r}]") for k, v in x.items()}
    if _is_multi(x):
        return [_to_tensor(v, f"{argument}[{i}]") for i, v in enumerate(x)]
    return _to_tensor(x, argument)


def _leaves(s: Structure) -> list[Tensor]:
    if s is None:
        return []
    if isinstance(s, dict):
        return list(s.values())
    if isinstance(s, (list, tuple)):
        return list(s)
    return [s]


def _index(s: Structure, idx: Tensor | slice) -> Structure:
    if s is None:
        return None
    if isinstance(s, dict):
        return {k: v[idx] for k, v in s.items()}
    if isinstance(s, (list, tuple)):
        return [v[idx] for v in s]
    return s[idx]


def move(s: Structure, device: torch.device) -> Structure:
    """Move a batch structure to ``device`` (no copy when already there)."""
    if s is None:
        return None
    if isinstance(s, dict):
        return {k: move(v, device) for k, v in s.items()}
    if isinstance(s, (list, tuple)):
        return [move(v, device) for v in s]
    if isinstance(s, Tensor) and s.device != device:
        return s.to(device, non_blocking=True)
    return s


def num_samples(s: Structure, argument: str) -> int:
    sizes = {int(t.shape[0]) for t in _leaves(s) if t.dim() > 0}
    if len(sizes) > 1:
        raise ValueError(
            f"{argument}: all arrays must have the same number of samples, got {sorted(sizes)}"
        )
    if not sizes:
        raise ValueError(f"{argument}: expected arrays with a batch dimension")
    return sizes.pop()


def class_weights_to_sample_weights(y: Tensor, class_weight: dict[int, float]) -> Tensor:
    """Keras's ``class_weight``: each sample weighs ``class_weight[its class]`` (class = the
    integer label, or the argmax of a one-hot label)."""
    if not isinstance(class_weight, dict) or not class_weight:
        raise ValueError(
            f"class_weight: expected a non-empty dict {{class: weight}}, got {class_weight!r}"
        )
    for k, v in class_weight.items():
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
            raise ValueError(
                f"class_weight: keys must be class indices (integers >= 0), got {k!r} "
                f"({type(k).__name__})"
            )
        if (
            isinstance(v, bool)
            or not isinstance(v, int | float | np.integer | np.floating)
            or not math.isfinite(v)
            or v < 0
        ):
            raise ValueError(
                f"class_weight: the weight of class {k} must be a finite number >= 0, got {v!r}"
            )
    labels = y
    if labels.dim() >= 2 and labels.shape[-1] > 1:
        labels = labels.argmax(-1)
    elif labels.dim() >= 2:
        labels = labels.squeeze(-1)
    labels = labels.round().long() if labels.is_floating_point() else labels.long()
    if labels.dim() > 1:
        raise ValueError(
            "class_weight is only supported for one label per sample "
            "(use sample_weight for sequence targets)"
        )
    known = torch.tensor(sorted(class_weight), dtype=torch.long)
    missing = set(labels.unique().tolist()) - set(known.tolist())
    if missing:
        raise ValueError(
            f"class_weight: no weight for class(es) {sorted(missing)} "
            f"(given: {sorted(class_weight)})"
        )
    table = torch.zeros(int(max(int(known.max()), int(labels.max()))) + 1, dtype=torch.float32)
    for k, v in class_weight.items():
        table[int(k)] = float(v)
    return table[labels]


@dataclass
class ArrayData:
    """In-memory data: ``x`` (structure), ``y`` and ``sample_weight`` (or ``None``)."""

    x: Structure
    y: Structure
    sample_weight: Tensor | None
    batch_size: int
    shuffle: bool | str = False
    seed: int = 0
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        self.n = num_samples(self.x, "x")
        if self.y is not None:
            ny = num_samples(self.y, "y")
            if ny != self.n:
                raise ValueError(
                    f"x and y must have the same number of samples, got {self.n} and {ny}"
                )
        if self.sample_weight is not None and int(self.sample_weight.shape[0]) != self.n:
            raise ValueError(
                f"sample_weight must have one weight per sample ({self.n}), got "
                f"{int(self.sample_weight.shape[0])}"
            )

    @property
    def samples_per_rank(self) -> int:
        return math.ceil(self.n / self.world_size)

    def steps(self) -> int:
        return math.ceil(self.samples_per_rank / self.batch_size)

    def indices(self, epoch: int) -> Tensor:
        """This rank's sample order for ``epoch``."""
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.n, generator=gen)
        else:
            order = torch.arange(self.n)
        if self.world_size > 1:
            total = self.samples_per_rank * self.world_size
            if total > self.n:  # pad by repeating, as DistributedSampler does
                order = torch.cat([order, order[: total - self.n]])
            order = order[self.rank :: self.world_size]
        return order

    def batches(self, epoch: int = 0, start_batch: int = 0) -> Iterator[tuple]:
        order = self.indices(epoch)
        contiguous = not self.shuffle and self.world_size == 1
        for b in range(start_batch, self.steps()):
            lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, len(order))
            idx: Tensor | slice = slice(lo, hi) if contiguous else order[lo:hi]
            sw = self.sample_weight[idx] if self.sample_weight is not None else None
            yield _index(self.x, idx), _index(self.y, idx), sw

    def first_batch(self) -> tuple | None:
        """The first batch (to build the model before training)."""
        return next(self.batches(0), None)


class IterableData:
    """Batches from a DataLoader, Dataset or generator (``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)`` per item)."""

    def __init__(
        self,
        source: Any,
        batch_size: int | None,
        shuffle: bool,
        steps: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        from torch.utils.data import DataLoader, Dataset, IterableDataset
        from torch.utils.data.distributed import DistributedSampler

        self._steps = steps
        self._loader: Any
        self._reiterable = True
        if isinstance(source, DataLoader):
            self._loader = source
        elif isinstance(source, Dataset):
            sampler = None
            if world_size > 1 and not isinstance(source, IterableDataset):
                sampler = DistributedSampler(
                    source, num_replicas=world_size, rank=rank, shuffle=bool(shuffle)
                )
            self._loader = DataLoader(
                source,
                batch_size=batch_size or 32,
                shuffle=bool(shuffle)
                if sampler is None and not isinstance(source, IterableDataset)
                else False,
                sampler=sampler,
            )
        elif isinstance(source, Iterable) or isinstance(source, Iterator):
            self._loader = source
            self._reiterable = not isinstance(source, Iterator)
        else:
            raise TypeError(f"x: unsupported data type {type(source).__name__}")
        self._iterator: Iterator | None = None
        self._pending: list[tuple] = []  # batches taken by first_batch from a one-shot source

    def steps(self) -> int | None:
        if self._steps is not None:
            return self._steps
        try:
            return len(self._loader)
        except TypeError:
            return None

    def set_epoch(self, epoch: int) -> None:
        sampler = getattr(self._loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    def batches(self, epoch: int = 0, start_batch: int = 0) -> Iterator[tuple]:
        self.set_epoch(epoch)
        if self._reiterable or self._iterator is None:
            self._iterator = iter(self._loader)
        count = 0
        while self._pending:
            batch = self._pending.pop(0)
            if count >= start_batch:
                yield batch
            count += 1
            if self._steps is not None and count >= self._steps:
                return
        for item in self._iterator:
            if count >= start_batch:
                yield unpack(item)
            count += 1
            if self._steps is not None and count >= self._steps:
                break

    def first_batch(self) -> tuple | None:
        """The first batch (to build the model before training); a generator's batch is kept
        and given again by the next :meth:`batches`, so that no data is lost."""
        batch = next(self.batches(0), None)
        if batch is not None and not self._reiterable:
            self._pending.append(batch)
        return batch


def unpack(item: Any) -> tuple:
    """``(x, y, sample_weight)`` from a batch item (a tuple of 1–3, or ``x`` alone)."""
    if isinstance(item, (tuple, list)):
        if len(item) == 1:
            return to_structure(item[0], "x"), None, None
        if len(item) == 2:
            return to_structure(item[0], "x"), to_structure(item[1], "y"), None
        if len(item) == 3:
            sw = item[2]
            return (
                to_structure(item[0], "x"),
                to_structure(item[1], "y"),
                None if sw is None else _to_tensor(sw, "sample_weight"),
            )
        raise ValueError(
            f"a data batch must be (x,), (x, y) or (x, y, sample_weight); got a "
            f"tuple of {len(item)}"
        )
    return to_structure(item, "x"), None, None


def check_steps(name: str, steps: Any) -> None:
    """``steps`` (``steps_per_epoch``, ``validation_steps``, ``steps``) is ``None`` or an
    integer >= 1: zero steps would train or predict on nothing without saying so."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"{name} must be None or an integer >= 1, got {steps!r}")


def adapt(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    *,
    batch_size: int | None = None,
    shuffle: bool | str = False,
    class_weight: dict | None = None,
    steps: int | None = None,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> ArrayData | IterableData:
    """Wrap user data for the training loop (see the module docstring)."""
    from torch.utils.data import DataLoader, Dataset

    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0
    ):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    check_steps("steps", steps)
    if isinstance(x, (DataLoader, Dataset)) or (
        not isinstance(x, (np.ndarray, Tensor, list, tuple, dict))
        and isinstance(x, (Iterable, Iterator))
    ):
        if y is not None:
            raise ValueError(
                "y must be None when x is a Dataset, DataLoader or generator "
                "(which yields (x, y) batches)"
            )
        if class_weight is not None:
            raise ValueError("class_weight is only supported with array inputs")
        return IterableData(x, batch_size, bool(shuffle), steps, rank, world_size)
    if x is None:
        raise ValueError("x: no input data given")
    xs = to_structure(x, "x")
    ys = to_structure(y, "y")
    sw = None if sample_weight is None else _to_tensor(sample_weight, "sample_weight")
    if class_weight is not None:
        if ys is None or not isinstance(ys, Tensor):
            raise ValueError("class_weight needs a single array y")
        cw = class_weights_to_sample_weights(ys, class_weight)
        sw = cw if sw is None else sw * cw
    return ArrayData(xs, ys, sw, batch_size or 32, shuffle, seed, rank, world_size)


def split_validation(x: Any, y: Any, sample_weight: Any, validation_split: float) -> tuple:
    """Keras's ``validation_split``: the **last** fraction of the samples, before shuffling."""
    if (
        isinstance(validation_split, bool)
        or not isinstance(validation_split, (int, float))
        or (not 0.0 <= validation_split < 1.0)
    ):
        raise ValueError(f"validation_split must be a float in [0, 1), got {validation_split!r}")
    xs, ys = to_structure(x, "x"), to_structure(y, "y")
    n = num_samples(xs, "x")
    cut = int(n * (1.0 - validation_split))
    if cut <= 0 or cut >= n:
        raise ValueError(
            f"validation_split={validation_split} leaves "
            f"{'no training' if cut <= 0 else 'no validation'} samples out of {n}"
        )
    sw = None if sample_weight is None else _to_tensor(sample_weight, "sample_weight")
    train = (_index(xs, slice(0, cut)), _index(ys, slice(0, cut)), None if sw is None else sw[:cut])
    val = (_index(xs, slice(cut, n)), _index(ys, slice(cut, n)), None if sw is None else sw[cut:])
    return train, val
