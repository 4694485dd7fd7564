"""Keras 3 ``.keras`` / ``.weights.h5`` files: read Keras's, write what Keras reads.

Fixtures (``tests/reference/keras_files/``, made by ``tests/reference/make_keras_files.py``):
``<name>.keras`` written by real Keras 3.15 (torch backend) with its predictions in
``keras_predictions.npz``; ``lstmkit_<name>.keras`` / ``.weights.h5`` written by lstmkit from
those and loaded back by real Keras, whose predictions equalled lstmkit's (``verified.json``
records the differences and each verified file's layout). Here lstmkit must (1) predict
Keras's numbers from Keras's files, (2) still write files with the verified layout (members,
config keys, HDF5 groups, datasets, shapes and names), and (3) refuse what it must refuse.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from lstmkit import layers
from lstmkit.models import ModelFileError, Sequential, load_model
from lstmkit.models import keras_files as KF

FILES = Path(__file__).parent / "reference" / "keras_files"
PRED = np.load(FILES / "keras_predictions.npz")
VERIFIED = json.loads((FILES / "verified.json").read_text())
NAMES = sorted(VERIFIED["files"])
_spec = importlib.util.spec_from_file_location(
    "make_keras_files", FILES.parent / "make_keras_files.py"
)
assert _spec is not None and _spec.loader is not None
MAKER = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(MAKER)  # only its layout() helpers are used (no Keras import)


def _inputs(name: str) -> list[np.ndarray]:
    return [PRED[k] for k in sorted(k for k in PRED.files if k.startswith(f"{name}/x"))]


def _predict(model, name: str) -> list[np.ndarray]:
    xs = _inputs(name)
    ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    return ys if isinstance(ys, list) else [ys]


def _assert_keras_predictions(model, name: str) -> None:
    for i, y in enumerate(_predict(model, name)):
        np.testing.assert_allclose(y, PRED[f"{name}/y{i}"], rtol=0, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", NAMES)
def test_keras_written_file_loads_with_keras_predictions(name: str) -> None:
    model = load_model(FILES / f"{name}.keras")
    _assert_keras_predictions(model, name)


@pytest.mark.parametrize("name", NAMES)
def test_lstmkit_writes_the_layout_real_keras_loaded(name: str, tmp_path: Path) -> None:
    model = load_model(FILES / f"{name}.keras")
    out = tmp_path / f"{name}.keras"
    model.save(out)
    got, want = MAKER.layout(str(out)), VERIFIED["files"][name]["layout"]
    assert got["members"] == want["members"]
    assert got["metadata_keys"] == want["metadata_keys"]
    assert got["config"] == json.loads(json.dumps(want["config"]))
    assert got["h5"] == want["h5"]
    # ... which is also exactly the HDF5 layout of Keras's own file of the same model.
    assert got["h5"] == MAKER.layout(str(FILES / f"{name}.keras"))["h5"]
    _assert_keras_predictions(load_model(out), name)  # and it reads back


@pytest.mark.parametrize("name", NAMES)
def test_weights_h5_round_trip_and_keras_weights(name: str, tmp_path: Path) -> None:
    model = load_model(FILES / f"{name}.keras")
    path = tmp_path / "w.weights.h5"
    model.save_weights(path)
    with h5py.File(path, "r") as f:
        assert MAKER.h5_layout(f) == VERIFIED["files"][name]["layout"]["h5"]
    # Keras's own model.weights.h5, as a .weights.h5 file, into a model with zeroed weights.
    with zipfile.ZipFile(FILES / f"{name}.keras") as zf:
        (tmp_path / "keras.weights.h5").write_bytes(zf.read("model.weights.h5"))
    fresh = load_model(FILES / f"{name}.keras")
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.load_weights(tmp_path / "keras.weights.h5")
    _assert_keras_predictions(fresh, name)
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.load_weights(path)
    _assert_keras_predictions(fresh, name)


def test_lambda_layers_are_refused_without_running_them() -> None:
    with pytest.raises(ModelFileError, match="Lambda layer stores Python code"):
        load_model(FILES / "lambda_refused.keras")


def _rewrite(src: Path, dst: Path, edit) -> None:
    """Copy a .keras file, passing its members through ``edit(name, bytes) -> {name: bytes}``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            for n, data in edit(name, zin.read(name)).items():
                zout.writestr(n, data)


