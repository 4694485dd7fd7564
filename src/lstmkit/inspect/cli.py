"""``lstmkit experiment``: the long-range tasks that show why LSTMs exist.

    lstmkit experiment adding --length 1000 --cell lstm       # train one cell, report MSE
    lstmkit experiment temporal-order --length 100 --cell gru
    lstmkit experiment copy --length 100 --cell lstm
    lstmkit experiment vanishing                              # SimpleRNN, GRU, LSTM: one table
    lstmkit experiment gradflow --length 200                  # ‖∂L/∂h_t‖ vs lag at initialisation

Every training command takes ``--budget-minutes`` (wall clock per run, evaluation included) and
``--quick`` (tiny settings for smoke tests), prints the result table and writes
``results.json``, ``table.md`` and PNG plots under ``--out``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Long-range tasks (Hochreiter & Schmidhuber 1997): why LSTMs exist.",
    no_args_is_help=True,
    add_completion=False,
)

QUICK = {
    "length": 12,
    "units": 8,
    "batch_size": 16,
    "budget_minutes": 2.0,
    "eval_every": 5,
    "eval_size": 32,
    "max_steps": 10,
}


def _threads(threads: int) -> None:

    from lstmkit.utils import set_threads

    try:
        set_threads(threads, "--threads")
    except (TypeError, ValueError) as e:
        raise typer.BadParameter(
            str(e).removeprefix("--threads "), param_hint="--threads"
        ) from None


def _split(value: str, what: str, cast: Any = str) -> list[Any]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise typer.BadParameter(f"expected a comma-separated list, got {value!r}", param_hint=what)
    try:
        return [cast(v) for v in items]
    except ValueError:
        raise typer.BadParameter(f"could not read {value!r}", param_hint=what) from None


def _config(quick: bool, **given: Any) -> dict[str, Any]:
    cfg = {k: v for k, v in given.items() if v is not None}
    if quick:
        cfg.update({k: v for k, v in QUICK.items() if k != "length"})
    return cfg


def _command_line(ctx: typer.Context) -> str:
    """The running command with every option that differs from its default (for reports)."""
    parts = [ctx.command_path]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value == param.default or value is None:
            continue
        if getattr(param, "is_flag", False):
            parts.append(param.opts[0])
        else:
            parts.append(f"{param.opts[0]} {value}")
    return " ".join(parts)


def _print_table(results: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Long-range tasks")
    for col in ("task", "length", "cell", "final error", "trivial", "solved", "wall time", "steps"):
        table.add_column(col, justify="right" if col not in ("task", "cell") else "left")
    for r in results:
        table.add_row(
            r.task,
            str(r.length),
            r.cell_name,
            f"{r.error_name} {r.final_error:.4f}",
            f"{r.trivial_error:.3f}",
            "yes" if r.solved else "no",
            f"{r.wall_s / 60:.1f} min",
            str(r.steps),
        )
    Console().print(table)


def _write_outputs(
    out: Path, results: list[Any], command: str, started: float, plots: bool = True
) -> None:
    from lstmkit.inspect.experiments import format_table
    from lstmkit.inspect.plots import learning_curves_png
    from lstmkit.utils import atomic_write

    payload = {
        "command": command,
        "total_wall_s": time.perf_counter() - started,
        "results": [asdict(r) for r in results],
    }
    texts = {
        "results.json": json.dumps(payload, indent=2) + "\n",
        "table.md": f"`{command}`\n\n" + format_table(results),
    }
    for name, text in texts.items():
        with atomic_write(out / name, "w") as fh:
            fh.write(text)
    if plots:
        learning_curves_png(out / "learning_curves.png", results)


def _train(
    task: str,
    length: int,
    cells: list[str],
    out: Path,
    quick: bool,
    threads: int,
    command: str,
    **options: Any,
) -> list[Any]:
    from lstmkit.inspect.experiments import RunConfig, run_task

    _threads(threads)
    started = time.perf_counter()
    cfg = _config(quick, **options)
    results = []
    for cell in cells:
        try:
            run = RunConfig(
                task=task,
                length=min(length, QUICK["length"]) if quick else length,
                cell=cell,
                **cfg,
            )
        except ValueError as e:
            raise typer.BadParameter(str(e)) from None
        typer.echo(
            f"{run.task} T={run.length}: training {cell} for at most {run.budget_minutes:g} min"
        )
        results.append(run_task(run, log=typer.echo))
    _print_table(results)
    _write_outputs(out, results, command, started)
    typer.echo(f"wrote {out}/results.json, table.md, learning_curves.png")
    return results


_CELL = typer.Option("lstm", "--cell", help="rnn (SimpleRNN), gru or lstm; a list runs each.")
_BUDGET = typer.Option(30.0, "--budget-minutes", help="Wall-clock budget per run (minutes).")
_QUICK = typer.Option(False, "--quick", help="Tiny settings (T<=12, 8 units, 10 steps).")
_UNITS = typer.Option(32, "--units", help="Hidden units of the recurrent layer.")
_BATCH = typer.Option(32, "--batch-size", help="Sequences per training step.")
_LR = typer.Option(1e-3, "--learning-rate", help="Adam learning rate.")
_CLIP = typer.Option(1.0, "--clipnorm", help="Gradient clipping (norm per variable).")
_INIT = typer.Option(
    "chrono", "--init", help="Gate biases: chrono (Tallec & Ollivier 2018) or keras defaults."
)
_EVAL = typer.Option(100, "--eval-every", help="Evaluate on the test set every N steps.")
_EVAL_SIZE = typer.Option(256, "--eval-size", help="Held-out test sequences.")
_MAX_STEPS = typer.Option(None, "--max-steps", help="Stop after N optimiser steps.")
_SEED = typer.Option(0, "--seed", help="Random seed (weights, data).")
_THREADS = typer.Option(0, "--threads", help="torch intra-op threads (0 = default).")


def _task_command(task: str, default_length: int, help_text: str) -> None:
    def command(
        ctx: typer.Context,
        length: int = typer.Option(default_length, "--length", help="Minimal sequence length T."),
        cell: str = _CELL,
        budget_minutes: float = _BUDGET,
        quick: bool = _QUICK,
        units: int = _UNITS,
        batch_size: int = _BATCH,
        learning_rate: float = _LR,
        clipnorm: float = _CLIP,
        init: str = _INIT,
        eval_every: int = _EVAL,
        eval_size: int = _EVAL_SIZE,
        max_steps: int | None = _MAX_STEPS,
        seed: int = _SEED,
        threads: int = _THREADS,
        out: Annotated[Path, typer.Option("--out", help="Folder for results and plots.")] = Path(
            f"lstmkit-experiments/{task}"
        ),
    ) -> None:
        cells = _split(cell, "--cell")
        _train(
            task,
            length,
            cells,
            out,
            quick,
            threads,
            command=_command_line(ctx),
            units=units,
            batch_size=batch_size,
            learning_rate=learning_rate,
            clipnorm=clipnorm,
            init=init,
            budget_minutes=budget_minutes,
            eval_every=eval_every,
            eval_size=eval_size,
            max_steps=max_steps,
            seed=seed,
        )

    command.__doc__ = help_text
    app.command(name=task)(command)


_task_command(
    "adding",
    1000,
    "Adding problem: sum the two marked values (MSE; predicting the mean scores ≈ 0.167; "
    "solved below 0.01).",
)
_task_command(
    "temporal-order",
    100,
    "Temporal order: classify the order of two symbols X/Y far apart (chance 75 % error).",
)
_task_command(
    "copy",
    100,
    "Copy memory: repeat 10 symbols after T blank steps (symbol error; guessing 87.5 %).",
)


@app.command()
def vanishing(
    ctx: typer.Context,
    tasks: str = typer.Option(
        "adding", "--tasks", help="Comma-separated: adding, temporal-order, copy."
    ),
    lengths: str = typer.Option("100,1000", "--lengths", help="Comma-separated lengths T."),
    cells: str = typer.Option("rnn,gru,lstm", "--cells", help="Comma-separated cells."),
    budget_minutes: float = _BUDGET,
    quick: bool = _QUICK,
    units: int = _UNITS,
    batch_size: int = _BATCH,
    learning_rate: float = _LR,
    clipnorm: float = _CLIP,
    init: str = _INIT,
    eval_every: int = _EVAL,
    eval_size: int = _EVAL_SIZE,
    max_steps: int | None = _MAX_STEPS,
    seed: int = _SEED,
    threads: int = _THREADS,
    out: Annotated[Path, typer.Option("--out", help="Folder for results and plots.")] = Path(
        "lstmkit-experiments/vanishing"
    ),
) -> None:
    """SimpleRNN, GRU and LSTM on the same tasks, lengths and budget: one table, plus learning
    curves and gradient-flow plots (at initialisation and after training)."""
    from lstmkit.inspect.experiments import gradient_flows_for
    from lstmkit.inspect.experiments import vanishing as run_all
    from lstmkit.inspect.plots import gradient_flow_png

    _threads(threads)
    started = time.perf_counter()
    task_list = _split(tasks, "--tasks")
    length_list = _split(lengths, "--lengths", int)
    cell_list = _split(cells, "--cells")
    if quick:
        length_list = sorted({min(t, QUICK["length"]) for t in length_list})
    cfg = _config(
        quick,
        units=units,
        batch_size=batch_size,
        learning_rate=learning_rate,
        clipnorm=clipnorm,
        init=init,
        budget_minutes=budget_minutes,
        eval_every=eval_every,
        eval_size=eval_size,
        max_steps=max_steps,
        seed=seed,
    )
    command = _command_line(ctx)
    try:
        results = run_all(
            task_list,
            length_list,
            cell_list,
            log=typer.echo,
            on_result=lambda rows: _write_outputs(out, rows, command, started, plots=False),
            **cfg,
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    _print_table(results)
    _write_outputs(out, results, command, started)
    for key, flows in gradient_flows_for(results).items():
        name = key.replace(" ", "_").replace("=", "")
        gradient_flow_png(out / f"gradient_flow_{name}.png", flows, title=f"Gradient flow: {key}")
    typer.echo(f"wrote {out}/results.json, table.md, learning_curves.png, gradient_flow_*.png")


@app.command()
def gradflow(
    task: str = typer.Option("adding", "--task", help="adding, temporal-order or copy."),
    length: int = typer.Option(200, "--length", help="Sequence length T."),
    units: int = _UNITS,
    batch: int = typer.Option(16, "--batch", help="Sequences averaged over."),
    seed: int = _SEED,
    out: Annotated[Path, typer.Option("--out", help="Folder for the plot.")] = Path(
        "lstmkit-experiments/gradflow"
    ),
) -> None:
    """‖∂L/∂h_t‖ and ‖∂h_T/∂x_t‖ against the lag for freshly initialised SimpleRNN, GRU and
    LSTM on one batch of a task, with the fitted per-step decay: Keras's default initialisation
    (LSTM forget bias 1) and the chrono initialisation of the gates (Tallec & Ollivier 2018)."""
    import numpy as np

    from lstmkit.inspect.experiments import chrono_init
    from lstmkit.inspect.gradflow import compare_gradient_flow, gradient_flow
    from lstmkit.inspect.plots import gradient_flow_png
    from lstmkit.inspect.tasks import get_task
    from lstmkit.layers import GRU, LSTM
    from lstmkit.utils import set_random_seed

    try:
        spec = get_task(task)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--task") from None
    if length < 12:
        raise typer.BadParameter("must be >= 12", param_hint="--length")
    x, _ = spec.sample(batch, length, np.random.default_rng(seed))
    flows = compare_gradient_flow(x, units=units, seed=seed)
    for flow in flows.values():
        if flow.kind != "rnn":
            flow.label += " (Keras init)"
    for kind, cls in (("gru", GRU), ("lstm", LSTM)):
        set_random_seed(seed)
        layer = cls(units)
        layer.build((None, None, x.shape[-1]))
        chrono_init(layer, length, np.random.default_rng(seed))
        flows[f"{kind}_chrono"] = gradient_flow(layer, x)
        flows[f"{kind}_chrono"].label += " (chrono init)"
    for flow in flows.values():
        typer.echo(
            f"{flow.label:22s}  ‖∂L/∂h_t‖ ×{flow.decay_rate():.4f}/step   "
            f"‖∂h_T/∂x_t‖ ×{flow.decay_rate('dh_dx'):.4f}/step   "
            f"‖∂L/∂h_t‖ at lag {x.shape[1] - 1}: {flow.dloss_dh[0]:.3g}"
        )
    path = gradient_flow_png(
        out / "gradient_flow.png",
        flows,
        title=f"Gradient flow at initialisation: {task}, T = {x.shape[1]}",
    )
    typer.echo(f"wrote {path}")


@app.command()
def quotes(
    steps: int = typer.Option(400, "--steps", help="Training steps of the character model."),
    chars: int = typer.Option(400, "--chars", help="Length of the text that is drawn."),
    units: int = _UNITS,
    seed: int = _SEED,
    threads: int = _THREADS,
    out: Annotated[Path, typer.Option("--out", help="Folder for the pictures.")] = Path(
        "lstmkit-experiments/quotes"
    ),
) -> None:
    """Train a small character LSTM on text with quoted passages, find the cell that tracks
    "inside a quote" (Karpathy et al. 2015) and draw it: HTML and PNG heatmaps, gates over
    time, gate saturation."""
    from lstmkit.inspect.experiments import quote_cell
    from lstmkit.inspect.html import save_trace_html
    from lstmkit.inspect.plots import gates_png, saturation_png, trace_heatmap_png
    from lstmkit.inspect.stats import memory_time_scales

    _threads(threads)
    if steps < 1:
        raise typer.BadParameter("must be >= 1", param_hint="--steps")
    if chars < 2:
        raise typer.BadParameter("must be >= 2", param_hint="--chars")
    res = quote_cell(steps=steps, units=units, seed=seed, text_chars=chars)
    trace = res.recording["lstm"]
    typer.echo(
        f"trained {steps} steps in {res.wall_s:.0f} s; next-character accuracy "
        f"{res.accuracy:.1%}; unit {res.unit}'s cell state correlates {res.correlation:+.2f} "
        f"with 'inside a quote'"
    )
    tau = memory_time_scales(trace)
    typer.echo(
        f"forget gate: mean {tau['mean'].mean():.3f}, median time scale "
        f"{tau['time_scale'].median():.1f} steps; unit {res.unit}: "
        f"{tau['time_scale'][res.unit]:.1f} steps"
    )
    written = [
        save_trace_html(out / "quote_cell.html", trace, res.text, res.unit),
        trace_heatmap_png(out / "quote_cell.png", trace, res.text, res.unit, gate="c"),
        gates_png(out / "quote_cell_gates.png", trace, res.unit, text=res.text[:120])
        if trace.steps <= 120
        else gates_png(out / "quote_cell_gates.png", trace, res.unit),
        saturation_png(out / "saturation.png", res.recording),
    ]
    typer.echo("wrote " + ", ".join(str(p) for p in written))
