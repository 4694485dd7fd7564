"""Lose nothing of the user's: lstmkit deletes only files it wrote, and killed writes leave
nothing behind once the next write to the same target has run.

* ``BackupAndRestore``: a ``backup_dir`` holding other files is refused, or (when allowed) left
  byte for byte as it was after training ends, is interrupted and resumed, or fails; the folder
  goes only when lstmkit made it and it is empty.
* ``atomic_write``: temporary files of dead writers are removed by the next write, never those
  of a live one; kill -9 at random moments of real saves (forked writers, many times) leaves
  every target loadable with the right weights and, after one more save, no temporary file.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lstmkit import folders, utils
from lstmkit.callbacks import BackupAndRestore, LambdaCallback
from lstmkit.layers import LSTM, Dense, Dropout, Embedding
from lstmkit.models import Sequential
from lstmkit.utils import set_random_seed

SCRIPT = Path(__file__).parent / "scripts" / "kill_during_saves.py"
TARGETS = ("backup.lstmkit", "model.lstmkit", "model.weights.safetensors")


class Interrupt(Exception):
    pass


def _model() -> Sequential:
    model = Sequential([Embedding(12, 4), LSTM(5), Dropout(0.4), Dense(1, "sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def _task() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.integers(1, 12, size=(24, 5))
    return x, (x == 3).any(1).astype(np.float32)


def _users_files(folder: Path) -> dict[str, str]:
    """The user's own files (and a subfolder) in ``folder``; returns their digests."""
    (folder / "sub").mkdir(parents=True)
    files = {
        "notes.txt": b"my notes\n",
        "data.csv": os.urandom(3000),
        "sub/keep.bin": os.urandom(100),
        "backup.lstmkit.bak": b"not lstmkit's",
    }
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    return _digests(folder)


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _foreign_only(folder: Path) -> dict[str, str]:
    return {
        k: v for k, v in _digests(folder).items() if k not in {"backup.lstmkit", folders.MARKER}
    }


# -- BackupAndRestore and the user's files -------------------------------------------------------


def test_a_backup_dir_holding_other_files_is_refused_before_anything_is_written(tmp_path):
    backup_dir = tmp_path / "shared"
    before = _users_files(backup_dir)
    x, y = _task()
    model = _model()
    with pytest.raises(ValueError) as err:
        model.fit(x, y, epochs=2, verbose=0, callbacks=[BackupAndRestore(backup_dir)])
    message = str(err.value)
    assert "backup_dir" in message and str(backup_dir) in message
    assert "notes.txt" in message and "data.csv" in message and "sub" in message
    assert "allow_other_files=True" in message
    assert _digests(backup_dir) == before  # byte for byte; no backup written
    assert sorted(os.listdir(backup_dir)) == ["backup.lstmkit.bak", "data.csv", "notes.txt", "sub"]
    assert model.optimizer.iterations == 0  # refused at the start, not after training
    with pytest.raises(ValueError, match="is a file"):
        _model().fit(x, y, verbose=0, callbacks=[BackupAndRestore(backup_dir / "notes.txt")])


def test_a_shared_backup_dir_keeps_the_users_files_when_training_ends(tmp_path):
    backup_dir = tmp_path / "shared"
    before = _users_files(backup_dir)
    seen: list[bool] = []
    watch = LambdaCallback(
        on_epoch_end=lambda e, logs: seen.append((backup_dir / "backup.lstmkit").is_file())
    )
    x, y = _task()
    cb = BackupAndRestore(backup_dir, allow_other_files=True)
    _model().fit(x, y, epochs=2, verbose=0, callbacks=[cb, watch])
    assert seen == [True, True]  # it did back up there
    assert _digests(backup_dir) == before  # the backup is gone, the user's files are not
    assert sorted(os.listdir(backup_dir)) == ["backup.lstmkit.bak", "data.csv", "notes.txt", "sub"]


