"""PNG pictures of the glass box (matplotlib, Agg backend, no pyplot state).

* :func:`text_heatmap_png` — text coloured by one unit's cell value or gate, with a labelled
  colour bar (the PNG twin of :func:`lstmkit.inspect.html.text_heatmap_html`);
* :func:`saturation_png` — per layer, each unit's fraction of right-saturated (> 0.9) against
  left-saturated (< 0.1) steps, one colour per gate (Karpathy, Johnson & Fei-Fei 2015, fig. 3);
* :func:`gradient_flow_png` — ``‖∂L/∂h_t‖`` (and ``‖∂h_T/∂x_t‖``) against the lag, log scale;
* :func:`gates_png` — every recorded value of one unit over time (masked steps shaded);
* :func:`learning_curves_png` — test error against wall time for experiment runs.

Every writer returns the path, writes atomically (:func:`lstmkit.utils.atomic_write`) and makes
a valid PNG for odd input: empty text (a figure that says so), one character, any Unicode
(characters the font lacks are drawn as boxes, without warnings), very long text (truncated,
with a notice in the figure).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstmkit.inspect import colors
from lstmkit.inspect.html import _display, as_values, tokens_of
from lstmkit.inspect.record import GATE_LABELS, Recording, Trace
from lstmkit.utils import atomic_write

PNG_MAX_CHARS = 3_000
_GATE_COLORS = {
    "i": "#1b9e77",
    "f": "#d95f02",
    "g": "#7570b3",
    "o": "#e7298a",
    "c": "#222222",
    "h": "#66a61e",
    "r": "#1b9e77",
    "z": "#d95f02",
    "n": "#7570b3",
}


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    target = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # glyphs missing from the font: drawn as boxes
        with atomic_write(target, "wb") as fh:
            fig.savefig(fh, format="png")
    return target


def _cmap(name: str) -> Any:
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list(name, colors.anchors(name))


def _colorbar(fig: Any, ax: Any, cmap: str, vmin: float, vmax: float, label: str) -> None:
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    sm = ScalarMappable(norm=Normalize(vmin, vmax), cmap=_cmap(cmap))
    bar = fig.colorbar(sm, ax=ax, orientation="horizontal", fraction=0.05, pad=0.02, aspect=40)
    bar.set_label(label)


# -- text heatmap -----------------------------------------------------------------------------


def _layout(tokens: list[str], width: int, is_tokens: bool) -> list[tuple[int, int, int]]:
    """``(index, row, column)`` of each token: wrap at ``width`` columns and after newlines."""
    out, row, col = [], 0, 0
    for k, tok in enumerate(tokens):
        span = max(1, len(tok) + (1 if is_tokens else 0)) if is_tokens else 1
        if col and col + span > width:
            row, col = row + 1, 0
        out.append((k, row, col))
        col += span
        if tok == "\n":
            row, col = row + 1, 0
    return out


def text_heatmap_png(
    path: str | Path,
    text: str | Sequence[str],
    values: Any,
    *,
    label: str = "value",
    title: str = "",
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    gate: str | None = None,
    width: int = 80,
    max_chars: int = PNG_MAX_CHARS,
) -> Path:
    """Write ``text`` with each character/token on a background coloured by its value (one per
    character/token, NaN = masked), ``width`` columns per line, and a labelled colour bar."""
    from matplotlib.patches import Rectangle

    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")
    tokens, is_tokens = tokens_of(text)
    vals = as_values(values, len(tokens))
    total = len(tokens)
    notice = ""
    if total > max_chars:
        kind = "tokens" if is_tokens else "characters"
        notice = f"truncated: first {max_chars:,} of {total:,} {kind} shown"
        tokens, vals = tokens[:max_chars], vals[:max_chars]
    name, lo, hi = colors.scale_for(gate, vals, cmap)
    lo = lo if vmin is None else vmin
    hi = hi if vmax is None else vmax
    cells = _layout(tokens, width, is_tokens)
    n_rows = (cells[-1][1] + 1) if cells else 1
    if n_rows == 1 and cells:  # one short line: no empty columns on the right
        width = max(30, cells[-1][2] + max(1, len(tokens[-1]) + 1 if is_tokens else 1))
    fig = _figure(max(6.0, width * 0.11 + 0.6), 1.6 + 0.24 * n_rows)
    ax = fig.add_axes((0.02, 0.28 if n_rows < 4 else 0.18, 0.96, 0.6 if n_rows < 4 else 0.72))
    ax.set_xlim(0, width)
    ax.set_ylim(n_rows, 0)
    ax.axis("off")
    heading = title or label
    if notice:
        heading = f"{heading}  ({notice})" if heading else notice
    ax.set_title(heading, fontsize=10, loc="left")
    if not tokens:
        ax.text(
            0.0,
            0.5,
            "(empty text: nothing to colour)",
            va="center",
            fontsize=10,
            parse_math=False,
            color="#555555",
        )
    for k, row, col in cells:
        rgb = colors.color(name, colors.normalise(vals[k], lo, hi))
        tok = tokens[k]
        span = max(1, len(tok) + 1) if is_tokens else 1
        ax.add_patch(Rectangle((col, row), span, 1, facecolor=rgb, edgecolor="none"))
        shown, control = _display(tok)
        ax.text(
            col + (0.15 if is_tokens else 0.5),
            row + 0.55,
            shown,
            ha="left" if is_tokens else "center",
            va="center",
            fontsize=9 if not control else 6,
            family="monospace",
            color=colors.text_color(rgb) if not control else "#777777",
            parse_math=False,
        )
    _colorbar(fig, ax, name, lo, hi, label)
    return _save(fig, path)


def trace_heatmap_png(
    path: str | Path,
    trace: Trace,
    text: str | Sequence[str],
    unit: int,
    gate: str = "c",
    batch: int = 0,
    **kw: Any,
) -> Path:
    """:func:`text_heatmap_png` of one unit of one recorded gate (default the cell state)."""
    tokens, _ = tokens_of(text)
    if len(tokens) != trace.steps:
        raise ValueError(
            f"{trace.name}: the text has {len(tokens)} characters/tokens but the recording has "
            f"{trace.steps} steps"
        )
    if not 0 <= batch < trace.batch_size:
        raise ValueError(
            f"{trace.name}: batch index {batch} out of range ({trace.batch_size} rows)"
        )
    values = trace.unit(gate, unit)[batch].double().numpy()
    values = np.where(trace.mask[batch].numpy(), values, np.nan)
    kw.setdefault("label", f"{trace.name}: {GATE_LABELS[gate]}, unit {unit}")
    return text_heatmap_png(path, text, values, gate=gate, **kw)


# -- saturation -------------------------------------------------------------------------------


def saturation_png(
    path: str | Path, source: Recording | Trace | Any, title: str = "Gate saturation"
) -> Path:
    """Per layer and direction, a scatter of each unit's right-saturated against left-saturated
    fraction, coloured by gate; ``source`` is a recording, a trace or the table of
    :func:`lstmkit.inspect.stats.saturation`."""
    from lstmkit.inspect.stats import saturation

    table = source if hasattr(source, "columns") else saturation(source)
    layers = list(dict.fromkeys(table["layer"])) if len(table) else []
    n = max(1, len(layers))
    fig = _figure(3.6 * n + 0.4, 4.0)
    fig.suptitle(title, fontsize=11)
    if not layers:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no gated layer recorded", ha="center", va="center")
        ax.axis("off")
        return _save(fig, path)
    for k, layer in enumerate(layers):
        ax = fig.add_subplot(1, n, k + 1)
        sub = table[table["layer"] == layer]
        for gate in dict.fromkeys(sub["gate"]):
            g = sub[sub["gate"] == gate]
            ax.scatter(
                g["left"],
                g["right"],
                s=18,
                alpha=0.75,
                color=_GATE_COLORS.get(gate, "#333333"),
                label=GATE_LABELS.get(gate, gate),
                edgecolors="none",
            )
        ax.plot([0, 1], [1, 0], ls="--", lw=0.8, color="#999999")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel("fraction left-saturated (< 0.1)")
        if k == 0:
            ax.set_ylabel("fraction right-saturated (> 0.9)")
        ax.set_title(str(layer), fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return _save(fig, path)


# -- gradient flow ------------------------------------------------------------------------------


def gradient_flow_png(
    path: str | Path,
    flows: Mapping[str, Any] | Sequence[Any],
    title: str = "Gradient flow through time",
) -> Path:
    """``‖∂L/∂h_t‖`` (left) and, where computed, ``‖∂h_T/∂x_t‖`` (right) against the lag
    ``T − t`` on a log scale, one curve per :class:`~lstmkit.inspect.gradflow.GradientFlow`
    (its per-step decay ratio in the legend)."""
    items = list(flows.values()) if isinstance(flows, Mapping) else list(flows)
    has_dx = any(f.dh_dx is not None for f in items)
    fig = _figure(11.0 if has_dx else 6.0, 4.2)
    fig.suptitle(title, fontsize=11)
    panels = [("dloss_dh", "‖∂L/∂h_t‖")] + ([("dh_dx", "‖∂h_T/∂x_t‖")] if has_dx else [])
    for k, (quantity, ylabel) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        for flow in items:
            values = getattr(flow, quantity)
            if values is None:
                continue
            positive = np.where(values > 0, values, np.nan)
            try:
                rate = f" (×{flow.decay_rate(quantity):.3f}/step)"
            except ValueError:
                rate = ""
            ax.plot(flow.lag, positive, lw=1.4, label=f"{flow.label}{rate}")
        ax.set_yscale("log")
        ax.set_xlabel("lag T − t (steps before the end)")
        ax.set_ylabel(ylabel + " (mean over batch)")
        ax.grid(True, which="both", alpha=0.25)
        if items:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


# -- gates over time ------------------------------------------------------------------------------


def gates_png(
    path: str | Path,
    trace: Trace,
    unit: int,
    *,
    batch: int = 0,
    gates: Sequence[str] | None = None,
    text: str | Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Every recorded value (or ``gates``) of one unit over time at batch row ``batch``, one
    panel each; masked steps shaded grey. With ``text`` (one character/token per step, at most
    120 steps) the time axis is labelled with it."""
    gates = [trace.check_gate(g) for g in (gates or trace.gates)]
    if not 0 <= batch < trace.batch_size:
        raise ValueError(
            f"{trace.name}: batch index {batch} out of range ({trace.batch_size} rows)"
        )
    unit_index = trace.check_unit(gates[0], unit)
    mask = trace.mask[batch].numpy()
    steps = np.arange(trace.steps)
    fig = _figure(max(7.0, min(16.0, trace.steps * 0.12)), 1.3 * len(gates) + 1.0)
    fig.suptitle(title or f"{trace.name}: unit {unit_index}, batch row {batch}", fontsize=11)
    axes = fig.subplots(len(gates), 1, sharex=True, squeeze=False)[:, 0]
    for ax, g in zip(axes, gates):
        values = trace.unit(g, unit_index)[batch].double().numpy()
        ax.plot(steps, np.where(mask, values, np.nan), color=_GATE_COLORS.get(g, "#333"), lw=1.3)
        for t in np.flatnonzero(~mask):
            ax.axvspan(t - 0.5, t + 0.5, color=colors.MASKED, alpha=0.5, lw=0)
        if colors.GATE_SCALES.get(g, ("", 0, 0))[0] == "sequential":
            ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel(g, rotation=0, labelpad=12)
        ax.grid(True, alpha=0.25)
    axes[-1].set_xlabel("time step t")
    if text is not None:
        tokens, _ = tokens_of(text)
        if len(tokens) != trace.steps:
            raise ValueError(
                f"{trace.name}: the text has {len(tokens)} characters/tokens but the recording "
                f"has {trace.steps} steps"
            )
        if 0 < trace.steps <= 120:
            axes[-1].set_xticks(steps)
            axes[-1].set_xticklabels([_display(t)[0] for t in tokens], fontsize=7)
            for label in axes[-1].get_xticklabels():
                label.set_parse_math(False)
    fig.tight_layout()
    return _save(fig, path)


