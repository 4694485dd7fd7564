"""Data-parallel scaling of the seed model: 1 process vs N processes (torchrun, gloo), and the
communication cost per step.

    python -m benchmarks.distributed [--nproc 2] [--steps 30] [--rounds 3] [--seq-len 80]

Each round runs the 1-process job and then the N-process job (alternating, same machine, same
global batch of 32): the time per training step is the median over the steps after warm-up,
measured inside ``fit`` by a callback. The N-process job also times ``all_reduce`` of a buffer
the size of the model's gradients (the communication DDP does every step). Figures are medians
over rounds; the ratio is N-process samples/s over 1-process samples/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _worker(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    import torch.distributed as dist

    from lstmkit.callbacks import Callback
    from lstmkit.layers import LSTM, Dense, Dropout, Embedding
    from lstmkit.models import Sequential
    from lstmkit.utils import set_random_seed

    world = int(os.environ.get("WORLD_SIZE", "1"))
    torch.set_num_threads(max(1, args.cores // world))
    set_random_seed(0)
    model = Sequential(
        [
            Embedding(input_dim=20000, output_dim=128),
            LSTM(128, return_sequences=True),
            Dropout(0.2),
            LSTM(64),
            Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"], device="cpu")
    rng = np.random.default_rng(0)
    n = 32 * (args.steps + args.warmup)
    x = rng.integers(1, 20000, size=(n, args.seq_len))
    y = (x < 2000).any(axis=1).astype("float32")

    class Timer(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            self._t = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.times.append(time.perf_counter() - self._t)

    timer = Timer()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=True, callbacks=[timer])
    step = statistics.median(timer.times[args.warmup :])
    result = {"world_size": world, "step_s": step}
    if world > 1:
        params = sum(p.numel() for p in model.parameters())
        buf = torch.zeros(params)
        comm = []
        for _ in range(10):
            dist.barrier()
            t = time.perf_counter()
            dist.all_reduce(buf)
            comm.append(time.perf_counter() - t)
        result["allreduce_s"] = statistics.median(comm[2:])
        result["grad_mb"] = params * 4 / 2**20
    if int(os.environ.get("RANK", "0")) == 0:
        Path(args.out).write_text(json.dumps(result))


def _run(nproc: int, args: argparse.Namespace, out: Path) -> dict:
    base = [
        __file__,
        "--worker",
        "--out",
        str(out),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--seq-len",
        str(args.seq_len),
        "--cores",
        str(args.cores),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, args.cores // nproc))}
    env.pop("WORLD_SIZE", None)
    if nproc == 1:
        cmd = [sys.executable, *base]
    else:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            *base,
        ]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seq-len", type=int, default=80)
    p.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args)
        return
    one, many = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            one.append(_run(1, args, Path(tmp) / f"1-{r}.json"))
            many.append(_run(args.nproc, args, Path(tmp) / f"n-{r}.json"))
    s1 = statistics.median(d["step_s"] for d in one)
    sn = statistics.median(d["step_s"] for d in many)
    comm = statistics.median(d["allreduce_s"] for d in many)
    print(
        f"seed model, global batch 32, T={args.seq_len}, {args.cores} cores, "
        f"{args.rounds} rounds (medians)"
    )
    print(f"  1 process : {s1 * 1e3:7.1f} ms/step  {32 / s1:7.1f} samples/s")
    print(
        f"  {args.nproc} processes: {sn * 1e3:7.1f} ms/step  {32 / sn:7.1f} samples/s  "
        f"ratio vs 1 process: {s1 / sn:.2f}x"
    )
    print(
        f"  all_reduce of the gradients ({many[0]['grad_mb']:.1f} MB, gloo): "
        f"{comm * 1e3:.1f} ms = {comm / sn:.0%} of a step"
    )


if __name__ == "__main__":
    main()
