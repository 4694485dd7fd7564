"""Every callback's effect on a real ``fit``.

Where a callback reacts to a monitored value, the value is scripted: a small callback placed
before it overwrites ``logs["val_loss"]`` with a fixed sequence, so the expected stop epoch,
saved files or learning rates follow by hand from Keras 3's rules (quoted in each test).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit.callbacks import (
    BackupAndRestore,
    Callback,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from lstmkit.layers import LSTM, Dense, Dropout, Embedding, Input
from lstmkit.models import Sequential, load_model
from lstmkit.training import optimizers as O
from lstmkit.utils import set_random_seed


class Script(Callback):
    """Overwrite ``logs[key]`` at each epoch end with the next scripted value."""

    def __init__(self, values: list[float], key: str = "val_loss") -> None:
        super().__init__()
        self.values, self.key = values, key

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs[self.key] = self.values[epoch]


class Snapshots(Callback):
    """The model's weights at the end of every epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.weights: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.weights.append(self.model.get_weights())


def data(n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return x, (x.sum(1, keepdims=True) > 0).astype(np.float32)


def small_model(lr: float = 0.1, seed: int = 0) -> Sequential:
    set_random_seed(seed)
    model = Sequential([Input(shape=(3,)), Dense(4, activation="tanh"), Dense(1, "sigmoid")])
    model.compile(optimizer=O.SGD(lr), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(a, b))


# -- EarlyStopping -----------------------------------------------------------------------------


def test_early_stopping_stops_after_patience() -> None:
    # Keras 3: wait += 1 each epoch, reset on improvement; stop when wait >= patience.
    # val_loss 1.0, 0.8 (best), 0.9 (wait 1), 0.85 (wait 2 -> stop at epoch 3).
    model = small_model()
    x, y = data()
    stop = EarlyStopping(patience=2)
    h = model.fit(x, y, epochs=10, verbose=0, callbacks=[Script([1.0, 0.8, 0.9, 0.85, 0.7]), stop])
    assert h.epoch == [0, 1, 2, 3]
    assert stop.stopped_epoch == 3 and stop.best_epoch == 1 and stop.best == 0.8


def test_early_stopping_min_delta_mode_and_baseline() -> None:
    x, y = data()
    # mode max (auto for "acc"): 0.5, 0.6, 0.605 (< min_delta 0.01 better: wait 1 -> stop).
    model = small_model()
    h = model.fit(x, y, epochs=10, verbose=0, callbacks=[
        Script([0.5, 0.6, 0.605, 0.9], key="val_acc"),
        EarlyStopping(monitor="val_acc", min_delta=0.01, patience=1),
    ])  # fmt: skip
    assert h.epoch == [0, 1, 2]
    # Keras 3: an improvement that does not beat the baseline does not reset wait. A flat 1.0
    # with patience 2 stops at epoch 2 without a baseline, at epoch 1 with baseline 0.5.
    for baseline, epochs in ((None, [0, 1, 2]), (0.5, [0, 1])):
        model = small_model()
        h = model.fit(x, y, epochs=10, verbose=0, callbacks=[
            Script([1.0] * 10), EarlyStopping(patience=2, baseline=baseline),
        ])  # fmt: skip
        assert h.epoch == epochs, baseline
    with pytest.raises(ValueError, match=r"monitor 'val_nope' is not in the logs.*loss"):
        small_model().fit(x, y, epochs=1, verbose=0, callbacks=[EarlyStopping("val_nope")])


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_restore_best_weights(restore: bool) -> None:
    model = small_model()
    x, y = data()
    snaps = Snapshots()
    model.fit(x, y, epochs=10, verbose=0, callbacks=[
        snaps, Script([1.0, 0.5, 0.9, 0.8, 0.7]),
        EarlyStopping(patience=3, restore_best_weights=restore),
    ])  # fmt: skip
    assert len(snaps.weights) == 5  # stopped at epoch 4 (wait 3 after the best, epoch 1)
    assert not same(snaps.weights[1], snaps.weights[4])
    assert same(model.get_weights(), snaps.weights[1 if restore else 4])


# -- ModelCheckpoint ---------------------------------------------------------------------------


def test_model_checkpoint_save_best_only_with_formatted_path(tmp_path: Path) -> None:
    model = small_model()
    x, y = data()
    snaps = Snapshots()
    path = tmp_path / "ckpt-{epoch:02d}-{val_loss:.2f}.lstmkit"
    model.fit(x, y, epochs=4, verbose=0, callbacks=[
        snaps, Script([0.5, 0.7, 0.3, 0.4]), ModelCheckpoint(path, save_best_only=True),
    ])  # fmt: skip
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["ckpt-01-0.50.lstmkit", "ckpt-03-0.30.lstmkit"]  # {epoch} is 1-based
    for name, epoch in (("ckpt-01-0.50.lstmkit", 0), ("ckpt-03-0.30.lstmkit", 2)):
        loaded = load_model(tmp_path / name)
        assert same(loaded.get_weights(), snaps.weights[epoch])
        np.testing.assert_allclose(
            loaded.predict(x, verbose=0),
            _predict_with(model, snaps.weights[epoch], x),
            rtol=1e-6,
        )


def _predict_with(model: Sequential, weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    current = model.get_weights()
    model.set_weights(weights)
    out = model.predict(x, verbose=0)
    model.set_weights(current)
    return out


def test_model_checkpoint_every_epoch_and_weights_only(tmp_path: Path) -> None:
    model = small_model()
    x, y = data()
    snaps = Snapshots()
    model.fit(x, y, epochs=3, verbose=0, validation_data=(x, y), callbacks=[
        snaps, ModelCheckpoint(tmp_path / "m{epoch}.lstmkit"),
        ModelCheckpoint(tmp_path / "w{epoch}.safetensors", save_weights_only=True),
    ])  # fmt: skip
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"m{e}.lstmkit" for e in (1, 2, 3)] + [f"w{e}.safetensors" for e in (1, 2, 3)]
    fresh = small_model(seed=9)
    assert not same(fresh.get_weights(), snaps.weights[1])
    fresh.load_weights(tmp_path / "w2.safetensors")
    assert same(fresh.get_weights(), snaps.weights[1])
    with pytest.raises(ValueError, match="refers to 'val_acc' which is not in the logs"):
        small_model().fit(x, y, epochs=1, verbose=0,
                          callbacks=[ModelCheckpoint(tmp_path / "{val_acc}.lstmkit")])  # fmt: skip


# -- ReduceLROnPlateau ---------------------------------------------------------------------------


def test_reduce_lr_on_plateau_reduces_after_patience_down_to_min_lr() -> None:
    # A flat val_loss: epoch 0 sets best; epochs 1, 2 wait -> lr 1.0 · 0.5 at epoch 2; epochs 3, 4
    # wait -> max(0.25, min_lr 0.3) = 0.3 at epoch 4; then it stays at min_lr.
    model = small_model(lr=1.0)
    x, y = data()
    seen: list[float] = []
    h = model.fit(x, y, epochs=7, verbose=0, callbacks=[
        Script([1.0] * 7), ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.3),
        LambdaCallback(on_epoch_end=lambda e, logs: seen.append(
            model.optimizer.learning_rate)),
    ])  # fmt: skip
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.3, 0.3, 0.3]
    # logs["learning_rate"] is the rate during the epoch (before the reduction), as Keras.
    assert h.history["learning_rate"] == [1.0, 1.0, 1.0, 0.5, 0.5, 0.3, 0.3]


