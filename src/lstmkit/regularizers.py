"""Weight regularisers with Keras 3's names: a penalty added to the training loss.

``L2(l2=0.01)(w) = 0.01 · Σ w²``; ``L1(l1=0.01)(w) = 0.01 · Σ |w|``; ``L1L2`` both.
The penalty of a weight stored in torch's layout is the same as in Keras's layout (a sum).

>>> import torch
>>> float(L2(0.5)(torch.tensor([1.0, 2.0])))
2.5
"""

from __future__ import annotations

from typing import Any

import torch


class Regularizer:
    """Base class: ``reg(weight) -> scalar tensor``."""

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Regularizer:
        return cls(**config)


class L1L2(Regularizer):
    """``l1 · Σ|w| + l2 · Σw²``."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        if l1 < 0 or l2 < 0:
            raise ValueError(f"L1L2: expected non-negative factors, got l1={l1}, l2={l2}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        penalty = weight.new_zeros(())
        if self.l1:
            penalty = penalty + self.l1 * weight.abs().sum()
        if self.l2:
            penalty = penalty + self.l2 * weight.square().sum()
        return penalty

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 · Σ|w|`` (Keras default ``l1=0.01``)."""

    def __init__(self, l1: float = 0.01) -> None:
        super().__init__(l1=l1)

    def get_config(self) -> dict[str, Any]:
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 · Σw²`` (Keras default ``l2=0.01``)."""

    def __init__(self, l2: float = 0.01) -> None:
        super().__init__(l2=l2)

    def get_config(self) -> dict[str, Any]:
        return {"l2": self.l2}


_CLASSES = {"L1": L1, "L2": L2, "L1L2": L1L2}
_ALIASES = {"l1": "L1", "l2": "L2", "l1_l2": "L1L2"}


def get(identifier: Any, *, argument: str = "regularizer") -> Regularizer | None:
    """A regulariser from ``None``, a name (``"l2"``), a serialised dict or an instance."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name not in _CLASSES:
            raise ValueError(
                f"{argument}: unknown regularizer {identifier!r}; expected one of "
                f"{', '.join(sorted(_ALIASES))}"
            )
        return _CLASSES[name]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise TypeError(
        f"{argument}: expected None, a regularizer name, dict or Regularizer, got {identifier!r}"
    )


def serialize(reg: Regularizer | None) -> dict[str, Any] | None:
    """``{"class_name", "config"}`` or ``None``."""
    if reg is None:
        return None
    return {"class_name": type(reg).__name__, "config": reg.get_config()}
