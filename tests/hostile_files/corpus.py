"""A corpus of hostile and damaged model files (issue 25), made from small valid files.

``make(folder)`` writes the valid files (one per application, a plain ``Sequential`` model and
its weights file) and, from them: crafted archives (zip bombs, huge declared sizes, symlink and
device members, JSON of the wrong shape or depth, configs declaring huge layers or 10,000
layers, NaN weights, damaged assets), a FIFO and a link to ``/dev/zero``, and seeded random byte
flips and truncations of every valid file. It returns ``[(path, kind, valid)]`` where ``kind``
says which loader reads it (``app``, ``model``, ``weights``) and ``valid`` whether the file is
in fact a good one (``None``: it may be — random bytes flipped in a safetensors file's
data are other weights, flips that leave every zip member's bytes as they were fell in
fields no checksum covers, and assets outside what an application reads may be anything; the
strict matrix of assets is tests/test_app_assets.py).
``python tests/hostile_files/corpus.py FOLDER`` writes it.
"""

from __future__ import annotations

import json
import os
import random
import sys
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save as st_save

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # test_serve_models: the applications' tiny files

Entry = tuple[Path, str, bool | None]


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _same_members(flipped: Path, original: Path) -> bool:
    """Whether a flipped archive still holds the original's members byte for byte: its flips
    fell in bytes no checksum covers (a timestamp, an attribute, a version field), so the
    file may load, and loading it is then right."""
    try:
        return _members(flipped) == _members(original)
    except Exception:  # any failure to read it means the content changed
        return False


