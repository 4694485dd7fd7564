"""Optimiser mechanics beyond the Keras parity fixtures: state round trips, parameters without
gradients, earlier lstmkit state files, argument errors, Keras's variable counts."""

from __future__ import annotations

import copy

import pytest
import torch

from lstmkit.training import optimizers as O


def _params(seed: int = 0) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [
        torch.nn.Parameter(torch.randn(3, 4, generator=g)),
        torch.nn.Parameter(torch.randn(4, generator=g)),
    ]


def _grads(step: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(3, 4, generator=g), torch.randn(4, generator=g)]


def _run(opt: O.Optimizer, params: list[torch.nn.Parameter], steps: range) -> None:
    for k in steps:
        for p, g in zip(params, _grads(k)):
            p.grad = g.clone()
        opt.step()


ALL = [
    lambda: O.SGD(0.1, momentum=0.9),
    lambda: O.Adam(0.01, amsgrad=True),
    lambda: O.AdamW(0.01),
    lambda: O.RMSprop(0.01, centered=True, momentum=0.5),
    lambda: O.Adagrad(0.1),
    lambda: O.Adadelta(1.0),
    lambda: O.Adamax(0.01),
    lambda: O.Nadam(0.01),
    lambda: O.Lion(0.001),
    lambda: O.Ftrl(0.1, l1_regularization_strength=0.01),
    lambda: O.Adafactor(0.01),
    lambda: O.Adam(0.01, use_ema=True, ema_overwrite_frequency=3),
    lambda: O.SGD(0.1, momentum=0.5, gradient_accumulation_steps=2),
]


@pytest.mark.parametrize("make", ALL, ids=lambda m: type(m()).__name__)
def test_state_dict_resumes_exactly(make) -> None:
    # 3 steps, save, 3 more == 3 steps, restore into a fresh optimiser, 3 more.
    a_params, b_params = _params(), _params()
    a = make()
    a.build(a_params)
    _run(a, a_params, range(3))
    state = copy.deepcopy(a.state_dict())
    _run(a, a_params, range(3, 6))
    with torch.no_grad():
        for p, q in zip(b_params, _params()):
            p.copy_(q)
    b = make()
    b.build(b_params)
    _run(b, b_params, range(3))  # the same weights as a's after 3 steps ...
    b_fresh = make()
    b_fresh.build(b_params)
    b_fresh.load_state_dict(state)  # ... continued by a fresh optimiser from a's state
    _run(b_fresh, b_params, range(3, 6))
    for p, q in zip(a_params, b_params):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert b_fresh.iterations == a.iterations


def test_parameters_without_gradient_are_left_alone() -> None:
    params = _params()
    before = params[1].detach().clone()
    opt = O.Adam(0.1)
    opt.build(params)
    params[0].grad = torch.ones(3, 4)
    opt.step()  # params[1].grad is None: Keras skips it (no update, no decay, no moments)
    torch.testing.assert_close(params[1].detach(), before, rtol=0, atol=0)
    assert float(opt.slots["momentum"][1].abs().sum()) == 0.0
    assert float(opt.slots["momentum"][0].abs().sum()) > 0.0


def test_state_of_the_earlier_torch_backed_adam_loads() -> None:
    # lstmkit before Keras-exact optimisers stored torch.optim.Adam's state; its exp_avg /
    # exp_avg_sq are Keras's momentum / velocity, so a resumed run continues the same moments.
    params = _params()
    torch_opt = torch.optim.Adam(params, lr=0.01)
    for p, g in zip(params, _grads(0)):
        p.grad = g
    torch_opt.step()
    opt = O.Adam(0.01)
    opt.build(params)
    opt.load_state_dict({"iterations": 1, "learning_rate": 0.01, "torch": torch_opt.state_dict()})
    torch.testing.assert_close(opt.slots["momentum"][0], torch_opt.state[params[0]]["exp_avg"])
    torch.testing.assert_close(opt.slots["velocity"][1], torch_opt.state[params[1]]["exp_avg_sq"])
    assert opt.iterations == 1


def test_state_that_does_not_fit_is_refused() -> None:
    opt = O.Adam()
    opt.build(_params())
    state = opt.state_dict()
    state["torch"]["state"][0]["momentum"] = torch.zeros(2)
    with pytest.raises(ValueError, match=r"'momentum' of parameter 0: expected shape \(3, 4\)"):
        opt.load_state_dict(state)
    other = O.Adam()
    other.build(_params()[:1])
    with pytest.raises(ValueError, match="state for 2 parameters, the model has 1"):
        other.load_state_dict(opt.state_dict())


def test_variables_count_is_keras_for_a_dense_layer() -> None:
    # Keras 3.15, Dense(2) on 3 inputs (kernel 6 + bias 2): Adam 2 + 2·8 = 18 (iteration and
    # learning rate); SGD without momentum 2; Nadam adds its u_product: 19. Also in the parity
    # fixture for every case.
    for opt, want in ((O.Adam(), 18), (O.SGD(), 2), (O.Nadam(), 19)):
        opt.build([torch.nn.Parameter(torch.zeros(2, 3)), torch.nn.Parameter(torch.zeros(2))])
        assert opt.variables_count() == want, type(opt).__name__


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: O.SGD(momentum=1.5), r"SGD: momentum must be in \[0, 1\], got 1.5"),
        (lambda: O.Adam(gradient_accumulation_steps=1), "gradient_accumulation_steps must be"),
        (lambda: O.Adam(use_ema=True, ema_momentum=2.0), "ema_momentum must be in"),
        (lambda: O.Adam(loss_scale_factor=0), "loss_scale_factor must be a positive number"),
        (lambda: O.AdamW(weight_decay=None), "AdamW: weight_decay must be a number"),
        (lambda: O.Lion(beta_1=0.0), r"Lion: beta_1 must be in \(0, 1\]"),
        (lambda: O.Ftrl(learning_rate_power=0.5), "Ftrl: learning_rate_power must be <= 0"),
        (lambda: O.Adam(weight_decay=-1.0), "weight_decay must be a number >= 0"),
    ],
)
def test_argument_errors_name_the_argument(make, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_every_keras_name_resolves() -> None:
    for name in ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam",
                 "lion", "ftrl", "adafactor"):  # fmt: skip
        opt = O.get(name)
        assert type(opt).__name__.lower() == name
        assert type(O.get(O.serialize(opt))) is type(opt)
