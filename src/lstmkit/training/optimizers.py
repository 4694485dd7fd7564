"""Optimisers with Keras 3's names, defaults and update formulas, on torch ``_foreach`` ops.

Each class computes exactly Keras 3's update (checked against Keras 3.15 on its torch backend
in ``tests/test_optimizer_parity.py``), not torch's variant of the algorithm: e.g. Keras's Adam
adds ``ε`` to the *uncorrected* ``√v`` and folds the bias corrections into the step size, and
its RMSprop puts ``ε`` inside the square root. Clipping, weight decay, EMA, gradient
accumulation and loss scaling are the base class's (:mod:`lstmkit.training.optimizer_base`).

Notation for one parameter ``w`` with gradient ``g`` at update ``t = iterations + 1`` and
learning rate ``lr``; every line is one ``_foreach`` operation over all parameters.

>>> import torch
>>> w = torch.nn.Parameter(torch.tensor([1.0]))
>>> opt = SGD(learning_rate=0.1); opt.build([w])
>>> w.grad = torch.tensor([2.0]); opt.step()
>>> round(float(w), 4), opt.iterations
(0.8, 1)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lstmkit.training.optimizer_base import Optimizer, Tensors

__all__ = [
    "SGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "Ftrl", "Lion",
    "Nadam", "Optimizer", "RMSprop", "get", "serialize",
]  # fmt: skip

Params = list[nn.Parameter]
State = dict[str, Tensors]


class SGD(Optimizer):
    """Stochastic gradient descent, Keras's form of momentum (default ``lr=0.01``)::

        m ← μ·m - lr·g;   w ← w + m                 (momentum μ > 0)
        w ← w + μ·m - lr·g                          (nesterov, with the new m)
        w ← w - lr·g                                (μ = 0)

    With a constant ``lr`` this equals torch's SGD; with a changing one it does not (Keras
    scales the gradient by the rate when it enters ``m``).
    """

    _keras_name = "sgd"

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)):
            raise ValueError(f"SGD: momentum must be a number in [0, 1], got {momentum!r}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self._slot_names = ("momentum",) if self.momentum else ()

    def _update(self, params: Params, grads: Tensors, state: State, lr: float) -> None:
        if not self.momentum:
            torch._foreach_add_(params, grads, alpha=-lr)
            return
        m = state["momentum"]
        torch._foreach_mul_(m, self.momentum)
        torch._foreach_add_(m, grads, alpha=-lr)
        if self.nesterov:
            torch._foreach_add_(params, grads, alpha=-lr)
            torch._foreach_add_(params, m, alpha=self.momentum)
        else:
            torch._foreach_add_(params, m)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) as Keras 3 computes it (defaults ``lr=0.001, β1=0.9,
    β2=0.999, ε=1e-7``)::

        m ← m + (g - m)(1 - β1);   v ← v + (g² - v)(1 - β2)
        v̂ ← max(v̂, v)                              (amsgrad; v̂ replaces v below)
        α = lr · √(1 - β2^t) / (1 - β1^t)
        w ← w - α · m / (√v + ε)

    (torch's Adam divides by ``√(v / (1 - β2^t)) + ε``: the same up to where ``ε`` sits.)
    """

    _keras_name = "adam"

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.amsgrad = bool(amsgrad)
        self._slot_names = ("momentum", "velocity") + (("velocity_hat",) if amsgrad else ())

    def _update(self, params: Params, grads: Tensors, state: State, lr: float) -> None:
        t = self.iterations + 1
        m, v = state["momentum"], state["velocity"]
        torch._foreach_lerp_(m, grads, 1.0 - self.beta_1)
        torch._foreach_mul_(v, self.beta_2)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - self.beta_2)
        if self.amsgrad:
            torch._foreach_maximum_(state["velocity_hat"], v)
            v = state["velocity_hat"]
        f, one = self._f, self._f(1.0)  # Keras's float32 coefficients
        alpha = f(lr) * np.sqrt(one - f(self.beta_2) ** f(t)) / (one - f(self.beta_1) ** f(t))
        alpha = float(alpha)
        denom = torch._foreach_sqrt(v)
        torch._foreach_add_(denom, self.epsilon)
        torch._foreach_addcdiv_(params, m, denom, value=-alpha)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): Keras's Adam with
    ``weight_decay`` required, default ``0.004`` (``w ← w (1 - lr·λ)`` before the step)."""

    _keras_name = "adam_w"

    def __init__(
        self, learning_rate: Any = 0.001, weight_decay: float = 0.004, **kwargs: Any
    ) -> None:
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number, got None")
        super().__init__(learning_rate, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012) as Keras 3 computes it (defaults ``lr=0.001,
    ρ=0.9, momentum=0, ε=1e-7, centered=False``)::

        v ← ρ·v + (1 - ρ)·g²
        a ← ρ·a + (1 - ρ)·g                         (centered)
        Δ = lr · g / √(v - a² + ε)                  (not centered: √(v + ε))
        s ← μ·s + Δ;  w ← w - s                     (momentum μ > 0; else w ← w - Δ)
    """

    _keras_name = "rm_sprop"

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon = rho, momentum, epsilon
        self.centered = bool(centered)
        self._slot_names = (
            ("velocity",)
            + (("momentum",) if momentum > 0 else ())
            + (("average_gradient",) if centered else ())
        )

    def _update(self, params: Params, grads: Tensors, state: State, lr: float) -> None:
        rho = self.rho
        v = state["velocity"]
        torch._foreach_mul_(v, rho)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - rho)
        if self.centered:
            a = state["average_gradient"]
            torch._foreach_mul_(a, rho)
            torch._foreach_add_(a, grads, alpha=1.0 - rho)
            denom = torch._foreach_addcmul(v, a, a, value=-1.0)
            torch._foreach_add_(denom, self.epsilon)
        else:
            denom = torch._foreach_add(v, self.epsilon)
        torch._foreach_sqrt_(denom)
        if self.momentum > 0:
            s = state["momentum"]
            torch._foreach_mul_(s, self.momentum)
            torch._foreach_addcdiv_(s, grads, denom, value=lr)
            torch._foreach_sub_(params, s)
        else:
            torch._foreach_addcdiv_(params, grads, denom, value=-lr)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011) as Keras 3 computes it (defaults ``lr=0.001,
    initial_accumulator_value=0.1, ε=1e-7``)::

        A ← A + g²   (A starts at initial_accumulator_value);   w ← w - lr·g / √(A + ε)
    """

    _keras_name = "adagrad"
    _slot_names = ("accumulator",)

    def __init__(
        self,
        learning_rate: Any = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _slot_initial(self, slot: str) -> float:
        return float(self.initial_accumulator_value)

    def _update(self, params: Params, grads: Tensors, state: State, lr: float) -> None:
        acc = state["accumulator"]
        torch._foreach_addcmul_(acc, grads, grads)
        denom = torch._foreach_add(acc, self.epsilon)
        torch._foreach_sqrt_(denom)
        torch._foreach_addcdiv_(params, grads, denom, value=-lr)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012) as Keras 3 computes it (defaults ``lr=0.001, ρ=0.95,
    ε=1e-7``)::

        G ← ρ·G + (1 - ρ)·g²
        Δ = -√(D + ε) · g / √(G + ε)
        D ← ρ·D + (1 - ρ)·Δ²;   w ← w + lr·Δ
    """

    _keras_name = "adadelta"
    _slot_names = ("accumulated_grad", "accumulated_delta_var")

    def __init__(
        self, learning_rate: Any = 0.001, rho: float = 0.95, epsilon: float = 1e-7, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def _update(self, params: Params, grads: Tensors, state: State, lr: float) -> None:
        rho, eps = self.rho, self.epsilon
        acc_g, acc_d = state["accumulated_grad"], state["accumulated_delta_var"]
        torch._foreach_mul_(acc_g, rho)
        torch._foreach_addcmul_(acc_g, grads, grads, value=1.0 - rho)
        rms_d = torch._foreach_add(acc_d, eps)
        torch._foreach_sqrt_(rms_d)
        rms_g = torch._foreach_add(acc_g, eps)
        torch._foreach_sqrt_(rms_g)
        delta = torch._foreach_mul(rms_d, grads)
        torch._foreach_div_(delta, rms_g)
        torch._foreach_neg_(delta)
        torch._foreach_mul_(acc_d, rho)
        torch._foreach_addcmul_(acc_d, delta, delta, value=1.0 - rho)
        torch._foreach_add_(params, delta, alpha=lr)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Adamax (Kingma & Ba 2015, section 7) as Keras 3 computes it (defaults ``lr=0.001,
    β1=0.9, β2=0.999, ε=1e-7``)::

        m ← m + (g - m)(1 - β1);   u ← max(β2·u, |g|)
        w ← w - lr·m / ((1 - β1^t)(u + ε))
    """

    _keras_name = "adamax"
    _slot_names = ("momentum", "norm")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _update(self, params: Params, grads: Tensors, state: State, lr: float) -> None:
        t = self.iterations + 1
        m, u = state["momentum"], state["norm"]
        torch._foreach_lerp_(m, grads, 1.0 - self.beta_1)
        torch._foreach_mul_(u, self.beta_2)
        torch._foreach_maximum_(u, torch._foreach_abs(grads))
        denom = torch._foreach_add(u, self.epsilon)
        torch._foreach_mul_(denom, float(self._f(1.0) - self._f(self.beta_1) ** self._f(t)))
        torch._foreach_addcdiv_(params, m, denom, value=-lr)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


class Nadam(Optimizer):
    """Nesterov Adam (Dozat 2016) as Keras 3 computes it (defaults ``lr=0.001, β1=0.9,
    β2=0.999, ε=1e-7``), with the momentum schedule ``u_t = β1 (1 - ½·0.96^t)`` and the scalar
    state ``Π_t = Π_{t-1}·u_t`` (``u_product``, 1 at the start)::

        m ← m + (g - m)(1 - β1);   v ← v + (g² - v)(1 - β2)
        m̂ = u_{t+1}·m / (1 - Π_t·u_{t+1}) + (1 - u_t)·g / (1 - Π_t)
        v̂ = v / (1 - β2^t);   w ← w - lr·m̂ / (√v̂ + ε)
    """

    _keras_name = "nadam"
    _slot_names = ("momentum", "velocity")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.u_product = 1.0

    def _reset_scalars(self) -> None:
        self.u_product = 1.0

    def _scalar_state(self) -> dict[str, float]:
        return {"u_product": self.u_product}

    def _load_scalar_state(self, state: dict[str, float]) -> None:
        self.u_product = float(state.get("u_product", 1.0))

    def _update(self, params: Params, grads: Tensors, state: State, lr: float) -> None:
        f, one = self._f, self._f(1.0)  # Keras's float32 coefficients and u_product
        t = f(self.iterations + 1)
        b1, b2, decay, half = f(self.beta_1), f(self.beta_2), f(0.96), f(0.5)
        u_t = b1 * (one - half * decay**t)
        u_next = b1 * (one - half * decay ** (t + one))
        u_product = f(self.u_product) * u_t
        self.u_product = float(u_product)
        m, v = state["momentum"], state["velocity"]
        torch._foreach_lerp_(m, grads, 1.0 - self.beta_1)
        torch._foreach_mul_(v, self.beta_2)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - self.beta_2)
        m_hat = torch._foreach_mul(m, float(u_next / (one - u_product * u_next)))
        torch._foreach_add_(m_hat, grads, alpha=float((one - u_t) / (one - u_product)))
        denom = torch._foreach_div(v, float(one - b2**t))
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, self.epsilon)
        torch._foreach_addcdiv_(params, m_hat, denom, value=-lr)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


class Lion(Optimizer):
    """Lion (Chen et al. 2023, "Symbolic discovery of optimization algorithms") as Keras 3
    computes it (defaults ``lr=0.001, β1=0.9, β2=0.99``)::

        w ← w - lr · sign(β1·m + (1 - β1)·g);   m ← β2·m + (1 - β2)·g
    """

    _keras_name = "lion"
    _slot_names = ("momentum",)

    def __init__(
        self, learning_rate: Any = 0.001, beta_1: float = 0.9, beta_2: float = 0.99, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        if not 0 < beta_1 <= 1:
            raise ValueError(f"Lion: beta_1 must be in (0, 1] (0 makes it SignSGD), got {beta_1!r}")
        self.beta_1, self.beta_2 = beta_1, beta_2

    def _update(self, params: Params, grads: Tensors, state: State, lr: float) -> None:
        m = state["momentum"]
        c = torch._foreach_mul(m, self.beta_1)
        torch._foreach_add_(c, grads, alpha=1.0 - self.beta_1)
        torch._foreach_sign_(c)
        torch._foreach_add_(params, c, alpha=-lr)
        torch._foreach_lerp_(m, grads, 1.0 - self.beta_2)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}


class Ftrl(Optimizer):
    """FTRL-proximal (McMahan et al. 2013) as Keras 3 computes it (defaults ``lr=0.001``,
    ``learning_rate_power p=-0.5``, ``initial_accumulator_value=0.1``, all regularisation
    strengths ``0`` and ``beta=0``)::

        g' = g + 2·l2_shrinkage·w;   N' = N + g²
        z ← z + g' - (N'^(-p) - N^(-p)) / lr · w
        q = N'^(-p) / lr + 2·(l2 + beta / (2·lr))
        w ← (clip(z, -l1, l1) - z) / q;   N ← N'
    """

    _keras_name = "ftrl"
    _slot_names = ("accumulator", "linear")

    def __init__(
        self,
        learning_rate: Any = 0.001,
        learning_rate_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        l2_shrinkage_regularization_strength: float = 0.0,
        beta: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        for arg, value in (
            ("initial_accumulator_value", initial_accumulator_value),
            ("l1_regularization_strength", l1_regularization_strength),
            ("l2_regularization_strength", l2_regularization_strength),
            ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength),
        ):
            if value < 0:
                raise ValueError(f"Ftrl: {arg} must be >= 0, got {value!r}")
        if learning_rate_power > 0:
            raise ValueError(f"Ftrl: learning_rate_power must be <= 0, got {learning_rate_power!r}")
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def _slot_initial(self, slot: str) -> float:
        return float(self.initial_accumulator_value) if slot == "accumulator" else 0.0

    def _power(self, xs: Tensors) -> Tensors:
        p = -self.learning_rate_power
        return torch._foreach_sqrt(xs) if p == 0.5 else torch._foreach_pow(xs, p)

    def _update(self, params: Params, grads: Tensors, state: State, lr: float) -> None:
        acc, z = state["accumulator"], state["linear"]
        l1 = self.l1_regularization_strength
        l2 = self.l2_regularization_strength + self.beta / (2.0 * lr)
        shrink = self.l2_shrinkage_regularization_strength
        g = torch._foreach_add(grads, params, alpha=2.0 * shrink) if shrink else grads
        new_acc = torch._foreach_addcmul(acc, grads, grads)
        new_pow, old_pow = self._power(new_acc), self._power(acc)
        sigma = torch._foreach_sub(new_pow, old_pow)
        torch._foreach_div_(sigma, lr)
        torch._foreach_add_(z, g)
        torch._foreach_addcmul_(z, sigma, params, value=-1.0)
        quadratic = torch._foreach_div(new_pow, lr)
        torch._foreach_add_(quadratic, 2.0 * l2)
        numerator = torch._foreach_clamp_min(z, -l1)
        torch._foreach_clamp_max_(numerator, l1)
        torch._foreach_sub_(numerator, z)
        torch._foreach_div_(numerator, quadratic)
        torch._foreach_copy_(params, numerator)
        torch._foreach_copy_(acc, new_acc)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "learning_rate_power": self.learning_rate_power,
            "initial_accumulator_value": self.initial_accumulator_value,
            "l1_regularization_strength": self.l1_regularization_strength,
            "l2_regularization_strength": self.l2_regularization_strength,
            "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
            "beta": self.beta,
        }


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern 2018) as Keras 3 computes it (defaults ``lr=0.001``,
    ``beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1``)::

        ρ_t = min(lr, 1/√t);   α_t = max(ε2, rms(w))·ρ_t;   β_t = 1 - t^beta_2_decay
        G = g² + ε1
        r ← β_t·r + (1-β_t)·mean_last(G);  c ← β_t·c + (1-β_t)·mean_second_last(G)
        v = (r / mean(r)) ⊗ c          (≥ 2-D; 1-D: v ← β_t·v + (1-β_t)·G)
        u = g / √v;   w ← w - α_t · u / max(1, rms(u) / clip_threshold)

    The factored second moment depends on the weight's layout: for matrices (Dense, LSTM/GRU
    kernels) lstmkit's torch layout is Keras's transposed, which gives the same ``v``; Keras's
    GRU ``(2, 3H)`` bias and 3-D convolution kernels are factored differently by Keras. The
    factored statistics are per-parameter reductions, so this optimiser loops over the
    parameters of two or more dimensions (the 1-D ones go through ``_foreach`` ops).
    """

    _keras_name = "adafactor"

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_2_decay: float = -0.8,
        epsilon_1: float = 1e-30,
        epsilon_2: float = 1e-3,
        clip_threshold: float = 1.0,
        relative_step: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.beta_2_decay, self.epsilon_1, self.epsilon_2 = beta_2_decay, epsilon_1, epsilon_2
        self.clip_threshold, self.relative_step = clip_threshold, bool(relative_step)
        self._slot_names = ("r", "c", "velocity")

    def _build_slots(self, params: list[nn.Parameter]) -> dict[str, Tensors]:
        def like(p: Tensor, shape: tuple[int, ...]) -> Tensor:
            return torch.zeros(shape, dtype=p.dtype, device=p.device)

        return {
            "r": [like(p, tuple(p.shape[:-1]) if p.dim() >= 2 else ()) for p in params],
            "c": [like(p, (*p.shape[:-2], p.shape[-1]) if p.dim() >= 2 else ()) for p in params],
            "velocity": [torch.zeros_like(p) for p in params],
        }

    def _update(self, params: Params, grads: Tensors, state: State, lr: float) -> None:
        f = self._f  # Keras's float32 coefficients
        t = f(self.iterations + 1)
        rho = float(min(f(lr), f(1.0) / np.sqrt(t)))
        beta = float(f(1.0) - t ** f(self.beta_2_decay))
        # α_t per parameter: max(ε2, rms(w))·ρ (rms = norm / √numel)
        rms_w = torch._foreach_norm(params)
        torch._foreach_div_(rms_w, [math.sqrt(p.numel()) for p in params])
        torch._foreach_clamp_min_(rms_w, self.epsilon_2)
        sq = torch._foreach_mul(grads, grads)
        torch._foreach_add_(sq, self.epsilon_1)
        flat = [i for i, p in enumerate(params) if p.dim() < 2]
        if flat:
            vs = [state["velocity"][i] for i in flat]
            torch._foreach_mul_(vs, beta)
            torch._foreach_add_(vs, [sq[i] for i in flat], alpha=1.0 - beta)
        for i, p in enumerate(params):  # factored statistics: per-parameter reductions
            if p.dim() < 2:
                continue
            r, c, v = state["r"][i], state["c"][i], state["velocity"][i]
            r.mul_(beta).add_(sq[i].mean(dim=-1), alpha=1.0 - beta)
            c.mul_(beta).add_(sq[i].mean(dim=-2), alpha=1.0 - beta)
            v.copy_((r / r.mean(dim=-1, keepdim=True)).unsqueeze(-1) * c.unsqueeze(-2))
        denom = torch._foreach_sqrt(state["velocity"])
        u = torch._foreach_div(grads, denom)
        rms_u = torch._foreach_norm(u)
        torch._foreach_div_(rms_u, [math.sqrt(p.numel()) * self.clip_threshold for p in params])
        torch._foreach_clamp_min_(rms_u, 1.0)
        torch._foreach_div_(u, rms_u)
        torch._foreach_mul_(u, rms_w)
        torch._foreach_add_(params, u, alpha=-rho)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_2_decay": self.beta_2_decay,
            "epsilon_1": self.epsilon_1,
            "epsilon_2": self.epsilon_2,
            "clip_threshold": self.clip_threshold,
            "relative_step": self.relative_step,
        }


_BY_NAME: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "adamax": Adamax,
    "nadam": Nadam,
    "lion": Lion,
    "ftrl": Ftrl,
    "adafactor": Adafactor,
}
_CLASSES = {c.__name__: c for c in _BY_NAME.values()}


def get(identifier: Any) -> Optimizer:
    """An optimiser from a Keras name (``"adam"``), a serialised dict or an instance.

    Raises:
        ValueError: an unknown name, listing the known ones.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(
                f"optimizer: unknown optimizer {identifier!r}; expected one of "
                f"{', '.join(sorted(_BY_NAME))}"
            )
        return cls()
    if isinstance(identifier, dict) and identifier.get("class_name") in _CLASSES:
        return _CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    if isinstance(identifier, torch.optim.Optimizer):
        raise TypeError(
            "optimizer: pass an lstmkit optimizer or a name; a torch.optim "
            "instance is already bound to parameters (use "
            "lstmkit.training.optimizers.Adam(...) instead)"
        )
    raise TypeError(f"optimizer: expected an optimizer name or Optimizer, got {identifier!r}")


def serialize(opt: Optimizer) -> dict[str, Any]:
    return {"class_name": type(opt).__name__, "config": opt.get_config()}
