"""The registry of layer classes that configs may name, and ``serialize``/``deserialize``.

Model files store class names and configs, never code: only classes registered here (every
built-in layer, ``Sequential``, ``Model`` and the user's registered classes) are constructed.
"""

from __future__ import annotations

from typing import Any

from lstmkit.layers.base import Layer

_REGISTRY: dict[str, type[Layer]] = {}


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Make a layer class loadable from configs (model files store class names, never code).

    Custom layers must be registered before a model using them is loaded.
    """
    _REGISTRY[cls.__name__] = cls
    return cls


def get_layer_class(name: str) -> type[Layer]:
    """The registered layer class called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown layer class {name!r}; known: {', '.join(sorted(_REGISTRY))} "
            f"(register custom layers with lstmkit.layers.register_layer)"
        ) from None


def serialize(layer: Layer) -> dict[str, Any]:
    """``{"class_name": ..., "config": layer.get_config()}``."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(spec: dict[str, Any]) -> Layer:
    """The inverse of :func:`serialize`; only registered classes are constructed."""
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(f"expected a layer spec {{'class_name', 'config'}}, got {spec!r}")
    return get_layer_class(spec["class_name"]).from_config(dict(spec.get("config", {})))
