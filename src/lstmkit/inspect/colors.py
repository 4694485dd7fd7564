"""The glass box's two colour maps, shared by the HTML and PNG writers.

* ``"diverging"`` for signed values (cell state ``c``, ``h``, candidates ``g``/``n``): blue for
  negative, white at zero, red for positive (the anchors of ColorBrewer's RdBu, reversed);
* ``"sequential"`` for gates in ``[0, 1]``: white (closed) to dark blue (open) (ColorBrewer's
  Blues).

Both are readable in greyscale (lightness changes monotonically from the middle / from 0) and
for the common colour-vision deficiencies (no red–green contrast).

>>> to_hex(color("sequential", 0.0))
'#f7fbff'
>>> to_hex(color("diverging", 0.5))
'#f7f7f7'
"""

from __future__ import annotations

import math

RGB = tuple[float, float, float]

_ANCHORS: dict[str, list[str]] = {
    "diverging": [
        "#053061",
        "#2166ac",
        "#4393c3",
        "#92c5de",
        "#d1e5f0",
        "#f7f7f7",
        "#fddbc7",
        "#f4a582",
        "#d6604d",
        "#b2182b",
        "#67001f",
    ],
    "sequential": [
        "#f7fbff",
        "#deebf7",
        "#c6dbef",
        "#9ecae1",
        "#6baed6",
        "#4292c6",
        "#2171b5",
        "#08519c",
        "#08306b",
    ],
}

CMAPS = tuple(_ANCHORS)

#: Which map and range suits each recorded value by default.
GATE_SCALES: dict[str, tuple[str, float, float]] = {
    "i": ("sequential", 0.0, 1.0),
    "f": ("sequential", 0.0, 1.0),
    "o": ("sequential", 0.0, 1.0),
    "r": ("sequential", 0.0, 1.0),
    "z": ("sequential", 0.0, 1.0),
    "g": ("diverging", -1.0, 1.0),
    "n": ("diverging", -1.0, 1.0),
    "h": ("diverging", -1.0, 1.0),
    "c": ("diverging", -1.0, 1.0),
}

MASKED = "#bdbdbd"


def _rgb(hex_color: str) -> RGB:
    h = hex_color.lstrip("#")
    return tuple(int(h[k : k + 2], 16) / 255.0 for k in (0, 2, 4))  # type: ignore[return-value]


def check_cmap(cmap: str) -> str:
    if cmap not in _ANCHORS:
        raise ValueError(f"cmap must be one of {', '.join(CMAPS)}, got {cmap!r}")
    return cmap


def color(cmap: str, position: float) -> RGB:
    """The colour at ``position ∈ [0, 1]`` (clipped) of ``cmap``, linearly interpolated."""
    anchors = [_rgb(a) for a in _ANCHORS[check_cmap(cmap)]]
    if not math.isfinite(position):
        return _rgb(MASKED)
    p = min(max(position, 0.0), 1.0) * (len(anchors) - 1)
    k = min(int(p), len(anchors) - 2)
    w = p - k
    a, b = anchors[k], anchors[k + 1]
    return tuple(a[j] + (b[j] - a[j]) * w for j in range(3))  # type: ignore[return-value]


def to_hex(rgb: RGB) -> str:
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def text_color(rgb: RGB) -> str:
    """Black or white, whichever reads better on ``rgb`` (relative luminance)."""
    r, g, b = rgb
    return "#000000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#ffffff"


def anchors(cmap: str) -> list[str]:
    """The anchor colours of ``cmap`` (for CSS gradients and matplotlib colour maps)."""
    return list(_ANCHORS[check_cmap(cmap)])


def normalise(value: float, vmin: float, vmax: float) -> float:
    """``value`` mapped to ``[0, 1]`` by the range (NaN stays NaN)."""
    if not math.isfinite(value):
        return float("nan")
    if vmax <= vmin:
        return 0.5
    return (value - vmin) / (vmax - vmin)


def scale_for(
    gate: str | None, values: list[float], cmap: str | None = None
) -> tuple[str, float, float]:
    """``(cmap, vmin, vmax)``: the gate's default scale, or from the data — symmetric around 0
    (diverging) if the values have both signs, else their range (sequential)."""
    if gate in GATE_SCALES and cmap is None:
        name, lo, hi = GATE_SCALES[gate]
        if gate == "c":  # the cell state is unbounded: scale to the data, symmetric
            top = max((abs(v) for v in values if math.isfinite(v)), default=1.0) or 1.0
            return name, -top, top
        return name, lo, hi
    finite = [v for v in values if math.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if cmap is None:
        cmap = "diverging" if lo < 0 < hi else "sequential"
    if check_cmap(cmap) == "diverging":
        top = max(abs(lo), abs(hi)) or 1.0
        return cmap, -top, top
    if hi <= lo:
        hi = lo + 1.0
    return cmap, lo, hi
