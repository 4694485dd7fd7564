"""Damaged application assets (issue 25): every application's ``load`` turns assets that are
missing, of the wrong type or out of range into a ``ModelFileError`` that names the file and
the asset field — never a ``KeyError``/``AttributeError``/``TypeError`` from deep inside — and
``lstmkit serve`` and the application's own CLI end with a one-line message.

The damaged files are generated from a valid, untrained model file of each application (the
builders of test_serve_models.py, well under a second each): every entry of its assets, at every
depth, is deleted once and replaced once by a value of each other JSON type, and each list's
first element by a value of the wrong type; the application-specific cases (vocabularies that
do not fit the network, SentencePiece blobs, sample rates) are listed by hand. Each variant is
written back as a model file (the original members, ``config.json``'s assets replaced) with
``atomic_write``.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lstmkit.models import ModelFileError
from lstmkit.utils import atomic_write
from test_serve_models import MAKERS, wav_bytes

Path_ = tuple[str | int, ...]  # a path into the assets: keys and list indices

# One value of each JSON type; an entry is replaced by every one of another type than its own.
WRONG = {"null": None, "boolean": True, "number": 7, "string": "x", "list": [1], "object": {}}

# What a usable file may hold besides what save() writes, and why. Every other variant of the
# generated matrix must be refused.
ANYTHING = {  # the entry and everything inside it: not read by the loader
    ("speech", ("app",)): "files written before the 'app' marker are speech files by 'speech'",
    ("textgen", ("app",)): "files written before the 'app' marker are textgen files by 'textgen'",
    ("translate", ("app",)): "older files are recognised by 'format'",
}
FREE_INSIDE = {("speech", ("speech", "config"))}  # the training config, kept for information
MAY_BE_MISSING = {
    ("sentiment", ("results",)),
    ("sentiment", ("labels",)),  # files written before class names: the demo's two
    ("speech", ("speech", "unit")),  # files written before character models: words
    ("speech", ("speech", "config")),
    ("translate", ("config",)),  # the decoding defaults apply
}
DEFAULTED = {  # config objects whose fields each have a default
    ("sentiment", ("config",)),
    ("textgen", ("textgen", "config")),
    ("translate", ("config",)),
}
# Other JSON types an entry of this name may hold (null for "none", a string or a number).
KINDS = {
    "data_dir": {"null", "string"},
    "data": {"null", "string"},  # where the user's data came from (provenance)
    "valid_data": {"null", "string"},
    "test_data": {"null", "string"},
    "max_tokens": {"null", "number"},
    "output_sequence_length": {"null", "number"},
    "standardize": {"null", "string"},
    "split": {"null", "string"},
    "results": {"null", "object"},
}


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "list", dict: "object"}[type(value)]


def entries(value: Any, path: Path_ = ()) -> Iterator[Path_]:
    """Every dict entry at any depth, and the first element of every non-empty list."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from entries(item, (*path, key))
    elif isinstance(value, list) and value:
        yield (*path, 0)


def get(assets: Any, path: Path_) -> Any:
    for key in path:
        assets = assets[key]
    return assets


def changed(assets: dict[str, Any], path: Path_, value: Any = ...) -> dict[str, Any]:
    """A deep copy of ``assets`` with the entry at ``path`` replaced (``...``: deleted)."""
    out = copy.deepcopy(assets)
    parent = get(out, path[:-1])
    if value is ...:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def may_load(app: str, path: Path_, deleted: bool, value: Any) -> bool:
    """Whether the variant is in fact a usable file (ANYTHING, FREE_INSIDE, ...)."""
    prefixes = [tuple(path[: i + 1]) for i in range(len(path))]
    if any((app, p) in ANYTHING for p in prefixes):
        return True
    if any((app, p) in FREE_INSIDE for p in prefixes[:-1]):
        return True
    if deleted:
        return (app, tuple(path)) in MAY_BE_MISSING or (app, tuple(path[:-1])) in DEFAULTED
    key = path[-1]
    return isinstance(key, str) and json_kind(value) in KINDS.get(key, set())


