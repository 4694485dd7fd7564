"""Streaming metrics with Keras 3's names: ``update_state`` per batch, ``result`` per epoch.

Every metric keeps its state in a few tensors (sums and counts) listed by ``state_tensors()``,
so distributed training can all-reduce them with one sum. ``"accuracy"`` resolves as Keras 3 does,
from the shapes: binary for a single output unit, sparse categorical when the labels are integer
ids, categorical otherwise.

>>> import torch
>>> acc = BinaryAccuracy()
>>> acc.update_state(torch.tensor([[1.0], [0.0]]), torch.tensor([[0.9], [0.8]]))
>>> float(acc.result())
0.5
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor


class Metric:
    """Base class. Subclasses set ``self._states`` (names of tensor attributes) in
    ``__init__`` via :meth:`add_state` and implement ``update_state`` and ``result``."""

    def __init__(self, name: str | None = None) -> None:
        from lstmkit.layers.base import snake_case

        self.name = name or snake_case(type(self).__name__)
        self._states: list[str] = []

    def add_state(self, name: str, shape: tuple[int, ...] = ()) -> None:
        setattr(self, name, torch.zeros(shape, dtype=torch.float64))
        self._states.append(name)

    def state_tensors(self) -> list[Tensor]:
        return [getattr(self, n) for n in self._states]

    def set_state_tensors(self, tensors: list[Tensor]) -> None:
        for n, t in zip(self._states, tensors):
            setattr(self, n, t)

    def reset_state(self) -> None:
        for n in self._states:
            setattr(self, n, torch.zeros_like(getattr(self, n)))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        raise NotImplementedError

    def result(self) -> Tensor:
        raise NotImplementedError

    def _to(self, device: torch.device) -> None:
        for n in self._states:
            t = getattr(self, n)
            if t.device != device:
                setattr(self, n, t.to(device))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Metric:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _weights(values: Tensor, sample_weight: Any, mask: Tensor | None) -> Tensor:
    w = torch.ones_like(values, dtype=torch.float64)
    if sample_weight is not None:
        sw = torch.as_tensor(sample_weight, device=values.device).to(torch.float64)
        while sw.dim() < values.dim():
            sw = sw.unsqueeze(-1)
        while sw.dim() > values.dim() and sw.shape[-1] == 1:
            sw = sw.squeeze(-1)
        w = w * sw
    if mask is not None:
        m = mask.to(torch.float64)
        while m.dim() > values.dim() and m.shape[-1] == 1:
            m = m.squeeze(-1)
        if m.shape == values.shape:
            w = w * m
    return w


class Mean(Metric):
    """Weighted mean of the values it is given (``update_state(values, sample_weight)``)."""

    def __init__(self, name: str = "mean") -> None:
        super().__init__(name)
        self.add_state("total")
        self.add_state("count")

    def update_state(self, values: Any, sample_weight: Any = None, *_: Any) -> None:  # type: ignore[override]
        values = torch.as_tensor(values).detach().to(torch.float64)
        w = _weights(values, sample_weight, None)
        self._to(values.device)
        self.total = self.total + (values * w).sum()
        self.count = self.count + w.sum()

    def result(self) -> Tensor:
        return self.total / self.count.clamp_min(1e-12) if float(self.count) else self.total * 0


class MeanMetricWrapper(Metric):
    """A metric that averages ``fn(y_true, y_pred)`` per element, honouring masks."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self.add_state("total")
        self.add_state("count")

    def values(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        raise NotImplementedError

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = torch.as_tensor(y_pred)
        mask = getattr(y_pred, "_keras_mask", None)
        y_true = torch.as_tensor(y_true, device=y_pred.device)
        with torch.no_grad():
            values = self.values(y_true, y_pred.detach()).to(torch.float64)
            w = _weights(values, sample_weight, mask)
            self._to(values.device)
            self.total = self.total + (values * w).sum()
            self.count = self.count + w.sum()

    def result(self) -> Tensor:
        return self.total / self.count if float(self.count) else self.total * 0


class BinaryAccuracy(MeanMetricWrapper):
    """Fraction of ``(y_pred > threshold) == y_true``."""

    def __init__(self, name: str = "binary_accuracy", threshold: float = 0.5) -> None:
        super().__init__(name)
        self.threshold = threshold

    def values(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
            y_true = y_true.unsqueeze(-1)
        hits = (y_pred > self.threshold).to(y_pred.dtype) == y_true.to(y_pred.dtype)
        return hits.to(torch.float64).mean(dim=-1)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    """Fraction of ``argmax(y_pred) == argmax(y_true)`` (one-hot targets)."""

    def __init__(self, name: str = "categorical_accuracy") -> None:
        super().__init__(name)

    def values(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return (y_pred.argmax(-1) == y_true.argmax(-1)).to(torch.float64)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """Fraction of ``argmax(y_pred) == y_true`` (integer targets)."""

    def __init__(self, name: str = "sparse_categorical_accuracy") -> None:
        super().__init__(name)

    def values(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
            y_true = y_true.squeeze(-1)
        return (y_pred.argmax(-1) == y_true.long()).to(torch.float64)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """Whether the one-hot target is among the ``k`` highest predictions."""

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy") -> None:
        super().__init__(name)
        self.k = k

    def values(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return _in_top_k(y_pred, y_true.argmax(-1), self.k)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """Whether the integer target is among the ``k`` highest predictions."""

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy") -> None:
        super().__init__(k, name)

    def values(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
            y_true = y_true.squeeze(-1)
        return _in_top_k(y_pred, y_true.long(), self.k)


def _in_top_k(y_pred: Tensor, target: Tensor, k: int) -> Tensor:
    k = min(k, y_pred.shape[-1])
    top = y_pred.topk(k, dim=-1).indices
    return (top == target.unsqueeze(-1)).any(-1).to(torch.float64)


class _Confusion(Metric):
    """True/false positives and negatives at ``threshold`` for binary predictions."""

    def __init__(self, name: str | None = None, threshold: float = 0.5) -> None:
        super().__init__(name)
        self.threshold = threshold
        for s in ("tp", "fp", "fn"):
            self.add_state(s)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = torch.as_tensor(y_pred).detach()
        y_true = torch.as_tensor(y_true, device=y_pred.device).to(y_pred.dtype)
        if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
            y_true = y_true.unsqueeze(-1)
        pred = y_pred > self.threshold
        true = y_true > 0.5
        w = _weights(pred.to(torch.float64), sample_weight, getattr(y_pred, "_keras_mask", None))
        self._to(y_pred.device)
        self.tp = self.tp + ((pred & true) * w).sum()
        self.fp = self.fp + ((pred & ~true) * w).sum()
        self.fn = self.fn + ((~pred & true) * w).sum()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.threshold}


class Precision(_Confusion):
    """``tp / (tp + fp)``."""

    def __init__(self, thresholds: float | None = None, name: str = "precision") -> None:
        super().__init__(name, 0.5 if thresholds is None else thresholds)

    def result(self) -> Tensor:
        denom = self.tp + self.fp
        return self.tp / denom if float(denom) else denom * 0

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "thresholds": self.threshold}


class Recall(_Confusion):
    """``tp / (tp + fn)``."""

    def __init__(self, thresholds: float | None = None, name: str = "recall") -> None:
        super().__init__(name, 0.5 if thresholds is None else thresholds)

    def result(self) -> Tensor:
        denom = self.tp + self.fn
        return self.tp / denom if float(denom) else denom * 0

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "thresholds": self.threshold}


class AUC(Metric):
    """Area under the ROC curve (or PR curve with ``curve="PR"``), from confusion counts at
    ``num_thresholds`` evenly spaced thresholds with Riemann/trapezoid summation as Keras
    (``summation_method="interpolation"`` is the trapezoid rule here)."""

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC", name: str = "auc") -> None:
        super().__init__(name)
        if curve not in ("ROC", "PR"):
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR', got {curve!r}")
        if num_thresholds < 2:
            raise ValueError(f"AUC: num_thresholds must be >= 2, got {num_thresholds}")
        self.num_thresholds, self.curve = num_thresholds, curve
        eps = 1e-7
        inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.thresholds = torch.tensor([-eps, *inner, 1 + eps], dtype=torch.float64)
        for s in ("tp", "fp", "tn", "fn"):
            self.add_state(s, (num_thresholds,))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = torch.as_tensor(y_pred).detach().to(torch.float64).reshape(-1)
        y_true = torch.as_tensor(y_true, device=y_pred.device).to(torch.float64).reshape(-1) > 0.5
        w = torch.ones_like(y_pred)
        if sample_weight is not None:
            sw = torch.as_tensor(sample_weight, device=y_pred.device).to(torch.float64)
            w = (
                sw.reshape(-1, 1)
                * torch.ones(
                    1,
                    y_pred.numel() // max(sw.numel(), 1),
                    dtype=torch.float64,
                    device=y_pred.device,
                )
            ).reshape(-1)
        self._to(y_pred.device)
        th = self.thresholds.to(y_pred.device)
        above = y_pred.unsqueeze(0) > th.unsqueeze(1)  # (K, N)
        pos, neg = (y_true * w), (~y_true * w)
        self.tp = self.tp + (above * pos).sum(1)
        self.fp = self.fp + (above * neg).sum(1)
        self.fn = self.fn + (~above * pos).sum(1)
        self.tn = self.tn + (~above * neg).sum(1)

    def result(self) -> Tensor:
        if self.curve == "ROC":
            x = self.fp / (self.fp + self.tn).clamp_min(1e-12)  # false positive rate
            y = self.tp / (self.tp + self.fn).clamp_min(1e-12)  # true positive rate
        else:
            x = self.tp / (self.tp + self.fn).clamp_min(1e-12)  # recall
            y = self.tp / (self.tp + self.fp).clamp_min(1e-12)  # precision
        # thresholds ascend, so x descends: integrate with the trapezoid rule.
        return ((x[:-1] - x[1:]) * (y[:-1] + y[1:]) / 2).sum()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve}


class Perplexity(Metric):
    """``exp(mean sparse cross-entropy)`` over the unmasked tokens (KerasNLP's ``Perplexity``);
    ``mask_token_id`` excludes padding."""

    def __init__(
        self, from_logits: bool = False, mask_token_id: int | None = None, name: str = "perplexity"
    ) -> None:
        super().__init__(name)
        self.from_logits, self.mask_token_id = from_logits, mask_token_id
        self.add_state("total")
        self.add_state("count")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        from lstmkit.training.losses import SparseCategoricalCrossentropy

        y_pred = torch.as_tensor(y_pred).detach()
        y_true = torch.as_tensor(y_true, device=y_pred.device)
        loss = SparseCategoricalCrossentropy(from_logits=self.from_logits, reduction="none")
        with torch.no_grad():
            values = loss.call(y_true, y_pred).to(torch.float64)
        mask = getattr(y_pred, "_keras_mask", None)
        if self.mask_token_id is not None:
            valid = y_true.squeeze(-1) if y_true.dim() == y_pred.dim() else y_true
            valid = valid != self.mask_token_id
            mask = valid if mask is None else mask & valid
        w = _weights(values, sample_weight, mask)
        self._to(values.device)
        self.total = self.total + (values * w).sum()
        self.count = self.count + w.sum()

    def result(self) -> Tensor:
        mean = self.total / self.count if float(self.count) else self.total * 0
        return torch.exp(mean)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "from_logits": self.from_logits,
            "mask_token_id": self.mask_token_id,
        }


class MeanSquaredError(MeanMetricWrapper):
    """Mean of ``(y - ŷ)²``."""

    def __init__(self, name: str = "mean_squared_error") -> None:
        super().__init__(name)

    def values(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return (y_pred - y_true.to(y_pred.dtype).reshape(y_pred.shape)).square().mean(-1)


class MeanAbsoluteError(MeanMetricWrapper):
    """Mean of ``|y - ŷ|``."""

    def __init__(self, name: str = "mean_absolute_error") -> None:
        super().__init__(name)

    def values(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return (y_pred - y_true.to(y_pred.dtype).reshape(y_pred.shape)).abs().mean(-1)


_BY_NAME: dict[str, Any] = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "precision": Precision,
    "recall": Recall,
    "auc": AUC,
    "perplexity": Perplexity,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
}
_CLASSES = {c.__name__: c for c in set(_BY_NAME.values())} | {"Mean": Mean}


def get(
    identifier: Any, loss_name: str | None = None, y_true: Any = None, y_pred: Any = None
) -> Metric:
    """A metric from a name, dict or instance; ``"accuracy"``/``"acc"`` is resolved from the
    loss (and, failing that, from the shapes of ``y_true``/``y_pred``) as Keras does.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    if not isinstance(identifier, str):
        raise TypeError(f"metrics: expected a metric name or Metric, got {identifier!r}")
    if identifier in ("accuracy", "acc"):
        kind = _accuracy_kind(loss_name, y_true, y_pred)
        return {
            "binary": BinaryAccuracy,
            "categorical": CategoricalAccuracy,
            "sparse": SparseCategoricalAccuracy,
        }[kind](name=identifier)
    cls = _BY_NAME.get(identifier) or _CLASSES.get(identifier)
    if cls is None:
        raise ValueError(
            f"metrics: unknown metric {identifier!r}; expected 'accuracy' or one "
            f"of {', '.join(sorted(_BY_NAME))}"
        )
    return cls()


def _accuracy_kind(loss_name: str | None, y_true: Any, y_pred: Any) -> str:
    # Keras 3 (``trainers/compile_utils.get_metric``) decides from the shapes alone: one output
    # unit -> binary; labels of lower rank, or (…, 1) labels for several units -> sparse;
    # otherwise categorical. The loss name is only a fallback when the shapes are unknown.
    if y_pred is not None and y_pred.shape[-1] == 1:
        return "binary"
    if y_true is not None and y_pred is not None:
        if y_true.dim() < y_pred.dim() or (y_true.shape[-1] == 1 and y_pred.shape[-1] > 1):
            return "sparse"
        return "categorical"
    if loss_name:
        if "binary" in loss_name:
            return "binary"
        if "sparse" in loss_name:
            return "sparse"
        if "categorical" in loss_name:
            return "categorical"
    return "binary"


def serialize(metric: Metric) -> dict[str, Any]:
    """``{"class_name", "config"}``."""
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def is_nan(value: float) -> bool:
    """``math.isnan`` that tolerates infinities and non-floats."""
    try:
        return math.isnan(value) or math.isinf(value)
    except TypeError:
        return False
