"""What ``Model.fit`` costs on top of a hand-written torch training loop over the same modules.

    python -m benchmarks.fit_overhead [--seq-lens 80 200] [--steps 8] [--rounds 9] [--threads 1]

The model is the seed program of issue 3 (``Embedding(20000, 128)``, ``LSTM(128,
return_sequences=True)``, ``Dropout(0.2)``, ``LSTM(64)``, ``Dense(1, sigmoid)``; Adam, binary
cross-entropy, accuracy) at batch size 32 and sequence length T. Two ways to train it for one
epoch of ``--steps`` batches:

* ``fit``: ``model.fit(x, y, batch_size=32, epochs=rounds + 1, shuffle=True, verbose=0)``, each
  epoch timed from ``on_epoch_begin`` to ``on_epoch_end`` (data batching, the training steps,
  loss and accuracy tracking, callbacks, logs) / steps;
* ``torch``: a plain loop over the *same* layer objects (each called as a ``torch.nn.Module``,
  bypassing lstmkit's ``Layer.__call__``), ``torch.optim.Adam(foreach=True)`` with Keras's
  ``eps=1e-7`` (lstmkit's ``Adam`` computes Keras's formula with its own ``torch._foreach``
  ops: the same algorithm, ε in Keras's place), the same clipped binary cross-entropy, the
  same shuffled batches.

The two alternate within one process: a callback runs a torch epoch after each even epoch of
``fit`` and before each odd one; the first epoch of each is a warm-up. Figures are medians over
``--rounds`` epochs; ``overhead = fit / torch - 1`` (``paired``: the median of the ratios of
adjacent epochs, which cancels slow drifts of the machine's load), by the wall clock and by this
process's CPU time (``time.process_time``: with one intra-op thread it is the compute the step
used, and far less disturbed than the wall clock when other processes share the cores). The
verdict against the target (``--target``, 5 %) uses the CPU time.

:func:`workload` gives the same measurement as tables of the shared harness
(``benchmarks.harness``) for ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from typing import Any

import numpy as np
import torch
from torch import nn

BATCH = 32
VOCAB = 20000


def seed_model() -> Any:
    from lstmkit.layers import LSTM, Dense, Dropout, Embedding
    from lstmkit.models import Sequential

    model = Sequential([
        Embedding(input_dim=VOCAB, output_dim=128),
        LSTM(128, return_sequences=True),
        Dropout(0.2),
        LSTM(64),
        Dense(1, activation="sigmoid"),
    ])  # fmt: skip
    model.compile(
        optimizer="adam",
        loss="binary_crossentropy",
        metrics=["accuracy"],
        device="cpu",
    )
    return model


def task(steps: int, seq_len: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(1, VOCAB, size=(BATCH * steps, seq_len))
    return x, (x < 2000).any(axis=1).astype(np.float32)


class TorchLoop:
    """The hand-written loop: the model's own layers, ``torch.optim.Adam``, clipped BCE."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.layers = list(model.layers)
        self.optimizer = torch.optim.Adam(
            model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7, foreach=True
        )

    def epoch(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.model.train()
        order = torch.randperm(len(x))
        total = 0.0
        for lo in range(0, len(x), BATCH):
            idx = order[lo : lo + BATCH]
            h, target = x[idx], y[idx].unsqueeze(-1)
            self.optimizer.zero_grad(set_to_none=True)
            for layer in self.layers:
                h = nn.Module.__call__(layer, h)
            p = h.clamp(1e-7, 1 - 1e-7)
            loss = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).mean()
            loss.backward()
            self.optimizer.step()
            total += loss.detach()
        self.model.eval()
        return float(total)


