"""torch's argument checks (test_nn's ``test_rnn_args_check``,
``test_projections_lstm_args_check``, ``test_projections_errors_on_gru_and_rnn``,
``test_RNN_cell_no_broadcasting``, ``test_RNN_cell_forward_*_size``, ``test_RNN_nonlinearity``
and module_db's ``module_error_inputs`` for the six modules).

The expected class in each table is the one torch raises: the ``torch`` run asserts that class
exactly, the ``lstmkit`` run that its exception is an instance of it (lstmkit raises its own
classes, which subclass torch's, with messages naming the argument).
"""

from __future__ import annotations

import warnings

import pytest
import torch

from ._helpers import raised

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

X = torch.randn(5, 2, 3)  # (T, B, I) for modules built with input_size 3
Z = torch.zeros


def check_raises(nn, call, cls) -> BaseException:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        err = raised(lambda: call(nn))
    assert err is not None, f"{nn.name} accepted the call"
    if nn.is_lstmkit:
        assert isinstance(err, cls), f"{type(err).__mro__} is not a {cls.__name__}"
        assert str(err), "lstmkit's message names the problem"
    else:
        assert type(err) is cls, f"torch raised {type(err).__name__}: {err}"
    return err


CONSTRUCTOR_ERRORS = {
    "hidden_size 0": (lambda nn: nn.LSTM(3, 0), ValueError),
    "hidden_size -1": (lambda nn: nn.GRU(3, -1), ValueError),
    "hidden_size float": (lambda nn: nn.RNN(3, 4.0), TypeError),
    "input_size 0": (lambda nn: nn.LSTM(0, 4), ValueError),
    "input_size -1": (lambda nn: nn.GRU(-1, 4), ValueError),
    "input_size float": (lambda nn: nn.LSTM(3.0, 4), TypeError),
    "num_layers 0": (lambda nn: nn.LSTM(3, 4, 0), ValueError),
    "num_layers float": (lambda nn: nn.GRU(3, 4, 2.0), TypeError),
    "proj_size negative": (lambda nn: nn.LSTM(3, 4, proj_size=-1), ValueError),
    "proj_size == hidden_size": (lambda nn: nn.LSTM(3, 4, proj_size=4), ValueError),
    "proj_size > hidden_size": (lambda nn: nn.LSTM(3, 4, proj_size=9), ValueError),
    "proj_size float": (lambda nn: nn.LSTM(3, 4, proj_size=1.0), TypeError),
    "proj_size on GRU": (lambda nn: nn.GRU(3, 4, proj_size=2), ValueError),
    "proj_size on RNN": (lambda nn: nn.RNN(3, 4, proj_size=2), ValueError),
    "dropout above 1": (lambda nn: nn.LSTM(3, 4, 2, dropout=1.5), ValueError),
    "dropout below 0": (lambda nn: nn.GRU(3, 4, 2, dropout=-0.1), ValueError),
    "dropout a string": (lambda nn: nn.RNN(3, 4, 2, dropout="0.5"), ValueError),
    "dropout a bool": (lambda nn: nn.LSTM(3, 4, 2, dropout=True), ValueError),
    "dropout None": (lambda nn: nn.LSTM(3, 4, 2, dropout=None), TypeError),
    "dropout a list": (lambda nn: nn.GRU(3, 4, 2, dropout=[0.5]), TypeError),
    "nonlinearity unknown": (lambda nn: nn.RNN(3, 4, nonlinearity="sigmoid"), ValueError),
    "bias a string": (lambda nn: nn.LSTM(3, 4, bias="True"), TypeError),
    "batch_first 0": (lambda nn: nn.LSTM(3, 4, batch_first=0), TypeError),
    "batch_first a string": (lambda nn: nn.GRU(3, 4, batch_first="False"), TypeError),
    "cell hidden_size -1": (lambda nn: nn.LSTMCell(3, -1), RuntimeError),
    "cell hidden_size float": (lambda nn: nn.GRUCell(3, 4.0), TypeError),
    "cell input_size -2": (lambda nn: nn.RNNCell(-2, 4), RuntimeError),
}


