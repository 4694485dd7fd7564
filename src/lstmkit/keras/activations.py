"""``keras.activations``: activation functions by Keras name (the very functions that
``lstmkit.activations.get(name)`` returns, so layers built with them serialise by name).
``softmax`` and ``log_softmax`` work on the last axis."""

from lstmkit.activations import get, serialize

elu = get("elu")
exponential = get("exponential")
gelu = get("gelu")
hard_sigmoid = get("hard_sigmoid")
leaky_relu = get("leaky_relu")
linear = get("linear")
log_softmax = get("log_softmax")
mish = get("mish")
relu = get("relu")
relu6 = get("relu6")
selu = get("selu")
sigmoid = get("sigmoid")
silu = get("silu")
softmax = get("softmax")
softplus = get("softplus")
softsign = get("softsign")
swish = get("swish")
tanh = get("tanh")

__all__ = [
    "elu", "exponential", "gelu", "get", "hard_sigmoid", "leaky_relu", "linear", "log_softmax",
    "mish", "relu", "relu6", "selu", "serialize", "sigmoid", "silu", "softmax", "softplus",
    "softsign", "swish", "tanh",
]  # fmt: skip
