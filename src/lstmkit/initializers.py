"""Weight initialisers with Keras 3's names, arguments and distributions.

An initialiser is called with a shape **in Keras's layout** (a kernel is ``(fan_in, fan_out)``,
e.g. an LSTM kernel ``(I, 4H)``) and returns a tensor of that shape; layers that store weights in
torch's layout transpose the result. Fans follow Keras: for ``(a, b)`` ``fan_in = a``,
``fan_out = b``; for higher ranks the leading dimensions form the receptive field.

A seeded initialiser (``GlorotUniform(seed=1)``) returns the same values at every call, as in
Keras 3; an unseeded one draws from torch's global generator, which
:func:`lstmkit.utils.set_random_seed` controls.

>>> import torch
>>> w = get("glorot_uniform")((4, 12))
>>> tuple(w.shape), bool(w.abs().max() <= (6 / 16) ** 0.5)
((4, 12), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

Shape = Sequence[int]


def compute_fans(shape: Shape) -> tuple[int, int]:
    """Keras's ``(fan_in, fan_out)`` for a weight shape."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: ``init(shape, dtype) -> Tensor``; ``get_config()`` / ``from_config()``."""

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None and not isinstance(seed, int):
            raise TypeError(f"{type(self).__name__}: seed must be an int or None, got {seed!r}")
        self.seed = seed

    def _generator(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        return torch.Generator().manual_seed(self.seed)

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Constant(Initializer):
    """Every entry equals ``value``."""

    def __init__(self, value: float = 0.0) -> None:
        super().__init__()
        self.value = float(value)

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.full(tuple(shape), self.value, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class Zeros(Constant):
    """All zeros."""

    def __init__(self) -> None:
        super().__init__(0.0)

    def get_config(self) -> dict[str, Any]:
        return {}


class Ones(Constant):
    """All ones."""

    def __init__(self) -> None:
        super().__init__(1.0)

    def get_config(self) -> dict[str, Any]:
        return {}


class RandomNormal(Initializer):
    """Normal distribution ``N(mean, stddev²)``."""

    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None) -> None:
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        out = torch.empty(tuple(shape), dtype=dtype)
        return out.normal_(self.mean, self.stddev, generator=self._generator())

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class TruncatedNormal(RandomNormal):
    """Normal distribution truncated to ``mean ± 2·stddev`` (redrawn outside)."""

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return _truncated_normal(shape, self.mean, self.stddev, dtype, self._generator())


class RandomUniform(Initializer):
    """Uniform distribution on ``[minval, maxval)``."""

    def __init__(
        self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None
    ) -> None:
        super().__init__(seed)
        if maxval < minval:
            raise ValueError(f"RandomUniform: expected minval <= maxval, got {minval} > {maxval}")
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        out = torch.empty(tuple(shape), dtype=dtype)
        return out.uniform_(self.minval, self.maxval, generator=self._generator())

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _truncated_normal(
    shape: Shape, mean: float, std: float, dtype: torch.dtype, gen: torch.Generator | None
) -> torch.Tensor:
    out = torch.empty(tuple(shape), dtype=dtype).normal_(0.0, 1.0, generator=gen)
    bad = out.abs() > 2.0
    while bool(bad.any()):
        redraw = torch.empty(int(bad.sum()), dtype=dtype).normal_(0.0, 1.0, generator=gen)
        out[bad] = redraw
        bad = out.abs() > 2.0
    return out * std + mean


class VarianceScaling(Initializer):
    """Keras's variance scaling: variance ``scale / n`` with ``n`` = fan_in, fan_out or their mean.

    ``distribution`` is ``"truncated_normal"`` (std corrected by 0.8796 for the truncation),
    ``"untruncated_normal"`` or ``"uniform"`` (limit ``sqrt(3 · scale / n)``).
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
    ) -> None:
        super().__init__(seed)
        if scale <= 0:
            raise ValueError(f"VarianceScaling: expected scale > 0, got {scale}")
        if mode not in self._MODES:
            raise ValueError(f"VarianceScaling: mode must be one of {self._MODES}, got {mode!r}")
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(
                f"VarianceScaling: distribution must be one of {self._DISTRIBUTIONS}, "
                f"got {distribution!r}"
            )
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        variance = self.scale / max(1.0, n)
        gen = self._generator()
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * variance)
            return torch.empty(tuple(shape), dtype=dtype).uniform_(-limit, limit, generator=gen)
        if self.distribution == "untruncated_normal":
            std = math.sqrt(variance)
            return torch.empty(tuple(shape), dtype=dtype).normal_(0.0, std, generator=gen)
        std = math.sqrt(variance) / 0.87962566103423978
        return _truncated_normal(shape, 0.0, std, dtype, gen)

    def get_config(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "seed": self.seed,
        }


class _FixedVarianceScaling(VarianceScaling):
    _fixed: tuple[float, str, str] = (1.0, "fan_in", "truncated_normal")

    def __init__(self, seed: int | None = None) -> None:
        scale, mode, distribution = self._fixed
        super().__init__(scale, mode, distribution, seed)

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform on ``±sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio 2010)."""

    _fixed = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal with std ``sqrt(2 / (fan_in + fan_out))``."""

    _fixed = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """Uniform on ``±sqrt(6 / fan_in)`` (He et al. 2015)."""

    _fixed = (2.0, "fan_in", "uniform")


class HeNormal(_FixedVarianceScaling):
    """Truncated normal with std ``sqrt(2 / fan_in)``."""

    _fixed = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """Uniform on ``±sqrt(3 / fan_in)``."""

    _fixed = (1.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal with std ``sqrt(1 / fan_in)``."""

    _fixed = (1.0, "fan_in", "truncated_normal")


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2014), as Keras builds it.

    The shape is flattened to ``(prod(shape[:-1]), shape[-1])``; a normal matrix of shape
    ``(max, min)`` is QR-decomposed, the signs fixed by ``diag(R)``, and transposed when there
    are fewer rows than columns — so a Keras recurrent kernel ``(H, 4H)`` has orthonormal rows.
    """

    def __init__(self, gain: float = 1.0, seed: int | None = None) -> None:
        super().__init__(seed)
        self.gain = float(gain)

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: expected a shape of rank >= 2, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = torch.empty(max(rows, cols), min(rows, cols), dtype=torch.float64)
        a.normal_(0.0, 1.0, generator=self._generator())
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r)).unsqueeze(0)
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).to(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only)."""

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = float(gain)

    def __call__(self, shape: Shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        if len(shape) != 2:
            raise ValueError(f"Identity: expected a 2-D shape, got {tuple(shape)}")
        return self.gain * torch.eye(shape[0], shape[1], dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


_CLASSES: dict[str, type[Initializer]] = {
    cls.__name__: cls
    for cls in (
        Constant,
        Zeros,
        Ones,
        RandomNormal,
        RandomUniform,
        TruncatedNormal,
        VarianceScaling,
        GlorotUniform,
        GlorotNormal,
        HeUniform,
        HeNormal,
        LecunUniform,
        LecunNormal,
        Orthogonal,
        Identity,
    )
}
_ALIASES = {
    "constant": "Constant",
    "zeros": "Zeros",
    "ones": "Ones",
    "random_normal": "RandomNormal",
    "random_uniform": "RandomUniform",
    "truncated_normal": "TruncatedNormal",
    "variance_scaling": "VarianceScaling",
    "glorot_uniform": "GlorotUniform",
    "glorot_normal": "GlorotNormal",
    "he_uniform": "HeUniform",
    "he_normal": "HeNormal",
    "lecun_uniform": "LecunUniform",
    "lecun_normal": "LecunNormal",
    "orthogonal": "Orthogonal",
    "identity": "Identity",
}

InitializerLike = str | dict | Initializer | Callable[..., torch.Tensor]


def get(identifier: InitializerLike, *, argument: str = "initializer") -> Initializer:
    """An initialiser from a Keras name (``"glorot_uniform"`` or ``"GlorotUniform"``), a
    serialised dict ``{"class_name": ..., "config": {...}}``, or an instance.

    Raises:
        ValueError: unknown name, naming the argument and the known names.
        TypeError: anything else.
    """
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name not in _CLASSES:
            raise ValueError(
                f"{argument}: unknown initializer {identifier!r}; expected one of "
                f"{', '.join(sorted(_ALIASES))}"
            )
        return _CLASSES[name]()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if name not in _CLASSES:
            raise ValueError(f"{argument}: unknown initializer class {name!r} in {identifier!r}")
        return _CLASSES[name].from_config(dict(identifier.get("config", {})))
    raise TypeError(
        f"{argument}: expected an initializer name, dict or Initializer, "
        f"got {type(identifier).__name__}"
    )


def serialize(init: Initializer) -> dict[str, Any]:
    """``{"class_name": ..., "config": {...}}``, the inverse of :func:`get`."""
    return {"class_name": type(init).__name__, "config": init.get_config()}
