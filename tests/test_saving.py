"""Model files: round trips, refusals of files that are not lstmkit models, atomic writes.

A round trip must give back the same architecture, weights, compile settings, optimiser state
(continued training equals uninterrupted training) and assets. Loading must never unpickle: a
pickle that would create a marker file if it were ever unpickled is refused and the marker never
appears.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit import utils
from lstmkit.layers import LSTM, Dense, Embedding, Input
from lstmkit.models import Model, ModelFileError, Sequential, load_model, saving
from lstmkit.utils import set_random_seed


def lstm_model(seed: int = 0) -> Sequential:
    set_random_seed(seed)
    return Sequential([Embedding(15, 4, mask_zero=True), LSTM(6), Dense(1, activation="sigmoid")])


def task() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 15, size=(20, 6))
    return x, (x == 4).any(1).astype(np.float32)


def trained(tmp_path: Path) -> tuple[Sequential, Path]:
    model = lstm_model()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    x, y = task()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    path = tmp_path / "model.lstmkit"
    model.save(path)
    return model, path


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


# -- round trips -------------------------------------------------------------------------------


def test_model_file_round_trip(tmp_path: Path) -> None:
    model, path = trained(tmp_path)
    model.assets = {"vocabulary": ["", "[UNK]", "the"], "max_len": 6}
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is Sequential
    assert loaded.get_config() == model.get_config()
    assert same(loaded.get_weights(), model.get_weights())
    x, y = task()
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.assets == {"vocabulary": ["", "[UNK]", "the"], "max_len": 6}
    # Compiled as it was: same loss, metrics and optimiser settings.
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 6
    uncompiled = load_model(path, compile=False)
    assert not uncompiled.compiled


def test_optimizer_state_makes_continued_training_equal(tmp_path: Path) -> None:
    model, path = trained(tmp_path)
    loaded = load_model(path)
    x, y = task()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert same(loaded.get_weights(), model.get_weights())
    # Without the optimiser state (Adam's moments restart), the result differs.
    model2, path2 = trained(tmp_path / "other")
    model2.save(path2, include_optimizer=False)
    fresh_opt = load_model(path2)
    fresh_opt.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert not same(fresh_opt.get_weights(), model.get_weights())


def test_functional_encoder_decoder_round_trip(tmp_path: Path) -> None:
    set_random_seed(0)
    enc_in, dec_in = Input(shape=(None, 3), name="enc"), Input(shape=(None, 4), name="dec")
    _, h, c = LSTM(5, return_state=True)(enc_in)
    seq = LSTM(5, return_sequences=True)(dec_in, initial_state=[h, c])
    model = Model([enc_in, dec_in], Dense(4, activation="softmax")(seq))
    model.save(tmp_path / "s2s.lstmkit")
    loaded = load_model(tmp_path / "s2s.lstmkit")
    xs = [np.random.default_rng(0).normal(size=(2, 6, 3)), np.ones((2, 3, 4))]
    np.testing.assert_array_equal(loaded.predict(xs, verbose=0), model.predict(xs, verbose=0))
    assert loaded.input_names == ["enc", "dec"]


def test_save_weights_and_load_weights(tmp_path: Path) -> None:
    model, path = trained(tmp_path)
    model.save_weights(tmp_path / "w.safetensors")
    other = lstm_model(seed=5)  # the same architecture, other weights and other layer names
    with pytest.raises(ValueError, match=r"build the model .* before load_weights"):
        other.load_weights(tmp_path / "w.safetensors")
    other.build((None, 6))
    assert not same(other.get_weights(), model.get_weights())
    assert [layer.name for layer in other.layers] != [layer.name for layer in model.layers]
    other.load_weights(tmp_path / "w.safetensors")
    assert same(other.get_weights(), model.get_weights())
    third = lstm_model(seed=6)
    third.build((None, 6))
    third.load_weights(path)  # weights from a full model file
    assert same(third.get_weights(), model.get_weights())


def test_mismatched_weights_are_refused(tmp_path: Path) -> None:
    model, _ = trained(tmp_path)
    model.save_weights(tmp_path / "w.safetensors")
    wider = Sequential([Embedding(15, 4), LSTM(7), Dense(1)])
    wider.build((None, 6))
    with pytest.raises(
        ModelFileError, match=r"shape mismatch.*weight_hh: file \(24, 6\) vs model \(28, 7\)"
    ):
        wider.load_weights(tmp_path / "w.safetensors")
    deeper = Sequential([Embedding(15, 4), LSTM(6), Dense(3), Dense(1)])
    deeper.build((None, 6))
    with pytest.raises(ModelFileError, match="do not fit this model: missing"):
        deeper.load_weights(tmp_path / "w.safetensors")
    before = wider.get_weights()
    assert same(wider.get_weights(), before)  # nothing half-loaded


def test_subclassed_model_saves_weights_but_not_whole(tmp_path: Path) -> None:
    class Net(Model):
        def __init__(self) -> None:
            super().__init__()
            self.dense = Dense(2)

        def call(self, inputs, training=None):
            return self.dense(inputs)

    net = Net()
    net(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="must implement get_config"):
        net.save(tmp_path / "net.lstmkit")
    assert not (tmp_path / "net.lstmkit").exists()
    net.save_weights(tmp_path / "net.safetensors")
    copy = Net()
    copy(torch.zeros(1, 3))
    copy.load_weights(tmp_path / "net.safetensors")
    assert same(copy.get_weights(), net.get_weights())


def test_unbuilt_model_and_overwrite(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot save an unbuilt model"):
        Sequential([Dense(2)]).save(tmp_path / "x.lstmkit")
    _, path = trained(tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=False"):
        lstm_model().save(path, overwrite=False)


# -- refusals ------------------------------------------------------------------------------------


class _Touch:
    """Unpickling this creates ``marker`` — proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickles_are_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "UNPICKLED"
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"w": _Touch(marker)}, protocol=4))
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(2), "x": _Touch(marker)}, legacy,
               _use_new_zipfile_serialization=False)  # fmt: skip
    modern = tmp_path / "modern.pt"
    torch.save({"w": torch.zeros(2), "x": _Touch(marker)}, modern)  # a zip holding data.pkl
    model = lstm_model()
    model.build((None, 6))
    for path in (raw, legacy):
        with pytest.raises(ModelFileError, match="looks like a pickle file"):
            load_model(path)
        with pytest.raises(ModelFileError, match="pickle"):
            model.load_weights(path)
    with pytest.raises(
        ModelFileError, match=r"not an lstmkit model file: metadata.json is missing"
    ):
        load_model(modern)
    with pytest.raises(ModelFileError, match=r"metadata.json is missing"):
        model.load_weights(modern)
    assert not marker.exists()


