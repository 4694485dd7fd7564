"""Training SimpleRNN, GRU and LSTM on the long-range tasks under a wall-clock budget.

One run (:func:`run_task`) builds ``Sequential([<cell>(units), Dense(out)])`` with lstmkit's
public API, compiles it with Adam and gradient clipping, and trains it with ``fit`` on an endless
generator of fresh batches (:mod:`lstmkit.inspect.tasks`, one sequence length per batch) until
the held-out error falls below the task's threshold or the budget is spent. Every
``eval_every`` steps the model predicts a fixed test set (its own seed, never trained on).

Forget-gate initialisation (``init``):

* ``"keras"``: Keras's defaults (LSTM forget bias 1 — ``unit_forget_bias`` —, GRU biases 0);
* ``"chrono"``: Tallec & Ollivier 2018 ("Can recurrent neural networks warp time?"): LSTM
  ``b_f = log u``, ``b_i = -b_f`` with ``u ~ U[1, T_max - 1]`` and ``T_max`` the sequence length,
  so the units start with forget time scales spread over ``1 … T_max``; the GRU's update gate
  gets ``b_z = log u`` by the same argument; a SimpleRNN has no gate and is unchanged.

:func:`vanishing` runs every cell on every task and length with the same budget and settings and
returns the rows of the comparison table (task, length, cell, final error, solved, wall time).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lstmkit.inspect.tasks import Task, get_task
from lstmkit.utils import check_number_fields

CELLS = ("rnn", "gru", "lstm")
CELL_NAMES = {"rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}
INITS = ("keras", "chrono")


RUN_LIMITS = {"length": 100_000, "units": 8192, "batch_size": 65_536, "eval_size": 1_000_000}
"""Upper bounds of a run's sizes: beyond them a typo (``--units 1000000000000``) fails to
allocate or runs for days instead of saying what is wrong."""


@dataclass
class RunConfig:
    """One training run. ``budget_minutes`` is wall-clock time including evaluation;
    ``max_steps`` (optional) caps the optimiser steps."""

    task: str = "adding"
    length: int = 100
    cell: str = "lstm"
    units: int = 32
    batch_size: int = 32
    learning_rate: float = 1e-3
    clipnorm: float = 1.0
    init: str = "chrono"
    budget_minutes: float = 30.0
    max_steps: int | None = None
    eval_every: int = 100
    eval_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        get_task(self.task)
        check_number_fields(self)  # numbers must be numbers (True is not 1), and finite
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        for name in ("length", "units", "batch_size", "eval_every", "eval_size"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            top = RUN_LIMITS.get(name)
            if top is not None and value > top:
                raise ValueError(
                    f"{name} must be at most {top:,} (these runs are experiments on one "
                    f"machine), got {value:,}"
                )
        if not self.budget_minutes > 0:
            raise ValueError(f"budget_minutes must be > 0, got {self.budget_minutes!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not self.clipnorm > 0:
            raise ValueError(f"clipnorm must be > 0, got {self.clipnorm!r}")
        if self.max_steps is not None and (
            isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int)
            or self.max_steps < 1
        ):  # fmt: skip
            raise ValueError(
                f"max_steps must be None or a positive integer, got {self.max_steps!r}"
            )


@dataclass
class RunResult:
    """What a run reached. ``history`` holds ``(seconds, steps, test_error)`` at every
    evaluation; ``time_to_solve`` is the wall time of the first evaluation below the threshold
    (``None`` if never)."""

    task: str
    length: int
    cell: str
    final_error: float
    trivial_error: float
    error_name: str
    solved: bool
    wall_s: float
    steps: int
    sequences: int
    time_to_solve: float | None
    config: dict[str, Any]
    history: list[tuple[float, int, float]] = field(default_factory=list)

    @property
    def cell_name(self) -> str:
        return CELL_NAMES[self.cell]


def build_model(cfg: RunConfig) -> Any:
    """``Sequential([Input((None, I)), <Cell>(units), Dense(out)])`` with ``cfg.init``."""
    from lstmkit.layers import GRU, LSTM, Dense, Input, SimpleRNN
    from lstmkit.models import Sequential

    task = get_task(cfg.task)
    cls = {"rnn": SimpleRNN, "gru": GRU, "lstm": LSTM}[cfg.cell]
    rnn = cls(cfg.units, return_sequences=task.sequence_output, name=cfg.cell)
    model = Sequential(
        [Input(shape=(None, task.input_size)), rnn, Dense(task.output_size, name="readout")]
    )
    if cfg.init == "chrono":
        chrono_init(rnn, cfg.length, np.random.default_rng(cfg.seed))
    return model


def chrono_init(layer: Any, t_max: int, rng: np.random.Generator) -> None:
    """Chrono initialisation (Tallec & Ollivier 2018) of a built LSTM / GRU layer, through its
    Keras-layout weights: LSTM ``bias = [b_i, b_f, b_c, b_o]`` with ``b_f = log u``,
    ``b_i = -b_f``, ``u ~ U[1, t_max - 1]``; GRU (``z, r, h`` blocks) ``b_z = log u``.
    A SimpleRNN is left unchanged."""
    kind = layer.cell.kind
    if kind == "rnn":
        return
    h = layer.units
    b_keep = np.log(rng.uniform(1.0, max(float(t_max) - 1.0, 1.0 + 1e-6), size=h))
    weights = layer.get_weights()
    bias = weights[2]
    if kind == "lstm":
        bias[h : 2 * h] = b_keep
        bias[:h] = -b_keep
    elif bias.ndim == 2:  # GRU, reset_after: (2, 3H), row 0 the input bias
        bias[0, :h] = b_keep
        bias[1, :h] = 0.0
    else:
        bias[:h] = b_keep
    layer.set_weights(weights)


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    return model.predict(x, batch_size=len(x), verbose=0)


class _Monitor:
    """Evaluates on the test set every ``eval_every`` steps; stops on success or budget."""

    def __init__(
        self,
        cfg: RunConfig,
        task: Task,
        test: list[tuple[np.ndarray, np.ndarray]],
        start: float,
        log: Callable[[str], None] | None,
    ) -> None:
        self.cfg, self.task, self.test, self.start, self.log = cfg, task, test, start, log
        self.steps = 0
        self.history: list[tuple[float, int, float]] = []
        self.solved_at: float | None = None
        self.budget_s = cfg.budget_minutes * 60.0

    def evaluate(self, model: Any) -> float:
        errors, counts = [], []
        for x, y in self.test:
            errors.append(self.task.error(y, _predict(model, x)))
            counts.append(len(x))
        err = float(np.average(errors, weights=counts))
        elapsed = time.perf_counter() - self.start
        self.history.append((elapsed, self.steps, err))
        if self.log is not None:
            self.log(
                f"  {CELL_NAMES[self.cfg.cell]:9s} T={self.cfg.length:<5d} step {self.steps:6d} "
                f"{elapsed:7.1f}s  test {self.task.error_name} {err:.4g}"
            )
        if err < self.task.solved_below and self.solved_at is None:
            self.solved_at = elapsed
        return err

    def callback(self) -> Any:
        from lstmkit.callbacks import Callback

        monitor = self

        class Monitor(Callback):
            def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
                monitor.steps += 1
                model = self.model
                elapsed = time.perf_counter() - monitor.start
                loss = (logs or {}).get("loss")
                if loss is not None and not math.isfinite(loss):
                    model.stop_training = True
                    return
                if monitor.steps % monitor.cfg.eval_every == 0:
                    monitor.evaluate(model)
                    if monitor.solved_at is not None:
                        model.stop_training = True
                if elapsed >= monitor.budget_s or (
                    monitor.cfg.max_steps is not None and monitor.steps >= monitor.cfg.max_steps
                ):
                    model.stop_training = True

        return Monitor()


def run_task(cfg: RunConfig, log: Callable[[str], None] | None = None) -> RunResult:
    """Train one cell on one task and length within ``cfg``'s budget; see the module docstring."""
    from lstmkit.optimizers import Adam
    from lstmkit.utils import set_random_seed

    task = get_task(cfg.task)
    set_random_seed(cfg.seed)
    model = build_model(cfg)
    model.compile(
        optimizer=Adam(learning_rate=cfg.learning_rate, clipnorm=cfg.clipnorm),
        loss=task.loss if task.loss == "mse" else _sparse_ce(),
    )
    test_rng = np.random.default_rng(10_000 + cfg.seed)
    test_batch = min(cfg.eval_size, 128)
    test = [
        task.sample(min(test_batch, cfg.eval_size - k), cfg.length, test_rng)
        for k in range(0, cfg.eval_size, test_batch)
    ]
    start = time.perf_counter()
    monitor = _Monitor(cfg, task, test, start, log)
    data = task.batches(cfg.batch_size, cfg.length, seed=cfg.seed)
    model.fit(
        data,
        steps_per_epoch=cfg.eval_every,
        epochs=10**9,
        verbose=0,
        callbacks=[monitor.callback()],
    )
    if not monitor.history or monitor.history[-1][1] != monitor.steps:
        monitor.evaluate(model)
    wall = time.perf_counter() - start
    final = monitor.history[-1][2]
    result = RunResult(
        task=cfg.task,
        length=cfg.length,
        cell=cfg.cell,
        final_error=final,
        trivial_error=task.trivial_error,
        error_name=task.error_name,
        solved=final < task.solved_below,
        wall_s=wall,
        steps=monitor.steps,
        sequences=monitor.steps * cfg.batch_size,
        time_to_solve=monitor.solved_at,
        config=asdict(cfg),
        history=monitor.history,
    )
    result.model = model  # type: ignore[attr-defined]  # for plots; not part of the record
    return result


