"""``lstmkit translate``: train, evaluate and use the German→English model.

lstmkit translate train [--out runs/translate] [--set units=512 ...] [--config cfg.json]
lstmkit translate evaluate [--model runs/translate/model.lstmkit] [--beam 5] [--compare]
lstmkit translate text "Ich habe keine Zeit." [--heatmap attention.png]
echo "Wie spät ist es?" | lstmkit translate text
lstmkit translate config          # every setting, its default and what it does
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)

DEFAULT_OUT = Path("runs/translate")
DEFAULT_MODEL = DEFAULT_OUT / "model.lstmkit"
ModelFiles = Annotated[
    list[Path] | None,
    typer.Option(
        "--model",
        "-m",
        help=f"model file (default {DEFAULT_MODEL}); give it more than once to decode with an "
        "ensemble of models trained with the same vocabularies",
    ),
]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _load(models: list[Path] | None):  # -> Translator
    from lstmkit.apps.translate.decode import Translator
    from lstmkit.models.saving import ModelFileError

    models = models or [DEFAULT_MODEL]
    for model in models:
        if not model.exists():
            _fail(f"no model at {model}; train one with `lstmkit translate train`")
    try:
        return Translator.load(*models)
    except (ModelFileError, ValueError) as e:
        _fail(str(e))


def _decoding_overrides(
    translator, alpha: float | None, beta: float | None, beam: int | None = None
) -> None:
    """``--alpha``/``--beta``/``--beam`` into the translator's config, checked by it (a NaN
    or negative penalty, a beam below 1: one line and exit status 2)."""
    import dataclasses

    changes = {}
    for flag, name, value in (
        ("--alpha", "length_penalty", alpha),
        ("--beta", "coverage_penalty", beta),
        ("--beam", "beam_size", beam),
    ):
        if value is None:
            continue
        try:
            dataclasses.replace(translator.cfg, **{name: value})
        except ValueError as e:
            _fail(f"{flag}: {e}")
        changes[name] = value
    if changes:
        translator.cfg = dataclasses.replace(translator.cfg, **changes)


def _stdin_lines() -> list[str]:
    """stdin's lines as UTF-8 text; an undecodable byte fails naming its line and offset."""
    lines = []
    for number, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            lines.append(raw.decode("utf-8").rstrip("\r\n"))
        except UnicodeDecodeError as e:
            _fail(
                f"stdin line {number} is not UTF-8: byte {raw[e.start]:#04x} at offset {e.start} "
                f"of the line ({e.reason})"
            )
    return lines


def _argument_lines(sentences: list[str]) -> list[str]:
    """Command-line sentences; bytes that were not UTF-8 arrive as lone surrogates."""
    for number, sentence in enumerate(sentences, start=1):
        try:
            sentence.encode("utf-8")
        except UnicodeEncodeError as e:
            bad = ord(sentence[e.start]) - 0xDC00  # surrogateescape keeps the byte here
            shown = f"byte {bad:#04x}" if 0 <= bad < 256 else repr(sentence[e.start])
            _fail(f"sentence {number} is not UTF-8: {shown} at character {e.start}")
    return list(sentences)


