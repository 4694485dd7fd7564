"""Packed sequences (test_nn's ``test_variable_sequence``, ``test_pack_sequence_batch_sizes_throw``
and the packed cases of the module tests): ``pack_padded_sequence`` (sorted or not) and
``pack_sequence`` inputs, and what inconsistent ``PackedSequence`` objects do.

torch's own kernels read inconsistent ``batch_sizes`` without checking them, so torch's side
of those cases runs in a child process (each case in its own fork) and cannot take the test
runner down.
"""

from __future__ import annotations

import builtins
import json
import subprocess
import sys

import pytest
import torch
from torch.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
)

import lstmkit.nn

from ._helpers import assert_all_close, make_hx, raised, run_with_grads, twin

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

I, H, P, T = 3, 4, 2, 4
LENGTHS = {"sorted": [4, 3, 1], "unsorted": [2, 4, 3]}
PACK_MODES = {
    "LSTM": ("LSTM", {}),
    "LSTM-proj": ("LSTM", {"proj_size": P}),
    "GRU": ("GRU", {}),
    "RNN_TANH": ("RNN_TANH", {}),
    "RNN_RELU": ("RNN_RELU", {}),
}
PACKINGS = ["padded-sorted", "padded-unsorted", "pack_sequence", "pack_sequence-unsorted"]


def make_packed(packing: str, batch_first: bool = False) -> PackedSequence:
    how, _, order = packing.partition("-")
    lengths = LENGTHS["unsorted" if order == "unsorted" else "sorted"]
    if how == "pack_sequence":
        seqs = [torch.randn(n, I, dtype=torch.float64) for n in lengths]
        packed = pack_sequence(seqs, enforce_sorted=order != "unsorted")
    else:
        shape = (len(lengths), T, I) if batch_first else (T, len(lengths), I)
        x = torch.randn(shape, dtype=torch.float64)
        packed = pack_padded_sequence(
            x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=order != "unsorted"
        )
    return PackedSequence(packed.data.requires_grad_(), *packed[1:])


def _same_index(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and torch.equal(a, b))


