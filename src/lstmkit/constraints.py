"""Weight constraints with Keras 3's names, applied to a weight after each optimiser step.

Norms are taken over Keras's ``axis=0`` of a kernel ``(I, units)``, i.e. over the input
dimension; for a weight stored in torch's layout ``(units, I)`` that is ``dim=1``, which is what
``Constraint.__call__(weight, keras_axis_is_last=True)`` handles.

>>> import torch
>>> NonNeg()(torch.tensor([-1.0, 2.0])).tolist()
[0.0, 2.0]
"""

from __future__ import annotations

from typing import Any

import torch


class Constraint:
    """Base class: ``constraint(weight) -> projected weight`` (same shape)."""

    def __call__(self, weight: torch.Tensor, torch_layout: bool = True) -> torch.Tensor:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Constraint:
        return cls(**config)


def _norm_dim(weight: torch.Tensor, torch_layout: bool) -> int:
    # Keras normalises each output unit's incoming weights: axis 0 of (I, units).
    if weight.dim() == 1:
        return 0
    return 1 if torch_layout else 0


class NonNeg(Constraint):
    """Clamp to ``w >= 0``."""

    def __call__(self, weight: torch.Tensor, torch_layout: bool = True) -> torch.Tensor:
        return weight.clamp_min(0.0)


class MaxNorm(Constraint):
    """Rescale each unit's incoming weights to norm ``<= max_value``."""

    def __init__(self, max_value: float = 2.0, axis: int = 0) -> None:
        self.max_value, self.axis = float(max_value), axis

    def __call__(self, weight: torch.Tensor, torch_layout: bool = True) -> torch.Tensor:
        norms = weight.norm(dim=_norm_dim(weight, torch_layout), keepdim=True)
        desired = norms.clamp(0.0, self.max_value)
        return weight * (desired / (norms + 1e-7))

    def get_config(self) -> dict[str, Any]:
        return {"max_value": self.max_value, "axis": self.axis}


class UnitNorm(Constraint):
    """Rescale each unit's incoming weights to unit norm."""

    def __init__(self, axis: int = 0) -> None:
        self.axis = axis

    def __call__(self, weight: torch.Tensor, torch_layout: bool = True) -> torch.Tensor:
        norms = weight.norm(dim=_norm_dim(weight, torch_layout), keepdim=True)
        return weight / (norms + 1e-7)

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Rescale norms into ``[min_value, max_value]`` at ``rate`` (Keras semantics)."""

    def __init__(
        self, min_value: float = 0.0, max_value: float = 1.0, rate: float = 1.0, axis: int = 0
    ) -> None:
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, weight: torch.Tensor, torch_layout: bool = True) -> torch.Tensor:
        norms = weight.norm(dim=_norm_dim(weight, torch_layout), keepdim=True)
        desired = self.rate * norms.clamp(self.min_value, self.max_value)
        desired = desired + (1 - self.rate) * norms
        return weight * (desired / (norms + 1e-7))

    def get_config(self) -> dict[str, Any]:
        return {
            "min_value": self.min_value,
            "max_value": self.max_value,
            "rate": self.rate,
            "axis": self.axis,
        }


_CLASSES = {c.__name__: c for c in (NonNeg, MaxNorm, UnitNorm, MinMaxNorm)}
_ALIASES = {
    "non_neg": "NonNeg",
    "max_norm": "MaxNorm",
    "unit_norm": "UnitNorm",
    "min_max_norm": "MinMaxNorm",
}


def get(identifier: Any, *, argument: str = "constraint") -> Constraint | None:
    """A constraint from ``None``, a name, a serialised dict or an instance."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name not in _CLASSES:
            raise ValueError(
                f"{argument}: unknown constraint {identifier!r}; expected one of "
                f"{', '.join(sorted(_ALIASES))}"
            )
        return _CLASSES[name]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise TypeError(
        f"{argument}: expected None, a constraint name, dict or Constraint, got {identifier!r}"
    )


def serialize(c: Constraint | None) -> dict[str, Any] | None:
    """``{"class_name", "config"}`` or ``None``."""
    if c is None:
        return None
    return {"class_name": type(c).__name__, "config": c.get_config()}
