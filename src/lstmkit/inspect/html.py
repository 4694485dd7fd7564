"""Self-contained HTML pages: text coloured by a unit's cell state or gates (Karpathy-style).

Each character (or token) of a text becomes a ``<span>`` whose background is the value of one
unit at that step — the picture of Karpathy, Johnson & Fei-Fei 2015 ("Visualizing and
Understanding Recurrent Networks"), in which single LSTM cells track quotes, line length or
nesting depth. Hovering a character shows its step and value. A labelled colour bar gives the
scale; masked steps are grey.

The pages are one file: inline CSS, no scripts, fonts, images or links — they open offline in
any browser. Odd input is fine: an empty text gives a page that says so, newlines are shown as
``↵`` and break the line, tabs as ``⇥``, other control characters as visible symbols; any
Unicode is kept (the file is UTF-8); text longer than ``max_chars`` is cut with a visible
notice saying how much was left out. Files are written atomically
(:func:`lstmkit.utils.atomic_write`).

Example:
    >>> page = text_heatmap_html("hi!", [0.1, -0.5, 0.9], label="cell 3")
    >>> page.startswith("<!DOCTYPE html>") and "cell 3" in page
    True
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lstmkit.inspect import colors
from lstmkit.inspect.record import GATE_LABELS, Trace
from lstmkit.utils import atomic_write

MAX_CHARS = 20_000

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em;
       color: #222; background: #fff; }
h1 { font-size: 1.2em; } h2 { font-size: 1em; margin: 1.2em 0 0.3em; }
.notice { background: #fff3cd; border: 1px solid #e0c36c; padding: 0.4em 0.7em;
          border-radius: 4px; display: inline-block; margin: 0.3em 0; }
.text { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
        font-size: 15px; line-height: 1.9; border: 1px solid #ddd; padding: 0.6em;
        word-wrap: break-word; overflow-wrap: anywhere; }
.text span { white-space: pre; padding: 2px 0; }
.text span.tok { padding: 2px 3px; margin-right: 2px; }
.text span.ctl { color: #888; font-size: 0.8em; }
.legend { display: flex; align-items: center; gap: 0.6em; margin: 0.5em 0 0.2em;
          font-size: 0.9em; }
.bar { width: 260px; height: 14px; border: 1px solid #999; }
.ticks { display: flex; justify-content: space-between; width: 262px; font-size: 0.8em; }
.masked { display: inline-block; width: 14px; height: 14px; background: %MASKED%;
          border: 1px solid #999; vertical-align: middle; }
""".replace("%MASKED%", colors.MASKED)

_CONTROL = {"\n": "↵", "\t": "⇥", "\r": "␍"}


@dataclass
class HeatRow:
    """One coloured rendering of the text: ``values`` (one per token, NaN = masked), its colour
    map and range, and a caption."""

    label: str
    values: list[float]
    cmap: str
    vmin: float
    vmax: float


def tokens_of(text: str | Sequence[str]) -> tuple[list[str], bool]:
    """The units coloured: the characters of a string, or the given tokens; and whether they
    are tokens (shown separated)."""
    if isinstance(text, str):
        return list(text), False
    if isinstance(text, (list, tuple)) and all(isinstance(t, str) for t in text):
        return list(text), True
    raise TypeError(f"text must be a string or a list of string tokens, got {type(text).__name__}")


