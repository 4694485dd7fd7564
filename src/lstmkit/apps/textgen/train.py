"""Training: stateful truncated backpropagation through time on contiguous streams.

One step::

    x, y = next chunk (B, T) of every stream        # row i continues row i of the last chunk
    logits = model(x, training=True)                # the LSTMs start from the carried state
    loss = mean cross-entropy(y, logits)            # nats per token
    loss.backward(); clip the global norm; Adam step with the scheduled learning rate
    (the layers keep their final state, detached: gradients stop at the chunk boundary)

At the end of a pass over the training text the state is reset and the next pass starts at a
random offset in ``[0, T)``, so chunk boundaries move between epochs. The validation plays are
scored every ``eval_every`` steps (the curve, written to ``<model>.curve.csv``), the model is
checkpointed every ``checkpoint_every`` steps (with the optimiser state: ``resume`` continues),
and the final model is scored on the whole validation and test splits.

Time is measured three ways and all are reported: ``train_s`` (wall clock of the training steps
only), ``wall_s`` (everything, evaluation included) and ``cpu_s`` (CPU time of this process, all
threads), so a run on a busy machine can be told from a run on an idle one.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from lstmkit import engines
from lstmkit.apps.textgen.config import TextgenConfig
from lstmkit.apps.textgen.data import TBPTTBatches, Vocabulary, load_text
from lstmkit.apps.textgen.model import (
    LanguageModel,
    evaluate_ids,
    lstm_layers,
    reset_states,
)
from lstmkit.training.losses import SparseCategoricalCrossentropy
from lstmkit.training.optimizers import Adam
from lstmkit.training.schedules import CosineDecay
from lstmkit.utils import atomic_write, set_random_seed

CURVE_FIELDS = (
    "step",
    "epoch",
    "tokens",
    "train_s",
    "wall_s",
    "cpu_s",
    "learning_rate",
    "train_nats",
    "val_nats",
    "val_bits",
    "val_tokens",
)


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` did: figures, times (seconds) and where the model went."""

    path: Path
    config: TextgenConfig
    steps: int
    tokens: int
    train_s: float
    wall_s: float
    cpu_s: float
    engine: str
    precision: str
    validation: dict[str, float]
    test: dict[str, float] | None  # None: the user's data had no test split
    curve: list[dict[str, float]]
    stopped_by_budget: bool

    def summary(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["path"] = str(self.path)
        out["config"] = self.config.to_dict()
        out.pop("curve")
        return out


def set_threads(threads: int, name: str = "--threads") -> None:
    """``torch.set_num_threads(threads)`` unless 0 (keep torch's default); bounded by the
    machine's CPUs (:func:`lstmkit.utils.check_threads`)."""
    from lstmkit.utils import set_threads as _set

    _set(threads, name)


def make_optimizer(cfg: TextgenConfig) -> Adam:
    """Adam with linear warm-up to ``learning_rate`` and cosine decay to
    ``final_lr_fraction`` of it at ``steps``; global-norm clipping at ``clipnorm``."""
    schedule = CosineDecay(
        initial_learning_rate=cfg.learning_rate * 0.01,
        decay_steps=max(1, cfg.steps - cfg.warmup_steps),
        alpha=cfg.final_lr_fraction,
        warmup_target=cfg.learning_rate,
        warmup_steps=cfg.warmup_steps,
    )
    return Adam(learning_rate=schedule, global_clipnorm=cfg.clipnorm or None)


def engine_name(lm: LanguageModel) -> str:
    """The lstmkit engine that runs the (first) LSTM layer in training."""
    layer = lstm_layers(lm.model)[0]
    x = torch.zeros(lm.config.batch_size, 2, layer.cell.input_size)
    opts = engines.RunOptions()
    if layer.recurrent_dropout:
        opts = engines.RunOptions(recurrent_dropout_mask=torch.ones(4, x.shape[0], layer.units))
    try:
        return engines.choose(layer.cell, x, opts, layer.engine).name
    except ValueError as e:
        return f"unavailable ({e})"


class _Clock:
    def __init__(self, train_s: float = 0.0) -> None:
        self.start_wall, self.start_cpu = time.perf_counter(), time.process_time()
        self.train_s = train_s

    @property
    def wall_s(self) -> float:
        return time.perf_counter() - self.start_wall

    @property
    def cpu_s(self) -> float:
        return time.process_time() - self.start_cpu


def train(
    cfg: TextgenConfig,
    *,
    verbose: int = 1,
    resume: str | Path | None = None,
    console: Console | None = None,
    on_step: Callable[[int, float], None] | None = None,
    texts: dict[str, str] | None = None,
    data: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``cfg``'s model on the training plays (or ``texts``); save it; score validation
    and test.

    Args:
        cfg: the configuration (``cfg.output`` is where the model file goes).
        verbose: 0 silent, 1 progress and one line per evaluation, 2 also a line every 50 steps.
        resume: a checkpoint written by an earlier run of the same config: its weights,
            optimiser state and step count are restored and training goes on from there.
        console: where progress goes (default: stdout).
        on_step: called with ``(step, loss)`` after every step (tests, custom logging).
        texts: the user's text instead of the plays: ``{"train": ..., "validation": ...}``
            and optionally ``"test"`` (see :func:`lstmkit.apps.textgen.data.user_texts`).
        data: what ``texts`` came from (file names, sizes, the split), kept in the model file.
    """
    console = console or Console(highlight=False)
    say = console.print if verbose else (lambda *a, **k: None)
    set_threads(cfg.threads)
    set_random_seed(cfg.seed)
    if texts is None:
        texts = {s: load_text(s, cfg.stage_directions) for s in ("train", "validation", "test")}
        data = {"corpus": "shakespeare"}
    elif not texts.get("train") or not texts.get("validation"):
        raise ValueError("train: texts needs non-empty 'train' and 'validation' texts")
    start_step, epoch, batch_in_epoch, curve, train_s0 = 0, 0, 0, [], 0.0
    if resume is not None:
        lm = _resume(resume, cfg)
        state = lm.info.get("training", {})
        start_step, epoch = int(state.get("step", 0)), int(state.get("epoch", 0))
        batch_in_epoch, train_s0 = int(state.get("batch", 0)), float(state.get("train_s", 0.0))
        curve = list(state.get("curve", []))
        vocab = lm.vocab
    else:
        vocab = Vocabulary.build(cfg.level, texts["train"], cfg.max_tokens)
        lm = LanguageModel.create(cfg, vocab)
        _compile(lm, cfg)
    model = lm.model
    ids = {s: vocab.encode_corpus(t) for s, t in texts.items()}
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.parameters())
    loss_fn = SparseCategoricalCrossentropy(from_logits=True)
    path = cfg.output_path
    curve_path = path.with_suffix(".curve.csv")
    engine = engine_name(lm)
    n_params = sum(p.numel() for p in model.parameters())
    precision = cfg.resolved_precision
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    say(
        f"textgen {cfg.level}: {len(vocab)} tokens, {len(ids['train']):,} training tokens, "
        f"{cfg.layers}x LSTM({cfg.units}), {n_params:,} parameters, engine {engine}, "
        f"{torch.get_num_threads()} thread(s), {precision} training"
    )
    rng = np.random.default_rng(cfg.seed)
    offsets = [0, *rng.integers(0, cfg.seq_len, size=10_000).tolist()]

    def epoch_batches(e: int) -> TBPTTBatches:
        return TBPTTBatches(
            ids["train"],
            cfg.batch_size,
            cfg.seq_len,
            offset=offsets[e % len(offsets)],
            drop_last=True,
        )

    batches = epoch_batches(epoch)
    iterator = iter(batches)
    for _ in range(batch_in_epoch):
        next(iterator)
    clock = _Clock(train_s0)
    step, tokens = start_step, start_step * cfg.batch_size * cfg.seq_len
    interval_loss, interval_n = 0.0, 0
    stopped_by_budget = False
    progress = _Progress(console, cfg.steps, start_step, enabled=verbose > 0)

    def evaluate_now(final: bool = False) -> dict[str, float]:
        nonlocal interval_loss, interval_n
        limit = 0 if final else cfg.eval_tokens
        nats = evaluate_ids(model, ids["validation"], max_tokens=limit)
        row = {
            "step": step,
            "epoch": epoch,
            "tokens": tokens,
            "train_s": round(clock.train_s, 2),
            "wall_s": round(clock.wall_s, 2),
            "cpu_s": round(clock.cpu_s, 2),
            "learning_rate": optimizer.learning_rate,
            "train_nats": interval_loss / max(interval_n, 1),
            "val_nats": nats,
            "val_bits": nats / math.log(2),
            "val_tokens": min(len(ids["validation"]) - 1, limit or len(ids["validation"])),
        }
        interval_loss, interval_n = 0.0, 0
        curve.append(row)
        _write_curve(curve_path, curve)
        progress.log(
            f"step {step}/{cfg.steps}  epoch {epoch}  train {row['train_nats']:.4f}  "
            f"val {nats:.4f} nats ({row['val_bits']:.3f} bits)/{cfg.level}  "
            f"{clock.train_s / 60:.1f} min training, {clock.cpu_s / 60:.1f} CPU-min"
        )
        return row

    def checkpoint() -> None:
        lm.save(
            path,
            extra={
                "training": {
                    "step": step,
                    "epoch": epoch,
                    "batch": batch_in_epoch,
                    "train_s": clock.train_s,
                    "curve": curve,
                }
            },
        )

    with progress:
        while step < cfg.steps:
            if cfg.budget_minutes and clock.train_s >= cfg.budget_minutes * 60:
                stopped_by_budget = True
                progress.log(f"time budget of {cfg.budget_minutes} min reached at step {step}")
                break
            try:
                x, y = next(iterator)
            except StopIteration:
                epoch, batch_in_epoch = epoch + 1, 0
                reset_states(model)
                batches = epoch_batches(epoch)
                iterator = iter(batches)
                continue
            t0 = time.perf_counter()
            model.train()
            with autocast:
                logits = model(x, training=True)  # (B, T, V)
            loss = loss_fn(y, logits.float())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            clock.train_s += time.perf_counter() - t0
            if not math.isfinite(value):
                raise FloatingPointError(f"the training loss became {value} at step {step}")
            step, batch_in_epoch = step + 1, batch_in_epoch + 1
            tokens += y.numel()
            interval_loss, interval_n = interval_loss + value, interval_n + 1
            progress.update(step, value, clock)
            if verbose > 1 and step % 50 == 0:
                progress.log(
                    f"step {step}  loss {value:.4f}  lr {optimizer.learning_rate:.2e}  "
                    f"{clock.train_s / max(step - start_step, 1):.2f} s/step wall, "
                    f"{clock.cpu_s / max(step - start_step, 1):.2f} s/step CPU"
                )
            if on_step is not None:
                on_step(step, value)
            if cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.steps:
                evaluate_now()
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                checkpoint()
    model.eval()
    final = evaluate_now(final=True)
    validation = _figures(final["val_nats"], len(ids["validation"]) - 1)
    test = (
        _figures(evaluate_ids(model, ids["test"]), len(ids["test"]) - 1) if "test" in ids else None
    )
    result = TrainResult(
        path=path,
        config=cfg,
        steps=step,
        tokens=tokens,
        train_s=clock.train_s,
        wall_s=clock.wall_s,
        cpu_s=clock.cpu_s,
        engine=engine,
        precision=precision,
        validation=validation,
        test=test,
        curve=curve,
        stopped_by_budget=stopped_by_budget,
    )
    lm.save(
        path,
        extra={
            "training": {
                "step": step,
                "epoch": epoch,
                "batch": batch_in_epoch,
                "train_s": clock.train_s,
                "curve": curve,
            },
            "results": result.summary(),
            "data": data or {},
        },
    )
    say(result_line(result))
    say(
        f"{step} steps, {tokens:,} tokens in {clock.train_s / 60:.1f} min of training "
        f"({clock.wall_s / 60:.1f} min with evaluation, {clock.cpu_s / 60:.1f} CPU-min); "
        f"saved {path}"
    )
    return result


def result_line(result: TrainResult) -> str:
    """``validation … nats/char (… bits, perplexity …); test …`` of a run."""
    unit = result.config.level

    def part(name: str, r: dict[str, float]) -> str:
        return (
            f"{name} {r['nats']:.4f} nats/{unit} ({r['bits']:.3f} bits, perplexity "
            f"{r['perplexity']:.2f})"
        )

    test = part("test", result.test) if result.test else "no test split"
    return f"{part('validation', result.validation)}; {test}"


def _figures(nats: float, tokens: int) -> dict[str, float]:
    return {
        "nats": nats,
        "bits": nats / math.log(2),
        "perplexity": math.exp(nats),
        "tokens": tokens,
    }


def _compile(lm: LanguageModel, cfg: TextgenConfig) -> None:
    # The loss goes in a one-element list: a single serialised loss (a dict) in a model file is
    # read back by ``compile`` as a per-output dict and fails to load (a library bug, reported).
    lm.model.compile(
        optimizer=make_optimizer(cfg),
        loss=[SparseCategoricalCrossentropy(from_logits=True)],
        device="cpu",
    )


def _resume(path: str | Path, cfg: TextgenConfig) -> LanguageModel:
    """The checkpoint's model, compiled, with its optimiser state where it can be restored."""
    saved = LanguageModel.load(path, compile=False)
    keys = ("level", "max_tokens", "embedding_dim", "units", "layers", "tie_weights")
    changed = [k for k in keys if getattr(saved.config, k) != getattr(cfg, k)]
    if changed:
        raise ValueError(f"resume: the checkpoint {path} differs from the config in {changed}")
    if not cfg.tie_weights:
        lm = LanguageModel.load(path, compile=True)
        lm.config = cfg
        if lm.model.optimizer is not None:
            return lm
    # Tied weights (or no optimiser in the file): fresh Adam moments, the schedule's position kept.
    saved.config = cfg
    _compile(saved, cfg)
    saved.model.optimizer.iterations = int(saved.info.get("training", {}).get("step", 0))
    return saved


def _write_curve(path: Path, rows: list[dict[str, float]]) -> None:
    with atomic_write(path, "w") as fh:
        writer = csv.DictWriter(fh, fieldnames=CURVE_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k) for k in CURVE_FIELDS})


class _Progress:
    """A live bar on a terminal (step, loss, speed); plain lines otherwise."""

    def __init__(self, console: Console, total: int, done: int, enabled: bool) -> None:
        self.console, self.enabled = console, enabled
        self.bar = None
        if enabled and console.is_terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("train"),
                MofNCompleteColumn(),
                BarColumn(bar_width=24),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=console,
                transient=True,
            )
            self.task = self.bar.add_task("", total=total, completed=done, info="")
        self._last = 0.0

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()

    def update(self, step: int, loss: float, clock: _Clock) -> None:
        if self.bar is None:
            return
        now = time.perf_counter()
        if now - self._last < 0.2:
            return
        self._last = now
        self.bar.update(self.task, completed=step, info=f"loss {loss:.4f}")

    def log(self, line: str) -> None:
        if self.enabled:
            self.console.print(line, soft_wrap=True)
