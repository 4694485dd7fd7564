"""Cells: the parameters of one recurrent layer (one direction) and one step of it.

A cell owns its weights in torch's layout (``weight_ih (G·H, I)``, ``weight_hh (G·H, P)``,
``bias_ih``, ``bias_hh``, and the variants' extra weights), initialises them, and computes one
step by calling :mod:`lstmkit.functional`. The loop over time, masking, direction and stacking
belong to :mod:`lstmkit.engines` and the layers above it.

Initialisers are Keras's (see :mod:`lstmkit.initializers`) and are applied in Keras's layout
(``kernel (I, G·H)``, ``recurrent_kernel (P, G·H)``) then transposed, so the distributions are
exactly Keras's. ``torch_init=True`` instead draws every parameter from
``U(-1/sqrt(H), 1/sqrt(H))`` as ``torch.nn.LSTM`` does.

>>> cell = LSTMCell(3, 4)
>>> (h, c), gates = cell(torch.zeros(2, 3))
>>> tuple(h.shape), gates._fields
((2, 4), ('i', 'f', 'g', 'o'))
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from lstmkit import activations, initializers
from lstmkit import functional as fn
from lstmkit.functional import GRUGates, LayerNorm, LSTMGates, LSTMState, Peephole, RNNGates

State = tuple[Tensor, ...]


class RecurrentCell(nn.Module):
    """Common parts of :class:`LSTMCell`, :class:`GRUCell` and :class:`SimpleRNNCell`.

    Attributes:
        kind: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        input_size, hidden_size: ``I`` and ``H``.
        output_size: ``P``, the size of ``h`` (``H`` unless the LSTM has a projection).
        gate_blocks: ``G``, the number of ``H``-sized blocks in ``weight_ih``.
        gate_names: the names of the recorded gate activations.
    """

    kind: str = ""
    gate_names: tuple[str, ...] = ()
    gate_blocks: int = 1
    #: The smallest ``hidden_size`` accepted (torch's cells accept 0: an empty state).
    min_hidden_size: int = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        bias: bool = True,
        recurrent_bias: bool = True,
        activation: Any = "tanh",
        recurrent_activation: Any = "sigmoid",
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        torch_init: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            low = self.min_hidden_size if arg == "hidden_size" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: {arg} must be an integer >= {low}, got {value!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.activation = activations.get(activation, argument=f"{name}: activation")
        self.recurrent_activation = activations.get(
            recurrent_activation, argument=f"{name}: recurrent_activation"
        )
        self.kernel_initializer = initializers.get(
            kernel_initializer, argument=f"{name}: kernel_initializer"
        )
        self.recurrent_initializer = initializers.get(
            recurrent_initializer, argument=f"{name}: recurrent_initializer"
        )
        self.bias_initializer = initializers.get(
            bias_initializer, argument=f"{name}: bias_initializer"
        )
        self.torch_init = torch_init
        self.use_bias = bias
        self.use_recurrent_bias = bias and recurrent_bias
        self._factory = {"device": device, "dtype": dtype or torch.get_default_dtype()}

    # -- parameters -----------------------------------------------------------------------

    @property
    def output_size(self) -> int:
        return self.hidden_size

    def _param(self, *shape: int) -> nn.Parameter:
        return nn.Parameter(torch.empty(*shape, **self._factory))

    def _create_core_weights(self) -> None:
        gh = self.gate_blocks * self.hidden_size
        self.weight_ih = self._param(gh, self.input_size)
        self.weight_hh = self._param(gh, self.output_size)
        self.bias_ih = self._param(gh) if self.use_bias else None
        self.bias_hh = self._param(gh) if self.use_recurrent_bias else None

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """(Re-)initialise every parameter with the cell's initialisers."""
        if self.torch_init:
            bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size else 0.0
            for p in self.parameters():
                p.uniform_(-bound, bound)
            self._reset_variant_parameters(torch_init=True)
            return
        dtype = self.weight_ih.dtype
        self.weight_ih.copy_(self.kernel_initializer(tuple(self.weight_ih.shape[::-1]), dtype).T)
        self.weight_hh.copy_(self.recurrent_initializer(tuple(self.weight_hh.shape[::-1]), dtype).T)
        self._reset_biases(dtype)
        self._reset_variant_parameters(torch_init=False)

    def _initial_bias(self, dtype: torch.dtype) -> Tensor:
        return self.bias_initializer((self.gate_blocks * self.hidden_size,), dtype)

    def _reset_biases(self, dtype: torch.dtype) -> None:
        """``bias_ih`` by ``bias_initializer``; ``bias_hh`` (torch's second bias) zero."""
        if self.bias_ih is not None:
            self.bias_ih.copy_(self._initial_bias(dtype))
        if self.bias_hh is not None:
            self.bias_hh.zero_()

    def _reset_variant_parameters(self, torch_init: bool) -> None:
        """Initialise the variants' extra parameters (overridden by :class:`LSTMCell`)."""

    # -- one step ----------------------------------------------------------------------------

    def initial_state(
        self, batch_size: int, *, device: Any = None, dtype: torch.dtype | None = None
    ) -> State:
        """Zero state: ``(h,)`` for GRU/SimpleRNN, ``LSTMState(h, c)`` for the LSTM."""
        dev = device if device is not None else self.weight_hh.device
        dt = dtype or self.weight_hh.dtype
        return (torch.zeros(batch_size, self.output_size, device=dev, dtype=dt),)

    def state_sizes(self) -> tuple[int, ...]:
        """Sizes of the state tensors' last dimension, in state order."""
        return (self.output_size,)

    def input_transform(self, x: Tensor, dropout_mask: Tensor | None = None) -> Tensor:
        """``W_ih x + b_ih`` for ``x (B, I)`` or ``(B, T, I)``; see :func:`fn.input_transform`."""
        return fn.input_transform(x, self.weight_ih, self.bias_ih, dropout_mask=dropout_mask)

    def step(
        self,
        x: Tensor,
        state: State,
        *,
        projected_input: bool = False,
        recurrent_dropout_mask: Tensor | None = None,
    ) -> tuple[State, NamedTuple]:
        """One step from ``x (B, I)`` (or its projection) and ``state``: ``(state, gates)``."""
        raise NotImplementedError

    def forward(self, x: Tensor, state: State | None = None) -> tuple[State, NamedTuple]:
        """One step: ``x (B, I)``, ``state`` (``None`` = zeros) -> ``(new_state, gates)``."""
        name = type(self).__name__
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.input_size:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{name}: expected x of shape (B, {self.input_size}), got {got}")
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        return self.step(x, state)

    # -- description ----------------------------------------------------------------------

    @property
    def is_plain(self) -> bool:
        """Whether torch's fused kernels compute exactly this cell (no variant, default
        activations)."""
        return activations.is_default(self.activation, "tanh") and activations.is_default(
            self.recurrent_activation, "sigmoid"
        )

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class LSTMCell(RecurrentCell):
    """The LSTM cell with its variants as switches (see :func:`lstmkit.functional.lstm_step`).

    Parameters (torch layout, ``G = 4`` blocks ``i, f, g, o``; ``G = 3`` blocks ``i, g, o``
    if ``coupled``): ``weight_ih (G·H, I)``, ``weight_hh (G·H, P)``, ``bias_ih (G·H,)``,
    ``bias_hh (G·H,)`` (only with ``recurrent_bias``), ``weight_hr (P, H)`` (projection),
    ``peephole_i/f/o (H,)`` (peephole; ``peephole_f`` absent if coupled),
    ``ln_ih_weight/bias (G·H,)``, ``ln_hh_weight/bias (G·H,)``, ``ln_c_weight/bias (H,)``
    (layer norm).

    Initialisation: kernels and recurrent kernels by their initialisers (Keras's
    ``glorot_uniform`` and ``orthogonal`` by default); biases by ``bias_initializer``, with the
    forget block set to one if ``unit_forget_bias`` (Jozefowicz et al. 2015); peepholes zero;
    layer-norm gains one and biases zero; the projection by ``kernel_initializer``.

    Args:
        input_size, hidden_size: ``I`` and ``H``.
        bias: an input bias ``bias_ih``. recurrent_bias: a second bias ``bias_hh`` (torch has
            both; Keras has one).
        peephole, layer_norm, coupled: the variants. proj_size: ``P`` (0 = no projection).
        unit_forget_bias: initialise the forget-gate bias to 1.
    """

    kind = "lstm"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        peephole: bool = False,
        layer_norm: bool = False,
        coupled: bool = False,
        proj_size: int = 0,
        unit_forget_bias: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_size, hidden_size, **kwargs)
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(f"LSTMCell: proj_size must be an integer >= 0, got {proj_size!r}")
        if proj_size and proj_size >= hidden_size:
            raise ValueError(
                f"LSTMCell: proj_size must be smaller than hidden_size ({hidden_size}), "
                f"got {proj_size}"
            )
        self.peephole, self.layer_norm, self.coupled = bool(peephole), bool(layer_norm), coupled
        self.proj_size = proj_size
        self.unit_forget_bias = unit_forget_bias
        self.gate_blocks = 3 if coupled else 4
        self.gate_names = ("i", "f", "g", "o")
        self._create_core_weights()
        h = hidden_size
        self.weight_hr = self._param(proj_size, h) if proj_size else None
        if self.peephole:
            self.peephole_i = self._param(h)
            self.peephole_f = None if coupled else self._param(h)
            self.peephole_o = self._param(h)
        if self.layer_norm:
            gh = self.gate_blocks * h
            self.ln_ih_weight, self.ln_ih_bias = self._param(gh), self._param(gh)
            self.ln_hh_weight, self.ln_hh_bias = self._param(gh), self._param(gh)
            self.ln_c_weight, self.ln_c_bias = self._param(h), self._param(h)
        self.reset_parameters()

    @property
    def output_size(self) -> int:
        return self.proj_size or self.hidden_size

    def _initial_bias(self, dtype: torch.dtype) -> Tensor:
        h = self.hidden_size
        if not self.unit_forget_bias or self.coupled:
            return self.bias_initializer((self.gate_blocks * h,), dtype)
        # Keras: bias_initializer for i, ones for f, bias_initializer for g and o.
        return torch.cat(
            [
                self.bias_initializer((h,), dtype),
                torch.ones(h, dtype=dtype),
                self.bias_initializer((2 * h,), dtype),
            ]
        )

    def _reset_variant_parameters(self, torch_init: bool) -> None:
        if self.weight_hr is not None and not torch_init:
            self.weight_hr.copy_(self.kernel_initializer(tuple(self.weight_hr.shape[::-1])).T)
        if self.peephole and not torch_init:
            for p in (self.peephole_i, self.peephole_f, self.peephole_o):
                if p is not None:
                    p.zero_()
        if self.layer_norm:
            for name in ("ln_ih", "ln_hh", "ln_c"):
                getattr(self, f"{name}_weight").fill_(1.0)
                getattr(self, f"{name}_bias").zero_()

    def initial_state(
        self, batch_size: int, *, device: Any = None, dtype: torch.dtype | None = None
    ) -> LSTMState:
        dev = device if device is not None else self.weight_hh.device
        dt = dtype or self.weight_hh.dtype
        return LSTMState(
            torch.zeros(batch_size, self.output_size, device=dev, dtype=dt),
            torch.zeros(batch_size, self.hidden_size, device=dev, dtype=dt),
        )

    def state_sizes(self) -> tuple[int, ...]:
        return (self.output_size, self.hidden_size)

    def peephole_weights(self) -> Peephole | None:
        """The peephole weights as a :class:`~lstmkit.functional.Peephole` (or ``None``)."""
        if not self.peephole:
            return None
        f = self.peephole_f if self.peephole_f is not None else torch.zeros_like(self.peephole_i)
        return Peephole(self.peephole_i, f, self.peephole_o)

    def layer_norm_weights(self) -> LayerNorm | None:
        """The layer-norm gains and biases as a :class:`~lstmkit.functional.LayerNorm`."""
        if not self.layer_norm:
            return None
        return LayerNorm(
            self.ln_ih_weight,
            self.ln_ih_bias,
            self.ln_hh_weight,
            self.ln_hh_bias,
            self.ln_c_weight,
            self.ln_c_bias,
        )

    def input_transform(self, x: Tensor, dropout_mask: Tensor | None = None) -> Tensor:
        ln = (self.ln_ih_weight, self.ln_ih_bias) if self.layer_norm else None
        return fn.input_transform(
            x, self.weight_ih, self.bias_ih, layer_norm=ln, dropout_mask=dropout_mask
        )

    def step(
        self,
        x: Tensor,
        state: State,
        *,
        projected_input: bool = False,
        recurrent_dropout_mask: Tensor | None = None,
    ) -> tuple[LSTMState, LSTMGates]:
        return fn.lstm_step(
            x if projected_input else self.input_transform(x),
            LSTMState(*state),
            None,
            self.weight_hh,
            None,
            self.bias_hh,
            peephole=self.peephole_weights(),
            layer_norm=self.layer_norm_weights(),
            coupled=self.coupled,
            weight_hr=self.weight_hr,
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            recurrent_dropout_mask=recurrent_dropout_mask,
            projected_input=True,
        )

    @property
    def is_plain(self) -> bool:
        return super().is_plain and not (self.peephole or self.layer_norm or self.coupled)

    def extra_repr(self) -> str:
        extras = [f"{k}=True" for k in ("peephole", "layer_norm", "coupled") if getattr(self, k)]
        if self.proj_size:
            extras.append(f"proj_size={self.proj_size}")
        return ", ".join([super().extra_repr(), *extras])