@pytest.mark.parametrize("case", CONSTRUCTOR_ERRORS)
def test_constructor_refuses(nn, case) -> None:
    call, cls = CONSTRUCTOR_ERRORS[case]
    check_raises(nn, call, cls)


def test_bool_sizes(nn) -> None:
    """torch takes ``True`` for 1 (a bool is an int)."""
    if nn.is_lstmkit:
        # deviation: bool sizes (a bool where a size is due is a mistake lstmkit names)
        with pytest.raises(TypeError, match="hidden_size must be an int"):
            nn.GRU(3, True)
        with pytest.raises(TypeError, match="hidden_size must be an int"):
            nn.GRUCell(3, True)
    else:
        assert nn.GRU(3, True)(X)[0].shape == (5, 2, 1)
        assert nn.GRUCell(3, True)(X[0]).shape == (2, 1)


def test_rnn_cell_unknown_nonlinearity(nn) -> None:
    if nn.is_lstmkit:
        # deviation: RNNCell nonlinearity checked at construction (torch: at the first call)
        err = check_raises(nn, lambda nn: nn.RNNCell(3, 4, nonlinearity="sigmoid"), RuntimeError)
        assert isinstance(err, ValueError)
    else:
        cell = nn.RNNCell(3, 4, nonlinearity="sigmoid")
        check_raises(nn, lambda nn: cell(X[0]), RuntimeError)


