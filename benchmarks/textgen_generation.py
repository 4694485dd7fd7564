"""Generation speed of a 2-layer LSTM(512) character model, batch 1: lstmkit's fast path against
two peers measured in the same run.

    python -m benchmarks.textgen_generation [--chars 2000] [--rounds 5] [--threads 1 2]
                                            [--model runs/textgen/char.lstmkit] [--json out.json]

Every method generates from the same weights with the same prompt and temperature 1 sampling,
one character at a time, each character fed back as the next input:

* ``torch.nn.LSTM per char`` — ``nn.Embedding`` -> ``nn.LSTM(64, 512, num_layers=2)`` ->
  ``nn.Linear``, called once per character with the ``(h, c)`` tuple; ``torch.multinomial``
  on the softmax;
* ``eager cell`` — the same network written by hand: per layer ``F.linear(x, W_ih, b) +
  F.linear(h, W_hh)``, ``chunk(4)``, ``sigmoid``/``tanh``, ``c = f*c + i*g``,
  ``h = o*tanh(c)``; same sampling;
* ``lstmkit layers`` — the Keras-style model (stateful LSTM layers) called once per character
  (:class:`lstmkit.apps.textgen.generate.TextGenerator` with ``backend="layers"``);
* ``lstmkit fast fp32 / bf16 / int8`` — :class:`lstmkit.apps.textgen.fast.FastLSTM` through
  ``TextGenerator.generate_ids`` (Gumbel-max sampling), with float32, bfloat16 or int8 dynamic-
  quantised weights.

Each method runs with every thread count of ``--threads`` (default: 1 and 2, the two cores);
ratios compare methods at the same thread count. With two threads the matrix-vector products
are split between the cores by MKL's OpenMP; this module sets ``OMP_WAIT_POLICY=PASSIVE``
before torch loads (unless already set) so that idle OpenMP threads sleep instead of
spinning: with spinning threads, a busy machine makes each step tens of times slower.

For the shared harness, :func:`workload` measures the same peers with
``benchmarks.harness.measure`` (all at the same number of characters per call); register it as
``WORKLOADS["textgen"] = textgen_generation.workload`` to run ``python -m benchmarks textgen``.

Rounds interleave the methods (so a change in machine load hits all of them); the figure of a
method is its median over rounds. Besides characters per wall-clock second, the table gives
characters per CPU second of this process: on a shared machine the wall-clock rate drops when
other processes take the cores, the CPU rate much less, so it estimates the rate of an idle
machine. Ratios are the fast path's rate over each peer's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP; see above

import torch
import torch.nn.functional as F
from torch import nn

PROMPT = "ROMEO:\n"


def _peers(
    lm,
) -> tuple[Callable[[list[int], int], list[int]], Callable[[list[int], int], list[int]]]:
    """``(nn.LSTM per char, eager cell)`` generators with ``lm``'s weights."""
    from lstmkit.apps.textgen.model import lstm_layers

    model = lm.model
    emb = model.get_layer("embedding").embeddings.detach()
    dense = model.get_layer("logits")
    w_out, b_out = dense.weight.detach(), dense.bias.detach()
    cells = [layer.cell for layer in lstm_layers(model)]
    hidden = cells[0].hidden_size
    torch_lstm = nn.LSTM(emb.shape[1], hidden, num_layers=len(cells))
    with torch.no_grad():
        for k, cell in enumerate(cells):
            getattr(torch_lstm, f"weight_ih_l{k}").copy_(cell.weight_ih)
            getattr(torch_lstm, f"weight_hh_l{k}").copy_(cell.weight_hh)
            getattr(torch_lstm, f"bias_ih_l{k}").copy_(cell.bias_ih)
            getattr(torch_lstm, f"bias_hh_l{k}").zero_()
    torch_emb = nn.Embedding.from_pretrained(emb)
    torch_out = nn.Linear(hidden, w_out.shape[0])
    with torch.no_grad():
        torch_out.weight.copy_(w_out)
        torch_out.bias.copy_(b_out)
    torch_lstm.eval()

    def sample(logits: torch.Tensor, gen: torch.Generator) -> int:
        return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))

    @torch.no_grad()
    def nn_lstm(prompt: list[int], length: int) -> list[int]:
        gen = torch.Generator().manual_seed(0)
        state = None
        for token in prompt:
            out, state = torch_lstm(torch_emb(torch.tensor([[token]])), state)
        out_ids = []
        for _ in range(length):
            token = sample(torch_out(out[0, 0]), gen)
            out_ids.append(token)
            out, state = torch_lstm(torch_emb(torch.tensor([[token]])), state)
        return out_ids

    weights = [(c.weight_ih.detach(), c.weight_hh.detach(), c.bias_ih.detach()) for c in cells]

    @torch.no_grad()
    def eager(prompt: list[int], length: int) -> list[int]:
        gen = torch.Generator().manual_seed(0)
        hs = [torch.zeros(1, hidden) for _ in cells]
        cs = [torch.zeros(1, hidden) for _ in cells]

        def step(token: int) -> torch.Tensor:
            x = emb[token].view(1, -1)
            for k, (w_ih, w_hh, b) in enumerate(weights):
                gates = F.linear(x, w_ih, b) + F.linear(hs[k], w_hh)
                i, f, g, o = gates.chunk(4, 1)
                i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
                cs[k] = f * cs[k] + i * g
                hs[k] = o * torch.tanh(cs[k])
                x = hs[k]
            return F.linear(x, w_out, b_out)[0]

        for token in prompt:
            logits = step(token)
        out_ids = []
        for _ in range(length):
            token = sample(logits, gen)
            out_ids.append(token)
            logits = step(token)
        return out_ids

    return nn_lstm, eager