def test_custom_classes_and_extra_members_are_refused(tmp_path: Path) -> None:
    src = FILES / "seq_embedding_lstm.keras"

    def custom(name: str, data: bytes) -> dict[str, bytes]:
        if name == "config.json":
            doc = json.loads(data)
            doc["config"]["layers"][1]["registered_name"] = "Custom>MyEmbedding"
            data = json.dumps(doc).encode()
        return {name: data}

    _rewrite(src, tmp_path / "custom.keras", custom)
    with pytest.raises(ModelFileError, match=r"Custom>MyEmbedding.*custom code"):
        load_model(tmp_path / "custom.keras")

    def extra(name: str, data: bytes) -> dict[str, bytes]:
        return {name: data, "x.py": b"1"} if name == "config.json" else {name: data}

    _rewrite(src, tmp_path / "extra.keras", extra)
    with pytest.raises(ModelFileError, match=r"unexpected members \['x.py'\]"):
        load_model(tmp_path / "extra.keras")


def test_member_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(KF, "MAX_JSON_BYTES", 100)
    with pytest.raises(ModelFileError, match=r"config.json is \d+ bytes \(limit 100\)"):
        load_model(FILES / "seq_embedding_lstm.keras")


def test_highly_compressed_members_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(FILES / "seq_embedding_lstm.keras") as zin:
        members = {n: zin.read(n) for n in zin.namelist()}
    members["config.json"] = members["config.json"] + b" " * (4 * 2**20)  # valid JSON, 4 MiB
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for n, data in members.items():
            zout.writestr(n, data)
    with pytest.raises(ModelFileError, match=r"config.json expands \d+-fold; refused"):
        load_model(path)


def _with_h5(src: Path, dst: Path, edit_h5) -> None:
    def edit(name: str, data: bytes) -> dict[str, bytes]:
        if name == "model.weights.h5":
            buf = io.BytesIO(data)
            with h5py.File(buf, "r+") as f:
                edit_h5(f)
            data = buf.getvalue()
        return {name: data}

    _rewrite(src, dst, edit)


def test_hdf5_links_and_wrong_shapes_are_refused(tmp_path: Path) -> None:
    src = FILES / "seq_embedding_lstm.keras"

    def external(f: h5py.File) -> None:
        del f["layers/embedding/vars/0"]
        f["layers/embedding/vars/0"] = h5py.ExternalLink("/etc/passwd", "/x")

    _with_h5(src, tmp_path / "link.keras", external)
    with pytest.raises(ModelFileError, match="'0' is a ExternalLink; refused"):
        load_model(tmp_path / "link.keras")

    def reshape(f: h5py.File) -> None:
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = np.zeros((2, 3), dtype="float32")

    _with_h5(src, tmp_path / "shape.keras", reshape)
    with pytest.raises(ModelFileError, match=r"layers/dense/vars/0 has shape \(2, 3\), the model "
                       r"expects \(3, 2\)"):  # fmt: skip
        load_model(tmp_path / "shape.keras")

    def strings(f: h5py.File) -> None:
        del f["layers/dense/vars/1"]
        f["layers/dense/vars/1"] = np.array([b"a", b"b"])

    _with_h5(src, tmp_path / "str.keras", strings)
    with pytest.raises(ModelFileError, match="not a plain numeric dataset"):
        load_model(tmp_path / "str.keras")


def test_legacy_h5_names_get_a_clear_error(tmp_path: Path) -> None:
    model = Sequential([layers.Dense(2)])
    model(torch.zeros(1, 3))
    for call in (
        lambda: model.save(tmp_path / "m.h5"),
        lambda: model.save_weights(tmp_path / "m.hdf5"),
        lambda: load_model(tmp_path / "m.h5"),
    ):
        with pytest.raises(ValueError, match=r"legacy Keras HDF5 format \(.h5 / .hdf5\)"):
            call()
    with pytest.raises(ValueError, match=r"needs a \.weights\.h5 name"):
        model.save_weights(tmp_path / "m.keras")
    assert not list(tmp_path.iterdir())


def test_variants_keras_cannot_hold_are_refused_on_save(tmp_path: Path) -> None:
    model = Sequential([layers.LSTM(3, peephole=True)])
    model(torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match=r"peephole=True has no Keras 3 counterpart"):
        model.save(tmp_path / "p.keras")
    assert not (tmp_path / "p.keras").exists()


def test_lstmkit_format_in_a_keras_name_still_loads(tmp_path: Path) -> None:
    model = Sequential([layers.Dense(2)])
    model(torch.zeros(1, 3))
    model.save(tmp_path / "m.lstmkit")  # lstmkit's format, as older lstmkit wrote for .keras
    shutil.copy(tmp_path / "m.lstmkit", tmp_path / "old.keras")
    loaded = load_model(tmp_path / "old.keras")
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
