"""``lstmkit speech synthesize | train | evaluate | transcribe``.

``synthesize`` and ``train`` take one flag per :class:`~.config.SpeechConfig` field (its help text
from the field), so the CLI and the config cannot drift apart; ``--config FILE.json`` sets fields
too (flags given on the command line win) and unknown keys are rejected. Errors a user can fix
(missing data or model file, a file that is not audio, bad values) end the command with a
one-line message and exit status 1, not a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lstmkit.apps.common import config_flags, given_flags, user_errors
from lstmkit.apps.parallel import NPROC_HELP, is_chief, relaunch, will_launch
from lstmkit.apps.speech.config import DEFAULT_MODEL_PATH, SpeechConfig, field_help

app = typer.Typer(
    help="Connected-digit speech recognition: conv front end + bidirectional LSTMs + CTC.",
    no_args_is_help=True,
    add_completion=False,
)

DATA_FIELDS = (
    "data_dir",
    "n_train",
    "n_val",
    "n_test",
    "n_real",
    "festival_share",
    "pico_share",
    "data_seed",
    "workers",
)
ModelOption = Annotated[
    Path, typer.Option("--model", "-m", help="Model file written by `lstmkit speech train`.")
]
DECODER_HELP = "Decoding: greedy (best path) or beam (CTC prefix beam search)."
# The speech commands also report a RuntimeError as a one-line message.
_user_errors = user_errors(also=(RuntimeError,))


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help='JSON file of config fields (e.g. {"epochs": 20}); flags given here win.',
    ),
]


def _make_config(ctx: typer.Context, config: Path | None, flags: dict[str, Any]) -> SpeechConfig:
    cfg = SpeechConfig.from_json(config) if config is not None else SpeechConfig()
    return cfg.replace(**given_flags(ctx, flags))


@app.command()
@config_flags(SpeechConfig, field_help, DATA_FIELDS)
@_user_errors
def synthesize(
    ctx: typer.Context,
    config: ConfigOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    **flags: Any,
) -> None:
    """Make the digits corpus (espeak-ng, flite, sox; asterisk's real voice), or reuse it."""
    from lstmkit.apps.speech.train import synthesize as make_corpus
    from lstmkit.datasets.digits import SPLITS, load_digits

    cfg = _make_config(ctx, config, flags)
    manifest = make_corpus(cfg, progress=not quiet)
    counts = {s: len(load_digits(manifest, s)) for s in SPLITS}
    typer.echo(f"{manifest}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))


@app.command()
@config_flags(SpeechConfig, field_help)
@_user_errors
def train(
    ctx: typer.Context,
    config: ConfigOption = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            help="0 = results only, 1 = progress bars, 2 = log lines (per epoch and per 50 steps).",
        ),
    ] = 1,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help=NPROC_HELP)] = 1,
    **flags: Any,
) -> None:
    """Synthesise (if needed), featurise, train, score test and real voice, save the model."""
    from lstmkit.apps.speech.train import prepare_data
    from lstmkit.apps.speech.train import train as run_training

    if verbose not in (0, 1, 2):
        raise ValueError(f"--verbose must be 0, 1 or 2, got {verbose}")
    cfg = _make_config(ctx, config, flags)
    if will_launch(nproc):
        prepare_data(cfg, progress=verbose == 1)  # once, here: the processes only read it
    status = relaunch(nproc)
    if status is not None:
        raise typer.Exit(status)
    result = run_training(cfg, verbose=verbose)
    if verbose == 0 and is_chief():
        parts = [
            f"{split} WER greedy {100 * s['greedy']['wer']:.2f}% beam {100 * s['beam']['wer']:.2f}%"
            for split, s in result.scores.items()
        ]
        typer.echo("  ".join(parts) + (f"  saved {result.path}" if result.path else ""))


