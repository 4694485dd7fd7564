"""Keras-style recurrent layers: ``LSTM``, ``GRU``, ``SimpleRNN`` with Keras 3's arguments,
defaults and numerics, running on lstmkit's engines.

Inputs are batch-first ``(B, T, F)`` torch tensors or numpy arrays. The call signature is Keras's:
``layer(inputs, mask=None, initial_state=None, training=None)``. The result is the last output
``(B, P)``, or every step's ``(B, T, P)`` with ``return_sequences``, followed by the final states
(``h, c`` for the LSTM; ``h`` otherwise) with ``return_state``.

Keras semantics that hold here:

* masked steps keep the previous state; their output is the previous output, or zero with
  ``zero_output_for_mask=True``;
* ``go_backwards=True`` processes the sequence from its end and returns the outputs in that
  (reversed) order;
* ``dropout`` masks the inputs and ``recurrent_dropout`` the recurrent state with one mask per
  sequence (variational); with ``recurrent_dropout > 0`` each gate block has its own masks;
* ``stateful=True`` carries the final state of a batch into the next call until
  :meth:`reset_state`.

Weights are stored in torch's layout inside ``layer.cell``; ``get_weights``/``set_weights`` use
Keras's layout (``kernel (I, G·H)``, ``recurrent_kernel (H, G·H)``, ``bias``), so weights from
a Keras model give Keras's outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from lstmkit import activations, engines, initializers
from lstmkit import constraints as constraints_mod
from lstmkit import regularizers as regularizers_mod
from lstmkit.cells import GRUCell, LSTMCell, RecurrentCell, SimpleRNNCell
from lstmkit.engines import RunOptions
from lstmkit.functional import LSTMState
from lstmkit.layers.base import Layer, _check_weight_list, _positive_int, in_symbolic_call

_USE_CUDNN = ("auto", True, False)


def _dropout_rate(layer: str, argument: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{layer}: {argument} must be a float in [0, 1), got {value!r}")
    return float(value)


class RNN(Layer):
    """Common machinery of :class:`LSTM`, :class:`GRU` and :class:`SimpleRNN` (Keras's ``RNN``
    layer around a built-in cell).

    Args (Keras 3's): ``units``; ``activation``, ``recurrent_activation``; ``use_bias``;
    ``kernel_/recurrent_/bias_initializer``, ``…_regularizer``, ``activity_regularizer``,
    ``…_constraint``; ``dropout``, ``recurrent_dropout``, ``seed``; ``return_sequences``,
    ``return_state``, ``go_backwards``, ``stateful``, ``unroll`` (accepted; the engines never
    need it), ``zero_output_for_mask``, ``use_cudnn`` (accepted; torch picks cuDNN itself).
    lstmkit's own: ``engine`` (``"auto"``, ``"reference"``, ``"fused"``, ``"compiled"``).
    """

    supports_masking = True
    _cell_class: type[RecurrentCell] = RecurrentCell

    def __init__(
        self,
        units: int,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        recurrent_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        recurrent_constraint: Any = None,
        bias_constraint: Any = None,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        use_cudnn: Any = "auto",
        engine: str = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        cls = type(self).__name__
        self.units = _positive_int(cls, "units", units)
        # Resolve now so that unknown names fail at construction, naming the argument.
        self.activation = activations.get(activation, argument=f"{cls}: activation")
        self.recurrent_activation = activations.get(
            recurrent_activation, argument=f"{cls}: recurrent_activation"
        )
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(
            kernel_initializer, argument=f"{cls}: kernel_initializer"
        )
        self.recurrent_initializer = initializers.get(
            recurrent_initializer, argument=f"{cls}: recurrent_initializer"
        )
        self.bias_initializer = initializers.get(
            bias_initializer, argument=f"{cls}: bias_initializer"
        )
        self.kernel_regularizer = regularizers_mod.get(
            kernel_regularizer, argument=f"{cls}: kernel_regularizer"
        )
        self.recurrent_regularizer = regularizers_mod.get(
            recurrent_regularizer, argument=f"{cls}: recurrent_regularizer"
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
        self.recurrent_constraint = constraints_mod.get(
            recurrent_constraint, argument=f"{cls}: recurrent_constraint"
        )
        self.bias_constraint = constraints_mod.get(
            bias_constraint, argument=f"{cls}: bias_constraint"
        )
        self.dropout = _dropout_rate(cls, "dropout", dropout)
        self.recurrent_dropout = _dropout_rate(cls, "recurrent_dropout", recurrent_dropout)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"{cls}: seed must be an int or None, got {seed!r}")
        self.seed = seed
        self._generator: torch.Generator | None = None
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        if use_cudnn not in _USE_CUDNN:
            raise ValueError(f"{cls}: use_cudnn must be 'auto', True or False, got {use_cudnn!r}")
        self.use_cudnn = use_cudnn
        if engine not in engines.ENGINE_NAMES:
            raise ValueError(f"{cls}: engine must be one of {engines.ENGINE_NAMES}, got {engine!r}")
        self.engine = engine
        self.states: list[Tensor] | None = None
        self.cell: RecurrentCell | None = None
        if self._input_shape_arg is not None:
            self.build((None, *self._input_shape_arg))

    # -- building --------------------------------------------------------------------------

    def _cell_kwargs(self) -> dict[str, Any]:
        return {
            "activation": self.activation,
            "recurrent_activation": self.recurrent_activation,
            "bias": self.use_bias,
            "recurrent_bias": False,
            "kernel_initializer": self.kernel_initializer,
            "recurrent_initializer": self.recurrent_initializer,
            "bias_initializer": self.bias_initializer,
            "dtype": self.dtype_policy,
        }

    def build(self, input_shape: Any) -> None:
        if self.built:
            return
        shape = tuple(input_shape)
        cls = type(self).__name__
        if len(shape) != 3 or shape[-1] is None:
            raise ValueError(
                f"{cls} '{self.name}': expected inputs of shape (B, T, F) with a known F, "
                f"got {shape}"
            )
        self.cell = self._cell_class(int(shape[-1]), self.units, **self._cell_kwargs())
        self._regularized, self._constrained = [], []
        self._track("cell.weight_ih", self.kernel_regularizer, self.kernel_constraint)
        self._track("cell.weight_hh", self.recurrent_regularizer, self.recurrent_constraint)
        if self.use_bias:
            self._track("cell.bias_ih", self.bias_regularizer, self.bias_constraint)
            if self.cell.bias_hh is not None:
                self._track("cell.bias_hh", self.bias_regularizer, self.bias_constraint)
        if not self._trainable:
            self.trainable = False
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        batch, steps = input_shape[0], input_shape[1]
        units = self.cell.output_size if self.cell is not None else self.units
        out = (batch, steps, units) if self.return_sequences else (batch, units)
        if not self.return_state:
            return out
        return [out] + [(batch, s) for s in self.cell.state_sizes()]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self.cell.state_sizes())
        return output_mask

    # -- calling ---------------------------------------------------------------------------

    def _check_inputs(self, inputs: Any) -> Tensor:
        cls = type(self).__name__
        if not isinstance(inputs, Tensor):
            raise TypeError(
                f"{cls} '{self.name}': expected a tensor or numpy array as inputs, "
                f"got {type(inputs).__name__}"
            )
        size = self.cell.input_size
        if inputs.dim() != 3 or inputs.shape[-1] != size:
            raise ValueError(
                f"{cls} '{self.name}': expected inputs of shape (B, T, {size}), "
                f"got {tuple(inputs.shape)}"
            )
        if not inputs.is_floating_point():
            raise TypeError(
                f"{cls} '{self.name}': expected floating-point inputs, got "
                f"{inputs.dtype} (integer token ids need an Embedding layer first)"
            )
        if inputs.shape[1] == 0:
            raise ValueError(
                f"{cls} '{self.name}': inputs have no time steps (shape {tuple(inputs.shape)})"
            )
        weight_dtype = self.cell.weight_ih.dtype
        if inputs.dtype != weight_dtype:
            inputs = inputs.to(weight_dtype)
        return inputs

    def _check_mask(self, mask: Any, inputs: Tensor) -> Tensor | None:
        if mask is None:
            return None
        if (
            isinstance(mask, (list, tuple))
            and len(mask) == 1
            and isinstance(mask[0], (Tensor, np.ndarray, type(None)))
        ):
            mask = mask[0]  # Keras passes one mask per input
            if mask is None:
                return None
        if isinstance(mask, (list, tuple)):
            try:  # nested Python lists of booleans
                mask = np.asarray(mask, dtype=bool)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': expected mask as a (B, T) boolean "
                    f"tensor or array, got a ragged or non-boolean list"
                ) from None
        if isinstance(mask, np.ndarray):
            mask = torch.from_numpy(np.ascontiguousarray(mask))
        want = tuple(inputs.shape[:2])
        if not isinstance(mask, Tensor) or tuple(mask.shape) != want:
            got = tuple(mask.shape) if hasattr(mask, "shape") else type(mask).__name__
            raise ValueError(
                f"{type(self).__name__} '{self.name}': expected mask of shape "
                f"{want} (B, T), got {got}"
            )
        return mask.to(device=inputs.device, dtype=torch.bool)

    def _check_initial_state(self, initial_state: Any, inputs: Tensor) -> tuple[Tensor, ...]:
        cls = type(self).__name__
        sizes = self.cell.state_sizes()
        if isinstance(initial_state, Tensor) or isinstance(initial_state, np.ndarray):
            initial_state = [initial_state]
        if not isinstance(initial_state, (list, tuple)) or len(initial_state) != len(sizes):
            n = len(initial_state) if isinstance(initial_state, (list, tuple)) else 1
            raise ValueError(
                f"{cls} '{self.name}': expected initial_state as a list of "
                f"{len(sizes)} tensor(s), got {n}"
            )
        out = []
        batch = inputs.shape[0]
        for k, (s, size) in enumerate(zip(initial_state, sizes)):
            s = torch.as_tensor(s) if isinstance(s, np.ndarray) else s
            if not isinstance(s, Tensor) or tuple(s.shape) != (batch, size):
                got = tuple(s.shape) if hasattr(s, "shape") else type(s).__name__
                raise ValueError(
                    f"{cls} '{self.name}': expected initial_state[{k}] of shape "
                    f"({batch}, {size}), got {got}"
                )
            out.append(s.to(device=inputs.device, dtype=inputs.dtype))
        return tuple(out)

    def _dropout_masks(self, inputs: Tensor, training: bool) -> tuple[Tensor | None, ...]:
        if not training or not (self.dropout or self.recurrent_dropout):
            return None, None
        if self.seed is not None and self._generator is None:
            self._generator = torch.Generator(device=inputs.device).manual_seed(self.seed)
        gen = self._generator
        per_gate = self.recurrent_dropout > 0
        blocks = self.cell.gate_blocks
        batch = inputs.shape[0]

        def mask(rate: float, size: int) -> Tensor | None:
            if not rate:
                return None
            shape = (blocks, batch, size) if per_gate else (batch, size)
            keep = torch.empty(shape, device=inputs.device, dtype=inputs.dtype)
            keep.bernoulli_(1.0 - rate, generator=gen)
            return keep / (1.0 - rate)

        return mask(self.dropout, self.cell.input_size), mask(
            self.recurrent_dropout, self.cell.output_size
        )

    def forward(
        self,
        inputs: Any,
        mask: Any = None,
        initial_state: Any = None,
        training: bool | None = None,
    ) -> Any:
        x = self._check_inputs(inputs)
        mask = self._check_mask(mask, x)
        if initial_state is not None:
            state = self._check_initial_state(initial_state, x)
        elif self.stateful and self.states is not None:
            if self.states[0].shape[0] != x.shape[0]:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': stateful layer built for batch size "
                    f"{self.states[0].shape[0]}, got a batch of {x.shape[0]} (call reset_state() "
                    f"or keep the batch size fixed)"
                )
            state = tuple(s.to(x.device) for s in self.states)
        else:
            state = self.cell.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        if self.cell.kind == "lstm":
            state = LSTMState(*state)
        training = self.training if training is None else bool(training)
        in_mask, rec_mask = self._dropout_masks(x, training)
        record = engines.recording_active() and not in_symbolic_call()
        opts = RunOptions(
            mask=mask,
            reverse=self.go_backwards,
            input_dropout_mask=in_mask,
            recurrent_dropout_mask=rec_mask,
            zero_output_for_mask=self.zero_output_for_mask,
            record=record,
        )
        engine = engines.choose(self.cell, x, opts, engines.for_recording(self.engine, record))
        result = engine.run(self.cell, x, state, opts)
        if record:
            engines.emit(self, "backward" if self.go_backwards else "forward", result.record, mask)
        if self.stateful and not in_symbolic_call():
            self.states = [s.detach() for s in result.state]
        sequence = result.outputs.flip(1) if self.go_backwards else result.outputs
        output = sequence if self.return_sequences else sequence[:, -1]
        if self.return_state:
            return [output, *result.state]
        return output

    def reset_state(self, states: Any = None) -> None:
        """Zero the carried state of a ``stateful`` layer (or set it to ``states``)."""
        if states is not None:
            if self.states is None:
                raise ValueError(f"{self.name}: the layer has not run yet; no state to set")
            self.states = list(
                self._check_initial_state(
                    states,
                    torch.empty(
                        self.states[0].shape[0],
                        1,
                        self.cell.input_size,
                        dtype=self.states[0].dtype,
                        device=self.states[0].device,
                    ),
                )
            )
            return
        if self.states is not None:
            self.states = [torch.zeros_like(s) for s in self.states]

    reset_states = reset_state

    # -- weights in Keras's layout --------------------------------------------------------

    def _keras_blocks(self, w: Tensor) -> Tensor:
        """Reorder gate blocks from torch's order to Keras's (identity except for the GRU)."""
        return w

    def _torch_blocks(self, w: Tensor) -> Tensor:
        return self._keras_blocks(w)

    def _keras_weight_pairs(self) -> list[tuple[str, Any]]:
        """(name, torch tensor -> Keras array) pairs, in Keras's ``get_weights`` order."""
        c = self.cell
        pairs: list[tuple[str, Any]] = [
            ("kernel", lambda: self._keras_blocks(c.weight_ih).T),
            ("recurrent_kernel", lambda: self._keras_blocks(c.weight_hh).T),
        ]
        if self.use_bias:
            pairs.append(("bias", lambda: self._keras_blocks(c.bias_ih)))
        return pairs

    def get_weights(self) -> list[np.ndarray]:
        if self.cell is None:
            return []
        return [fn().detach().cpu().numpy().copy() for _, fn in self._keras_weight_pairs()]

    def _keras_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(a.shape) for a in self.get_weights()]

    def set_weights(self, weights: list[Any]) -> None:
        if self.cell is None:
            raise ValueError(f"{self.name}: build the layer (call it once) before set_weights")
        _check_weight_list(self.name, weights, self._keras_shapes())
        self._assign_keras_weights([torch.as_tensor(np.asarray(w)) for w in weights])

    @torch.no_grad()
    def _assign_keras_weights(self, ws: list[Tensor]) -> None:
        c = self.cell
        c.weight_ih.copy_(self._torch_blocks(ws[0].T))
        c.weight_hh.copy_(self._torch_blocks(ws[1].T))
        if self.use_bias:
            c.bias_ih.copy_(self._torch_blocks(ws[2]))

    # -- configuration ---------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers_mod.serialize(self.kernel_regularizer),
                "recurrent_regularizer": regularizers_mod.serialize(self.recurrent_regularizer),
                "bias_regularizer": regularizers_mod.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers_mod.serialize(self.activity_regularizer),
                "kernel_constraint": constraints_mod.serialize(self.kernel_constraint),
                "recurrent_constraint": constraints_mod.serialize(self.recurrent_constraint),
                "bias_constraint": constraints_mod.serialize(self.bias_constraint),
                "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout,
                "seed": self.seed,
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "stateful": self.stateful,
                "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask,
                "use_cudnn": self.use_cudnn,
                "engine": self.engine,
            }
        )
        if self._cell_class is not SimpleRNNCell:
            config["recurrent_activation"] = activations.serialize(self.recurrent_activation)
        return config

    def extra_repr(self) -> str:
        flags = [f"{self.units}"]
        for k in ("return_sequences", "return_state", "go_backwards", "stateful"):
            if getattr(self, k):
                flags.append(f"{k}=True")
        return ", ".join([*flags, f"name={self.name!r}"])


