"""Evaluation: sacreBLEU and chrF on a split, and attention heatmaps (PNG or HTML).

Scores are computed by sacreBLEU on detokenised text, with its default 13a tokenisation, and
reported with sacreBLEU's signature. The headline figure scores every pair of the split against
its own reference (``nrefs:1``). The dictionary sometimes gives several English translations of
one German sentence (all in the same split); the multi-reference figure translates each distinct
German sentence once and scores it against all of them (``nrefs:var``).
"""

from __future__ import annotations

import html
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lstmkit.apps.translate.data import load_pairs
from lstmkit.apps.translate.decode import Translation, Translator


@dataclass
class Scores:
    """Corpus scores of one system output."""

    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    bleu_detail: str = ""
    multi_bleu: float | None = None
    multi_bleu_signature: str = ""
    sentences: int = 0
    seconds: float = 0.0
    hypotheses: list[str] = field(default_factory=list, repr=False)

    def lines(self) -> list[str]:
        out = [
            f"BLEU = {self.bleu:.2f}  ({self.bleu_detail})",
            f"  signature: {self.bleu_signature}",
            f"chrF2 = {self.chrf:.2f}",
            f"  signature: {self.chrf_signature}",
        ]
        if self.multi_bleu is not None:
            out += [
                f"BLEU (all references of each distinct source) = {self.multi_bleu:.2f}",
                f"  signature: {self.multi_bleu_signature}",
            ]
        out.append(f"{self.sentences} sentences in {self.seconds:.1f} s")
        return out


def score(hypotheses: Sequence[str], references: Sequence[str]) -> Scores:
    """sacreBLEU BLEU and chrF of ``hypotheses`` against one reference each."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(list(hypotheses), [list(references)])
    c = chrf.corpus_score(list(hypotheses), [list(references)])
    detail = str(b).split("(", 1)[-1].rstrip(")") if "(" in str(b) else ""
    return Scores(
        b.score,
        c.score,
        str(bleu.get_signature()),
        str(chrf.get_signature()),
        bleu_detail=f"{b.precisions[0]:.1f}/{b.precisions[1]:.1f}/{b.precisions[2]:.1f}/"
        f"{b.precisions[3]:.1f}, {detail}",
        sentences=len(hypotheses),
        hypotheses=list(hypotheses),
    )


def multi_reference_bleu(sources: Sequence[str], hyps: Sequence[str], refs: Sequence[str]) -> Any:
    """BLEU over distinct sources, each against all of its references."""
    from sacrebleu.metrics import BLEU

    grouped: OrderedDict[str, tuple[str, list[str]]] = OrderedDict()
    for src, hyp, ref in zip(sources, hyps, refs):
        grouped.setdefault(src, (hyp, []))[1].append(ref)
    width = max(len(r) for _, r in grouped.values())
    streams = [[r[i] if i < len(r) else None for _, r in grouped.values()] for i in range(width)]
    bleu = BLEU()
    result = bleu.corpus_score([h for h, _ in grouped.values()], streams)
    return result.score, str(bleu.get_signature())


def evaluate_split(
    translator: Translator,
    split: str = "test",
    beam_size: int | None = None,
    limit: int | None = None,
    fast: bool = True,
    pairs: list[tuple[str, str]] | None = None,
) -> Scores:
    """Translate ``split`` (its first ``limit`` pairs), or ``pairs`` when given, and score it."""
    pairs = load_pairs(split, translator.cfg) if pairs is None else list(pairs)
    if limit:
        pairs = pairs[:limit]
    sources = [de for de, _ in pairs]
    distinct = list(OrderedDict.fromkeys(sources))
    start = time.perf_counter()
    out = translator.translate(distinct, beam_size=beam_size, fast=fast)
    seconds = time.perf_counter() - start
    by_source = {t.source: t.text for t in out}
    hyps = [by_source[s] for s in sources]
    refs = [en for _, en in pairs]
    result = score(hyps, refs)
    result.multi_bleu, result.multi_bleu_signature = multi_reference_bleu(sources, hyps, refs)
    result.seconds = seconds
    return result


# -- attention heatmaps ---------------------------------------------------------------------------


def save_heatmap(translation: Translation, path: str | Path) -> Path:
    """Write the attention of ``translation`` as a PNG (``.png``) or an HTML table (``.html``):
    rows are output pieces, columns source pieces, darker = more attention."""
    path = Path(path)
    if translation.attention is None:
        raise ValueError("this translation has no attention (empty input or attention=none)")
    suffix = path.suffix.lower()
    if suffix == ".png":
        _heatmap_png(translation, path)
    elif suffix in (".html", ".htm"):
        path.write_text(heatmap_html(translation), encoding="utf-8")
    else:
        raise ValueError(f"heatmap: give a .png or .html file name, got {path.name!r}")
    return path


def _heatmap_png(t: Translation, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = t.attention.detach().cpu().numpy()
    rows, cols = weights.shape
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * cols, 1.0 + 0.4 * rows))
    ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(cols), t.source_pieces, rotation=60, ha="right", fontsize=9)
    ax.set_yticks(range(rows), t.target_pieces, fontsize=9)
    ax.set_xlabel("source (German pieces)")
    ax.set_ylabel("output (English pieces)")
    ax.set_title(t.text, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def heatmap_html(t: Translation) -> str:
    """A self-contained HTML page with the attention as a shaded table."""
    weights = t.attention.detach().cpu().tolist()
    head = "".join(f"<th class=s>{html.escape(p)}</th>" for p in t.source_pieces)
    body = []
    for piece, row in zip(t.target_pieces, weights):
        cells = "".join(
            f'<td title="{w:.3f}" style="background:rgba(20,60,160,{w:.3f})"></td>' for w in row
        )
        body.append(f"<tr><th>{html.escape(piece)}</th>{cells}</tr>")
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>attention</title><style>"
        "body{font-family:sans-serif}td{width:1.6em;height:1.6em;border:1px solid #eee}"
        "th.s{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:normal}"
        "th{font-weight:normal;text-align:right;padding:0 .3em}</style></head><body>"
        f"<p><b>{html.escape(t.source)}</b><br>{html.escape(t.text)}</p>"
        f"<table><tr><th></th>{head}</tr>{''.join(body)}</table></body></html>"
    )
