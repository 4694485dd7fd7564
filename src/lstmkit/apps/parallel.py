"""``--nproc N`` for the applications' ``train`` commands: data-parallel training through
``torch.distributed`` (see ``docs/distributed.md``).

``relaunch(nproc)`` starts the same command line again as ``nproc`` processes under
``torch.distributed.run`` (without its ``--nproc`` flag) and exits with their status; in the
children, ``Model.fit`` finds torchrun's environment and trains with ``DistributedDataParallel``.
Everything around ``fit`` (evaluation, baselines, saving, printing) is done by the chief
(rank 0) only: :func:`is_chief`.
"""

from __future__ import annotations

import os

NPROC_HELP = (
    "Train with N processes on this machine (torch.distributed: gloo on CPU, NCCL on CUDA; "
    "the batch size stays the global batch). 1 = this process only."
)


def process_share() -> tuple[int, int]:
    """``(rank, world_size)`` under torchrun, ``(0, 1)`` otherwise."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_chief() -> bool:
    """True outside distributed training and on rank 0 within it."""
    return process_share()[0] == 0


def will_launch(nproc: int) -> bool:
    """Whether :func:`relaunch` will start ``nproc`` processes (``nproc > 1`` and this process
    is not already one of them)."""
    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {nproc}")
    return nproc > 1 and "RANK" not in os.environ


def relaunch(nproc: int) -> int | None:
    """With ``nproc > 1`` (and not already under torchrun): run this command as ``nproc``
    processes and return their exit status; ``None`` means: go on in this process."""
    if not will_launch(nproc):
        return None
    from lstmkit.training.distributed import launch

    return launch(nproc)
