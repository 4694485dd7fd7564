"""Dropout between stacked layers (test_nn's ``test_RNN_dropout``, ``test_RNN_change_dropout``
and module_db's ``train_and_eval_differ``)."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

from ._helpers import MODES, assert_all_close, build, flat, twin

I, H, T, B = 3, 6, 4, 3


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("p", [0.0, 0.276, 0.731, 1.0])
def test_dropout_sits_between_the_layers(nn, p, train) -> None:
    """All-ones weights, ReLU, one step: every unit of layer 0 is 10 (ten ones); layer 1 sums
    its 100 inputs, of which dropout keeps ``k``, each scaled by ``1/(1-p)``."""
    torch.manual_seed(123)
    rnn = nn.RNN(10, 100, 2, bias=False, dropout=p, nonlinearity="relu").train(train)
    with torch.no_grad():
        for w in rnn.parameters():
            w.fill_(1.0)
    with torch.no_grad():
        out, h = rnn(torch.ones(1, 1, 10), torch.zeros(2, 1, 100))
    value = float(out[0, 0, 0])
    assert torch.all(out == value), "one value for every unit of the top layer"
    assert torch.all(h[0] == 10) and torch.all(h[1] == value)
    if p == 0 or not train:
        assert value == 1000
    elif p == 1:
        assert value == 0
    else:
        kept = value * (1 - p) / 10
        assert abs(kept - round(kept)) < 1e-3 and 0 < round(kept) < 100


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_changing_the_dropout_attribute(nn, train) -> None:
    """``m.dropout = p`` between calls takes effect at the next call: p = 0 or 1 (or eval
    mode) is deterministic, anything in between draws a fresh mask at each call."""
    torch.manual_seed(0)
    rnn = nn.RNN(20, 20, 2, dropout=0, nonlinearity="relu").train(train)
    x, hx = torch.rand(1, 2, 20), torch.zeros(2, 2, 20)
    previous = None
    for p in (0, 0.5, 0, 0.7, 0.2, 1, 0.2, 0):
        rnn.dropout = p
        out1, h1 = rnn(x, hx)
        out2, h2 = rnn(x, hx)
        same = torch.equal(out1, out2) and torch.equal(h1, h2)
        assert same == (p in (0, 1) or not train), p
        if previous is not None:
            assert torch.equal(out1, previous) == (not train), p
        previous = out1.detach()


@pytest.mark.parametrize("mode", MODES)
def test_eval_mode_is_the_model_without_dropout(nn, mode) -> None:
    ref, mine = twin(nn, mode, I, H, num_layers=3, dropout=0.5)
    _, plain = twin(nn, mode, I, H, num_layers=3, dropout=0.0)
    x = torch.randn(T, B, I)
    mine.eval()
    with torch.no_grad():
        assert_all_close(flat(mine(x)), flat(plain(x)), "eval with dropout vs no dropout")
        assert_all_close(flat(mine(x)), flat(ref.eval()(x)), "eval vs torch")
        mine.train()
        assert not torch.equal(mine(x)[0], plain(x)[0]), "train mode drops"
        torch.manual_seed(4)
        a = flat(mine(x))
        torch.manual_seed(4)
        assert_all_close(flat(mine(x)), a, "the same seed gives the same mask")


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("mode", MODES)
def test_dropout_draws_torchs_masks_on_the_fused_engine(nn, mode, bidirectional) -> None:
    """Under the same seed, the fused engine (torch's kernel) drops exactly torch's units."""
    extra = {"engine": "fused"} if nn.is_lstmkit else {}
    torch.manual_seed(0)
    ref = build(torch.nn, mode, I, H, num_layers=3, dropout=0.4, bidirectional=bidirectional)
    mine = build(nn, mode, I, H, num_layers=3, dropout=0.4, bidirectional=bidirectional, **extra)
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, I)
    packed = pack_sequence([torch.randn(n, I) for n in (4, 3, 1)])
    for data in (x, packed):
        torch.manual_seed(11)
        want = flat(ref(data))
        torch.manual_seed(11)
        assert_all_close(flat(mine(data)), want, "same seed, same dropout masks")


@pytest.mark.parametrize("engine", ["reference", "compiled"])
def test_dropout_stream_on_lstmkits_own_engines(nn, engine) -> None:
    """On torch: the same seed gives the same output as a twin module. On lstmkit's own
    engines the masks come from torch's generator, but are drawn layer by layer on the
    batch-first activations, so the same seed gives other masks than torch's."""
    extra = {"engine": engine} if nn.is_lstmkit else {}
    torch.manual_seed(0)
    ref = torch.nn.GRU(I, H, num_layers=2, dropout=0.5, bidirectional=True)
    mine = nn.GRU(I, H, num_layers=2, dropout=0.5, bidirectional=True, **extra)
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, I)
    torch.manual_seed(11)
    want = flat(ref(x))
    torch.manual_seed(11)
    got = flat(mine(x))
    torch.manual_seed(11)
    assert_all_close(flat(mine(x)), got, "the same seed reproduces the run")
    if nn.is_lstmkit:
        # deviation: dropout random stream (same generator, other masks off the fused engine)
        assert not torch.allclose(got[0], want[0]), "lstmkit now draws torch's masks: docs"
        assert not torch.equal(got[0], flat(mine.eval()(x))[0])
    else:
        assert_all_close(got, want, "torch twin, same seed")