def measure(seq_len: int, steps: int, rounds: int) -> dict[str, Any]:
    from lstmkit.callbacks import Callback
    from lstmkit.utils import set_random_seed

    set_random_seed(0)
    model = seed_model()
    x_np, y_np = task(steps, seq_len)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    loop = TorchLoop(model)
    fit_t: list[tuple[float, float]] = []
    torch_t: list[tuple[float, float]] = []

    def clocks() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def torch_epoch() -> None:
        wall, cpu = clocks()
        loop.epoch(x, y)
        now = clocks()
        torch_t.append(((now[0] - wall) / steps, (now[1] - cpu) / steps))

    class Alternate(Callback):
        """Times each epoch of ``fit`` and runs a torch epoch next to it: after it on even
        epochs, before it on odd ones."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if epoch % 2 == 1:
                torch_epoch()
            self.start = clocks()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            now = clocks()
            fit_t.append(((now[0] - self.start[0]) / steps, (now[1] - self.start[1]) / steps))
            if epoch % 2 == 0:
                torch_epoch()

    # One fit call: its one-time set-up is not part of the per-step time. Epoch 0 (and the
    # torch epoch after it) is the warm-up: builds, optimiser state, engine caches.
    model.fit(
        x_np, y_np, batch_size=BATCH, epochs=rounds + 1, shuffle=True, verbose=0,
        callbacks=[Alternate()],
    )  # fmt: skip
    fit_t, torch_t = fit_t[1:], torch_t[1:]
    out: dict[str, Any] = {"seq_len": seq_len, "fit_times": fit_t, "torch_times": torch_t}
    for i, clock in enumerate(("wall", "cpu")):
        f = statistics.median(t[i] for t in fit_t)
        t = statistics.median(t[i] for t in torch_t)
        paired = statistics.median(a[i] / b[i] for a, b in zip(fit_t, torch_t))
        out[clock] = {"fit_ms": f * 1e3, "torch_ms": t * 1e3, "ratio": f / t, "paired": paired}
    return out


def workload(repeats: int, seq_lens: tuple[int, ...] = (80, 200), steps: int = 8) -> list[Any]:
    """The same measurement as tables of the shared harness (``benchmarks.harness``), for
    ``python -m benchmarks``: peers ``torch loop`` (the baseline) and ``model.fit``, per step;
    the ratio is ``median(torch loop) / median(model.fit)`` (below 1: fit is slower)."""
    from benchmarks.harness import Row, Table

    tables = []
    for seq_len in seq_lens:
        r = measure(seq_len, steps, repeats)
        rows = [
            Row(name, [t[0] for t in times], samples=BATCH, cpu_times=[t[1] for t in times])
            for name, times in (("torch loop", r["torch_times"]), ("model.fit", r["fit_times"]))
        ]
        for row in rows:
            row.ratio = rows[0].median / row.median
        note = f"seed model, B={BATCH}, T={seq_len}, time per training step"
        table = Table(f"fit overhead T={seq_len}", "torch loop", rows, note)
        table.extra["CPU-time overhead of fit"] = f"{(r['cpu']['ratio'] - 1) * 100:+.1f}%"
        tables.append(table)
    return tables


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores (load {load:.1f}), torch {torch.__version__} "
        f"with {torch.get_num_threads()} thread(s), Python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[80, 200])
    parser.add_argument("--steps", type=int, default=8, help="batches of 32 per epoch")
    parser.add_argument("--rounds", type=int, default=9, help="timed epochs of each")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--target", type=float, default=0.05, help="allowed overhead")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"fit_overhead: seed model, batch {BATCH}, {args.steps} steps/epoch, "
          f"medians of {args.rounds} alternating epochs")  # fmt: skip
    print(f"machine: {machine()}")
    print(f"{'T':>5} {'clock':>5} {'fit ms/step':>12} {'torch ms/step':>14} {'ratio':>7} "
          f"{'overhead':>9} {'paired':>8}")  # fmt: skip
    worst = 0.0
    for seq_len in args.seq_lens:
        r = measure(seq_len, args.steps, args.rounds)
        worst = max(worst, r["cpu"]["ratio"] - 1)
        for clock in ("wall", "cpu"):
            c = r[clock]
            print(
                f"{seq_len:>5} {clock:>5} {c['fit_ms']:>12.1f} {c['torch_ms']:>14.1f} "
                f"{c['ratio']:>7.3f} {(c['ratio'] - 1) * 100:>8.1f}% {c['paired']:>8.3f}"
            )
    ok = worst <= args.target
    verdict = "met" if ok else "NOT met"
    print(f"target: fit costs <= {args.target:.0%} more CPU time per step: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
