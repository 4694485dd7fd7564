"""Recording every gate of every recurrent layer: the glass box's eyes.

While a :func:`record` context is active, every recurrent layer of the model (Keras-style
``LSTM`` / ``GRU`` / ``SimpleRNN``, also inside ``Bidirectional``, and the ``lstmkit.nn``
drop-ins) hands each run's per-step values to the recording, through the engines' hook
(:func:`lstmkit.engines.recording`)::

    LSTM:       gates i_t, f_t, g_t, o_t;  c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t;  h_t = o_t ⊙ tanh(c_t)
    GRU:        gates r_t, z_t, n_t;       h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}
    SimpleRNN:  h_t

Each value is a ``(B, T, H)`` tensor aligned with the input's time index (also for backward
directions), together with the ``(B, T)`` mask (true = valid step; all true without masking).
At a masked step the state is carried over, so ``c``/``h`` repeat the previous step, while the
recorded gates are the ones the cell computed there (statistics skip masked steps).

Names. Each recorded layer *and direction* is a :class:`Trace`, named by its place in the model:

* Keras-style layers by their layer names joined with ``/``: ``"lstm"``, ``"bidirectional/
  forward_lstm"`` and ``"bidirectional/backward_lstm"`` (direction ``"forward"``/``"backward"``);
  a recorded layer that is itself the model keeps its own name.
* ``lstmkit.nn`` drop-ins by their attribute path (torch's ``encoder.rnn`` becomes
  ``"encoder/rnn"``; a drop-in recorded on its own is ``"lstm"``, ``"gru"`` or ``"rnn"``),
  followed by the layer and direction of the stack: ``"encoder/rnn/l0"``, ``".../l0_reverse"``.

Several calls (``predict`` over many batches, a model called twice) are concatenated along the
batch axis, in call order. Calls with different sequence lengths are right-padded to the longest:
padded steps hold ``NaN`` and are false in the mask. ``trace.chunks`` keeps the calls unpadded.

Recording needs an engine that exposes the gates: while a recording is active, every layer asks
:func:`lstmkit.engines.for_recording` for its engine, so a layer set to an engine that cannot
record (torch's ``"fused"`` kernels) runs on the automatic choice instead (the compiled engine or
the reference loop) — the model itself is never modified, so recordings are safe across threads.
All engines compute the same numbers (DESIGN.md): recording changes the speed, never the outputs.

Example:
    >>> import torch
    >>> from lstmkit.layers import LSTM, Dense
    >>> from lstmkit.models import Sequential
    >>> model = Sequential([LSTM(4, return_sequences=True), Dense(1)])
    >>> with record(model) as rec:
    ...     _ = model(torch.zeros(2, 5, 3))
    >>> rec.names, tuple(rec["lstm"]["f"].shape), rec["lstm"].kind
    (['lstm'], (2, 5, 4), 'lstm')
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from lstmkit import engines
from lstmkit.layers.base import Layer, snake_case
from lstmkit.layers.recurrent import RNN as KerasRNN

if TYPE_CHECKING:
    import pandas as pd

#: The values recorded for each kind of cell, in display order.
GATES: dict[str, tuple[str, ...]] = {
    "lstm": ("i", "f", "g", "o", "c", "h"),
    "gru": ("r", "z", "n", "h"),
    "rnn": ("h",),
}

#: What each recorded value is, for labels and error messages.
GATE_LABELS: dict[str, str] = {
    "i": "input gate i",
    "f": "forget gate f",
    "g": "candidate g",
    "o": "output gate o",
    "c": "cell state c",
    "h": "hidden state h",
    "r": "reset gate r",
    "z": "update gate z",
    "n": "candidate n",
}

_KIND_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN", "custom": "user cell"}


class RecordLookupError(KeyError, ValueError):
    """A layer name or gate that the recording does not have (a ``KeyError`` for dict-style
    access and a ``ValueError`` for argument checks), with a readable message."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnitIndexError(IndexError, ValueError):
    """A unit index outside ``[0, H)`` (or ``[-H, H)``)."""


