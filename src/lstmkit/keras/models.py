"""``keras.models``: ``Sequential``, ``Model``, ``load_model``, ``save_model``."""

from lstmkit.models import Model, Sequential, load_model
from lstmkit.models.saving import save_model

__all__ = ["Model", "Sequential", "load_model", "save_model"]
