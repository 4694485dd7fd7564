"""Training: the LSTM classifier and, in the same run, the TF-IDF + logistic-regression baseline.

``train(config)`` does, in order:

1. seed everything (``config.seed``) and load the fixed splits;
2. learn the tokenizer's vocabulary on the training split only (words seen ``min_count`` times);
3. build the network of ``config.arch`` and ``fit`` it with a progress bar, early stopping on
   ``config.monitor`` over the validation split and the best epoch's weights restored;
4. measure accuracy on the movie-review test split and on the Amazon sentences (out of domain);
5. fit the baseline (word 1-2-gram TF-IDF, logistic regression whose ``C`` is picked on the
   validation split) and measure it on the same two sets;
6. save model + tokenizer + config + these results as one lstmkit model file.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from lstmkit.apps.parallel import is_chief
from lstmkit.apps.sentiment.config import SentimentConfig
from lstmkit.apps.sentiment.data import (
    SentimentData,
    Split,
    Tokenizer,
    balanced_subset,
    load_data,
    load_user_data,
)
from lstmkit.apps.sentiment.evaluate import class_report, print_class_report
from lstmkit.apps.sentiment.model import SentimentClassifier, build_model
from lstmkit.callbacks import EarlyStopping
from lstmkit.utils import set_random_seed, set_threads

BASELINE_NAME = "TF-IDF + logistic regression"
BASELINE_C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass
class BaselineResult:
    """Accuracies of the baseline and the ``C`` chosen on the validation split."""

    c: float
    validation_accuracy: float
    test_accuracy: float
    amazon_accuracy: float | None  # None: the user's data (no out-of-domain set)
    seconds: float


@dataclass
class TrainResult:
    """What one training run produced and measured."""

    classifier: SentimentClassifier
    history: dict[str, list[float]]
    best_epoch: int  # 1-based, the epoch whose weights were kept
    epochs_run: int
    validation_accuracy: float
    test_accuracy: float
    amazon_accuracy: float | None  # None: the user's data (no out-of-domain set)
    train_seconds: float
    baseline: BaselineResult | None
    path: str | None


def accuracy(classifier: SentimentClassifier, split: Split) -> float:
    """Share of ``split`` whose label is predicted (threshold 0.5 for two classes, else the
    most probable class)."""
    return float((classifier.predict_class(split.texts) == split.labels).mean())


def train_baseline(data: SentimentData) -> BaselineResult:
    """Word 1-2-gram TF-IDF (sublinear tf) + logistic regression; ``C`` picked on validation."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    tfidf = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
    x_train = tfidf.fit_transform(data.train.texts)
    x_val = tfidf.transform(data.validation.texts)
    best: tuple[float, float, Any] | None = None
    for c in BASELINE_C_GRID:
        clf = LogisticRegression(C=c, max_iter=2000)
        clf.fit(x_train, data.train.labels)
        val_acc = float((clf.predict(x_val) == data.validation.labels).mean())
        if best is None or val_acc > best[0]:
            best = (val_acc, c, clf)
    assert best is not None
    val_acc, c, clf = best

    def acc(split: Split) -> float:
        return float((clf.predict(tfidf.transform(split.texts)) == split.labels).mean())

    return BaselineResult(
        c=c,
        validation_accuracy=val_acc,
        test_accuracy=acc(data.test),
        amazon_accuracy=None if data.amazon is None else acc(data.amazon),
        seconds=time.perf_counter() - start,
    )


