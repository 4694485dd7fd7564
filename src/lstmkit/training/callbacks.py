"""Callbacks with Keras 3's names, arguments and behaviour.

A callback receives ``on_train_begin/end``, ``on_epoch_begin/end(epoch, logs)``,
``on_train_batch_begin/end(batch, logs)``, ``on_test_*`` and ``on_predict_*``; ``self.model``
is the model being trained. ``logs`` holds the epoch's metrics (``loss``, ``accuracy``,
``val_loss``…). Files are written atomically and only by the chief process in distributed
training (``self.model.is_chief``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lstmkit.folders import make_folder, refuse_foreign, remove_own


class Callback:
    """Base class; every hook is a no-op."""

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_begin(self, logs: dict | None = None) -> None: ...
    def on_test_end(self, logs: dict | None = None) -> None: ...
    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_begin(self, logs: dict | None = None) -> None: ...
    def on_predict_end(self, logs: dict | None = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None: ...


class CallbackList(Callback):
    """Dispatches every hook to a list of callbacks, in order."""

    def __init__(
        self, callbacks: list[Callback] | None = None, model: Any = None, **params: Any
    ) -> None:
        super().__init__()
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks: expected Callback instances, got {type(cb).__name__}")
        if model is not None:
            self.set_model(model)
        self.set_params(params)

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        for cb in self.callbacks:
            cb.set_params(params)

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            indexed = "epoch" in name or "batch" in name

            def dispatch(*args: Any, logs: dict | None = None) -> None:
                # Every hook gets its logs positionally, as Keras calls them, so that
                # LambdaCallback(on_epoch_begin=lambda epoch, logs: ...) works.
                head, rest = (args[:1], args[1:]) if indexed else ((), args)
                if rest:
                    logs = rest[0]
                logs = {} if logs is None else logs
                for cb in object.__getattribute__(self, "callbacks"):
                    getattr(cb, name)(*head, logs)

            return dispatch
        return object.__getattribute__(self, name)


class History(Callback):
    """Records every epoch's logs: ``history.history["loss"]`` etc.; returned by ``fit``."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _mode_op(mode: str, monitor: str, argument: str = "mode") -> Callable[[float, float], bool]:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{argument} must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = (
            "max" if any(k in monitor for k in ("acc", "auc", "precision", "recall")) else ("min")
        )
    return (lambda a, b: a > b) if mode == "max" else (lambda a, b: a < b)