def as_values(values: Any, n: int, what: str = "values") -> list[float]:
    """``values`` as a list of ``n`` floats (torch/numpy/list; NaN allowed)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64).reshape(-1) if np.size(values) else np.zeros(0)
    if arr.shape[0] != n:
        raise ValueError(
            f"{what}: expected one value per character/token ({n}), got {arr.shape[0]}"
        )
    return arr.tolist()


def _display(token: str) -> tuple[str, bool]:
    """What to show for a token, and whether it is a control character."""
    if token in _CONTROL:
        return _CONTROL[token], True
    if len(token) == 1 and (ord(token) < 32 or ord(token) == 127):
        return chr(0x2400 + ord(token)) if ord(token) < 32 else "␡", True
    return token, False


def _legend(row: HeatRow) -> str:
    stops = ", ".join(colors.anchors(row.cmap))
    mid = (row.vmin + row.vmax) / 2
    return (
        f'<div class="legend"><span>{html.escape(row.label)}</span>'
        f'<div><div class="bar" style="background: linear-gradient(to right, {stops});"></div>'
        f'<div class="ticks"><span>{row.vmin:.3g}</span><span>{mid:.3g}</span>'
        f"<span>{row.vmax:.3g}</span></div></div>"
        f'<span class="masked"></span><span>masked / no value</span></div>'
    )


def _render_row(tokens: list[str], row: HeatRow, is_tokens: bool) -> str:
    parts = []
    for t, (tok, v) in enumerate(zip(tokens, row.values)):
        rgb = colors.color(row.cmap, colors.normalise(v, row.vmin, row.vmax))
        shown, control = _display(tok)
        value = "masked" if not math.isfinite(v) else f"{v:.4g}"
        cls = " ".join(c for c in ("tok" if is_tokens else "", "ctl" if control else "") if c)
        cls_attr = f' class="{cls}"' if cls else ""
        style = f"background:{colors.to_hex(rgb)};color:{colors.text_color(rgb)}"
        parts.append(
            f'<span{cls_attr} style="{style}" title="t={t} · {html.escape(value)}">'
            f"{html.escape(shown)}</span>"
        )
        if tok == "\n":
            parts.append("<br>")
    return f'<div class="text">{"".join(parts)}</div>'


def page(
    text: str | Sequence[str],
    rows: list[HeatRow],
    *,
    title: str = "lstmkit glass box",
    max_chars: int = MAX_CHARS,
    description: str = "",
) -> str:
    """An HTML page showing ``text`` once per row of values (see :class:`HeatRow`)."""
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")
    tokens, is_tokens = tokens_of(text)
    total = len(tokens)
    kind = "tokens" if is_tokens else "characters"
    body = [f"<h1>{html.escape(title)}</h1>"]
    if description:
        body.append(f"<p>{html.escape(description)}</p>")
    if total > max_chars:
        body.append(
            f'<p class="notice">Truncated: showing the first {max_chars:,} of {total:,} {kind} '
            f"({total - max_chars:,} not shown).</p>"
        )
        tokens = tokens[:max_chars]
    if not tokens:
        body.append('<p class="notice">The text is empty: there is nothing to colour.</p>')
    for row in rows:
        values = row.values[: len(tokens)]
        shown = HeatRow(row.label, values, row.cmap, row.vmin, row.vmax)
        body.append(f"<h2>{html.escape(row.label)}</h2>")
        body.append(_legend(shown))
        if tokens:
            body.append(_render_row(tokens, shown, is_tokens))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def text_heatmap_html(
    text: str | Sequence[str],
    values: Any,
    *,
    label: str = "value",
    title: str = "lstmkit glass box",
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    gate: str | None = None,
    max_chars: int = MAX_CHARS,
) -> str:
    """One text coloured by ``values`` (one per character/token; NaN = masked).

    The colour scale is ``cmap`` over ``[vmin, vmax]``; by default the gate's usual scale
    (gates ``0 … 1`` sequential; ``c`` symmetric around 0 from the data), else from the data.
    """
    tokens, _ = tokens_of(text)
    vals = as_values(values, len(tokens))
    name, lo, hi = colors.scale_for(gate, vals[:max_chars], cmap)
    row = HeatRow(label, vals, name, lo if vmin is None else vmin, hi if vmax is None else vmax)
    return page(text, [row], title=title, max_chars=max_chars)


def trace_rows(
    trace: Trace, unit: int, gates: Sequence[str] | None = None, batch: int = 0
) -> list[HeatRow]:
    """A row per gate of one unit of ``trace`` at batch row ``batch`` (masked steps NaN)."""
    if not 0 <= batch < trace.batch_size:
        raise ValueError(
            f"{trace.name}: batch index {batch} out of range (the recording has "
            f"{trace.batch_size} rows)"
        )
    mask = trace.mask[batch].numpy()
    rows = []
    for g in gates or trace.gates:
        values = trace.unit(g, unit)[batch].double().numpy()
        values = np.where(mask, values, np.nan).tolist()
        name, lo, hi = colors.scale_for(g, values)
        rows.append(HeatRow(f"{GATE_LABELS[g]} — unit {unit}", values, name, lo, hi))
    return rows


def trace_html(
    trace: Trace,
    text: str | Sequence[str],
    unit: int,
    *,
    gates: Sequence[str] | None = None,
    batch: int = 0,
    title: str | None = None,
    max_chars: int = MAX_CHARS,
) -> str:
    """The text coloured once per gate of one unit (``gates`` default: all recorded values).

    ``text`` must have one character/token per recorded step (``trace.steps``).
    """
    tokens, _ = tokens_of(text)
    if len(tokens) != trace.steps:
        raise ValueError(
            f"{trace.name}: the text has {len(tokens)} characters/tokens but the recording has "
            f"{trace.steps} steps"
        )
    for g in gates or ():
        trace.check_gate(g)
    rows = trace_rows(trace, unit, gates, batch)
    heading = title or f"{trace.name}: unit {unit}"
    return page(
        text,
        rows,
        title=heading,
        max_chars=max_chars,
        description=f"{trace!r}, batch row {batch}",
    )


def write_html(path: str | Path, content: str) -> Path:
    """Write ``content`` to ``path`` atomically as UTF-8 (lone surrogates replaced)."""
    target = Path(path)
    with atomic_write(target, "wb") as fh:
        fh.write(content.encode("utf-8", errors="replace"))
    return target


def save_text_heatmap_html(
    path: str | Path, text: str | Sequence[str], values: Any, **kw: Any
) -> Path:
    """:func:`text_heatmap_html` written to ``path``."""
    return write_html(path, text_heatmap_html(text, values, **kw))


def save_trace_html(
    path: str | Path, trace: Trace, text: str | Sequence[str], unit: int, **kw: Any
) -> Path:
    """:func:`trace_html` written to ``path``."""
    return write_html(path, trace_html(trace, text, unit, **kw))