def train(
    config: SentimentConfig, *, verbose: int = 1, console: Console | None = None
) -> TrainResult:
    """Trains, measures and saves (see the module docstring); prints progress and results.

    Under torchrun (``--nproc``) every process trains its share of each batch; only the chief
    (rank 0) prints, fits the baseline and saves the model file."""
    console = console or Console(highlight=False)
    chief = is_chief()
    verbose = verbose if chief else 0
    set_threads(config.threads, "SentimentConfig: threads")
    set_random_seed(config.seed)
    if config.data:
        data = load_user_data(config)
        if config.train_limit:
            data = dataclasses.replace(data, train=balanced_subset(data.train, config.train_limit))
    else:
        data = load_data(config.data_dir, config.train_limit)
    tokenizer = Tokenizer.adapt(
        data.train.texts, config.max_tokens, config.maxlen, min_count=config.min_count
    )
    if verbose:
        sizes = f"{len(data.train):,} training / {len(data.validation):,} validation / "
        if data.amazon is None:
            console.print(
                f"[bold]Text classification[/bold] on {config.data}: {sizes}{len(data.test):,} "
                f"test examples, {len(data.classes)} classes ({', '.join(data.classes)}); "
                f"vocabulary {tokenizer.vocabulary_size():,} tokens, maxlen {config.maxlen}"
            )
        else:
            console.print(
                f"[bold]Sentiment[/bold]: {sizes}{len(data.test):,} test movie-review snippets, "
                f"{len(data.amazon):,} Amazon sentences (out of domain); "
                f"vocabulary {tokenizer.vocabulary_size():,} tokens, maxlen {config.maxlen}"
            )
    binary = len(data.classes) == 2
    model = build_model(config, len(data.classes))
    if verbose:
        console.print(
            f"Model [bold]{config.arch}[/bold]: {model.count_params():,} parameters; training "
            f"up to {config.epochs} epochs (early stopping on {config.monitor}, "
            f"patience {config.patience})"
        )
    early = EarlyStopping(
        monitor=config.monitor, patience=config.patience, restore_best_weights=True
    )
    start = time.perf_counter()
    target_dtype = np.float32 if binary else np.int64
    history = model.fit(
        tokenizer.encode(data.train.texts),
        data.train.labels.astype(target_dtype),
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=(
            tokenizer.encode(data.validation.texts),
            data.validation.labels.astype(target_dtype),
        ),
        callbacks=[early],
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - start
    epochs_run = len(history.history.get("loss", []))
    classifier = SentimentClassifier(model, tokenizer, config, labels=data.classes)
    val_acc = accuracy(classifier, data.validation)
    test_report = class_report(
        data.test.labels, classifier.predict_class(data.test.texts), data.classes
    )
    test_acc = test_report.accuracy  # the share of test labels predicted, as accuracy() gives
    amazon_acc = None if data.amazon is None else accuracy(classifier, data.amazon)

    baseline = None
    if config.baseline and chief:
        if verbose:
            console.print(f"Fitting the baseline ({BASELINE_NAME}) …")
        baseline = train_baseline(data)

    classifier.results = {
        "best_epoch": early.best_epoch + 1,
        "epochs_run": epochs_run,
        "train_seconds": round(train_seconds, 1),
        "validation_accuracy": val_acc,
        "test_accuracy": test_acc,
        "amazon_accuracy": amazon_acc,
        "train_size": len(data.train),
        "classes": list(data.classes),
        "data": data.source,
        "test_report": test_report.to_dict(),
        "baseline": None
        if baseline is None
        else {
            "name": BASELINE_NAME,
            "C": baseline.c,
            "validation_accuracy": baseline.validation_accuracy,
            "test_accuracy": baseline.test_accuracy,
            "amazon_accuracy": baseline.amazon_accuracy,
        },
    }
    path = str(classifier.save(config.output)) if config.output and chief else None
    result = TrainResult(
        classifier=classifier,
        history={k: [float(v) for v in vs] for k, vs in history.history.items()},
        best_epoch=early.best_epoch + 1,
        epochs_run=epochs_run,
        validation_accuracy=val_acc,
        test_accuracy=test_acc,
        amazon_accuracy=amazon_acc,
        train_seconds=train_seconds,
        baseline=baseline,
        path=path,
    )
    if verbose:
        print_results(result, console)
        if data.amazon is None:
            print_class_report(test_report, console, "Test split")
    return result


def results_table(result: TrainResult) -> Table:
    """The LSTM beside the baseline: validation, test and Amazon accuracy."""
    cfg = result.classifier.config
    user = result.amazon_accuracy is None
    title = (
        f"Accuracy on {cfg.data}"
        if user
        else "Accuracy (movie-review splits; Amazon = out of domain)"
    )
    table = Table(title=title)
    table.add_column("model")
    for column in ("validation", "test") if user else ("validation", "test", "Amazon"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{cfg.arch} (seed {cfg.seed}, best epoch {result.best_epoch}/{result.epochs_run})",
        f"{result.validation_accuracy:.2%}",
        f"[bold]{result.test_accuracy:.2%}[/bold]",
        *([] if user else [f"{result.amazon_accuracy:.2%}"]),
    )
    if result.baseline is not None:
        b = result.baseline
        table.add_row(
            f"{BASELINE_NAME} (C={b.c:g})",
            f"{b.validation_accuracy:.2%}",
            f"{b.test_accuracy:.2%}",
            *([] if user else [f"{b.amazon_accuracy:.2%}"]),
        )
    return table


def print_results(result: TrainResult, console: Console) -> None:
    console.print(results_table(result))
    console.print(f"Training took {result.train_seconds:.0f} s.")
    if result.path:
        console.print(f"Saved model + tokenizer to [bold]{result.path}[/bold]")
