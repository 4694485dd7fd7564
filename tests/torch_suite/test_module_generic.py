"""Generic module behaviour, as test_modules.py checks it for every module_db entry: repr,
state_dict, serialisation, copies, dtype and device moves, factory kwargs, non-contiguous
inputs, train/eval, gradients bookkeeping, hooks and ``torch.func.functional_call``; plus
test_nn's weight-norm and retain-graph checks for the RNN modules."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch

from ._helpers import assert_all_close, build, flat, make_hx, twin

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

I, H, T, B = 3, 4, 3, 2

# one specimen per module_db entry (and a projected LSTM): (mode, constructor kwargs)
SPECIMENS = {
    "LSTM": ("LSTM", {"num_layers": 2, "bidirectional": True}),
    "LSTM-proj": ("LSTM", {"proj_size": 2, "batch_first": True}),
    "GRU": ("GRU", {"num_layers": 2, "batch_first": True, "dropout": 0.0}),
    "RNN": ("RNN_RELU", {"bias": False, "bidirectional": True}),
    "LSTMCell": ("LSTMCell", {}),
    "GRUCell": ("GRUCell", {"bias": False}),
    "RNNCell": ("RNNCell_RELU", {}),
}
MODULES = [k for k in SPECIMENS if "Cell" not in k]


def specimen(nn, key: str, **extra):
    mode, kw = SPECIMENS[key]
    return twin(nn, mode, I, H, **kw, **extra)


def sample_input(key: str, dtype=torch.float32):
    """A batched input for the specimen (time-major unless the specimen is batch_first)."""
    if "Cell" in key:
        return torch.randn(B, I, dtype=dtype)
    batch_first = SPECIMENS[key][1].get("batch_first", False)
    return torch.randn((B, T, I) if batch_first else (T, B, I), dtype=dtype)


def outputs(module, *args) -> list[torch.Tensor]:
    with torch.no_grad():
        return flat(module(*args))


@pytest.mark.parametrize("key", SPECIMENS)
def test_repr_names_the_arguments(nn, key) -> None:
    ref, mine = specimen(nn, key)
    text = repr(mine)
    assert text.startswith(type(ref).__name__ + f"({I}, {H}")
    for arg, value in SPECIMENS[key][1].items():
        if value not in (0, 0.0):
            assert f"{arg}={value}" in text, (arg, text)
    if nn.is_lstmkit and key in ("RNN", "RNNCell"):
        # deviation: repr of relu RNNs (torch's RNN omits the nonlinearity, its RNNCell prints
        # it unquoted; lstmkit writes nonlinearity='relu' in both)
        assert "nonlinearity='relu'" in text
        assert text.replace(", nonlinearity='relu'", "") == repr(ref).replace(
            ", nonlinearity=relu", ""
        )
    else:
        assert text == repr(ref)


@pytest.mark.parametrize("key", SPECIMENS)
def test_state_dict_keys_shapes_and_order_are_torchs(nn, key) -> None:
    ref, mine = specimen(nn, key)
    want = [(k, v.shape, v.dtype) for k, v in ref.state_dict().items()]
    assert [(k, v.shape, v.dtype) for k, v in mine.state_dict().items()] == want
    assert [n for n, _ in mine.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert len(list(mine.parameters())) == len(list(ref.parameters()))
    assert list(mine.buffers()) == [] and list(mine.children()) == []


@pytest.mark.parametrize("key", SPECIMENS)
def test_load_state_dict_both_ways(nn, key) -> None:
    ref, mine = specimen(nn, key)
    x = sample_input(key)
    mode, kw = SPECIMENS[key]
    torch.manual_seed(99)  # other weights, then ours loaded into a fresh torch module
    fresh = type(ref)(I, H, **kw, **({"nonlinearity": "relu"} if "RELU" in mode else {}))
    assert fresh.load_state_dict(mine.state_dict()) is not None
    assert_all_close(outputs(fresh, x), outputs(ref, x), "torch <- under test")
    assert_all_close(outputs(mine, x), outputs(ref, x), "under test <- torch")
    # strict loading refuses a missing key (RuntimeError, torch's own check)
    partial = dict(mine.state_dict())
    partial.pop(next(iter(partial)))
    with pytest.raises(RuntimeError):
        mine.load_state_dict(partial)
    assert mine.load_state_dict(partial, strict=False).missing_keys == [
        next(iter(ref.state_dict()))
    ]


@pytest.mark.parametrize("key", SPECIMENS)
def test_deepcopy_is_equal_and_independent(nn, key) -> None:
    _, mine = specimen(nn, key)
    x = sample_input(key)
    twin_copy = copy.deepcopy(mine)
    assert_all_close(outputs(twin_copy, x), outputs(mine, x), "deepcopy")
    before = outputs(mine, x)
    with torch.no_grad():
        for p in twin_copy.parameters():
            p.add_(1.0)
    assert_all_close(outputs(mine, x), before, "original after changing the copy")
    assert not torch.equal(outputs(twin_copy, x)[0], before[0])


@pytest.mark.parametrize("key", SPECIMENS)
def test_pickle_and_torch_save_round_trips(nn, key) -> None:
    _, mine = specimen(nn, key)
    x = sample_input(key)
    want = outputs(mine, x)
    assert_all_close(outputs(pickle.loads(pickle.dumps(mine)), x), want, "pickle")
    buf = io.BytesIO()
    torch.save(mine, buf)
    buf.seek(0)
    assert_all_close(outputs(torch.load(buf, weights_only=False), x), want, "torch.save module")
    buf = io.BytesIO()
    torch.save(mine.state_dict(), buf)
    buf.seek(0)
    _, other = specimen(nn, key)
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    other.load_state_dict(torch.load(buf, weights_only=True))
    assert_all_close(outputs(other, x), want, "torch.save state_dict, weights_only load")


@pytest.mark.parametrize("key", SPECIMENS)
def test_dtype_moves_parameters(nn, key) -> None:
    ref, mine = specimen(nn, key)
    params_before = list(mine.parameters())
    assert mine.double() is mine
    assert all(p.dtype == torch.float64 for p in mine.parameters())
    assert [id(p) for p in mine.parameters()] == [id(p) for p in params_before]  # test_to
    x = sample_input(key, torch.float64)
    assert all(t.dtype == torch.float64 for t in outputs(mine, x))
    assert_all_close(outputs(mine, x), outputs(ref.double(), x), ".double()")
    mine.float()
    assert all(p.dtype == torch.float32 for p in mine.parameters())
    mine.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in mine.parameters())
    mine.to(device="cpu", dtype=torch.float32)
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in mine.parameters())
    assert outputs(mine, sample_input(key))[0].dtype == torch.float32


@pytest.mark.parametrize("key", SPECIMENS)
def test_factory_kwargs(nn, key) -> None:
    mode, kw = SPECIMENS[key]
    _, m = twin(nn, mode, I, H, device="cpu", dtype=torch.float64, **kw)
    assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in m.parameters())
    meta = build(nn, mode, I, H, device="meta", **kw)
    assert all(p.device.type == "meta" for p in meta.parameters())
    with torch.device("meta"):  # test_device_ctx_init
        ctx = build(nn, mode, I, H, **kw)
    assert all(p.device.type == "meta" for p in ctx.parameters())
    ctx.to_empty(device="cpu")  # test_to_empty
    assert all(p.device.type == "cpu" for p in ctx.parameters())
    ctx.reset_parameters()
    bound = 1 / H**0.5
    assert all(float(p.detach().abs().max()) <= bound for p in ctx.parameters())
    assert outputs(ctx, sample_input(key))[0].device.type == "cpu"


@pytest.mark.parametrize("key", SPECIMENS)
def test_same_seed_gives_torchs_initial_weights(nn, key) -> None:
    mode, kw = SPECIMENS[key]
    torch.manual_seed(5)
    ref = build(torch.nn, mode, I, H, **kw)
    torch.manual_seed(5)
    mine = build(nn, mode, I, H, **kw)
    for (name, a), (_, b) in zip(ref.named_parameters(), mine.named_parameters()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("key", SPECIMENS)
def test_non_contiguous_inputs(nn, key) -> None:
    """test_modules' ``test_non_contiguous_tensors``: strided input and hx, same results."""
    _, mine = specimen(nn, key)
    x = sample_input(key)
    cell = "Cell" in key
    mode, kw = SPECIMENS[key]
    n = 0 if cell else kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    hx = make_hx(mode, n, B, H, kw.get("proj_size", 0))
    hxs = list(hx) if isinstance(hx, tuple) else [hx]

    def spread(t):  # the same values, every other element of a twice-as-long last dimension
        wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1])
        wide[..., ::2] = t
        view = wide[..., ::2]
        assert not view.is_contiguous()
        return view

    hx_nc = tuple(spread(t) for t in hxs) if len(hxs) == 2 else spread(hxs[0])
    assert_all_close(outputs(mine, spread(x), hx_nc), outputs(mine, x, hx), "non-contiguous")


