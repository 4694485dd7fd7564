"""Higher-order gradients and ``torch.func`` through every engine: no silent wrong answers.

* ``gradgradcheck`` in float64 for ``lstmkit.nn.LSTM/GRU/RNN`` (two layers, both directions,
  the projection) on every engine, with respect to the input, the initial state and every weight.
* A gradient penalty (``create_graph=True``) and a Hessian-vector product with ``engine="auto"``
  equal ``torch.nn``'s with the same weights.
* ``torch.func``: per-sample gradients (``vmap(grad(...))``) equal a loop of ``torch.nn``
  backward passes; ``jacrev`` equals ``torch.autograd.functional.jacobian`` of ``torch.nn``;
  an engine that cannot run under a transform is refused by name, never silently wrong.
"""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, grad, jacrev, vmap

import lstmkit.nn as lnn
from lstmkit import engines

PAIRS = {
    "lstm": (lnn.LSTM, torch.nn.LSTM),
    "gru": (lnn.GRU, torch.nn.GRU),
    "rnn": (lnn.RNN, torch.nn.RNN),
}
AVAILABLE = [
    n
    for n in ("auto", "compiled", "fused", "reference")
    if n == "auto" or engines.ENGINES[n].available()
]


def pair(kind: str, engine: str = "auto", proj: int = 0, **kw):
    """An lstmkit module and a torch.nn module holding the same float64 weights."""
    torch.manual_seed(0)
    ours_cls, torch_cls = PAIRS[kind]
    extra = {"proj_size": proj} if proj else {}
    ours = ours_cls(3, 4, engine=engine, **extra, **kw).double()
    theirs = torch_cls(3, 4, **extra, **kw).double()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def as_function(module: torch.nn.Module):
    """``f(x, h0..., *weights)`` -> ``(output, *final states)`` for gradgradcheck."""
    names = [n for n, _ in module.named_parameters()]

    def f(x, *rest):
        n_state = len(rest) - len(names)
        hx = rest[:n_state]
        params = dict(zip(names, rest[n_state:]))
        out, final = functional_call(module, params, (x, hx if len(hx) > 1 else hx[0]))
        final = final if isinstance(final, tuple) else (final,)
        return (out, *final)

    return f, [p.detach().clone().requires_grad_() for p in module.parameters()]


def initial_state(module, batch: int) -> list[torch.Tensor]:
    d = 2 if module.bidirectional else 1
    layers = module.num_layers * d
    out = getattr(module, "proj_size", 0) or module.hidden_size
    g = torch.Generator().manual_seed(1)
    h = torch.randn(layers, batch, out, dtype=torch.float64, generator=g)
    if isinstance(module, (lnn.LSTM, torch.nn.LSTM)):
        c = torch.randn(layers, batch, module.hidden_size, dtype=torch.float64, generator=g)
        return [h.requires_grad_(), c.requires_grad_()]
    return [h.requires_grad_()]


CONFIGS = [
    ("lstm", {}, 0),
    ("lstm", {"num_layers": 2, "bidirectional": True}, 0),
    ("lstm", {"batch_first": True}, 2),
    ("gru", {"num_layers": 2, "bidirectional": True}, 0),
    ("rnn", {"num_layers": 2, "bidirectional": True}, 0),
    ("rnn", {"nonlinearity": "relu"}, 0),
]


@pytest.mark.parametrize("engine", AVAILABLE)
@pytest.mark.parametrize(("kind", "kw", "proj"), CONFIGS, ids=lambda v: str(v))
def test_gradgradcheck_every_engine(kind, kw, proj, engine) -> None:
    ours, _ = pair(kind, engine, proj, **kw)
    if engine != "auto":
        # an engine that cannot run the configuration refuses; that is the contract
        x0 = torch.randn(3, 2, 3, dtype=torch.float64)
        try:
            ours(x0)
        except ValueError as exc:
            assert f"engine={engine!r}" in str(exc)
            return
    f, weights = as_function(ours)
    x = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)
    state = initial_state(ours, 3 if kw.get("batch_first") else 2)
    # fast_mode: a random projection of the full check (test_engine_compiled.py runs the full
    # one on the kernel itself); a wrong second derivative fails it as surely
    args = (x, *state, *weights)
    assert torch.autograd.gradgradcheck(f, args, eps=1e-6, atol=1e-6, fast_mode=True)


