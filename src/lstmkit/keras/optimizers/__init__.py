"""``keras.optimizers``: Keras 3's update formulas (the objects of :mod:`lstmkit.optimizers`),
and ``keras.optimizers.schedules``."""

from lstmkit.keras.optimizers import schedules
from lstmkit.optimizers import (
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Ftrl,
    Lion,
    Nadam,
    Optimizer,
    RMSprop,
    get,
    serialize,
)

__all__ = [
    "SGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "Ftrl", "Lion",
    "Nadam", "Optimizer", "RMSprop", "get", "schedules", "serialize",
]  # fmt: skip