class GRUCell(RecurrentCell):
    """The GRU cell (see :func:`lstmkit.functional.gru_step`), blocks ``r, z, n``.

    Parameters: ``weight_ih (3H, I)``, ``weight_hh (3H, H)``, ``bias_ih (3H,)`` and — with
    ``recurrent_bias`` — ``bias_hh (3H,)``. Keras's GRU has both biases when
    ``reset_after=True`` and only the input bias when ``reset_after=False``.
    """

    kind = "gru"
    gate_blocks = 3
    gate_names = ("r", "z", "n")

    def __init__(
        self, input_size: int, hidden_size: int, *, reset_after: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(input_size, hidden_size, **kwargs)
        self.reset_after = bool(reset_after)
        self._create_core_weights()
        self.reset_parameters()

    def _reset_biases(self, dtype: torch.dtype) -> None:
        """With both biases (Keras's ``reset_after=True``), ``bias_initializer`` fills them as
        Keras fills its one ``(2, 3H)`` bias: one draw of that shape (so its fans are Keras's),
        row 0 the input bias, row 1 the recurrent bias."""
        if self.bias_ih is None or self.bias_hh is None:
            super()._reset_biases(dtype)
            return
        both = self.bias_initializer((2, 3 * self.hidden_size), dtype)  # (2, 3H)
        self.bias_ih.copy_(both[0])
        self.bias_hh.copy_(both[1])

    def step(
        self,
        x: Tensor,
        state: State,
        *,
        projected_input: bool = False,
        recurrent_dropout_mask: Tensor | None = None,
    ) -> tuple[tuple[Tensor], GRUGates]:
        h, gates = fn.gru_step(
            x if projected_input else self.input_transform(x),
            state[0],
            None,
            self.weight_hh,
            None,
            self.bias_hh,
            reset_after=self.reset_after,
            activation=self.activation,
            recurrent_activation=self.recurrent_activation,
            recurrent_dropout_mask=recurrent_dropout_mask,
            projected_input=True,
        )
        return (h,), gates

    @property
    def is_plain(self) -> bool:
        return super().is_plain and self.reset_after

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.reset_after else ", reset_after=False")