@pytest.mark.parametrize("key", SPECIMENS)
def test_train_and_eval(nn, key) -> None:
    """Without dropout, train and eval modes give the same outputs (the module_db entries are
    marked ``train_and_eval_differ`` only because of ``dropout``)."""
    _, mine = specimen(nn, key)
    x = sample_input(key)
    assert mine.training
    train_out = outputs(mine, x)
    assert mine.eval() is mine and not mine.training
    assert_all_close(outputs(mine, x), train_out, "eval vs train")
    mine.train()
    assert mine.training


@pytest.mark.parametrize("key", SPECIMENS)
def test_backward_fills_grads_and_zero_grad_clears_them(nn, key) -> None:
    ref, mine = specimen(nn, key)
    x = sample_input(key).requires_grad_()
    for m in (ref, mine):
        sum(t.sum() for t in flat(m(x))).backward()
    assert_all_close([p.grad for p in mine.parameters()], [p.grad for p in ref.parameters()])
    mine.zero_grad()
    assert all(p.grad is None for p in mine.parameters())


@pytest.mark.parametrize("key", MODULES)
def test_flat_weights_and_flatten_parameters(nn, key) -> None:
    ref, mine = specimen(nn, key)
    assert mine._flat_weights_names == ref._flat_weights_names
    assert [id(w) for w in mine._flat_weights] == [id(p) for p in mine.parameters()]
    assert [[tuple(w.shape) for w in ws] for ws in mine.all_weights] == [
        [tuple(w.shape) for w in ws] for ws in ref.all_weights
    ]
    assert mine.flatten_parameters() is None
    x = sample_input(key)
    assert_all_close(outputs(mine, x), outputs(ref, x))


