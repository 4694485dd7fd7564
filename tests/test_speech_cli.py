"""``lstmkit speech …``: help on every flag, flags = config fields, clear one-line errors,
synthesize / evaluate / transcribe end to end on a tiny corpus with a tiny model."""

from __future__ import annotations

import dataclasses
import json
import shutil

import click
import numpy as np
import pytest
import soundfile
import typer
from typer.testing import CliRunner

from lstmkit.apps.speech.cli import app
from lstmkit.apps.speech.config import SpeechConfig
from lstmkit.apps.speech.evaluate import Recognizer
from lstmkit.apps.speech.features import FeatureSpec
from lstmkit.apps.speech.model import SpeechRecognizer
from lstmkit.datasets.digits import VOCABULARY
from lstmkit.utils import set_random_seed

runner = CliRunner()
HAVE_TOOLS = all(shutil.which(t) for t in ("espeak-ng", "flite", "sox", "text2wave"))


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    set_random_seed(0)
    model = SpeechRecognizer(conv_filters=4, lstm_units=8, lstm_layers=1, frontend="conv1d")
    path = tmp_path_factory.mktemp("model") / "tiny.lstmkit"
    Recognizer(model, VOCABULARY, FeatureSpec(), {"data_dir": "nowhere"}).save(path)
    return path


def test_every_command_and_flag_has_help():
    command = typer.main.get_command(app)
    assert set(command.commands) == {"synthesize", "train", "evaluate", "transcribe"}
    for name, sub in command.commands.items():
        assert sub.help, name
        for param in sub.params:
            if isinstance(param, click.Option):
                assert param.help and param.help.strip(), f"{name} {param.opts}"
            else:
                assert getattr(param, "help", None), f"{name} argument {param.name}"


def test_train_flags_are_the_config_fields():
    train = typer.main.get_command(app).commands["train"]
    names = {p.name for p in train.params}
    assert {f.name for f in dataclasses.fields(SpeechConfig)} <= names
    help_text = run("train", "--help").output
    assert "--lstm-units" in help_text and "--no-augment" in help_text


def test_synthesize_takes_the_data_fields_including_the_shares():
    synthesize = typer.main.get_command(app).commands["synthesize"]
    names = {p.name for p in synthesize.params}
    assert {"festival_share", "pico_share", "n_train", "data_dir", "data_seed"} <= names
    result = run("synthesize", "--festival-share", "0.7", "--pico-share", "0.4")
    assert result.exit_code == 1
    assert "festival_share + pico_share must not pass 1, got 0.7 + 0.4" in result.output


def test_bad_config_and_values_end_with_one_line_errors(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"lstm_unit": 3}')
    result = run("train", "--config", str(cfg))
    assert result.exit_code == 1 and "unknown key 'lstm_unit'" in result.output
    result = run("train", "--dropout", "1.5")
    assert result.exit_code == 1 and "dropout must be in [0, 1)" in result.output
    assert "Traceback" not in result.output


def test_config_file_values_are_not_overwritten_by_defaults(tmp_path):
    """The file's values reach the config and flags left at their defaults do not overwrite
    them (they did while the flags' source was compared with click's own ParameterSource
    class, which is not typer's copy); a flag given on the command line wins."""
    from lstmkit.apps.speech.cli import _make_config

    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"n_train": 5, "lstm_units": 12}')
    train = typer.main.get_command(app).commands["train"]
    fields = {f.name for f in dataclasses.fields(SpeechConfig)}
    ctx = train.make_context("train", ["--config", str(cfg), "--lstm-units", "20"])
    flags = {k: v for k, v in ctx.params.items() if k in fields}
    made = _make_config(ctx, cfg, flags)
    assert made.n_train == 5 and made.lstm_units == 20
    assert made.epochs == SpeechConfig().epochs