def test_reduce_lr_on_plateau_improvement_resets_wait() -> None:
    model = small_model(lr=1.0)
    x, y = data()
    model.fit(x, y, epochs=5, verbose=0, callbacks=[
        Script([1.0, 1.0, 0.5, 0.5, 0.5]), ReduceLROnPlateau(factor=0.1, patience=2),
    ])  # fmt: skip
    # wait: 0, 1, 0 (improved), 1, 2 -> one reduction at epoch 4.
    assert math.isclose(model.optimizer.learning_rate, 0.1)


# -- CSVLogger -----------------------------------------------------------------------------------


def test_csv_logger_rows_and_append(tmp_path: Path) -> None:
    model = small_model()
    x, y = data()
    path = tmp_path / "logs" / "train.csv"
    h1 = model.fit(x, y, epochs=2, verbose=0, validation_split=0.25, callbacks=[CSVLogger(path)])
    h2 = model.fit(x, y, epochs=3, initial_epoch=2, verbose=0, validation_split=0.25,
                   callbacks=[CSVLogger(path, append=True)])  # fmt: skip
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]  # one header, then 0-based epochs
    for row, (h, i) in zip(rows[1:], [(h1, 0), (h1, 1), (h2, 0)]):
        for key, cell in zip(rows[0][1:], row[1:]):
            assert math.isclose(float(cell), h.history[key][i], rel_tol=1e-12)
    model.fit(x, y, epochs=1, verbose=0, validation_split=0.25, callbacks=[CSVLogger(path)])
    with open(path, newline="") as fh:
        assert len(list(csv.reader(fh))) == 2  # append=False starts over


# -- TerminateOnNaN --------------------------------------------------------------------------------


def test_terminate_on_nan_stops_at_the_first_nan_batch(capsys: pytest.CaptureFixture[str]) -> None:
    model = small_model()
    x, y = data()
    x[5, 1] = np.nan  # in batch 2 (batch size 2, no shuffling)
    batches: list[int] = []
    h = model.fit(x, y, batch_size=2, epochs=3, shuffle=False, verbose=0, callbacks=[
        TerminateOnNaN(), LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b)),
    ])  # fmt: skip
    assert batches == [0, 1, 2] and h.epoch == [0]
    assert math.isnan(h.history["loss"][0])
    assert "Invalid loss" in capsys.readouterr().out


