"""The validated reader of model files (:mod:`lstmkit.models.archive`): each kind of hostile
file ends in a ``ModelFileError`` that names the file, the member and what was expected, before
anything large is allocated. (tests/hostile_files/ runs hundreds of such files in child
processes under memory and time caps; these are the readable cases, in-process.)"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
import torch

from lstmkit.layers import LSTM, Dense, Embedding
from lstmkit.models import ModelFileError, Sequential, archive, load_model, saving


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    torch.manual_seed(0)
    model = Sequential([Embedding(15, 4), LSTM(6), Dense(1)])
    model.build((None, 6))
    model.compile(optimizer="adam", loss="mse")
    model.fit(torch.randint(0, 15, (4, 6)), torch.zeros(4, 1), epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("good") / "ok.lstmkit"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        return path, {n: zf.read(n) for n in zf.namelist()}


def rewrite(tmp: Path, members: dict[str, bytes], change: dict[str, bytes | None],
            deflate: tuple[str, ...] = ()) -> Path:  # fmt: skip
    path = tmp / "f.lstmkit"
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in {**members, **change}.items():
            if blob is not None:
                method = zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED
                zf.writestr(name, blob, compress_type=method)
    return path


def with_config(members: dict[str, bytes], edit) -> dict[str, bytes]:
    config = json.loads(members["config.json"])
    edit(config)
    return {"config.json": json.dumps(config).encode()}


def layer(config: dict, i: int) -> dict:
    return config["model"]["config"]["layers"][i]["config"]


def test_valid_file_loads(good) -> None:
    path, _ = good
    assert (
        load_model(path).count_params() == 15 * 4 + 4 * 6 * (4 + 6) + 4 * 6 + 6 + 1
    )  # Keras count


def test_not_regular_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.lstmkit"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="expected a regular model file, got a FIFO"):
        load_model(fifo)  # would block forever on open() without O_NONBLOCK / the stat
    (tmp_path / "zero.lstmkit").symlink_to("/dev/zero")
    with pytest.raises(ModelFileError, match="got a character device"):
        load_model(tmp_path / "zero.lstmkit")
    with pytest.raises(ModelFileError, match="got a directory"):
        load_model(tmp_path)
    model = Sequential([Dense(1)])
    model.build((None, 2))
    with pytest.raises(ModelFileError, match="expected a regular weights file, got a FIFO"):
        model.load_weights(fifo)


def test_zip_bomb_is_refused_before_inflating(tmp_path: Path, good) -> None:
    _, members = good
    path = rewrite(tmp_path, members, {"config.json": b" " * (20 * 2**20)}, ("config.json",))
    with pytest.raises(ModelFileError, match=r"member 'config.json' would expand \d+-fold"):
        load_model(path)
    with archive.limits(max_json_bytes=2**20):
        with pytest.raises(ModelFileError, match="declares 20971520 bytes, over the limit"):
            load_model(path)


def test_member_list_is_checked(tmp_path: Path, good) -> None:
    _, members = good
    many = {f"pad{i}.json": b"{}" for i in range(70)}
    with pytest.raises(ModelFileError, match=r"7\d members, over the limit of 64"):
        load_model(rewrite(tmp_path, members, many))
    path = tmp_path / "link.lstmkit"
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            info = zipfile.ZipInfo(name)
            if name == "config.json":
                info.external_attr = (0o120777) << 16  # a symlink
            zf.writestr(info, blob)
    with pytest.raises(ModelFileError, match=r"'config\.json': expected a regular file, got"):
        load_model(path)
    with pytest.raises(ModelFileError, match="expected a plain member name"):
        load_model(rewrite(tmp_path, members, {"../evil": b"x"}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metadata.json": b"[1, 2]"}, "metadata.json: expected a JSON object, got a JSON array"),
        ({"metadata.json": b'"s"'}, "metadata.json: expected a JSON object, got a string"),
        ({"config.json": b"[" * 5000 + b"]" * 5000}, r"config.json: JSON nested (5000|deeper)"),
        ({"config.json": b'{"model": 3}'}, "the model spec must be a JSON object, got an integer"),
        ({"config.json": b'{"assets": {}}'}, "'model' is missing"),
        ({"config.json": b"\xff\xfe"}, "config.json is not valid JSON"),
        ({"model.safetensors": b"\x00" * 16}, "model.safetensors is not a valid safetensors"),
        ({"model.safetensors": None}, "model.safetensors is missing"),
    ],
)
def test_damaged_members(tmp_path: Path, good, change, message) -> None:
    _, members = good
    with pytest.raises(ModelFileError, match=message):
        load_model(rewrite(tmp_path, members, change))


def test_declared_shapes_are_refused_before_allocating(tmp_path: Path, good) -> None:
    _, members = good
    edits = {
        "embedding 10**9": lambda c: layer(c, 0).update(input_dim=10**9),
        "lstm 10**6 units": lambda c: layer(c, 1).update(units=10**6),
        "dense 10**9 units": lambda c: layer(c, 2).update(units=10**9),
    }
    for edit in edits.values():
        path = rewrite(tmp_path, members, with_config(members, edit))
        with pytest.raises(ModelFileError, match="would allocate more than"):
            load_model(path)
    layers = with_config(
        members,
        lambda c: c["model"]["config"]["layers"].extend(
            [{"class_name": "Dropout", "config": {"rate": 0.1}}] * 5000
        ),
    )
    with pytest.raises(ModelFileError, match="5004 layer specs, over the limit of 1000"):
        load_model(rewrite(tmp_path, members, layers))
    wrong = with_config(members, lambda c: layer(c, 1).update(units="six"))
    with pytest.raises(ModelFileError, match="cannot rebuild the model from its config"):
        load_model(rewrite(tmp_path, members, wrong))


def test_optimizer_members_are_checked(tmp_path: Path, good) -> None:
    _, members = good
    meta = json.loads(members["optimizer.json"])
    del meta["scalars"]
    with pytest.raises(ModelFileError, match=r"optimizer\.json: 'scalars' is missing"):
        load_model(rewrite(tmp_path, members, {"optimizer.json": json.dumps(meta).encode()}))
    with pytest.raises(ModelFileError, match=r"optimizer\.safetensors is missing"):
        load_model(rewrite(tmp_path, members, {"optimizer.safetensors": None}))
    assert load_model(rewrite(tmp_path, members, {"optimizer.safetensors": None}), compile=False)


def test_nonfinite_weights_refused_unless_allowed(tmp_path: Path) -> None:
    model = Sequential([Dense(2)])
    model.build((None, 3))
    with torch.no_grad():
        model.layers[0].weight[0, 1] = float("nan")
        model.layers[0].bias[1] = float("inf")
    model.save(tmp_path / "m.lstmkit")
    model.save_weights(tmp_path / "w.safetensors")
    with pytest.raises(ModelFileError, match=r"holds 1 non-finite value\(s\).*allow_nonfinite"):
        load_model(tmp_path / "m.lstmkit")
    other = Sequential([Dense(2)])
    other.build((None, 3))
    with pytest.raises(ModelFileError, match="non-finite"):
        other.load_weights(tmp_path / "w.safetensors")
    loaded = load_model(tmp_path / "m.lstmkit", allow_nonfinite=True)
    assert torch.isnan(loaded.layers[0].weight[0, 1]) and torch.isinf(loaded.layers[0].bias[1])
    other.load_weights(tmp_path / "w.safetensors", allow_nonfinite=True)
    assert torch.isnan(other.layers[0].weight[0, 1])


def test_limits_are_settable_and_checked() -> None:
    before = archive.LIMITS
    with archive.limits(max_layers=5) as lim:
        assert lim.max_layers == 5 and archive.LIMITS.max_layers == 5
    assert archive.LIMITS == before
    with pytest.raises(TypeError, match="unknown limit 'max_layer'"):
        archive.set_limits(max_layer=3)
    with pytest.raises(ValueError, match="max_layers must be a positive number, got -1"):
        archive.set_limits(max_layers=-1)
    assert archive.LIMITS == before


def test_read_assets_goes_through_the_validated_reader(tmp_path: Path, good) -> None:
    _, members = good
    path = rewrite(tmp_path, members, {"config.json": b" " * (20 * 2**20)}, ("config.json",))
    with pytest.raises(ModelFileError, match="would expand"):
        saving.read_assets(path)
