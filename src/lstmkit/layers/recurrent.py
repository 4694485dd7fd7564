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
from lstmkit.layers.serialization import deserialize, serialize
from lstmkit.layers.user_cells import CellAdapter, StackedRNNCells, _check_cell

_USE_CUDNN = ("auto", True, False)


def _dropout_rate(layer: str, argument: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{layer}: {argument} must be a float in [0, 1), got {value!r}")
    return float(value)


class RNN(Layer):
    """Keras 3's ``RNN(cell)``: any cell (built-in or the user's, see
    :mod:`lstmkit.layers.user_cells`) run over a sequence, with Keras's masking,
    ``go_backwards``, ``return_sequences``, ``return_state`` and ``stateful``.

    ``cell`` is a layer with ``state_size`` and ``call(inputs, states) -> (output,
    new_states)``, or a list of them (stacked: :class:`~lstmkit.layers.user_cells.StackedRNNCells`).
    A user's cell runs on the reference engine (the loop over time of
    :mod:`lstmkit.engines.reference`), so the glass box records its output ``h`` and its states
    each step. :class:`LSTM`, :class:`GRU` and :class:`SimpleRNN` are this layer around
    lstmkit's own cells, on every engine.

    Example:
        >>> from lstmkit.layers.user_cells import StackedRNNCells
        >>> class Leaky(Layer):  # h_t = (1 - a) h_{t-1} + a tanh(W x_t)
        ...     state_size = 3
        ...     def build(self, input_shape):
        ...         self.w = self.add_weight((input_shape[-1], 3))
        ...     def call(self, inputs, states):
        ...         h = 0.5 * states[0] + 0.5 * torch.tanh(inputs @ self.w)
        ...         return h, [h]
        >>> tuple(RNN([Leaky(), Leaky()])(torch.zeros(2, 5, 4)).shape)
        (2, 3)
    """

    supports_masking = True

    def __init__(
        self,
        cell: Any,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        _check_cell(cell, type(self).__name__)
        self.cell = cell
        self._adapter: CellAdapter | None = None
        # One of Keras's own cells (LSTMCell, ...): its layer's cell runs on every engine.
        inner = getattr(cell, "layer", None)
        self._builtin = inner if hasattr(type(cell), "_layer_class") else None
        self.engine = "reference" if self._builtin is None else self._builtin.engine
        self._sequence_flags(
            return_sequences, return_state, go_backwards, stateful, unroll, zero_output_for_mask
        )
        if self._input_shape_arg is not None:
            self.build((None, *self._input_shape_arg))

    def _sequence_flags(
        self,
        return_sequences: bool,
        return_state: bool,
        go_backwards: bool,
        stateful: bool,
        unroll: bool,
        zero_output_for_mask: bool,
    ) -> None:
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.states: list[Tensor] | None = None

    # -- what the machinery below asks of a subclass ------------------------------------------

    @property
    def _core(self) -> Any:
        """The cell as the engines see it (a :class:`~lstmkit.cells.RecurrentCell` or an
        adapter of the user's cell)."""
        if self._builtin is not None:
            return self._builtin._core
        if self._adapter is None:
            raise ValueError(f"RNN '{self.name}': build the layer (call it once) first")
        return self._adapter

    def _output_units(self) -> int:
        if self._builtin is not None:
            return self._builtin._output_units()
        return self._core.output_size

    def _state_sizes(self) -> tuple[int, ...]:
        """The sizes of the states a user passes and gets back."""
        if self._builtin is not None:
            return self._builtin._state_sizes()
        return self._core.sizes

    def _weight_dtype(self) -> torch.dtype | None:
        if self._builtin is not None:
            return self._builtin._weight_dtype()
        return self._core.dtype

    def _engine_state(self, public: tuple[Tensor, ...] | None, x: Tensor) -> tuple[Tensor, ...]:
        if self._builtin is not None:
            return self._builtin._engine_state(public, x)
        core = self._core
        if public is None:
            return core.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        return (x.new_zeros(x.shape[0], core.output_size), *public)

    def _public_states(self, state: tuple[Tensor, ...]) -> list[Tensor]:
        if self._builtin is not None:
            return list(state)
        return self._core.public(state)

    def _dropout_masks(self, inputs: Tensor, training: bool) -> tuple[Tensor | None, ...]:
        if self._builtin is not None:
            return self._builtin._dropout_masks(inputs, training)  # the cell's dropout args
        self._core.training = training  # the cell's own dropout, if any, sees the mode
        return None, None

    def build(self, input_shape: Any) -> None:
        if self.built:
            return
        shape = tuple(input_shape)
        if len(shape) != 3 or shape[-1] is None:
            raise ValueError(
                f"RNN '{self.name}': expected inputs of shape (B, T, F) with a known F, got {shape}"
            )
        cell = self.cell
        if isinstance(cell, Layer) and not cell.built:
            cell.build((shape[0], shape[-1]))
            cell.built = True
        if self._builtin is None:
            self._adapter = CellAdapter(cell, int(shape[-1]), f"RNN '{self.name}'")
        self.built = True

    # -- the machinery every recurrent layer shares ----------------------------------------

    def compute_output_shape(self, input_shape: Any) -> Any:
        batch, steps = input_shape[0], input_shape[1]
        units = self._output_units()
        out = (batch, steps, units) if self.return_sequences else (batch, units)
        if not self.return_state:
            return out
        return [out] + [(batch, s) for s in self._state_sizes()]

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self._state_sizes())
        return output_mask

    def _check_inputs(self, inputs: Any) -> Tensor:
        cls = type(self).__name__
        if not isinstance(inputs, Tensor):
            raise TypeError(
                f"{cls} '{self.name}': expected a tensor or numpy array as inputs, "
                f"got {type(inputs).__name__}"
            )
        size = self._core.input_size
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
        weight_dtype = self._weight_dtype()
        if weight_dtype is not None and inputs.dtype != weight_dtype:
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
        sizes = self._state_sizes()
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

    def forward(
        self,
        inputs: Any,
        mask: Any = None,
        initial_state: Any = None,
        training: bool | None = None,
    ) -> Any:
        x = self._check_inputs(inputs)
        mask = self._check_mask(mask, x)
        public: tuple[Tensor, ...] | None = None
        if initial_state is not None:
            public = self._check_initial_state(initial_state, x)
        elif self.stateful and self.states is not None:
            if self.states[0].shape[0] != x.shape[0]:
                raise ValueError(
                    f"{type(self).__name__} '{self.name}': stateful layer built for batch size "
                    f"{self.states[0].shape[0]}, got a batch of {x.shape[0]} (call reset_state() "
                    f"or keep the batch size fixed)"
                )
            public = tuple(s.to(x.device) for s in self.states)
        state = self._engine_state(public, x)
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
        core = self._core
        engine = engines.choose(core, x, opts, engines.for_recording(self.engine, record))
        result = engine.run(core, x, state, opts)
        if record:
            engines.emit(self, "backward" if self.go_backwards else "forward", result.record, mask)
        final = self._public_states(result.state)
        if self.stateful and not in_symbolic_call():
            self.states = [s.detach() for s in final]
        sequence = result.outputs.flip(1) if self.go_backwards else result.outputs
        output = sequence if self.return_sequences else sequence[:, -1]
        if self.return_state:
            return [output, *final]
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
                        self._core.input_size,
                        dtype=self.states[0].dtype,
                        device=self.states[0].device,
                    ),
                )
            )
            return
        if self.states is not None:
            self.states = [torch.zeros_like(s) for s in self.states]

    reset_states = reset_state

    def get_weights(self) -> list[np.ndarray]:
        """The cell's weights (Keras's layout for Keras's cells)."""
        get = getattr(self.cell, "get_weights", None)
        return get() if callable(get) else super().get_weights()

    def set_weights(self, weights: list[Any]) -> None:
        put = getattr(self.cell, "set_weights", None)
        if callable(put):
            put(weights)
        else:
            super().set_weights(weights)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "cell": serialize(self.cell),
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "stateful": self.stateful,
                "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask,
            }
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> RNN:
        config = dict(config)
        if isinstance(config.get("cell"), dict):
            config["cell"] = deserialize(config["cell"])
        return cls(**config)


