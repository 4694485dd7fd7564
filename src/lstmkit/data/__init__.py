"""Data preparation: text vectorisation, padding, audio features.

Imports torch and numpy only (see DESIGN.md). Names are loaded lazily so that importing
``lstmkit.data`` does not pull in audio libraries a text user never needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "pad_sequences": "lstmkit.data.text",
    "to_categorical": "lstmkit.data.arrays",
    "timeseries_dataset_from_array": "lstmkit.data.arrays",
    "get_file": "lstmkit.data.files",
    "TextVectorization": "lstmkit.data.text",
    "load_audio": "lstmkit.data.audio",
    "log_mel_spectrogram": "lstmkit.data.audio",
    "normalize_features": "lstmkit.data.audio",
    "spec_augment": "lstmkit.data.audio",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lstmkit.data' has no attribute {name!r}")
