"""Keras-style optimisers (``from lstmkit.optimizers import Adam``) and schedules."""

from lstmkit.training import schedules
from lstmkit.training.optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "schedules"]