def test_cell_with_input_size_zero(nn) -> None:
    if nn.is_lstmkit:
        # deviation: cells with input_size 0 (lstmkit refuses them, as every module does)
        check_raises(nn, lambda nn: nn.GRUCell(0, 4), ValueError)
    else:
        assert nn.GRUCell(0, 4)(torch.randn(2, 0)).shape == (2, 4)


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN"])
def test_dropout_with_one_layer_warns(nn, name) -> None:
    with pytest.warns(UserWarning, match="dropout"):
        getattr(nn, name)(3, 4, num_layers=1, dropout=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(nn, name)(3, 4, num_layers=2, dropout=0.5)
        getattr(nn, name)(3, 4, num_layers=1, dropout=0.0)


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell"])
def test_zero_hidden_size_cells_work(nn, name) -> None:
    """test_nn's ``test_RNN_cell_forward_zero_hidden_size``; modules refuse hidden_size 0."""
    cell = getattr(nn, name)(3, 0)
    for x in (torch.randn(2, 3), torch.randn(3)):
        out = cell(x)
        outs = list(out) if isinstance(out, tuple) else [out]
        assert [tuple(t.shape) for t in outs] == [(*x.shape[:-1], 0)] * len(outs)
    hx = Z(2, 0) if name != "LSTMCell" else (Z(2, 0), Z(2, 0))
    assert cell(torch.randn(2, 3), hx)[0].shape[-1] == 0


# -- modules: the call --------------------------------------------------------------------

L, BAD = 2, 7  # test_rnn_args_check: two layers, and a size nothing divides
GOOD_X, GOOD_H = (6, 4, 3), (L, 4, 5)


def _args_check_call(mode: str, x_shape, h_shape, which: int):
    def call(nn):
        m = getattr(nn, mode)(3, 5, L)
        x, h = torch.randn(x_shape), torch.randn(h_shape)
        if mode != "LSTM":
            return m(x, h)
        good = torch.randn(GOOD_H)
        return m(x, (h, good) if which == 0 else (good, h))

    return call


def _with(shape, dim, size):
    return tuple(size if k == dim else s for k, s in enumerate(shape))


ARGS_CHECK = {
    "input batch": (_with(GOOD_X, 1, BAD), GOOD_H),
    "hidden batch": (GOOD_X, _with(GOOD_H, 1, BAD)),
    "input size": (_with(GOOD_X, 2, BAD), GOOD_H),
    "hidden size": (GOOD_X, _with(GOOD_H, 2, BAD)),
    "hidden layers": (GOOD_X, _with(GOOD_H, 0, BAD)),
}


@pytest.mark.parametrize(
    ("mode", "which"),
    [("LSTM", 0), ("LSTM", 1), ("GRU", 0), ("RNN", 0)],
    ids=["LSTM-h_0", "LSTM-c_0", "GRU", "RNN"],
)
@pytest.mark.parametrize("case", ARGS_CHECK)
def test_rnn_args_check(nn, case, mode, which) -> None:
    """A wrong batch, feature size or layer count in the input or hx: RuntimeError. For the
    LSTM the wrong tensor is h_0 or c_0 (the other one right); GRU and RNN have one."""
    x_shape, h_shape = ARGS_CHECK[case]
    check_raises(nn, _args_check_call(mode, x_shape, h_shape, which), RuntimeError)


PROJ_CHECK = {
    "h_0 of hidden_size": ((L, 4, 5), (L, 4, 5)),
    "c_0 of proj_size": ((L, 4, 2), (L, 4, 2)),
    "h_0 batch": ((L, BAD, 2), (L, 4, 5)),
    "c_0 batch": ((L, 4, 2), (L, BAD, 5)),
    "h_0 layers": ((BAD, 4, 2), (L, 4, 5)),
    "c_0 layers": ((L, 4, 2), (BAD, 4, 5)),
}


@pytest.mark.parametrize("case", PROJ_CHECK)
def test_projections_lstm_args_check(nn, case) -> None:
    """With ``proj_size`` h_0 is ``(L, B, proj_size)`` and c_0 ``(L, B, hidden_size)``."""
    h_shape, c_shape = PROJ_CHECK[case]

    def call(nn):
        m = nn.LSTM(3, 5, L, proj_size=2)
        return m(torch.randn(GOOD_X), (torch.randn(h_shape), torch.randn(c_shape)))

    check_raises(nn, call, RuntimeError)
    good = nn.LSTM(3, 5, L, proj_size=2)(torch.randn(GOOD_X), (Z(L, 4, 2), Z(L, 4, 5)))
    assert good[0].shape == (6, 4, 2) and good[1][1].shape == (L, 4, 5)


FORWARD_ERRORS = {
    "4-D input": (lambda nn: nn.LSTM(3, 4)(torch.randn(5, 2, 1, 3)), ValueError),
    "1-D input": (lambda nn: nn.GRU(3, 4)(torch.randn(3)), ValueError),
    "feature size": (lambda nn: nn.RNN(3, 4)(torch.randn(5, 2, 7)), RuntimeError),
    "unbatched feature size": (lambda nn: nn.LSTM(3, 4)(torch.randn(5, 7)), RuntimeError),
    "batched input, 2-D hx": (lambda nn: nn.GRU(3, 4)(X, Z(1, 4)), RuntimeError),
    "unbatched input, 3-D hx": (lambda nn: nn.RNN(3, 4)(X[:, 0], Z(1, 1, 4)), RuntimeError),
    "batched input, 4-D hx": (lambda nn: nn.GRU(3, 4)(X, Z(1, 1, 2, 4)), RuntimeError),
    "LSTM, 2-D c_0": (lambda nn: nn.LSTM(3, 4)(X, (Z(1, 2, 4), Z(1, 4))), RuntimeError),
    "LSTM unbatched, 3-D c_0": (
        lambda nn: nn.LSTM(3, 4)(X[:, 0], (Z(1, 4), Z(1, 1, 4))),
        RuntimeError,
    ),
    "LSTM hx a one-row tensor": (lambda nn: nn.LSTM(3, 4)(X, Z(1, 2, 4)), IndexError),
    "LSTM hx a two-row tensor": (lambda nn: nn.LSTM(3, 4)(X, Z(2, 2, 4)), RuntimeError),
    "LSTM hx a 4-D tensor": (lambda nn: nn.LSTM(3, 4)(X, Z(2, 1, 2, 4)), TypeError),
    "LSTM hx a 1-tuple": (lambda nn: nn.LSTM(3, 4)(X, (Z(1, 2, 4),)), IndexError),
    "LSTM hx a 3-tuple": (lambda nn: nn.LSTM(3, 4)(X, (Z(1, 2, 4),) * 3), RuntimeError),
    "float64 input, float32 weights": (lambda nn: nn.LSTM(3, 4)(X.double()), ValueError),
    "float16 input": (lambda nn: nn.GRU(3, 4)(X.half()), ValueError),
    "integer input": (lambda nn: nn.RNN(3, 4)(X.long()), ValueError),
    "float32 input, float64 weights": (lambda nn: nn.GRU(3, 4).double()(X), ValueError),
    "hx float64": (lambda nn: nn.GRU(3, 4)(X, Z(1, 2, 4, dtype=torch.float64)), RuntimeError),
    "hx integer": (lambda nn: nn.RNN(3, 4)(X, Z(1, 2, 4, dtype=torch.long)), RuntimeError),
    "c_0 float64": (
        lambda nn: nn.LSTM(3, 4)(X, (Z(1, 2, 4), Z(1, 2, 4, dtype=torch.float64))),
        RuntimeError,
    ),
    "empty sequence": (lambda nn: nn.LSTM(3, 4)(torch.randn(0, 2, 3)), RuntimeError),
    "empty unbatched sequence": (lambda nn: nn.GRU(3, 4)(torch.randn(0, 3)), RuntimeError),
    "empty batch-first sequence": (
        lambda nn: nn.RNN(3, 4, batch_first=True)(torch.randn(2, 0, 3)),
        RuntimeError,
    ),
}


@pytest.mark.parametrize("case", FORWARD_ERRORS)
def test_module_call_refuses(nn, case) -> None:
    call, cls = FORWARD_ERRORS[case]
    check_raises(nn, call, cls)


@pytest.mark.parametrize("case", ["input", "GRU hx"])
def test_not_a_tensor(nn, case) -> None:
    call = {
        "input": lambda nn: nn.GRU(3, 4)([[1.0, 2.0, 3.0]]),
        "GRU hx": lambda nn: nn.GRU(3, 4)(X, (Z(1, 2, 4),)),
    }[case]
    if nn.is_lstmkit:
        # deviation: non-tensor input or hx (TypeError naming it; torch's AttributeError)
        check_raises(nn, call, TypeError)
    else:
        check_raises(nn, call, AttributeError)


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["tf", "bf"])
def test_empty_batch(nn, mode, batch_first) -> None:
    """test_nn's ``test_RNN_input_size_zero``: a batch of 0 sequences runs, and backward too."""
    m = getattr(nn, mode)(3, 4, num_layers=2, batch_first=batch_first)
    x = torch.randn((0, 5, 3) if batch_first else (5, 0, 3), requires_grad=True)
    out, h = m(x)
    assert out.shape == ((0, 5, 4) if batch_first else (5, 0, 4))
    for t in h if mode == "LSTM" else (h,):
        assert t.shape == (2, 0, 4)
    out.sum().backward()


