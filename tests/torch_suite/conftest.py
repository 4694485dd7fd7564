"""The ``nn`` fixture: each test of the suite runs on ``torch.nn`` and on ``lstmkit.nn``."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
import torch

import lstmkit.nn


@dataclass(frozen=True)
class Impl:
    """One implementation under test: ``nn.LSTM(...)`` builds its module, ``nn.name`` says
    which one it is."""

    name: str
    module: ModuleType

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.module, attr)

    @property
    def is_lstmkit(self) -> bool:
        return self.name == "lstmkit"


IMPLS = {"torch": Impl("torch", torch.nn), "lstmkit": Impl("lstmkit", lstmkit.nn)}


@pytest.fixture(params=list(IMPLS), ids=list(IMPLS))
def nn(request: pytest.FixtureRequest) -> Impl:
    """``torch.nn`` (the control) or ``lstmkit.nn`` (the drop-in)."""
    return IMPLS[request.param]
