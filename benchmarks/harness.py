"""The shared timing harness: every figure is a ratio against a named peer measured in the same
run, with the peers alternating so that a noisy machine slows them all alike.

>>> import time
>>> table = measure("demo", {"slow": lambda: time.sleep(0.002), "fast": lambda: None},
...                 baseline="slow", repeats=3, warmup=1)
>>> table.rows[1].name, table.rows[1].ratio > 1
('fast', True)
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class Row:
    """One peer: its times (seconds), median, and speed relative to the baseline (> 1 = faster)."""

    name: str
    times: list[float]
    ratio: float = float("nan")
    samples: int | None = None
    cpu_times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def cpu_median(self) -> float:
        """Median CPU time of the process (all threads) per call."""
        return statistics.median(self.cpu_times) if self.cpu_times else float("nan")

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median (how noisy this peer's times were)."""
        if len(self.times) < 4:
            return float("nan")
        q = statistics.quantiles(self.times, n=4)
        return (q[2] - q[0]) / self.median


@dataclass
class Table:
    """A benchmark's peers against one baseline."""

    title: str
    baseline: str
    rows: list[Row]
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    def markdown(self) -> str:
        has_samples = any(r.samples for r in self.rows)
        head = "| peer | median ms | CPU ms | IQR/median |" + (
            " samples/s |" if has_samples else ""
        )
        head += f" speed vs `{self.baseline}` |"
        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for r in self.rows:
            cells = [f"`{r.name}`", f"{r.median * 1e3:.1f}", f"{r.cpu_median * 1e3:.0f}"]
            cells.append(f"{r.spread:.2f}")
            if has_samples:
                cells.append(f"{r.samples / r.median:.0f}" if r.samples else "")
            cells.append(f"**{r.ratio:.2f}×**" if r.name != self.baseline else "1.00×")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        width = max(len(r.name) for r in self.rows)
        out = [f"== {self.title}" + (f" ({self.note})" if self.note else "")]
        for r in self.rows:
            rate = f"  {r.samples / r.median:8.0f} samples/s" if r.samples else ""
            out.append(
                f"  {r.name:<{width}}  {r.median * 1e3:9.1f} ms (CPU {r.cpu_median * 1e3:8.1f})"
                f"  ±{r.spread:4.2f}{rate}"
                f"  {r.ratio:5.2f}× vs {self.baseline}"
            )
        return "\n".join(out)


def measure(
    title: str,
    peers: dict[str, Callable[[], object]],
    *,
    baseline: str,
    repeats: int = 10,
    warmup: int = 2,
    samples: int | None = None,
    note: str = "",
) -> Table:
    """Time every peer ``repeats`` times, alternating (the order rotates each round), after
    ``warmup`` untimed calls each; the ratio is ``median(baseline) / median(peer)``."""
    if baseline not in peers:
        raise ValueError(f"measure: baseline {baseline!r} is not one of the peers {list(peers)}")
    names = list(peers)
    for name in names:
        for _ in range(warmup):
            peers[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for k in range(repeats):
        order = names[k % len(names) :] + names[: k % len(names)]
        for name in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            peers[name]()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    rows = [Row(n, times[n], samples=samples, cpu_times=cpu[n]) for n in names]
    base = statistics.median(times[baseline])
    for r in rows:
        r.ratio = base / r.median
    return Table(title, baseline, rows, note)


def machine() -> dict[str, str]:
    """What the figures depend on: CPU, cores, threads, torch, load, date."""
    model = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(
            (k.strip(), v.strip())
            for k, v in (ln.split(":", 1) for ln in out.splitlines() if ":" in ln)
        )
        model = fields.get("Model name", model)
    except (OSError, subprocess.CalledProcessError):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "oneDNN available": str(torch.backends.mkldnn.is_available()),
        "load average at start": " ".join(f"{x:.2f}" for x in load),
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
    }


def write_section(path: str | os.PathLike[str], name: str, text: str, append: bool = False) -> None:
    """Put ``text`` between the ``<!-- name: begin -->`` / ``<!-- name: end -->`` markers of the
    markdown file ``path`` (after the section's current text with ``append``), leaving every
    other section as it was; a file or section not there yet is created. Written atomically."""
    from lstmkit.utils import atomic_write

    begin = f"<!-- {name}: begin (section owned by benchmarks; edit only between these markers) -->"
    end = f"<!-- {name}: end -->"
    try:
        with open(path, encoding="utf-8") as fh:
            current = fh.read()
    except FileNotFoundError:
        current = "# lstmkit benchmark results\n"
    start = current.find(f"<!-- {name}: begin")
    stop = current.find(end)
    if start >= 0 and stop > start:
        body = current[current.index("\n", start) + 1 : stop].strip("\n")
        new_body = f"{body}\n\n{text.strip()}" if append and body else text.strip()
        updated = f"{current[:start]}{begin}\n{new_body}\n{end}{current[stop + len(end) :]}"
    else:
        updated = f"{current.rstrip()}\n\n{begin}\n{text.strip()}\n{end}\n"
    with atomic_write(path, "w") as fh:
        fh.write(updated)