# -- cells: the call ----------------------------------------------------------------------


def _cell(name: str, *args):
    return lambda nn: getattr(nn, name)(10, 20, *args)


CELL_ERRORS = {
    # module_error_inputs_torch_nn_RNN_GRU_Cell / _LSTMCell
    "input size": (lambda c: c(torch.randn(3, 11), torch.randn(3, 20)), RuntimeError),
    "hidden size": (lambda c: c(torch.randn(3, 10), torch.randn(3, 21)), RuntimeError),
    "batch mismatch": (lambda c: c(torch.randn(3, 10), torch.randn(5, 20)), RuntimeError),
    "4-D hx": (lambda c: c(torch.randn(3, 10), torch.randn(3, 1, 1, 20)), ValueError),
    "3-D input": (lambda c: c(torch.randn(1, 3, 10)), ValueError),
    "0-D input": (lambda c: c(torch.tensor(1.0)), ValueError),
    # test_RNN_cell_no_broadcasting
    "hx batch of 1": (lambda c: c(torch.randn(3, 10), torch.randn(1, 20)), RuntimeError),
    "hx hidden of 1": (lambda c: c(torch.randn(3, 10), torch.randn(3, 1)), RuntimeError),
    "input features of 1": (lambda c: c(torch.randn(3, 1), torch.randn(3, 20)), RuntimeError),
    # batched and unbatched mixed
    "unbatched input, 2-D hx": (lambda c: c(torch.randn(10), torch.randn(1, 20)), RuntimeError),
    "batched input, 1-D hx": (lambda c: c(torch.randn(1, 10), torch.randn(20)), RuntimeError),
    # dtypes
    "float64 input": (lambda c: c(torch.randn(3, 10).double()), RuntimeError),
    "integer input": (lambda c: c(torch.ones(3, 10, dtype=torch.long)), RuntimeError),
    "float64 hx": (lambda c: c(torch.randn(3, 10), torch.randn(3, 20).double()), RuntimeError),
}
CELL_KINDS = {
    "LSTMCell": _cell("LSTMCell"),
    "GRUCell": _cell("GRUCell"),
    "RNNCell": _cell("RNNCell"),
    "RNNCell-bias-relu": _cell("RNNCell", "relu"),  # module_db's RNNCell(10, 20, 'relu')
}


