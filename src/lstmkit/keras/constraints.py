"""``keras.constraints``: the constraints of :mod:`lstmkit.constraints`."""

from lstmkit.constraints import Constraint, MaxNorm, MinMaxNorm, NonNeg, UnitNorm, get, serialize

__all__ = ["Constraint", "MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm", "get", "serialize"]
