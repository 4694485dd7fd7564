"""The optimiser base class: Keras 3's ``BaseOptimizer`` semantics on torch ``_foreach`` ops.

One call of :meth:`Optimizer.step` is one Keras ``optimizer.apply(grads)``. For the parameters
that have a gradient (``p.grad is not None``; Keras skips variables without one), in this order:

1. ``g ← g / loss_scale_factor`` (if set; :meth:`Optimizer.scale_loss` multiplied the loss);
2. with ``gradient_accumulation_steps = N``: on the steps where ``(k + 1) mod N ≠ 0`` only
   ``acc ← acc + g`` and nothing else moves; otherwise ``g ← (g + acc) / N``, ``acc ← 0`` and
   the step goes on (``k`` is the raw step counter; ``iterations = k // N``);
3. clipping, at most one of: ``clipnorm`` — each gradient by its own norm,
   ``g ← g · c / max(‖g‖, c)``; ``global_clipnorm`` — all together,
   ``g ← g · c · min(1/‖G‖, 1/c)`` with ``‖G‖² = Σ ‖g‖²``; ``clipvalue`` — element-wise
   ``clip(g, -c, c)``;
4. decoupled weight decay (``weight_decay = λ``): ``w ← w · (1 - λ · lr)``;
5. the algorithm's update (subclasses' :meth:`Optimizer._update`), with
   ``lr = schedule(k)`` for a schedule, and its bias corrections at ``t = iterations + 1``;
6. with ``use_ema``: ``avg ← μ·avg + (1-μ)·w`` for every parameter (``μ = ema_momentum``, 0 at
   the first step), and ``w ← avg`` every ``ema_overwrite_frequency`` iterations;
   :meth:`Optimizer.finalize_variable_values` (called by ``fit`` at its end, as Keras does)
   copies the averages into the weights;
7. ``k ← k + 1``.

Every step is a handful of ``torch._foreach_*`` calls over all parameters at once (one kernel
launch per operation and parameter group on a GPU, no Python loop over parameters).

State: one tensor per parameter and *slot* (Keras's variable names: ``momentum``,
``velocity``, ...), in :attr:`Optimizer.slots`; :meth:`Optimizer.state_dict` keeps the layout
``{"iterations", "learning_rate", "torch": {"state": {i: {slot: tensor}}, "param_groups"}}``
that lstmkit's model files store.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lstmkit.training import schedules

Tensors = list[Tensor]

# torch.optim state names of lstmkit's earlier, torch-backed optimisers -> (slot, scale by lr)
_TORCH_SLOT_NAMES = {
    "exp_avg": ("momentum", False),
    "exp_avg_sq": ("velocity", False),
    "max_exp_avg_sq": ("velocity_hat", False),
    "square_avg": ("velocity", False),
    "grad_avg": ("average_gradient", False),
    "sum": ("accumulator", False),
}


def _scalar_type(dtype: torch.dtype) -> type[np.floating]:
    """The numpy scalar type in which Keras computes a step's coefficients: the variables'
    dtype (``ops.cast(beta_1, variable.dtype)``); float32 for the 16-bit types."""
    return np.float64 if dtype == torch.float64 else np.float32


def _positive(cls: str, arg: str, value: Any, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{cls}: {arg} must be a positive number, got {value!r}")


class Optimizer:
    """Base class of lstmkit's Keras-3 optimisers (see the module docstring for one step).

    Subclasses list their per-parameter state in ``_slot_names`` (with ``_slot_initial`` for a
    non-zero start) and implement :meth:`_update`.

    Args (Keras 3's, with its defaults):
        learning_rate: a float or a :class:`~lstmkit.training.schedules.LearningRateSchedule`.
        weight_decay: decoupled decay ``λ`` (``None``: off).
        clipnorm, clipvalue, global_clipnorm: gradient clipping (at most one).
        use_ema, ema_momentum, ema_overwrite_frequency: exponential moving average of weights.
        loss_scale_factor: multiply the loss by it and divide the gradients by it.
        gradient_accumulation_steps: update every ``N >= 2`` steps with the mean gradient.
        name: Keras's default name of the class.
    """

    _slot_names: tuple[str, ...] = ()
    _keras_name = ""  # Keras 3's default ``name``

    def __init__(
        self,
        learning_rate: float | schedules.LearningRateSchedule = 0.001,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
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
            ("loss_scale_factor", loss_scale_factor),
        ):
            _positive(cls, arg, v)
        if weight_decay is not None and (
            isinstance(weight_decay, bool)
            or not isinstance(weight_decay, (int, float))
            or weight_decay < 0
        ):
            raise ValueError(f"{cls}: weight_decay must be a number >= 0, got {weight_decay!r}")
        if gradient_accumulation_steps is not None and (
            isinstance(gradient_accumulation_steps, bool)
            or not isinstance(gradient_accumulation_steps, int)
            or gradient_accumulation_steps < 2
        ):
            raise ValueError(
                f"{cls}: gradient_accumulation_steps must be an integer >= 2, "
                f"got {gradient_accumulation_steps!r}"
            )
        if use_ema:
            if not 0 <= ema_momentum <= 1:
                raise ValueError(f"{cls}: ema_momentum must be in [0, 1], got {ema_momentum!r}")
            if ema_overwrite_frequency is not None and (
                isinstance(ema_overwrite_frequency, bool)
                or not isinstance(ema_overwrite_frequency, int)
                or ema_overwrite_frequency < 1
            ):
                raise ValueError(
                    f"{cls}: ema_overwrite_frequency must be an integer >= 1 or None, "
                    f"got {ema_overwrite_frequency!r}"
                )
        if isinstance(learning_rate, schedules.LearningRateSchedule):
            self._schedule: schedules.LearningRateSchedule | None = learning_rate
            self._lr = float(learning_rate(0))
        else:
            if (
                isinstance(learning_rate, bool)
                or not isinstance(learning_rate, (int, float))
                or (learning_rate < 0)
            ):
                raise ValueError(
                    f"{cls}: learning_rate must be a positive number or a "
                    f"LearningRateSchedule, got {learning_rate!r}"
                )
            self._schedule = None
            self._lr = float(learning_rate)
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.use_ema = bool(use_ema)
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.name = name or self._keras_name or snake_case(cls)
        self._iterations = 0  # Keras's ``_iterations``: every call of step()
        self._params: list[nn.Parameter] = []
        self.slots: dict[str, Tensors] = {}
        self._built = False
        self._f: type[np.floating] = np.float32

    # -- counters and learning rate ----------------------------------------------------------

    @property
    def iterations(self) -> int:
        """Updates made (Keras's ``optimizer.iterations``: steps // accumulation steps)."""
        n = self.gradient_accumulation_steps
        return self._iterations // n if n else self._iterations

    @iterations.setter
    def iterations(self, value: int) -> None:
        self._iterations = int(value) * (self.gradient_accumulation_steps or 1)

    @property
    def learning_rate(self) -> float:
        """The current learning rate (set it to change it, unless a schedule drives it); with a
        schedule, the rate of the next step, ``schedule(steps)``, as Keras reports it."""
        if self._schedule is not None:
            return float(self._schedule(self._iterations))
        return self._lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if self._schedule is not None:
            raise ValueError(
                f"{self.name}: the learning rate is driven by a schedule; it cannot be set"
            )
        self._lr = float(value)

    # -- binding -----------------------------------------------------------------------------

    def _slot_initial(self, slot: str) -> float:
        return 0.0

    def _build_slots(self, params: list[nn.Parameter]) -> dict[str, Tensors]:
        """Per-parameter state, Keras's variables (subclasses may add shapes of their own)."""
        return {
            s: [torch.full_like(p, self._slot_initial(s), memory_format=torch.contiguous_format)
                for p in params]
            for s in self._slot_names
        }  # fmt: skip

    def build(self, params: Iterable[nn.Parameter]) -> None:
        """Bind to ``params`` (those requiring gradients) and create the state."""
        self._params = [p for p in params if p.requires_grad]
        if not self._params:
            raise ValueError(f"{self.name}: the model has no trainable weights")
        self._f = _scalar_type(self._params[0].dtype)
        with torch.no_grad():
            self.slots = self._build_slots(self._params)
            if self.use_ema:
                self.slots["average"] = [p.detach().clone() for p in self._params]
            if self.gradient_accumulation_steps:
                self.slots["gradient_accumulator"] = [torch.zeros_like(p) for p in self._params]
        self._reset_scalars()
        self._built = True

    def _reset_scalars(self) -> None:
        """Scalar state beyond ``iterations`` (Nadam's ``u_product``)."""

    def _scalar_state(self) -> dict[str, float]:
        return {}

    def _load_scalar_state(self, state: dict[str, float]) -> None:
        pass

    @property
    def built(self) -> bool:
        return self._built

    def zero_grad(self) -> None:
        for p in self._params:
            p.grad = None

    def scale_loss(self, loss: Tensor) -> Tensor:
        """``loss · loss_scale_factor`` (Keras's ``scale_loss``; the identity if unset)."""
        return loss * self.loss_scale_factor if self.loss_scale_factor is not None else loss

    # -- one step ----------------------------------------------------------------------------

    def _with_grads(self) -> tuple[list[nn.Parameter], Tensors, list[int] | None]:
        params = self._params
        grads = [p.grad for p in params]
        if all(g is not None for g in grads):
            return params, grads, None  # the usual case: every slot list as it is
        idx = [i for i, g in enumerate(grads) if g is not None]
        return [params[i] for i in idx], [grads[i] for i in idx], idx

    def _clip(self, grads: Tensors) -> Tensors:
        if self.clipnorm is not None:
            c = float(self.clipnorm)
            scales = torch._foreach_clamp_min(torch._foreach_norm(grads), c)
            torch._foreach_reciprocal_(scales)
            torch._foreach_mul_(scales, c)
            return torch._foreach_mul(grads, scales)
        if self.global_clipnorm is not None:
            c = float(self.global_clipnorm)
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            scale = c * torch.clamp(1.0 / norm, max=1.0 / c)
            scale = scale + (norm - norm)  # inf / nan norms make the scale nan, as Keras
            return torch._foreach_mul(grads, scale.to(grads[0].dtype))
        if self.clipvalue is not None:
            c = float(self.clipvalue)
            grads = torch._foreach_clamp_min(grads, -c)
            torch._foreach_clamp_max_(grads, c)
        return grads

    @torch.no_grad()
    def step(self) -> None:
        """One Keras ``apply``: scale, accumulate, clip, decay, update, EMA, count."""
        if not self._built:
            raise RuntimeError(f"{self.name}: call build(params) before step()")
        params, grads, idx = self._with_grads()
        if params:
            self._apply(params, grads, idx)
        if self.use_ema:
            self._update_ema()
        self._iterations += 1

    def _apply(self, params: list[nn.Parameter], grads: Tensors, idx: list[int] | None) -> None:
        if self.loss_scale_factor is not None:
            grads = torch._foreach_div(grads, float(self.loss_scale_factor))
        n = self.gradient_accumulation_steps
        if n:
            acc = self._select("gradient_accumulator", idx)
            if (self._iterations + 1) % n != 0:
                torch._foreach_add_(acc, grads)
                return
            grads = torch._foreach_add(grads, acc)
            torch._foreach_div_(grads, float(n))
            torch._foreach_zero_(acc)
        grads = self._clip(grads)
        f = self._f  # Keras's learning rate is a float32 variable, its coefficients float32
        lr = f(self.learning_rate)
        if self.weight_decay is not None:
            torch._foreach_mul_(params, float(f(1.0) - f(self.weight_decay) * lr))
        state = {s: self._select(s, idx) for s in self._slot_names}
        self._update(params, grads, state, float(lr))

    def _select(self, slot: str, idx: list[int] | None) -> Tensors:
        tensors = self.slots[slot]
        return tensors if idx is None else [tensors[i] for i in idx]

    def _update(
        self, params: list[nn.Parameter], grads: Tensors, state: dict[str, Tensors], lr: float
    ) -> None:
        """The algorithm: update ``params`` (and ``state``, its slots) in place."""
        raise NotImplementedError

    def _update_ema(self) -> None:
        avg = self.slots["average"]
        m = self._f(self.ema_momentum if self.iterations != 0 else 0.0)
        torch._foreach_mul_(avg, float(m))
        torch._foreach_add_(avg, self._params, alpha=float(self._f(1.0) - m))
        f = self.ema_overwrite_frequency
        if f and (self.iterations + 1) % f == 0:
            torch._foreach_copy_(self._params, avg)

    @torch.no_grad()
    def finalize_variable_values(self) -> None:
        """With ``use_ema``, copy the moving averages into the weights (Keras's ``fit`` does this
        at its end)."""
        if self.use_ema and self._built:
            torch._foreach_copy_(self._params, self.slots["average"])

    def variables_count(self) -> int:
        """Number of scalars in the optimiser's variables, as Keras counts them ("Optimizer
        params"): ``iterations``, the learning rate (unless a schedule), every slot."""
        if not self._built:
            return 0
        scalars = 1 + (self._schedule is None) + len(self._scalar_state())
        return scalars + sum(t.numel() for ts in self.slots.values() for t in ts)

    # -- (de)serialisation -----------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        lr: Any = schedules.serialize(self._schedule) if self._schedule else self._lr
        return {
            "name": self.name,
            "learning_rate": lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def state_dict(self) -> dict[str, Any]:
        """``iterations`` (raw steps), the learning rate, scalar state and the slots."""
        state = {i: {s: self.slots[s][i] for s in self.slots} for i in range(len(self._params))}
        return {
            "iterations": self._iterations,
            "learning_rate": self._lr,
            "scalars": self._scalar_state(),
            "torch": {"state": state, "param_groups": [{"params": list(range(len(state)))}]},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (also reads the state of lstmkit's earlier
        torch-backed optimisers: their moments are Keras's)."""
        saved = state.get("torch")
        if saved is not None:
            if not self._built:
                raise RuntimeError(f"{self.name}: build the optimiser before loading its state")
            entries = saved.get("state", {})
            slots = self._read_slots(entries, float(state["learning_rate"]))
        self._iterations = int(state["iterations"])
        self._lr = float(state["learning_rate"])
        self._load_scalar_state(dict(state.get("scalars") or {}))
        if saved is not None:
            with torch.no_grad():
                for name, values in slots.items():
                    for target, value in zip(self.slots[name], values):
                        target.copy_(value)

    def _read_slots(self, entries: dict[Any, Any], lr: float) -> dict[str, Tensors]:
        n = len(self._params)
        keys = {int(k) for k in entries}
        if keys and keys != set(range(n)):
            raise ValueError(f"state for {len(keys)} parameters, the model has {n}")
        out: dict[str, Tensors] = {s: [] for s in self.slots}
        if not keys:
            return {}  # nothing stored yet (never stepped): keep the fresh state
        for i in range(n):
            entry = dict(entries.get(i, entries.get(str(i), {})))
            for old, (new, _) in _TORCH_SLOT_NAMES.items():
                if old in entry and new not in entry:
                    entry[new] = entry.pop(old)
            buffer = entry.pop("momentum_buffer", None)
            if isinstance(buffer, Tensor) and "momentum" not in entry:
                entry["momentum"] = buffer * (-lr if type(self).__name__ == "SGD" else lr)
            for s in self.slots:
                if s not in entry:
                    raise ValueError(f"parameter {i} has no {s!r} state")
                value = entry[s]
                if not isinstance(value, Tensor) or value.shape != self.slots[s][i].shape:
                    got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                    raise ValueError(
                        f"{s!r} of parameter {i}: expected shape "
                        f"{tuple(self.slots[s][i].shape)}, got {got}"
                    )
                out[s].append(value)
        return out
