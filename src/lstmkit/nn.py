r"""Drop-in replacements for ``torch.nn.LSTM``, ``GRU``, ``RNN`` and their ``*Cell`` versions.

Same constructor, same call, same results, same ``state_dict``: a model written for
``torch.nn.LSTM`` runs unchanged on ``lstmkit.nn.LSTM``, and checkpoints load both ways::

    lstm = lstmkit.nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    lstm.load_state_dict(torch_lstm.state_dict())      # and the other way round

The equations are those of :mod:`lstmkit.functional` (``i, f, g, o``; ``c = f*c + i*g``;
``h = o*tanh(c)``); torch's GRU is ``reset_after=True`` and its RNN ``h = tanh(W_ih x + b_ih +
W_hh h + b_hh)`` (or ``relu``). The sequence runs on lstmkit's engines
(:mod:`lstmkit.engines`): torch's fused kernels for plain configurations (one call for the
whole stack, exactly what ``torch.nn.LSTM`` runs), the reference loop (or the compiled engine)
when an extra needs it.

Extras, all keyword-only and off by default, so the torch behaviour is unchanged:

* ``peephole=True``, ``layer_norm=True`` (LSTM): the variants of
  :func:`lstmkit.functional.lstm_step`; their extra parameters are registered as
  ``peephole_i_l0``, ``ln_ih_weight_l0`` … next to torch's names.
* ``engine="auto" | "reference" | "fused" | "compiled"``: force an engine.
* ``return_gates=True``: ``forward`` returns a third item, the gate activations of every step
  (see :meth:`LSTM.forward`).
* Recording: inside :func:`lstmkit.engines.recording` the module hands every layer's and
  direction's record to the sinks, with the directions named ``"l0"``, ``"l0_reverse"``, ``"l1"`` …

Parameters have torch's names, shapes, order and initialisation ``U(-1/sqrt(H), 1/sqrt(H))``
(the same draws as torch's under the same seed): for layer ``k`` and suffix ``""`` or
``"_reverse"``, ``weight_ih_l{k} (G·H, I_k)``, ``weight_hh_l{k} (G·H, P)``, ``bias_ih_l{k}``,
``bias_hh_l{k} (G·H,)``, ``weight_hr_l{k} (P, H)`` (``proj_size > 0``), where ``G`` is 4 (LSTM),
3 (GRU) or 1 (RNN), ``P = proj_size or H`` and ``I_k`` is ``input_size`` for ``k = 0`` and
``D·P`` above it (``D = 2`` if bidirectional else 1).

>>> import torch
>>> _ = torch.manual_seed(0)
>>> lstm = LSTM(3, 4, num_layers=2, batch_first=True)
>>> out, (h_n, c_n) = lstm(torch.randn(2, 5, 3))
>>> tuple(out.shape), tuple(h_n.shape), tuple(c_n.shape)
((2, 5, 4), (2, 2, 4), (2, 2, 4))
>>> torch_lstm = torch.nn.LSTM(3, 4, num_layers=2, batch_first=True)
>>> torch_lstm.load_state_dict(lstm.state_dict())
<All keys matched successfully>
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from lstmkit import cells as cells_mod
from lstmkit import engines
from lstmkit.engines import RunOptions
from lstmkit.functional import LSTMState

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "LSTMCell",
    "RNNCell",
    "RNNStateTypeError",
    "RNNTypeError",
    "RNNValueError",
]


class RNNValueError(ValueError, RuntimeError):
    """A wrong shape or value: lstmkit raises ``ValueError``; ``torch.nn`` raises
    ``RuntimeError`` for the same call, so the error is both (``except RuntimeError:`` written
    for torch keeps working)."""


class RNNTypeError(TypeError, ValueError, RuntimeError):
    """A wrong dtype: lstmkit's ``TypeError``; ``torch.nn`` raises ``ValueError`` (input vs
    weights) or ``RuntimeError`` (``hx`` vs input, cells) for the same call."""


class RNNStateTypeError(TypeError, IndexError, RuntimeError):
    """An LSTM ``hx`` that is not a pair ``(h_0, c_0)``: lstmkit's ``TypeError``; torch
    fails with an ``IndexError`` indexing it (a tensor of one row, a 1-tuple) or a
    ``RuntimeError`` (a tensor of several rows, a 3-tuple)."""


def _check_flag(name: str, arg: str, value: Any) -> bool:
    """torch's rule for ``bias`` and ``batch_first``: a real ``bool`` (``"False"`` is not)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: {arg} should be of type bool, got: {type(value).__name__}")
    return value