class SimpleRNNCell(RecurrentCell):
    """The plain RNN cell (see :func:`lstmkit.functional.rnn_step`), one block.

    Parameters: ``weight_ih (H, I)``, ``weight_hh (H, H)``, ``bias_ih (H,)``, ``bias_hh (H,)``
    (with ``recurrent_bias``; torch has it, Keras does not).
    """

    kind = "rnn"
    gate_blocks = 1
    gate_names = ()

    def __init__(self, input_size: int, hidden_size: int, **kwargs: Any) -> None:
        kwargs.setdefault("recurrent_activation", None)
        super().__init__(input_size, hidden_size, **kwargs)
        self._create_core_weights()
        self.reset_parameters()

    def step(
        self,
        x: Tensor,
        state: State,
        *,
        projected_input: bool = False,
        recurrent_dropout_mask: Tensor | None = None,
    ) -> tuple[tuple[Tensor], RNNGates]:
        h, gates = fn.rnn_step(
            x if projected_input else self.input_transform(x),
            state[0],
            None,
            self.weight_hh,
            None,
            self.bias_hh,
            activation=self.activation,
            recurrent_dropout_mask=recurrent_dropout_mask,
            projected_input=True,
        )
        return (h,), gates

    @property
    def is_plain(self) -> bool:
        return activations.is_default(self.activation, "tanh") or activations.is_default(
            self.activation, "relu"
        )


def gates_type(cell: RecurrentCell) -> type[NamedTuple]:
    """The named-tuple type of a cell's gates."""
    return {"lstm": LSTMGates, "gru": GRUGates, "rnn": RNNGates}[cell.kind]