def names(message: str, path: Path_, app: str) -> list[str]:
    """The keys of ``path`` that ``message`` should name but does not: the damaged field (the
    last key) and the asset it belongs to (the first key below the application's section)."""
    keys = [k for k in path if isinstance(k, str)]
    top = keys[1] if app in ("textgen", "speech") and keys[0] == app and len(keys) > 1 else keys[0]
    return [
        k
        for k in {top, keys[-1]}
        if not re.search(rf"(?<![A-Za-z]){re.escape(k)}(?![A-Za-z])", message)
    ]


def matrix(app: str, assets: dict[str, Any]) -> Iterator[tuple[str, Path_, Any, bool]]:
    """``(id, path, damaged assets, may load)`` for every generated variant."""
    for path in entries(assets):
        name = ".".join(map(str, path))
        yield f"{name}:deleted", path, changed(assets, path), may_load(app, path, True, None)
        original = get(assets, path)
        for kind, value in WRONG.items():
            if kind != json_kind(original):
                yield (
                    f"{name}:{kind}",
                    path,
                    changed(assets, path, value),
                    may_load(app, path, False, value),
                )


# -- files -----------------------------------------------------------------------------------


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def assets_of(path: Path) -> dict[str, Any]:
    return json.loads(members(path)["config.json"])["assets"]


def write_with_assets(source: Path, target: Path, assets: Any) -> Path:
    """``source``'s members with ``config.json``'s assets replaced, written atomically."""
    files = members(source)
    config = json.loads(files["config.json"])
    config["assets"] = assets
    files["config.json"] = json.dumps(config).encode()
    with atomic_write(target) as fh, zipfile.ZipFile(fh, "w") as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)
    return target


def loader(app: str) -> Callable[[Path], Any]:
    if app == "sentiment":
        from lstmkit.apps.sentiment.model import SentimentClassifier

        return SentimentClassifier.load
    if app == "textgen":
        from lstmkit.apps.textgen.model import LanguageModel

        return LanguageModel.load
    if app == "translate":
        from lstmkit.apps.translate.decode import Translator

        return Translator.load
    from lstmkit.apps.speech.evaluate import Recognizer

    return Recognizer.load


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("valid")
    return {app: make(folder / f"{app}.lstmkit") for app, make in MAKERS.items()}


def check_refused(app: str, path: Path, *fields: str) -> str:
    """Loading ``path`` raises a ModelFileError naming the file and each of ``fields``."""
    with pytest.raises(ModelFileError) as info:
        loader(app)(path)
    message = str(info.value)
    assert str(path) in message, message
    for field in fields:
        assert re.search(rf"\b{re.escape(field)}\b", message), (field, message)
    return message


# -- the generated matrix ----------------------------------------------------------------------


@pytest.mark.parametrize("app", sorted(MAKERS))
def test_every_deleted_or_mistyped_asset_is_refused_by_name(app, valid, tmp_path, monkeypatch):
    import importlib

    import lstmkit.models
    from lstmkit.models import load_model
    from lstmkit.models.saving import read_assets

    load = loader(app)
    load(valid[app])  # the valid file loads
    assets = assets_of(valid[app])
    # Rebuilding the network takes ~0.1 s a file and is the same for every variant (the
    # archive's own checks are tested in test_archive_limits.py): the loaders get the network
    # of the valid file with the variant's assets, as the validated reader reads them.
    network = load_model(valid[app], compile=False)

    def same_network(path: Any, compile: bool = True, **kwargs: Any) -> Any:
        network.assets = read_assets(path)
        return network

    module = {
        "sentiment": "sentiment.model",
        "textgen": "textgen.model",
        "translate": "translate.decode",
        "speech": "speech.evaluate",
    }[app]
    monkeypatch.setattr(lstmkit.models, "load_model", same_network)
    mod = importlib.import_module(f"lstmkit.apps.{module}")
    if hasattr(mod, "load_model"):
        monkeypatch.setattr(mod, "load_model", same_network)
    variants = list(matrix(app, assets))
    refused = 0
    for case, path, damaged, usable in variants:
        target = write_with_assets(valid[app], tmp_path / f"{app}.lstmkit", damaged)
        try:
            load(target)
        except ModelFileError as e:
            message = str(e)
            assert str(target) in message, (case, message)
            assert not names(message, path, app), (case, message)
            refused += 1
        else:
            assert usable, f"{case}: damaged assets were accepted"
    # Most variants damage the file: the matrix is not all free-form entries.
    assert refused >= 0.6 * len(variants), (refused, len(variants))