def test_terminate_on_nan_with_a_huge_learning_rate() -> None:
    set_random_seed(0)
    model = Sequential([Input(shape=(3,)), Dense(8), Dense(1)])
    model.compile(optimizer=O.SGD(1e12), loss="mse")
    x, y = data()
    count = []
    record = LambdaCallback(on_train_batch_end=lambda b, logs: count.append(logs["loss"]))
    h = model.fit(x, y * 100, batch_size=4, epochs=20, shuffle=False, verbose=0,
                  callbacks=[TerminateOnNaN(), record])  # fmt: skip
    assert not math.isfinite(count[-1]) and all(math.isfinite(v) for v in count[:-1])
    assert len(count) < 80 and len(h.epoch) < 20


# -- BackupAndRestore ------------------------------------------------------------------------------


class Interrupt(Exception):
    pass


def _resumable_model() -> Sequential:
    model = Sequential([Embedding(12, 4), LSTM(5), Dropout(0.4), Dense(1, "sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def _task() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.integers(1, 12, size=(24, 5))
    return x, (x == 3).any(1).astype(np.float32)


def test_backup_and_restore_resumes_where_it_stopped(tmp_path: Path) -> None:
    x, y = _task()
    set_random_seed(3)
    straight = _resumable_model()
    h_straight = straight.fit(x, y, batch_size=8, epochs=4, verbose=0)

    def stop_at_2(epoch: int, logs: dict | None) -> None:
        if epoch == 2:
            raise Interrupt

    set_random_seed(3)
    model = _resumable_model()
    backup = BackupAndRestore(tmp_path / "backup")
    with pytest.raises(Interrupt):
        model.fit(x, y, batch_size=8, epochs=4, verbose=0,
                  callbacks=[backup, LambdaCallback(on_epoch_begin=stop_at_2)])  # fmt: skip
    assert (tmp_path / "backup" / "backup.lstmkit").exists()
    assert not same(model.get_weights(), straight.get_weights())
    # A new process would start from other random states; the backup restores them.
    set_random_seed(99)
    resumed = _resumable_model()
    h = resumed.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[backup])
    assert h.epoch == [2, 3]  # continues from the last finished epoch
    np.testing.assert_allclose(h.history["loss"], h_straight.history["loss"][2:], rtol=1e-6)
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not (tmp_path / "backup").exists()  # delete_checkpoint after a finished run


def test_backup_from_another_model_is_refused(tmp_path: Path) -> None:
    x, y = data()
    backup = BackupAndRestore(tmp_path / "b", delete_checkpoint=False)
    small_model().fit(x, y, epochs=1, verbose=0, callbacks=[backup])
    other = Sequential([Input(shape=(3,)), Dense(2), Dense(1, "sigmoid")])
    other.compile(optimizer="sgd", loss="binary_crossentropy")
    with pytest.raises(ValueError, match="written by a different model"):
        other.fit(x, y, epochs=1, verbose=0, callbacks=[backup])


# -- LambdaCallback, LearningRateScheduler ----------------------------------------------------


def test_lambda_callback_hooks_are_called() -> None:
    model = small_model()
    x, y = data(n=10)
    calls: list[tuple] = []
    cb = LambdaCallback(
        on_train_begin=lambda logs: calls.append(("train_begin",)),
        on_epoch_begin=lambda e, logs: calls.append(("epoch_begin", e)),
        on_train_batch_end=lambda b, logs: calls.append(("batch", b, sorted(logs))),
        on_epoch_end=lambda e, logs: calls.append(("epoch_end", e, sorted(logs))),
        on_train_end=lambda logs: calls.append(("train_end",)),
    )
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[cb])
    batch = [("batch", b, ["accuracy", "loss"]) for b in range(3)]
    assert calls == [
        ("train_begin",),
        ("epoch_begin", 0), *batch, ("epoch_end", 0, ["accuracy", "loss"]),
        ("epoch_begin", 1), *batch, ("epoch_end", 1, ["accuracy", "loss"]),
        ("train_end",),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown hook 'on_epoch_finish'"):
        LambdaCallback(on_epoch_finish=print)


def test_learning_rate_scheduler_sets_each_epochs_rate() -> None:
    model = small_model(lr=0.5)
    x, y = data()
    snaps = Snapshots()
    rates: list[float] = []
    model.fit(x, y, epochs=4, verbose=0, callbacks=[
        LearningRateScheduler(lambda epoch, lr: 0.0 if epoch == 2 else lr * 0.5),
        LambdaCallback(on_epoch_begin=lambda e, logs: rates.append(
            model.optimizer.learning_rate)),
        snaps,
    ])  # fmt: skip
    assert rates == [0.25, 0.125, 0.0, 0.0]
    assert same(snaps.weights[1], snaps.weights[2])  # lr 0 in epoch 2: nothing moved
    assert not same(snaps.weights[0], snaps.weights[1])
    with pytest.raises(ValueError, match="schedule returned nan"):
        small_model().fit(
            x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda e, lr: float("nan"))]
        )


def test_callbacks_must_be_callback_instances() -> None:
    x, y = data()
    with pytest.raises(TypeError, match="expected Callback instances, got function"):
        small_model().fit(x, y, epochs=1, verbose=0, callbacks=[lambda: None])
    assert torch.is_tensor(torch.zeros(1))