def _dropin_classes() -> tuple[type, ...]:
    from lstmkit import nn as lnn

    return (lnn.LSTM, lnn.GRU, lnn.RNN)


def is_recurrent(module: Any) -> bool:
    """Whether ``module`` emits records: a Keras-style ``LSTM``/``GRU``/``SimpleRNN`` layer or an
    ``lstmkit.nn`` ``LSTM``/``GRU``/``RNN`` drop-in."""
    return isinstance(module, KerasRNN) or isinstance(module, _dropin_classes())


def recurrent_paths(model: nn.Module) -> dict[int, tuple[str, nn.Module]]:
    """Every recurrent module of ``model`` by ``id``: ``(path, module)`` in model order.

    Paths join Keras layer names (``Layer.name``) and, for other torch modules, attribute names
    (keys and indices inside ``ModuleDict``/``ModuleList``), with ``/``; a container holding only
    Keras layers (a ``Sequential``'s) adds no segment. The first path under which a shared module
    is found wins; two different modules on the same path get ``#2``, ``#3`` … appended.
    """
    found: dict[int, tuple[str, nn.Module]] = {}
    used: set[str] = set()

    def join(prefix: str, seg: str) -> str:
        return f"{prefix}/{seg}" if prefix and seg else (prefix or seg)

    def visit(module: nn.Module, path: str) -> None:
        if is_recurrent(module) and id(module) not in found:
            unique, n = path, 1
            while unique in used:
                n += 1
                unique = f"{path}#{n}"
            used.add(unique)
            found[id(module)] = (unique, module)
        for attr, child in module.named_children():
            if isinstance(child, Layer):
                seg = child.name
            elif isinstance(child, (nn.ModuleDict, nn.ModuleList)) and all(
                isinstance(c, Layer) for c in child.children()
            ):
                seg = ""
            else:
                seg = attr
            visit(child, join(path, seg))

    from lstmkit.models import Model

    if isinstance(model, Model) or not (is_recurrent(model) or isinstance(model, Layer)):
        root = ""
    elif isinstance(model, Layer):
        root = model.name
    else:
        root = snake_case(type(model).__name__)
    visit(model, root)
    return found


def _kind(values: dict[str, Tensor]) -> str:
    if "c" in values:
        return "lstm"
    if "z" in values:
        return "gru"
    return "rnn"