@pytest.mark.parametrize("app", sorted(MAKERS))
@pytest.mark.parametrize("value", [None, [], "assets", 3])
def test_assets_that_are_not_an_object(app, value, valid, tmp_path):
    target = write_with_assets(valid[app], tmp_path / "m.lstmkit", value)
    with pytest.raises(ModelFileError, match=re.escape(str(target))):
        loader(app)(target)
    if app in ("textgen", "speech"):  # the application's own section, not an object
        target = write_with_assets(
            valid[app], tmp_path / "s.lstmkit", {**assets_of(valid[app]), app: value}
        )
        check_refused(app, target)


# -- application-specific damage -----------------------------------------------------------


def test_sentiment_vocabulary_larger_than_the_embedding(valid, tmp_path):
    assets = assets_of(valid["sentiment"])
    vocab = assets["tokenizer"]["vectorizer"]["vocabulary"]
    big = changed(assets, ("tokenizer", "vectorizer", "max_tokens"), 200)
    big = changed(
        big, ("tokenizer", "vectorizer", "vocabulary"), vocab + [f"w{i}" for i in range(100)]
    )
    target = write_with_assets(valid["sentiment"], tmp_path / "m.lstmkit", big)
    check_refused("sentiment", target, "tokenizer", "embedding")
    # entries that are not strings, or duplicates, cannot rebuild the tokenizer
    for bad in ([*vocab[:3], 3], vocab[:3] + vocab[2:3]):
        damaged = changed(assets, ("tokenizer", "vectorizer", "vocabulary"), bad)
        check_refused(
            "sentiment", write_with_assets(valid["sentiment"], target, damaged), "tokenizer"
        )


def test_textgen_vocabulary_that_does_not_fit_the_network(valid, tmp_path):
    assets = assets_of(valid["textgen"])
    where = ("textgen", "vocabulary", "vectorizer", "vocabulary")
    vocab = get(assets, where)
    for bad in (vocab + [f"w{i}" for i in range(10)], vocab[:-5]):
        target = write_with_assets(
            valid["textgen"], tmp_path / "m.lstmkit", changed(assets, where, bad)
        )
        check_refused("textgen", target, "vocabulary", "embedding")
    target = write_with_assets(
        valid["textgen"],
        tmp_path / "m.lstmkit",
        changed(assets, ("textgen", "vocabulary", "level"), "syllable"),
    )
    check_refused("textgen", target, "vocabulary")


def test_translate_sentencepiece_blobs(valid, tmp_path):
    from lstmkit.apps.translate.data import Vocab

    assets = assets_of(valid["translate"])
    bigger = Vocab.train(["ein ganz anderer Text mit neuen Wörtern"] * 40 + ["x y z"] * 40, 400)
    noise = base64.b64encode(bytes(range(256)) * 4).decode()
    cases = {
        "not base64": "this is not base64!",
        "not ascii": "é" * 8,
        "not a SentencePiece model": noise,
        "truncated": assets["src_spm"][: len(assets["src_spm"]) // 2 // 4 * 4],
        "another size": bigger.to_text(),
        "empty": "",
    }
    for side in ("src_spm", "tgt_spm"):
        for case, text in cases.items():
            target = write_with_assets(
                valid["translate"], tmp_path / "m.lstmkit", changed(assets, (side,), text)
            )
            message = check_refused("translate", target, side)
            assert "INTERNAL" not in message or "SentencePiece" in message, (case, message)


def test_translate_sentencepiece_with_other_special_ids(valid, tmp_path):
    import io

    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["ein kleiner Test", "noch ein Test"] * 20),
        model_writer=buffer,
        vocab_size=30,
        hard_vocab_limit=False,
        minloglevel=2,
        num_threads=1,
    )  # the library's default ids: 0 unk, 1 bos, 2 eos, no pad
    assets = assets_of(valid["translate"])
    text = base64.b64encode(buffer.getvalue()).decode()
    target = write_with_assets(
        valid["translate"], tmp_path / "m.lstmkit", changed(assets, ("tgt_spm",), text)
    )
    check_refused("translate", target, "tgt_spm")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sample_rate", 0),
        ("sample_rate", -8000),
        ("sample_rate", "8000"),
        ("sample_rate", 8000.5),
        ("sample_rate", True),
        ("n_mels", 0),
        ("n_mels", 40),  # the network takes 80
        ("win_ms", 0),
        ("win_ms", float("nan")),
        ("hop_ms", -10.0),
        ("cepstra", -1),
        ("colour", "blue"),  # unknown key
    ],
)
def test_speech_features_out_of_range(field, value, valid, tmp_path):
    assets = assets_of(valid["speech"])
    damaged = changed(assets, ("speech", "features", field), value)
    target = write_with_assets(valid["speech"], tmp_path / "m.lstmkit", damaged)
    check_refused("speech", target, "features", field)


