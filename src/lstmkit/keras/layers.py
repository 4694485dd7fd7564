"""``keras.layers``: lstmkit's Keras-style layers (the objects of :mod:`lstmkit.layers`).

Not here (see the README's Keras table): the generic ``RNN(cell)`` with Keras-style cells,
``ConvLSTM1D/2D``, ``MultiHeadAttention``, ``BatchNormalization``. ``TextVectorization`` is
lstmkit's data-side vectoriser (``adapt`` then call it on strings outside the model).
"""

from lstmkit.data.text import TextVectorization
from lstmkit.layers import (
    GRU,
    LSTM,
    Activation,
    Add,
    Average,
    Bidirectional,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    Input,
    InputLayer,
    Layer,
    Masking,
    Maximum,
    Multiply,
    RepeatVector,
    SimpleRNN,
    Subtract,
    TimeDistributed,
    deserialize,
    serialize,
)
from lstmkit.layers.attention import AdditiveAttention, Attention
from lstmkit.layers.conv import Conv1D, Conv2D

__all__ = [
    "GRU",
    "LSTM",
    "Activation",
    "Add",
    "AdditiveAttention",
    "Attention",
    "Average",
    "Bidirectional",
    "Concatenate",
    "Conv1D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "Input",
    "InputLayer",
    "Layer",
    "Masking",
    "Maximum",
    "Multiply",
    "RepeatVector",
    "SimpleRNN",
    "Subtract",
    "TextVectorization",
    "TimeDistributed",
    "deserialize",
    "serialize",
]  # fmt: skip