class _BuiltinRNN(RNN):
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
        Layer.__init__(self, **kwargs)  # RNN.__init__ takes a cell; this layer builds its own
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
        self._sequence_flags(
            return_sequences, return_state, go_backwards, stateful, unroll, zero_output_for_mask
        )
        if use_cudnn not in _USE_CUDNN:
            raise ValueError(f"{cls}: use_cudnn must be 'auto', True or False, got {use_cudnn!r}")
        self.use_cudnn = use_cudnn
        if engine not in engines.ENGINE_NAMES:
            raise ValueError(f"{cls}: engine must be one of {engines.ENGINE_NAMES}, got {engine!r}")
        self.engine = engine
        self.cell: RecurrentCell | None = None
        if self._input_shape_arg is not None:
            self.build((None, *self._input_shape_arg))

    # -- the hooks of RNN's machinery: the cell is lstmkit's own, on every engine ----------

    @property
    def _core(self) -> Any:
        return self.cell

    def _output_units(self) -> int:
        return self.cell.output_size if self.cell is not None else self.units

    def _state_sizes(self) -> tuple[int, ...]:
        return self.cell.state_sizes()

    def _weight_dtype(self) -> torch.dtype | None:
        return self.cell.weight_ih.dtype

    def _engine_state(self, public: tuple[Tensor, ...] | None, x: Tensor) -> tuple[Tensor, ...]:
        if public is None:
            public = self.cell.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        return LSTMState(*public) if self.cell.kind == "lstm" else tuple(public)

    def _public_states(self, state: tuple[Tensor, ...]) -> list[Tensor]:
        return list(state)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

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

    # -- calling ---------------------------------------------------------------------------

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
        config = Layer.get_config(self)  # not RNN's: the cell is built from these arguments
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


class LSTM(_BuiltinRNN):
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


class GRU(_BuiltinRNN):
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


class SimpleRNN(_BuiltinRNN):
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
