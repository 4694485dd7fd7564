"""Where training runs: one process (the default) or several (``torch.distributed``).

The training loop only talks to a ``Strategy``: it wraps the model for the forward pass, shards
the data (``rank``, ``world_size``), sums metric states across processes and tells who writes
files (``is_chief``). :func:`lstmkit.training.distributed.current_strategy` picks the
distributed strategy when the process was launched by ``torchrun`` (``WORLD_SIZE > 1``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Strategy:
    """A single process on one device."""

    rank: int = 0
    world_size: int = 1

    def __init__(self, device: torch.device) -> None:
        self.device = device

    @property
    def is_chief(self) -> bool:
        """Whether this process writes files and prints progress."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to call for training forward passes (the model itself here)."""
        return model

    def all_reduce_sum(self, tensors: list[Tensor]) -> list[Tensor]:
        """Sum tensors across processes (identity here)."""
        return tensors

    def broadcast_int(self, value: int) -> int:
        """Rank 0's ``value`` on every process (the value itself here)."""
        return value

    def barrier(self) -> None:
        """Wait for every process (no-op here)."""
