"""Optimisers with Keras 3's names and defaults, wrapping ``torch.optim``.

An lstmkit optimiser is a recipe until :meth:`Optimizer.build` binds it to the model's
parameters and creates the ``torch.optim`` instance (``self.torch_optimizer``). On top of torch it
adds Keras's gradient clipping (``clipnorm`` per variable, ``clipvalue`` element-wise,
``global_clipnorm`` over all variables), Keras's decoupled ``weight_decay`` (every optimiser
multiplies each weight by ``1 - learning_rate · weight_decay`` before its update, as Keras 3's
base optimiser does; torch's ``weight_decay`` would add an L2 term to the gradient instead),
learning-rate schedules evaluated at every step, and ``iterations``.

Defaults are Keras's, e.g. ``Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999,
epsilon=1e-7)``. One documented numeric difference: Keras adds ``epsilon`` to ``sqrt(v)``
before the bias correction and torch after it, so the effective epsilon differs by
``sqrt(1 - beta_2^t)`` — negligible unless gradients are ~1e-7.

>>> import torch
>>> w = torch.nn.Parameter(torch.tensor([1.0]))
>>> opt = SGD(learning_rate=0.1); opt.build([w])
>>> w.grad = torch.tensor([2.0]); opt.step()
>>> round(float(w), 4), opt.iterations
(0.8, 1)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from lstmkit.training import schedules


class Optimizer:
    """Base class. Subclasses set ``_torch_class`` and map their arguments in ``_torch_kwargs``."""

    _torch_class: type[torch.optim.Optimizer] = torch.optim.SGD
    _torch_decays = False  # True where the torch class applies decoupled weight decay itself
    _keras_name = ""  # Keras 3's default ``name``

    def __init__(
        self,
        learning_rate: float | schedules.LearningRateSchedule = 0.001,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        name: str | None = None,
    ) -> None:
        from lstmkit.layers.base import snake_case

        cls = type(self).__name__
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                f"{cls}: only one of clipnorm, clipvalue and global_clipnorm may be set"
            )
        for arg, v in (
            ("clipnorm", clipnorm),
            ("clipvalue", clipvalue),
            ("global_clipnorm", global_clipnorm),
        ):
            if v is not None and v <= 0:
                raise ValueError(f"{cls}: {arg} must be > 0, got {v}")
        if isinstance(learning_rate, schedules.LearningRateSchedule):
            self._schedule: schedules.LearningRateSchedule | None = learning_rate
            self._lr = float(learning_rate(0))
        else:
            if (
                isinstance(learning_rate, bool)
                or not isinstance(learning_rate, (int, float))
                or (learning_rate <= 0)
            ):
                raise ValueError(
                    f"{cls}: learning_rate must be a positive number or a "
                    f"LearningRateSchedule, got {learning_rate!r}"
                )
            self._schedule = None
            self._lr = float(learning_rate)
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.name = name or self._keras_name or snake_case(cls)
        self.iterations = 0
        self.torch_optimizer: torch.optim.Optimizer | None = None
        self._params: list[nn.Parameter] = []

    # -- learning rate ---------------------------------------------------------------------

    @property
    def learning_rate(self) -> float:
        """The current learning rate (set it to change it, unless a schedule drives it); with a
        schedule, the rate of the next step, ``schedule(iterations)``, as Keras reports it."""
        if self._schedule is not None:
            return float(self._schedule(self.iterations))
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if self._schedule is not None:
            raise ValueError(
                f"{self.name}: the learning rate is driven by a schedule; it cannot be set"
            )
        self._lr = float(value)
        if self.torch_optimizer is not None:
            for group in self.torch_optimizer.param_groups:
                group["lr"] = self._lr

    # -- binding and stepping ----------------------------------------------------------------

    def _torch_kwargs(self) -> dict[str, Any]:
        return {}

    def build(self, params: Iterable[nn.Parameter]) -> None:
        """Create the ``torch.optim`` optimiser for ``params`` (those requiring gradients)."""
        self._params = [p for p in params if p.requires_grad]
        if not self._params:
            raise ValueError(f"{self.name}: the model has no trainable weights")
        kwargs = self._torch_kwargs()
        self.torch_optimizer = self._torch_class(self._params, lr=self._lr, **kwargs)

    @property
    def built(self) -> bool:
        return self.torch_optimizer is not None

    def zero_grad(self) -> None:
        for p in self._params:
            p.grad = None

    def clip_gradients(self) -> None:
        """Apply ``clipnorm`` / ``clipvalue`` / ``global_clipnorm`` to the gradients."""
        grads = [p for p in self._params if p.grad is not None]
        if self.global_clipnorm is not None:
            torch.nn.utils.clip_grad_norm_(grads, self.global_clipnorm)
        elif self.clipnorm is not None:
            for p in grads:
                torch.nn.utils.clip_grad_norm_([p], self.clipnorm)
        elif self.clipvalue is not None:
            torch.nn.utils.clip_grad_value_(grads, self.clipvalue)

    def step(self) -> None:
        """Clip, update the learning rate from the schedule, take one torch step."""
        if self.torch_optimizer is None:
            raise RuntimeError(f"{self.name}: call build(params) before step()")
        self.clip_gradients()
        if self._schedule is not None:
            self._lr = float(self._schedule(self.iterations))
            for group in self.torch_optimizer.param_groups:
                group["lr"] = self._lr
        if self.weight_decay and not self._torch_decays:
            with torch.no_grad():
                for p in self._params:
                    if p.grad is not None:
                        p.mul_(1.0 - self._lr * self.weight_decay)
        self.torch_optimizer.step()
        self.iterations += 1

    def variables_count(self) -> int:
        """Number of scalars in the optimiser's state (Keras's "Optimizer params")."""
        if self.torch_optimizer is None:
            return 0
        total = 0
        for state in self.torch_optimizer.state.values():
            for v in state.values():
                if isinstance(v, torch.Tensor) and v.dim() > 0:
                    total += v.numel()
        return total

    # -- (de)serialisation -----------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        lr: Any = schedules.serialize(self._schedule) if self._schedule else self._lr
        return {
            "name": self.name,
            "learning_rate": lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def state_dict(self) -> dict[str, Any]:
        """The torch optimiser's state plus ``iterations`` and the current learning rate."""
        return {
            "iterations": self.iterations,
            "learning_rate": self._lr,
            "torch": self.torch_optimizer.state_dict() if self.torch_optimizer else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iterations = int(state["iterations"])
        self._lr = float(state["learning_rate"])
        if state.get("torch") is not None:
            if self.torch_optimizer is None:
                raise RuntimeError(f"{self.name}: build the optimiser before loading its state")
            self.torch_optimizer.load_state_dict(state["torch"])
            for group in self.torch_optimizer.param_groups:
                group["lr"] = self._lr


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum; Keras default lr 0.01."""

    _torch_class = torch.optim.SGD
    _keras_name = "SGD"

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        if not 0 <= momentum:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.momentum, self.nesterov = momentum, nesterov

    def _torch_kwargs(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015); Keras defaults ``lr=0.001, beta_1=0.9, beta_2=0.999,
    epsilon=1e-7``."""

    _torch_class = torch.optim.Adam
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
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def _torch_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "betas": (self.beta_1, self.beta_2),
            "eps": self.epsilon,
            "amsgrad": self.amsgrad,
        }
        if self._torch_decays:
            kw["weight_decay"] = self.weight_decay or 0.0
        if self._torch_class is torch.optim.Adam:
            kw["foreach"] = True
        return kw

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "amsgrad": self.amsgrad,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019); Keras default
    ``weight_decay=0.004``."""

    _torch_class = torch.optim.AdamW
    _keras_name = "adamw"
    _torch_decays = True  # torch's AdamW: p ← p (1 - lr · wd), then the Adam step (= Keras)

    def __init__(
        self, learning_rate: Any = 0.001, weight_decay: float = 0.004, **kwargs: Any
    ) -> None:
        super().__init__(learning_rate, weight_decay=weight_decay, **kwargs)


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012); Keras defaults ``lr=0.001, rho=0.9, momentum=0,
    epsilon=1e-7, centered=False``."""

    _torch_class = torch.optim.RMSprop
    _keras_name = "rmsprop"

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
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _torch_kwargs(self) -> dict[str, Any]:
        return {
            "alpha": self.rho,
            "momentum": self.momentum,
            "eps": self.epsilon,
            "centered": self.centered,
        }

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }


class Adagrad(Optimizer):
    """Adagrad (Duchi et al. 2011); Keras defaults ``lr=0.001,
    initial_accumulator_value=0.1, epsilon=1e-7``."""

    _torch_class = torch.optim.Adagrad
    _keras_name = "adagrad"

    def __init__(
        self,
        learning_rate: Any = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _torch_kwargs(self) -> dict[str, Any]:
        return {
            "initial_accumulator_value": self.initial_accumulator_value,
            "eps": self.epsilon,
        }

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        }


_BY_NAME: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
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
