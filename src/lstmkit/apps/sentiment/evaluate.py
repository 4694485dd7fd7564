"""Evaluation of a saved sentiment model on the fixed splits and the Amazon set.

Per set: accuracy, precision / recall / F1 of the positive class, and the confusion counts.
The results recorded at training time (including the baseline's) are shown beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table

from lstmkit.apps.sentiment.data import Split, load_split
from lstmkit.apps.sentiment.model import SentimentClassifier

SETS = ("test", "validation", "train", "amazon")
SET_TITLES = {
    "train": "movie train",
    "validation": "movie validation",
    "test": "movie test",
    "amazon": "Amazon (out of domain)",
}


@dataclass(frozen=True)
class Scores:
    """Binary classification scores (positive class = 1)."""

    n: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    tn: int
    fn: int


def scores(labels: np.ndarray, probs: np.ndarray) -> Scores:
    """Scores of predictions ``probs >= 0.5`` against 0/1 ``labels``."""
    pred = probs >= 0.5
    truth = labels.astype(bool)
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    tn = int((~pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    n = len(labels)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(n, (tp + tn) / n if n else 0.0, precision, recall, f1, tp, fp, tn, fn)


def evaluate(
    classifier: SentimentClassifier,
    sets: tuple[str, ...] = ("test", "amazon"),
    data_dir: str | None = None,
) -> dict[str, Scores]:
    """Scores of ``classifier`` on each named set (see :data:`SETS`)."""
    out: dict[str, Scores] = {}
    for name in sets:
        if name not in SETS:
            raise ValueError(f"evaluate: unknown set {name!r}; choose among {', '.join(SETS)}")
        split: Split = load_split(name, data_dir)
        out[name] = scores(split.labels, classifier.predict_proba(split.texts))
    return out


def report(classifier: SentimentClassifier, results: dict[str, Scores], console: Console) -> None:
    """Prints the scores, and the accuracies recorded when the model was trained."""
    cfg = classifier.config
    table = Table(title=f"Sentiment model '{cfg.arch}' (seed {cfg.seed}, maxlen {cfg.maxlen})")
    for column in ("set", "n", "accuracy", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "set" else "right")
    for name, s in results.items():
        table.add_row(
            SET_TITLES[name],
            f"{s.n:,}",
            f"[bold]{s.accuracy:.2%}[/bold]",
            f"{s.precision:.3f}",
            f"{s.recall:.3f}",
            f"{s.f1:.3f}",
        )
    console.print(table)
    for name, s in results.items():
        console.print(
            f"{SET_TITLES[name]}: {s.tp} true positive, {s.fp} false positive, "
            f"{s.tn} true negative, {s.fn} false negative"
        )
    base = (classifier.results or {}).get("baseline")
    if base:
        console.print(
            f"Recorded at training time: {base['name']} (C={base['C']:g}) reached "
            f"{base['test_accuracy']:.2%} on movie test and "
            f"{base['amazon_accuracy']:.2%} on Amazon."
        )