class Trace:
    """Every step of one recurrent layer in one direction.

    Attributes:
        name: the key in the :class:`Recording` (``"lstm"``, ``"bidirectional/forward_lstm"``,
            ``"rnn/l0_reverse"``).
        layer: the path of the module that emitted it (the name without a drop-in's direction).
        direction: ``"forward"``/``"backward"`` (Keras-style layers) or ``"l0"``,
            ``"l0_reverse"``, ``"l1"`` … (drop-ins).
        kind: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        gates: the recorded names in display order (see :data:`GATES`).
        chunks: one dict per call, name -> ``(B_k, T_k, ·)`` tensors (detached, on the CPU).
        chunk_masks: the matching ``(B_k, T_k)`` bool masks.
    """

    def __init__(
        self, name: str, layer: str, direction: str, kind: str, gates: tuple[str, ...] = ()
    ) -> None:
        self.name, self.layer, self.direction, self.kind = name, layer, direction, kind
        # A user's cell (kind "custom", see lstmkit.layers.RNN) records its states and h.
        self.gates: tuple[str, ...] = GATES[kind] if kind in GATES else tuple(gates)
        self.chunks: list[dict[str, Tensor]] = []
        self.chunk_masks: list[Tensor] = []
        self._joined: tuple[dict[str, Tensor], Tensor] | None = None

    def __repr__(self) -> str:
        if not self.chunks:
            return f"Trace({self.name!r}, {self.kind}, empty)"
        return (
            f"Trace({self.name!r}, {_KIND_NAMES[self.kind]}, direction={self.direction!r}, "
            f"B={self.batch_size}, T={self.steps}, H={self.units()}, calls={len(self.chunks)})"
        )

    def _add(self, values: dict[str, Tensor], mask: Tensor) -> None:
        self.chunks.append(values)
        self.chunk_masks.append(mask)
        self._joined = None

    def _join(self) -> tuple[dict[str, Tensor], Tensor]:
        if self._joined is None:
            if len(self.chunks) == 1:
                self._joined = (self.chunks[0], self.chunk_masks[0])
            else:
                steps = max(m.shape[1] for m in self.chunk_masks)
                values = {}
                for g in self.chunks[0]:
                    parts = []
                    for chunk in self.chunks:
                        v = chunk[g]
                        pad = steps - v.shape[1]
                        if pad:
                            v = torch.cat([v, v.new_full((v.shape[0], pad, v.shape[2]), np.nan)], 1)
                        parts.append(v)
                    values[g] = torch.cat(parts, 0)
                masks = [
                    torch.cat([m, m.new_zeros(m.shape[0], steps - m.shape[1])], 1)
                    for m in self.chunk_masks
                ]
                self._joined = (values, torch.cat(masks, 0))
        return self._joined

    # -- access ----------------------------------------------------------------------------

    @property
    def values(self) -> dict[str, Tensor]:
        """Name -> ``(B, T, ·)`` tensor, every call concatenated along the batch."""
        return self._join()[0]

    @property
    def mask(self) -> Tensor:
        """``(B, T)`` bool, true at valid steps (false at masked and padded ones)."""
        return self._join()[1]

    @property
    def batch_size(self) -> int:
        return int(self.mask.shape[0])

    @property
    def steps(self) -> int:
        return int(self.mask.shape[1])

    def check_gate(self, gate: str) -> str:
        """``gate`` if this cell records it, else a :class:`RecordLookupError` naming the
        gates it has."""
        if gate not in self.gates:
            what = GATE_LABELS.get(gate, repr(gate))
            raise RecordLookupError(
                f"{self.name}: a {_KIND_NAMES[self.kind]} has no {what}; recorded values are "
                f"{', '.join(self.gates)} ({', '.join(GATE_LABELS[g] for g in self.gates)})"
            )
        return gate

    def __getitem__(self, gate: str) -> Tensor:
        """The ``(B, T, H)`` values of ``gate`` (``"f"``, ``"c"``, ``"h"`` …)."""
        return self.values[self.check_gate(gate)]

    def __contains__(self, gate: object) -> bool:
        return gate in self.gates

    def units(self, gate: str | None = None) -> int:
        """The number of units of ``gate`` (default: the cell's ``H``; ``h`` is ``P``-sized
        with a projection)."""
        gate = self.check_gate(gate) if gate is not None else self.gates[0]
        return int(self.values[gate].shape[-1])

    def check_unit(self, gate: str, unit: int) -> int:
        """``unit`` as an index in ``[0, H)``; negative indices count from the end."""
        n = self.units(gate)
        if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)):
            raise TypeError(f"{self.name}: unit must be an integer, got {type(unit).__name__}")
        if not -n <= unit < n:
            raise UnitIndexError(
                f"{self.name}: unit index {unit} is out of range for {gate!r} with {n} units "
                f"(valid: 0 … {n - 1}, or -{n} … -1)"
            )
        return int(unit) % n

    def unit(self, gate: str, unit: int) -> Tensor:
        """``(B, T)``: one unit of ``gate`` at every step."""
        return self[gate][..., self.check_unit(gate, unit)]

    def numpy(self) -> dict[str, np.ndarray]:
        """Name -> ``(B, T, ·)`` numpy array, plus ``"mask"`` ``(B, T)`` bool."""
        out = {g: self.values[g].numpy() for g in self.gates}
        out["mask"] = self.mask.numpy()
        return out

    def to_frame(
        self,
        gates: list[str] | tuple[str, ...] | None = None,
        units: list[int] | None = None,
        include_masked: bool = False,
    ) -> pd.DataFrame:
        """The tidy long table of this trace; see :meth:`Recording.to_frame`."""
        import pandas as pd

        gates = [self.check_gate(g) for g in (gates or self.gates)]
        mask = self.mask.numpy()
        frames = []
        for g in gates:
            arr = self.values[g].numpy()
            sel = np.arange(arr.shape[-1]) if units is None else np.asarray(units, dtype=np.int64)
            sel = np.asarray([self.check_unit(g, int(u)) for u in sel], dtype=np.int64)
            arr = arr[..., sel]
            if include_masked:
                b, t = np.nonzero(np.ones_like(mask))
            else:
                b, t = np.nonzero(mask)
            vals = arr[b, t]  # (N, U)
            n_units = len(sel)
            cols = {
                "batch": np.repeat(b, n_units),
                "time": np.repeat(t, n_units),
                "unit": np.tile(sel, len(b)),
                "value": vals.reshape(-1),
            }
            if include_masked:
                cols["valid"] = np.repeat(mask[b, t], n_units)
            frame = pd.DataFrame(cols)
            frame.insert(0, "gate", g)
            frames.append(frame)
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        df.insert(0, "direction", self.direction)
        df.insert(0, "layer", self.name)
        return df


