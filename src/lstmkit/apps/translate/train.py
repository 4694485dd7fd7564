"""Training a translation model: vocabularies, data, ``compile`` and ``fit`` with callbacks.

A run lives in one directory::

    config.json         the TranslateConfig (a resumed run must be given the same one)
    spm.de.model, spm.en.model    the vocabularies (trained once, on the training split)
    model.lstmkit       the best model so far by validation BLEU (greedy), with the
                        vocabularies and the config inside (model.assets): all that
                        `lstmkit translate text/evaluate` need
    history.csv         one row per epoch (loss, val_loss, val_bleu, learning rate, minutes)
    state.json          the callbacks' counters and the training time so far
    backup/             BackupAndRestore's backup (every 100 batches and every epoch)

Running the same command again after an interruption continues from the backup: same weights,
optimiser state, data order, random generators and callback counters. A finished run refuses to
start again unless told to start afresh (``fresh``), which deletes these files and nothing else.
A directory that holds other files is refused unless ``allow_other_files`` (``--allow-other-files``)
says to share it; those files are never touched.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lstmkit.apps.translate.config import TranslateConfig
from lstmkit.apps.translate.data import (
    Vocab,
    encode_pairs,
    load_pairs,
    make_loader,
    train_vocabs,
)
from lstmkit.apps.translate.decode import ASSET_FORMAT, Translator
from lstmkit.apps.translate.model import GNMT
from lstmkit.folders import refuse_foreign, remove_own
from lstmkit.training.callbacks import (
    BackupAndRestore,
    Callback,
    CSVLogger,
    EarlyStopping,
    ReduceLROnPlateau,
)
from lstmkit.training.losses import SparseCategoricalCrossentropy
from lstmkit.training.optimizers import Adam
from lstmkit.utils import atomic_write, set_threads


def build_model(cfg: TranslateConfig, src: Vocab, tgt: Vocab) -> GNMT:
    """A compiled :class:`GNMT` for ``cfg`` whose ``assets`` hold the config and vocabularies."""
    model = GNMT(
        src_vocab_size=len(src),
        tgt_vocab_size=len(tgt),
        embed_dim=cfg.embed_dim,
        units=cfg.units,
        encoder_layers=cfg.encoder_layers,
        decoder_layers=cfg.decoder_layers,
        attention=cfg.attention,
        attention_units=cfg.attention_units,
        input_feeding=cfg.input_feeding,
        residual=cfg.residual,
        dropout=cfg.dropout,
        attention_dropout=cfg.attention_dropout,
        word_dropout=cfg.word_dropout,
    )
    model.assets = {
        "app": "lstmkit.translate",
        "format": ASSET_FORMAT,
        "config": cfg.to_dict(),
        "src_spm": src.to_text(),
        "tgt_spm": tgt.to_text(),
    }
    model.compile(
        optimizer=Adam(cfg.learning_rate, global_clipnorm=cfg.clipnorm),
        loss=SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=0, label_smoothing=cfg.label_smoothing
        ),
        device="cpu",
    )
    return model


class ValidationBLEU(Callback):
    """Adds ``val_bleu`` (greedy search, sacreBLEU) to each epoch's logs."""

    def __init__(self, translator: Translator, sources: list[str], references: list[str]):
        super().__init__()
        self.translator, self.sources, self.references = translator, sources, references

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        from lstmkit.apps.translate.evaluate import score

        hyps = [t.text for t in self.translator.translate(self.sources, beam_size=1)]
        if logs is not None:
            logs["val_bleu"] = score(hyps, self.references).bleu


