"""``Sequential``: a plain stack of layers, each feeding the next (Keras 3's).

>>> from lstmkit.layers import Dense
>>> model = Sequential([Dense(4, activation="relu"), Dense(1)])
>>> model.build((None, 3)); model.count_params()
21
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lstmkit.layers import register_layer
from lstmkit.layers.base import Input, Layer, SymbolicTensor, to_dtype
from lstmkit.models.model import Model


class Sequential(Model):
    """A linear stack of layers: ``Sequential([layer, ...])`` or ``.add(layer)``.

    The model builds lazily on its first call (or ``build(input_shape)``, or from an ``Input``
    given as the first element / an ``input_shape=`` on the first layer). Masks produced by a
    layer (``Embedding(mask_zero=True)``) reach the following layers, as in Keras.
    """

    _keeps_output_masks = True

    def __init__(
        self,
        layers: list[Any] | None = None,
        trainable: bool = True,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._layers = nn.ModuleDict()
        self._input_spec: SymbolicTensor | None = None
        self._build_shape: tuple | None = None
        self._build_dtype: torch.dtype | None = None
        self._output_shapes: dict[str, Any] = {}
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Any) -> None:
        """Append a layer (or an ``Input`` fixing the input shape, as the first element)."""
        if isinstance(layer, SymbolicTensor):
            if self._layers or self._input_spec is not None:
                raise ValueError(f"{self.name}: an Input can only be the first element")
            self._input_spec = layer
            self.build(layer.shape, dtype=layer.dtype)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"{self.name}: expected an lstmkit layer, got {type(layer).__name__}")
        if layer.name in self._layers:
            raise ValueError(
                f"{self.name}: all layers added to a Sequential model must have "
                f"unique names; {layer.name!r} is already used"
            )
        self._layers[layer.name] = layer
        if self.built or (len(self._layers) == 1 and layer._input_shape_arg is not None):
            shape = self._build_shape or (None, *layer._input_shape_arg)
            self.built = False
            self.build(shape, dtype=self._build_dtype)

    def pop(self) -> Layer:
        """Remove and return the last layer."""
        if not self._layers:
            raise ValueError(f"{self.name}: there are no layers to pop")
        name = list(self._layers)[-1]
        layer = self._layers[name]
        del self._layers[name]
        self._output_shapes.pop(name, None)
        return layer

    def build(self, input_shape: Any = None, dtype: Any = None) -> None:
        """Build every layer for inputs of ``input_shape`` (batch first, ``None`` allowed),
        recording the output shapes that ``summary`` shows."""
        if self.built and self._build_shape is not None:
            return
        if input_shape is None:
            raise ValueError(f"{self.name}: build needs an input_shape")
        shape = tuple(input_shape)
        self._build_shape = (None, *shape[1:])
        self._build_dtype = to_dtype(dtype) if dtype is not None else None
        if self._layers:
            first = next(iter(self._layers.values()))
            guess = self._build_dtype or (
                torch.long if type(first).__name__ == "Embedding" else torch.get_default_dtype()
            )
            x: Any = Input(batch_shape=self._build_shape, dtype=guess)
            for layer in self._layers.values():
                x = layer(x)
                self._output_shapes[layer.name] = (
                    [t.shape for t in x] if isinstance(x, list) else x.shape
                )
                if isinstance(x, list):
                    x = x[0]
        self.built = True

    def _maybe_build(self, inputs: Any) -> None:
        if self.built:
            return
        if not isinstance(inputs, torch.Tensor):
            self.built = True  # nested inputs: layers build themselves lazily
            return
        self.build(tuple(inputs.shape), dtype=inputs.dtype)

    def forward(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        if not self._layers:
            raise ValueError(f"{self.name}: the model has no layers")
        x = inputs
        for layer in self._layers.values():
            kwargs: dict[str, Any] = {}
            if "training" in layer._call_params():
                kwargs["training"] = training
            x = layer(x, **kwargs)
        return x

    @property
    def output_names(self) -> list[str]:
        return [list(self._layers)[-1]] if self._layers else []

    def get_config(self) -> dict[str, Any]:
        from lstmkit.layers import serialize

        config: dict[str, Any] = {
            "name": self.name,
            "trainable": self.trainable,
            "layers": [serialize(layer) for layer in self._layers.values()],
        }
        if self._build_shape is not None:
            config["build_input_shape"] = list(self._build_shape)
            if self._build_dtype is not None:
                config["build_input_dtype"] = str(self._build_dtype).removeprefix("torch.")
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        from lstmkit.layers import deserialize

        config = dict(config)
        layers = [deserialize(spec) for spec in config.pop("layers")]
        shape = config.pop("build_input_shape", None)
        dtype = config.pop("build_input_dtype", None)
        model = cls(layers, **config)
        if shape is not None and not model.built:
            model.build(tuple(shape), dtype=dtype)
        return model


register_layer(Sequential)  # a Sequential can be a layer of another model