class Recording:
    """What :func:`record` captured: one :class:`Trace` per recurrent layer and direction.

    ``rec[name]`` is a :class:`Trace` (see the module docstring for names); ``rec.names`` lists
    them in model order; ``rec.numpy()`` and ``rec.to_frame()`` give arrays and a tidy table.

    Args:
        model: any ``torch.nn.Module`` holding lstmkit recurrent layers (a Keras-style model or
            layer, an ``lstmkit.nn`` drop-in, or a torch module containing them).

    Raises:
        ValueError: ``model`` has no lstmkit recurrent layer.
    """

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"record: expected a model or layer (torch.nn.Module), got {type(model).__name__}"
            )
        self.model = model
        self._paths = recurrent_paths(model)
        if not self._paths:
            raise ValueError(_no_recurrent_message(model))
        self._order = {key: k for k, key in enumerate(self._paths)}
        self._traces: dict[str, Trace] = {}
        self._trace_order: dict[str, tuple[int, int]] = {}
        self._context: Any = None
        #: records emitted inside the context by modules that are not part of ``model``.
        self.ignored = 0

    # -- the context -------------------------------------------------------------------------

    def __enter__(self) -> Recording:
        if self._context is not None:
            raise RuntimeError("record: this recording is already active (contexts don't nest)")
        self._context = engines.recording(self._sink)
        self._context.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._context.__exit__(*exc)
        finally:
            self._context = None

    def _sink(
        self, owner: Any, direction: str, record: dict[str, Tensor], mask: Tensor | None
    ) -> None:
        entry = self._paths.get(id(owner))
        if entry is None:
            self.ignored += 1
            return
        path = entry[0]
        keras = isinstance(owner, KerasRNN)
        name = path if keras else f"{path}/{direction}" if path else direction
        values = {k: v.detach().to("cpu") for k, v in record.items()}
        first = next(iter(values.values()))
        batch, steps = first.shape[0], first.shape[1]
        if mask is None:
            m = torch.ones(batch, steps, dtype=torch.bool)
        else:
            m = mask.detach().to("cpu", torch.bool).reshape(batch, steps)
        trace = self._traces.get(name)
        if trace is None:
            core = getattr(owner, "_core", None) if keras else None
            if getattr(core, "kind", None) == "custom":
                trace = Trace(name, path, direction, "custom", (*core.gate_names, "h"))
            else:
                trace = Trace(name, path, direction, _kind(values))
            self._traces[name] = trace
            self._trace_order[name] = (self._order[id(owner)], len(self._traces))
        trace._add(values, m)

    # -- access ------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The recorded traces' names, in model order (then direction order)."""
        return sorted(self._traces, key=lambda n: self._trace_order[n])

    @property
    def layers(self) -> list[str]:
        """Paths of every recurrent module of the model (recorded or not)."""
        return [path for path, _ in self._paths.values()]

    def __len__(self) -> int:
        return len(self._traces)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self._traces

    def __getitem__(self, name: str) -> Trace:
        """The :class:`Trace` called ``name``."""
        if name in self._traces:
            return self._traces[name]
        if not self._traces:
            raise RecordLookupError(
                f"record: nothing was recorded (recurrent layers: {', '.join(self.layers)}); "
                f"call the model inside the `with record(model) as rec:` block"
            )
        under = [n for n in self.names if n.startswith(f"{name}/")]
        hint = f"; under {name!r}: {', '.join(under)}" if under else ""
        raise RecordLookupError(
            f"record: no recorded layer named {name!r}{hint}; recorded: {', '.join(self.names)}"
        )

    def items(self) -> list[tuple[str, Trace]]:
        return [(n, self._traces[n]) for n in self.names]

    def traces(self) -> list[Trace]:
        return [self._traces[n] for n in self.names]

    def select(self, prefix: str) -> list[Trace]:
        """Every trace named ``prefix`` or below it (``"bidirectional"`` gives both
        directions)."""
        out = [t for n, t in self.items() if n == prefix or n.startswith(f"{prefix}/")]
        if not out:
            self[prefix]  # raises with the list of names
        return out

    def numpy(self) -> dict[str, dict[str, np.ndarray]]:
        """Name -> (gate -> ``(B, T, ·)`` array, plus ``"mask"``)."""
        return {n: t.numpy() for n, t in self.items()}

    def to_frame(
        self,
        layers: list[str] | None = None,
        gates: list[str] | tuple[str, ...] | None = None,
        units: list[int] | None = None,
        include_masked: bool = False,
    ) -> pd.DataFrame:
        """A tidy long table: one row per (layer, direction, gate, batch, time, unit) with its
        ``value``; masked and padded steps are left out unless ``include_masked`` (then a bool
        ``valid`` column says which). ``layers``/``gates``/``units`` select (a gate must exist
        in every selected layer).
        """
        import pandas as pd

        names = layers if layers is not None else self.names
        frames = [
            self[n].to_frame(gates=gates, units=units, include_masked=include_masked) for n in names
        ]
        if not frames:
            return pd.DataFrame(columns=["layer", "direction", "gate", "batch", "time", "unit"])
        df = pd.concat(frames, ignore_index=True)
        for col in ("layer", "direction", "gate"):
            df[col] = df[col].astype("category")
        return df

    def clear(self) -> None:
        """Forget everything recorded so far."""
        self._traces.clear()
        self._trace_order.clear()
        self.ignored = 0

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.traces()) or "nothing recorded"
        return f"Recording({inner})"


