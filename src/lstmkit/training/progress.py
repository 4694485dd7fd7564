"""Keras-style progress output for ``fit``/``evaluate``/``predict``, drawn with rich.

``verbose=1``: a live bar per epoch (steps, ETA, samples/s, running loss and metrics) on a
terminal, ending in one summary line; ``verbose=2``: only the summary line per epoch;
``verbose=0``: silent. When output is not a terminal (logs, CI) the live bar is skipped and only
summary lines are printed.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def format_logs(logs: dict[str, Any]) -> str:
    """``"accuracy: 0.8125 - loss: 0.4021"`` (sorted, Keras's order and precision)."""
    parts = []
    for k in sorted(logs):
        v = logs[k]
        if isinstance(v, float):
            parts.append(f"{k}: {v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{k}: {v:.4e}")
    return " - ".join(parts)


class ProgressBar:
    """One epoch's (or one evaluation's) progress: ``update(step, logs, samples)``, ``close``."""

    def __init__(
        self, total_steps: int | None, verbose: int, title: str = "", console: Console | None = None
    ) -> None:
        self.verbose = verbose
        self.total = total_steps
        self.console = console or Console(file=sys.stdout, highlight=False)
        self.start = time.perf_counter()
        self.samples = 0
        self._last_draw = 0.0
        self._progress: Progress | None = None
        self._task: Any = None
        if verbose == 1 and self.console.is_terminal:
            self._progress = Progress(
                TextColumn(title),
                MofNCompleteColumn(),
                BarColumn(bar_width=24),
                TimeRemainingColumn(),
                TextColumn("{task.fields[rate]} - {task.fields[logs]}"),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=total_steps, rate="", logs="")

    def update(self, step: int, logs: dict[str, Any] | None, samples: int) -> None:
        """Record ``step`` steps done and ``samples`` samples seen so far."""
        self.samples = samples
        if self._progress is None:
            return
        now = time.perf_counter()
        if now - self._last_draw < 0.1 and (self.total is None or step < self.total):
            return
        self._last_draw = now
        rate = samples / max(now - self.start, 1e-9)
        self._progress.update(
            self._task, completed=step, rate=f"{rate:,.0f} samples/s", logs=format_logs(logs or {})
        )

    def close(self, steps: int, logs: dict[str, Any]) -> None:
        """Stop the live bar and print the summary line."""
        elapsed = time.perf_counter() - self.start
        if self._progress is not None:
            self._progress.stop()
        if self.verbose in (1, 2):
            per_step = elapsed / max(steps, 1)
            rate = self.samples / max(elapsed, 1e-9)
            step_txt = f"{per_step * 1e3:.0f}ms/step" if per_step < 1 else f"{per_step:.1f}s/step"
            line = f"{steps}/{steps} - {elapsed:.0f}s {step_txt} - {rate:,.0f} samples/s"
            text = format_logs(logs)
            self.console.print(f"{line} - {text}" if text else line, soft_wrap=True)
