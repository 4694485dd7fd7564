"""Engines: how a whole sequence runs. One interface, chosen automatically, interchangeable.

* ``"reference"`` — the readable loop over :mod:`lstmkit.functional`; the specification.
* ``"fused"`` — torch's fused kernels (oneDNN on CPU, cuDNN on CUDA) for plain cells.
* ``"compiled"`` — lstmkit's own C++ kernel (when built), every variant, gates for free.

``engine="auto"`` picks, in order of preference, the first registered engine that supports the
configuration (``ENGINE_PREFERENCE``); an explicit name is honoured or refused with the reason.

>>> import torch
>>> from lstmkit.cells import LSTMCell
>>> cell = LSTMCell(3, 4)
>>> res = run(cell, torch.randn(2, 5, 3))
>>> with torch.no_grad():  # a plain LSTM in inference runs on oneDNN
...     tuple(res.outputs.shape), choose(cell, torch.randn(2, 5, 3)).name
((2, 5, 4), 'fused')
"""

from __future__ import annotations

from torch import Tensor

from lstmkit.cells import RecurrentCell
from lstmkit.engines.base import (
    Engine,
    RunOptions,
    SequenceResult,
    StackResult,
    State,
    active_transforms,
    emit,
    recording,
    recording_active,
)
from lstmkit.engines.compiled import CompiledEngine
from lstmkit.engines.fused import FusedEngine
from lstmkit.engines.reference import ReferenceEngine

ENGINES: dict[str, Engine] = {}
ENGINE_PREFERENCE: list[str] = []


def register(engine: Engine, *, preferred: bool = False) -> None:
    """Add an engine; ``preferred`` puts it first in the automatic choice."""
    ENGINES[engine.name] = engine
    if engine.name in ENGINE_PREFERENCE:
        ENGINE_PREFERENCE.remove(engine.name)
    if preferred:
        ENGINE_PREFERENCE.insert(0, engine.name)
    else:
        ENGINE_PREFERENCE.append(engine.name)


register(FusedEngine())
register(ReferenceEngine())
# Preferred on CPU; it declines (auto only) where torch's fused kernel is measured faster.
register(CompiledEngine(), preferred=True)

ENGINE_NAMES = ("auto", "reference", "fused", "compiled")


def _check_name(engine: str) -> None:
    if engine not in ENGINE_NAMES:
        raise ValueError(f"engine: expected one of {ENGINE_NAMES}, got {engine!r}")


def _get(engine: str) -> Engine:
    _check_name(engine)
    if engine not in ENGINES or not ENGINES[engine].available():
        raise ValueError(
            f"engine={engine!r} is not available on this machine "
            f"(available: {', '.join(n for n, e in ENGINES.items() if e.available())})"
        )
    return ENGINES[engine]


def for_recording(engine: str, record: bool) -> str:
    """The engine a layer should ask for: its own setting, except that when gates are to be
    recorded (the glass box, ``return_gates``) an engine that cannot record them yields to
    ``"auto"``. All engines compute the same numbers, so this changes speed, never results."""
    if record and engine in ENGINES and not ENGINES[engine].records:
        return "auto"
    return engine


def choose(
    cell: RecurrentCell, x: Tensor, opts: RunOptions | None = None, engine: str = "auto"
) -> Engine:
    """The engine that will run ``cell`` on ``x`` with ``opts``.

    Raises:
        ValueError: an explicitly named engine that cannot run this configuration, with why.
    """
    opts = opts or RunOptions()
    if engine != "auto":
        chosen = _get(engine)
        reason = chosen.unsupported(cell, x, opts)
        if reason:
            raise ValueError(f"engine={engine!r} cannot run this {cell.kind} layer: {reason}")
        return chosen
    for name in ENGINE_PREFERENCE:
        candidate = ENGINES[name]
        if (
            candidate.available()
            and candidate.unsupported(cell, x, opts) is None
            and candidate.declines(cell, x, opts) is None
        ):
            return candidate
    return ENGINES["reference"]


def run(
    cell: RecurrentCell,
    x: Tensor,
    state: State | None = None,
    opts: RunOptions | None = None,
    engine: str = "auto",
) -> SequenceResult:
    """Run ``cell`` over ``x (B, T, I)`` from ``state`` (``None`` = zeros)."""
    opts = opts or RunOptions()
    if state is None:
        state = cell.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
    return choose(cell, x, opts, engine).run(cell, x, state, opts)


def choose_stack(
    cells: list[list[RecurrentCell]], x: Tensor, record: bool = False, engine: str = "auto"
) -> Engine:
    """The engine for a whole stack (see :meth:`Engine.run_stack`)."""
    if engine != "auto":
        chosen = _get(engine)
        reason = chosen.unsupported_stack(cells, x, record)
        if reason:
            raise ValueError(f"engine={engine!r} cannot run this stack: {reason}")
        return chosen
    for name in ENGINE_PREFERENCE:
        candidate = ENGINES[name]
        if (
            candidate.available()
            and candidate.unsupported_stack(cells, x, record) is None
            and candidate.declines_stack(cells, x, record) is None
        ):
            return candidate
    return ENGINES["reference"]


__all__ = [
    "ENGINES",
    "ENGINE_NAMES",
    "Engine",
    "RunOptions",
    "SequenceResult",
    "StackResult",
    "active_transforms",
    "choose",
    "choose_stack",
    "emit",
    "for_recording",
    "recording",
    "recording_active",
    "register",
    "run",
]