def _check_packed(name: str, packed: PackedSequence) -> None:
    """A ``PackedSequence`` must be consistent before any kernel reads it (torch's own kernels
    read out of bounds otherwise): ``batch_sizes`` a CPU int64 vector of positive,
    non-increasing counts summing to ``len(data)``; the index vectors permutations."""
    data, sizes = packed.data, packed.batch_sizes
    if not isinstance(sizes, Tensor) or sizes.dim() != 1 or sizes.dtype != torch.int64:
        raise RNNTypeError(
            f"{name}: expected PackedSequence batch_sizes as a 1-D int64 tensor, got "
            f"{_shape(sizes)} {getattr(sizes, 'dtype', '')}".rstrip()
        )
    if sizes.device.type != "cpu":
        raise RNNValueError(
            f"{name}: expected PackedSequence batch_sizes on the CPU (as torch's "
            f"pack_padded_sequence makes it), got {sizes.device}"
        )
    if sizes.numel() == 0:
        raise RNNValueError(f"{name}: expected PackedSequence batch_sizes with at least 1 step")
    bad = (sizes <= 0).nonzero()
    if bad.numel():
        k = int(bad[0])
        raise RNNValueError(
            f"{name}: expected PackedSequence batch_sizes > 0, got {int(sizes[k])} at step {k}"
        )
    rising = (sizes[1:] > sizes[:-1]).nonzero()
    if rising.numel():
        k = int(rising[0]) + 1
        raise RNNValueError(
            f"{name}: expected non-increasing PackedSequence batch_sizes, got "
            f"{int(sizes[k - 1])} then {int(sizes[k])} at step {k}"
        )
    total = int(sizes.sum())
    if data.dim() < 1 or data.shape[0] != total:
        raise RNNValueError(
            f"{name}: expected PackedSequence data with {total} rows (the sum of batch_sizes), "
            f"got {tuple(data.shape)}"
        )
    batch = int(sizes[0])
    for label, idx in (
        ("sorted_indices", packed.sorted_indices),
        ("unsorted_indices", packed.unsorted_indices),
    ):
        if idx is None:
            continue
        if (
            not isinstance(idx, Tensor)
            or idx.dim() != 1
            or idx.dtype != torch.int64
            or idx.numel() != batch
            or not torch.equal(idx.sort().values.cpu(), torch.arange(batch))
        ):
            raise RNNValueError(
                f"{name}: expected PackedSequence {label} as a permutation of range({batch}), "
                f"got {_shape(idx)}"
            )


Records = list[list[dict[str, Tensor]]]
"""``records[layer][direction][name]``: every step's gate / state values (see ``return_gates``)."""
Output = Tensor | PackedSequence
LSTMResult = tuple[Output, tuple[Tensor, Tensor]] | tuple[Output, tuple[Tensor, Tensor], Records]
RNNResult = tuple[Output, Tensor] | tuple[Output, Tensor, Records]


def _shape(x: Any) -> Any:
    return tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__


