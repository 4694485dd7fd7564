"""Loaders for the real data sets lstmkit's applications use; all offline, from packages.

See each module for the exact source, the fixed split and how to install what is missing.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "load_movie_reviews": "lstmkit.datasets.sentiment",
    "load_amazon_reviews": "lstmkit.datasets.sentiment",
    "load_shakespeare": "lstmkit.datasets.shakespeare",
    "load_de_en": "lstmkit.datasets.translation",
    "synthesize_digits": "lstmkit.datasets.digits",
    "load_digits": "lstmkit.datasets.digits",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lstmkit.datasets' has no attribute {name!r}")
