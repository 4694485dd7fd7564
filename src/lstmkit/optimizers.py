"""Keras-style optimisers (``from lstmkit.optimizers import Adam``) and schedules."""

from lstmkit.training import schedules
from lstmkit.training.optimizers import (
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