class RunState(Callback):
    """Keeps the best model file, the training clock and the other callbacks' counters.

    * saves ``model.lstmkit`` (without optimiser state) whenever ``val_bleu`` improves;
    * stops training when the next epoch would end after ``max_minutes`` (or at once when
      they are over);
    * writes ``state.json`` at each epoch end and restores it (with the counters of
      ``ReduceLROnPlateau`` and ``EarlyStopping``) when a run resumes from a backup.
    """

    def __init__(
        self,
        out_dir: Path,
        max_minutes: float,
        clock: str,
        watched: dict[str, Callback],
        verbose: int = 1,
    ) -> None:
        super().__init__()
        self.out_dir, self.max_seconds, self.clock = out_dir, max_minutes * 60.0, clock
        self.watched, self.verbose = watched, verbose
        self.best: float | None = None
        self.best_epoch = -1
        self.before = {"wall": 0.0, "cpu": 0.0}  # seconds spent in earlier sessions
        self.epoch_seconds: list[float] = []  # on the budget's clock

    @property
    def path(self) -> Path:
        return self.out_dir / "state.json"

    @staticmethod
    def _now() -> dict[str, float]:
        return {"wall": time.perf_counter(), "cpu": time.process_time()}

    def elapsed(self, clock: str | None = None) -> float:
        """Training seconds so far (all sessions) on ``clock`` (default: the budget's)."""
        clock = clock or self.clock
        return self.before[clock] + self._now()[clock] - self._start[clock]

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._start = self._epoch_start = self._now()
        if self.model.training_state.resumed:  # BackupAndRestore (before) restored a backup
            if self.path.exists():
                state = json.loads(self.path.read_text())
                self.best = state.get("best_val_bleu")
                self.best_epoch = state.get("best_epoch", -1)
                self.before = {k: float(state.get(f"{k}_seconds", 0.0)) for k in ("wall", "cpu")}
                self.epoch_seconds = list(state.get("epoch_seconds", []))
                for name, attrs in state.get("callbacks", {}).items():
                    for key, value in attrs.items():
                        setattr(self.watched[name], key, value)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_start = self._now()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.max_seconds and self.elapsed() > self.max_seconds:
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        now = self._now()
        self.epoch_seconds.append(now[self.clock] - self._epoch_start[self.clock])
        logs["minutes"] = self.elapsed("wall") / 60.0
        logs["cpu_minutes"] = self.elapsed("cpu") / 60.0
        logs["epoch_wall_s"] = now["wall"] - self._epoch_start["wall"]
        logs["epoch_cpu_s"] = now["cpu"] - self._epoch_start["cpu"]
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = logs.get("val_bleu")
        if current is not None and (self.best is None or current > self.best):
            self.best, self.best_epoch = current, epoch
            self.model.save(self.out_dir / "model.lstmkit", include_optimizer=False)
            if self.verbose:
                print(f"epoch {epoch + 1}: val_bleu improved to {current:.2f}; saved model.lstmkit")
        next_end = self.elapsed() + (self.epoch_seconds[-1] if self.epoch_seconds else 0.0)
        if self.max_seconds and next_end > self.max_seconds:
            if self.verbose:
                print(
                    f"epoch {epoch + 1}: stopping, another epoch would pass the time limit of "
                    f"{self.max_seconds / 60:.0f} minutes ({self.clock} clock)"
                )
            self.model.stop_training = True
        self.save(finished=False)

    def save(self, finished: bool) -> None:
        counters = {
            name: {
                k: getattr(cb, k) for k in ("best", "wait", "cooldown_counter") if hasattr(cb, k)
            }
            for name, cb in self.watched.items()
        }
        state = {
            "finished": finished,
            "best_val_bleu": self.best,
            "best_epoch": self.best_epoch,
            "wall_seconds": self.elapsed("wall"),
            "cpu_seconds": self.elapsed("cpu"),
            "epoch_seconds": self.epoch_seconds,
            "callbacks": counters,
        }
        _write_json(self.path, state)


@dataclass
class TrainResult:
    model_path: Path
    best_val_bleu: float | None
    best_epoch: int
    epochs_run: int
    minutes: float  # wall clock, all sessions
    cpu_minutes: float  # this process's CPU time, all sessions
    resumed: bool


# What a run writes in its directory (module docstring); nothing else there is lstmkit's.
RUN_FILES = (
    "config.json",
    "state.json",
    "history.csv",
    "model.lstmkit",
    "spm.de.model",
    "spm.en.model",
)
BACKUP_DIR = "backup"