def test_truncated_and_random_files_are_refused(tmp_path: Path) -> None:
    _, path = trained(tmp_path)
    blob = path.read_bytes()
    truncated = tmp_path / "truncated.lstmkit"
    truncated.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ModelFileError, match=r"not an lstmkit model file.*truncated"):
        load_model(truncated)
    noise = tmp_path / "noise.lstmkit"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelFileError, match="not an lstmkit model file"):
        load_model(noise)
    model = lstm_model()
    model.build((None, 6))
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        model.load_weights(noise)
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load_model(tmp_path / "missing.lstmkit")


def _rewrite(path: Path, out: Path, replace: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, replace.get(name, src.read(name)))
    return out


def test_wrong_format_or_version_in_metadata(tmp_path: Path) -> None:
    _, path = trained(tmp_path)
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("metadata.json"))
    assert meta["format"] == "lstmkit-model" and meta["format_version"] == 1
    other = _rewrite(
        path,
        tmp_path / "keras.lstmkit",
        {"metadata.json": json.dumps({**meta, "format": "keras"}).encode()},
    )
    with pytest.raises(ModelFileError, match="format 'keras', expected 'lstmkit-model'"):
        load_model(other)
    newer = _rewrite(
        path,
        tmp_path / "v99.lstmkit",
        {"metadata.json": json.dumps({**meta, "format_version": 99}).encode()},
    )
    with pytest.raises(
        ModelFileError, match="format version 99; this lstmkit reads versions up to 1"
    ):
        load_model(newer)
    bad_json = _rewrite(path, tmp_path / "json.lstmkit", {"config.json": b"{not json"})
    with pytest.raises(ModelFileError, match=r"config.json is not valid JSON"):
        load_model(bad_json)
    config = json.loads(zipfile.ZipFile(path).read("config.json"))
    config["model"]["class_name"] = "EvilModel"
    unknown = _rewrite(path, tmp_path / "cls.lstmkit", {"config.json": json.dumps(config).encode()})
    with pytest.raises(ModelFileError, match="'EvilModel' is unknown; register it"):
        load_model(unknown)