@app.command()
def train(
    out: Annotated[
        Path, typer.Option(help="run directory (model, history, backups)")
    ] = DEFAULT_OUT,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="override a setting: --set key=value (see `lstmkit translate config`)"
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="a JSON file of settings (then --set)")
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="discard an earlier run in --out (its files only) and start over")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="epoch summaries only")] = False,
    data: Annotated[
        str | None,
        typer.Option(
            help="your pairs: a TSV (source<TAB>target) or a Moses prefix (PREFIX.de, PREFIX.en)"
        ),
    ] = None,
    source_file: Annotated[
        str | None, typer.Option(help="your source sentences, one per line")
    ] = None,
    target_file: Annotated[
        str | None, typer.Option(help="their translations, aligned line by line")
    ] = None,
    valid_data: Annotated[
        str | None, typer.Option(help="validation pairs (default: a hash split of the data)")
    ] = None,
    test_data: Annotated[
        str | None, typer.Option(help="test pairs (default: a hash split of the data)")
    ] = None,
    source_lang: Annotated[str | None, typer.Option(help="source language code (de)")] = None,
    target_lang: Annotated[str | None, typer.Option(help="target language code (en)")] = None,
    allow_other_files: Annotated[
        bool,
        typer.Option(
            help="train in an --out that holds files lstmkit did not write (left untouched)"
        ),
    ] = False,
) -> None:
    """Train a model (resumes an interrupted run in --out when run again)."""
    from lstmkit.apps.translate.config import TranslateConfig
    from lstmkit.apps.translate.train import describe
    from lstmkit.apps.translate.train import train as run_training

    try:
        cfg = TranslateConfig.from_json(config.read_text()) if config else TranslateConfig()
        cfg = TranslateConfig.from_overrides(set_ or [], base=cfg)
        given = {
            "data": data,
            "source_file": source_file,
            "target_file": target_file,
            "valid_data": valid_data,
            "test_data": test_data,
            "source_lang": source_lang,
            "target_lang": target_lang,
        }
        cfg = TranslateConfig.from_dict({k: v for k, v in given.items() if v is not None}, cfg)
    except (ValueError, OSError, json.JSONDecodeError) as e:
        _fail(str(e))
    typer.echo(f"configuration: {json.dumps(cfg.to_dict())}")
    try:
        result = run_training(
            cfg, out, fresh=fresh, verbose=2 if quiet else 1, allow_other_files=allow_other_files
        )
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted; run the same command again to resume from {out / 'backup'}")
        raise typer.Exit(130) from None
    except (ValueError, OSError) as e:
        _fail(str(e))
    if result.resumed:
        typer.echo("(resumed from a backup)")
    typer.echo(describe(result))


@app.command()
def evaluate(
    model: ModelFiles = None,
    split: Annotated[str, typer.Option(help="train, validation or test")] = "test",
    beam: Annotated[
        int | None, typer.Option(help="beam width (1: greedy; default: the config's)")
    ] = None,
    alpha: Annotated[float | None, typer.Option(help="length-normalisation exponent α")] = None,
    beta: Annotated[float | None, typer.Option(help="coverage-penalty weight β")] = None,
    compare: Annotated[
        bool, typer.Option(help="score greedy search and the beam side by side")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="only the first N pairs")] = None,
    output: Annotated[Path | None, typer.Option(help="write the translations to this file")] = None,
    heatmap: Annotated[
        Path | None, typer.Option(help="attention heatmap (.png or .html) of sentence --index")
    ] = None,
    index: Annotated[int, typer.Option(help="which pair of the split --heatmap shows")] = 0,
    data: Annotated[
        str | None,
        typer.Option(help="score these pairs instead (a TSV, or a Moses prefix)"),
    ] = None,
) -> None:
    """sacreBLEU and chrF on a split (of the data the model was trained on), or on --data."""
    from lstmkit.apps.translate.data import load_pairs
    from lstmkit.apps.translate.evaluate import evaluate_split, save_heatmap
    from lstmkit.apps.translate.user_pairs import read_pairs

    if split not in ("train", "validation", "test"):
        _fail(f"--split must be train, validation or test, got {split!r}")
    translator = _load(model)
    try:
        pairs = read_pairs(data, translator.cfg) if data else load_pairs(split, translator.cfg)
    except (OSError, ValueError) as e:
        _fail(str(e))
    if data:
        split = data
    _decoding_overrides(translator, alpha, beta, beam)
    if limit is not None and limit < 1:
        _fail(f"--limit must be >= 1, got {limit}")
    cfg = translator.cfg
    beams = [1, beam or cfg.beam_size] if compare else [beam or cfg.beam_size]
    typer.echo(
        f"{' + '.join(map(str, model or [DEFAULT_MODEL]))}: attention={cfg.attention}, "
        f"α={cfg.length_penalty}, β={cfg.coverage_penalty}"
    )
    for k in beams:
        scores = evaluate_split(translator, split, beam_size=k, limit=limit, pairs=pairs)
        typer.echo(f"\n{split}, {'greedy search' if k == 1 else f'beam search k={k}'}:")
        for line in scores.lines():
            typer.echo("  " + line)
        if output is not None:
            path = output if len(beams) == 1 else output.with_suffix(f".k{k}{output.suffix}")
            path.write_text("\n".join(scores.hypotheses) + "\n", encoding="utf-8")
            typer.echo(f"  translations: {path}")
    if heatmap is not None:
        if not 0 <= index < len(pairs):
            _fail(f"--index must be in [0, {len(pairs)}), got {index}")
        result = translator.translate([pairs[index][0]], beam_size=beams[-1])[0]
        try:
            typer.echo(f"heatmap: {save_heatmap(result, heatmap)}")
        except ValueError as e:
            _fail(str(e))


