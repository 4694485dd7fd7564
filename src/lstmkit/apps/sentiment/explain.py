"""Glass-box view of one prediction: the gates and cell of every recurrent layer at every token,
and how the prediction moved token by token.

Two readings of "the prediction after token k":

* **prefix** — the classifier run on the first k tokens alone (front-padded like any input):
  exactly what the model answers for that shorter text;
* **head(h_k)** — the last recurrent layer's hidden state at step k of the full text, put
  through the Dense head: what the network "believed" at that point of its single pass (not
  shown for bidirectional models, whose backward half at step k has read the *end* of the text).

The gates are recorded with :func:`lstmkit.inspect.record` (recording runs an engine that
exposes the gates; all engines give the same numbers). For an LSTM they are
``i, f, g, o`` (input gate, forget gate, candidate, output gate) with the cell ``c`` and the
output ``h``; for a GRU ``r, z, n`` and ``h``. Padding steps are cut off: only the text's
tokens are shown.

Outputs: a table in the terminal (per token: both readings, and the mean over units of each gate
of one layer, coloured), a PNG (one heatmap of units × tokens per gate and layer, under a plot
of the prediction) and a self-contained HTML page holding both.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lstmkit import inspect as glassbox
from lstmkit.apps.sentiment.data import LABELS
from lstmkit.apps.sentiment.model import SentimentClassifier
from lstmkit.data.text import pad_sequences

# Gates whose values lie in [0, 1] (sigmoids); the others are centred on 0.
UNIT_INTERVAL = ("i", "f", "o", "r", "z")
GATE_TITLES = {
    "i": "input gate i",
    "f": "forget gate f",
    "g": "candidate g",
    "o": "output gate o",
    "c": "cell c",
    "h": "hidden h",
    "r": "reset gate r",
    "z": "update gate z",
    "n": "candidate n",
}


@dataclass
class LayerRecord:
    """One recurrent run: ``gates[name]`` is ``(n_tokens, units)``."""

    name: str
    direction: str
    gates: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def title(self) -> str:
        plain = self.direction == "forward" or self.direction in self.name
        return self.name if plain else f"{self.name} ({self.direction})"


@dataclass
class Explanation:
    """Everything :func:`explain` measured for one text."""

    text: str
    tokens: list[str]  # what the model read (standardised words; unknown ones flagged)
    known: list[bool]
    # p, prior, prefix and head are probabilities of one class, labels[target]: the second
    # class of a two-class model (the demo's "positive"), the predicted class of a larger one.
    p_positive: float
    prior: float  # p(class) for an empty text (all padding): where the reading starts
    prefix: np.ndarray  # (n,) p(class) of the classifier on tokens[: k + 1]
    head: np.ndarray | None  # (n,) p(class) of the Dense head on the last layer's h_k
    layers: list[LayerRecord]
    labels: tuple[str, ...] = LABELS
    target: int = 1

    @property
    def binary(self) -> bool:
        return len(self.labels) == 2

    @property
    def target_name(self) -> str:
        """The class whose probability the explanation follows."""
        return self.labels[self.target]

    @property
    def label(self) -> str:
        if self.binary:
            return self.labels[int(self.p_positive >= 0.5)]
        return self.labels[self.target]

    @property
    def confidence(self) -> float:
        """The probability of :attr:`label`."""
        if self.binary and self.label != self.target_name:
            return 1.0 - self.p_positive
        return self.p_positive


def explain(classifier: SentimentClassifier, text: str) -> Explanation:
    """Records gates and prefix predictions for ``text`` (its first ``maxlen`` tokens).

    Raises:
        ValueError: the text has no tokens (empty, or only punctuation/whitespace).
    """
    tokenizer, model = classifier.tokenizer, classifier.model
    row = tokenizer.encode([text])[0]  # (T,), front-padded
    n = int((row != 0).sum())
    if n == 0:
        raise ValueError(f"explain: the text {text[:40]!r} has no words to explain")
    ids = row[-n:]
    vocabulary = tokenizer.vectorizer.get_vocabulary()
    words = tokenizer.vectorizer.tokenize(text)[:n]
    known = [bool(i > 1) for i in ids]
    tokens = [w if k else f"{w}?" for w, k in zip(words, known)]
    assert [vocabulary[i] for i in ids if i > 1] == [w for w, k in zip(words, known) if k]

    with glassbox.record(model) as recording:
        out = model.predict(row[None], verbose=0).reshape(-1)
    target = 1 if classifier.binary else int(out.argmax())
    column = 0 if classifier.binary else target  # the sigmoid's one output is p(labels[1])
    p_positive = float(out[column])
    runs = [  # the text's n steps of each trace: (n, H) per gate, padding steps cut off
        LayerRecord(t.name, t.direction, {g: t[g][0, -n:].numpy() for g in t.gates})
        for t in recording.traces()
    ]

    prefixes = pad_sequences(
        [[], *(ids[: k + 1] for k in range(n))],
        maxlen=tokenizer.maxlen,
        dtype="int64",
        padding="pre",
    )  # (n + 1, T): the empty text, then each prefix
    outputs = model.predict(prefixes, batch_size=256, verbose=0).reshape(n + 1, -1)
    prior, *prefix = outputs[:, column].tolist()

    head = None
    if classifier.config.arch != "bilstm" and runs:
        dense = model.layers[-1]
        with torch.no_grad():
            h = torch.as_tensor(runs[-1].gates["h"])  # (n, H)
            head = dense(h).reshape(n, -1)[:, column].cpu().numpy()
    return Explanation(
        text, tokens, known, p_positive, prior, np.array(prefix), head, runs,
        tuple(classifier.labels), target,
    )  # fmt: skip


# -- terminal ----------------------------------------------------------------------------------


def summary(gate: str, values: np.ndarray) -> float:
    """One number per token for a gate's ``(units,)`` values: the mean of a sigmoid gate (how
    open it is), the mean magnitude of the others (their signs differ from unit to unit)."""
    return float(values.mean() if gate in UNIT_INTERVAL else np.abs(values).mean())


def summary_title(gate: str) -> str:
    return gate if gate in UNIT_INTERVAL else f"|{gate}|"


def _rgb(value: float) -> str:
    """Blue (0) to red (1)."""
    scaled = min(max(value, 0.0), 1.0)
    red, blue = int(255 * scaled), int(255 * (1.0 - scaled))
    return f"rgb({red},{(red + blue) // 3},{blue})"


def _cell(value: float) -> Text:
    return Text(f"{value:.2f}", style=f"black on {_rgb(value)}")


def print_explanation(expl: Explanation, console: Console, layer: int = -1) -> None:
    """The token-by-token table: the prediction after each token and one layer's gates."""
    p_name = f"p({expl.target_name})"
    console.print(
        f"[bold]{expl.label}[/bold] ({expl.confidence:.1%}; {p_name} = {expl.p_positive:.3f}) "
        f"for: {expl.text[:200]!r}"
    )
    run = expl.layers[layer] if expl.layers else None
    # The head reading gets a column only where it tells something the prefix reading does not.
    head_differs = expl.head is not None and float(np.abs(expl.head - expl.prefix).max()) >= 0.01
    title = f"How {p_name} moved, token by token"
    if run is not None:
        title += f"; gates of '{run.title}' (mean over units; |x|: mean magnitude)"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("token", min_width=min(max(len(t) for t in expl.tokens), 16))
    table.add_column("prefix", justify="right")
    table.add_column("Δ", justify="right")
    if head_differs:
        table.add_column("head", justify="right")
    gate_names = list(run.gates) if run is not None else []
    for g in gate_names:
        table.add_column(summary_title(g), justify="right")
    previous = expl.prior
    for k, token in enumerate(expl.tokens):
        p = float(expl.prefix[k])
        delta = p - previous
        previous = p
        colour = "green" if delta > 0.05 else "red" if delta < -0.05 else "default"
        row: list[Text | str] = [token, f"{p:.3f}", Text(f"{delta:+.3f}", style=colour)]
        if head_differs:
            row.append(f"{float(expl.head[k]):.3f}")
        for g in gate_names:
            row.append(_cell(summary(g, run.gates[g][k])))
        table.add_row(*row)
    console.print(table)
    notes = [
        f"prefix: {p_name} of the classifier on the text up to the token",
        f"Δ: the token's change (the first against the empty text's {expl.prior:.3f})",
    ]
    if head_differs:
        notes.append("head: the Dense head on the last layer's h at that step")
    elif expl.head is not None:
        notes.append("the Dense head on the last layer's h at each step agrees within 0.01")
    notes.append("'?' marks a word the model does not know.")
    console.print("; ".join(notes))


