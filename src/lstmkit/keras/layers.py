"""``keras.layers``: lstmkit's Keras-style layers (the objects of :mod:`lstmkit.layers`).

``RNN(cell)`` takes Keras's ``LSTMCell``/``GRUCell``/``SimpleRNNCell`` (on every engine), a
list of cells (``StackedRNNCells``) or a user's cell (``state_size`` and ``call(inputs,
states)``, on the reference loop). Not here (see the README's Keras table):
``ConvLSTM1D/2D``, ``MultiHeadAttention``, ``BatchNormalization``. ``TextVectorization`` is
lstmkit's data-side vectoriser (``adapt`` then call it on strings outside the model).
"""

from lstmkit.data.text import TextVectorization
from lstmkit.layers import (
    GRU,
    LSTM,
    RNN,
    Activation,
    Add,
    Average,
    Bidirectional,
    Concatenate,
    Dense,
    Dropout,
    Embedding,
    Flatten,
    GRUCell,
    Input,
    InputLayer,
    Layer,
    LSTMCell,
    Masking,
    Maximum,
    Multiply,
    RepeatVector,
    SimpleRNN,
    SimpleRNNCell,
    StackedRNNCells,
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
    "RNN",
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
    "TextVectorization",
    "TimeDistributed",
    "deserialize",
    "serialize",
]  # fmt: skip