def _time(fn: Callable[[], object], chars: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return chars / wall, chars / max(cpu, 1e-9)


def _model(path: str = ""):
    """The model file at ``path``, or fresh weights of the default char config (speed does not
    depend on the weights) over 71 characters plus padding and [UNK], as the real vocabulary."""
    from lstmkit.apps.textgen.config import TextgenConfig
    from lstmkit.apps.textgen.data import Vocabulary
    from lstmkit.apps.textgen.model import LanguageModel
    from lstmkit.utils import set_random_seed

    set_random_seed(0)
    if path and Path(path).exists():
        return LanguageModel.load(path), path
    chars = sorted(set("".join(chr(c) for c in range(32, 127)) + "\n—"))[:71]
    vocab = Vocabulary.build("char", "".join(chars))
    return LanguageModel.create(TextgenConfig(), vocab), "random weights, default char config"


def _methods(path: str, n_fast: int, slow_divisor: int = 1):
    """``(lm, source, {name: (call, characters per call)})`` of every method."""
    from lstmkit.apps.textgen.config import SamplingConfig
    from lstmkit.apps.textgen.generate import TextGenerator

    lm, source = _model(path)
    prompt = lm.vocab.encode(PROMPT, unknown="skip").tolist()
    sampling = SamplingConfig(temperature=1.0, seed=0)
    nn_lstm, eager = _peers(lm)
    fast = {w: TextGenerator(lm, "fast", w) for w in ("fp32", "bf16", "int8")}
    layers = TextGenerator(lm, "layers")
    n_slow = max(100, n_fast // slow_divisor)

    def fast_call(weights: str) -> Callable[[], object]:
        return lambda: fast[weights].generate_ids(prompt, n_fast, sampling)

    methods: dict[str, tuple[Callable[[], object], int]] = {
        "torch.nn.LSTM per char": (lambda: nn_lstm(prompt, n_slow), n_slow),
        "eager cell": (lambda: eager(prompt, n_slow), n_slow),
        "lstmkit layers": (lambda: layers.generate_ids(prompt, n_slow, sampling), n_slow),
        "lstmkit fast fp32": (fast_call("fp32"), n_fast),
        "lstmkit fast bf16": (fast_call("bf16"), n_fast),
        "lstmkit fast int8": (fast_call("int8"), n_fast),
    }
    return lm, source, methods


def workload(repeats: int, chars: int = 400) -> list:
    """Text generation, batch 1 (2x LSTM(512) char model): fast path vs torch.nn.LSTM per char.

    The entry for the shared harness (``benchmarks.workloads.WORKLOADS["textgen"]``): every
    method generates ``chars`` characters per call; ratios are against ``torch.nn.LSTM per
    char``, and the fast path's ratio to the eager cell is in the table's notes.
    """
    from benchmarks.harness import measure

    _, _, methods = _methods("", chars)
    table = measure(
        f"textgen generation, 2x LSTM(512), batch 1, {chars} chars per call",
        {name: call for name, (call, _) in methods.items()},
        baseline="torch.nn.LSTM per char",
        repeats=repeats,
        warmup=1,
        samples=chars,
        note="samples/s = characters/s",
    )
    ratio = table.row("eager cell").median / table.row("lstmkit fast fp32").median
    table.extra["lstmkit fast fp32 vs eager cell"] = f"{ratio:.2f}×"
    return [table]


def run(args: argparse.Namespace) -> dict:

    lm, source, methods = _methods(args.model, args.chars, args.slow_divisor)
    cfg = lm.config
    by_threads = {}
    for threads in args.threads:
        torch.set_num_threads(threads)
        for fn, _ in methods.values():  # warm-up
            fn()
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
        for _ in range(args.rounds):
            for name, (fn, n) in methods.items():
                samples[name].append(_time(fn, n))
        results = {
            name: {
                "chars_per_s": statistics.median(s[0] for s in runs),
                "chars_per_cpu_s": statistics.median(s[1] for s in runs),
                "chars": methods[name][1],
            }
            for name, runs in samples.items()
        }
        fast_rate = results["lstmkit fast fp32"]
        ratios = {
            peer: {
                "wall": fast_rate["chars_per_s"] / results[peer]["chars_per_s"],
                "cpu": fast_rate["chars_per_cpu_s"] / results[peer]["chars_per_cpu_s"],
            }
            for peer in ("torch.nn.LSTM per char", "eager cell", "lstmkit layers")
        }
        by_threads[str(threads)] = {"results": results, "fast_fp32_ratio_to": ratios}
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "model": source,
        "network": f"Embedding({len(lm.vocab)}, {cfg.embedding_dim}) -> "
        f"{cfg.layers}x LSTM({cfg.units}) -> Dense({len(lm.vocab)})",
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "load_average": load,
        "rounds": args.rounds,
        "by_threads": by_threads,
    }


def report(out: dict, file=sys.stdout) -> None:
    load = ", ".join(f"{x:.1f}" for x in out["load_average"] or [])
    print(
        f"textgen generation, batch 1: {out['network']} ({out['model']}); {out['cpus']} CPUs, "
        f"torch {out['torch']}, OMP_WAIT_POLICY={out['omp_wait_policy']}, load average {load}",
        file=file,
    )
    for threads, block in out["by_threads"].items():
        print(f"\n{threads} thread(s){'':<15}{'chars/s':>10}{'chars/CPU-s':>14}", file=file)
        for name, r in block["results"].items():
            print(f"{name:<26}{r['chars_per_s']:>10,.0f}{r['chars_per_cpu_s']:>14,.0f}", file=file)
        for peer, ratio in block["fast_fp32_ratio_to"].items():
            print(
                f"fast fp32 / {peer}: {ratio['wall']:.1f}x (wall clock), "
                f"{ratio['cpu']:.1f}x (CPU time)",
                file=file,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.textgen_generation",
        description="Generation speed (batch 1) of lstmkit's fast path vs torch.nn.LSTM per "
        "character and a hand-written eager cell.",
    )
    parser.add_argument("--chars", type=int, default=2000, help="characters per fast-path run")
    parser.add_argument(
        "--slow-divisor",
        type=int,
        default=4,
        help="the peers generate chars/this many characters per run (they are slower)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="torch CPU thread counts to measure (each method runs with each)",
    )
    parser.add_argument(
        "--model",
        default="",
        help="a textgen model file (default: fresh random weights of the default char config)",
    )
    parser.add_argument("--json", default="", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    out = run(args)
    report(out)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