def test_damaged_member_fails_its_checksum(tmp_path: Path) -> None:
    _, path = trained(tmp_path)
    blob = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("model.safetensors")
    # Members are stored uncompressed: flip a byte inside the weights' data.
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size - 8
    blob[start] ^= 0xFF
    damaged = tmp_path / "damaged.lstmkit"
    damaged.write_bytes(bytes(blob))
    with pytest.raises(ModelFileError, match=r"'model.safetensors' fails its checksum"):
        load_model(damaged)


# -- atomic writes ---------------------------------------------------------------------------------


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_failed_serialisation_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    model, path = trained(tmp_path)
    before, listing = path.read_bytes(), _listing(tmp_path)

    def boom(*args, **kwargs):
        raise RuntimeError("serializer failed")

    monkeypatch.setattr(saving, "st_save", boom)
    with pytest.raises(RuntimeError, match="serializer failed"):
        model.save(tmp_path / "new.lstmkit")
    with pytest.raises(RuntimeError, match="serializer failed"):
        model.save(path)  # over an existing file
    with pytest.raises(RuntimeError, match="serializer failed"):
        model.save_weights(tmp_path / "w.safetensors")
    assert _listing(tmp_path) == listing  # no new file, no temporary file
    assert path.read_bytes() == before


def test_failure_while_writing_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    model, path = trained(tmp_path)
    before, listing = path.read_bytes(), _listing(tmp_path)
    real_replace = os.replace
    calls: list[str] = []

    def failing_replace(src, dst):
        calls.append(os.fspath(src))
        assert Path(src).exists() and Path(src).parent == tmp_path  # the temp file was written
        raise OSError("disk full")

    monkeypatch.setattr(utils.os, "replace", failing_replace)
    model.fit(*task(), epochs=1, verbose=0)  # the new file would differ
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert calls and not Path(calls[0]).exists()  # the temporary file was removed
    assert _listing(tmp_path) == listing and path.read_bytes() == before
    monkeypatch.setattr(utils.os, "replace", real_replace)
    model.save(path)
    # 2 epochs of 3 batches, then 1 of 1 batch.
    assert path.read_bytes() != before and load_model(path).optimizer.iterations == 7


def test_atomic_write_helper(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    with utils.atomic_write(target) as fh:
        fh.write(b"abc")
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_bytes() == b"abc"
    with pytest.raises(ZeroDivisionError), utils.atomic_write(target) as fh:
        fh.write(b"partial")
        1 / 0
    assert target.read_bytes() == b"abc" and _listing(target.parent) == ["file.bin"]
    assert io.BytesIO  # (io used by other helpers)


def test_atomic_write_gives_ordinary_permissions(tmp_path) -> None:
    import os

    from lstmkit.utils import atomic_write

    with atomic_write(tmp_path / "report.html", "w") as fh:
        fh.write("x")
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(tmp_path / "report.html").st_mode & 0o777 == 0o666 & ~mask
