"""Recording overhead of the glass box: a forward pass inside ``lstmkit.inspect.record`` against
the same pass without recording, per engine, in one run with the peers alternating (the shared
harness, :func:`benchmarks.harness.measure`).

    python -m benchmarks.recording_overhead [--batch 32 --steps 100 --units 128 --repeats 15]

Peers (a Keras-style ``LSTM`` layer, inference under ``torch.no_grad`` as ``predict`` runs it),
each plain and recorded:

* ``fused``: the layer set to torch's fused kernels. Those cannot record, so the recording
  switches the layer to ``engine="auto"``, which picks an engine that records (the compiled
  engine when it is built, else the reference loop): the ratio is what recording costs a user
  of the fast kernels;
* ``reference``: the reference loop;
* ``compiled``: lstmkit's compiled engine (when it is available).

The overhead of an engine is ``median(recorded) / median(plain)``, of the wall-clock times and of
the process's CPU times (the latter is steadier on a shared machine).
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.harness import machine, measure
from lstmkit import engines
from lstmkit.engines import RunOptions
from lstmkit.inspect import record
from lstmkit.layers import LSTM
from lstmkit.utils import set_random_seed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32, help="batch size B")
    parser.add_argument("--steps", type=int, default=100, help="sequence length T")
    parser.add_argument("--units", type=int, default=128, help="hidden units H")
    parser.add_argument("--inputs", type=int, default=32, help="input features I")
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per peer (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    set_random_seed(0)
    x = torch.randn(args.batch, args.steps, args.inputs)
    names = [n for n in ("fused", "reference", "compiled") if n in engines.ENGINES]
    names = [n for n in names if engines.ENGINES[n].available()]
    layers: dict[str, LSTM] = {}
    for name in names:
        layer = LSTM(args.units, return_sequences=True, engine=name)
        layer.build((None, None, args.inputs))
        layer.eval()
        if layers:
            layer.set_weights(next(iter(layers.values())).get_weights())
        layers[name] = layer

    def plain(layer: LSTM):
        def run() -> None:
            with torch.no_grad():
                layer(x)

        return run

    def recorded(layer: LSTM):
        def run() -> None:
            with torch.no_grad(), record(layer):
                layer(x)

        return run

    peers = {}
    for name, layer in layers.items():
        peers[name] = plain(layer)
        peers[f"{name}, recorded"] = recorded(layer)
    title = (
        f"LSTM layer inference, B={args.batch} T={args.steps} I={args.inputs} H={args.units}, "
        f"with and without lstmkit.inspect.record"
    )
    table = measure(title, peers, baseline=names[0], repeats=args.repeats, warmup=2)
    info = machine()
    print(" · ".join(f"{k}: {v}" for k, v in info.items() if k != "command"))
    print(table.text())
    used = engines.choose(layers[names[0]].cell, x, RunOptions(record=True)).name
    print(f"recording a layer on engine='auto' or 'fused' runs on: {used}")
    print("overhead = recorded / plain, from the wall-clock and the CPU-time medians")
    print(f"{'layer engine':12s} {'plain ms':>9s} {'recorded ms':>12s} {'wall':>7s} {'CPU':>7s}")
    for name in layers:
        p, r = table.row(name), table.row(f"{name}, recorded")
        print(
            f"{name:12s} {p.median * 1e3:9.2f} {r.median * 1e3:12.2f} "
            f"{r.median / p.median:6.2f}× {r.cpu_median / p.cpu_median:6.2f}×"
        )


if __name__ == "__main__":
    main()