def _no_recurrent_message(model: nn.Module) -> str:
    label = getattr(model, "name", None) or type(model).__name__
    torch_rnns = [
        n for n, m in model.named_modules() if isinstance(m, nn.RNNBase) and not is_recurrent(m)
    ]
    hint = ""
    if torch_rnns:
        hint = (
            f" (torch.nn recurrent modules {', '.join(n or '<root>' for n in torch_rnns)} "
            f"cannot be recorded: use the lstmkit.nn drop-ins instead)"
        )
    return (
        f"record: {label!r} has no recurrent layers to record; expected an lstmkit LSTM, GRU or "
        f"SimpleRNN layer (lstmkit.layers) or an lstmkit.nn LSTM/GRU/RNN drop-in{hint}"
    )


def record(model: nn.Module) -> Recording:
    """Record every step of every recurrent layer of ``model`` while the context is active.

    ``with record(model) as rec: model.predict(x)`` (or ``model(x)``, ``fit``, a drop-in's call);
    then ``rec["lstm"]["f"]`` is the forget gate ``(B, T, H)``. See :class:`Recording` and
    :class:`Trace`.

    Raises:
        ValueError: ``model`` has no lstmkit recurrent layer.
        TypeError: ``model`` is not a torch module.
    """
    return Recording(model)