def test_a_shared_backup_dir_survives_a_failure_and_a_resume_byte_for_byte(tmp_path):
    backup_dir = tmp_path / "shared"
    before = _users_files(backup_dir)
    x, y = _task()
    set_random_seed(3)
    straight = _model()
    straight.fit(x, y, batch_size=8, epochs=4, verbose=0)

    def stop_at_2(epoch: int, logs: dict | None) -> None:
        if epoch == 2:
            raise Interrupt

    set_random_seed(3)
    cb = BackupAndRestore(backup_dir, allow_other_files=True)
    with pytest.raises(Interrupt):
        _model().fit(x, y, batch_size=8, epochs=4, verbose=0,
                     callbacks=[cb, LambdaCallback(on_epoch_begin=stop_at_2)])  # fmt: skip
    assert (backup_dir / "backup.lstmkit").is_file()  # kept for the resume
    assert _foreign_only(backup_dir) == before
    # Without the flag, the same folder is refused even with a backup in it.
    with pytest.raises(ValueError, match="allow_other_files"):
        _model().fit(
            x, y, batch_size=8, epochs=4, verbose=0, callbacks=[BackupAndRestore(backup_dir)]
        )
    set_random_seed(99)
    resumed = _model()
    h = resumed.fit(x, y, batch_size=8, epochs=4, verbose=0, callbacks=[cb])
    assert h.epoch == [2, 3]  # it resumed (Keras's semantics, unchanged)
    assert resumed.training_state.resumed and resumed.training_state.epoch == 2
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert _digests(backup_dir) == before and not (backup_dir / "backup.lstmkit").exists()


def test_the_folder_goes_only_if_lstmkit_made_it_and_it_is_empty(tmp_path):
    x, y = _task()
    made = tmp_path / "made" / "backup"
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(made)])
    assert not made.exists() and (tmp_path / "made").is_dir()  # (only the folder it made)

    users = tmp_path / "users-empty-folder"
    users.mkdir()
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(users)])
    assert users.is_dir() and os.listdir(users) == []

    # lstmkit made it, but the user put a file there during training: the folder stays.
    late = tmp_path / "late"
    drop = LambdaCallback(on_epoch_end=lambda e, logs: (late / "mine.txt").write_text("mine"))
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(late), drop])
    assert (late / "mine.txt").read_text() == "mine"
    assert sorted(os.listdir(late)) == [folders.MARKER, "mine.txt"]

    # delete_checkpoint=False keeps the backup (Keras); the marker is recognised later.
    kept = tmp_path / "kept"
    cb = BackupAndRestore(kept, delete_checkpoint=False)
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    assert sorted(os.listdir(kept)) == [folders.MARKER, "backup.lstmkit"]
    cb.delete_backup()
    assert not kept.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _left_over(target: Path, pid: int, host: str | None = None) -> Path:
    host = host or utils._HOST
    path = target.parent / f".{target.name}.{utils.TEMP_TAG}-{host}-{pid}-abcd1234.tmp"
    path.write_bytes(b"half a model")
    return path


def test_left_overs_of_a_killed_backup_are_recognised_and_removed(tmp_path):
    backup_dir = tmp_path / "b"
    backup_dir.mkdir()
    stale = _left_over(backup_dir / "backup.lstmkit", _dead_pid())
    x, y = _task()
    _model().fit(x, y, epochs=1, verbose=0, callbacks=[BackupAndRestore(backup_dir)])
    assert not stale.exists()  # not "foreign": it is lstmkit's own debris
    assert backup_dir.is_dir() and os.listdir(backup_dir) == []  # the user's (empty) folder


# -- atomic_write's temporary files ---------------------------------------------------------------


def test_only_temporary_files_of_gone_writers_are_removed(tmp_path):
    target = tmp_path / "model.lstmkit"
    dead = _left_over(target, _dead_pid())
    live = _left_over(target, os.getpid())  # a write in progress in this process
    elsewhere = _left_over(target, 1, host="otherhost")  # another machine's: can't tell
    old = _left_over(target, 1, host="otherhost2")
    day_ago = time.time() - utils.STALE_AFTER_S - 60
    os.utime(old, (day_ago, day_ago))
    legacy_old = tmp_path / ".model.lstmkit.k3j2h1g0.tmp"  # earlier lstmkit's name
    legacy_new = tmp_path / ".model.lstmkit.0a1b2c3d.tmp"
    for p in (legacy_old, legacy_new):
        p.write_bytes(b"x")
    os.utime(legacy_old, (time.time() - 7200, time.time() - 7200))
    other_target = _left_over(tmp_path / "other.lstmkit", _dead_pid())
    users = [tmp_path / ".model.lstmkit.notes.tmp", tmp_path / "model.lstmkit.tmp"]
    for p in users:
        p.write_bytes(b"mine")
    with utils.atomic_write(target) as fh:
        fh.write(b"new")
    assert target.read_bytes() == b"new"
    gone = {dead, old, legacy_old}
    for p in gone:
        assert not p.exists(), p.name
    for p in (live, elsewhere, legacy_new, other_target, *users):
        assert p.exists(), p.name  # a live writer's, a recent unknown one's, another target's


