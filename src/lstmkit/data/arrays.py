"""Array helpers with Keras 3's semantics: ``to_categorical`` and
``timeseries_dataset_from_array`` (numpy only).

>>> to_categorical([0, 2]).tolist()
[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
>>> ds = timeseries_dataset_from_array(np.arange(6), np.arange(6) * 10, sequence_length=3,
...                                    batch_size=2)
>>> [(x.tolist(), y.tolist()) for x, y in ds]
[([[0, 1, 2], [1, 2, 3]], [0, 10]), ([[2, 3, 4], [3, 4, 5]], [20, 30])]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def to_categorical(x: Any, num_classes: int | None = None) -> np.ndarray:
    """One-hot encoding of integer class ids, as ``keras.utils.to_categorical``.

    A trailing axis of size 1 is dropped first (``(N, 1)`` ids give ``(N, C)``), as Keras does.

    Args:
        x: integer class ids of any shape ``S``.
        num_classes: ``C``; ``None`` means ``max(x) + 1``.

    Returns:
        ``float32`` array of shape ``(*S, C)``.

    Raises:
        ValueError: ids that are not integers, negative, or not below ``num_classes``.
    """
    arr = np.asarray(x)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.number) or not np.all(arr == np.round(arr)):
            raise ValueError(f"to_categorical: x must hold integer class ids, got {arr.dtype}")
    arr = arr.astype(np.int64)
    shape = arr.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = arr.reshape(-1)
    if num_classes is None:
        num_classes = int(flat.max()) + 1 if flat.size else 0
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ValueError(f"to_categorical: num_classes must be an integer, got {num_classes!r}")
    if flat.size and (flat.min() < 0 or flat.max() >= num_classes):
        raise ValueError(
            f"to_categorical: class ids must be in [0, {num_classes}), got values in "
            f"[{int(flat.min())}, {int(flat.max())}]"
        )
    out = np.zeros((flat.size, int(num_classes)), dtype=np.float32)
    out[np.arange(flat.size), flat] = 1.0
    return out.reshape(*shape, int(num_classes))


class TimeseriesDataset:
    """Re-iterable batches of sliding windows (what ``timeseries_dataset_from_array`` returns;
    ``fit``/``evaluate``/``predict`` take it as ``x``). Each item is ``x`` or ``(x, y)``:
    ``x`` of shape ``(b, sequence_length, *F)``, ``y`` of shape ``(b, *T)``."""

    def __init__(
        self,
        data: np.ndarray,
        targets: np.ndarray | None,
        starts: np.ndarray,
        sequence_length: int,
        sampling_rate: int,
        batch_size: int | None,
    ) -> None:
        self.data, self.targets, self.starts = data, targets, starts
        self.sequence_length, self.sampling_rate = sequence_length, sampling_rate
        self.batch_size = batch_size

    def __len__(self) -> int:
        """The number of batches."""
        if self.batch_size is None:
            return len(self.starts)
        return -(-len(self.starts) // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        offsets = np.arange(self.sequence_length) * self.sampling_rate
        step = self.batch_size or 1
        for i in range(0, len(self.starts), step):
            starts = self.starts[i : i + step]
            x = self.data[starts[:, None] + offsets[None, :]]
            y = None if self.targets is None else self.targets[starts]
            if self.batch_size is None:  # unbatched: one window per item
                x, y = x[0], None if y is None else y[0]
            yield x if y is None else (x, y)


def _count(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(
            f"timeseries_dataset_from_array: {name} must be an integer >= {minimum}, got {value!r}"
        )
    return int(value)


def timeseries_dataset_from_array(
    data: Any,
    targets: Any,
    sequence_length: int,
    sequence_stride: int = 1,
    sampling_rate: int = 1,
    batch_size: int | None = 128,
    shuffle: bool = False,
    seed: int | None = None,
    start_index: int | None = None,
    end_index: int | None = None,
) -> TimeseriesDataset:
    """Sliding windows over an array, as ``keras.utils.timeseries_dataset_from_array``.

    Window ``k`` starts at ``s_k = start_index + k · sequence_stride`` and holds
    ``data[s_k + j · sampling_rate]`` for ``j = 0 … sequence_length - 1``; its target is
    ``targets[s_k]``. Windows end before ``end_index`` (exclusive, default ``len(data)``);
    with targets, there are at most ``len(targets)`` windows. Keras returns a ``tf.data``
    dataset; this returns a :class:`TimeseriesDataset` of numpy batches.

    Args:
        data: array of shape ``(N, *F)``.
        targets: array of shape ``(N, *T)``, or ``None`` (items are then ``x`` alone).
        sequence_length: steps per window.
        sequence_stride: steps between the starts of successive windows.
        sampling_rate: steps between successive elements of a window.
        batch_size: windows per batch (the last may be smaller); ``None``: single windows.
        shuffle: shuffle the windows' order (once, with numpy's ``default_rng(seed)``).
        seed: the shuffle's seed.
        start_index, end_index: the part of ``data`` to use.
    """
    data = np.asarray(data)
    sequence_length = _count(sequence_length, "sequence_length")
    sequence_stride = _count(sequence_stride, "sequence_stride")
    sampling_rate = _count(sampling_rate, "sampling_rate")
    if batch_size is not None:
        batch_size = _count(batch_size, "batch_size")
    start = 0 if start_index is None else _count(start_index, "start_index", 0)
    end = len(data) if end_index is None else _count(end_index, "end_index", 0)
    if end > len(data) or start >= end:
        raise ValueError(
            f"timeseries_dataset_from_array: need 0 <= start_index < end_index <= len(data) "
            f"= {len(data)}, got start_index={start_index!r}, end_index={end_index!r}"
        )
    n = end - start - (sequence_length - 1) * sampling_rate
    if targets is not None:
        targets = np.asarray(targets)
        n = min(n, len(targets) - start)
    starts = start + np.arange(0, max(n, 0), sequence_stride, dtype=np.int64)
    if shuffle:
        np.random.default_rng(seed).shuffle(starts)
    return TimeseriesDataset(data, targets, starts, sequence_length, sampling_rate, batch_size)