class EarlyStopping(Callback):
    """Stop training when ``monitor`` stops improving by ``min_delta`` for ``patience`` epochs;
    optionally restore the best epoch's weights (Keras 3 semantics, incl. ``baseline`` and
    ``start_from_epoch``)."""

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__()
        self.monitor, self.patience, self.verbose = monitor, patience, verbose
        self.baseline, self.restore_best_weights = baseline, restore_best_weights
        self.start_from_epoch = start_from_epoch
        self._better = _mode_op(mode, monitor, "EarlyStopping: mode")
        maximise = self._better(1.0, 0.0)
        self.min_delta = abs(min_delta) * (1 if maximise else -1)
        self.stopped_epoch = 0
        self.best_epoch = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best: float | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.best_epoch = 0

    def _improved(self, current: float, reference: float | None) -> bool:
        if reference is None:
            return True
        return self._better(current - self.min_delta, reference)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None:
            available = ", ".join(sorted(logs or {}))
            raise ValueError(
                f"EarlyStopping: monitor {self.monitor!r} is not in the logs "
                f"(available: {available})"
            )
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = _copy_state(self.model)
        self.wait += 1
        if self._improved(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = _copy_state(self.model)
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(
                    f"Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.load_state_dict(self.best_weights)


def _copy_state(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after every epoch, or only when ``monitor`` improves
    (``save_best_only``). ``filepath`` may contain ``{epoch}`` (1-based, Keras's convention)
    and any log key, e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.lstmkit"``."""

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor, self.verbose = monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(
                f"ModelCheckpoint: save_freq must be 'epoch' or a positive "
                f"integer (batches), got {save_freq!r}"
            )
        self.save_freq = save_freq
        self._better = _mode_op(mode, monitor, "ModelCheckpoint: mode")
        self.best = initial_value_threshold
        self._batches_seen = 0
        self._epoch = 0

    def _path(self, epoch: int, logs: dict | None) -> str:
        try:
            return self.filepath.format(epoch=epoch + 1, **(logs or {}))
        except KeyError as e:
            raise ValueError(
                f"ModelCheckpoint: filepath {self.filepath!r} refers to {e} which "
                f"is not in the logs ({', '.join(sorted(logs or {}))})"
            ) from None

    def _save(self, epoch: int, logs: dict | None) -> None:
        if not getattr(self.model, "is_chief", True):
            return
        if self.save_best_only:
            current = (logs or {}).get(self.monitor)
            if current is None:
                raise ValueError(
                    f"ModelCheckpoint: monitor {self.monitor!r} is not in the logs "
                    f"(available: {', '.join(sorted(logs or {}))})"
                )
            if self.best is not None and not self._better(current, self.best):
                return
            if self.verbose:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best} to "
                    f"{current:.5f}, saving model"
                )
            self.best = current
        path = self._path(epoch, logs)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if isinstance(self.save_freq, int):
            self._batches_seen += 1
            if self._batches_seen % self.save_freq == 0:
                self._save(self._epoch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.save_freq == "epoch":
            self._save(epoch, logs)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by
    ``min_delta`` for ``patience`` epochs; wait ``cooldown`` epochs after a reduction; never go
    below ``min_lr``."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        self.monitor, self.factor, self.patience, self.verbose = monitor, factor, patience, verbose
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self._better = _mode_op(mode, monitor, "ReduceLROnPlateau: mode")
        self._maximise = self._better(1.0, 0.0)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.best: float | None = None
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        logs["learning_rate"] = opt.learning_rate
        current = logs.get(self.monitor)
        if current is None:
            raise ValueError(
                f"ReduceLROnPlateau: monitor {self.monitor!r} is not in the logs "
                f"(available: {', '.join(sorted(logs))})"
            )
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        delta = self.min_delta if self._maximise else -self.min_delta
        if self.best is None or self._better(current - delta, self.best):
            self.best = current
            self.wait = 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            old = opt.learning_rate
            if old > self.min_lr:
                new = max(old * self.factor, self.min_lr)
                opt.learning_rate = new
                if self.verbose:
                    print(
                        f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}."
                    )
                self.cooldown_counter = self.cooldown
                self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch's start: ``schedule(epoch, lr) -> new lr``."""

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0) -> None:
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        lr = float(self.schedule(epoch, self.model.optimizer.learning_rate))
        if not math.isfinite(lr):
            raise ValueError(f"LearningRateScheduler: schedule returned {lr} at epoch {epoch}")
        self.model.optimizer.learning_rate = lr
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")


class CSVLogger(Callback):
    """Write one CSV row per epoch (``epoch`` then the sorted log keys); ``append`` continues an
    existing file. Each row is flushed so that a killed run keeps its history."""

    def __init__(
        self, filename: str | os.PathLike[str], separator: str = ",", append: bool = False
    ) -> None:
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self._keys: list[str] | None = None
        self._file: io.TextIOBase | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not getattr(self.model, "is_chief", True):
            return
        exists = self.append and os.path.exists(self.filename)
        if exists:
            with open(self.filename, newline="") as fh:
                header = next(csv.reader(fh, delimiter=self.sep), None)
            self._keys = header[1:] if header else None
        Path(self.filename).parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.filename, "a" if exists else "w", newline="")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._file is None:
            return
        logs = logs or {}
        writer = csv.writer(self._file, delimiter=self.sep)
        if self._keys is None:
            self._keys = sorted(logs)
            writer.writerow(["epoch", *self._keys])
        writer.writerow([epoch, *(logs.get(k, "NA") for k in self._keys)])
        self._file.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    _HOOKS = (
        "on_train_begin",
        "on_train_end",
        "on_epoch_begin",
        "on_epoch_end",
        "on_train_batch_begin",
        "on_train_batch_end",
        "on_test_begin",
        "on_test_end",
        "on_predict_begin",
        "on_predict_end",
    )

    def __init__(self, **hooks: Callable[..., None]) -> None:
        super().__init__()
        for name, fn in hooks.items():
            if name not in self._HOOKS:
                raise ValueError(
                    f"LambdaCallback: unknown hook {name!r}; expected one of "
                    f"{', '.join(self._HOOKS)}"
                )
            if fn is not None:
                setattr(self, name, fn)