def _write_json(path: Path, value: Any) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(json.dumps(value, indent=1))


def _write_bytes(path: Path, blob: bytes) -> None:
    with atomic_write(path) as fh:
        fh.write(blob)


def _check_run_dir(
    out_dir: Path, cfg: TranslateConfig, fresh: bool, backup: BackupAndRestore
) -> bool:
    """Prepare ``out_dir``; True when a run is resumed from its backup.

    A directory holding files that a run does not write is refused (before anything is
    deleted) unless ``backup.allow_other_files``; ``fresh`` deletes only the run's own files
    and its backup (:mod:`lstmkit.folders`)."""
    if not backup.allow_other_files:
        refuse_foreign(
            out_dir,
            (*RUN_FILES, BACKUP_DIR),
            what="translate: the run directory --out",
            flag="--allow-other-files",
        )
    elif out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"translate: the run directory --out {out_dir} is a file")
    if (out_dir / BACKUP_DIR).exists() and not (out_dir / BACKUP_DIR).is_dir():
        raise ValueError(f"translate: {out_dir / BACKUP_DIR} is a file, not a backup folder")
    backup.check_backup_dir()
    if fresh:
        remove_own(out_dir, RUN_FILES)  # (out_dir itself stays: the new run goes there)
        backup.delete_backup()
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = out_dir / "config.json"
    state_path = out_dir / "state.json"
    if cfg_path.exists():
        stored = json.loads(cfg_path.read_text())
        if stored != cfg.to_dict():
            diff = sorted(
                k
                for k in stored.keys() | cfg.to_dict().keys()
                if stored.get(k) != cfg.to_dict().get(k)
            )
            raise ValueError(
                f"{out_dir} holds a run with a different configuration (differs in: "
                f"{', '.join(diff)}); use another --out, or --fresh to start over there"
            )
        if state_path.exists() and json.loads(state_path.read_text()).get("finished"):
            raise ValueError(
                f"{out_dir} holds a finished run ({out_dir / 'model.lstmkit'}); use --fresh to "
                f"train again there, or another --out"
            )
    _write_json(cfg_path, cfg.to_dict())
    return (out_dir / BACKUP_DIR / "backup.lstmkit").exists()


# The settings a run started from another model (``init_from``) must share with it.
_INIT_FIELDS = (
    "src_vocab_size",
    "tgt_vocab_size",
    "spm_model_type",
    "embed_dim",
    "units",
    "encoder_layers",
    "decoder_layers",
    "attention",
    "attention_units",
    "input_feeding",
    "residual",
)


def _initial_model(cfg: TranslateConfig) -> Translator:
    """The model of ``cfg.init_from``, checked to have ``cfg``'s architecture."""
    path = Path(cfg.init_from)
    if not path.is_file():
        raise FileNotFoundError(f"init_from: no model file at {path}")
    start = Translator.load(path)
    differ = [
        f"{k} {getattr(start.cfg, k)!r} (here {getattr(cfg, k)!r})"
        for k in _INIT_FIELDS
        if getattr(start.cfg, k) != getattr(cfg, k)
    ]
    if differ:
        raise ValueError(
            f"init_from: {path} was trained with other model or vocabulary settings: "
            + ", ".join(differ)
        )
    return start


