"""Keras-style models: ``Sequential``, functional ``Model``, subclassing; safe files.

>>> from lstmkit.layers import Dense
>>> from lstmkit.models import Sequential
>>> Sequential([Dense(2)]).name.startswith("sequential")
True
"""

from lstmkit.models import archive
from lstmkit.models.model import Model, register_model
from lstmkit.models.saving import ModelFileError, load_model
from lstmkit.models.sequential import Sequential

__all__ = ["Model", "ModelFileError", "Sequential", "archive", "load_model", "register_model"]
