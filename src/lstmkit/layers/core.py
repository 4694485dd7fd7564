"""Keras-style non-recurrent layers: ``Dense``, ``Embedding``, ``Dropout``, ``Masking``,
``Activation``, ``TimeDistributed``.

Weights follow Keras's layout in ``get_weights`` (``Dense``: ``kernel (I, units)``, ``bias``);
``Dense`` stores its kernel as torch's ``(units, I)`` and transposes on the way out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit import activations, initializers
from lstmkit import constraints as constraints_mod
from lstmkit import regularizers as regularizers_mod
from lstmkit.layers.base import Layer, _check_weight_list, _positive_int, get_mask, set_mask


class Dense(Layer):
    """``y = activation(x · kernel + bias)`` on the last axis of ``x (…, I)`` -> ``(…, units)``.

    Keras 3's arguments: ``units, activation=None, use_bias=True,
    kernel_initializer="glorot_uniform", bias_initializer="zeros"``, regularisers and
    constraints. Stored as torch's ``weight (units, I)``; ``get_weights`` gives
    ``[kernel (I, units), bias (units,)]``.

    Example:
        >>> tuple(Dense(3, activation="softmax")(torch.zeros(2, 5)).shape)
        (2, 3)
    """

    supports_masking = True

    def __init__(
        self,
        units: int,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units = _positive_int("Dense", "units", units)
        self.activation = activations.get(activation, argument="Dense: activation")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(
            kernel_initializer, argument="Dense: kernel_initializer"
        )
        self.bias_initializer = initializers.get(
            bias_initializer, argument="Dense: bias_initializer"
        )
        self.kernel_regularizer = regularizers_mod.get(kernel_regularizer)
        self.bias_regularizer = regularizers_mod.get(bias_regularizer)
        self.activity_regularizer = regularizers_mod.get(activity_regularizer)
        self.kernel_constraint = constraints_mod.get(kernel_constraint)
        self.bias_constraint = constraints_mod.get(bias_constraint)
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)
        if self._input_shape_arg is not None:
            self.build((None, *self._input_shape_arg))

    def build(self, input_shape: Any) -> None:
        if self.built:
            return
        features = input_shape[-1]
        if features is None:
            raise ValueError(
                f"Dense '{self.name}': the last input dimension must be known, "
                f"got shape {tuple(input_shape)}"
            )
        self.weight = self.add_weight(
            shape=(features, self.units),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="weight",
            transpose=True,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
        self.built = True

    def forward(self, inputs: Tensor) -> Tensor:
        if not isinstance(inputs, Tensor):
            raise TypeError(f"Dense '{self.name}': expected a tensor, got {type(inputs).__name__}")
        features = self.weight.shape[1]
        if inputs.dim() < 1 or inputs.shape[-1] != features:
            raise ValueError(
                f"Dense '{self.name}': expected inputs of shape (..., {features}), "
                f"got {tuple(inputs.shape)}"
            )
        if not inputs.is_floating_point():
            inputs = inputs.to(self.weight.dtype)
        return self.activation(F.linear(inputs.to(self.weight.dtype), self.weight, self.bias))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*tuple(input_shape)[:-1], self.units)

    def get_weights(self) -> list[np.ndarray]:
        if self.weight is None:  # not built yet: no weights (as Keras)
            return []
        out = [self.weight.detach().cpu().numpy().T.copy()]
        if self.bias is not None:
            out.append(self.bias.detach().cpu().numpy().copy())
        return out

    def set_weights(self, weights: list[Any]) -> None:
        if self.weight is None:
            raise ValueError(f"{self.name}: build the layer (call it once) before set_weights")
        shapes = [tuple(self.weight.shape[::-1])] + (
            [tuple(self.bias.shape)] if self.use_bias else []
        )
        _check_weight_list(self.name, weights, shapes)
        with torch.no_grad():
            self.weight.copy_(torch.as_tensor(np.asarray(weights[0])).T)
            if self.use_bias:
                self.bias.copy_(torch.as_tensor(np.asarray(weights[1])))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers_mod.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers_mod.serialize(self.bias_regularizer),
            "activity_regularizer": regularizers_mod.serialize(self.activity_regularizer),
            "kernel_constraint": constraints_mod.serialize(self.kernel_constraint),
            "bias_constraint": constraints_mod.serialize(self.bias_constraint),
        }


class Embedding(Layer):
    """Token ids ``(B, T)`` -> vectors ``(B, T, output_dim)``; Keras 3's ``Embedding``.

    ``mask_zero=True`` treats id 0 as padding: the layer emits the mask ``ids != 0`` that the
    following layers (``LSTM``…) receive. Ids outside ``[0, input_dim)`` raise a ``ValueError``
    naming the offending value (Keras on CPU would fail obscurely or, on GPU, return zeros).

    Example:
        >>> emb = Embedding(10, 4, mask_zero=True)
        >>> y = emb(torch.tensor([[3, 0]]))
        >>> tuple(y.shape), y._keras_mask.tolist()
        ((1, 2, 4), [[True, False]])
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        embeddings_regularizer: Any = None,
        embeddings_constraint: Any = None,
        mask_zero: bool = False,
        input_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_dim = _positive_int("Embedding", "input_dim", input_dim)
        self.output_dim = _positive_int("Embedding", "output_dim", output_dim)
        if embeddings_initializer == "uniform":
            embeddings_initializer = initializers.RandomUniform(-0.05, 0.05)
        self.embeddings_initializer = initializers.get(
            embeddings_initializer, argument="Embedding: embeddings_initializer"
        )
        self.embeddings_regularizer = regularizers_mod.get(embeddings_regularizer)
        self.embeddings_constraint = constraints_mod.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.input_length = input_length
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim),
            initializer=self.embeddings_initializer,
            regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint,
            name="embeddings",
        )
        self.built = True

    def forward(self, inputs: Tensor) -> Tensor:
        if not isinstance(inputs, Tensor):
            raise TypeError(
                f"Embedding '{self.name}': expected integer token ids, got {type(inputs).__name__}"
            )
        if inputs.is_floating_point():
            if not bool(torch.all(inputs == inputs.round())):
                raise TypeError(
                    f"Embedding '{self.name}': expected integer token ids, got "
                    f"non-integer values of dtype {inputs.dtype}"
                )
            inputs = inputs.long()
        elif inputs.dtype == torch.bool or inputs.is_complex():
            raise TypeError(
                f"Embedding '{self.name}': expected integer token ids, got {inputs.dtype}"
            )
        if inputs.numel():
            lo, hi = int(inputs.min()), int(inputs.max())
            if lo < 0 or hi >= self.input_dim:
                bad = hi if hi >= self.input_dim else lo
                raise ValueError(
                    f"Embedding '{self.name}': token ids must be in "
                    f"[0, {self.input_dim}), got {bad}"
                )
        return F.embedding(inputs.long(), self.embeddings)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if not self.mask_zero:
            return None
        return torch.as_tensor(inputs) != 0

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*tuple(input_shape), self.output_dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
            "embeddings_regularizer": regularizers_mod.serialize(self.embeddings_regularizer),
            "embeddings_constraint": constraints_mod.serialize(self.embeddings_constraint),
            "mask_zero": self.mask_zero,
        }


