"""The seed model's training step: lstmkit against Keras 3 itself, measured in the same run.

Keras cannot live in lstmkit's environment (it pins its own backend), so it runs in a separate
Python given with ``--python`` (a venv with ``keras`` and ``tensorflow``; for example the one
``tests/reference/make_keras_reference.py`` uses). That process stays alive and answers
"time N steps" requests over a pipe, so that the two peers alternate in rounds exactly as the
in-process peers of ``python -m benchmarks`` do, on the same machine at the same moment.

Both sides train the seed network (Embedding(20000, 128) → LSTM(128, return_sequences) →
Dropout(0.2) → LSTM(64) → Dense(1, sigmoid)) with Adam and binary cross-entropy on one fixed
random batch: Keras through ``model.train_on_batch`` (its compiled ``tf.function`` train step),
lstmkit through the same ``compile``/``train_on_batch`` API on its default engine choice.

    python3 -m venv /tmp/kerasref && /tmp/kerasref/bin/pip install keras tensorflow-cpu numpy
    python -m benchmarks keras_peer --python /tmp/kerasref/bin/python --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness import machine, write_section

VOCAB, EMBED, UNITS1, UNITS2 = 20000, 128, 128, 64

# Runs inside the Keras environment: builds the model, then answers "N" with N step times.
_KERAS_SIDE = f"""
import json, os, sys, time
threads = int(sys.argv[1]); batch = int(sys.argv[2]); steps = int(sys.argv[3])
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(threads)
import keras
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
ids = rng.integers(1, {VOCAB}, size=(batch, steps))
labels = rng.integers(0, 2, size=(batch, 1)).astype("float32")
model = keras.Sequential([
    keras.Input((steps,), dtype="int32"),
    keras.layers.Embedding({VOCAB}, {EMBED}),
    keras.layers.LSTM({UNITS1}, return_sequences=True),
    keras.layers.Dropout(0.2),
    keras.layers.LSTM({UNITS2}),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy")
for _ in range(3):
    model.train_on_batch(ids, labels)
print(json.dumps({{"keras": keras.__version__, "tensorflow": tf.__version__}}), flush=True)
for line in sys.stdin:
    out = []
    for _ in range(int(line)):
        t = time.perf_counter(); model.train_on_batch(ids, labels)
        out.append(time.perf_counter() - t)
    print(json.dumps(out), flush=True)
"""


def _lstmkit_step(batch: int, steps: int):
    from lstmkit import layers
    from lstmkit.models import Sequential

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, VOCAB, size=(batch, steps))
    labels = rng.integers(0, 2, size=(batch, 1)).astype("float32")
    model = Sequential(
        [
            layers.Embedding(VOCAB, EMBED),
            layers.LSTM(UNITS1, return_sequences=True),
            layers.Dropout(0.2),
            layers.LSTM(UNITS2),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    for _ in range(3):
        model.train_on_batch(ids, labels)

    def step() -> float:
        t = time.perf_counter()
        model.train_on_batch(ids, labels)
        return time.perf_counter() - t

    return step


def run(python: str, threads: int, batch: int, steps: int, rounds: int, per_round: int) -> str:
    """Alternate ``rounds`` × ``per_round`` timed steps of each peer; the result as markdown."""
    torch.set_num_threads(threads)
    child = subprocess.Popen(
        [python, "-c", _KERAS_SIDE, str(threads), str(batch), str(steps)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        versions = json.loads(child.stdout.readline())
        ours = _lstmkit_step(batch, steps)
        times: dict[str, list[float]] = {"keras": [], "lstmkit": []}
        for _ in range(rounds):
            times["lstmkit"] += [ours() for _ in range(per_round)]
            child.stdin.write(f"{per_round}\n")
            child.stdin.flush()
            times["keras"] += json.loads(child.stdout.readline())
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    med = {k: statistics.median(v) for k, v in times.items()}
    info = machine()
    lines = [
        f"### Seed model, one training step, B{batch}/T{steps}: lstmkit vs Keras "
        f"{versions['keras']} (TensorFlow {versions['tensorflow']} backend)",
        "",
        f"`python -m benchmarks keras_peer --python … --threads {threads} --rounds {rounds}` "
        f"({info['date']}; {info['cpu']}; load average at start {info['load average at start']}; "
        f"{rounds} alternating rounds of {per_round} steps, medians)",
        "",
        "| peer | median ms/step | ratio (Keras / peer) |",
        "|---|---:|---:|",
        f"| Keras 3 `train_on_batch` | {1e3 * med['keras']:.1f} | 1.00 |",
        f"| lstmkit `train_on_batch` (engine auto) | {1e3 * med['lstmkit']:.1f} | "
        f"**{med['keras'] / med['lstmkit']:.2f}** |",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks keras_peer", description=__doc__)
    p.add_argument("--python", required=True, help="a Python with keras and tensorflow")
    p.add_argument("--threads", type=int, default=2, help="threads of both peers")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=200, help="sequence length T")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--per-round", type=int, default=3, help="timed steps per peer per round")
    p.add_argument("--markdown", default=None, help="write the table into this file's section")
    p.add_argument("--append", action="store_true", help="append to that section")
    args = p.parse_args(argv)
    if not Path(args.python).is_file() or not os.access(args.python, os.X_OK):
        p.error(f"--python: expected an executable Python, got {args.python!r}")
    text = run(args.python, args.threads, args.batch, args.steps, args.rounds, args.per_round)
    print(text)
    if args.markdown:
        head = "" if args.append else "## Keras 3 as a peer (issue 4)\n\n"
        write_section(args.markdown, "keras_peer", head + text, append=args.append)


if __name__ == "__main__":
    main(sys.argv[1:])