class LSTM(RNN):
    """Long Short-Term Memory layer (Hochreiter & Schmidhuber 1997), Keras 3's ``LSTM``.

    Equations: see :func:`lstmkit.functional.lstm_step`. Keras's arguments (see :class:`RNN`)
    plus ``unit_forget_bias=True`` (forget-gate bias initialised to 1), and lstmkit's variants:
    ``peephole``, ``layer_norm``, ``coupled`` (CIFG) and ``proj_size`` (LSTMP).

    ``get_weights()`` returns Keras's ``[kernel (I, 4H), recurrent_kernel (P, 4H), bias (4H,)]``
    (gate order ``i, f, c, o`` = torch's ``i, f, g, o``), followed by the variants' weights:
    projection kernel ``(H, P)``; peepholes ``i, f, o`` ``(H,)`` each (no ``f`` if coupled);
    layer-norm ``ih gain, ih bias, hh gain, hh bias, c gain, c bias``.

    Example:
        >>> layer = LSTM(8, return_sequences=True)
        >>> tuple(layer(torch.zeros(2, 5, 3)).shape)
        (2, 5, 8)
    """

    _cell_class = LSTMCell

    def __init__(
        self,
        units: int,
        *args: Any,
        unit_forget_bias: bool = True,
        peephole: bool = False,
        layer_norm: bool = False,
        coupled: bool = False,
        proj_size: int = 0,
        **kwargs: Any,
    ) -> None:
        self.unit_forget_bias = bool(unit_forget_bias)
        self.peephole, self.layer_norm, self.coupled = bool(peephole), bool(layer_norm), coupled
        self.proj_size = proj_size
        super().__init__(units, *args, **kwargs)

    def _cell_kwargs(self) -> dict[str, Any]:
        return {
            **super()._cell_kwargs(),
            "unit_forget_bias": self.unit_forget_bias,
            "peephole": self.peephole,
            "layer_norm": self.layer_norm,
            "coupled": self.coupled,
            "proj_size": self.proj_size,
        }

    def _keras_weight_pairs(self) -> list[tuple[str, Any]]:
        c = self.cell
        pairs = super()._keras_weight_pairs()
        if c.weight_hr is not None:
            pairs.append(("projection_kernel", lambda: c.weight_hr.T))
        if c.peephole:
            pairs.append(("peephole_i", lambda: c.peephole_i))
            if c.peephole_f is not None:
                pairs.append(("peephole_f", lambda: c.peephole_f))
            pairs.append(("peephole_o", lambda: c.peephole_o))
        if c.layer_norm:
            for name in (
                "ln_ih_weight",
                "ln_ih_bias",
                "ln_hh_weight",
                "ln_hh_bias",
                "ln_c_weight",
                "ln_c_bias",
            ):
                pairs.append((name, lambda n=name: getattr(c, n)))
        return pairs

    @torch.no_grad()
    def _assign_keras_weights(self, ws: list[Tensor]) -> None:
        super()._assign_keras_weights(ws)
        c = self.cell
        rest = iter(ws[3 if self.use_bias else 2 :])
        if c.weight_hr is not None:
            c.weight_hr.copy_(next(rest).T)
        if c.peephole:
            for p in (c.peephole_i, c.peephole_f, c.peephole_o):
                if p is not None:
                    p.copy_(next(rest))
        if c.layer_norm:
            for name in (
                "ln_ih_weight",
                "ln_ih_bias",
                "ln_hh_weight",
                "ln_hh_bias",
                "ln_c_weight",
                "ln_c_bias",
            ):
                getattr(c, name).copy_(next(rest))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        for k in ("peephole", "layer_norm", "coupled"):
            if getattr(self, k):
                config[k] = True
        if self.proj_size:
            config["proj_size"] = self.proj_size
        return config