def _zip(path: Path, members: dict[str, bytes], deflate: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, blob in members.items():
            method = zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED
            zf.writestr(name, blob, compress_type=method)
    return path


def _valid(folder: Path) -> list[Entry]:
    from lstmkit.layers import LSTM, Dense, Embedding
    from lstmkit.models import Sequential
    from test_serve_models import MAKERS

    out: list[Entry] = [
        (make(folder / f"{app}.lstmkit"), "app", True) for app, make in MAKERS.items()
    ]
    torch.manual_seed(0)
    model = Sequential([Embedding(15, 4), LSTM(6), Dense(1)])
    model.build((None, 6))
    model.compile(optimizer="adam", loss="mse")
    model.fit(torch.randint(0, 15, (4, 6)), torch.zeros(4, 1), epochs=1, verbose=0)
    model.save(folder / "plain.lstmkit")
    model.save_weights(folder / "plain.weights.safetensors")
    out += [(folder / "plain.lstmkit", "model", True),
            (folder / "plain.weights.safetensors", "weights", True)]  # fmt: skip
    return out


def _crafted(folder: Path, plain: Path, apps: list[Path]) -> list[Entry]:
    members = _members(plain)
    config = json.loads(members["config.json"])
    out: list[Entry] = []

    def add(name: str, change: dict[str, bytes | None], deflate: tuple[str, ...] = ()) -> None:
        merged = {k: v for k, v in {**members, **change}.items() if v is not None}
        out.append((_zip(folder / f"crafted-{name}.lstmkit", merged, deflate), "model", False))

    def with_layer(i: int, **changes: object) -> bytes:
        c = json.loads(members["config.json"])
        c["model"]["config"]["layers"][i]["config"].update(changes)
        return json.dumps(c).encode()

    add("bomb-config", {"config.json": b" " * (40 * 2**20)}, ("config.json",))
    add("bomb-weights", {"model.safetensors": b"\0" * (40 * 2**20)}, ("model.safetensors",))
    for name in ("metadata.json", "config.json", "model.safetensors"):
        add(f"missing-{name}", {name: None})
    for value in (b"[]", b'"x"', b"3", b"null", b"{", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000):
        add(f"metadata-{len(out)}", {"metadata.json": value})
        add(f"config-{len(out)}", {"config.json": value})
    add("embedding-1e9", {"config.json": with_layer(0, input_dim=10**9)})
    add("lstm-1e6", {"config.json": with_layer(1, units=10**6)})
    add("negative-units", {"config.json": with_layer(1, units=-3)})
    add("string-units", {"config.json": with_layer(1, units="6")})
    many = json.loads(members["config.json"])
    dense = many["model"]["config"]["layers"][-1]
    many["model"]["config"]["layers"] += [dense] * 10_000
    add("10k-layers", {"config.json": json.dumps(many).encode()})
    evil = {"class_name": "os.system", "config": {"command": "touch /tmp/pwned"}}
    add("class-os-system", {"config.json": json.dumps({**config, "model": evil}).encode()})
    for key, value in (("assets", [1]), ("compile", "adam"), ("build", 3)):
        add(f"config-{key}", {"config.json": json.dumps({**config, key: value}).encode()})
    add("weights-garbage", {"model.safetensors": os.urandom(4096)})
    add("weights-header-huge", {"model.safetensors": (2**62).to_bytes(8, "little") + b"{}"})
    add("weights-nan", {"model.safetensors": st_save({k: torch.full_like(v, float("nan"))
        for k, v in _tensors(members["model.safetensors"]).items()})})  # fmt: skip
    add("weights-shapes", {"model.safetensors": st_save({k: torch.zeros(3)
        for k in _tensors(members["model.safetensors"])})})  # fmt: skip
    add("optimizer-garbage", {"optimizer.safetensors": b"not tensors", "optimizer.json": b"[]"})
    add("pickle", {"model.safetensors": b"\x80\x04\x95" + b"\0" * 64})
    add("too-many-members", {f"junk/{i}": b"" for i in range(100)})
    add("traversal-name", {"../../etc/passwd": b"x"})
    # a member whose declared size is huge (the central directory lies)
    lying = folder / "crafted-declared-size.lstmkit"
    _zip(lying, members)
    blob = bytearray(lying.read_bytes())
    at = blob.rfind(b"PK\x01\x02")  # last central directory entry: uncompressed size at +24
    blob[at + 24 : at + 28] = (2**32 - 1).to_bytes(4, "little")
    lying.write_bytes(bytes(blob))
    out.append((lying, "model", False))
    # a symlink member pointing at /dev/zero (external attributes say S_IFLNK)
    link = zipfile.ZipInfo("model.safetensors")
    link.external_attr = 0o120777 << 16
    with zipfile.ZipFile(folder / "crafted-symlink-member.lstmkit", "w") as zf:
        for name, data in members.items():
            if name != "model.safetensors":
                zf.writestr(name, data)
        zf.writestr(link, "/dev/zero")
    out.append((folder / "crafted-symlink-member.lstmkit", "model", False))
    fifo = folder / "fifo.lstmkit"
    os.mkfifo(fifo)
    (folder / "zero.lstmkit").symlink_to("/dev/zero")
    out += [(fifo, "model", False), (folder / "zero.lstmkit", "model", False)]
    # application files with damaged assets
    for path in apps:
        m = _members(path)
        c = json.loads(m["config.json"])
        for key in list(c["assets"]):
            for value in (None, 7, "x", [1], {}):
                if json.dumps(value) == json.dumps(c["assets"][key]):
                    continue
                damaged = {**c, "assets": {**c["assets"], key: value}}
                target = folder / f"assets-{path.stem}-{key}-{type(value).__name__}.lstmkit"
                out.append((_zip(target, {**m, "config.json": json.dumps(damaged).encode()}),
                            "app", None))  # fmt: skip
    return out


def _tensors(blob: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(blob)


def _mangled(folder: Path, valid: list[Entry], flips: int = 12, cuts: int = 6) -> list[Entry]:
    rng = random.Random(25)
    out: list[Entry] = []
    for path, kind, _ in valid:
        data = path.read_bytes()
        for i in range(flips):
            blob = bytearray(data)
            for _ in range(rng.choice((1, 1, 4, 64))):
                blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
            target = folder / f"flip-{i}-{path.name}"
            target.write_bytes(bytes(blob))
            harmless = kind == "weights" or _same_members(target, path)
            out.append((target, kind, None if harmless else False))
        for i in range(cuts):
            target = folder / f"cut-{i}-{path.name}"
            target.write_bytes(data[: rng.randrange(len(data))])
            out.append((target, kind, False))
    return out


def make(folder: Path) -> list[Entry]:
    folder.mkdir(parents=True, exist_ok=True)
    valid = _valid(folder)
    plain = next(p for p, kind, _ in valid if kind == "model")
    apps = [p for p, kind, _ in valid if kind == "app"]
    return valid + _crafted(folder, plain, apps) + _mangled(folder, valid)


if __name__ == "__main__":
    entries = make(Path(sys.argv[1]))
    print(f"{len(entries)} files in {sys.argv[1]}")
