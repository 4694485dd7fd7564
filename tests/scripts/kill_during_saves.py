"""kill -9 a process that saves a model in a loop, at random moments, many times over.

usage: kill_during_saves.py DIR [--kills N] [--seed S] [--units U]

Builds a model of ~U² weights once (torch on one thread), saves each target once, then N times:
forks a child that saves the model (``model.save``), its weights (``save_weights``) and a
training backup (``save_training_state``) in a loop, sleeps a random time (every other time:
until a write to one target has begun, then up to 2 ms more), sends SIGKILL and reaps it,
and records which temporary files are left and whether each target still loads and holds the
model's weights. At the end the parent saves each target once more and lists the folder.
Prints one JSON object (tests/test_files_ownership.py reads it).

Forking a prepared process keeps each kill cheap (no interpreter or torch start-up per kill).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import time
from pathlib import Path

import torch

torch.set_num_threads(1)  # no thread pool across fork

from lstmkit.layers import LSTM, Dense, Embedding  # noqa: E402
from lstmkit.models import Sequential, load_model  # noqa: E402
from lstmkit.training.state import TrainingState  # noqa: E402
from lstmkit.utils import temp_files  # noqa: E402

TARGETS = ("model.lstmkit", "model.weights.safetensors", "backup.lstmkit")


def save(model: Sequential, folder: Path, name: str) -> None:
    if name == "model.lstmkit":
        model.save(folder / name)
    elif name == "model.weights.safetensors":
        model.save_weights(folder / name)
    else:
        model.save_training_state(folder / name, TrainingState(epoch=3, batch=7, data_seed=11))


def _signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or rewritten in place."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def check(model: Sequential, folder: Path, reference: dict[str, torch.Tensor]) -> dict[str, str]:
    """Per target: "ok", or why not (does not load, or other weights)."""
    out = {}
    for name in TARGETS:
        try:
            if name == "model.weights.safetensors":
                other = Sequential.from_config(model.get_config())
                other.build((None, 4))
                other.load_weights(folder / name)
            else:
                other = load_model(folder / name, compile=False)
            same = all(
                torch.equal(a, b)
                for a, b in zip(reference.values(), other.state_dict().values(), strict=True)
            )
            out[name] = "ok" if same else "other weights"
        except Exception as e:  # recorded, the test shows it
            out[name] = f"{type(e).__name__}: {e}"
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--kills", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--units", type=int, default=640)
    args = p.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    model = Sequential([Embedding(2000, 64), LSTM(args.units), Dense(2000)])
    model.build((None, 4))
    model.compile(optimizer="adam", loss="mse")
    reference = {k: v.detach().clone() for k, v in model.state_dict().items()}
    t0 = time.perf_counter()
    for name in TARGETS:
        save(model, folder, name)
    one_round = time.perf_counter() - t0
    rng = random.Random(args.seed)
    kills = []
    for k in range(args.kills):
        # every other kill aimed at a write in progress, to each target in turn
        aimed = TARGETS[(k // 2) % len(TARGETS)] if k % 2 else None
        delay = rng.uniform(0.0, 2.5 * one_round)
        pid = os.fork()
        if pid == 0:  # the writer: save until killed
            try:
                while True:
                    for name in TARGETS:
                        save(model, folder, name)
            finally:
                os._exit(1)
        if aimed is not None:  # wait until a write to that target begins, then kill at once
            deadline = time.perf_counter() + 10 * one_round + 5
            target = folder / aimed
            before = (set(temp_files(target)), _signature(target))
            while time.perf_counter() < deadline:
                if set(temp_files(target)) - before[0] or _signature(target) != before[1]:
                    break
                time.sleep(0.0005)
            delay = rng.uniform(0.0, 0.002)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        left = sorted(p.name for name in TARGETS for p in temp_files(folder / name))
        targets = check(model, folder, reference)
        kills.append({"aimed": aimed, "delay": delay, "temp_files": left, "targets": targets})
    for name in TARGETS:
        save(model, folder, name)
    final = {"listing": sorted(os.listdir(folder)), "targets": check(model, folder, reference)}
    size = sum((folder / n).stat().st_size for n in TARGETS)
    print(json.dumps({"round_s": one_round, "bytes": size, "kills": kills, "final": final}))


if __name__ == "__main__":
    main()