def _swap_rz(w: Tensor) -> Tensor:
    """GRU gate blocks: torch's ``r, z, n`` <-> Keras's ``z, r, h`` (its own inverse)."""
    a, b, c = w.chunk(3, 0)
    return torch.cat([b, a, c], 0)


class GRU(RNN):
    """Gated Recurrent Unit (Cho et al. 2014), Keras 3's ``GRU``.

    Equations: see :func:`lstmkit.functional.gru_step`. ``reset_after=True`` (default, cuDNN's
    convention) has an input and a recurrent bias; ``False`` only the input bias.
    ``get_weights()`` is Keras's: ``kernel (I, 3H)``, ``recurrent_kernel (H, 3H)`` with gate
    blocks ``z, r, h``, ``bias (2, 3H)`` (``reset_after``) or ``(3H,)``.

    Example:
        >>> tuple(GRU(4)(torch.zeros(2, 5, 3)).shape)
        (2, 4)
    """

    _cell_class = GRUCell

    def __init__(self, units: int, *args: Any, reset_after: bool = True, **kwargs: Any) -> None:
        self.reset_after = bool(reset_after)
        super().__init__(units, *args, **kwargs)

    def _cell_kwargs(self) -> dict[str, Any]:
        return {
            **super()._cell_kwargs(),
            "reset_after": self.reset_after,
            "recurrent_bias": self.reset_after and self.use_bias,
        }

    def _keras_blocks(self, w: Tensor) -> Tensor:
        return _swap_rz(w)

    def _keras_weight_pairs(self) -> list[tuple[str, Any]]:
        pairs = super()._keras_weight_pairs()
        c = self.cell
        if self.use_bias and self.reset_after:
            pairs[-1] = ("bias", lambda: torch.stack([_swap_rz(c.bias_ih), _swap_rz(c.bias_hh)]))
        return pairs

    @torch.no_grad()
    def _assign_keras_weights(self, ws: list[Tensor]) -> None:
        c = self.cell
        c.weight_ih.copy_(_swap_rz(ws[0].T))
        c.weight_hh.copy_(_swap_rz(ws[1].T))
        if self.use_bias:
            if self.reset_after:
                c.bias_ih.copy_(_swap_rz(ws[2][0]))
                c.bias_hh.copy_(_swap_rz(ws[2][1]))
            else:
                c.bias_ih.copy_(_swap_rz(ws[2]))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["reset_after"] = self.reset_after
        return config


class SimpleRNN(RNN):
    """Fully-connected RNN, ``h_t = activation(W x_t + U h_{t-1} + b)``, Keras 3's ``SimpleRNN``.

    ``get_weights()``: ``kernel (I, H)``, ``recurrent_kernel (H, H)``, ``bias (H,)``.

    Example:
        >>> tuple(SimpleRNN(4, return_sequences=True)(torch.zeros(2, 5, 3)).shape)
        (2, 5, 4)
    """

    _cell_class = SimpleRNNCell

    def __init__(self, units: int, activation: Any = "tanh", *args: Any, **kwargs: Any) -> None:
        if "recurrent_activation" in kwargs:
            raise TypeError(
                "SimpleRNN: unexpected keyword argument recurrent_activation "
                "(a SimpleRNN has no gates)"
            )
        super().__init__(units, activation, None, *args, **kwargs)

    def _cell_kwargs(self) -> dict[str, Any]:
        kw = super()._cell_kwargs()
        kw.pop("recurrent_activation")
        return kw