def train(
    cfg: TranslateConfig,
    out_dir: str | Path,
    fresh: bool = False,
    verbose: int = 1,
    train_pairs: list[tuple[str, str]] | None = None,
    val_pairs: list[tuple[str, str]] | None = None,
    allow_other_files: bool = False,
) -> TrainResult:
    """Train (or resume training) a model for ``cfg`` in ``out_dir``, on the dictionary's
    splits unless ``train_pairs`` / ``val_pairs`` are given.

    ``out_dir`` must hold nothing but an earlier run's files (:data:`RUN_FILES` and
    ``backup/``) unless ``allow_other_files``; other files are never deleted, ``fresh`` or not.
    """
    set_threads(cfg.threads, "TranslateConfig: threads")
    out_dir = Path(out_dir)
    backup = BackupAndRestore(
        out_dir / BACKUP_DIR, save_freq=100, allow_other_files=allow_other_files
    )
    # The data first: a file it cannot read leaves the run directory untouched.
    train_pairs = load_pairs("train", cfg) if train_pairs is None else list(train_pairs)
    val_pairs = load_pairs("validation", cfg) if val_pairs is None else list(val_pairs)
    if cfg.test_data or cfg.data or cfg.source_file:
        load_pairs("test", cfg)  # readable, and not empty, before hours of training
    resumed = _check_run_dir(out_dir, cfg, fresh, backup)
    torch.manual_seed(cfg.seed)
    src_path, tgt_path = out_dir / "spm.de.model", out_dir / "spm.en.model"
    start = _initial_model(cfg) if cfg.init_from and not resumed else None
    if start is not None:
        src, tgt = start.src, start.tgt
        _write_bytes(src_path, src.proto)
        _write_bytes(tgt_path, tgt.proto)
    elif src_path.exists() and tgt_path.exists():
        src, tgt = Vocab(src_path.read_bytes()), Vocab(tgt_path.read_bytes())
    else:
        src, tgt = train_vocabs(train_pairs, cfg)
        _write_bytes(src_path, src.proto)
        _write_bytes(tgt_path, tgt.proto)
    if verbose:
        print(
            f"{len(train_pairs)} training pairs, {len(val_pairs)} validation pairs; "
            f"vocabularies: {len(src)} {cfg.source_lang}, {len(tgt)} {cfg.target_lang} pieces"
        )
    train_data = make_loader(
        encode_pairs(train_pairs, src, tgt, cfg), cfg.batch_size, True, cfg.seed
    )
    val_data = make_loader(encode_pairs(val_pairs, src, tgt, cfg), 128, False)
    model = build_model(cfg, src, tgt)
    if start is not None:
        model.load_state_dict(start.model.state_dict())
        if verbose:
            print(f"weights and vocabularies from {cfg.init_from}")
    if verbose:
        n = sum(p.numel() for p in model.parameters())
        print(f"model: {n:,} weights; {len(train_data)} batches per epoch")
    translator = Translator(model, src, tgt, cfg)
    plateau = ReduceLROnPlateau(
        "val_loss",
        factor=0.5,
        patience=cfg.lr_patience,
        min_lr=cfg.min_learning_rate,
        verbose=verbose,
    )
    stopping = EarlyStopping("val_loss", patience=cfg.early_stopping or 10**9, verbose=verbose)
    watched: dict[str, Callback] = {"plateau": plateau, "stopping": stopping}
    state = RunState(out_dir, cfg.max_minutes, cfg.clock, watched, verbose)
    callbacks = [
        backup,
        ValidationBLEU(translator, [de for de, _ in val_pairs], [en for _, en in val_pairs]),
        plateau,
        stopping,
        state,
        CSVLogger(out_dir / "history.csv", append=True),
    ]
    history = model.fit(
        train_data,
        validation_data=val_data,
        epochs=cfg.epochs,
        callbacks=callbacks,
        verbose=verbose if verbose else 0,
    )
    state.save(finished=True)
    return TrainResult(
        out_dir / "model.lstmkit",
        state.best,
        state.best_epoch,
        len(history.epoch),
        state.elapsed("wall") / 60.0,
        state.elapsed("cpu") / 60.0,
        resumed,
    )


def describe(result: Any) -> str:
    best = "n/a" if result.best_val_bleu is None else f"{result.best_val_bleu:.2f}"
    return (
        f"best validation BLEU (greedy) {best} at epoch {result.best_epoch + 1}; "
        f"{result.epochs_run} epochs this session; training took {result.minutes:.1f} minutes "
        f"(wall clock) and {result.cpu_minutes:.1f} CPU minutes in all; model: {result.model_path}"
    )
