"""``lstmkit textgen train | evaluate | generate``.

``train``'s flags are made from :class:`~.config.TextgenConfig`'s fields (one flag per field,
its help text from the field), so the CLI and the config cannot drift apart. ``--level word``
starts from the word preset; a JSON file given with ``--config`` sets fields too (flags given on
the command line win); unknown keys are rejected. Errors the user can fix (missing model file,
bad values, a prompt with unknown characters) end the command with a one-line message and exit
status 1, not a traceback.

    lstmkit textgen train                                   # the default char model (~1 h)
    lstmkit textgen train --level word
    lstmkit textgen evaluate --model runs/textgen/char.lstmkit --split test
    lstmkit textgen generate --prompt "ROMEO:" --length 500 --temperature 0.8
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lstmkit.apps.common import config_flags, given_flags, user_errors
from lstmkit.apps.textgen.config import DEFAULT_MODEL_PATHS, TextgenConfig

app = typer.Typer(
    help="Character- and word-level LSTM language models on Shakespeare, with fast sampling.",
    no_args_is_help=True,
    add_completion=False,
)

ModelOption = Annotated[
    Path,
    typer.Option("--model", "-m", help="Model file written by `lstmkit textgen train`."),
]
MAX_LENGTH = 1_000_000
"""The most tokens one ``generate`` produces (minutes at the measured speed): a bound, so that
a typo such as ``--length 1000000000000`` does not run for days."""

ThreadsOption = Annotated[
    int,
    typer.Option(
        "--threads",
        help="CPU threads for torch (0 = torch's default). 2 speeds generation up on an idle "
        "machine; on a busy one set OMP_WAIT_POLICY=PASSIVE as well (see docs/textgen.md).",
    ),
]


def _set_threads(threads: int) -> None:
    from lstmkit.apps.textgen.train import set_threads

    set_threads(threads)


@app.command()
@config_flags(TextgenConfig)
@user_errors
def train(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help='JSON file of config fields (e.g. {"units": 256}); flags win.'
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume", help="Go on from this checkpoint (weights, optimiser state, step)."
        ),
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="Your UTF-8 text instead of the plays: a file, a folder of .txt files or - "
            "(stdin); repeat for several.",
        ),
    ] = None,
    valid: Annotated[
        list[str] | None,
        typer.Option(
            "--valid",
            help="Validation text (file/folder; repeatable). Default: the "
            "last --valid-fraction of --data.",
        ),
    ] = None,
    test: Annotated[
        list[str] | None,
        typer.Option("--test", help="Test text (file/folder; repeatable). Default: none."),
    ] = None,
    valid_fraction: Annotated[
        float,
        typer.Option(
            "--valid-fraction",
            help="Share of --data held out for validation (its end, cut at a line) when no "
            "--valid is given.",
        ),
    ] = 0.1,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="-v: a line every 50 steps too.")
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the final results line.")
    ] = False,
    **flags: Any,
) -> None:
    """Train a language model on the training plays (or your --data); checkpoint; score
    validation and test."""
    from lstmkit.apps.textgen.data import user_texts
    from lstmkit.apps.textgen.train import result_line
    from lstmkit.apps.textgen.train import train as run_training

    given = given_flags(ctx, flags)
    cfg = TextgenConfig.from_json(config) if config is not None else None
    if cfg is None:
        cfg = TextgenConfig.preset(given.get("level", "char"))
    cfg = cfg.replace(**given)
    texts = info = None
    if data:
        texts, info = user_texts(data, valid or [], test or [], valid_fraction)
    elif valid or test:
        raise ValueError("--valid and --test go with --data (the plays have their own split)")
    result = run_training(
        cfg, verbose=0 if quiet else 1 + verbose, resume=resume, texts=texts, data=info
    )
    if quiet:
        typer.echo(f"{result_line(result)}; {result.train_s / 60:.1f} min; saved {result.path}")


DEFAULT_MODEL = Path(DEFAULT_MODEL_PATHS["char"])


@app.command()
@user_errors
def evaluate(
    model: ModelOption = DEFAULT_MODEL,
    split: Annotated[
        list[str] | None,
        typer.Option(
            "--split",
            help="Split to score; repeat for several. One of: validation, test, train. "
            "Default: validation and test.",
        ),
    ] = None,
    tokens: Annotated[
        int, typer.Option("--tokens", help="Score only the first N tokens of each split (0 = all).")
    ] = 0,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="Score your own UTF-8 text (file, folder of .txt, or -) instead of the plays' "
            "splits; repeat for several (scored as one text).",
        ),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="layers = the Keras-style model in batches; fast = the generation path, one "
            "token at a time (to measure the cost of --weights).",
        ),
    ] = "layers",
    weights: Annotated[
        str, typer.Option("--weights", help="Fast path weights: fp32, bf16 or int8.")
    ] = "fp32",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    threads: ThreadsOption = 1,
) -> None:
    """Cross-entropy (nats and bits per token) and perplexity of a saved model."""
    import math

    from lstmkit.apps.textgen.data import load_text
    from lstmkit.apps.textgen.fast import FastLSTM
    from lstmkit.apps.textgen.model import LanguageModel

    _set_threads(threads)
    if backend not in ("layers", "fast"):
        raise ValueError(f"--backend must be layers or fast, got {backend!r}")
    lm = LanguageModel.load(model)
    fast = FastLSTM(lm.model, weights=weights) if backend == "fast" else None
    if fast is None and weights != "fp32":
        raise ValueError("--weights other than fp32 need --backend fast")
    out: dict[str, Any] = {"model": str(model), "level": lm.config.level, "backend": backend}
    if backend == "fast":
        out["weights"] = weights
    if data and split:
        raise ValueError("--split scores the plays; with --data your text is scored instead")
    names = ["data"] if data else split or ["validation", "test"]
    for name in names:
        if data:
            from lstmkit.data.user_text import join_texts, read_texts

            text = join_texts(read_texts(data))
        elif name not in ("train", "validation", "test"):
            raise ValueError(f"--split must be train, validation or test, got {name!r}")
        else:
            text = load_text(name, lm.config.stage_directions)
        ids = lm.vocab.encode_corpus(text)
        if len(ids) < 2:
            raise ValueError(f"--data: {len(ids)} token(s): too few to score (at least 2)")
        if tokens:
            ids = ids[: tokens + 1]
        start = time.perf_counter()
        nats = lm.evaluate(ids)["nats"] if fast is None else fast.score(ids.tolist())
        out[name] = {
            "nats": nats,
            "bits": nats / math.log(2),
            "perplexity": math.exp(nats),
            "tokens": len(ids) - 1,
            "seconds": time.perf_counter() - start,
        }
    if as_json:
        typer.echo(json.dumps(out))
        return
    unit = lm.config.level
    for name in names:
        r = out[name]
        typer.echo(
            f"{name}: {r['nats']:.4f} nats/{unit}, {r['bits']:.4f} bits/{unit}, perplexity "
            f"{r['perplexity']:.2f} ({r['tokens']:,} tokens)"
        )


@app.command()
@user_errors
def generate(
    model: ModelOption = DEFAULT_MODEL,
    prompt: Annotated[
        str,
        typer.Option(
            "--prompt", "-p", help="Text to prime the model with (empty: start a new speech)."
        ),
    ] = "",
    length: Annotated[
        int, typer.Option("--length", "-n", help="Tokens to generate (characters or words).")
    ] = 500,
    temperature: Annotated[
        float,
        typer.Option("--temperature", "-t", help="Divide the logits by this (0 = greedy)."),
    ] = 1.0,
    top_k: Annotated[
        int, typer.Option("--top-k", help="Sample only among the k most likely tokens (0 = all).")
    ] = 0,
    top_p: Annotated[
        float,
        typer.Option(
            "--top-p",
            help="Sample from the smallest set of tokens with probability >= p (1 = all).",
        ),
    ] = 1.0,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed: the same seed gives the same text.")
    ] = None,
    unknown: Annotated[
        str | None,
        typer.Option(
            "--unknown",
            help="Prompt tokens the model does not know: error (char default), skip, or unk "
            "(map to [UNK]; word default).",
        ),
    ] = None,
    allow_unknown: Annotated[
        bool, typer.Option("--allow-unknown", help="Let the model generate [UNK].")
    ] = False,
    backend: Annotated[
        str,
        typer.Option(
            "--backend", help="fast = the fused generation loop; layers = the Keras-style model."
        ),
    ] = "fast",
    weights: Annotated[
        str, typer.Option("--weights", help="Fast path weights: fp32, bf16 or int8.")
    ] = "fp32",
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Print each token as it is generated.")
    ] = True,
    show_prompt: Annotated[
        bool, typer.Option("--show-prompt/--no-show-prompt", help="Print the prompt first.")
    ] = True,
    speed: Annotated[
        bool, typer.Option("--speed", help="Print tokens per second to stderr at the end.")
    ] = False,
    threads: ThreadsOption = 1,
) -> None:
    """Generate text from a saved model (streamed as it is sampled)."""
    from lstmkit.apps.textgen.config import SamplingConfig
    from lstmkit.apps.textgen.generate import TextGenerator
    from lstmkit.apps.textgen.model import LanguageModel

    _set_threads(threads)
    sampling = SamplingConfig(
        temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, allow_unknown=allow_unknown
    )
    if not 0 <= length <= MAX_LENGTH:
        raise ValueError(
            f"--length must be between 0 and {MAX_LENGTH:,} tokens, got {length} (generate "
            f"longer texts in several runs, --prompt carrying on from the last)"
        )
    lm = LanguageModel.load(model)
    generator = TextGenerator(lm, backend=backend, weights=weights)
    generator.encode_prompt(prompt, unknown)  # fail on unknown characters before printing
    out = sys.stdout
    if show_prompt and prompt:
        out.write(prompt)
    start = time.perf_counter()
    if stream:
        for piece in generator.stream(prompt, length, sampling, unknown):
            out.write(piece)
            out.flush()
    else:
        out.write(generator.generate(prompt, length, sampling, unknown))
    elapsed = time.perf_counter() - start
    out.write("\n")
    out.flush()
    if speed:
        Console(stderr=True, highlight=False).print(
            f"{length} {lm.config.level}s in {elapsed:.2f} s: {length / max(elapsed, 1e-9):,.0f}/s "
            f"({backend}, {weights}, {threads or 'default'} thread(s))"
        )