def test_transcribe_errors_are_clear(model_file, tmp_path):
    result = run("transcribe", str(tmp_path / "missing.wav"), "--model", str(model_file))
    assert result.exit_code == 1 and "no such file" in result.output
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio\n" * 100)
    result = run("transcribe", str(notes), "--model", str(model_file))
    assert result.exit_code == 1 and "could not be decoded" in result.output
    result = run("transcribe", str(notes), "--model", str(tmp_path / "none.lstmkit"))
    assert result.exit_code == 1 and "no model file" in result.output
    result = run("transcribe", str(notes), "--model", str(model_file), "--decoder", "viterbi")
    assert result.exit_code == 1 and "--decoder must be one of greedy, beam" in result.output


def test_transcribe_prints_one_line_per_file(model_file, tmp_path):
    silent = tmp_path / "silent.flac"
    soundfile.write(silent, np.zeros((22050, 2), np.float32), 22050)  # stereo, 22.05 kHz
    tone = tmp_path / "tone.wav"
    soundfile.write(tone, 0.1 * np.sin(np.arange(8000) / 3.0), 8000)
    result = run("transcribe", str(silent), "--model", str(model_file))
    assert result.exit_code == 0 and result.output == "\n"  # silence: empty transcript
    result = run("transcribe", str(silent), str(tone), "--model", str(model_file),
                 "--decoder", "greedy")  # fmt: skip
    lines = result.output.splitlines()
    assert result.exit_code == 0 and len(lines) == 2
    assert lines[0] == f"{silent}: " and lines[1].startswith(f"{tone}:")
    words = lines[1].split(":", 1)[1].split()
    assert set(words) <= set(VOCABULARY)


@pytest.mark.skipif(not HAVE_TOOLS, reason="needs espeak-ng, flite, festival and sox")
def test_synthesize_then_evaluate(model_file, tmp_path):
    data = tmp_path / "digits"
    result = run("synthesize", "--data-dir", str(data), "--n-train", "1", "--n-val", "1",
                 "--n-test", "2", "--n-real", "2", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 train, 1 val, 2 test, 2 real" in result.output
    result = run("evaluate", "--model", str(model_file), "--data-dir", str(data),
                 "--cache-dir", str(tmp_path / "cache"), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output)
    assert set(scores) == {"test", "real"} and scores["real"]["n"] == 2
    assert set(scores["test"]["greedy"]) == {"wer", "cer", "ser"}
    cache = str(tmp_path / "cache")
    result = run("evaluate", "--model", str(model_file), "--data-dir", str(data),
                 "--cache-dir", cache, "--set", "val", "--errors", "1")  # fmt: skip
    assert result.exit_code == 0 and result.output.startswith("val (1 utterances): greedy WER")


@pytest.mark.skipif(not HAVE_TOOLS, reason="needs espeak-ng, flite, festival and sox")
def test_train_with_two_processes(tmp_path):
    """``--nproc 2``: the parent makes the corpus and the feature caches once, two gloo
    processes train on their shares of each batch, rank 0 alone prints and saves a model file
    that loads and transcribes."""
    import os
    import subprocess
    import sys

    out = tmp_path / "model.lstmkit"
    cmd = [sys.executable, "-m", "lstmkit.cli", "speech", "train", "--nproc", "2"]
    cmd += ["--data-dir", str(tmp_path / "digits"), "--cache-dir", str(tmp_path / "cache")]
    cmd += ["--n-train", "6", "--n-val", "2", "--n-test", "0", "--n-real", "0", "--epochs", "1"]
    cmd += ["--frontend", "conv1d", "--conv-filters", "4", "--lstm-layers", "1"]
    cmd += ["--lstm-units", "8", "--batch-size", "4", "--threads", "1", "--verbose", "0"]
    cmd += ["--output", str(out)]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=500)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("saved") == 1, res.stdout
    rec = Recognizer.load(out)
    wav = next((tmp_path / "digits").rglob("*.wav"))
    assert isinstance(rec.transcribe_file(wav), str)
