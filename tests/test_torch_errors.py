"""torch's error contract for the drop-ins (issue 22 item 3, issue 28 packed sequences).

Each case runs the same call on ``torch.nn`` and on ``lstmkit.nn``: lstmkit's exception must be
an instance of the class torch raised (so ``except RuntimeError:`` written for torch keeps
working) while keeping lstmkit's own message, which names the argument. torch is the control:
if torch stops raising, the case fails rather than passing vacuously.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

import lstmkit.nn as lnn

X = torch.randn(5, 2, 3)


def _raised(call: Callable[[Any], object], module: Any) -> BaseException | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call(module)
        except Exception as e:  # the class is what is being tested
            return e
    return None


CASES: dict[str, tuple[Callable[[Any], object], str]] = {
    "feature size": (lambda m: m.LSTM(3, 4)(torch.randn(5, 2, 7)), r"LSTM: expected input"),
    "hx h_0 shape": (
        lambda m: m.LSTM(3, 4)(X, (torch.zeros(1, 3, 4), torch.zeros(1, 2, 4))),
        r"LSTM: expected hx h_0 of shape \(1, 2, 4\)",
    ),
    "hx c_0 shape": (
        lambda m: m.LSTM(3, 4)(X, (torch.zeros(1, 2, 4), torch.zeros(1, 2, 5))),
        r"LSTM: expected hx c_0 of shape \(1, 2, 4\)",
    ),
    "GRU hx layers": (
        lambda m: m.GRU(3, 4)(X, torch.zeros(2, 2, 4)),
        r"GRU: expected hx h_0 of shape \(1, 2, 4\)",
    ),
    "2-D hx, batched input": (
        lambda m: m.GRU(3, 4)(X, torch.zeros(1, 4)),
        r"GRU: for batched 3-D input, hx h_0 should be 3-D",
    ),
    "3-D hx, unbatched input": (
        lambda m: m.GRU(3, 4)(torch.randn(5, 3), torch.zeros(1, 1, 4)),
        r"GRU: for unbatched 2-D input, hx h_0 should be 2-D",
    ),
    "integer input": (
        lambda m: m.LSTM(3, 4)(torch.ones(5, 2, 3, dtype=torch.long)),
        r"LSTM: expected a floating-point input",
    ),
    "float64 input, float32 weights": (
        lambda m: m.LSTM(3, 4)(X.double()),
        r"LSTM: expected input of dtype torch.float32",
    ),
    "hx dtype": (
        lambda m: m.GRU(3, 4)(X, torch.zeros(1, 2, 4, dtype=torch.float64)),
        r"GRU: expected hx h_0 of dtype torch.float32",
    ),
    "LSTM hx not a pair": (
        lambda m: m.LSTM(3, 4)(X, torch.zeros(1, 2, 4)),
        r"LSTM: expected hx as a tuple \(h_0, c_0\)",
    ),
    "proj_size on GRU": (lambda m: m.GRU(3, 4, proj_size=2), r"GRU: proj_size"),
    "proj_size on RNN": (lambda m: m.RNN(3, 4, proj_size=2), r"RNN: proj_size"),
    "proj_size >= hidden_size": (lambda m: m.LSTM(3, 4, proj_size=4), r"LSTM: proj_size"),
    "bias as a string": (lambda m: m.LSTM(3, 4, bias="True"), r"LSTM: bias should be of type bool"),
    "batch_first as 0": (
        lambda m: m.LSTM(3, 4, batch_first=0),
        r"LSTM: batch_first should be of type bool, got: int",
    ),
    "batch_first as a string": (
        lambda m: m.GRU(3, 4, batch_first="False"),
        r"GRU: batch_first should be of type bool, got: str",
    ),
    "empty sequence": (
        lambda m: m.LSTM(3, 4)(torch.randn(0, 2, 3)),
        r"LSTM: expected a sequence length of at least 1",
    ),
    "cell feature size": (
        lambda m: m.LSTMCell(3, 4)(torch.randn(2, 5)),
        r"LSTMCell: expected input of shape \(B, 3\)",
    ),
    "cell hx batch": (
        lambda m: m.GRUCell(3, 4)(torch.randn(2, 3), torch.zeros(3, 4)),
        r"GRUCell: expected hx of shape \(2, 4\)",
    ),
    "cell input dtype": (
        lambda m: m.GRUCell(3, 4)(torch.randn(2, 3).double()),
        r"GRUCell: expected input of dtype torch.float32",
    ),
    "cell hx dtype": (
        lambda m: m.RNNCell(3, 4)(torch.randn(2, 3), torch.zeros(2, 4).double()),
        r"RNNCell: expected hx of dtype torch.float32",
    ),
    "RNNCell nonlinearity": (
        lambda m: m.RNNCell(3, 4, nonlinearity="x")(torch.randn(2, 3)),
        r"RNNCell: nonlinearity must be 'tanh' or 'relu', got 'x'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_exception_is_an_instance_of_torchs(case: str) -> None:
    call, message = CASES[case]
    theirs = _raised(call, torch.nn)
    assert theirs is not None, f"torch.nn no longer raises for {case!r}: update the case"
    ours = _raised(call, lnn)
    assert ours is not None, f"lstmkit.nn accepted {case!r}"
    assert isinstance(ours, type(theirs)), (
        f"{case}: torch raises {type(theirs).__name__}, lstmkit {type(ours).__mro__}"
    )
    assert re.search(message, str(ours)), f"{case}: message {str(ours)!r}"


def test_errors_keep_lstmkits_own_classes() -> None:
    """The shape errors are ValueErrors and the dtype errors TypeErrors, as lstmkit documents."""
    assert issubclass(lnn.RNNValueError, ValueError) and issubclass(lnn.RNNValueError, RuntimeError)
    assert issubclass(lnn.RNNTypeError, TypeError) and issubclass(lnn.RNNTypeError, RuntimeError)
    with pytest.raises(ValueError):
        lnn.LSTM(3, 4)(torch.randn(5, 2, 7))
    with pytest.raises(TypeError):
        lnn.LSTM(3, 4)(X.double())


def test_flags_are_real_bools() -> None:
    """``bool("False")`` is True: lstmkit used to turn ``batch_first="False"`` into True."""
    for module in (torch.nn, lnn):
        for kwargs in ({"bias": "True"}, {"batch_first": 0}, {"batch_first": "False"}):
            with pytest.raises(TypeError):
                module.LSTM(3, 4, **kwargs)
    # real bools still work and mean what they say
    assert lnn.LSTM(3, 4, bias=False).bias is False
    assert lnn.GRU(3, 4, batch_first=True)(torch.randn(2, 5, 3))[0].shape == (2, 5, 4)


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell"])
def test_zero_hidden_size_cells_as_torch(name: str) -> None:
    x = torch.randn(2, 3)
    theirs = getattr(torch.nn, name)(3, 0)(x)
    ours = getattr(lnn, name)(3, 0)(x)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    ours = ours if isinstance(ours, tuple) else (ours,)
    assert [t.shape for t in ours] == [t.shape for t in theirs] == [(2, 0)] * len(theirs)


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell"])
def test_autocast_bfloat16_output_dtype_as_torch(name: str) -> None:
    torch.manual_seed(0)
    theirs_cell = getattr(torch.nn, name)(3, 4)
    ours_cell = getattr(lnn, name)(3, 4)
    ours_cell.load_state_dict(theirs_cell.state_dict())
    x = torch.randn(2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        theirs, ours = theirs_cell(x), ours_cell(x)
    theirs = theirs[0] if isinstance(theirs, tuple) else theirs
    ours = ours[0] if isinstance(ours, tuple) else ours
    assert ours.dtype == theirs.dtype
    torch.testing.assert_close(ours.float(), theirs.float(), atol=3e-2, rtol=3e-2)


def _packed(sizes: list[int], rows: int | None = None, si: list[int] | None = None) -> Any:
    bs = torch.tensor(sizes, dtype=torch.int64)
    n = int(bs.clamp(min=0).sum()) if rows is None else rows
    order = None if si is None else torch.tensor(si)
    unsorted = None if order is None else torch.argsort(order)
    return PackedSequence(torch.randn(n, 3), bs, order, unsorted)


PACKED: dict[str, tuple[Callable[[], PackedSequence], str]] = {
    "a zero batch size": (lambda: _packed([2, 0, 1]), r"batch_sizes > 0, got 0 at step 1"),
    "a negative batch size": (lambda: _packed([2, -1]), r"batch_sizes > 0, got -1 at step 1"),
    "only a zero": (lambda: _packed([0]), r"batch_sizes > 0, got 0 at step 0"),
    "increasing sizes": (lambda: _packed([1, 2]), r"non-increasing .*got 1 then 2 at step 1"),
    "no steps": (lambda: _packed([]), r"batch_sizes with at least 1 step"),
    "data too short": (lambda: _packed([2, 1], rows=2), r"data with 3 rows .*got \(2, 3\)"),
    "data too long": (lambda: _packed([2, 1], rows=5), r"data with 3 rows .*got \(5, 3\)"),
    "sorted_indices out of range": (
        lambda: _packed([2, 1], si=[0, 5]),
        r"sorted_indices as a permutation of range\(2\)",
    ),
}


@pytest.mark.parametrize("engine", ["reference", "fused", "compiled"])
@pytest.mark.parametrize("case", sorted(PACKED))
def test_bad_packed_sequences_are_refused_before_any_kernel(case: str, engine: str) -> None:
    """These used to abort the process (``free(): invalid pointer``) on every engine."""
    make, message = PACKED[case]
    for cls in (lnn.LSTM, lnn.GRU, lnn.RNN):
        with pytest.raises(lnn.RNNValueError, match=f"{cls.__name__}: expected .*{message}"):
            cls(3, 4, engine=engine)(make())


def test_float_batch_sizes_are_a_type_error_as_in_torch() -> None:
    bad = PackedSequence(torch.randn(3, 3), torch.tensor([2.0, 1.0]), None, None)
    with pytest.raises(TypeError):
        torch.nn.LSTM(3, 4)(bad)
    with pytest.raises(TypeError, match=r"batch_sizes as a 1-D int64 tensor"):
        lnn.LSTM(3, 4)(bad)


def test_bad_packed_sequences_do_not_kill_the_process() -> None:
    """The same inputs in a child process: a crash (a signal) fails this test, not the runner."""
    script = textwrap.dedent(
        """
        import torch, lstmkit.nn as lnn
        from torch.nn.utils.rnn import PackedSequence
        refused = 0
        for sizes in ([2, 0, 1], [2, -1], [0], [1, 2], [3, -7, 1]):
            bs = torch.tensor(sizes)
            data = torch.randn(max(int(bs.clamp(min=0).sum()), 1), 3)
            for engine in ("reference", "fused", "compiled"):
                for cls in (lnn.LSTM, lnn.GRU, lnn.RNN):
                    try:
                        cls(3, 4, engine=engine)(PackedSequence(data, bs, None, None))
                    except ValueError:
                        refused += 1
        print(refused)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == str(5 * 3 * 3)


def test_valid_packed_sequences_still_match_torch() -> None:
    torch.manual_seed(1)
    ref = torch.nn.LSTM(3, 4)
    ours = lnn.LSTM(3, 4, engine="compiled")
    ours.load_state_dict(ref.state_dict())
    seqs = [torch.randn(n, 3) for n in (4, 2, 3)]
    packed = torch.nn.utils.rnn.pack_sequence(seqs, enforce_sorted=False)
    (out_t, (h_t, c_t)), (out_o, (h_o, c_o)) = ref(packed), ours(packed)
    torch.testing.assert_close(out_o.data, out_t.data)
    torch.testing.assert_close(h_o, h_t)
    torch.testing.assert_close(c_o, c_t)