@app.command()
@_user_errors
def evaluate(
    model: ModelOption = Path(DEFAULT_MODEL_PATH),
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Split to score; repeat for several. One of: test, real, val, train. "
            "Default: test and real.",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Corpus folder (manifest.jsonl); default: the one the model was trained on.",
        ),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Folder of cached features; default: the one the model was trained with.",
        ),
    ] = None,
    beam_size: Annotated[int, typer.Option(help="Prefix beam search width.")] = 8,
    errors: Annotated[
        int, typer.Option(help="Show this many wrongly transcribed utterances per split.")
    ] = 5,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the scores as one JSON object.")
    ] = False,
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest",
            help="Score your recordings instead: a CSV/TSV/JSONL manifest or a folder of "
            "x.wav + x.txt.",
        ),
    ] = None,
    audio_column: Annotated[
        str | None, typer.Option(help="Manifest column of the audio paths (default: training's).")
    ] = None,
    text_column: Annotated[
        str | None, typer.Option(help="Manifest column of the transcripts (default: training's).")
    ] = None,
) -> None:
    """Score a saved model: WER, CER and SER with greedy and beam decoding (on the digits'
    splits, or on your --manifest)."""
    from lstmkit.apps.speech.evaluate import Recognizer, by_group_line, evaluate_manifest

    if beam_size < 1:
        raise ValueError(f"--beam-size must be >= 1, got {beam_size}")
    rec = Recognizer.load(model)
    trained = rec.config
    root = data_dir or Path(trained.get("data_dir", SpeechConfig().data_dir))
    cache = cache_dir or trained.get("cache_dir", SpeechConfig().cache_dir)
    results = {}
    if manifest is not None and sets:
        raise ValueError("--set scores the digits' splits; with --manifest yours is scored")
    if manifest is not None:
        results[str(manifest)] = evaluate_manifest(
            rec, manifest, cache, beam_size, audio_column, text_column
        )
    for split in [] if manifest is not None else sets or ["test", "real"]:
        if split not in ("test", "real", "val", "train"):
            raise ValueError(f"--set must be one of test, real, val, train; got {split!r}")
        results[split] = rec.evaluate_split(root, split, cache, beam_size)
    if as_json:
        keys = ("n", "greedy", "beam", "groups")
        typer.echo(json.dumps({s: {k: r[k] for k in keys if k in r} for s, r in results.items()}))
        return
    console = Console(highlight=False)
    for split, r in results.items():
        g, b = r["greedy"], r["beam"]
        console.print(
            f"{split} ({r['n']} utterances): greedy WER {100 * g['wer']:.2f}% "
            f"CER {100 * g['cer']:.2f}% SER {100 * g['ser']:.2f}%  |  beam {beam_size} "
            f"WER {100 * b['wer']:.2f}% CER {100 * b['cer']:.2f}% SER {100 * b['ser']:.2f}%"
        )
        if "groups" in r and (line := by_group_line(r["groups"]["beam"])):
            console.print(line)
        for uid, ref, hyp in r["errors"]["beam"][:errors]:
            console.print(f"  {uid}: ref {ref!r}  hyp {hyp!r}")


@app.command()
@_user_errors
def transcribe(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Audio files (WAV, FLAC, … any sample rate, mono or stereo).", show_default=False
        ),
    ],
    model: ModelOption = Path(DEFAULT_MODEL_PATH),
    decoder: Annotated[str, typer.Option(help=DECODER_HELP)] = "beam",
    beam_size: Annotated[int, typer.Option(help="Prefix beam search width.")] = 8,
    max_seconds: Annotated[
        float,
        typer.Option(
            help="Refuse longer files before decoding them (0: no limit; the server's limit "
            "is 120 s). Decoding time and memory grow with the length."
        ),
    ] = 120.0,
) -> None:
    """Print each audio file's transcript (one line each; with several files, ``FILE: text``)."""
    import math

    from lstmkit.apps.speech.evaluate import DECODERS, Recognizer

    if not (math.isfinite(max_seconds) and max_seconds >= 0):
        raise ValueError(f"--max-seconds must be a number >= 0 (0: no limit), got {max_seconds}")

    if decoder not in DECODERS:
        raise ValueError(f"--decoder must be one of {', '.join(DECODERS)}, got {decoder!r}")
    if beam_size < 1:
        raise ValueError(f"--beam-size must be >= 1, got {beam_size}")
    rec = Recognizer.load(model)
    for path in files:
        text = rec.transcribe_file(path, decoder, beam_size, max_seconds or None)
        typer.echo(f"{path}: {text}" if len(files) > 1 else text)
