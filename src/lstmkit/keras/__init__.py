"""Keras 3's public layout over lstmkit's modules: ``import lstmkit.keras as keras``.

A program written for Keras 3 runs with its import lines changed: ``import keras`` →
``import lstmkit.keras as keras``, ``from keras import layers`` →
``from lstmkit.keras import layers``, ``from tensorflow import keras`` →
``import lstmkit.keras as keras``. Every name here is the very object of the lstmkit module that
defines it (``keras.layers.LSTM is lstmkit.layers.LSTM``); nothing is copied. Submodules are
loaded on first use, so importing ``lstmkit.keras`` is cheap and creates no import cycle.

>>> import lstmkit.keras as keras
>>> import lstmkit.layers
>>> keras.layers.LSTM is lstmkit.layers.LSTM
True
"""

from __future__ import annotations

import importlib
from typing import Any

SUBMODULES = (
    "activations",
    "callbacks",
    "constraints",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "ops",
    "optimizers",
    "preprocessing",
    "regularizers",
    "saving",
    "utils",
)

# Top-level names of Keras 3 and the lstmkit module each comes from.
_NAMES: dict[str, str] = {
    "Sequential": "lstmkit.models",
    "Model": "lstmkit.models",
    "Input": "lstmkit.layers",
    "InputLayer": "lstmkit.layers",
    "Layer": "lstmkit.layers",
}

__all__ = sorted((*SUBMODULES, *_NAMES, "version"))


def version() -> str:
    """lstmkit's version (Keras programs call ``keras.version()``)."""
    import lstmkit

    return lstmkit.__version__


def __getattr__(name: str) -> Any:
    if name in SUBMODULES:
        return importlib.import_module(f"lstmkit.keras.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'lstmkit.keras' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
