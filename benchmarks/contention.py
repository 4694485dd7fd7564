"""The seed model's training step on a quiet machine and with busy competing processes.

    python -m benchmarks contention [--busy 0,1] [--threads 1,2] [--repeats 7]

For every number of busy processes (each a single-threaded Python loop that this benchmark
starts, and stops when the measurement ends) and every torch thread count, the training step
of the seed model (Embedding → LSTM(128) → Dropout → LSTM(64) → Dense, Adam, binary
cross-entropy, one fixed batch) is timed for ``torch.nn.LSTM`` and for lstmkit's engines,
alternating the peers in rounds (:func:`benchmarks.harness.measure`); the table prints medians
and each peer's speed relative to ``torch nn.LSTM`` at the same thread count, and a last table
compares every setting with the quiet machine's one-thread lstmkit step. ``OMP_WAIT_POLICY`` and
the other OpenMP settings are whatever the environment holds (they are printed): run it once
as is and once with ``OMP_WAIT_POLICY=PASSIVE`` to see what spin-waiting costs.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from benchmarks.harness import machine, measure
from benchmarks.workloads import LstmkitSeed, TorchSeed, training_step


def _spin(stop: mp.Event) -> None:  # type: ignore[valid-type]
    x = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        for _ in range(100_000):
            x += 1


@contextmanager
def busy(n: int) -> Iterator[None]:
    """``n`` processes that each keep one core busy until the block ends."""
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    workers = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(n)]
    for w in workers:
        w.start()
    time.sleep(0.5 if n else 0.0)  # let them get going
    try:
        yield
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=5)
            if w.is_alive():
                w.kill()


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks contention", description=__doc__)
    parser.add_argument("--busy", default="0,1", help="busy process counts, e.g. 0,1")
    parser.add_argument("--threads", default="1,2", help="torch thread counts, e.g. 1,2")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument(
        "--engines", default="compiled,fused", help="lstmkit engines (compiled, fused, reference)"
    )
    args = parser.parse_args(argv)
    info = machine()
    omp = {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "KMP_", "GOMP_"))}
    print(" · ".join(f"{k}: {v}" for k, v in info.items() if k != "command"))
    print(f"OpenMP environment: {omp or 'none set'}", flush=True)
    medians: dict[tuple[int, int, str], float] = {}
    for n_busy in _ints(args.busy):
        with busy(n_busy):
            for threads in _ints(args.threads):
                torch.set_num_threads(threads)
                peers = {"torch nn.LSTM": training_step(
                    TorchSeed.like(LstmkitSeed("fused")), args.batch, args.steps)}  # fmt: skip
                for engine in args.engines.split(","):
                    peers[f"lstmkit {engine}"] = training_step(
                        LstmkitSeed(engine), args.batch, args.steps
                    )
                table = measure(
                    f"seed step B{args.batch}/T{args.steps}, {threads} thread(s), "
                    f"{n_busy} busy process(es)",
                    peers,
                    baseline="torch nn.LSTM",
                    repeats=args.repeats,
                    samples=args.batch,
                )
                print(table.text(), flush=True)
                for row in table.rows:
                    medians[(n_busy, threads, row.name)] = row.median
    reference = next(
        (k for k in medians if k[0] == 0 and k[1] == 1 and k[2].startswith("lstmkit")), None
    )
    if reference is not None:
        base = medians[reference]
        print(f"\nagainst {reference[2]}, 1 thread, quiet machine ({1000 * base:.1f} ms/step):")
        for (n_busy, threads, name), m in sorted(medians.items()):
            print(f"  {n_busy} busy, {threads} thread(s), {name:<18} {1000 * m:8.1f} ms "
                  f"{base / m:6.2f}x")  # fmt: skip
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