@pytest.mark.parametrize("key", SPECIMENS)
def test_hooks_fire_as_on_torch(nn, key) -> None:
    """Forward pre-hooks, forward hooks and full backward hooks: each fires once per call,
    seeing what torch's hooks see."""
    records = []
    for m in specimen(nn, key):
        seen = []
        m.register_forward_pre_hook(lambda m, args, seen=seen: seen.append(("pre", len(args))))
        m.register_forward_hook(lambda m, a, out, seen=seen: seen.append(("post", len(flat(out)))))
        m.register_full_backward_hook(
            lambda m, gin, gout, seen=seen: seen.append(("backward", len(gout)))
        )
        x = sample_input(key).requires_grad_()
        sum(t.sum() for t in flat(m(x))).backward()
        records.append(seen)
    assert [kind for kind, _ in records[1]] == ["pre", "post", "backward"]
    assert records[1] == records[0]


@pytest.mark.parametrize("key", SPECIMENS)
def test_functional_call(nn, key) -> None:
    ref, mine = specimen(nn, key)
    torch.manual_seed(3)
    new = {k: torch.randn_like(v) for k, v in mine.named_parameters()}
    x = sample_input(key)
    got = flat(torch.func.functional_call(mine, new, (x,)))
    ref.load_state_dict(new)
    assert_all_close(got, outputs(ref, x), "functional_call")
    assert not torch.equal(
        mine.weight_ih_l0 if "Cell" not in key else mine.weight_ih,
        new["weight_ih_l0" if "Cell" not in key else "weight_ih"],
    )


