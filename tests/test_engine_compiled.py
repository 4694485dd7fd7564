"""The compiled engine (``lstmkit.engines.compiled``) equals the reference loop.

* Every variant × mask pattern (none, right-padded, left-padded, gaps) × direction × dropout
  masks (none, shared, per gate), float32 (≤ 1e-5) and float64 (≤ 1e-10): outputs, final states,
  records, and the gradients of the input, the initial state and every parameter — with a batch
  large enough to be split over the threads.
* ``gradcheck`` in float64 for every variant (with a mask, reverse and recurrent dropout).
* The recording: the reference's keys and shapes, ``c_t = f_t c_{t-1} + i_t g_t``, and
  differentiable like the reference's.
* A failed build warns once and falls back; CUDA and other activations are refused with a reason.

Skipped as a whole only if the extension cannot be built on this machine.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
import torch

from lstmkit import engines
from lstmkit.cells import GRUCell, LSTMCell, RecurrentCell, SimpleRNNCell
from lstmkit.engines import RunOptions, compiled
from lstmkit.engines.compiled import CompiledEngine
from lstmkit.engines.reference import ReferenceEngine
from lstmkit.functional import LSTMState

ENGINE = CompiledEngine()
REFERENCE = ReferenceEngine()

if compiled.load_extension() is None:
    pytest.skip(
        f"the compiled engine cannot be built here: {compiled.unavailable_reason()}",
        allow_module_level=True,
    )

CELLS: dict[str, Callable[..., RecurrentCell]] = {
    "lstm": lambda i, h, **kw: LSTMCell(i, h, torch_init=True, **kw),
    "lstm_keras": lambda i, h, **kw: LSTMCell(i, h, recurrent_bias=False, **kw),
    "lstm_peephole": lambda i, h, **kw: LSTMCell(i, h, peephole=True, **kw),
    "lstm_layer_norm": lambda i, h, **kw: LSTMCell(i, h, layer_norm=True, **kw),
    "lstm_coupled": lambda i, h, **kw: LSTMCell(i, h, coupled=True, **kw),
    "lstm_proj": lambda i, h, **kw: LSTMCell(i, h, proj_size=h - 2, **kw),
    "lstm_all": lambda i, h, **kw: LSTMCell(
        i, h, peephole=True, layer_norm=True, coupled=True, proj_size=h - 1, **kw
    ),
    "gru": lambda i, h, **kw: GRUCell(i, h, **kw),
    "gru_reset_before": lambda i, h, **kw: GRUCell(
        i, h, reset_after=False, recurrent_bias=False, **kw
    ),
    "gru_reset_before_2bias": lambda i, h, **kw: GRUCell(i, h, reset_after=False, **kw),
    "rnn": lambda i, h, **kw: SimpleRNNCell(i, h, **kw),
    "rnn_relu": lambda i, h, **kw: SimpleRNNCell(i, h, activation="relu", **kw),
}

BATCH, STEPS, INPUTS, HIDDEN = 9, 6, 3, 5  # 9 rows: two uneven chunks on two threads


def make_cell(kind: str, dtype: torch.dtype, inputs: int = INPUTS, hidden: int = HIDDEN):
    """A cell with every parameter random, so that peepholes, gains and biases all matter."""
    torch.manual_seed(0)
    cell = CELLS[kind](inputs, hidden, dtype=dtype)
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0.0, 0.5)
    return cell


def random_state(cell: RecurrentCell, batch: int, dtype: torch.dtype) -> tuple:
    g = torch.Generator().manual_seed(1)
    values = [torch.randn(batch, s, generator=g, dtype=dtype) for s in cell.state_sizes()]
    return LSTMState(*values) if cell.kind == "lstm" else tuple(values)


def make_mask(pattern: str, batch: int = BATCH, steps: int = STEPS) -> torch.Tensor | None:
    """(B, T) masks: right-padded, left-padded, or with gaps (and one row that is all masked)."""
    if pattern == "none":
        return None
    g = torch.Generator().manual_seed(2)
    lengths = torch.randint(1, steps + 1, (batch,), generator=g)
    t = torch.arange(steps)
    if pattern == "right":
        return t < lengths[:, None]
    if pattern == "left":
        return t >= (steps - lengths)[:, None]
    mask = torch.rand(batch, steps, generator=g) > 0.4
    mask[0] = False
    mask[1] = True
    return mask


def dropout_masks(cell: RecurrentCell, kind: str, batch: int, dtype: torch.dtype) -> dict:
    if kind == "none":
        return {}
    g = torch.Generator().manual_seed(3)
    blocks = (cell.gate_blocks,) if kind == "per_gate" else ()

    def mask(size: int) -> torch.Tensor:
        return (torch.rand(*blocks, batch, size, generator=g) > 0.3).to(dtype) / 0.7

    return {
        "input_dropout_mask": mask(cell.input_size),
        "recurrent_dropout_mask": mask(cell.output_size),
    }


def run_with_grads(engine, cell, x, state, opts: RunOptions):
    """Outputs, final state, record, and the gradients of a random projection of all of them
    with respect to x, the initial state and every parameter."""
    x = x.detach().clone().requires_grad_()
    values = [s.detach().clone().requires_grad_() for s in state]
    state = LSTMState(*values) if cell.kind == "lstm" else tuple(values)
    res = engine.run(cell, x, state, opts)
    g = torch.Generator().manual_seed(4)
    tensors = [res.outputs, *res.state]
    if res.record:
        tensors += [res.record[k] for k in sorted(res.record)]
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=x.dtype)).sum() for t in tensors)
    targets = [x, *state, *cell.parameters()]
    grads = torch.autograd.grad(loss, targets, allow_unused=True)
    return res, [torch.zeros_like(t) if d is None else d for t, d in zip(targets, grads)]


def compare(cell, x, state, opts: RunOptions, assert_close) -> None:
    assert ENGINE.unsupported(cell, x, opts) is None
    want, want_grads = run_with_grads(REFERENCE, cell, x, state, opts)
    got, got_grads = run_with_grads(ENGINE, cell, x, state, opts)
    assert_close(got.outputs, want.outputs, "outputs")
    assert type(got.state) is type(want.state)
    for k, (a, b) in enumerate(zip(got.state, want.state)):
        assert_close(a, b, f"final state[{k}]")
    if opts.record:
        assert set(got.record) == set(want.record)
        for key in want.record:
            assert_close(got.record[key], want.record[key], f"record[{key!r}]")
    labels = ["x"] + [f"state[{k}]" for k in range(len(state))]
    labels += [n for n, _ in cell.named_parameters()]
    for label, a, b in zip(labels, got_grads, want_grads):
        assert_close(a, b, f"d/d {label}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["fp32", "fp64"])
@pytest.mark.parametrize("dropout", ["none", "shared", "per_gate"])
@pytest.mark.parametrize("mask", ["none", "right", "left", "gaps"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_equals_reference(kind, mask, dropout, dtype, assert_close) -> None:
    cell = make_cell(kind, dtype)
    x = torch.randn(BATCH, STEPS, INPUTS, dtype=dtype)
    state = random_state(cell, BATCH, dtype)
    drop = dropout_masks(cell, dropout, BATCH, dtype)
    # forward with carried outputs; reverse with zero outputs, recording (and back-propagating
    # into the record)
    for reverse in (False, True):
        opts = RunOptions(
            mask=make_mask(mask),
            reverse=reverse,
            zero_output_for_mask=reverse,
            record=reverse,
            **drop,
        )
        compare(cell, x, state, opts, assert_close)


@pytest.mark.parametrize("kind", ["lstm", "lstm_all", "gru", "rnn"])
def test_equals_reference_larger(kind, assert_close) -> None:
    """Sizes where the vectorised loops run full vectors and the batch splits over threads."""
    dtype = torch.float32
    torch.manual_seed(0)
    cell = CELLS[kind](24, 40, dtype=dtype)  # the cell's own initialisers: realistic dynamics
    x = torch.randn(16, 30, 24, dtype=dtype)
    opts = RunOptions(mask=make_mask("gaps", 16, 30), record=True)
    compare(cell, x, random_state(cell, 16, dtype), opts, assert_close)


def _engine_function(kind: str, reverse: bool = True, record: bool = False, zero: bool = False):
    """``f(x, *state, *params)`` -> the outputs, final state (and record) of the compiled engine
    on a small float64 problem with a mask and recurrent dropout, and the arguments to check."""
    cell = make_cell(kind, torch.float64, inputs=2, hidden=3)
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in cell.named_parameters()]
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    state = [s.requires_grad_() for s in random_state(cell, 2, torch.float64)]
    g = torch.Generator().manual_seed(5)
    rec_mask = (torch.rand(cell.gate_blocks, 2, cell.output_size, generator=g) > 0.3).double()
    mask = torch.tensor([[1, 0, 1, 1], [0, 1, 1, 0]], dtype=torch.bool)
    n_state = len(state)

    def f(x, *rest):
        saved = dict(cell._parameters)
        try:
            for n, p in zip(names, rest[n_state:]):
                cell._parameters[n] = p
            st = rest[:n_state]
            st = LSTMState(*st) if cell.kind == "lstm" else tuple(st)
            opts = RunOptions(
                mask=mask,
                reverse=reverse,
                recurrent_dropout_mask=rec_mask,
                record=record,
                zero_output_for_mask=zero,
            )
            res = ENGINE.run(cell, x, st, opts)
            records = [res.record[k] for k in sorted(res.record)] if record else []
            return (res.outputs, *res.state, *records)
        finally:
            cell._parameters.update(saved)

    return f, (x, *state, *params)


@pytest.mark.parametrize("kind", list(CELLS))
def test_gradcheck(kind) -> None:
    f, args = _engine_function(kind)
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", list(CELLS))
def test_gradgradcheck(kind) -> None:
    """Second derivatives (``create_graph=True``) are right: the kernel's backward yields to a
    differentiable twin (``engines/twin.py``) that is checked here against finite differences
    of the kernel's own first derivatives, in both directions, with masks and the record."""
    for reverse, record, zero in ((True, False, False), (False, True, True)):
        f, args = _engine_function(kind, reverse=reverse, record=record, zero=zero)
        assert torch.autograd.gradgradcheck(f, args, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm_all", "gru", "rnn"])
def test_twin_equals_kernel_forward(kind, assert_close) -> None:
    """The twin computes the kernel's outputs exactly: every buffer the kernel returns."""
    from lstmkit.engines import twin

    f, args = _engine_function(kind, reverse=False, record=True, zero=False)
    seen = {}

    def spy(self_fn):
        original = self_fn.apply

        def wrapped(*a):
            seen["args"] = a
            seen["out"] = original(*a)
            return seen["out"]

        return wrapped

    fn_cls = {"lstm_all": compiled._LSTMSequence, "gru": compiled._GRUSequence}.get(
        kind, compiled._RNNSequence
    )
    twin_fn = {"lstm_all": twin.lstm_sequence, "gru": twin.gru_sequence}.get(
        kind, twin.rnn_sequence
    )
    original_apply = fn_cls.apply
    try:
        fn_cls.apply = spy(fn_cls)
        f(*args)
    finally:
        fn_cls.apply = original_apply
    for k, (a, b) in enumerate(zip(twin_fn(*seen["args"]), seen["out"])):
        assert_close(a, b, f"output {k}")


def test_first_order_backward_stays_on_the_kernel(monkeypatch) -> None:
    """Plain training never pays for the twin: it runs only under ``create_graph=True``."""
    from lstmkit.engines import twin

    calls = []
    original = twin.differentiate
    monkeypatch.setattr(twin, "differentiate", lambda *a: calls.append(1) or original(*a))
    f, args = _engine_function("lstm")
    out = f(*args)
    torch.autograd.grad(sum(o.sum() for o in out), args)
    assert calls == []
    torch.autograd.grad(sum(o.sum() for o in f(*args)), args, create_graph=True)
    assert calls == [1]


@pytest.mark.parametrize("kind", ["lstm", "lstm_coupled", "lstm_all", "gru", "rnn"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_recording(kind, reverse) -> None:
    dtype = torch.float64
    cell = make_cell(kind, dtype)
    x = torch.randn(BATCH, STEPS, INPUTS, dtype=dtype)
    state = random_state(cell, BATCH, dtype)
    opts = RunOptions(record=True, reverse=reverse, mask=make_mask("gaps"))
    got = ENGINE.run(cell, x, state, opts).record
    want = REFERENCE.run(cell, x, state, opts).record
    assert set(got) == set(want)
    for key in want:
        assert got[key].shape == want[key].shape, key
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=1e-12)
    if cell.kind == "lstm":
        # c_t = f_t c_{t-1} + i_t g_t where the step is valid (c is carried where it is masked)
        c0 = state[1].unsqueeze(1)
        c_prev = (
            torch.cat([got["c"][:, 1:], c0], 1) if reverse else torch.cat([c0, got["c"][:, :-1]], 1)
        )
        valid = opts.mask.unsqueeze(-1)
        expected = torch.where(valid, got["f"] * c_prev + got["i"] * got["g"], c_prev)
        torch.testing.assert_close(got["c"], expected, rtol=0, atol=1e-12)
        if cell.coupled:
            torch.testing.assert_close(got["f"], 1 - got["i"], rtol=0, atol=0)


def test_recording_through_layers_uses_the_compiled_engine() -> None:
    from lstmkit.layers.recurrent import LSTM

    layer = LSTM(6, return_sequences=True, layer_norm=True, engine="compiled")
    x = torch.randn(4, 7, 3)
    seen = []
    with engines.recording(lambda owner, direction, record, mask: seen.append(record)):
        out = layer(x)
    assert len(seen) == 1 and set(seen[0]) == {"i", "f", "g", "o", "c", "h"}
    torch.testing.assert_close(seen[0]["h"], out, rtol=0, atol=0)
    assert seen[0]["i"].shape == (4, 7, 6)


def test_float32_sequence_is_stable_over_long_sequences(assert_close) -> None:
    """A long fp32 run stays within the tolerance (the fast exp/tanh are ≤ 2 ulp)."""
    cell = make_cell("lstm", torch.float32, inputs=8, hidden=16)
    with torch.no_grad():
        for p in cell.parameters():
            p.mul_(0.5)
    x = torch.randn(8, 200, 8)
    state = random_state(cell, 8, torch.float32)
    got = ENGINE.run(cell, x, state, RunOptions()).outputs
    want = REFERENCE.run(cell, x, state, RunOptions()).outputs
    assert_close(got, want, "outputs after 200 steps")


def test_refusals_name_the_reason() -> None:
    cell = make_cell("lstm", torch.float32)
    x = torch.randn(2, 3, INPUTS)
    assert "CPU" in ENGINE.unsupported(cell, x.to("meta"), RunOptions())
    assert "float32" in ENGINE.unsupported(cell, x.half(), RunOptions())
    hard = LSTMCell(INPUTS, HIDDEN, recurrent_activation="hard_sigmoid")
    assert "activation" in ENGINE.unsupported(hard, x, RunOptions())
    assert ENGINE.unsupported(make_cell("lstm_all", torch.float32), x, RunOptions()) is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert "autocast" in ENGINE.unsupported(cell, x, RunOptions())


def test_autocast_runs_on_another_engine() -> None:
    """Under bfloat16 autocast the input projection comes out bfloat16, which the kernel does
    not take: auto-selection must pass the layer to an engine that runs it."""
    cell = make_cell("lstm_layer_norm", torch.float32)
    x = torch.randn(2, 3, INPUTS)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        engine = engines.choose(cell, x)
        assert engine.name != "compiled"
        out = engine.run(cell, x, cell.initial_state(2), RunOptions())
    want = ReferenceEngine().run(cell, x, cell.initial_state(2), RunOptions())
    torch.testing.assert_close(out.outputs.float(), want.outputs, atol=5e-2, rtol=0)


def test_auto_selection_prefers_compiled_where_fused_cannot_run() -> None:
    x = torch.randn(2, 3, INPUTS)
    for kind in ("lstm_layer_norm", "lstm_peephole", "gru_reset_before"):
        assert engines.choose(make_cell(kind, torch.float32), x).name == "compiled"
    plain = make_cell("lstm", torch.float32)
    assert engines.choose(plain, x, RunOptions(record=True)).name == "compiled"
    masked = RunOptions(mask=torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    assert engines.choose(plain, x, masked).name == "compiled"


def test_auto_selection_between_compiled_and_fused() -> None:
    """Where both run: compiled for training, GRU and SimpleRNN; oneDNN for LSTM inference."""
    x = torch.randn(2, 3, INPUTS)
    plain, gru = make_cell("lstm", torch.float32), make_cell("gru", torch.float32)
    assert engines.choose(plain, x).name == "compiled"
    assert engines.choose(gru, x).name == "compiled"
    with torch.no_grad():
        assert engines.choose(plain, x).name == "fused"
        assert engines.choose(gru, x).name == "compiled"
        assert engines.choose(make_cell("lstm_proj", torch.float32), x).name == "compiled"
    wide = LSTMCell(INPUTS, 1024)  # GEMM-bound: oneDNN measured faster (benchmarks/RESULTS.md)
    assert engines.choose(wide, x).name == "fused"
    stack = [[plain]]
    assert engines.choose_stack(stack, x).name == "compiled"
    with torch.no_grad():
        assert engines.choose_stack(stack, x).name == "fused"


@pytest.mark.parametrize("kind", ["lstm", "lstm_all", "gru", "gru_reset_before", "rnn"])
def test_inference_path_equals_reference(kind) -> None:
    """Without gradients nothing per step is stored; the numbers are the same."""
    cell = make_cell(kind, torch.float64)
    x = torch.randn(BATCH, STEPS, INPUTS, dtype=torch.float64)
    state = random_state(cell, BATCH, torch.float64)
    opts = RunOptions(mask=make_mask("gaps"), reverse=True)
    with torch.no_grad():
        got, want = ENGINE.run(cell, x, state, opts), REFERENCE.run(cell, x, state, opts)
    torch.testing.assert_close(got.outputs, want.outputs, rtol=0, atol=1e-12)
    for a, b in zip(got.state, want.state):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_failed_build_warns_once_and_falls_back(monkeypatch) -> None:
    monkeypatch.setattr(compiled, "_ops", None)
    monkeypatch.setattr(compiled, "_error", None)

    def fail(verbose: bool = False):
        raise RuntimeError("simulated compiler failure")

    monkeypatch.setattr(compiled, "_build", fail)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not CompiledEngine().available()
        assert not CompiledEngine().available()
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "simulated compiler failure" in messages[0]
    cell = make_cell("lstm_layer_norm", torch.float32)
    assert engines.choose(cell, torch.randn(2, 3, INPUTS)).name == "reference"
