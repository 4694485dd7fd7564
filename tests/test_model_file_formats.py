"""Every file lstmkit writes loads back, whatever its layer names, shapes and dtypes; files of
other formats, truncated or damaged ones, get a ``ModelFileError``.

Formats are told apart by their structure (:mod:`lstmkit.models.archive`): a safetensors file
starts with its 8-byte little-endian header length, so one whose header is 640, 896, 1152 or
1408 bytes long starts with ``0x80 0x02..0x05``, the opening of a pickle. Such files are
written here on purpose (layer names chosen so that the header has exactly that length) and
must load back.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save

from lstmkit.layers import GRU, LSTM, Dense, Embedding, SimpleRNN
from lstmkit.models import ModelFileError, Sequential, load_model, saving
from lstmkit.models.archive import sniff
from lstmkit.training.state import TrainingState

RNNS = {"LSTM": LSTM, "GRU": GRU, "SimpleRNN": SimpleRNN}
DTYPES = ["float32", "float64", "float16", "bfloat16"]
# layer names: anything but "." (torch's module names), with JSON's awkward characters
NAME_CHARS = st.characters(
    codec="utf-8", exclude_characters=".", exclude_categories=("Cs",)
) | st.sampled_from('"\\/ \x00\t{}[]:,é☃')
# (names of torch.nn.ModuleDict's own attributes, such as "keys" or "training", are refused by
# torch when the model registers its layers: not a file-format matter, left out here)
_TAKEN = set(dir(torch.nn.ModuleDict()))
NAMES = st.text(NAME_CHARS, min_size=1, max_size=40).filter(lambda n: n not in _TAKEN)


def header_length(blob: bytes) -> int:
    return int.from_bytes(blob[:8], "little")


def make_model(names: tuple[str, str, str], sizes: tuple[int, int, int, int], rnn: str,
               dtype: str, seed: int = 0) -> Sequential:  # fmt: skip
    vocab, dim, units, out = sizes
    torch.manual_seed(seed)
    model = Sequential(
        [
            Embedding(vocab, dim, name=names[0], dtype=dtype),
            RNNS[rnn](units, name=names[1], dtype=dtype),
            Dense(out, name=names[2], dtype=dtype),
        ]
    )
    model.build((None, 3))
    with torch.no_grad():  # values that differ between two models
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64).to(p.dtype))
    return model


def fresh_like(model: Sequential, seed: int = 1) -> Sequential:
    from lstmkit.layers import deserialize, serialize

    torch.manual_seed(seed)
    return deserialize(serialize(model))


def assert_same_weights(a: Sequential, b: Sequential) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype, key
        assert torch.equal(sa[key], sb[key]), key


# -- header lengths that begin like a pickle --------------------------------------------------


def dense_pair(a: int, b: int) -> Sequential:
    torch.manual_seed(0)
    model = Sequential([Dense(3, name="a" * a), Dense(2, name="b" * b)])
    model.build((None, 4))
    return model


def weights_with_header(target: int) -> Sequential:
    """A model whose ``save_weights`` file has a safetensors header of exactly ``target`` bytes
    (searched over the lengths of its two layer names)."""
    n1 = header_length(saving._weights_blob(dense_pair(1, 1), "-weights"))
    slope = (header_length(saving._weights_blob(dense_pair(17, 1), "-weights")) - n1) / 16
    start = max(1, int((target - n1) / slope) - 4)
    for a in range(start, start + 12):
        for b in range(1, 8):
            model = dense_pair(a, b)
            n = header_length(saving._weights_blob(model, "-weights"))
            if n == target:
                return model
            if n > target + 64:
                break
    raise AssertionError(f"no names give a header of {target} bytes")


@pytest.mark.parametrize("target", [640, 896, 1152, 1408])
def test_weights_whose_header_length_looks_like_a_pickle_load_back(
    tmp_path: Path, target: int
) -> None:
    model = weights_with_header(target)
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    blob = path.read_bytes()
    assert header_length(blob) == target
    assert blob[0] == 0x80 and 2 <= blob[1] <= 5  # what a two-byte pickle check refused
    assert sniff(blob) == "safetensors"
    other = fresh_like(model)
    other.load_weights(path)
    assert_same_weights(model, other)
    # the same model as a model file and as a training backup (zips holding that blob)
    model.save(tmp_path / "m.lstmkit")
    assert_same_weights(model, load_model(tmp_path / "m.lstmkit"))
    model.compile(optimizer="adam", loss="mse")
    model.save_training_state(tmp_path / "b.lstmkit", TrainingState(epoch=2, batch=1))
    again = fresh_like(model)
    again.compile(optimizer="adam", loss="mse")
    assert saving.restore_training_state(again, tmp_path / "b.lstmkit").epoch == 2
    assert_same_weights(model, again)


def test_sniff_tells_formats_apart_by_structure() -> None:
    blob = st_save({"w": torch.zeros(3)})
    assert sniff(blob) == "safetensors"
    assert sniff(pickle.dumps({"a": 1}, protocol=2)) == "pickle"
    assert sniff(pickle.dumps({"a": 1}, protocol=5)) == "pickle"
    # a pickle whose first 8 bytes announce a header that does not fit: still a pickle
    assert sniff(b"\x80\x04\x00\x00\x00\x00\x00\x00" + b"{" * 10) == "pickle"
    # a header length that fits but JSON that is not an object: not safetensors
    assert sniff((4).to_bytes(8, "little") + b"[1] ") == "unknown"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a", b"x")
    assert sniff(buf.getvalue()) == "zip"
    assert sniff(b"\x89HDF\r\n\x1a\n" + bytes(8)) == "hdf5"
    # safetensors whose tensor bytes hold a zip end-of-directory signature: still safetensors
    tricky = st_save(
        {"w": torch.frombuffer(bytearray(b"PK\x05\x06" + bytes(60)), dtype=torch.uint8)}
    )
    assert sniff(tricky) == "safetensors"
    assert sniff(b"") == "unknown" and sniff(b"\x80") == "unknown"


def test_weights_holding_a_zip_signature_load_as_safetensors(tmp_path: Path) -> None:
    """``zipfile.is_zipfile`` looks for an end-of-directory record anywhere near the end; a
    weights file whose last bytes hold one is still a safetensors file."""
    model = make_model(("e", "r", "d"), (5, 2, 3, 2), "SimpleRNN", "float32")
    with torch.no_grad():
        bias = model.get_layer("d").bias
        raw = np.frombuffer(b"PK\x05\x06" + bytes(4), dtype=np.float32)
        bias.copy_(torch.from_numpy(raw.copy()))
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    assert zipfile.is_zipfile(path)  # what the old check went by
    other = fresh_like(model)
    other.load_weights(path)
    assert_same_weights(model, other)


# -- round trips over random names, shapes and dtypes ----------------------------------------


def distinct(names: tuple[str, str, str]) -> bool:
    return len(set(names)) == 3


MODELS = st.tuples(
    st.tuples(NAMES, NAMES, NAMES).filter(distinct),
    st.tuples(*[st.integers(1, 6)] * 4),
    st.sampled_from(sorted(RNNS)),
    st.sampled_from(DTYPES),
)


@settings(max_examples=150)
@given(MODELS)
def test_weights_files_load_back_identically(tmp_path_factory, spec) -> None:
    tmp = tmp_path_factory.mktemp("w")
    model = make_model(*spec)
    path = tmp / "weights.safetensors"
    model.save_weights(path)
    other = fresh_like(model)
    other.load_weights(path)
    assert_same_weights(model, other)


@settings(max_examples=60)
@given(MODELS)
def test_model_files_load_back_identically(tmp_path_factory, spec) -> None:
    tmp = tmp_path_factory.mktemp("m")
    model = make_model(*spec)
    model.assets = {"names": list(spec[0])}
    path = tmp / "model.lstmkit"
    model.save(path)
    loaded = load_model(path)
    assert_same_weights(model, loaded)
    assert loaded.assets == {"names": list(spec[0])}
    other = fresh_like(model)
    other.load_weights(path)  # the weights of a model file
    assert_same_weights(model, other)


# -- damaged and foreign files ----------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Sequential, bytes, bytes]:
    model = make_model(("emb", "rnn", "out"), (6, 3, 4, 2), "LSTM", "float32")
    tmp = tmp_path_factory.mktemp("saved")
    model.save_weights(tmp / "w")
    model.save(tmp / "m")
    return model, (tmp / "w").read_bytes(), (tmp / "m").read_bytes()


def _load_either(model: Sequential, path: Path, as_model: bool) -> None:
    if as_model:
        load_model(path)
    else:
        fresh_like(model).load_weights(path)


@settings(max_examples=80)
@given(cut=st.floats(0.0, 0.999), which=st.booleans())
def test_truncated_files_are_refused(tmp_path_factory, saved, cut, which) -> None:
    model, weights, archive = saved
    blob = archive if which else weights
    path = tmp_path_factory.mktemp("t") / "f"
    path.write_bytes(blob[: int(len(blob) * cut)])
    with pytest.raises(ModelFileError):
        _load_either(model, path, which)


@settings(max_examples=80)
@given(data=st.data(), which=st.booleans())
def test_flipped_bytes_load_or_give_model_file_error(tmp_path_factory, saved, data, which):
    """A flipped byte in a tensor's data is undetectable in a safetensors file (it has no
    checksum); anywhere else it must be refused, and it is never another exception."""
    model, weights, archive = saved
    blob = bytearray(archive if which else weights)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] ^= data.draw(st.integers(1, 255))
    path = tmp_path_factory.mktemp("f") / "f"
    path.write_bytes(bytes(blob))
    try:
        _load_either(model, path, which)
    except ModelFileError:
        pass


def foreign_files(tmp: Path) -> dict[str, bytes]:
    npz = io.BytesIO()
    np.savez(npz, w=np.zeros(3))
    torch_zip = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, torch_zip)
    torch_legacy = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, torch_legacy, _use_new_zipfile_serialization=False)
    return {
        "empty": b"",
        "one byte": b"\x80",
        "text": b"hello, this is not a model\n",
        "json": b'{"format": "lstmkit-model"}',
        "pickle2": pickle.dumps([1, 2, 3], protocol=2),
        "pickle5": pickle.dumps({"w": [0.0] * 10}, protocol=5),
        "pickle0": pickle.dumps([1, 2, 3], protocol=0),
        "torch zip": torch_zip.getvalue(),
        "torch legacy": torch_legacy.getvalue(),
        "npz": npz.getvalue(),
        "hdf5 signature": b"\x89HDF\r\n\x1a\n" + bytes(100),
        "noise": np.random.default_rng(3).bytes(5000),
        "huge header length": (2**63).to_bytes(8, "little") + b"{}",
        "header past the end": (1000).to_bytes(8, "little") + b'{"a": 1}',
    }


@pytest.mark.parametrize("as_model", [False, True])
def test_foreign_files_are_refused(tmp_path: Path, saved, as_model: bool) -> None:
    model = saved[0]
    for name, blob in foreign_files(tmp_path).items():
        path = tmp_path / name.replace(" ", "_")
        path.write_bytes(blob)
        with pytest.raises(ModelFileError):
            _load_either(model, path, as_model)


@pytest.mark.slow
@settings(max_examples=3000)
@given(MODELS)
def test_thousands_of_weights_files_load_back(tmp_path_factory, spec) -> None:
    test_weights_files_load_back_identically.hypothesis.inner_test(tmp_path_factory, spec)