@app.command()
def text(
    sentences: Annotated[
        list[str] | None, typer.Argument(help="German sentences (default: stdin lines)")
    ] = None,
    model: ModelFiles = None,
    beam: Annotated[int | None, typer.Option(help="beam width (1: greedy)")] = None,
    alpha: Annotated[float | None, typer.Option(help="length-normalisation exponent α")] = None,
    beta: Annotated[float | None, typer.Option(help="coverage-penalty weight β")] = None,
    heatmap: Annotated[
        Path | None, typer.Option(help="attention heatmap of the first sentence (.png or .html)")
    ] = None,
) -> None:
    """Translate sentences given as arguments, or each line of stdin."""
    from lstmkit.apps.translate.evaluate import save_heatmap

    lines = _argument_lines(sentences) if sentences else _stdin_lines()
    translator = _load(model)
    _decoding_overrides(translator, alpha, beta, beam)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            results = translator.translate(lines)
        except ValueError as e:
            _fail(str(e))
    for w in caught:
        typer.secho(f"warning: {w.message}", fg=typer.colors.YELLOW, err=True)
    for r in results:
        typer.echo(r.text)
    if heatmap is not None and results:
        try:
            typer.echo(f"heatmap: {save_heatmap(results[0], heatmap)}", err=True)
        except ValueError as e:
            _fail(str(e))


@app.command("config")
def show_config() -> None:
    """List every setting with its default and meaning (use them with train --set)."""
    from lstmkit.apps.translate.config import TranslateConfig

    for name, (kind, default, help_text) in TranslateConfig.fields_help().items():
        typer.echo(f"{name} ({kind}, default {default!r}): {help_text}")


corpus_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Build parallel corpora from local files."
)
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("l10n")
def corpus_l10n(
    out: Annotated[Path, typer.Option(help="the TSV to write (source<TAB>English)")] = Path(
        "data/l10n.de-en.tsv"
    ),
    lang: Annotated[str, typer.Option(help="language of the installed catalogues")] = "de",
    locale_dir: Annotated[Path, typer.Option(help="where the catalogues are")] = Path(
        "/usr/share/locale"
    ),
    min_words: Annotated[int, typer.Option(help="fewest words of a kept sentence")] = 4,
) -> None:
    """Sentence pairs from the installed gettext catalogues (<lang> -> English), as a TSV for
    `translate train --data` (see docs/translate.md)."""
    from lstmkit.apps.translate.l10n import catalogue_pairs, write_tsv

    if min_words < 1:
        _fail(f"--min-words must be >= 1, got {min_words}")
    try:
        pairs, stats = catalogue_pairs(lang, locale_dir, min_words)
    except FileNotFoundError as e:
        _fail(str(e))
    write_tsv(pairs, out)
    typer.echo(
        f"{stats.kept:,} sentence pairs from {stats.catalogues} catalogues ({stats.entries:,} "
        f"entries: {stats.not_sentences:,} not sentences, {stats.multi_line:,} of several "
        f"lines, {stats.format_mismatch:,} with mismatched placeholders or numbers, "
        f"{stats.duplicates:,} duplicates); wrote {out}"
    )
