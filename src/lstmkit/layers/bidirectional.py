"""``Bidirectional``: run a recurrent layer forwards and a copy of it backwards, and merge.

Keras 3's semantics: the forward layer is a copy of the given layer named ``forward_<name>``;
the backward layer is a copy with ``go_backwards=True`` named ``backward_<name>`` (or the given
``backward_layer``). With ``return_sequences`` the backward outputs are flipped back to the
input's time order before merging. ``merge_mode`` is ``"concat"`` (default), ``"sum"``,
``"mul"``, ``"ave"`` or ``None`` (a list of both outputs). With ``return_state`` the result is
``[output(s)…, *forward_states, *backward_states]``; ``initial_state`` takes the forward states
followed by the backward states. As in Keras 3, both inner layers get
``zero_output_for_mask = return_sequences`` (masked steps of the merged sequence are zeros).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from lstmkit.layers.base import Layer
from lstmkit.layers.recurrent import RNN

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class Bidirectional(Layer):
    """Bidirectional wrapper for :class:`~lstmkit.layers.LSTM`, ``GRU`` and ``SimpleRNN``.

    Args:
        layer: the recurrent layer (used as a template; it is copied, as Keras does).
        merge_mode: how to combine the two directions' outputs.
        backward_layer: optional explicit backward layer (must have ``go_backwards=True`` and the
            same ``return_sequences`` and ``return_state``).

    Example:
        >>> from lstmkit.layers import LSTM
        >>> bi = Bidirectional(LSTM(4, return_sequences=True))
        >>> tuple(bi(torch.zeros(2, 5, 3)).shape)
        (2, 5, 8)
    """

    supports_masking = True

    def __init__(
        self,
        layer: RNN,
        merge_mode: str | None = "concat",
        weights: list[Any] | None = None,
        backward_layer: RNN | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(layer, RNN):
            raise ValueError(
                f"Bidirectional: layer must be an LSTM, GRU or SimpleRNN layer, "
                f"got {type(layer).__name__}"
            )
        if merge_mode not in MERGE_MODES:
            raise ValueError(
                f"Bidirectional: merge_mode must be one of {MERGE_MODES}, got {merge_mode!r}"
            )
        self.merge_mode = merge_mode
        fwd_config = layer.get_config()
        fwd_config["name"] = "forward_" + layer.name.removeprefix("forward_")
        self.forward_layer = type(layer).from_config(fwd_config)
        if backward_layer is None:
            bwd_config = layer.get_config()
            bwd_config["go_backwards"] = not layer.go_backwards
            bwd_config["name"] = "backward_" + layer.name.removeprefix("backward_")
            self.backward_layer = type(layer).from_config(bwd_config)
        else:
            if not isinstance(backward_layer, RNN):
                raise ValueError(
                    f"Bidirectional: backward_layer must be a recurrent layer, "
                    f"got {type(backward_layer).__name__}"
                )
            for attr in ("return_sequences", "return_state"):
                if getattr(backward_layer, attr) != getattr(layer, attr):
                    raise ValueError(
                        f"Bidirectional: backward_layer.{attr} must equal layer.{attr} "
                        f"({getattr(layer, attr)}), got {getattr(backward_layer, attr)}"
                    )
            if backward_layer.go_backwards == layer.go_backwards:
                raise ValueError(
                    "Bidirectional: backward_layer.go_backwards must be the "
                    "opposite of layer.go_backwards"
                )
            self.backward_layer = backward_layer
        self._explicit_backward = backward_layer is not None
        # Keras 3 forces zero_output_for_mask = return_sequences on both inner layers (masked
        # steps of a Bidirectional sequence output are zeros in both halves); KERAS_NOTES.md.
        for inner in (self.forward_layer, self.backward_layer):
            inner.zero_output_for_mask = layer.return_sequences
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.stateful = layer.stateful
        self._initial_weights = weights
        if self._input_shape_arg is not None:
            self.build((None, *self._input_shape_arg))

    def build(self, input_shape: Any) -> None:
        if self.built:
            return
        self.forward_layer.build(input_shape)
        self.backward_layer.build(input_shape)
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def _merge(self, y: Tensor, y_rev: Tensor) -> Any:
        if self.merge_mode == "concat":
            return torch.cat([y, y_rev], -1)
        if self.merge_mode == "sum":
            return y + y_rev
        if self.merge_mode == "ave":
            return (y + y_rev) / 2
        if self.merge_mode == "mul":
            return y * y_rev
        return [y, y_rev]

    def forward(
        self,
        inputs: Any,
        mask: Any = None,
        initial_state: Any = None,
        training: bool | None = None,
    ) -> Any:
        fwd_state = bwd_state = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)) or len(initial_state) % 2:
                got = (
                    len(initial_state)
                    if isinstance(initial_state, (list, tuple))
                    else type(initial_state).__name__
                )
                raise ValueError(
                    f"Bidirectional '{self.name}': initial_state must be a list with the "
                    f"forward states followed by the backward states (an even number), got {got}"
                )
            half = len(initial_state) // 2
            fwd_state, bwd_state = list(initial_state[:half]), list(initial_state[half:])
        y = self.forward_layer(inputs, mask=mask, initial_state=fwd_state, training=training)
        y_rev = self.backward_layer(inputs, mask=mask, initial_state=bwd_state, training=training)
        states: list[Tensor] = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev.flip(1)
        output = self._merge(y, y_rev)
        if self.return_state:
            return (output if isinstance(output, list) else [output]) + states
        return output

    def compute_output_shape(self, input_shape: Any) -> Any:
        fwd = self.forward_layer.compute_output_shape(input_shape)
        out = fwd[0] if self.return_state else fwd
        if self.merge_mode == "concat":
            out_shapes = [(*out[:-1], out[-1] * 2)]
        elif self.merge_mode is None:
            out_shapes = [out, out]
        else:
            out_shapes = [out]
        if self.return_state:
            states = list(fwd[1:])
            return out_shapes + states + states
        return out_shapes[0] if len(out_shapes) == 1 else out_shapes

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out_mask = mask if self.return_sequences else None
        n_out = 2 if self.merge_mode is None else 1
        masks = [out_mask] * n_out
        if self.return_state:
            n_states = 2 * len(self.forward_layer.cell.state_sizes())
            return masks + [None] * n_states
        return masks if n_out == 2 else out_mask

    def reset_state(self) -> None:
        """Reset both directions' carried state (stateful layers)."""
        self.forward_layer.reset_state()
        self.backward_layer.reset_state()

    reset_states = reset_state

    def get_weights(self) -> list[np.ndarray]:
        return self.forward_layer.get_weights() + self.backward_layer.get_weights()

    def set_weights(self, weights: list[Any]) -> None:
        n = len(self.forward_layer.get_weights())
        if not isinstance(weights, (list, tuple)) or len(weights) != 2 * n:
            got = len(weights) if isinstance(weights, (list, tuple)) else type(weights).__name__
            raise ValueError(
                f"Bidirectional '{self.name}': set_weights expects {2 * n} arrays "
                f"(forward then backward), got {got}"
            )
        self.forward_layer.set_weights(list(weights[:n]))
        self.backward_layer.set_weights(list(weights[n:]))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["layer"] = {
            "class_name": type(self.forward_layer).__name__,
            "config": self.forward_layer.get_config(),
        }
        config["layer"]["config"]["name"] = self.forward_layer.name.removeprefix("forward_")
        config["merge_mode"] = self.merge_mode
        if self._explicit_backward:
            config["backward_layer"] = {
                "class_name": type(self.backward_layer).__name__,
                "config": self.backward_layer.get_config(),
            }
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Bidirectional:
        from lstmkit.layers.serialization import deserialize

        config = dict(config)
        layer = deserialize(config.pop("layer"))
        backward = config.pop("backward_layer", None)
        if backward is not None:
            backward = deserialize(backward)
        return cls(layer, backward_layer=backward, **config)
