"""Activation functions by Keras name.

``get("sigmoid")`` returns a function ``Tensor -> Tensor``; ``serialize(fn)`` returns its name.
The definitions follow Keras 3 (``hard_sigmoid(x) = relu6(x + 3) / 6``, ``linear`` is the
identity, ``None`` means linear).

>>> import torch
>>> get("hard_sigmoid")(torch.tensor([-4.0, 0.0, 4.0])).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Activation = Callable[[torch.Tensor], torch.Tensor]


def linear(x: torch.Tensor) -> torch.Tensor:
    """Identity: ``a(x) = x``."""
    return x


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras 3's piecewise-linear sigmoid: ``relu6(x + 3) / 6``."""
    return F.hardsigmoid(x)


def exponential(x: torch.Tensor) -> torch.Tensor:
    """``exp(x)``."""
    return torch.exp(x)


def softsign(x: torch.Tensor) -> torch.Tensor:
    """``x / (1 + |x|)``."""
    return F.softsign(x)


_ACTIVATIONS: dict[str, Activation] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "linear": linear,
    "hard_sigmoid": hard_sigmoid,
    "elu": F.elu,
    "selu": F.selu,
    "gelu": F.gelu,
    "silu": F.silu,
    "swish": F.silu,
    "softplus": F.softplus,
    "softsign": softsign,
    "exponential": exponential,
    "relu6": F.relu6,
    "leaky_relu": F.leaky_relu,
    "mish": F.mish,
    "log_softmax": lambda x: F.log_softmax(x, dim=-1),
    "softmax": lambda x: F.softmax(x, dim=-1),
}

NAMES = tuple(sorted(_ACTIVATIONS))


def get(identifier: str | Activation | None, *, argument: str = "activation") -> Activation:
    """Return the activation function for a Keras name, a callable, or ``None`` (linear).

    Raises:
        ValueError: for an unknown name, listing the known ones.
        TypeError: for anything that is neither a string, a callable nor ``None``.
    """
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        try:
            return _ACTIVATIONS[identifier]
        except KeyError:
            raise ValueError(
                f"{argument}: unknown activation {identifier!r}; expected one of {', '.join(NAMES)}"
            ) from None
    if callable(identifier):
        return identifier
    raise TypeError(
        f"{argument}: expected an activation name or a callable, got {type(identifier).__name__}"
    )


def serialize(fn: Activation) -> str:
    """Return the Keras name of a built-in activation (the inverse of :func:`get`).

    Raises:
        ValueError: for a custom callable, which cannot be stored in a model file as code.
    """
    for name, candidate in _ACTIVATIONS.items():
        if candidate is fn:
            return "swish" if name == "silu" else name
    raise ValueError(
        f"cannot serialise custom activation {fn!r}: model files store names, never code; "
        f"use one of {', '.join(NAMES)}"
    )


def is_default(fn: Activation, name: str) -> bool:
    """Whether ``fn`` is the built-in activation called ``name``."""
    return _ACTIVATIONS.get(name) is fn
