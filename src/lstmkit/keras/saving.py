"""``keras.saving``: ``load_model``, ``save_model`` and ``register_keras_serializable``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lstmkit.layers import Layer, register_layer
from lstmkit.models import Model, load_model, register_model
from lstmkit.models.saving import save_model

__all__ = ["load_model", "register_keras_serializable", "save_model"]


def register_keras_serializable(
    package: str = "Custom", name: str | None = None
) -> Callable[[type], type]:
    """Decorator making a custom ``Layer`` or ``Model`` subclass loadable from lstmkit model
    files (``lstmkit.layers.register_layer`` / ``lstmkit.models.register_model``). Classes
    are registered under their class name; ``package`` and ``name`` are accepted for Keras's
    signature. Other objects (custom losses, functions) cannot be registered: files store
    names, never code.
    """

    def decorate(cls: Any) -> Any:
        if isinstance(cls, type) and issubclass(cls, Model):
            return register_model(cls)
        if isinstance(cls, type) and issubclass(cls, Layer):
            return register_layer(cls)
        raise TypeError(
            f"register_keras_serializable: expected a Layer or Model subclass, got {cls!r}"
        )

    return decorate
