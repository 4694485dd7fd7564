"""What ``Model.fit`` costs on top of a hand-written torch training loop over the same modules.

    python -m benchmarks.fit_overhead [--seq-lens 80 200] [--steps 12] [--rounds 7] [--threads 1]

The model is the seed program of issue 3 (``Embedding(20000, 128)``, ``LSTM(128,
return_sequences=True)``, ``Dropout(0.2)``, ``LSTM(64)``, ``Dense(1, sigmoid)``; Adam, binary
cross-entropy, accuracy) at batch size 32 and sequence length T. Two ways to train it for one
epoch of ``--steps`` batches:

* ``fit``: ``model.fit(x, y, batch_size=32, epochs=1, shuffle=True, verbose=0)``, timed as a
  whole call (data batching, loss and accuracy tracking, callbacks, logs, set-up) / steps;
* ``torch``: a plain loop over the *same* layer objects (each called as a ``torch.nn.Module``,
  bypassing lstmkit's ``Layer.__call__``), the same optimiser class (``torch.optim.Adam`` with
  Keras's ``eps=1e-7``, as lstmkit's ``Adam`` wraps it), the same clipped binary cross-entropy,
  the same shuffled batches.

The two alternate within one process (which goes first alternates too), after one warm-up epoch
each. Figures are medians over ``--rounds`` epochs; ``overhead = fit / torch - 1``.
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
    from lstmkit.utils import set_random_seed

    set_random_seed(0)
    model = seed_model()
    x_np, y_np = task(steps, seq_len)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    loop = TorchLoop(model)

    def run_fit() -> float:
        start = time.perf_counter()
        model.fit(x_np, y_np, batch_size=BATCH, epochs=1, shuffle=True, verbose=0)
        return (time.perf_counter() - start) / steps

    def run_torch() -> float:
        start = time.perf_counter()
        loop.epoch(x, y)
        return (time.perf_counter() - start) / steps

    run_fit(), run_torch()  # warm-up: builds, optimiser state, engine caches
    fit_times, torch_times = [], []
    for r in range(rounds):
        pair = (run_fit, run_torch) if r % 2 == 0 else (run_torch, run_fit)
        for fn in pair:
            (fit_times if fn is run_fit else torch_times).append(fn())
    fit_s, torch_s = statistics.median(fit_times), statistics.median(torch_times)
    ratios = [f / t for f, t in zip(fit_times, torch_times)]
    return {
        "seq_len": seq_len,
        "fit_ms": fit_s * 1e3,
        "torch_ms": torch_s * 1e3,
        "ratio": fit_s / torch_s,
        "ratio_of_pairs": statistics.median(ratios),
    }


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
    parser.add_argument("--steps", type=int, default=12, help="batches of 32 per epoch")
    parser.add_argument("--rounds", type=int, default=7, help="timed epochs of each")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--target", type=float, default=0.05, help="allowed overhead")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"fit_overhead: seed model, batch {BATCH}, {args.steps} steps/epoch, "
          f"medians of {args.rounds} alternating epochs")  # fmt: skip
    print(f"machine: {machine()}")
    print(f"{'T':>5} {'fit ms/step':>12} {'torch ms/step':>14} {'ratio':>7} {'overhead':>9}")
    worst = 0.0
    for seq_len in args.seq_lens:
        r = measure(seq_len, args.steps, args.rounds)
        worst = max(worst, r["ratio"] - 1)
        print(
            f"{seq_len:>5} {r['fit_ms']:>12.1f} {r['torch_ms']:>14.1f} {r['ratio']:>7.3f} "
            f"{(r['ratio'] - 1) * 100:>8.1f}%  (median of per-round ratios "
            f"{r['ratio_of_pairs']:.3f})"
        )
    ok = worst <= args.target
    print(f"target: fit costs <= {args.target:.0%} more per step: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