# -- PNG -----------------------------------------------------------------------------------------


def write_png(expl: Explanation, path: str | Path) -> Path:
    """One heatmap (units × tokens) per gate and recurrent run, under the prediction curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(expl.tokens)
    gates = list(expl.layers[0].gates) if expl.layers else []
    cols = max(len(expl.layers), 1)
    width = min(max(4.0, 0.35 * n + 2.0), 18.0) * cols
    fig = plt.figure(figsize=(width, 2.2 * (len(gates) + 1) + 1))
    grid = fig.add_gridspec(len(gates) + 1, cols, height_ratios=[1.2] + [1.0] * len(gates))
    x = np.arange(n)
    ax = fig.add_subplot(grid[0, :])
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.plot(x, expl.prefix, "o-", color="tab:purple", label="classifier on the text up to here")
    if expl.head is not None:
        ax.plot(x, expl.head, "s--", color="tab:orange", ms=3, label="Dense head on h_t")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(-0.5, n - 0.5)
    p_name = f"p({expl.target_name})"
    ax.set_ylabel(p_name)
    ax.set_xticks(x, expl.tokens, rotation=60, ha="right", fontsize=8)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(f"{expl.label} ({p_name} = {expl.p_positive:.3f})", fontsize=10)
    for col, run in enumerate(expl.layers):
        for row, g in enumerate(gates, start=1):
            ax = fig.add_subplot(grid[row, col])
            values = run.gates[g].T  # (units, n)
            if g in UNIT_INTERVAL:
                image = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
            else:
                limit = max(float(np.abs(values).max()), 1e-6)
                image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit)
            fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01)
            ax.set_title(f"{run.title}: {GATE_TITLES.get(g, g)}", fontsize=9)
            ax.set_ylabel("unit", fontsize=8)
            ax.set_xticks(x, expl.tokens, rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


# -- HTML ----------------------------------------------------------------------------------------


def write_html(expl: Explanation, path: str | Path, png: str | Path | None = None) -> Path:
    """A self-contained page: the text coloured by prediction change, the token table with mean
    gate values of every layer, and the PNG (embedded) when given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    esc = html.escape
    p_name = esc(f"p({expl.target_name})")
    spans = []
    previous = expl.prior
    for token, p in zip(expl.tokens, expl.prefix):
        delta = float(p) - previous
        previous = float(p)
        alpha = min(abs(delta) * 2.5, 1.0)
        rgb = "0,160,0" if delta >= 0 else "200,0,0"
        spans.append(
            f'<span class="tok" style="background: rgba({rgb},{alpha:.2f})" '
            f'title="{p_name} {float(p):.3f}, Δ {delta:+.3f}">{esc(token)}</span>'
        )
    head_rows = f"<th>token</th><th>{p_name} prefix</th><th>Δ</th>"
    if expl.head is not None:
        head_rows += "<th>head(h)</th>"
    for run in expl.layers:
        head_rows += "".join(
            f"<th>{esc(run.title)}<br>{esc(summary_title(g))}</th>" for g in run.gates
        )
    rows = []
    previous = expl.prior
    for k, token in enumerate(expl.tokens):
        p = float(expl.prefix[k])
        cells = [f"<td>{esc(token)}</td><td>{p:.3f}</td><td>{p - previous:+.3f}</td>"]
        previous = p
        if expl.head is not None:
            cells.append(f"<td>{float(expl.head[k]):.3f}</td>")
        for run in expl.layers:
            for g, values in run.gates.items():
                v = summary(g, values[k])
                cells.append(f'<td style="background: {_rgb(v)}; color: black">{v:.2f}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    image = ""
    if png is not None:
        data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        image = (
            "<h2>Gates and cell, unit by unit</h2>"
            f'<img alt="gate heatmaps" src="data:image/png;base64,{data}">'
        )
    confidence = expl.confidence
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lstmkit sentiment: explain</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
.tok {{ padding: 0.1em 0.25em; margin: 0.05em; border-radius: 0.2em; display: inline-block; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border: 1px solid #ccc; padding: 0.15em 0.4em; text-align: right; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{esc(expl.label)} ({confidence:.1%}; {p_name} = {expl.p_positive:.3f})</h1>
<p>{esc(expl.text[:2000])}</p>
<h2>How the prediction moved</h2>
<p>Each token is coloured by how much it moved {p_name} (classifier run on the text up to
and including it, against {expl.prior:.3f} for the empty text; green up, red down). Hover for
the numbers; '?' marks unknown words.</p>
<p style="font-size: 1.3em">{" ".join(spans)}</p>
<h2>Token by token: each gate's mean over units (|x|: mean magnitude)</h2>
<table><tr>{head_rows}</tr>
{chr(10).join(rows)}
</table>
{image}
</body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path


def write_files(expl: Explanation, out_dir: str | Path, stem: str = "explain") -> tuple[Path, Path]:
    """Writes ``<stem>.png`` and ``<stem>.html`` (with the PNG embedded) into ``out_dir``."""
    out_dir = Path(out_dir)
    png = write_png(expl, out_dir / f"{stem}.png")
    page = write_html(expl, out_dir / f"{stem}.html", png)
    return png, page
