"""Reading an application's ``model.assets`` as data from a stranger.

A model file's assets (vocabularies, tokenizers, SentencePiece models, feature settings,
configs) are JSON written by the application's ``save``, but a file may be damaged or crafted.
Each application's ``load`` reads them through :class:`AssetReader`: required keys, types and
ranges are checked, and any error while rebuilding an object from them becomes a
:class:`~lstmkit.models.ModelFileError` naming the file, the asset and what was expected —
never a ``KeyError`` or ``AttributeError`` from deep inside.

>>> from lstmkit.models import ModelFileError
>>> r = AssetReader("m.lstmkit", "speech", {"features": {"sample_rate": 0}})
>>> try:
...     r.positive_int(r.mapping("features"), "sample_rate", "features")
... except ModelFileError as e:
...     print(e)
m.lstmkit: speech assets: features.sample_rate must be a positive integer, got 0
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import Any

from lstmkit.models import ModelFileError
from lstmkit.models.archive import json_type


class AssetReader:
    """Checked access to the assets ``assets`` of application ``app`` in file ``path``."""

    def __init__(self, path: str | os.PathLike[str], app: str, assets: Any) -> None:
        self.where = f"{os.fspath(path)}: {app} assets"
        if not isinstance(assets, dict):
            raise self.error("", "a JSON object", assets)
        self.assets = assets

    def error(self, key: str, expected: str, got: Any) -> ModelFileError:
        shown = repr(got) if isinstance(got, (int, float, bool)) or got is None else json_type(got)
        name = f"{key} " if key else ""
        return ModelFileError(f"{self.where}: {name}must be {expected}, got {shown}")

    def get(self, key: str, kind: type | tuple[type, ...], within: dict[str, Any] | None = None,
            label: str | None = None, required: bool = True) -> Any:  # fmt: skip
        """``within[key]`` (default: the assets), of type ``kind`` (``bool`` is no int)."""
        source = self.assets if within is None else within
        label = label or key
        if key not in source:
            if not required:
                return None
            raise ModelFileError(f"{self.where}: {label!r} is missing")
        value = source[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_NAMES.get(k, k.__name__) for k in kinds)
            raise self.error(label, names, value)
        return value

    def mapping(self, key: str, within: dict[str, Any] | None = None, label: str | None = None,
                required: bool = True) -> dict[str, Any]:  # fmt: skip
        value = self.get(key, dict, within, label, required)
        return {} if value is None else value

    def strings(self, key: str, within: dict[str, Any] | None = None, label: str | None = None,
                min_len: int = 1) -> list[str]:  # fmt: skip
        """A list of at least ``min_len`` strings."""
        value = self.get(key, list, within, label)
        if len(value) < min_len or not all(isinstance(s, str) for s in value):
            raise self.error(label or key, f"a list of at least {min_len} strings", value)
        return value

    def positive_int(self, within: dict[str, Any], key: str, label: str | None = None,
                     minimum: int = 1) -> int:  # fmt: skip
        label = f"{label}.{key}" if label else key
        value = self.get(key, int, within, label)
        if value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.error(label, what, value)
        return value

    def positive_number(self, within: dict[str, Any], key: str, label: str | None = None) -> float:
        label = f"{label}.{key}" if label else key
        value = self.get(key, (int, float), within, label)
        if not math.isfinite(value) or value <= 0:
            raise self.error(label, "a positive finite number", value)
        return float(value)

    @contextlib.contextmanager
    def rebuilding(self, what: str) -> Iterator[None]:
        """Turn any error while rebuilding ``what`` from the assets into a ModelFileError."""
        try:
            yield
        except ModelFileError:
            raise
        except Exception as e:  # assets are data from a stranger: their errors are the file's
            raise ModelFileError(
                f"{self.where}: cannot rebuild the {what} from them: {type(e).__name__}: {e}"
            ) from None


_NAMES = {dict: "a JSON object", list: "a list", str: "a string", int: "an integer",
          float: "a number", bool: "a boolean"}  # fmt: skip
