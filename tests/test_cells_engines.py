"""Cells and engines: every engine equals the reference loop, and the reference loop is right.

* Every registered, available engine (``lstmkit.engines.ENGINES``: ``fused``, and ``compiled``
  once it is registered) is compared with ``reference`` — outputs, final states and the
  gradients of all parameters, inputs and initial states, fp32 ≤ 1e-5 and fp64 ≤ 1e-10 — for
  every configuration it claims to support (``engine.unsupported(...) is None``). Plain cells
  must be supported by ``fused``, so a refusal cannot hide a regression.
* The reference loop's masking is checked against an independent per-row loop written here
  (Keras's semantics, see ``tests/reference/KERAS_NOTES.md``), over hypothesis-drawn masks.
* ``gradcheck`` in float64 for every cell variant on every engine that supports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from lstmkit import engines
from lstmkit.cells import GRUCell, LSTMCell, RecurrentCell, SimpleRNNCell
from lstmkit.engines import RunOptions
from lstmkit.functional import LSTMState

try:  # lstmkit's own compiled engine registers itself on import, once it exists
    importlib.import_module("lstmkit.engines.compiled")
except ModuleNotFoundError as exc:
    if exc.name != "lstmkit.engines.compiled":
        raise

# torch itself warns that oneDNN has no projection kernel (it falls back to its own)
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

DTYPES = [torch.float32, torch.float64]
AVAILABLE = sorted(n for n, e in engines.ENGINES.items() if e.available())
FAST = [n for n in AVAILABLE if n != "reference"]

CELLS: dict[str, Callable[..., RecurrentCell]] = {
    "lstm": lambda i, h, **kw: LSTMCell(i, h, torch_init=True, **kw),
    "lstm_keras": lambda i, h, **kw: LSTMCell(i, h, recurrent_bias=False, **kw),
    "lstm_nobias": lambda i, h, **kw: LSTMCell(i, h, bias=False, **kw),
    "lstm_proj": lambda i, h, **kw: LSTMCell(i, h, proj_size=h - 1, **kw),
    "lstm_peephole": lambda i, h, **kw: LSTMCell(i, h, peephole=True, **kw),
    "lstm_layer_norm": lambda i, h, **kw: LSTMCell(i, h, layer_norm=True, **kw),
    "lstm_coupled": lambda i, h, **kw: LSTMCell(i, h, coupled=True, **kw),
    "lstm_all": lambda i, h, **kw: LSTMCell(
        i, h, peephole=True, layer_norm=True, coupled=True, proj_size=h - 1, **kw
    ),
    "lstm_hard_sigmoid": lambda i, h, **kw: LSTMCell(
        i, h, recurrent_activation="hard_sigmoid", **kw
    ),
    "gru": lambda i, h, **kw: GRUCell(i, h, **kw),
    "gru_reset_before": lambda i, h, **kw: GRUCell(
        i, h, reset_after=False, recurrent_bias=False, **kw
    ),
    "rnn": lambda i, h, **kw: SimpleRNNCell(i, h, **kw),
    "rnn_relu": lambda i, h, **kw: SimpleRNNCell(i, h, activation="relu", **kw),
}
# What torch's fused kernels compute; the fused engine must accept these.
FUSED_MUST_SUPPORT = {"lstm", "lstm_keras", "lstm_nobias", "lstm_proj", "gru", "rnn", "rnn_relu"}


def make_cell(kind: str, i: int = 3, h: int = 4, dtype=torch.float64, seed: int = 0):
    """A cell with every parameter random (so that peepholes, gains … all matter)."""
    torch.manual_seed(seed)
    cell = CELLS[kind](i, h, dtype=dtype)
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_(0.0, 0.5)
    return cell


def random_state(cell: RecurrentCell, batch: int, dtype, seed: int = 1) -> tuple:
    g = torch.Generator().manual_seed(seed)
    values = [torch.randn(batch, s, generator=g, dtype=dtype) for s in cell.state_sizes()]
    return LSTMState(*values) if cell.kind == "lstm" else tuple(values)


def as_state(cell: RecurrentCell, tensors) -> tuple:
    return LSTMState(*tensors) if cell.kind == "lstm" else tuple(tensors)


def run_with_grads(name: str, cell: RecurrentCell, x, state, opts: RunOptions):
    """Run one engine; return (result, grads of a random projection of outputs and states with
    respect to x, the initial state and every parameter)."""
    x = x.detach().clone().requires_grad_()
    state = as_state(cell, [s.detach().clone().requires_grad_() for s in state])
    res = engines.ENGINES[name].run(cell, x, state, opts)
    g = torch.Generator().manual_seed(99)
    loss = (res.outputs * torch.randn(res.outputs.shape, generator=g, dtype=x.dtype)).sum()
    for s in res.state:
        loss = loss + (s * torch.randn(s.shape, generator=g, dtype=x.dtype)).sum()
    targets = [x, *state, *cell.parameters()]
    grads = torch.autograd.grad(loss, targets, allow_unused=True)
    return res, [torch.zeros_like(t) if gr is None else gr for t, gr in zip(targets, grads)]


def compare_engines(name: str, cell, x, state, opts: RunOptions, assert_close) -> None:
    ref, ref_grads = run_with_grads("reference", cell, x, state, opts)
    got, got_grads = run_with_grads(name, cell, x, state, opts)
    assert_close(got.outputs, ref.outputs, f"{name} outputs")
    assert len(got.state) == len(ref.state)
    assert type(got.state) is type(ref.state), f"{name}: state type {type(got.state).__name__}"
    for k, (a, b) in enumerate(zip(got.state, ref.state)):
        assert_close(a, b, f"{name} final state[{k}]")
    labels = ["x"] + [f"state[{k}]" for k in range(len(state))]
    labels += [n for n, _ in cell.named_parameters()]
    for label, a, b in zip(labels, got_grads, ref_grads):
        assert_close(a, b, f"{name} d/d {label}")
    if opts.record:
        assert got.record is not None and set(got.record) == set(ref.record)
        for key in ref.record:
            assert_close(got.record[key], ref.record[key], f"{name} record[{key!r}]")


def supported(name: str, cell, x, opts: RunOptions) -> bool:
    return engines.ENGINES[name].unsupported(cell, x, opts) is None


def cell_kind_of(cell) -> str:
    return getattr(cell, "_test_kind", "")


def _cell(kind: str, dtype, **kw) -> RecurrentCell:
    cell = make_cell(kind, dtype=dtype, **kw)
    cell._test_kind = kind
    return cell


# -- every engine equals the reference ------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp64"])
@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("name", FAST)
def test_engine_equals_reference(name, kind, reverse, dtype, assert_close) -> None:
    cell = _cell(kind, dtype)
    x = torch.randn(3, 6, 3, dtype=dtype)
    opts = RunOptions(reverse=reverse)
    if not supported(name, cell, x, RunOptions()):
        assert not (name == "fused" and kind in FUSED_MUST_SUPPORT), "fused refuses a plain cell"
        pytest.skip(f"{name} does not run {kind}")
    if not supported(name, cell, x, opts):
        pytest.skip(f"{name} does not run {kind} with {opts}")
    compare_engines(name, cell, x, random_state(cell, 3, dtype), opts, assert_close)


MASKS = {
    "all_valid": [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1]],
    "right": [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]],
    "left": [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]],
    "gaps": [[1, 0, 1, 1, 0], [0, 0, 1, 1, 1]],
    "empty_row": [[0, 0, 0, 0, 0], [1, 0, 1, 0, 1]],
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp64"])
@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("kind", ["lstm", "lstm_peephole", "gru", "gru_reset_before", "rnn"])
@pytest.mark.parametrize("zero_output", [False, True], ids=["carry", "zero"])
@pytest.mark.parametrize("name", FAST)
def test_engine_equals_reference_with_masks(name, zero_output, kind, mask, dtype, assert_close):
    cell = _cell(kind, dtype)
    x = torch.randn(2, 5, 3, dtype=dtype)
    m = torch.tensor(MASKS[mask], dtype=torch.bool)
    for reverse in (False, True):
        opts = RunOptions(mask=m, reverse=reverse, zero_output_for_mask=zero_output)
        if not supported(name, cell, x, opts):
            assert not bool(m.all()) or kind not in FUSED_MUST_SUPPORT or name != "fused"
            continue
        compare_engines(name, cell, x, random_state(cell, 2, dtype), opts, assert_close)


@pytest.mark.parametrize("kind", ["lstm", "lstm_proj", "lstm_all", "gru", "rnn"])
@pytest.mark.parametrize("name", FAST)
def test_engine_equals_reference_with_dropout_masks_and_recording(name, kind, assert_close):
    dtype = torch.float64
    cell = _cell(kind, dtype)
    x = torch.randn(2, 5, 3, dtype=dtype)  # T = 5 as MASKS
    g = torch.Generator().manual_seed(5)
    in_mask = (torch.rand(2, 3, generator=g) > 0.3).to(dtype) / 0.7
    rec_mask = (torch.rand(cell.gate_blocks, 2, cell.output_size, generator=g) > 0.3).to(dtype)
    options = [
        RunOptions(input_dropout_mask=in_mask),
        RunOptions(recurrent_dropout_mask=rec_mask, reverse=True),
        RunOptions(record=True),
        RunOptions(record=True, reverse=True, mask=torch.tensor(MASKS["gaps"], dtype=torch.bool)),
    ]
    ran = 0
    for opts in options:
        if supported(name, cell, x, opts):
            compare_engines(name, cell, x, random_state(cell, 2, dtype), opts, assert_close)
            ran += 1
    if name == "fused" and kind in FUSED_MUST_SUPPORT:
        assert ran >= 1  # the input dropout mask is a plain multiplication


STACKS = [
    ("lstm", 1, False),
    ("lstm", 2, True),
    ("lstm_proj", 3, True),
    ("gru", 2, True),
    ("rnn", 2, False),
    ("rnn_relu", 1, True),
]


def _stack(kind: str, layers: int, bidirectional: bool, dtype) -> list[list[RecurrentCell]]:
    directions = 2 if bidirectional else 1
    out = []
    for k in range(layers):
        layer = []
        for d in range(directions):
            probe = CELLS[kind](3, 4, dtype=dtype)
            size = 3 if k == 0 else directions * probe.output_size
            layer.append(_cell(kind, dtype, i=size, seed=10 * k + d))
        out.append(layer)
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "fp64"])
@pytest.mark.parametrize(("kind", "layers", "bidirectional"), STACKS)
@pytest.mark.parametrize("name", FAST)
def test_run_stack_equals_reference(name, kind, layers, bidirectional, dtype, assert_close):
    cells = _stack(kind, layers, bidirectional, dtype)
    x = torch.randn(3, 5, 3, dtype=dtype)
    if engines.ENGINES[name].unsupported_stack(cells, x, False) is not None:
        assert name != "fused", "fused must run a stack of plain cells"
        pytest.skip(f"{name} does not run this stack")

    def run(engine_name):
        xi = x.clone().requires_grad_()
        states = [
            [
                as_state(c, [s.requires_grad_() for s in random_state(c, 3, dtype, seed=7)])
                for c in layer
            ]
            for layer in cells
        ]
        res = engines.ENGINES[engine_name].run_stack(cells, xi, states)
        flat_states = [s for layer in states for st_ in layer for s in st_]
        final = [s for layer in res.states for st_ in layer for s in st_]
        g = torch.Generator().manual_seed(3)
        loss = sum(
            (t * torch.randn(t.shape, generator=g, dtype=dtype)).sum()
            for t in [res.outputs, *final]
        )
        params = [p for layer in cells for c in layer for p in c.parameters()]
        grads = torch.autograd.grad(loss, [xi, *flat_states, *params])
        return res.outputs, final, grads

    out_r, final_r, grads_r = run("reference")
    out, final, grads = run(name)
    assert out.shape == (3, 5, (2 if bidirectional else 1) * cells[0][0].output_size)
    assert_close(out, out_r, "stack outputs")
    for k, (a, b) in enumerate(zip(final, final_r)):
        assert_close(a, b, f"stack final state {k}")
    for k, (a, b) in enumerate(zip(grads, grads_r)):
        assert_close(a, b, f"stack gradient {k}")


@given(
    batch=st.integers(1, 4),
    steps=st.integers(1, 6),
    inputs=st.integers(1, 4),
    hidden=st.integers(2, 5),
    kind=st.sampled_from(["lstm", "lstm_proj", "gru", "rnn"]),
    reverse=st.booleans(),
)
def test_fast_engines_equal_reference_any_shape(batch, steps, inputs, hidden, kind, reverse):
    from conftest import assert_close_tol

    for name in FAST:
        cell = make_cell(kind, inputs, hidden)
        x = torch.randn(batch, steps, inputs, dtype=torch.float64)
        opts = RunOptions(reverse=reverse)
        if engines.ENGINES[name].unsupported(cell, x, opts) is None:
            compare_engines(
                name, cell, x, random_state(cell, batch, torch.float64), opts, assert_close_tol
            )


# -- the reference loop is the specification: check it against Keras's masking rules ----------


def naive_masked_run(cell, x, state, mask, reverse, zero_output):
    """Keras's masking, one row at a time: a masked step keeps the state; its output is the
    previous output (zeros before the first valid step) or zeros with zero_output_for_mask."""
    batch, steps = x.shape[:2]
    outputs = torch.zeros(batch, steps, cell.output_size, dtype=x.dtype)
    finals = []
    for b in range(batch):
        s = tuple(t[b : b + 1] for t in state)
        prev = torch.zeros(1, cell.output_size, dtype=x.dtype)
        for t in reversed(range(steps)) if reverse else range(steps):
            if mask[b, t]:
                s, _ = cell.step(x[b : b + 1, t], as_state(cell, s))
                prev = s[0]
                outputs[b, t] = s[0][0]
            else:
                outputs[b, t] = 0.0 if zero_output else prev[0]
        finals.append(s)
    final = tuple(torch.cat([f[k] for f in finals]) for k in range(len(state)))
    return outputs, final


@given(
    data=st.data(),
    kind=st.sampled_from(["lstm", "lstm_all", "gru", "gru_reset_before", "rnn"]),
    reverse=st.booleans(),
    zero_output=st.booleans(),
)
def test_reference_masking_is_keras_semantics(data, kind, reverse, zero_output) -> None:
    batch = data.draw(st.integers(1, 3))
    steps = data.draw(st.integers(1, 6))
    rows = data.draw(
        st.lists(
            st.lists(st.booleans(), min_size=steps, max_size=steps), min_size=batch, max_size=batch
        )
    )
    mask = torch.tensor(rows, dtype=torch.bool)
    cell = make_cell(kind)
    x = torch.randn(batch, steps, 3, dtype=torch.float64)
    state = random_state(cell, batch, torch.float64)
    opts = RunOptions(mask=mask, reverse=reverse, zero_output_for_mask=zero_output)
    with torch.no_grad():
        res = engines.ENGINES["reference"].run(cell, x, state, opts)
        want_out, want_state = naive_masked_run(cell, x, state, mask, reverse, zero_output)
    torch.testing.assert_close(res.outputs, want_out, rtol=0, atol=1e-12)
    for a, b in zip(res.state, want_state):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_right_padded_mask_equals_truncated_sequence() -> None:
    cell = make_cell("lstm")
    x = torch.randn(1, 6, 3, dtype=torch.float64)
    state = random_state(cell, 1, torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    ref = engines.ENGINES["reference"]
    masked = ref.run(cell, x, state, RunOptions(mask=mask, zero_output_for_mask=True))
    short = ref.run(cell, x[:, :4], state, RunOptions())
    torch.testing.assert_close(masked.outputs[:, :4], short.outputs, rtol=0, atol=0)
    assert torch.equal(masked.outputs[:, 4:], torch.zeros(1, 2, 4, dtype=torch.float64))
    for a, b in zip(masked.state, short.state):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # reversed: the padding is skipped first, then the valid steps run from the initial state
    masked_rev = ref.run(
        cell, x, state, RunOptions(mask=mask, reverse=True, zero_output_for_mask=True)
    )
    short_rev = ref.run(cell, x[:, :4], state, RunOptions(reverse=True))
    torch.testing.assert_close(masked_rev.outputs[:, :4], short_rev.outputs, rtol=0, atol=0)
    for a, b in zip(masked_rev.state, short_rev.state):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_reverse_equals_forward_on_flipped_input() -> None:
    cell = make_cell("gru")
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    state = random_state(cell, 2, torch.float64)
    ref = engines.ENGINES["reference"]
    rev = ref.run(cell, x, state, RunOptions(reverse=True))
    fwd = ref.run(cell, x.flip(1), state, RunOptions())
    torch.testing.assert_close(rev.outputs, fwd.outputs.flip(1), rtol=0, atol=0)
    torch.testing.assert_close(rev.state[0], fwd.state[0], rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["lstm", "lstm_proj", "gru", "rnn"])
def test_recording_holds_every_step(kind) -> None:
    cell = make_cell(kind)
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    state = random_state(cell, 2, torch.float64)
    res = engines.ENGINES["reference"].run(cell, x, state, RunOptions(record=True, reverse=True))
    expected = {"lstm": {"i", "f", "g", "o", "c", "h"}, "gru": {"r", "z", "n", "h"}, "rnn": {"h"}}
    assert set(res.record) == expected[cell.kind]
    torch.testing.assert_close(res.record["h"], res.outputs, rtol=0, atol=0)
    # reverse: time index 0 is the last step processed, so it holds the final state
    torch.testing.assert_close(res.record["h"][:, 0], res.state[0], rtol=0, atol=0)
    if cell.kind == "lstm":
        torch.testing.assert_close(res.record["c"][:, 0], res.state[1], rtol=0, atol=0)
        # c_t = f·c_{t-1} + i·g, step by step (reverse order: t-1 is t+1)
        r = res.record
        c_prev = torch.cat([r["c"][:, 1:], state[1].unsqueeze(1)], 1)
        torch.testing.assert_close(r["c"], r["f"] * c_prev + r["i"] * r["g"], rtol=0, atol=1e-12)


# -- gradcheck, every variant on every engine that supports it ------------------------------


def _gradcheck(name: str, cell: RecurrentCell, opts: RunOptions) -> None:
    x = torch.randn(2, 3, cell.input_size, dtype=torch.float64, requires_grad=True)
    state = [s.requires_grad_() for s in random_state(cell, 2, torch.float64)]
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in cell.named_parameters()]
    engine = engines.ENGINES[name]

    def f(x, *rest):
        saved = dict(cell._parameters)
        try:
            for n, p in zip(names, rest[len(state) :]):
                cell._parameters[n] = p
            res = engine.run(cell, x, as_state(cell, rest[: len(state)]), opts)
        finally:
            cell._parameters.update(saved)
        return (res.outputs, *res.state)

    assert torch.autograd.gradcheck(f, (x, *state, *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("name", AVAILABLE)
def test_gradcheck_every_cell_on_every_engine(name, kind) -> None:
    cell = make_cell(kind, 2, 3, seed=4)
    x = torch.zeros(2, 3, 2, dtype=torch.float64)
    ran = 0
    for opts in (
        RunOptions(),
        RunOptions(reverse=True, mask=torch.tensor([[1, 0, 1], [1, 1, 0]], dtype=torch.bool)),
    ):
        if engines.ENGINES[name].unsupported(cell, x, opts) is None:
            _gradcheck(name, cell, opts)
            ran += 1
    if name == "reference" or (name == "fused" and kind in FUSED_MUST_SUPPORT):
        assert ran >= 1
    if not ran:
        pytest.skip(f"{name} does not run {kind}")


# -- choosing engines ---------------------------------------------------------------------


def test_auto_choice_and_refusals() -> None:
    plain, peephole = make_cell("lstm"), make_cell("lstm_peephole")
    x = torch.randn(2, 3, 3, dtype=torch.float64)
    best = engines.choose(plain, x)
    assert best.name in FAST  # a fast engine for the plain cell
    assert (
        engines.choose(plain, x, RunOptions(record=True)).unsupported(
            plain, x, RunOptions(record=True)
        )
        is None
    )
    assert engines.choose(peephole, x, engine="reference").name == "reference"
    with pytest.raises(ValueError, match=r"engine='fused' cannot run this lstm layer: .*variant"):
        engines.choose(peephole, x, engine="fused")
    with pytest.raises(ValueError, match=r"engine='fused' cannot run.*gates"):
        engines.choose(plain, x, RunOptions(record=True), engine="fused")
    with pytest.raises(ValueError, match=r"engine: expected one of .*got 'turbo'"):
        engines.choose(plain, x, engine="turbo")
    with pytest.raises(ValueError, match="engine='fused' cannot run this stack"):
        engines.choose_stack([[peephole]], x, engine="fused")
    # state=None runs from zeros
    res = engines.run(plain, x)
    zero = engines.run(plain, x, plain.initial_state(2, dtype=torch.float64))
    torch.testing.assert_close(res.outputs, zero.outputs, rtol=0, atol=0)


def test_recording_context_sees_every_emit() -> None:
    seen = []
    assert not engines.recording_active()
    with engines.recording(
        lambda owner, direction, record, mask: seen.append((owner, direction, set(record)))
    ):
        assert engines.recording_active()
        engines.emit("layer", "forward", {"h": torch.zeros(1)}, None)
        engines.emit("layer", "backward", None, None)  # nothing recorded: not handed on
    assert not engines.recording_active()
    assert seen == [("layer", "forward", {"h"})]


# -- the cells themselves -----------------------------------------------------------------


def test_cell_forward_and_errors() -> None:
    cell = LSTMCell(3, 4)
    (h, c), gates = cell(torch.zeros(2, 3))
    assert h.shape == c.shape == (2, 4) and gates._fields == ("i", "f", "g", "o")
    with pytest.raises(ValueError, match=r"LSTMCell: expected x of shape \(B, 3\), got \(2, 5\)"):
        cell(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="LSTMCell: hidden_size must be an integer >= 1, got 0"):
        LSTMCell(3, 0)
    with pytest.raises(ValueError, match="proj_size must be smaller than hidden_size"):
        LSTMCell(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="GRUCell: activation: unknown activation 'tanhh'"):
        GRUCell(3, 4, activation="tanhh")


def test_cell_initialisation_keras_and_torch() -> None:
    torch.manual_seed(0)
    cell = LSTMCell(8, 16)  # Keras: glorot_uniform, orthogonal, zeros + unit forget bias
    limit = (6 / (8 + 64)) ** 0.5
    assert float(cell.weight_ih.detach().abs().max()) <= limit
    rec = cell.weight_hh.T  # Keras layout (H, 4H): orthonormal rows
    torch.testing.assert_close(rec @ rec.T, torch.eye(16), atol=1e-5, rtol=0)
    assert torch.equal(cell.bias_ih, torch.cat([torch.zeros(16), torch.ones(16), torch.zeros(32)]))
    tcell = LSTMCell(8, 16, torch_init=True)
    for p in tcell.parameters():
        assert 0.2 < float(p.detach().abs().max()) <= 0.25  # U(-1/sqrt(16), 1/sqrt(16))
    assert LSTMCell(8, 16, unit_forget_bias=False).bias_ih.abs().sum() == 0
