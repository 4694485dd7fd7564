"""Shared test helpers: the numeric tolerances of DESIGN.md and a comparison that names what
differs; a quick hypothesis profile (no deadlines: the first call of a kernel can be slow).

Under pytest-xdist (``make test`` runs one worker per core) each worker uses one intra-op
thread: several workers with several spinning OpenMP threads each make small-tensor tests
(layer norm, gradcheck) tens of times slower.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "lstmkit",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)
settings.load_profile("lstmkit")

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

# DESIGN.md: every engine and drop-in equals its reference to 1e-5 (float32), 1e-10 (float64).
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def assert_close_tol(got: torch.Tensor, want: torch.Tensor, what: str = "value") -> None:
    """``max|got - want| <= tol · max(1, max|want|)`` with the tolerance of ``want``'s dtype."""
    assert isinstance(got, torch.Tensor), f"{what}: expected a tensor, got {type(got).__name__}"
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if want.numel() == 0:
        return
    tol = TOLERANCE.get(want.dtype, 1e-3)
    err = float((got.detach() - want.detach()).abs().max())
    scale = max(1.0, float(want.detach().abs().max()))
    assert err <= tol * scale, f"{what}: max abs difference {err:.3g} > {tol:g}·{scale:.3g}"


@pytest.fixture
def assert_close() -> Callable[..., None]:
    """The comparison above, as a fixture."""
    return assert_close_tol
