"""``keras.regularizers``: the regularisers of :mod:`lstmkit.regularizers`."""

from lstmkit.regularizers import L1, L1L2, L2, Regularizer, get, serialize

__all__ = ["L1", "L1L2", "L2", "Regularizer", "get", "serialize"]