def test_speech_vocabulary_that_does_not_fit_the_output(valid, tmp_path):
    assets = assets_of(valid["speech"])
    vocab = assets["speech"]["vocabulary"]
    for bad in ([*vocab, "q"], vocab[:-1], [], [*vocab[:-1], 4]):
        target = write_with_assets(
            valid["speech"], tmp_path / "m.lstmkit", changed(assets, ("speech", "vocabulary"), bad)
        )
        check_refused("speech", target, "vocabulary")


# -- command lines -----------------------------------------------------------------------------

# One damaged file per application, refused by name.
DAMAGE = {
    "sentiment": (("tokenizer",), 5),
    "textgen": (("textgen", "vocabulary", "vectorizer"), "x"),
    "translate": (("tgt_spm",), "bm90IGEgbW9kZWw="),
    "speech": (("speech", "features", "sample_rate"), 0),
}


def damaged_file(app: str, valid: dict[str, Path], folder: Path) -> tuple[Path, str]:
    path, value = DAMAGE[app]
    damaged = changed(assets_of(valid[app]), path, value)
    return write_with_assets(valid[app], folder / f"{app}.lstmkit", damaged), str(path[-1])


@pytest.mark.parametrize("app", sorted(MAKERS))
def test_serve_refuses_a_damaged_application_file_with_one_line_and_exit_2(
    app, valid, tmp_path, monkeypatch
):
    import uvicorn

    from lstmkit.cli import app as cli
    from lstmkit.serve.cli import BAD_MODEL_FILE

    def must_not_serve(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("serve started on a damaged file")

    monkeypatch.setattr(uvicorn, "run", must_not_serve)
    target, field = damaged_file(app, valid, tmp_path)
    result = CliRunner().invoke(cli, ["serve", str(target), "--port", "0"])
    assert result.exit_code == BAD_MODEL_FILE == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert str(target) in lines[0] and field in lines[0], lines[0]


@pytest.mark.parametrize("app", sorted(MAKERS))
def test_application_cli_ends_with_one_line_on_a_damaged_file(app, valid, tmp_path):
    import importlib

    cli = importlib.import_module(f"lstmkit.apps.{app}.cli").app
    target, field = damaged_file(app, valid, tmp_path)
    args = {
        "sentiment": ["predict", "--model", str(target), "a good film"],
        "textgen": ["generate", "--model", str(target), "--length", "3"],
        "translate": ["text", "--model", str(target), "Ich habe Zeit."],
        "speech": ["transcribe", str(tmp_path / "a.wav"), "--model", str(target)],
    }[app]
    (tmp_path / "a.wav").write_bytes(wav_bytes())
    result = CliRunner().invoke(cli, args)
    # translate's CLI ends its load errors with status 2, the others their user errors with 1
    assert result.exit_code == (2 if app == "translate" else 1), result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].lower().startswith("error: "), result.output
    assert str(target) in " ".join(lines[0].split()) and field in lines[0], lines[0]
