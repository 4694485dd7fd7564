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
    if base and base.get("amazon_accuracy") is not None:
        console.print(
            f"Recorded at training time: {base['name']} (C={base['C']:g}) reached "
            f"{base['test_accuracy']:.2%} on movie test and "
            f"{base['amazon_accuracy']:.2%} on Amazon."
        )


# -- the user's data: any number of classes ---------------------------------------------------


@dataclass(frozen=True)
class ClassReport:
    """Per-class scores of one labelled set (``confusion[i][j]``: examples of class ``i``
    predicted as ``j``)."""

    classes: tuple[str, ...]
    n: int
    accuracy: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    confusion: list[list[int]]

    @property
    def macro_f1(self) -> float:
        return float(np.mean(self.f1))

    def to_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "classes": {
                c: {"precision": p, "recall": r, "f1": f, "support": s}
                for c, p, r, f, s in zip(
                    self.classes, self.precision, self.recall, self.f1, self.support
                )
            },
            "confusion": self.confusion,
        }


def class_report(
    labels: np.ndarray, predicted: np.ndarray, classes: tuple[str, ...]
) -> ClassReport:
    """Precision, recall, F1 and support of every class, and the confusion matrix (sklearn)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    ks = list(range(len(classes)))
    p, r, f, support = precision_recall_fscore_support(
        labels, predicted, labels=ks, zero_division=0
    )
    confusion = confusion_matrix(labels, predicted, labels=ks)
    n = len(labels)
    accuracy = float((labels == predicted).mean()) if n else 0.0
    return ClassReport(
        tuple(classes), n, accuracy, [float(x) for x in p], [float(x) for x in r],
        [float(x) for x in f], [int(x) for x in support], confusion.tolist(),
    )  # fmt: skip


def evaluate_data(
    classifier: SentimentClassifier,
    path: str,
    text_column: str | None = None,
    label_column: str | None = None,
) -> ClassReport:
    """Scores on a labelled file or folder of the user's (columns default to the training
    run's); a label the model does not know is an error naming the line."""
    from lstmkit.apps.sentiment.user_data import label_ids, read_labelled

    cfg = classifier.config
    data = read_labelled(path, text_column or cfg.text_column, label_column or cfg.label_column)
    truth = np.asarray(label_ids(data, classifier.labels), dtype=np.int64)
    return class_report(truth, classifier.predict_class(data.texts), classifier.labels)


def print_class_report(report: ClassReport, console: Console, title: str) -> None:
    """The per-class table and the confusion matrix."""
    table = Table(title=f"{title}: {report.n:,} examples, accuracy {report.accuracy:.2%}, "
                        f"macro F1 {report.macro_f1:.3f}")  # fmt: skip
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for c, p, r, f, s in zip(report.classes, report.precision, report.recall, report.f1,
                             report.support):  # fmt: skip
        table.add_row(c, f"{p:.3f}", f"{r:.3f}", f"{f:.3f}", f"{s:,}")
    console.print(table)
    matrix = Table(title="Confusion matrix (rows: true class, columns: predicted)")
    matrix.add_column("true \\ predicted")
    for c in report.classes:
        matrix.add_column(c, justify="right")
    for c, row in zip(report.classes, report.confusion):
        matrix.add_row(c, *(f"{v:,}" for v in row))
    console.print(matrix)