def test_a_killed_but_unreaped_writer_counts_as_gone(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = _left_over(tmp_path / "m.lstmkit", proc.pid)
        assert utils.remove_left_over_temp_files(tmp_path / "m.lstmkit") == []  # alive
        proc.kill()
        deadline = time.time() + 10
        while Path(f"/proc/{proc.pid}/stat").exists() and time.time() < deadline:
            state = Path(f"/proc/{proc.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            if state == b"Z":
                break
            time.sleep(0.01)
        assert utils.remove_left_over_temp_files(tmp_path / "m.lstmkit") == [stale]  # a zombie
    finally:
        proc.kill()
        proc.wait()


def test_temporary_file_names_say_what_they_are(tmp_path, monkeypatch):
    names: list[str] = []
    real = os.replace

    def spy(src, dst):
        names.append(Path(src).name)
        real(src, dst)

    monkeypatch.setattr(utils.os, "replace", spy)
    with utils.atomic_write(tmp_path / "model.lstmkit") as fh:
        fh.write(b"x")
    (name,) = names
    assert name.startswith(f".model.lstmkit.lstmkit-unfinished-{utils._HOST}-{os.getpid()}-")
    assert name.endswith(".tmp") and utils.is_temp_file(name, ["model.lstmkit"])
    assert not utils.is_temp_file(name, ["other.lstmkit"])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kill_9_at_random_moments_of_saves_leaves_loadable_targets_and_no_debris(tmp_path):
    res = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--kills", "10", "--units", "384"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout)
    assert report["bytes"] > 15e6  # three targets of a ~6M-weight model
    for kill in report["kills"]:
        assert set(kill["targets"].values()) == {"ok"}, kill  # loads, with the right weights
        # A writer removes the dead writers' debris of its target before it writes, so a
        # target never has more than the one file of the last write to it that was killed.
        for target in TARGETS:
            assert sum(f.startswith(f".{target}.") for f in kill["temp_files"]) <= 1, kill
    assert any(k["temp_files"] for k in report["kills"] if k["aimed"])  # kills did hit writes
    assert set(report["final"]["targets"].values()) == {"ok"}
    assert report["final"]["listing"] == sorted(TARGETS)  # and nothing else: no temporary file


# -- the public training state that BackupAndRestore goes through ----------------------------------


def test_the_training_state_interface(tmp_path):
    import doctest

    from lstmkit.models import ModelFileError
    from lstmkit.training import state as state_mod

    assert doctest.testmod(state_mod).failed == 0 and doctest.testmod(folders).failed == 0
    x, y = _task()
    model = _model()
    assert model.training_state is None
    model.fit(x, y, batch_size=8, epochs=2, initial_epoch=1, verbose=0)
    start = model.training_state
    assert (start.epoch, start.batch, start.world_size, start.resumed) == (1, 0, 1, False)
    saved = state_mod.TrainingState(epoch=5, batch=2, data_seed=start.data_seed)
    model.save_training_state(tmp_path / "b.lstmkit", saved)
    other = _model()
    other.fit(x, y, epochs=1, verbose=0)
    restored = other.load_training_state(tmp_path / "b.lstmkit")
    assert restored == state_mod.TrainingState(5, 2, start.data_seed, 1, resumed=True)
    assert other.training_state is restored  # the running fit would continue from there
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ModelFileError, match="2 process"):
        model.save_training_state(tmp_path / "c.lstmkit", saved.__class__(world_size=2))
        other.load_training_state(tmp_path / "c.lstmkit")
    with pytest.raises(ValueError, match="batch must be a non-negative integer, got -1"):
        state_mod.TrainingState.from_json({"epoch": 1, "batch": -1})