def _call_cell(kind: str, case: str, nn):
    cell = CELL_KINDS[kind](nn)
    name = type(cell).__name__
    fn, _ = CELL_ERRORS[case]

    def wrapped(x, h=None):
        if h is not None and name == "LSTMCell":
            good = torch.randn((*h.shape[:-1], 20)) if h.dim() in (1, 2) else h
            return cell(x, (h, good))
        return cell(x, h)

    return fn(wrapped)


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("case", CELL_ERRORS)
def test_cell_call_refuses(nn, case, kind) -> None:
    check_raises(nn, lambda nn: _call_cell(kind, case, nn), CELL_ERRORS[case][1])


@pytest.mark.parametrize("which", [0, 1], ids=["h_0", "c_0"])
def test_lstm_cell_one_bad_state(nn, which) -> None:
    """test_RNN_cell_no_broadcasting for the LSTM cell: h_0 or c_0 wrong, the other right."""
    good, bad = torch.randn(3, 20), torch.randn(1, 20)
    hx = (bad, good) if which == 0 else (good, bad)
    check_raises(nn, lambda nn: nn.LSTMCell(10, 20)(torch.randn(3, 10), hx), RuntimeError)
    hx4 = (torch.randn(3, 1, 1, 20), good) if which == 0 else (good, torch.randn(3, 1, 1, 20))
    check_raises(nn, lambda nn: nn.LSTMCell(10, 20)(torch.randn(3, 10), hx4), ValueError)


def test_lstm_cell_hx_not_a_tuple(nn) -> None:
    check_raises(nn, lambda nn: nn.LSTMCell(10, 20)(torch.randn(3, 10), Z(3, 20)), TypeError)


def test_cell_input_not_a_tensor(nn) -> None:
    call = lambda nn: nn.GRUCell(3, 4)([1.0, 2.0, 3.0])  # noqa: E731
    # deviation: non-tensor input or hx (TypeError naming it; torch's AttributeError)
    check_raises(nn, call, TypeError if nn.is_lstmkit else AttributeError)


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cell_empty_batch(nn, name) -> None:
    out = getattr(nn, name)(3, 4)(torch.randn(0, 3, requires_grad=True))
    outs = list(out) if isinstance(out, tuple) else [out]
    assert [t.shape for t in outs] == [(0, 4)] * len(outs)
    sum(t.sum() for t in outs).backward()
