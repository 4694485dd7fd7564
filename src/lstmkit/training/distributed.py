"""Data-parallel training on ``torch.distributed`` (DDP), as launched by ``torchrun``.

``fit`` needs no change in user code: under ``torchrun --nproc_per_node=N train.py`` (or several
nodes through torchrun's rendezvous) the trainer sees ``WORLD_SIZE > 1`` and uses
:class:`DistributedStrategy`:

* the process group is created from torchrun's environment (``MASTER_ADDR``, ``RANK``…) with
  **gloo** on CPU and **NCCL** on CUDA (one GPU per process, ``LOCAL_RANK``);
* the model is wrapped in ``DistributedDataParallel``, which broadcasts rank 0's initial weights
  and averages gradients in every backward pass;
* ``batch_size`` stays **global**, as in Keras: each process takes ``batch_size / N`` samples of
  every global batch (``rank::N`` of the shared, seeded permutation), so N processes compute the
  same updates as one process with the same batch size and seed;
* metric states (sums and counts) are summed across processes before they are reported;
* only rank 0 prints progress and writes files (checkpoints, backups, CSV logs).

:func:`launch` re-runs a command under ``python -m torch.distributed.run`` — the applications'
``--nproc N`` flag uses it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from lstmkit.training.strategy import Strategy


class DistributedStrategy(Strategy):
    """One process of a ``torch.distributed`` job (see the module docstring)."""

    def __init__(self, device: torch.device) -> None:
        env = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        missing = [k for k, v in env.items() if v is None]
        if missing:
            raise RuntimeError(
                f"distributed training needs torchrun's environment; missing "
                f"{', '.join(missing)} (launch with `torchrun --nproc_per_node=N` "
                f"or lstmkit's --nproc)"
            )
        self.rank, self.world_size = int(env["RANK"]), int(env["WORLD_SIZE"])
        self.local_rank = int(env["LOCAL_RANK"])
        if not 0 <= self.rank < self.world_size:
            raise ValueError(
                f"inconsistent distributed environment: RANK={self.rank} is not in "
                f"[0, WORLD_SIZE={self.world_size})"
            )
        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        super().__init__(device)
        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            store = _attempt_store(self.rank, self.world_size)
            if store is None:
                dist.init_process_group(backend=backend)
            else:
                dist.init_process_group(
                    backend=backend, store=store, rank=self.rank, world_size=self.world_size
                )
        if dist.get_world_size() != self.world_size:
            raise ValueError(
                f"inconsistent world size: WORLD_SIZE={self.world_size} but the "
                f"process group has {dist.get_world_size()} processes"
            )

    def wrap(self, model: nn.Module) -> nn.Module:
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def all_reduce_sum(self, tensors: list[Tensor]) -> list[Tensor]:
        if not tensors:
            return tensors
        flat = torch.cat([t.reshape(-1).to(torch.float64) for t in tensors]).to(self.device)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        out, i = [], 0
        for t in tensors:
            n = t.numel()
            out.append(flat[i : i + n].reshape(t.shape).to(t.dtype).cpu())
            i += n
        return out

    def broadcast_int(self, value: int) -> int:
        """Rank 0's ``value`` on every process."""
        t = torch.tensor([value], dtype=torch.int64, device=self.device)
        dist.broadcast(t, src=0)
        return int(t.item())

    def barrier(self) -> None:
        dist.barrier()


def current_strategy(device: torch.device) -> Strategy:
    """The distributed strategy under ``torchrun`` (``WORLD_SIZE > 1``), else one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return DistributedStrategy(device)
    return Strategy(device)


def launch(nproc: int, argv: Sequence[str] | None = None, *, max_restarts: int = 0) -> int:
    """Run ``python <argv>`` (default: this process's own command line) as ``nproc`` processes
    through ``torch.distributed.run`` on this machine; returns the exit code.

    The child command is run without its ``--nproc`` flag so that it does not launch again.
    """
    if nproc < 1:
        raise ValueError(f"--nproc must be >= 1, got {nproc}")
    args = list(sys.argv if argv is None else argv)
    cleaned: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        cleaned.append(a)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        f"--max-restarts={max_restarts}",
        *_as_script_or_module(cleaned, from_sys_argv=argv is None),
    ]
    return subprocess.call(cmd)


def _as_script_or_module(args: list[str], *, from_sys_argv: bool) -> list[str]:
    """A process started with ``python -m pkg.mod`` is relaunched with ``-m pkg.mod`` too: run as
    a file, ``pkg/mod.py`` would put ``pkg/`` first on ``sys.path``, where lstmkit's own
    ``inspect`` package would shadow the standard library's."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if from_sys_argv and spec is not None and spec.name and args:
        return ["-m", spec.name.removesuffix(".__main__"), *args[1:]]
    return args


def _attempt_store(rank: int, world_size: int) -> dist.Store | None:
    """Under torchrun, the agent's store with its keys prefixed by the restart count.

    torchrun keeps one store for all the attempts of a job, and the process group's keys (the
    gloo peers' addresses among them) carry no attempt number: after a worker is killed and
    the group restarted, a new rank can read the address of a dead peer from the previous
    attempt and fail with "connection refused". A ``PrefixStore`` per attempt keeps each
    attempt's keys apart. ``None`` outside torchrun (``init_process_group`` reads the
    environment as usual).
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        world_size,
        is_master=False,
        timeout=timedelta(minutes=10),
    )
    return dist.PrefixStore(f"lstmkit/attempt-{attempt}", store)