class Dropout(Layer):
    """Randomly zero a fraction ``rate`` of inputs in training, scaling the rest by
    ``1 / (1 - rate)``; identity in inference. ``noise_shape`` as Keras (``None`` entries take
    the input's size), ``seed`` for reproducible masks."""

    supports_masking = True

    def __init__(
        self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be a float in [0, 1), got {rate!r}")
        self.rate = float(rate)
        self.noise_shape = tuple(noise_shape) if noise_shape is not None else None
        self.seed = seed
        self._generator: torch.Generator | None = None
        self.built = True

    def forward(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        training = self.training if training is None else bool(training)
        if not training or self.rate == 0.0:
            return inputs
        if self.noise_shape is None and self.seed is None:
            return F.dropout(inputs, self.rate, training=True)
        shape = (
            tuple(inputs.shape)
            if self.noise_shape is None
            else tuple(
                s if s is not None else inputs.shape[i] for i, s in enumerate(self.noise_shape)
            )
        )
        if self.seed is not None and self._generator is None:
            self._generator = torch.Generator(device=inputs.device).manual_seed(self.seed)
        keep = torch.empty(shape, device=inputs.device, dtype=inputs.dtype)
        keep.bernoulli_(1 - self.rate, generator=self._generator)
        return inputs * keep / (1 - self.rate)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rate": self.rate,
            "noise_shape": list(self.noise_shape) if self.noise_shape else None,
            "seed": self.seed,
        }


class Masking(Layer):
    """Mask the time steps whose features all equal ``mask_value`` (and zero them), as Keras."""

    supports_masking = True

    def __init__(self, mask_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)
        self.built = True

    def _mask(self, inputs: Tensor) -> Tensor:
        return torch.any(inputs != self.mask_value, dim=-1)

    def forward(self, inputs: Tensor) -> Tensor:
        return inputs * self._mask(inputs).unsqueeze(-1).to(inputs.dtype)

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return self._mask(torch.as_tensor(inputs))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}


class Activation(Layer):
    """Apply an activation by name (``Activation("relu")``)."""

    supports_masking = True

    def __init__(self, activation: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation, argument="Activation: activation")
        self.built = True

    def forward(self, inputs: Tensor) -> Tensor:
        return self.activation(inputs)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class TimeDistributed(Layer):
    """Apply ``layer`` to every time step of ``(B, T, …)`` (by folding ``T`` into the batch)."""

    supports_masking = True

    def __init__(self, layer: Layer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise ValueError(
                f"TimeDistributed: layer must be an lstmkit layer, got {type(layer).__name__}"
            )
        self.layer = layer

    def build(self, input_shape: Any) -> None:
        if len(input_shape) < 3:
            raise ValueError(
                f"TimeDistributed '{self.name}': expected inputs of rank >= 3 "
                f"(B, T, ...), got shape {tuple(input_shape)}"
            )
        if not self.layer.built:
            self.layer.build((None, *tuple(input_shape)[2:]))
            self.layer.built = True
        self.built = True

    def forward(self, inputs: Tensor, training: bool | None = None) -> Tensor:
        if inputs.dim() < 3:
            raise ValueError(
                f"TimeDistributed '{self.name}': expected inputs of rank >= 3 "
                f"(B, T, ...), got shape {tuple(inputs.shape)}"
            )
        b, t = inputs.shape[:2]
        kwargs = {"training": training} if "training" in self.layer._call_params() else {}
        y = self.layer(inputs.reshape(b * t, *inputs.shape[2:]), **kwargs)
        set_mask(y, None)
        return y.reshape(b, t, *y.shape[1:])

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask if mask is not None else get_mask(inputs)

    def get_weights(self) -> list[np.ndarray]:
        return self.layer.get_weights()

    def set_weights(self, weights: list[Any]) -> None:
        self.layer.set_weights(weights)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "layer": {"class_name": type(self.layer).__name__, "config": self.layer.get_config()},
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TimeDistributed:
        from lstmkit.layers.serialization import deserialize

        config = dict(config)
        return cls(deserialize(config.pop("layer")), **config)
