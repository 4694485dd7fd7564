"""Keras-style convolutions over time (``Conv1D``) and over time × frequency (``Conv2D``).

Keras 3's arguments, names and defaults: ``filters, kernel_size, strides=1, padding="valid",
data_format=None, dilation_rate=1, groups=1, activation=None, use_bias=True,
kernel_initializer="glorot_uniform", bias_initializer="zeros"``, regularisers and constraints.
Inputs are ``channels_last`` by default: ``(B, T, C)`` for ``Conv1D``, ``(B, T, W, C)`` for
``Conv2D`` (``data_format="channels_first"`` takes ``(B, C, T)`` / ``(B, C, T, W)``).

The kernel is stored in Keras's layout, ``kernel (k, C_in / groups, filters)`` for ``Conv1D``
and ``(k_t, k_w, C_in / groups, filters)`` for ``Conv2D``, so ``get_weights`` / ``set_weights``
exchange weights with Keras unchanged; ``forward`` permutes it to torch's ``(filters, C_in /
groups, *k)`` for ``torch.nn.functional.conv1d`` / ``conv2d``.

Output length along one axis of input length ``T``, kernel ``k``, stride ``s``, dilation ``d``:

* ``"valid"``: no padding, ``⌊(T − d(k − 1) − 1) / s⌋ + 1``;
* ``"same"``: ``⌈T / s⌉``; TensorFlow's rule (Keras's): ``P = max((⌈T/s⌉ − 1)s + d(k − 1) + 1 − T,
  0)`` zeros in all, ``⌊P/2⌋`` before and the rest after;
* ``"causal"`` (``Conv1D`` only): ``d(k − 1)`` zeros before, ``⌈T / s⌉``.

Masks (an lstmkit extension: Keras's convolutions drop masks). A ``(B, T)`` mask on the first
spatial axis (time) is honoured and propagated, so a convolutional front end can feed masked
recurrent layers:

* masked input steps are set to zero before the convolution, so the outputs at valid steps do
  not depend on what the padding holds (it reads as the zeros of ``"same"`` padding);
* the output mask keeps output step ``t'`` where the input step at its *anchor* is valid:
  ``t'·s + d(k − 1)`` (the window's last step) for ``"valid"``, ``t'·s`` for ``"same"`` and
  ``"causal"``. For a right-padded mask of length ``L`` this is exactly a prefix of
  :meth:`output_length` ``(L)`` steps, the length the layer gives the unpadded sequence;
* masked output steps are set to zero.

Example:
    >>> import torch
    >>> conv = Conv1D(8, 5, strides=2, padding="same")
    >>> x = torch.zeros(2, 11, 3)
    >>> mask = torch.arange(11)[None, :] < torch.tensor([[11], [6]])  # lengths 11 and 6
    >>> y = conv(x, mask=mask)
    >>> tuple(y.shape), y._keras_mask.sum(1).tolist(), conv.output_length(6)
    ((2, 6, 8), [6, 3], 3)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit import activations, initializers
from lstmkit import constraints as constraints_mod
from lstmkit import regularizers as regularizers_mod
from lstmkit.layers.base import Layer, _positive_int, unique_name

__all__ = ["Conv1D", "Conv2D", "conv_output_length"]

PADDINGS = ("valid", "same", "causal")
DATA_FORMATS = ("channels_last", "channels_first")


def conv_output_length(
    length: int, kernel_size: int, strides: int = 1, padding: str = "valid", dilation_rate: int = 1
) -> int:
    """Output length of a convolution along one axis (the formulas of the module docstring).

    >>> conv_output_length(100, 3, 2, "same"), conv_output_length(100, 3, 2, "valid")
    (50, 49)
    """
    if padding not in PADDINGS:
        raise ValueError(f"conv_output_length: padding must be one of {PADDINGS}, got {padding!r}")
    if padding in ("same", "causal"):
        return -(-length // strides)
    span = dilation_rate * (kernel_size - 1) + 1
    return max(0, (length - span) // strides + 1)


def _tuple(layer: str, argument: str, value: Any, rank: int) -> tuple[int, ...]:
    """An int or a sequence of ``rank`` positive ints, as a tuple (Keras's standardize_tuple)."""
    items = (value,) * rank if isinstance(value, (int, np.integer)) else value
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    if len(items) != rank or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0 for v in items
    ):
        raise ValueError(
            f"{layer}: {argument} must be a positive int or a tuple of {rank} positive ints, "
            f"got {value!r}"
        )
    return tuple(int(v) for v in items)