def _sparse_ce() -> Any:
    from lstmkit.training.losses import SparseCategoricalCrossentropy

    return SparseCategoricalCrossentropy(from_logits=True)


def vanishing(
    tasks: list[str],
    lengths: list[int],
    cells: list[str] | tuple[str, ...] = CELLS,
    log: Callable[[str], None] | None = None,
    on_result: Callable[[list[RunResult]], None] | None = None,
    **config: Any,
) -> list[RunResult]:
    """Every cell on every (task, length) with the same budget and settings (``config`` goes
    to :class:`RunConfig`); rows in task, length, cell order. ``on_result`` is called with the
    rows so far after every run (to save partial results of long experiments)."""
    configs = [
        RunConfig(task=task, length=length, cell=cell, **config)
        for task in tasks
        for length in lengths
        for cell in cells
    ]
    results: list[RunResult] = []
    for cfg in configs:
        results.append(run_task(cfg, log=log))
        if on_result is not None:
            on_result(results)
    return results


def gradient_flows_for(
    results: list[RunResult], n: int = 16, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Gradient flow of each trained model's recurrent layer on a fresh batch of its task, and of
    a freshly initialised copy: ``{"<task> T=<len>": {"<Cell> trained": flow, ...}}``."""
    from lstmkit.inspect.gradflow import gradient_flow
    from lstmkit.utils import set_random_seed

    out: dict[str, dict[str, Any]] = {}
    for r in results:
        model = getattr(r, "model", None)
        if model is None:
            continue
        task = get_task(r.task)
        x, _ = task.sample(n, r.length, np.random.default_rng(seed))
        key = f"{r.task} T={r.length}"
        layer = model.get_layer(r.cell)
        flow = gradient_flow(layer, x, jacobian=False)
        flow.label = f"{CELL_NAMES[r.cell]} (trained)"
        out.setdefault(key, {})[flow.label] = flow
        set_random_seed(int(r.config["seed"]))
        fresh = build_model(RunConfig(**r.config))
        init_flow = gradient_flow(fresh.get_layer(r.cell), x, jacobian=False)
        init_flow.label = f"{CELL_NAMES[r.cell]} (init)"
        out[key][init_flow.label] = init_flow
    return out


def format_table(results: list[RunResult]) -> str:
    """The comparison table as Markdown (task, length, cell, final error, solved, wall time,
    steps)."""
    header = (
        "| task | length | cell | final error | trivial | solved | wall time | steps "
        "(sequences) | solved after |\n"
        "|---|---:|---|---:|---:|:---:|---:|---:|---:|\n"
    )
    lines = []
    for r in results:
        solved_after = f"{r.time_to_solve:.0f} s" if r.time_to_solve is not None else "—"
        lines.append(
            f"| {r.task} | {r.length} | {r.cell_name} | {r.error_name} {r.final_error:.4f} | "
            f"{r.trivial_error:.3f} | {'yes' if r.solved else 'no'} | {r.wall_s / 60:.1f} min | "
            f"{r.steps} ({r.sequences}) | {solved_after} |"
        )
    return header + "\n".join(lines) + "\n"


# -- a Karpathy-style cell: which unit tracks "inside quotes"? -------------------------------------

_WORDS = ("the", "cat", "sat", "on", "a", "mat", "and", "said", "it", "was", "so", "very", "nice")


def quote_text(n_chars: int, rng: np.random.Generator) -> str:
    """Synthetic prose with quoted passages; letters inside quotes are upper case, so a
    character model must know whether it is inside a quote to predict the case."""
    parts: list[str] = []
    size = 0
    while size <= n_chars:
        if rng.random() < 0.25:
            words = rng.choice(_WORDS, size=int(rng.integers(2, 9)))
            chunk = '"' + " ".join(w.upper() for w in words) + '"'
        else:
            chunk = " ".join(rng.choice(_WORDS, size=int(rng.integers(1, 6))))
        chunk += "." if rng.random() < 0.2 else ""
        parts.append(chunk)
        size += len(chunk) + 1
    return " ".join(parts)[:n_chars]


@dataclass
class QuoteCellResult:
    """The trained character model, the vocabulary, the analysed text with its recording, the
    unit whose cell state best tracks "inside a quote" and that correlation."""

    model: Any
    vocab: str
    text: str
    recording: Any
    unit: int
    correlation: float
    accuracy: float
    wall_s: float


def quote_cell(
    steps: int = 400,
    units: int = 32,
    length: int = 100,
    batch_size: int = 32,
    seed: int = 0,
    text_chars: int = 400,
) -> QuoteCellResult:
    """Train a character-level LSTM language model on :func:`quote_text` (``Embedding``,
    ``LSTM``, ``Dense`` with ``fit``), record it on a fresh text and find the unit whose cell
    state ``c`` correlates best with being inside a quote — the experiment of Karpathy, Johnson &
    Fei-Fei (2015) on a toy corpus."""
    from lstmkit.inspect.record import record
    from lstmkit.layers import LSTM, Dense, Embedding
    from lstmkit.models import Sequential
    from lstmkit.optimizers import Adam
    from lstmkit.training.losses import SparseCategoricalCrossentropy
    from lstmkit.utils import set_random_seed

    start = time.perf_counter()
    set_random_seed(seed)
    rng = np.random.default_rng(seed)
    vocab = "".join(sorted(set(" ".join(_WORDS) + " ".join(_WORDS).upper() + '". ')))
    index = {ch: k for k, ch in enumerate(vocab)}

    def batches() -> Any:
        while True:
            ids = np.asarray(
                [[index[c] for c in quote_text(length + 1, rng)] for _ in range(batch_size)]
            )
            yield ids[:, :-1], ids[:, 1:]

    model = Sequential(
        [
            Embedding(len(vocab), 16, name="embedding"),
            LSTM(units, return_sequences=True, name="lstm"),
            Dense(len(vocab), name="next_char"),
        ]
    )
    model.compile(Adam(3e-3, clipnorm=1.0), SparseCategoricalCrossentropy(from_logits=True))
    model.fit(batches(), steps_per_epoch=steps, epochs=1, verbose=0)
    text = quote_text(text_chars, np.random.default_rng(seed + 1))
    ids = np.asarray([[index[c] for c in text]])
    with record(model) as rec:
        logits = model.predict(ids, verbose=0)
    accuracy = float(np.mean(logits[0, :-1].argmax(-1) == ids[0, 1:]))
    inside = np.zeros(len(text))
    state = 0.0
    for k, ch in enumerate(text):
        if ch == '"':
            state = 1.0 - state
        inside[k] = state
    c = rec["lstm"]["c"][0].double().numpy()  # (T, H)
    dc, di = c - c.mean(0), inside - inside.mean()
    norm = np.sqrt((dc**2).sum(0) * (di**2).sum())  # (H,); 0 if the text has no quote
    corr = np.divide(dc.T @ di, norm, out=np.zeros(units), where=norm > 0)  # Pearson per unit
    unit = int(np.abs(corr).argmax())
    return QuoteCellResult(
        model, vocab, text, rec, unit, float(corr[unit]), accuracy, time.perf_counter() - start
    )
