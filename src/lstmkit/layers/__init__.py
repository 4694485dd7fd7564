"""Keras-style layers (batch-first ``(B, T, F)``), with Keras 3's names and arguments.

>>> from lstmkit.layers import LSTM, Dense
>>> layer = LSTM(8)
>>> layer.name.startswith("lstm")
True
"""

from __future__ import annotations

from lstmkit.layers.base import Input, InputLayer, Layer, SymbolicTensor
from lstmkit.layers.bidirectional import Bidirectional
from lstmkit.layers.core import Activation, Dense, Dropout, Embedding, Masking, TimeDistributed
from lstmkit.layers.keras_cells import GRUCell, LSTMCell, SimpleRNNCell
from lstmkit.layers.merge import Add, Average, Concatenate, Maximum, Multiply, Subtract
from lstmkit.layers.recurrent import GRU, LSTM, RNN, SimpleRNN
from lstmkit.layers.reshaping import Flatten, RepeatVector
from lstmkit.layers.serialization import deserialize, get_layer_class, register_layer, serialize
from lstmkit.layers.user_cells import StackedRNNCells

for _cls in (
    RNN,
    StackedRNNCells,
    LSTMCell,
    GRUCell,
    SimpleRNNCell,
    LSTM,
    GRU,
    SimpleRNN,
    Bidirectional,
    Dense,
    Embedding,
    Dropout,
    Masking,
    Activation,
    TimeDistributed,
    Concatenate,
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    RepeatVector,
    Flatten,
):
    register_layer(_cls)


__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Activation",
    "Add",
    "Average",
    "Bidirectional",
    "Concatenate",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GRUCell",
    "Input",
    "InputLayer",
    "LSTMCell",
    "Layer",
    "Masking",
    "Maximum",
    "Multiply",
    "RepeatVector",
    "SimpleRNN",
    "SimpleRNNCell",
    "StackedRNNCells",
    "Subtract",
    "SymbolicTensor",
    "TimeDistributed",
    "deserialize",
    "get_layer_class",
    "register_layer",
    "serialize",
]