@pytest.mark.parametrize("with_hx", [False, True], ids=["no_hx", "hx"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("packing", PACKINGS)
@pytest.mark.parametrize("key", PACK_MODES)
def test_packed_input_matches_torch(nn, key, packing, bidirectional, with_hx) -> None:
    """Output data, batch_sizes, sorted/unsorted indices, h_n (c_n) and every gradient."""
    mode, kw = PACK_MODES[key]
    batch_first = packing == "padded-sorted" and bidirectional  # batch_first packs the same
    ref, mine = twin(
        nn,
        mode,
        I,
        H,
        num_layers=2,
        bidirectional=bidirectional,
        batch_first=batch_first,
        dtype=torch.float64,
        **kw,
    )
    packed = make_packed(packing, batch_first)
    n = 2 * (2 if bidirectional else 1)
    hx = None
    if with_hx:
        hx = make_hx(mode, n, 3, H, kw.get("proj_size", 0), dtype=torch.float64)
        for t in hx if isinstance(hx, tuple) else (hx,):
            t.requires_grad_()
    args = (packed,) if hx is None else (packed, hx)
    want, want_grads = run_with_grads(ref, *args)
    got, got_grads = run_with_grads(mine, *args)
    assert_all_close(got, want, "outputs")
    assert_all_close(got_grads, want_grads, "gradients")
    out, _ = mine(*args)
    assert isinstance(out, PackedSequence)
    assert torch.equal(out.batch_sizes, packed.batch_sizes)
    assert _same_index(out.sorted_indices, packed.sorted_indices)
    assert _same_index(out.unsorted_indices, packed.unsorted_indices)
    _, lengths = pad_packed_sequence(out)
    assert lengths.tolist() == LENGTHS["unsorted" if "unsorted" in packing else "sorted"]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
def test_variable_sequence_equals_each_sequence_alone(nn, mode, bidirectional) -> None:
    """test_nn's ``test_variable_sequence``: a packed batch of lengths 5, 3, 2 gives, for each
    sequence, what the sequence alone gives (outputs and final states)."""
    _, m = twin(nn, mode, I, H, num_layers=2, bidirectional=bidirectional, dtype=torch.float64)
    seqs = [torch.randn(n, I, dtype=torch.float64) for n in (3, 5, 2)]
    out, h = m(pack_sequence(seqs, enforce_sorted=False))
    padded, lengths = pad_packed_sequence(out, batch_first=True)
    finals = list(h) if isinstance(h, tuple) else [h]
    for b, seq in enumerate(seqs):
        alone, h_alone = m(seq)
        n = len(seq)
        assert int(lengths[b]) == n
        assert_all_close([padded[b, :n]], [alone], f"outputs of sequence {b}")
        assert torch.all(padded[b, n:] == 0)
        alone_finals = list(h_alone) if isinstance(h_alone, tuple) else [h_alone]
        assert_all_close([f[:, b] for f in finals], alone_finals, f"final state of {b}")


def test_batch_sizes_must_be_on_the_cpu(nn) -> None:
    """test_nn's ``test_pack_sequence_batch_sizes_throw`` (raised by PackedSequence itself)."""
    m = nn.LSTM(3, 4, bidirectional=True, num_layers=2).to("meta")
    assert all(p.device.type == "meta" for p in m.parameters())
    with pytest.raises(ValueError, match="batch_sizes should always be on CPU"):
        PackedSequence(torch.rand(5, 3, device="meta"), torch.ones(5, device="meta").long())


# -- inconsistent PackedSequence objects ----------------------------------------------------

# case: (batch_sizes, rows of data or None for their sum, sorted_indices, torch's outcome)
INVALID = {
    "a zero batch size": ([2, 0, 1], None, None, "accepted"),
    "only a zero": ([0], None, None, "accepted"),
    "a negative batch size": ([2, -1], None, None, "RuntimeError"),
    "increasing batch sizes": ([1, 2], None, None, "RuntimeError"),
    "no steps": ([], None, None, "IndexError"),
    "data too short": ([2, 1], 2, None, "RuntimeError"),
    "data too long": ([2, 1], 5, None, "accepted"),
    "sorted_indices out of range": ([2, 1], None, [0, 5], "accepted"),
    "sorted_indices repeated": ([2, 1], None, [0, 0], "accepted"),
    "sorted_indices too long": ([2, 1], None, [0, 1, 2], "RuntimeError"),
}
MODULES = ["LSTM", "GRU", "RNN"]

_CHILD = r"""
import json, os, sys
import torch
from torch.nn.utils.rnn import PackedSequence

def outcome(mode, sizes, rows, si):
    bs = torch.tensor(sizes, dtype=torch.int64)
    n = int(bs.clamp(min=0).sum()) if rows is None else rows
    order = None if si is None else torch.tensor(si)
    unsorted = None if si is None else torch.argsort(order)
    packed = PackedSequence(torch.randn(n, 3), bs, order, unsorted)
    try:
        getattr(torch.nn, mode)(3, 4)(packed)
    except Exception as e:
        return type(e).__name__
    return "accepted"

results = {}
for key, (mode, sizes, rows, si) in json.load(sys.stdin).items():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, outcome(mode, sizes, rows, si).encode())
        os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    text = os.read(r, 200).decode()
    os.close(r)
    results[key] = text if os.WIFEXITED(status) and text else f"crash (status {status})"
print(json.dumps(results))
"""


def _key(mode: str, case: str) -> str:
    return f"{mode}|{case}"


@pytest.fixture(scope="module")
def torch_outcomes() -> dict[str, str]:
    """What ``torch.nn`` does with each inconsistent PackedSequence, found in a child."""
    cases = {_key(m, c): (m, *INVALID[c][:3]) for m in MODULES for c in INVALID}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def _packed(sizes, rows, si) -> PackedSequence:
    bs = torch.tensor(sizes, dtype=torch.int64)
    n = int(bs.clamp(min=0).sum()) if rows is None else rows
    order = None if si is None else torch.tensor(si)
    return PackedSequence(torch.randn(n, 3), bs, order, None if si is None else order.argsort())


@pytest.mark.parametrize("mode", MODULES)
@pytest.mark.parametrize("case", INVALID)
def test_inconsistent_packed_sequence(nn, case, mode, request) -> None:
    sizes, rows, si, torch_outcome = INVALID[case]
    if not nn.is_lstmkit:
        assert request.getfixturevalue("torch_outcomes")[_key(mode, case)] == torch_outcome
        return
    err = raised(lambda: getattr(nn, mode)(3, 4)(_packed(sizes, rows, si)))
    # every inconsistency is refused before any kernel reads the data
    assert isinstance(err, lstmkit.nn.RNNValueError), err
    if torch_outcome == "accepted":
        # deviation: stricter PackedSequence checks (torch computes on what it reads)
        assert "PackedSequence" in str(err)
    elif torch_outcome == "IndexError":
        # deviation: empty batch_sizes (a ValueError/RuntimeError naming it; torch IndexError)
        assert "at least 1 step" in str(err)
    else:
        assert isinstance(err, getattr(builtins, torch_outcome))


def _base(n: int = 3) -> PackedSequence:
    return PackedSequence(torch.randn(n, 3), torch.tensor([2, 1]))


PACKED_ERRORS = {
    "hx batch": (lambda nn: nn.GRU(3, 4)(_base(), torch.zeros(1, 3, 4)), RuntimeError),
    "LSTM c_0 batch": (
        lambda nn: nn.LSTM(3, 4)(_base(), (torch.zeros(1, 2, 4), torch.zeros(1, 3, 4))),
        RuntimeError,
    ),
    "1-D data": (
        lambda nn: nn.GRU(3, 4)(PackedSequence(torch.randn(3), torch.tensor([2, 1]))),
        RuntimeError,
    ),
    "data feature size": (
        lambda nn: nn.RNN(3, 4)(PackedSequence(torch.randn(3, 5), torch.tensor([2, 1]))),
        RuntimeError,
    ),
    "float64 data": (
        lambda nn: nn.LSTM(3, 4)(PackedSequence(torch.randn(3, 3).double(), torch.tensor([2, 1]))),
        RuntimeError,  # torch: "mat1 and mat2 must have the same dtype"
    ),
    "float batch_sizes": (
        lambda nn: nn.LSTM(3, 4)(PackedSequence(torch.randn(3, 3), torch.tensor([2.0, 1.0]))),
        TypeError,
    ),
    "int32 batch_sizes": (
        lambda nn: nn.GRU(3, 4)(
            PackedSequence(torch.randn(3, 3), torch.tensor([2, 1], dtype=torch.int32))
        ),
        RuntimeError,
    ),
    "2-D batch_sizes": (
        lambda nn: nn.GRU(3, 4)(PackedSequence(torch.randn(3, 3), torch.tensor([[2, 1]]))),
        TypeError,
    ),
}


@pytest.mark.parametrize("case", PACKED_ERRORS)
def test_packed_call_refuses(nn, case) -> None:
    """Errors torch itself raises cleanly (safe in-process on both sides)."""
    call, cls = PACKED_ERRORS[case]
    err = raised(lambda: call(nn))
    assert err is not None
    assert isinstance(err, cls) if nn.is_lstmkit else type(err) is cls, type(err).__mro__
