"""``python -m benchmarks <workload>…``: lstmkit's engines against torch.nn, same run, medians
and ratios.

Examples::

    python -m benchmarks seed                      # the seed model's training step
    python -m benchmarks seed record variants gru --repeats 15
    python -m benchmarks all --markdown benchmarks/RESULTS.md
    python -m benchmarks all --threads 1 --markdown benchmarks/RESULTS.md --append

Other benchmark modules of this package that define ``main(argv)`` run through the same CLI:
``python -m benchmarks distributed --nproc 2`` is ``python -m benchmarks.distributed --nproc 2``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

import torch

from benchmarks.harness import Table, machine, write_section
from benchmarks.workloads import WORKLOADS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="lstmkit's engines vs torch.nn.LSTM/GRU, measured in one run, alternating.",
    )
    p.add_argument(
        "workloads",
        nargs="+",
        choices=[*WORKLOADS, "all"],
        help="what to measure: "
        + ", ".join(f"{k} ({v.__doc__.splitlines()[0]})" for k, v in WORKLOADS.items()),
    )
    p.add_argument("--repeats", type=int, default=10, help="timed calls per peer (median)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: all)")
    p.add_argument(
        "--markdown",
        default=None,
        help="write the tables and machine info into this file's engines section",
    )
    p.add_argument(
        "--append",
        action="store_true",
        help="append to the engines section instead of replacing it",
    )
    p.epilog = "also: " + ", ".join(_other_modules()) + " (each with its own --help)"
    return p


HEADER = """## Engines: compiled / fused / reference against torch (issue 4)

Written by `python -m benchmarks … --markdown benchmarks/RESULTS.md` (the exact command of each
run is in its table). Every ratio is `median(named peer) / median(row)` measured in the same run
with the peers alternating; above 1 the row is faster. "CPU ms" is the process's CPU time per call
(all threads). The machine may be shared with other jobs: the load average is recorded.

"""


def _markdown(tables: list[Table], info: dict[str, str], seconds: float) -> str:
    lines = [
        f"## Run: {info['torch threads']} thread(s), {info['date']}",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in info.items()),
        f"| wall time | {seconds:.0f} s |",
        "",
    ]
    for t in tables:
        lines.append(t.markdown())
        for k, v in t.extra.items():
            lines.append(f"- {k}: {v}")
        if t.extra:
            lines.append("")
    return "\n".join(lines)


def _other_modules() -> list[str]:
    """Sibling modules with a ``main(argv)`` (their own CLIs, reachable from this one)."""
    here = Path(__file__).parent
    skip = {"__init__", "__main__", "harness", "workloads"}
    return sorted(p.stem for p in here.glob("*.py") if p.stem not in skip)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in _other_modules():
        module = importlib.import_module(f"benchmarks.{argv[0]}")
        if hasattr(module, "main"):
            sys.exit(module.main(argv[1:]))
    args = _parser().parse_args(argv)
    if args.threads:
        from lstmkit.utils import check_threads

        try:
            torch.set_num_threads(check_threads(args.threads, "--threads"))
        except ValueError as e:
            _parser().error(str(e))
    names = list(WORKLOADS) if "all" in args.workloads else args.workloads
    info = machine()
    print(" · ".join(f"{k}: {v}" for k, v in info.items() if k != "command"), flush=True)
    start = time.perf_counter()
    tables: list[Table] = []
    for name in names:
        for table in WORKLOADS[name](args.repeats):
            print(table.text(), flush=True)
            for k, v in table.extra.items():
                print(f"    {k}: {v}")
            tables.append(table)
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if args.markdown:
        run = _markdown(tables, info, time.perf_counter() - start)
        text = run if args.append else HEADER + run
        write_section(args.markdown, "engines", text, append=args.append)
        print(f"wrote the engines section of {args.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