class _RNNBase(nn.Module):
    """What :class:`LSTM`, :class:`GRU` and :class:`RNN` share: torch's constructor, parameters
    and call, on lstmkit's cells and engines.

    The lstmkit cells (one per layer and direction, on the ``meta`` device) live in a plain
    list, not registered as sub-modules: the parameters are registered on this module under
    torch's names, and bound into copies of the cells at every call, so that assignment
    (``m.weight_ih_l0 = nn.Parameter(...)``), ``.to()``, ``.double()`` and parametrizations all
    keep the two consistent.
    """

    mode: str = ""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: torch.dtype | None = None,
        *,
        peephole: bool = False,
        layer_norm: bool = False,
        engine: str = "auto",
        return_gates: bool = False,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value, low in (
            ("input_size", input_size, 1),
            ("hidden_size", hidden_size, 1),
            ("num_layers", num_layers, 1),
            ("proj_size", proj_size, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(
                    f"{name}: {arg} must be an int, got {value!r} ({type(value).__name__})"
                )
            if value < low:
                raise ValueError(f"{name}: {arg} must be an integer >= {low}, got {value}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number):
            # torch: TypeError where float() fails (None, a list), ValueError otherwise
            raise RNNTypeError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"{name}: dropout={dropout} acts between stacked layers only, and "
                f"num_layers=1 (as torch.nn.{name}, it has no effect)",
                stacklevel=3,
            )
        if proj_size and mode != "LSTM":
            raise ValueError(f"{name}: proj_size is only supported by LSTM, got {proj_size}")
        if proj_size >= hidden_size:
            raise ValueError(
                f"{name}: proj_size must be smaller than hidden_size ({hidden_size}), "
                f"got {proj_size}"
            )
        if engine not in engines.ENGINE_NAMES:
            raise ValueError(
                f"{name}: engine must be one of {engines.ENGINE_NAMES}, got {engine!r}"
            )
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = _check_flag(name, "bias", bias)
        self.batch_first = _check_flag(name, "batch_first", batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = proj_size
        self.peephole = bool(peephole)
        self.layer_norm = bool(layer_norm)
        self.engine = engine
        self.return_gates = bool(return_gates)

        directions = 2 if self.bidirectional else 1
        out_size = proj_size or hidden_size
        factory = {"device": device, "dtype": dtype}
        # Cells are built on the meta device (no memory, no random draws); the real parameters
        # are created here, under torch's names, and drawn in torch's order by reset_parameters.
        self._cells: list[list[cells_mod.RecurrentCell]] = []
        self._cell_params: list[list[list[tuple[str, str]]]] = []  # (cell name, module name)
        self._all_weights: list[list[str]] = []
        for k in range(num_layers):
            layer_cells, layer_names = [], []
            layer_in = input_size if k == 0 else out_size * directions
            for d in range(directions):
                cell = self._make_cell(layer_in, dtype)
                suffix = f"_l{k}" + ("_reverse" if d == 1 else "")
                names = []
                for cell_name, p in cell.named_parameters():
                    module_name = cell_name + suffix
                    self.register_parameter(
                        module_name, nn.Parameter(torch.empty(p.shape, **factory))
                    )
                    names.append((cell_name, module_name))
                layer_cells.append(cell)
                layer_names.append(names)
                self._all_weights.append([m for _, m in names])
            self._cells.append(layer_cells)
            self._cell_params.append(layer_names)
        self._flat_weights_names = [n for names in self._all_weights for n in names]
        self.reset_parameters()

    def _make_cell(self, input_size: int, dtype: torch.dtype | None) -> cells_mod.RecurrentCell:
        common = {
            "bias": self.bias,
            "recurrent_bias": True,
            "torch_init": True,
            "device": "meta",
            "dtype": dtype,
        }
        if self.mode == "LSTM":
            return cells_mod.LSTMCell(
                input_size,
                self.hidden_size,
                proj_size=self.proj_size,
                peephole=self.peephole,
                layer_norm=self.layer_norm,
                **common,
            )
        if self.mode == "GRU":
            return cells_mod.GRUCell(input_size, self.hidden_size, reset_after=True, **common)
        activation = "relu" if self.mode == "RNN_RELU" else "tanh"
        return cells_mod.SimpleRNNCell(
            input_size, self.hidden_size, activation=activation, **common
        )

    # -- parameters ---------------------------------------------------------------------------

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """torch's initialisation: every parameter from ``U(-1/sqrt(H), 1/sqrt(H))``, drawn in
        ``named_parameters`` order (so the same seed gives torch's numbers); layer-norm gains
        one and layer-norm biases zero."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name, p in self.named_parameters():
            if name.startswith("ln_"):
                p.fill_(1.0 if "_weight_" in name else 0.0)
            else:
                p.uniform_(-bound, bound)

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """The parameters grouped per layer and direction, as ``torch.nn.LSTM.all_weights``."""
        return [[getattr(self, n) for n in names] for names in self._all_weights]

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, n) for n in self._flat_weights_names]

    def flatten_parameters(self) -> None:
        """Accepted for compatibility with ``torch.nn.LSTM`` (nothing to do here)."""

    def _bound_cells(self) -> list[list[cells_mod.RecurrentCell]]:
        """Shallow copies of the template cells holding this module's current parameters (the
        templates stay untouched, so concurrent calls and replicas never share state)."""
        bound = []
        for layer_cells, layer_names in zip(self._cells, self._cell_params):
            row = []
            for cell, names in zip(layer_cells, layer_names):
                view = copy.copy(cell)
                view._parameters = dict(cell._parameters)  # keeps the None entries
                for cell_name, module_name in names:
                    view._parameters[cell_name] = getattr(self, module_name)
                row.append(view)
            bound.append(row)
        return bound

    # -- checking the call --------------------------------------------------------------------

    @property
    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _state_sizes(self) -> tuple[int, ...]:
        out = self.proj_size or self.hidden_size
        return (out, self.hidden_size) if self.mode == "LSTM" else (out,)

    def _check_input(self, x: Tensor, argument: str = "input") -> None:
        name = type(self).__name__
        if not x.is_floating_point():
            raise RNNTypeError(
                f"{name}: expected a floating-point {argument} (the parameters' dtype "
                f"{self.weight_ih_l0.dtype}), got {x.dtype}"
            )
        if x.dtype != self.weight_ih_l0.dtype:
            raise RNNTypeError(
                f"{name}: expected {argument} of dtype {self.weight_ih_l0.dtype} (the "
                f"parameters' dtype), got {x.dtype}"
            )

    def _states_from_hx(self, hx: Any, batch: int, unbatched: bool, ref: Tensor) -> list[Tensor]:
        """``hx`` -> the list of state tensors ``(D·L, B, ·)``; zeros where ``hx`` is None."""
        name = type(self).__name__
        sizes = self._state_sizes()
        n = self._directions * self.num_layers
        if hx is None:
            return [ref.new_zeros(n, batch, s) for s in sizes]
        if self.mode == "LSTM":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise RNNStateTypeError(
                    f"{name}: expected hx as a tuple (h_0, c_0), got {_shape(hx)}"
                    if not isinstance(hx, (tuple, list))
                    else f"{name}: expected hx as a tuple (h_0, c_0), got {len(hx)} items"
                )
            tensors, labels = list(hx), ("h_0", "c_0")
        else:
            if not isinstance(hx, Tensor):
                raise TypeError(f"{name}: expected hx as a tensor h_0, got {type(hx).__name__}")
            tensors, labels = [hx], ("h_0",)
        out = []
        for t, label, size in zip(tensors, labels, sizes):
            want = (n, size) if unbatched else (n, batch, size)
            if isinstance(t, Tensor) and t.dim() != len(want):
                kind = "unbatched 2-D" if unbatched else "batched 3-D"
                raise RNNValueError(
                    f"{name}: for {kind} input, hx {label} should be {len(want)}-D "
                    f"{want}, got a {t.dim()}-D tensor {tuple(t.shape)}"
                )
            if not isinstance(t, Tensor) or tuple(t.shape) != want:
                layout = "(D·num_layers, H)" if unbatched else "(D·num_layers, batch, H)"
                raise RNNValueError(
                    f"{name}: expected hx {label} of shape {want} {layout}, got {_shape(t)}"
                )
            if t.dtype != ref.dtype:
                raise RNNTypeError(
                    f"{name}: expected hx {label} of dtype {ref.dtype} (the input's), got {t.dtype}"
                )
            out.append(t.unsqueeze(1) if unbatched else t)
        return out

    # -- running ------------------------------------------------------------------------------

    def _run(
        self, input: Tensor | PackedSequence, hx: Any
    ) -> tuple[Tensor | PackedSequence, list[Tensor], Records | None]:
        name = type(self).__name__
        record = self.return_gates or engines.recording_active()
        cells = self._bound_cells()
        if isinstance(input, PackedSequence):
            return self._run_packed(input, hx, cells, record)
        if not isinstance(input, Tensor):
            raise TypeError(
                f"{name}: expected input as a tensor or a PackedSequence, "
                f"got {type(input).__name__}"
            )
        if input.dim() not in (2, 3) or input.shape[-1] != self.input_size:
            layout = "(B, T, {0})" if self.batch_first else "(T, B, {0})"
            # torch: ValueError for the rank, RuntimeError for the feature size
            error = ValueError if input.dim() not in (2, 3) else RNNValueError
            raise error(
                f"{name}: expected input of shape {layout.format(self.input_size)} "
                f"(batch_first={self.batch_first}) or unbatched (T, {self.input_size}), "
                f"got {tuple(input.shape)}"
            )
        self._check_input(input)
        unbatched = input.dim() == 2
        steps = input.shape[1 if self.batch_first and not unbatched else 0]
        if steps == 0:
            raise RNNValueError(
                f"{name}: expected a sequence length of at least 1, got input of shape "
                f"{tuple(input.shape)} (batch_first={self.batch_first})"
            )
        if unbatched:
            x = input.unsqueeze(0)  # (1, T, I)
        else:
            x = input if self.batch_first else input.transpose(0, 1)  # (B, T, I)
        state_tensors = self._states_from_hx(hx, x.shape[0], unbatched, x)
        states = self._split_states(state_tensors)

        eng = engines.choose_stack(cells, x, record, engines.for_recording(self.engine, record))
        result = eng.run_stack(
            cells, x, states, dropout=self.dropout, training=self.training, record=record
        )
        out = result.outputs  # (B, T, D·P)
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        finals = self._join_states(result.states, unbatched)
        records = self._records(result.records, None, unbatched) if record else None
        return out, finals, records

    def _split_states(self, tensors: list[Tensor]) -> list[list[tuple[Tensor, ...]]]:
        """``(D·L, B, ·)`` tensors -> ``states[layer][direction]``."""
        d = self._directions
        out = []
        for k in range(self.num_layers):
            layer = []
            for j in range(d):
                st = tuple(t[k * d + j] for t in tensors)
                layer.append(LSTMState(*st) if self.mode == "LSTM" else st)
            out.append(layer)
        return out

    def _join_states(self, states: list[list[tuple[Tensor, ...]]], unbatched: bool) -> list[Tensor]:
        n = len(self._state_sizes())
        joined = [torch.stack([s[i] for layer in states for s in layer]) for i in range(n)]
        return [t.squeeze(1) for t in joined] if unbatched else joined

    def _records(
        self, records: list[list[dict[str, Tensor] | None]], mask: Tensor | None, unbatched: bool
    ) -> Records:
        """Emit the engine's records to active recording sinks, and return them in this
        module's layout."""
        out: Records = []
        for k, layer in enumerate(records):
            layer_out = []
            for d, rec in enumerate(layer):
                rec = rec or {}
                engines.emit(self, f"l{k}" + ("_reverse" if d == 1 else ""), rec or None, mask)
                if unbatched:
                    rec = {n: v.squeeze(0) for n, v in rec.items()}
                elif not self.batch_first:
                    rec = {n: v.transpose(0, 1) for n, v in rec.items()}
                layer_out.append(rec)
            out.append(layer_out)
        return out

    def _run_packed(
        self,
        packed: PackedSequence,
        hx: Any,
        cells: list[list[cells_mod.RecurrentCell]],
        record: bool,
    ) -> tuple[PackedSequence, list[Tensor], Records | None]:
        name = type(self).__name__
        _check_packed(name, packed)
        data, batch_sizes = packed.data, packed.batch_sizes
        if data.dim() != 2 or data.shape[-1] != self.input_size:
            raise RNNValueError(
                f"{name}: expected PackedSequence data of shape (N, {self.input_size}), "
                f"got {tuple(data.shape)}"
            )
        self._check_input(data, "PackedSequence data")
        batch = int(batch_sizes[0])
        states = self._states_from_hx(hx, batch, False, data)  # original batch order
        padded, lengths = pad_packed_sequence(packed, batch_first=True)  # (B, T, I), original order
        eng = engines.choose_stack(
            cells, padded, record, engines.for_recording(self.engine, record)
        )
        if eng.name == "fused":
            # torch's own packed kernel: exactly what torch.nn.LSTM runs.
            if packed.sorted_indices is not None:
                states = [s.index_select(1, packed.sorted_indices) for s in states]
            out_data, finals = self._vf_packed(data, batch_sizes, states)
            if packed.unsorted_indices is not None:
                finals = [f.index_select(1, packed.unsorted_indices) for f in finals]
            return PackedSequence(out_data, batch_sizes, *packed[2:]), finals, None

        # Any other engine: the padded batch with a right-aligned mask and zero outputs on the
        # padding — Keras's masking semantics, which are exactly torch's packed semantics.
        mask = torch.arange(padded.shape[1], device=lengths.device) < lengths.unsqueeze(1)
        mask = mask.to(padded.device)
        out, final_states, raw_records = self._run_masked(
            cells, padded, self._split_states(states), mask, record
        )
        order = packed.sorted_indices
        out_sorted = out if order is None else out.index_select(0, order)
        lengths_sorted = lengths if order is None else lengths.index_select(0, order.cpu())
        out_data = nn.utils.rnn.pack_padded_sequence(
            out_sorted, lengths_sorted, batch_first=True, enforce_sorted=True
        ).data
        finals = self._join_states(final_states, False)
        records = None
        if record:
            records = self._records(raw_records, mask, False)
        return PackedSequence(out_data, batch_sizes, *packed[2:]), finals, records

    def _run_masked(
        self,
        cells: list[list[cells_mod.RecurrentCell]],
        x: Tensor,
        states: list[list[tuple[Tensor, ...]]],
        mask: Tensor,
        record: bool,
    ) -> tuple[Tensor, list[list[tuple[Tensor, ...]]], list[list[dict[str, Tensor] | None]]]:
        """The stack over a masked batch, one engine run per layer and direction."""
        inputs = x
        out_states, records = [], []
        for k, layer in enumerate(cells):
            outs, layer_states, layer_records = [], [], []
            for d, cell in enumerate(layer):
                opts = RunOptions(
                    mask=mask, reverse=d == 1, zero_output_for_mask=True, record=record
                )
                res = engines.run(
                    cell, inputs, states[k][d], opts, engines.for_recording(self.engine, record)
                )
                outs.append(res.outputs)
                layer_states.append(res.state)
                layer_records.append(res.record)
            inputs = outs[0] if len(outs) == 1 else torch.cat(outs, -1)
            if self.dropout and self.training and k < len(cells) - 1:
                inputs = F.dropout(inputs, self.dropout, training=True)
            out_states.append(layer_states)
            records.append(layer_records)
        return inputs, out_states, records

    def _vf_packed(
        self, data: Tensor, batch_sizes: Tensor, states: list[Tensor]
    ) -> tuple[Tensor, list[Tensor]]:
        """One call of torch's fused kernel on packed data (states in sorted batch order)."""
        args = (
            self._flat_weights,
            self.bias,
            self.num_layers,
            self.dropout,
            self.training,
            self.bidirectional,
        )
        if self.mode == "LSTM":
            out, h, c = torch._VF.lstm(data, batch_sizes, tuple(states), *args)
            return out, [h, c]
        fn = {
            "GRU": torch._VF.gru,
            "RNN_TANH": torch._VF.rnn_tanh,
            "RNN_RELU": torch._VF.rnn_relu,
        }[self.mode]
        out, h = fn(data, batch_sizes, states[0], *args)
        return out, [h]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        for k in ("peephole", "layer_norm", "return_gates"):
            if getattr(self, k):
                s += f", {k}=True"
        if self.engine != "auto":
            s += f", engine={self.engine!r}"
        return s


class LSTM(_RNNBase):
    r"""Multi-layer LSTM, a drop-in for ``torch.nn.LSTM`` (same constructor, call, parameters).

    For each layer and step (the equations of :func:`lstmkit.functional.lstm_step`)::

        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
        f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
        o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        h_t = o_t ⊙ tanh(c_t)                 (then h_t = W_hr h_t if proj_size > 0)

    The input of layer ``k > 0`` is the (concatenated) output of layer ``k - 1``, with dropout
    ``dropout`` in training mode.

    Shapes (``L`` = sequence length, ``N`` = batch, ``D`` = 2 if bidirectional else 1,
    ``P`` = proj_size or hidden_size): input ``(L, N, I)`` (``(N, L, I)`` if ``batch_first``),
    ``(L, I)`` unbatched, or a ``PackedSequence``; ``h_0 (D·num_layers, N, P)``,
    ``c_0 (D·num_layers, N, H)`` (without ``N`` when unbatched); output ``(L, N, D·P)`` (or
    batch-first / unbatched / packed like the input); ``h_n``, ``c_n`` shaped like ``h_0``, ``c_0``.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
        proj_size, device, dtype: as ``torch.nn.LSTM``.
        peephole: peephole connections (Gers et al. 2002), parameters ``peephole_{i,f,o}_l{k}``.
        layer_norm: layer-normalised LSTM (Ba et al. 2016), parameters ``ln_*_l{k}``.
        engine: ``"auto"`` (fastest engine that computes the configuration), ``"reference"``,
            ``"fused"`` or ``"compiled"``.
        return_gates: also return every step's gates (see :meth:`forward`).

    Example:
        >>> lstm = LSTM(10, 20, num_layers=2)
        >>> x, h0, c0 = torch.randn(5, 3, 10), torch.randn(2, 3, 20), torch.randn(2, 3, 20)
        >>> out, (h_n, c_n) = lstm(x, (h0, c0))
        >>> tuple(out.shape), tuple(h_n.shape)
        ((5, 3, 20), (2, 3, 20))
        >>> torch.equal(out[-1], h_n[-1])
        True
        >>> out, (h_n, c_n), gates = LSTM(10, 20, return_gates=True)(x)
        >>> sorted(gates[0][0]), tuple(gates[0][0]["f"].shape)
        (['c', 'f', 'g', 'h', 'i', 'o'], (5, 3, 20))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: torch.dtype | None = None,
        *,
        peephole: bool = False,
        layer_norm: bool = False,
        engine: str = "auto",
        return_gates: bool = False,
    ) -> None:
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device,
            dtype,
            peephole=peephole,
            layer_norm=layer_norm,
            engine=engine,
            return_gates=return_gates,
        )

    def forward(self, input: Output, hx: tuple[Tensor, Tensor] | None = None) -> LSTMResult:
        """Run the stack: ``(output, (h_n, c_n))``, or ``(output, (h_n, c_n), gates)`` with
        ``return_gates``.

        ``gates[layer][direction]`` (direction 0 forward, 1 reverse) is a dict of every step's
        values ``{"i", "f", "g", "o", "c", "h"}`` (GRU ``{"r", "z", "n", "h"}``, RNN ``{"h"}``),
        each ``(L, N, H)`` — ``(N, L, H)`` if ``batch_first``, ``(L, H)`` unbatched, and the
        padded ``(N, L, H)`` in the original batch order for a ``PackedSequence`` (values past a
        sequence's length are to be ignored) — aligned with the input's time index in both
        directions (``h`` is ``P``-sized with a projection).

        Raises:
            ValueError: input of the wrong rank or feature size; ``hx`` of the wrong shape.
            TypeError: an integer input, or input / ``hx`` of a dtype other than the
                parameters'.
        """
        out, finals, records = self._run(input, hx)
        if self.return_gates:
            return out, (finals[0], finals[1]), records
        return out, (finals[0], finals[1])


class GRU(_RNNBase):
    r"""Multi-layer GRU, a drop-in for ``torch.nn.GRU`` (same constructor, call, parameters).

    For each layer and step (:func:`lstmkit.functional.gru_step` with ``reset_after=True``)::

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    Shapes as :class:`LSTM` with ``P = H`` and no ``c``. Parameters ``weight_ih_l{k} (3H, I_k)``,
    ``weight_hh_l{k} (3H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k} (3H,)``, gate blocks ``r, z, n``.

    Args: as ``torch.nn.GRU``, plus ``engine`` and ``return_gates`` (see :class:`LSTM`).

    Example:
        >>> gru = GRU(10, 20, batch_first=True, bidirectional=True)
        >>> out, h_n = gru(torch.randn(3, 5, 10))
        >>> tuple(out.shape), tuple(h_n.shape)
        ((3, 5, 40), (2, 3, 20))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: torch.dtype | None = None,
        *,
        engine: str = "auto",
        return_gates: bool = False,
        proj_size: Any = None,
    ) -> None:
        if proj_size is not None:
            raise ValueError("GRU: proj_size is only supported by LSTM, not by RNN or GRU")
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
            engine=engine,
            return_gates=return_gates,
        )

    def forward(self, input: Output, hx: Tensor | None = None) -> RNNResult:
        """``(output, h_n)``, or ``(output, h_n, gates)`` with ``return_gates`` (see
        :meth:`LSTM.forward`)."""
        out, finals, records = self._run(input, hx)
        if self.return_gates:
            return out, finals[0], records
        return out, finals[0]


class RNN(_RNNBase):
    r"""Multi-layer Elman RNN, a drop-in for ``torch.nn.RNN``:
    ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (``relu`` with
    ``nonlinearity='relu'``), see :func:`lstmkit.functional.rnn_step`.

    Shapes as :class:`GRU`; parameters ``weight_ih_l{k} (H, I_k)``, ``weight_hh_l{k} (H, H)``,
    ``bias_ih_l{k}``, ``bias_hh_l{k} (H,)``.

    Args: as ``torch.nn.RNN`` (``nonlinearity`` is ``'tanh'`` or ``'relu'``), plus ``engine``
    and ``return_gates`` (see :class:`LSTM`).

    Example:
        >>> rnn = RNN(10, 20, num_layers=2, nonlinearity="relu")
        >>> out, h_n = rnn(torch.randn(5, 10))   # unbatched (L, I)
        >>> tuple(out.shape), tuple(h_n.shape)
        ((5, 20), (2, 20))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: torch.dtype | None = None,
        *,
        engine: str = "auto",
        return_gates: bool = False,
        proj_size: Any = None,
    ) -> None:
        if proj_size is not None:
            raise ValueError("RNN: proj_size is only supported by LSTM, not by RNN or GRU")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(
            "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            0,
            device,
            dtype,
            engine=engine,
            return_gates=return_gates,
        )

    def forward(self, input: Output, hx: Tensor | None = None) -> RNNResult:
        """``(output, h_n)``, or ``(output, h_n, gates)`` with ``return_gates`` (see
        :meth:`LSTM.forward`)."""
        out, finals, records = self._run(input, hx)
        if self.return_gates:
            return out, finals[0], records
        return out, finals[0]

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


# -- single cells -----------------------------------------------------------------------------


def _check_cell_sizes(name: str, input_size: Any, hidden_size: Any) -> None:
    """torch's cells fail in ``torch.empty`` on these: ``TypeError`` for a size that is not an
    int, ``RuntimeError`` for a negative one (lstmkit's error is both a ``ValueError`` and a
    ``RuntimeError``)."""
    for arg, value, low in (("input_size", input_size, 1), ("hidden_size", hidden_size, 0)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name}: {arg} must be an int, got {value!r} ({type(value).__name__})")
        if value < low:
            raise RNNValueError(f"{name}: {arg} must be an integer >= {low}, got {value}")


def _cell_input(cell: nn.Module, input: Any, hx: Any, n_states: int) -> tuple[Tensor, list, bool]:
    """Check a cell's ``(input, hx)`` as torch does; returns batched ``x``, states, unbatched."""
    name = type(cell).__name__
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: expected input as a tensor, got {type(input).__name__}")
    if input.dim() not in (1, 2) or input.shape[-1] != cell.input_size:
        # torch: ValueError for the rank, RuntimeError for the feature size
        raise (ValueError if input.dim() not in (1, 2) else RNNValueError)(
            f"{name}: expected input of shape (B, {cell.input_size}) or unbatched "
            f"({cell.input_size},), got {tuple(input.shape)}"
        )
    if not input.is_floating_point() or input.dtype != cell.weight_ih.dtype:
        raise RNNTypeError(
            f"{name}: expected input of dtype {cell.weight_ih.dtype} (the parameters'), "
            f"got {input.dtype}"
        )
    unbatched = input.dim() == 1
    x = input.unsqueeze(0) if unbatched else input
    batch = x.shape[0]
    if hx is None:
        return x, [x.new_zeros(batch, cell.hidden_size) for _ in range(n_states)], unbatched
    labels = ("h_0", "c_0") if n_states == 2 else ("hx",)
    if n_states == 2:
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise RNNStateTypeError(f"{name}: expected hx as a tuple (h_0, c_0), got {_shape(hx)}")
        tensors = list(hx)
    else:
        if not isinstance(hx, Tensor):
            raise TypeError(f"{name}: expected hx as a tensor, got {type(hx).__name__}")
        tensors = [hx]
    want = (cell.hidden_size,) if unbatched else (batch, cell.hidden_size)
    states = []
    for t, label in zip(tensors, labels):
        if not isinstance(t, Tensor) or tuple(t.shape) != want:
            raise RNNValueError(f"{name}: expected {label} of shape {want}, got {_shape(t)}")
        if t.dtype != x.dtype:
            raise RNNTypeError(f"{name}: expected {label} of dtype {x.dtype}, got {t.dtype}")
        states.append(t.unsqueeze(0) if unbatched else t)
    return x, states, unbatched


_AUTOCAST_OPS = {"LSTMCell": "lstm_cell", "GRUCell": "gru_cell", "RNNCell": "rnn_tanh_cell"}
_autocast_dtypes: dict[tuple[str, torch.dtype, str], torch.dtype] = {}


def _autocast_like_torch(cell: nn.Module, x: Tensor, outputs: tuple[Tensor, ...]) -> tuple:
    """Under autocast, the output dtype torch's own cell op gives (asked of torch itself on a
    1×1 problem, once per device, autocast dtype and op): on CPU with bfloat16 torch's RNNCell
    returns bfloat16 while its LSTMCell and GRUCell return float32. The values are lstmkit's
    (computed in the parameters' dtype), only the dtype follows torch."""
    device = x.device.type
    if not torch.is_autocast_enabled(device):
        return outputs
    op = _AUTOCAST_OPS[type(cell).__name__]
    key = (device, torch.get_autocast_dtype(device), op)
    if key not in _autocast_dtypes:
        one = torch.zeros(1, 1, device=x.device)
        gates = {"lstm_cell": 4, "gru_cell": 3}.get(op, 1)
        w, b = torch.zeros(gates, 1, device=x.device), torch.zeros(gates, device=x.device)
        hx: Any = [one, one] if op == "lstm_cell" else one
        result = getattr(torch, op)(one, hx, w, w, b, b)
        _autocast_dtypes[key] = (result[0] if isinstance(result, tuple) else result).dtype
    dtype = _autocast_dtypes[key]
    return tuple(t.to(dtype) for t in outputs)


class LSTMCell(cells_mod.LSTMCell):
    r"""One LSTM step, a drop-in for ``torch.nn.LSTMCell``: ``(h_1, c_1) = cell(x, (h_0, c_0))``.

    The equations of :class:`LSTM` for one step. Shapes: input ``(N, I)`` or ``(I,)``; ``h_0``,
    ``c_0``, ``h_1``, ``c_1`` ``(N, H)`` or ``(H,)``. Parameters (torch's names and init
    ``U(-1/sqrt(H), 1/sqrt(H))``): ``weight_ih (4H, I)``, ``weight_hh (4H, H)``, ``bias_ih``,
    ``bias_hh (4H,)``; with ``peephole`` / ``layer_norm`` the variants' parameters too.

    Example:
        >>> cell = LSTMCell(10, 20)
        >>> h, c = cell(torch.randn(3, 10))
        >>> tuple(h.shape), tuple(c.shape)
        ((3, 20), (3, 20))
    """

    min_hidden_size = 0  # as torch's cells

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: torch.dtype | None = None,
        *,
        peephole: bool = False,
        layer_norm: bool = False,
    ) -> None:
        _check_cell_sizes("LSTMCell", input_size, hidden_size)
        super().__init__(
            input_size,
            hidden_size,
            peephole=peephole,
            layer_norm=layer_norm,
            bias=bias,
            recurrent_bias=True,
            torch_init=True,
            device=device,
            dtype=dtype,
        )
        self.bias = bool(bias)

    def forward(  # type: ignore[override]
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(h_1, c_1)`` from ``input`` and ``hx = (h_0, c_0)`` (zeros if ``None``)."""
        x, states, unbatched = _cell_input(self, input, hx, 2)
        (h, c), _ = self.step(x, LSTMState(*states))
        h, c = _autocast_like_torch(self, x, (h, c))
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.bias else ", bias=False")


class GRUCell(cells_mod.GRUCell):
    r"""One GRU step, a drop-in for ``torch.nn.GRUCell``: ``h_1 = cell(x, h_0)``.

    The equations of :class:`GRU` for one step; shapes input ``(N, I)`` or ``(I,)``, ``h``
    ``(N, H)`` or ``(H,)``; parameters ``weight_ih (3H, I)``, ``weight_hh (3H, H)``,
    ``bias_ih``, ``bias_hh (3H,)``.

    Example:
        >>> tuple(GRUCell(10, 20)(torch.randn(3, 10)).shape)
        (3, 20)
    """

    min_hidden_size = 0  # as torch's cells

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        _check_cell_sizes("GRUCell", input_size, hidden_size)
        super().__init__(
            input_size,
            hidden_size,
            reset_after=True,
            bias=bias,
            recurrent_bias=True,
            torch_init=True,
            device=device,
            dtype=dtype,
        )
        self.bias = bool(bias)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """``h_1`` from ``input`` and ``hx = h_0`` (zeros if ``None``)."""
        x, states, unbatched = _cell_input(self, input, hx, 1)
        (h,), _ = self.step(x, tuple(states))
        (h,) = _autocast_like_torch(self, x, (h,))
        return h.squeeze(0) if unbatched else h

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.bias else ", bias=False")


class RNNCell(cells_mod.SimpleRNNCell):
    r"""One Elman RNN step, a drop-in for ``torch.nn.RNNCell``:
    ``h_1 = tanh(W_ih x + b_ih + W_hh h_0 + b_hh)`` (or ``relu``).

    Shapes as :class:`GRUCell`; parameters ``weight_ih (H, I)``, ``weight_hh (H, H)``,
    ``bias_ih``, ``bias_hh (H,)``.

    Example:
        >>> tuple(RNNCell(10, 20, nonlinearity="relu")(torch.randn(10)).shape)
        (20,)
    """

    min_hidden_size = 0  # as torch's cells

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        _check_cell_sizes("RNNCell", input_size, hidden_size)
        if nonlinearity not in ("tanh", "relu"):
            # torch raises RuntimeError (at the first call); lstmkit at once
            raise RNNValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        super().__init__(
            input_size,
            hidden_size,
            activation=nonlinearity,
            bias=bias,
            recurrent_bias=True,
            torch_init=True,
            device=device,
            dtype=dtype,
        )
        self.bias = bool(bias)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """``h_1`` from ``input`` and ``hx = h_0`` (zeros if ``None``)."""
        x, states, unbatched = _cell_input(self, input, hx, 1)
        (h,), _ = self.step(x, tuple(states))
        (h,) = _autocast_like_torch(self, x, (h,))
        return h.squeeze(0) if unbatched else h

    def extra_repr(self) -> str:
        s = super().extra_repr() + ("" if self.bias else ", bias=False")
        return s + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")