@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated")
@pytest.mark.parametrize("name", ["weight_ih_l0", "weight_hr_l0"])
def test_weight_norm_on_a_weight(nn, name) -> None:
    """test_nn's ``test_rnn_weight_norm``: the normed weight stops being a Parameter in
    ``_flat_weights`` and comes back on removal; the forward sees the normed weight."""
    kw = {"proj_size": 2} if name == "weight_hr_l0" else {}
    ref, mine = twin(nn, "LSTM", I, H, **kw)
    count = len(mine._flat_weights)
    for m in (ref, mine):
        torch.nn.utils.weight_norm(m, name=name)
        assert sum(isinstance(p, torch.nn.Parameter) for p in m._flat_weights) == count - 1
    with torch.no_grad():
        for m in (ref, mine):
            getattr(m, name + "_g").mul_(2.0)
    x = sample_input("LSTM")
    assert_all_close(outputs(mine, x), outputs(ref, x), "weight-normed forward")
    torch.nn.utils.remove_weight_norm(mine, name=name)
    assert sum(isinstance(p, torch.nn.Parameter) for p in mine._flat_weights) == count
    params = dict(mine.named_parameters())
    assert name in params and name + "_g" not in params and name + "_v" not in params


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
def test_backward_with_retained_graph_repeats(nn, mode) -> None:
    """test_nn's ``test_rnn_retain_variables``: backward through one graph several times gives
    the same gradients each time."""
    _, mine = twin(nn, mode, I, H, num_layers=2)
    x = torch.randn(T, B, I, requires_grad=True)
    out = mine(x)[0].sum()
    out.backward(retain_graph=True)
    first = [x.grad.clone()] + [p.grad.clone() for p in mine.parameters()]
    for _ in range(3):
        mine.zero_grad()
        x.grad = None
        out.backward(retain_graph=True)
        assert_all_close([x.grad] + [p.grad for p in mine.parameters()], first)


def test_lstm_cell_backward_through_one_output(nn) -> None:
    """test_nn's ``test_lstmcell_backward_only_one_output_grad``: h alone or c alone."""
    cell = nn.LSTMCell(2, 3).double()
    x = torch.randn(1, 2, dtype=torch.float64, requires_grad=True)
    for k in (0, 1):
        x.grad = None
        cell(x)[k].sum().backward()
        assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_rnn_attributes_and_positional_nonlinearity(nn) -> None:
    """test_nn's ``test_RNN_nonlinearity`` and ``..._passed_as_arg``, and the attributes."""
    assert nn.RNN(1, 10).nonlinearity == "tanh"
    assert nn.RNN(1, 10, nonlinearity="relu").nonlinearity == "relu"
    assert nn.RNN(2, 3, 1, "relu").nonlinearity == "relu"
    assert nn.RNNCell(2, 3, True, "relu").nonlinearity == "relu"
    m = nn.LSTM(3, 4, 2, False, True, 0.5, True, 2)  # every argument positionally
    ref = torch.nn.LSTM(3, 4, 2, False, True, 0.5, True, 2)
    for attr in (
        "input_size",
        "hidden_size",
        "num_layers",
        "bias",
        "batch_first",
        "dropout",
        "bidirectional",
        "proj_size",
        "mode",
    ):
        assert getattr(m, attr) == getattr(ref, attr), attr
        assert type(getattr(m, attr)) is type(getattr(ref, attr)), attr