# -- experiments ---------------------------------------------------------------------------------


def learning_curves_png(path: str | Path, results: Sequence[Any], title: str = "") -> Path:
    """Test error against wall time, one panel per (task, length), one curve per cell, with the
    trivial predictor's error and the solved threshold as dashed lines."""
    from lstmkit.inspect.tasks import get_task

    groups: dict[tuple[str, int], list[Any]] = {}
    for r in results:
        groups.setdefault((r.task, r.length), []).append(r)
    n = max(1, len(groups))
    fig = _figure(5.0 * n + 0.5, 4.0)
    if title:
        fig.suptitle(title, fontsize=11)
    for k, ((task, length), runs) in enumerate(groups.items()):
        ax = fig.add_subplot(1, n, k + 1)
        spec = get_task(task)
        for r in runs:
            if r.history:
                t, _, err = zip(*r.history)
                ax.plot(np.asarray(t) / 60.0, err, marker=".", lw=1.2, label=r.cell_name)
        ax.axhline(spec.trivial_error, ls="--", lw=0.8, color="#888", label="trivial")
        ax.axhline(spec.solved_below, ls=":", lw=0.8, color="#c00", label="solved below")
        ax.set_yscale("log")
        ax.set_xlabel("wall time (min)")
        ax.set_ylabel(f"test {spec.error_name}")
        ax.set_title(f"{task}, T = {length}", fontsize=9)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
