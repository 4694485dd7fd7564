"""Issue 28: careless input to the CLIs and to ``fit`` gets a clear error, never a crash, a
traceback or a silent wrong result (thread counts, translation input and flags, audio length,
``fit``'s arguments, masks given as lists)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from typer.testing import CliRunner

import lstmkit.layers as L
from lstmkit.cli import app
from lstmkit.data.audio import load_audio
from lstmkit.models import Sequential
from lstmkit.utils import check_threads, max_threads, set_threads
from test_serve_models import make_sentiment, make_speech, make_translate

# -- thread counts ------------------------------------------------------------------------------


def test_thread_counts_are_bounded_by_the_machine() -> None:
    top = max_threads()
    assert top >= (os.cpu_count() or 1)
    assert check_threads(0) == 0 and check_threads(top) == top
    for bad in (top + 1, 32768, -1):
        with pytest.raises(ValueError, match=rf"--threads must be between 0 .* and {top} .*{bad}"):
            check_threads(bad, "--threads")
    for bad in (2.0, "2", True):
        with pytest.raises(TypeError, match="threads must be an integer"):
            check_threads(bad)
    before = torch.get_num_threads()
    with pytest.raises(ValueError):
        set_threads(10**6)
    assert torch.get_num_threads() == before  # refused before torch saw it
    set_threads(0)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    "command",
    [
        ["sentiment", "predict", "--threads", "{n}", "good"],
        ["textgen", "generate", "--threads", "{n}"],
        ["experiment", "adding", "--quick", "--threads", "{n}"],
        ["serve", "--threads", "{n}", "missing.lstmkit"],
    ],
)
def test_every_threads_flag_refuses_more_than_the_machine_has(command: list[str]) -> None:
    """32768 segfaulted in libgomp and 8192 hung; now one line and a non-zero exit, at once."""
    for n in (32768, max_threads() + 1):
        args = [a.format(n=n) for a in command]
        result = CliRunner().invoke(app, args)
        assert result.exit_code in (1, 2), result.output
        assert f"got {n}" in result.output and "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    "command",
    [
        ["sentiment", "train", "--threads", "50000", "--output", "{out}/m.lstmkit"],
        ["speech", "train", "--threads", "50000", "--output", "{out}/m.lstmkit"],
        ["translate", "train", "--set", "threads=50000", "--out", "{out}"],
        ["textgen", "train", "--threads", "50000", "--output", "{out}/m.lstmkit"],
    ],
)
def test_training_refuses_too_many_threads_before_any_work(
    command: list[str], tmp_path: Path
) -> None:
    """Every app's ``train`` applies the bound (a config from a JSON file skips the flag) before
    reading data or writing anything."""
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [a.format(out=out) for a in command])
    assert result.exit_code in (1, 2), result.output
    assert "threads must be between 0 (torch's default) and" in result.output
    assert "got 50000" in result.output and not out.exists()


# -- translation CLI ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def translate_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_translate(tmp_path_factory.mktemp("careless") / "translate.lstmkit")


def _run_cli(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lstmkit.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_translate_text_invalid_utf8_is_one_line(translate_model: Path) -> None:
    """One invalid byte on stdin printed a 72-line traceback."""
    done = _run_cli(["translate", "text", "-m", str(translate_model)], b"ein Haus\nein \xff Haus\n")
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "stdin line 2 is not UTF-8: byte 0xff at offset 4" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_translate_text_invalid_utf8_argument(translate_model: Path) -> None:
    done = _run_cli(["translate", "text", "-m", str(translate_model), os.fsdecode(b"ein \xfe")])
    err = done.stderr.decode()
    assert done.returncode == 2 and "sentence 1 is not UTF-8: byte 0xfe at character 4" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--beam", "0"], "--beam: beam_size must be a positive integer, got 0"),
        (["--alpha", "nan"], "--alpha: length_penalty must be a finite number, got nan"),
        (["--alpha", "inf"], "--alpha: length_penalty must be a finite number, got inf"),
        (["--beta", "-1"], "--beta: coverage_penalty must be >= 0, got -1.0"),
    ],
)
def test_translate_decoding_flags_are_checked(
    translate_model: Path, flags: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        app, ["translate", "text", "-m", str(translate_model), *flags, "ein Haus"]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_translator_api_refuses_bad_beams_and_text(translate_model: Path) -> None:
    from lstmkit.apps.translate.config import TranslateConfig
    from lstmkit.apps.translate.decode import Translator

    translator = Translator.load(translate_model)
    with pytest.raises(ValueError, match="beam_size must be an integer >= 1, got 0"):
        translator.translate(["ein Haus"], beam_size=0)
    with pytest.raises(ValueError, match=r"beam_size must be an integer >= 1, got 2\.5"):
        translator.translate(["ein Haus"], beam_size=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"lines\[1\] is not valid UTF-8 text: character 2"):
        translator.translate(["gut", "ab\udcff"])
    with pytest.raises(TypeError, match=r"lines\[0\] must be a str, got bytes"):
        translator.translate([b"ein Haus"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="length_penalty must be a finite number, got nan"):
        TranslateConfig(length_penalty=float("nan"))


# -- speech: long audio ---------------------------------------------------------------------------


def _wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    return path


def test_load_audio_refuses_long_files_before_decoding(tmp_path: Path) -> None:
    path = _wav(tmp_path / "long.wav", 3.0)
    assert load_audio(path, 8000, max_seconds=5).shape == (24000,)
    with pytest.raises(ValueError, match=r"long.wav lasts 3.0 s; at most 2 s are read"):
        load_audio(path, 8000, max_seconds=2)
    for bad in (0, -1, float("nan"), "2"):
        with pytest.raises(ValueError, match="max_seconds must be a positive number"):
            load_audio(path, 8000, max_seconds=bad)  # type: ignore[arg-type]


def test_speech_transcribe_has_the_servers_duration_limit(tmp_path: Path) -> None:
    """An hour of audio ran the beam decoder 60 s+ with 1.3 GB; now refused unless asked."""
    from lstmkit.apps.speech.evaluate import MAX_SECONDS
    from lstmkit.serve.handlers import SpeechHandler

    assert MAX_SECONDS == SpeechHandler.max_seconds
    model = make_speech(tmp_path / "speech.lstmkit")
    long = _wav(tmp_path / "long.wav", 3.0)
    runner = CliRunner()
    args = ["speech", "transcribe", str(long), "--model", str(model), "--decoder", "greedy"]
    refused = runner.invoke(app, [*args, "--max-seconds", "2"])
    assert refused.exit_code == 1 and "lasts 3.0 s; at most 2 s are read" in refused.output
    allowed = runner.invoke(app, [*args, "--max-seconds", "0"])  # 0: no limit
    assert allowed.exit_code == 0, allowed.output
    bad = runner.invoke(app, [*args, "--max-seconds", "nan"])
    assert bad.exit_code == 1 and "--max-seconds must be a number >= 0" in bad.output


# -- fit / evaluate / predict arguments -----------------------------------------------------------


def _model() -> Sequential:
    torch.manual_seed(0)
    model = Sequential([L.Input((5, 3)), L.LSTM(4), L.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


X = np.random.default_rng(0).normal(size=(8, 5, 3)).astype("float32")
Y = np.array([0, 1] * 4)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"class_weight": {"a": 1.0}}, ValueError, r"class_weight: keys must be class indices"),
        ({"class_weight": {0: float("nan"), 1: 1.0}}, ValueError, r"weight of class 0 must be"),
        ({"class_weight": {0: -1.0, 1: 1.0}}, ValueError, r"weight of class 0 must be .*>= 0"),
        ({"validation_data": (X,)}, ValueError, r"validation_data must be \(x_val, y_val\)"),
        ({"validation_data": (X, Y, None, None)}, ValueError, r"a tuple of 4 item"),
        ({"shuffle": "yes"}, ValueError, r"fit: shuffle must be True, False or 'batch'"),
        ({"shuffle": 1}, ValueError, r"fit: shuffle must be"),
        ({"steps_per_epoch": 0}, ValueError, r"fit: steps_per_epoch must be None or an integer"),
        ({"steps_per_epoch": 1.5}, ValueError, r"fit: steps_per_epoch must be"),
        ({"validation_data": (X, Y), "validation_steps": 0}, ValueError, r"validation_steps"),
        ({"validation_data": (X, Y), "validation_freq": 0}, ValueError, r"validation_freq must"),
        ({"callbacks": 3}, TypeError, r"fit: callbacks must be a list of Callback, got int"),
        ({"callbacks": [print]}, TypeError, r"callbacks: expected Callback instances, got builtin"),
    ],
)
def test_fit_names_the_bad_argument(kwargs: dict, error: type, message: str) -> None:
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(error, match=message):
        model.fit(X, Y, epochs=1, verbose=0, **kwargs)
    after = list(model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))  # nothing trained


def test_zero_steps_are_refused_by_predict_and_evaluate() -> None:
    model = _model()
    with pytest.raises(ValueError, match="steps must be None or an integer >= 1, got 0"):
        model.predict(X, steps=0, verbose=0)
    with pytest.raises(ValueError, match="steps must be None or an integer >= 1, got 0"):
        model.evaluate(X, Y, steps=0, verbose=0)
    assert model.predict(X, steps=None, batch_size=4, verbose=0).shape == (8, 2)


def test_valid_class_weights_still_weigh_the_loss() -> None:
    """numpy integer keys work, and doubling every weight doubles the loss."""
    model = _model()
    one = model.fit(X, Y, class_weight={np.int64(0): 1.0, 1: 1.0}, shuffle=False, verbose=0)
    model = _model()
    two = model.fit(X, Y, class_weight={0: 2.0, 1: 2}, shuffle=False, verbose=0)
    assert two.history["loss"][0] == pytest.approx(2 * one.history["loss"][0], rel=1e-5)


# -- masks given as Python lists ------------------------------------------------------------------


def test_masks_as_lists_are_checked_not_indexed() -> None:
    """``mask=[]`` raised IndexError; a nested list of bools named a list, not its shape."""
    layer = L.SimpleRNN(3)
    with pytest.raises(ValueError, match=r"expected mask of shape \(0, 7\) \(B, T\), got \(0,\)"):
        layer(torch.zeros(0, 7, 4), mask=[])
    with pytest.raises(ValueError, match="ragged or non-boolean list"):
        layer(torch.zeros(2, 3, 4), mask=[[True, False], [True]])
    x = torch.randn(2, 3, 4)
    as_list = layer(x, mask=[[True, True, False], [True, False, False]])
    as_tensor = layer(x, mask=torch.tensor([[True, True, False], [True, False, False]]))
    torch.testing.assert_close(as_list, as_tensor)
    torch.testing.assert_close(layer(x, mask=[None]), layer(x))
    assert not torch.allclose(as_tensor, layer(x))  # the mask did something


def test_sentiment_predict_thread_bound_leaves_the_model_usable(tmp_path: Path) -> None:
    model = make_sentiment(tmp_path / "s.lstmkit")
    ok = CliRunner().invoke(app, ["sentiment", "predict", "--model", str(model), "good film"])
    assert ok.exit_code == 0, ok.output
