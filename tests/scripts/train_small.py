"""A small seeded training run used by tests/test_distributed.py (single process or torchrun).

usage: train_small.py OUT_DIR [--epochs N] [--kill-at EPOCH:BATCH] [--kill-rank R]
                              [--backup DIR] [--save-freq K]

Writes OUT_DIR/weights-rank{RANK}.safetensors at the end. ``--kill-at`` sends SIGKILL to this
process at that (epoch, batch) — only on the first attempt under torchrun
(TORCHELASTIC_RESTART_COUNT == 0) and only on ``--kill-rank``.
"""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import numpy as np
from safetensors.torch import save_file

from lstmkit.callbacks import BackupAndRestore, LambdaCallback
from lstmkit.layers import LSTM, Dense, Dropout, Embedding
from lstmkit.models import Sequential
from lstmkit.utils import set_random_seed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--kill-at", default=None)
    p.add_argument("--kill-rank", type=int, default=0)
    p.add_argument("--backup", default=None)
    p.add_argument("--save-freq", type=int, default=3)
    p.add_argument("--dropout", type=float, default=0.0)
    args = p.parse_args()
    rank = int(os.environ.get("RANK", "0"))
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"attempt-rank{rank}-{attempt}").touch()
    set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 50, size=(256, 12))
    y = (x < 10).any(axis=1).astype("float32")
    model = Sequential(
        [Embedding(50, 8), LSTM(16), Dropout(args.dropout), Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"], device="cpu")
    callbacks = []
    if args.backup:
        callbacks.append(BackupAndRestore(args.backup, save_freq=args.save_freq))
    if args.kill_at and attempt == 0 and rank == args.kill_rank:
        kill_epoch, kill_batch = (int(v) for v in args.kill_at.split(":"))
        state = {"epoch": 0}

        def on_epoch_begin(epoch: int, logs: dict | None = None) -> None:
            state["epoch"] = epoch

        def on_batch_end(batch: int, logs: dict | None = None) -> None:
            if state["epoch"] == kill_epoch and batch == kill_batch:
                os.kill(os.getpid(), signal.SIGKILL)

        callbacks.append(
            LambdaCallback(on_epoch_begin=on_epoch_begin, on_train_batch_end=on_batch_end)
        )
    model.fit(x, y, batch_size=32, epochs=args.epochs, verbose=0, callbacks=callbacks)
    weights = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(out / f"weights-rank{rank}.safetensors"))


if __name__ == "__main__":
    main()