class _Conv(Layer):
    """Shared machinery of :class:`Conv1D` and :class:`Conv2D` (Keras's ``BaseConv``)."""

    rank: int = 1
    supports_masking = True

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        groups: int = 1,
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
        if kwargs.get("name") is None:  # Keras's automatic names: conv1d, conv2d_1, …
            kwargs["name"] = unique_name(type(self).__name__.lower())
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.filters = _positive_int(cls, "filters", filters)
        self.groups = _positive_int(cls, "groups", groups)
        if self.filters % self.groups:
            raise ValueError(
                f"{cls}: filters ({self.filters}) must be divisible by groups ({self.groups})"
            )
        self.kernel_size = _tuple(cls, "kernel_size", kernel_size, self.rank)
        self.strides = _tuple(cls, "strides", strides, self.rank)
        self.dilation_rate = _tuple(cls, "dilation_rate", dilation_rate, self.rank)
        padding = padding.lower() if isinstance(padding, str) else padding
        allowed = PADDINGS if self.rank == 1 else PADDINGS[:2]
        if padding not in allowed:
            raise ValueError(f"{cls}: padding must be one of {allowed}, got {padding!r}")
        self.padding = padding
        data_format = "channels_last" if data_format is None else data_format
        if data_format not in DATA_FORMATS:
            raise ValueError(
                f"{cls}: data_format must be one of {DATA_FORMATS} (or None), got {data_format!r}"
            )
        self.data_format = data_format
        self.activation = activations.get(activation, argument=f"{cls}: activation")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(
            kernel_initializer, argument=f"{cls}: kernel_initializer"
        )
        self.bias_initializer = initializers.get(
            bias_initializer, argument=f"{cls}: bias_initializer"
        )
        self.kernel_regularizer = regularizers_mod.get(
            kernel_regularizer, argument=f"{cls}: kernel_regularizer"
        )
        self.bias_regularizer = regularizers_mod.get(
            bias_regularizer, argument=f"{cls}: bias_regularizer"
        )
        self.activity_regularizer = regularizers_mod.get(
            activity_regularizer, argument=f"{cls}: activity_regularizer"
        )
        self.kernel_constraint = constraints_mod.get(
            kernel_constraint, argument=f"{cls}: kernel_constraint"
        )
        self.bias_constraint = constraints_mod.get(
            bias_constraint, argument=f"{cls}: bias_constraint"
        )
        self.register_parameter("kernel", None)
        self.register_parameter("bias", None)
        if self._input_shape_arg is not None:
            self.build((None, *self._input_shape_arg))

    # -- building ------------------------------------------------------------------------

    def _channel_axis(self) -> int:
        return -1 if self.data_format == "channels_last" else 1

    def build(self, input_shape: Any) -> None:
        if self.built:
            return
        shape = tuple(input_shape)
        cls = type(self).__name__
        channels = shape[self._channel_axis()] if len(shape) == self.rank + 2 else None
        if channels is None:
            layout = "(B, T, C)" if self.rank == 1 else "(B, T, W, C)"
            if self.data_format == "channels_first":
                layout = "(B, C, T)" if self.rank == 1 else "(B, C, T, W)"
            raise ValueError(
                f"{cls} '{self.name}': expected inputs of shape {layout} with a known number of "
                f"channels, got {shape}"
            )
        if channels % self.groups:
            raise ValueError(
                f"{cls} '{self.name}': the input channels ({channels}) must be divisible by "
                f"groups ({self.groups})"
            )
        self.kernel = self.add_weight(
            shape=(*self.kernel_size, channels // self.groups, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
            name="kernel",
        )
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.filters,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
                name="bias",
            )
        self.built = True

    # -- lengths and masks ---------------------------------------------------------------

    def output_length(self, length: int, axis: int = 0) -> int:
        """Output length along spatial axis ``axis`` (0 = time) for an input of ``length``."""
        return conv_output_length(
            length,
            self.kernel_size[axis],
            self.strides[axis],
            self.padding,
            self.dilation_rate[axis],
        )

    def _mask_anchor(self) -> int:
        """Input step, relative to ``t'·s``, whose validity decides output step ``t'``'s."""
        return self.dilation_rate[0] * (self.kernel_size[0] - 1) if self.padding == "valid" else 0

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if mask is None:
            return None
        mask = torch.as_tensor(mask).to(torch.bool)
        steps = mask.shape[1]
        out_steps = self.output_length(steps)
        anchors = torch.arange(out_steps, device=mask.device) * self.strides[0]
        return mask[:, anchors + self._mask_anchor()]  # (B, T')

    def _padding_amounts(self, spatial: tuple[int, ...]) -> list[tuple[int, int]]:
        """``(before, after)`` zeros per spatial axis."""
        out = []
        for size, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate):
            if self.padding == "valid":
                out.append((0, 0))
            elif self.padding == "causal":
                out.append((d * (k - 1), 0))
            else:
                total = max((math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size, 0)
                out.append((total // 2, total - total // 2))
        return out

    # -- calling -------------------------------------------------------------------------

    def _check_inputs(self, inputs: Any) -> Tensor:
        cls = type(self).__name__
        if not isinstance(inputs, Tensor):
            raise TypeError(
                f"{cls} '{self.name}': expected a tensor or numpy array, "
                f"got {type(inputs).__name__}"
            )
        channels = self.kernel.shape[-2] * self.groups
        if inputs.dim() != self.rank + 2 or inputs.shape[self._channel_axis()] != channels:
            want = ["B", "T", "W"][: self.rank + 1]
            want = [*want, str(channels)] if self.data_format == "channels_last" else (
                [want[0], str(channels), *want[1:]]
            )  # fmt: skip
            raise ValueError(
                f"{cls} '{self.name}': expected inputs of shape ({', '.join(want)}), "
                f"got {tuple(inputs.shape)}"
            )
        if not inputs.is_floating_point():
            inputs = inputs.to(self.kernel.dtype)
        return inputs.to(self.kernel.dtype)

    def _check_mask(self, mask: Any, x: Tensor) -> Tensor | None:
        if mask is None:
            return None
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        mask = torch.as_tensor(mask)
        time_axis = 1 if self.data_format == "channels_last" else 2
        want = (x.shape[0], x.shape[time_axis])
        if mask.dim() != 2 or tuple(mask.shape) != want:
            raise ValueError(
                f"{type(self).__name__} '{self.name}': expected a mask of shape (B, T) = {want}, "
                f"got {tuple(mask.shape)}"
            )
        return mask.to(device=x.device, dtype=torch.bool)

    def forward(self, inputs: Tensor, mask: Tensor | None = None) -> Tensor:
        x = self._check_inputs(inputs)
        mask = self._check_mask(mask, x)
        if self.data_format == "channels_last":
            x = x.movedim(-1, 1)  # (B, C, T[, W])
        if mask is not None:
            x = x * mask.view(mask.shape[0], 1, mask.shape[1], *([1] * (self.rank - 1)))
        pads = self._padding_amounts(tuple(x.shape[2:]))
        if any(p != (0, 0) for p in pads):
            # F.pad lists the last axis first: (W_before, W_after, T_before, T_after).
            x = F.pad(x, [n for pair in reversed(pads) for n in pair])
        weight = self.kernel.permute(self.rank + 1, self.rank, *range(self.rank))  # (F, C/g, *k)
        conv = F.conv1d if self.rank == 1 else F.conv2d
        y = conv(x, weight, self.bias, self.strides, 0, self.dilation_rate, self.groups)
        y = self.activation(y)  # (B, F, T'[, W'])
        if mask is not None:
            out_mask = self.compute_mask(None, mask)
            y = y * out_mask.view(y.shape[0], 1, y.shape[2], *([1] * (self.rank - 1)))
        if self.data_format == "channels_last":
            y = y.movedim(1, -1)  # (B, T'[, W'], F)
        return y

    def compute_output_shape(self, input_shape: Any) -> Any:
        shape = tuple(input_shape)
        first = self.data_format == "channels_first"
        spatial = shape[2:] if first else shape[1:-1]
        out = tuple(
            None if n is None else self.output_length(n, axis) for axis, n in enumerate(spatial)
        )
        return (shape[0], self.filters, *out) if first else (shape[0], *out, self.filters)

    # -- configuration -------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            "groups": self.groups,
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

    def extra_repr(self) -> str:
        return (
            f"{self.filters}, kernel_size={self.kernel_size}, strides={self.strides}, "
            f"padding={self.padding!r}, name={self.name!r}"
        )


class Conv1D(_Conv):
    """1-D convolution over time, Keras 3's ``Conv1D``: ``(B, T, C) -> (B, T', filters)``.

    ``y[b, t', f] = activation(bias[f] + Σ_j Σ_c kernel[j, c, f] · x_pad[b, t'·s + j·d, c])``
    with ``x_pad`` the input padded as ``padding`` says (module docstring). The kernel is
    ``(kernel_size, C / groups, filters)``, initialised ``glorot_uniform`` with Keras's fans
    (``fan_in = k · C / groups``, ``fan_out = k · filters``); the bias is zeros.

    Args: see the module docstring (Keras 3's arguments); ``padding`` may also be ``"causal"``.

    Example:
        >>> import torch
        >>> tuple(Conv1D(16, 3, padding="same")(torch.zeros(2, 10, 4)).shape)
        (2, 10, 16)
    """

    rank = 1


class Conv2D(_Conv):
    """2-D convolution, Keras 3's ``Conv2D``: ``(B, T, W, C) -> (B, T', W', filters)``.

    The first spatial axis is time (it carries the mask); for speech the second is frequency.
    The kernel is ``(k_t, k_w, C / groups, filters)``; padding ``"valid"`` or ``"same"``.

    Example:
        >>> import torch
        >>> tuple(Conv2D(8, (3, 3), strides=2, padding="same")(torch.zeros(1, 9, 80, 1)).shape)
        (1, 5, 40, 8)
    """

    rank = 2


def _register() -> None:
    from lstmkit.layers import register_layer

    for cls in (Conv1D, Conv2D):
        register_layer(cls)


_register()