@pytest.mark.parametrize("kind", list(PAIRS))
def test_gradient_penalty_and_hvp_equal_torch(kind, assert_close) -> None:
    """What users actually write: ``grad(create_graph=True)``, then a second ``backward``."""
    ours, theirs = pair(kind, num_layers=2, bidirectional=True)
    x = torch.randn(4, 5, 3, dtype=torch.float64)
    results = []
    for module in (ours, theirs):
        xi = x.clone().requires_grad_()
        out, _ = module(xi)
        (gx,) = torch.autograd.grad(out.tanh().sum(), xi, create_graph=True)
        penalty = (gx.norm(dim=-1) - 1).pow(2).mean()
        params = list(module.parameters())
        g_params = torch.autograd.grad(penalty, params)
        # Hessian-vector product of the plain loss with a fixed vector
        loss = module(xi)[0].pow(2).sum()
        g1 = torch.autograd.grad(loss, params, create_graph=True)
        vec = [torch.ones_like(p) for p in params]
        hvp = torch.autograd.grad(sum((a * v).sum() for a, v in zip(g1, vec)), params)
        results.append((g_params, hvp))
    for (gp_a, hvp_a), (gp_b, hvp_b) in zip([results[0]], [results[1]]):
        for k, (a, b) in enumerate(zip(gp_a, gp_b)):
            assert_close(a, b, f"penalty gradient {k}")
        for k, (a, b) in enumerate(zip(hvp_a, hvp_b)):
            assert_close(a, b, f"Hessian-vector product {k}")


@pytest.mark.parametrize("kind", list(PAIRS))
def test_per_sample_gradients_with_vmap(kind, assert_close) -> None:
    ours, theirs = pair(kind, num_layers=2, bidirectional=True, batch_first=True)
    params = {k: v.detach() for k, v in ours.named_parameters()}
    x = torch.randn(5, 6, 3, dtype=torch.float64)

    def loss(p, xi):
        out, _ = functional_call(ours, p, (xi.unsqueeze(0),))
        return out.pow(2).sum()

    per_sample = vmap(grad(loss), in_dims=(None, 0))(params, x)
    for b in range(x.shape[0]):
        theirs.zero_grad()
        theirs(x[b : b + 1])[0].pow(2).sum().backward()
        for name, p in theirs.named_parameters():
            assert_close(per_sample[name][b], p.grad, f"sample {b} d/d {name}")


@pytest.mark.parametrize("kind", list(PAIRS))
def test_jacrev_equals_torch_jacobian(kind, assert_close) -> None:
    ours, theirs = pair(kind, bidirectional=True)
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    got = jacrev(lambda xi: ours(xi)[0])(x)
    want = torch.autograd.functional.jacobian(lambda xi: theirs(xi)[0], x)
    assert_close(got, want, "jacobian")


def test_grad_transform_alone_equals_autograd(assert_close) -> None:
    ours, theirs = pair("lstm")
    params = {k: v.detach() for k, v in ours.named_parameters()}
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    got = grad(lambda p: functional_call(ours, p, (x,))[0].pow(2).sum())(params)
    theirs(x)[0].pow(2).sum().backward()
    for name, p in theirs.named_parameters():
        assert_close(got[name], p.grad, f"d/d {name}")


@pytest.mark.skipif(not engines.ENGINES["compiled"].available(), reason="no compiled engine")
def test_explicit_engine_under_a_transform_is_refused_by_name() -> None:
    m = lnn.GRU(3, 4, engine="compiled").double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"engine=.compiled.*torch.func"):
        vmap(lambda xi: m(xi.unsqueeze(1))[0])(x)
    m = lnn.LSTM(3, 4, engine="fused").double()
    with pytest.raises(ValueError, match=r"engine=.fused.*vmap"):
        vmap(lambda xi: m(xi.unsqueeze(1))[0])(x)
    # outside any transform the same modules run on the engines asked for
    assert engines.active_transforms() == set()
    assert m(x)[0].shape == (2, 5, 4)