class BackupAndRestore(Callback):
    """Survive interruption: at each epoch end (or every ``save_freq`` batches) write a backup
    of the model, the optimiser, the epoch, the batch position and every random generator's
    state into ``backup_dir``; when ``fit`` starts again with the same callback it restores all
    of that and continues where the backup was taken. With ``delete_checkpoint`` the backup is
    removed after a successful end of training.

    The backup is one model file, ``backup_dir/backup.lstmkit`` (written atomically, through
    the model's public ``save_training_state`` / ``load_training_state``); a backup that does
    not belong to this model, or is corrupted, raises an error rather than silently starting
    over.

    lstmkit deletes only what it wrote (:mod:`lstmkit.folders`): ``backup.lstmkit`` and the
    temporary files of its unfinished writes, and ``backup_dir`` itself only when this callback
    created it and nothing else is in it. A ``backup_dir`` that already holds other files is
    refused when training starts, unless ``allow_other_files=True`` (they are then left alone).
    """

    FILES = ("backup.lstmkit",)

    def __init__(
        self,
        backup_dir: str | os.PathLike[str],
        save_freq: str | int = "epoch",
        delete_checkpoint: bool = True,
        *,
        allow_other_files: bool = False,
    ) -> None:
        super().__init__()
        self.backup_dir = Path(backup_dir)
        if save_freq != "epoch" and not (
            isinstance(save_freq, int) and not isinstance(save_freq, bool) and save_freq > 0
        ):
            raise ValueError(
                f"BackupAndRestore: save_freq must be 'epoch' or a positive "
                f"integer, got {save_freq!r}"
            )
        self.save_freq, self.delete_checkpoint = save_freq, delete_checkpoint
        self.allow_other_files = bool(allow_other_files)
        self._epoch = 0
        self._batches = 0

    @property
    def _model_file(self) -> Path:
        return self.backup_dir / self.FILES[0]

    def check_backup_dir(self) -> None:
        """Raise ``ValueError`` if ``backup_dir`` is a file, or holds files lstmkit did not
        write and ``allow_other_files`` is false (``fit`` calls this before anything else)."""
        if self.allow_other_files:
            if self.backup_dir.exists() and not self.backup_dir.is_dir():
                raise ValueError(f"BackupAndRestore: backup_dir {self.backup_dir} is a file")
            return
        refuse_foreign(
            self.backup_dir,
            self.FILES,
            what="BackupAndRestore: backup_dir",
            flag="BackupAndRestore(..., allow_other_files=True)",
        )

    def delete_backup(self) -> None:
        """Delete the backup (what ``delete_checkpoint`` does after a successful ``fit``):
        lstmkit's own files only, and ``backup_dir`` if this callback made it and it is empty."""
        remove_own(self.backup_dir, self.FILES)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.check_backup_dir()
        if self._model_file.exists():
            self.model.load_training_state(self._model_file)

    def _backup(self, epoch: int, batch_in_epoch: int) -> None:
        if not getattr(self.model, "is_chief", True):
            return
        make_folder(self.backup_dir)
        state = dataclasses.replace(
            self.model.training_state, epoch=epoch, batch=batch_in_epoch, resumed=False
        )
        self.model.save_training_state(self._model_file, state)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if isinstance(self.save_freq, int):
            self._batches += 1
            if self._batches % self.save_freq == 0:
                self._backup(self._epoch, batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._backup(epoch + 1, 0)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.delete_checkpoint and getattr(self.model, "is_chief", True):
            self.delete_backup()
