"""Losses with Keras 3's names, arguments and reductions.

A loss is called as ``loss(y_true, y_pred, sample_weight=None, mask=None)`` and returns a scalar:
the per-element losses (reduced over the last axis where Keras does), weighted by
``sample_weight`` and averaged over the unmasked elements (``"sum_over_batch_size"``, Keras's
default reduction). A mask travelling on ``y_pred`` (``y_pred._keras_mask``, e.g. from
``Embedding(mask_zero=True)`` through ``LSTM(return_sequences=True)``) excludes padded steps.

>>> import torch
>>> bce = BinaryCrossentropy()
>>> round(float(bce(torch.tensor([[1.0]]), torch.tensor([[0.5]]))), 4)
0.6931
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

EPSILON = 1e-7  # Keras's backend.epsilon(): probabilities are clipped to [ε, 1 - ε]

REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "none", None)


def _as_tensor(y: Any, like: Tensor) -> Tensor:
    if not isinstance(y, Tensor):
        y = torch.as_tensor(y)
    return y.to(like.device)


class Loss:
    """Base class: subclasses implement ``call(y_true, y_pred) -> per-element losses``."""

    def __init__(self, name: str | None = None, reduction: str | None = "sum_over_batch_size"):
        if reduction not in REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, got {reduction!r}"
            )
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(
        self,
        y_true: Any,
        y_pred: Tensor,
        sample_weight: Any = None,
        mask: Tensor | None = None,
    ) -> Tensor:
        if mask is None:
            mask = getattr(y_pred, "_keras_mask", None)
        y_true = _as_tensor(y_true, y_pred)
        losses = self.call(y_true, y_pred)  # (B, ...) per-sample/per-step losses
        weights = None
        if sample_weight is not None:
            sw = _as_tensor(sample_weight, y_pred).to(losses.dtype)
            while sw.dim() < losses.dim():
                sw = sw.unsqueeze(-1)
            while sw.dim() > losses.dim() and sw.shape[-1] == 1:
                sw = sw.squeeze(-1)
            weights = sw
        if mask is not None:
            m = mask.to(losses.dtype)
            while m.dim() > losses.dim() and m.shape[-1] == 1:
                m = m.squeeze(-1)
            if m.shape == losses.shape:
                weights = m if weights is None else weights * m
                if self.reduction in ("sum_over_batch_size", "mean"):
                    # Keras: average over the valid entries only.
                    total = (losses * weights).sum()
                    return total / m.sum().clamp_min(1.0)
        if weights is not None:
            losses = losses * weights
        if self.reduction in ("sum_over_batch_size", "mean"):
            return losses.mean() if losses.numel() else losses.sum()
        if self.reduction == "sum":
            return losses.sum()
        return losses

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        return cls(**config)


def _snake(name: str) -> str:
    from lstmkit.layers.base import snake_case

    return snake_case(name)


class BinaryCrossentropy(Loss):
    """``-[y log p + (1 - y) log(1 - p)]`` averaged over the last axis.

    With ``from_logits=False`` the probabilities are clipped to ``[1e-7, 1 - 1e-7]`` as Keras
    does; with ``from_logits=True`` the numerically stable log-sigmoid form is used.
    ``label_smoothing`` moves targets towards 0.5: ``y (1 - s) + 0.5 s``.
    """

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "binary_crossentropy",
    ):
        super().__init__(name, reduction)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        y_true = y_true.to(y_pred.dtype)
        if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
            y_true = y_true.unsqueeze(-1)
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"{self.name}: y_true and y_pred must have the same shape, got "
                f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}"
            )
        if self.label_smoothing:
            y_true = y_true * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        if self.from_logits:
            bce = F.binary_cross_entropy_with_logits(y_pred, y_true, reduction="none")
        else:
            p = y_pred.clamp(EPSILON, 1 - EPSILON)
            # log(1 - p), not log1p(-p): Keras computes 1 - p in the input's precision, so
            # y = 0, p = 0 gives -log(float32(1 - 1e-7)) = 1.1920929e-07 as in Keras.
            bce = -(y_true * torch.log(p) + (1 - y_true) * torch.log(1 - p))
        return bce.mean(dim=self.axis)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": self.axis,
        }


class CategoricalCrossentropy(Loss):
    """``-Σ_k y_k log p_k`` over ``axis`` for one-hot (or soft) targets; probabilities are
    normalised to sum to one and clipped to ``[1e-7, 1 - 1e-7]`` as Keras does."""

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "categorical_crossentropy",
    ):
        super().__init__(name, reduction)
        self.from_logits, self.label_smoothing, self.axis = from_logits, label_smoothing, axis

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        y_true = y_true.to(y_pred.dtype)
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"{self.name}: y_true must be one-hot with the shape of y_pred "
                f"{tuple(y_pred.shape)}, got {tuple(y_true.shape)} (integer labels "
                f"need sparse_categorical_crossentropy)"
            )
        if self.label_smoothing:
            k = y_pred.shape[self.axis]
            y_true = y_true * (1 - self.label_smoothing) + self.label_smoothing / k
        if self.from_logits:
            log_p = F.log_softmax(y_pred, dim=self.axis)
        else:
            p = y_pred / y_pred.sum(dim=self.axis, keepdim=True)
            log_p = torch.log(p.clamp(EPSILON, 1 - EPSILON))
        return -(y_true * log_p).sum(dim=self.axis)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": self.axis,
        }


class SparseCategoricalCrossentropy(Loss):
    """``-log p[y]`` for integer class ids ``y`` (shape ``y_pred.shape[:-1]``, or with a trailing
    1). ``ignore_class`` excludes a class id (e.g. padding) from the average. lstmkit extra:
    ``label_smoothing`` (uniform, as in ``torch.nn.functional.cross_entropy``)."""

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str = "sparse_categorical_crossentropy",
        label_smoothing: float = 0.0,
        axis: int = -1,
    ):
        super().__init__(name, reduction)
        self.from_logits, self.ignore_class = from_logits, ignore_class
        self.label_smoothing, self.axis = label_smoothing, axis

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
            y_true = y_true.squeeze(-1)
        if tuple(y_true.shape) != tuple(y_pred.shape[:-1]):
            raise ValueError(
                f"{self.name}: expected integer labels of shape "
                f"{tuple(y_pred.shape[:-1])}, got {tuple(y_true.shape)}"
            )
        if y_true.is_floating_point():
            if not bool(torch.all(y_true == y_true.round())):
                raise ValueError(f"{self.name}: labels must be integer class ids")
        labels = y_true.long()
        n = y_pred.shape[-1]
        valid = torch.ones_like(labels, dtype=torch.bool)
        if self.ignore_class is not None:
            valid = labels != self.ignore_class
            labels = torch.where(valid, labels, torch.zeros_like(labels))
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n):
            raise ValueError(
                f"{self.name}: labels must be in [0, {n}), got values in "
                f"[{int(labels.min())}, {int(labels.max())}]"
            )
        if self.from_logits:
            log_p = F.log_softmax(y_pred, dim=-1)
        else:
            p = y_pred / y_pred.sum(dim=-1, keepdim=True)
            log_p = torch.log(p.clamp(EPSILON, 1 - EPSILON))
        nll = -log_p.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        if self.label_smoothing:
            smooth = -log_p.mean(dim=-1)
            nll = (1 - self.label_smoothing) * nll + self.label_smoothing * smooth
        if self.ignore_class is not None:
            nll = nll * valid.to(nll.dtype)
            nll._keras_ignore_mask = valid
        return nll

    def __call__(
        self, y_true: Any, y_pred: Tensor, sample_weight: Any = None, mask: Tensor | None = None
    ) -> Tensor:
        if self.ignore_class is None:
            return super().__call__(y_true, y_pred, sample_weight, mask)
        y_t = _as_tensor(y_true, y_pred)
        if y_t.dim() == y_pred.dim() and y_t.shape[-1] == 1:
            y_t = y_t.squeeze(-1)
        valid = y_t != self.ignore_class
        if mask is None:
            mask = getattr(y_pred, "_keras_mask", None)
        mask = valid if mask is None else (mask.to(torch.bool) & valid)
        return super().__call__(y_true, y_pred, sample_weight, mask)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "ignore_class": self.ignore_class,
            "label_smoothing": self.label_smoothing,
        }


class MeanSquaredError(Loss):
    """``mean((y - ŷ)²)`` over the last axis."""

    def __init__(
        self, reduction: str | None = "sum_over_batch_size", name: str = "mean_squared_error"
    ):
        super().__init__(name, reduction)

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return (y_pred - _broadcastable(y_true, y_pred, self.name)).square().mean(dim=-1)


class MeanAbsoluteError(Loss):
    """``mean(|y - ŷ|)`` over the last axis."""

    def __init__(
        self, reduction: str | None = "sum_over_batch_size", name: str = "mean_absolute_error"
    ):
        super().__init__(name, reduction)

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return (y_pred - _broadcastable(y_true, y_pred, self.name)).abs().mean(dim=-1)


class Huber(Loss):
    """Quadratic for ``|e| <= delta``, linear beyond: ``0.5 e²`` or ``delta (|e| - 0.5 delta)``."""

    def __init__(
        self,
        delta: float = 1.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "huber_loss",
    ):
        super().__init__(name, reduction)
        self.delta = float(delta)

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        y_true = _broadcastable(y_true, y_pred, self.name)
        return F.huber_loss(y_pred, y_true, reduction="none", delta=self.delta).mean(dim=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}


def _broadcastable(y_true: Tensor, y_pred: Tensor, name: str) -> Tensor:
    y_true = y_true.to(y_pred.dtype)
    if y_true.dim() == y_pred.dim() - 1 and y_pred.shape[-1] == 1:
        y_true = y_true.unsqueeze(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{name}: y_true and y_pred must have the same shape, got "
            f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}"
        )
    return y_true


_LOSSES: dict[str, type[Loss]] = {
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
}
_CLASSES = {c.__name__: c for c in set(_LOSSES.values())}


# Keras's function forms: ``fn(y_true, y_pred, **options)`` gives the per-sample losses (reduced
# over the last axis only, like ``reduction=None``). ``compile(loss=binary_crossentropy)`` uses
# the class of the same name, so a model compiled with one can still be saved.


def binary_crossentropy(
    y_true: Any,
    y_pred: Tensor,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Tensor:
    """Per-sample :class:`BinaryCrossentropy` (shape ``y_pred.shape[:-1]``)."""
    return BinaryCrossentropy(from_logits, label_smoothing, axis, reduction=None)(y_true, y_pred)


def categorical_crossentropy(
    y_true: Any,
    y_pred: Tensor,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> Tensor:
    """Per-sample :class:`CategoricalCrossentropy` (shape ``y_pred.shape[:-1]``)."""
    loss = CategoricalCrossentropy(from_logits, label_smoothing, axis, reduction=None)
    return loss(y_true, y_pred)


def sparse_categorical_crossentropy(
    y_true: Any,
    y_pred: Tensor,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> Tensor:
    """Per-sample :class:`SparseCategoricalCrossentropy` (shape ``y_pred.shape[:-1]``)."""
    loss = SparseCategoricalCrossentropy(from_logits, ignore_class, reduction=None, axis=axis)
    return loss(y_true, y_pred)


def mean_squared_error(y_true: Any, y_pred: Tensor) -> Tensor:
    """Per-sample :class:`MeanSquaredError`: ``mean((y_true - y_pred)², axis=-1)``."""
    return MeanSquaredError(reduction=None)(y_true, y_pred)


def mean_absolute_error(y_true: Any, y_pred: Tensor) -> Tensor:
    """Per-sample :class:`MeanAbsoluteError`: ``mean(|y_true - y_pred|, axis=-1)``."""
    return MeanAbsoluteError(reduction=None)(y_true, y_pred)


def huber(y_true: Any, y_pred: Tensor, delta: float = 1.0) -> Tensor:
    """Per-sample :class:`Huber` loss."""
    return Huber(delta, reduction=None)(y_true, y_pred)


_FUNCTION_CLASSES: dict[Any, type[Loss]] = {
    binary_crossentropy: BinaryCrossentropy,
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    huber: Huber,
}


def get(identifier: Any) -> Loss:
    """A loss from a Keras name (``"binary_crossentropy"``, ``"mse"`` …), a class name, a
    serialised dict, or an instance.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _LOSSES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(
                f"loss: unknown loss {identifier!r}; expected one of {', '.join(sorted(_LOSSES))}"
            )
        return cls()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    if callable(identifier) and identifier in _FUNCTION_CLASSES:
        return _FUNCTION_CLASSES[identifier]()
    if callable(identifier):
        return _FunctionLoss(identifier)
    raise TypeError(f"loss: expected a loss name or Loss instance, got {identifier!r}")


class _FunctionLoss(Loss):
    """A plain function ``fn(y_true, y_pred) -> per-sample losses`` used as a loss (cannot be
    saved in a model file: files store names, never code)."""

    def __init__(self, fn: Any) -> None:
        super().__init__(getattr(fn, "__name__", "loss"))
        self.fn = fn

    def call(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        return self.fn(y_true, y_pred)


def serialize(loss: Loss) -> dict[str, Any]:
    """``{"class_name", "config"}``; custom function losses cannot be serialised."""
    if isinstance(loss, _FunctionLoss):
        raise ValueError(
            f"cannot save custom loss function {loss.fn!r}: model files store "
            f"names, never code (compile again after loading)"
        )
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
