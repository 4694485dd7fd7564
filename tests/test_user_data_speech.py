"""Speech recognition on the user's own recordings (issue 24): ``lstmkit speech train
--manifest``.

The test writes recordings in which each "letter" is a tone of its own pitch (``a`` 300 Hz,
``b`` 700 Hz, ``c`` 1500 Hz, a space a short pause) with transcripts, as a CSV manifest with
relative paths, a JSONL test manifest and a folder of ``x.wav`` + ``x.txt``; trains a small
character-level CTC model through the CLI, which learns to read the tones; then evaluates (WER
and CER), transcribes and serves it. Missing and non-audio files, empty transcripts and missing
columns are one-line errors naming the manifest line.
"""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from lstmkit.apps.speech.manifest import read_manifest, user_recordings
from lstmkit.cli import app

RATE = 8000
PITCH = {"a": 300.0, "b": 700.0, "c": 1500.0}
TINY = [
    "--epochs", "25", "--lstm-units", "32", "--lstm-layers", "1", "--conv-filters", "8",
    "--batch-size", "8", "--learning-rate", "0.005", "--warmup-steps", "10", "--n-mels", "40",
    "--no-augment", "--stretch-prob", "0", "--warp-prob", "0", "--dropout", "0.0",
    "--beam-size", "4", "--threads", "1", "--seed", "0", "--verbose", "0",
]  # fmt: skip


def speak(text: str, seed: int) -> np.ndarray:
    """0.15 s of a letter's tone per letter, 0.1 s of quiet for a space, with noise."""
    rng = np.random.default_rng(seed)
    parts = [np.zeros(int(0.05 * RATE))]
    for ch in text:
        n = int((0.1 if ch == " " else 0.15) * RATE)
        t = np.arange(n) / RATE
        parts.append(np.zeros(n) if ch == " " else 0.4 * np.sin(2 * np.pi * PITCH[ch] * t))
        parts.append(np.zeros(int(0.03 * RATE)))
    parts.append(np.zeros(int(0.05 * RATE)))
    signal = np.concatenate(parts)
    return (signal + rng.normal(0, 0.005, signal.shape)).astype(np.float32)


def transcripts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = ["".join(rng.choice("abc") for _ in range(rng.randint(1, 3)))
                 for _ in range(rng.randint(1, 2))]  # fmt: skip
        out.append(" ".join(words))
    return out


def write_corpus(d: Path, n: int, seed: int, name: str) -> list[tuple[str, str]]:
    (d / "audio" / name).mkdir(parents=True, exist_ok=True)
    rows = []
    for i, text in enumerate(transcripts(n, seed)):
        rel = f"audio/{name}/{i}.wav"
        soundfile.write(d / rel, speak(text, seed * 1000 + i), RATE, subtype="PCM_16")
        rows.append((rel, text))
    return rows


def test_manifests_and_folders_read_the_same_recordings(tmp_path: Path) -> None:
    rows = write_corpus(tmp_path, 4, 0, "x")
    (tmp_path / "m.csv").write_text(
        "path,sentence\n" + "".join(f"{a},{t.upper()}\n" for a, t in rows)
    )  # Common Voice's column names; transcripts upper-cased (normalised back)
    got = read_manifest(tmp_path / "m.csv", "path", "sentence")
    assert [r.transcript for r in got] == [t for _, t in rows]
    assert got[0].path == tmp_path / rows[0][0] and got[0].where == f"{tmp_path / 'm.csv'}:2"
    for rel, text in rows:
        (tmp_path / rel).with_suffix(".txt").write_text(text + "\n")
    folder = read_manifest(tmp_path / "audio")
    assert sorted(r.transcript for r in folder) == sorted(t for _, t in rows)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("audio,text\nmissing.wav,ab\n", r"m\.csv:2: the audio file .*missing\.wav does not exist"),
        ("audio,text\nnot_audio.wav,ab\n",
         r"m\.csv:2: .*not_audio\.wav is not an audio file soundfile can read"),
        ("audio,text\naudio/x/0.wav,  \n", r"m\.csv:2: 'text' is empty"),
        ("file,text\naudio/x/0.wav,ab\n", r"no column 'audio' \(columns: 'file', 'text'\).*"
         r"--audio-column"),
        ("audio,text\naudio/x/0.wav,ab\naudio/x/0.wav,ab\n", "listed twice"),
    ],
)  # fmt: skip
def test_bad_manifests_name_the_line(tmp_path, content, message) -> None:
    write_corpus(tmp_path, 1, 0, "x")
    (tmp_path / "not_audio.wav").write_text("this is text, not audio")
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        read_manifest(tmp_path / "m.csv")


def test_bad_manifest_through_the_cli_writes_nothing(tmp_path) -> None:
    (tmp_path / "m.csv").write_text("audio,text\nmissing.wav,ab\n")
    out = tmp_path / "m.lstmkit"
    result = CliRunner().invoke(
        app, ["speech", "train", "--manifest", str(tmp_path / "m.csv"), "--output", str(out),
              "--cache-dir", str(tmp_path / "cache"), *TINY],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and re.search(r"m\.csv:2: the audio file", lines[0]), result.output
    assert not out.exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("speech_user")
    train_rows = write_corpus(d, 96, 1, "train")
    test_rows = write_corpus(d, 16, 2, "test")
    (d / "train.csv").write_text("audio,text\n" + "".join(f"{a},{t}\n" for a, t in train_rows))
    (d / "test.jsonl").write_text(
        "".join(json.dumps({"audio": a, "text": t}) + "\n" for a, t in test_rows)
    )
    out = d / "mine.lstmkit"
    result = CliRunner().invoke(
        app, ["speech", "train", "--manifest", str(d / "train.csv"), "--test-manifest",
              str(d / "test.jsonl"), "--output", str(out), "--cache-dir", str(d / "cache"),
              *TINY],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return d, out, result.output


def test_a_character_model_learns_the_users_recordings(trained) -> None:
    from lstmkit.apps.speech.evaluate import Recognizer

    _, out, output = trained
    rec = Recognizer.load(out)
    assert rec.unit == "char" and rec.vocabulary == (" ", "a", "b", "c")
    assert rec.model.n_classes == 5
    report = json.loads(out.with_suffix(".report.json").read_text())
    test = report["scores"]["test"]
    assert test["n"] == 16
    assert test["greedy"]["cer"] < 0.2, test  # an untrained model: CER ~1
    assert "test WER greedy" in output


def test_evaluate_transcribe_and_serve_the_users_model(trained) -> None:
    import httpx

    from lstmkit.serve import create_app
    from test_serve_models import LiveServer

    d, out, _ = trained
    runner = CliRunner()
    res = runner.invoke(app, ["speech", "evaluate", "-m", str(out), "--manifest",
                              str(d / "test.jsonl"), "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    scores = json.loads(res.output)[str(d / "test.jsonl")]
    assert scores["n"] == 16 and 0.0 <= scores["beam"]["cer"] < 0.2
    soundfile.write(d / "abc.wav", speak("abc ca", 99), RATE, subtype="PCM_16")
    res = runner.invoke(app, ["speech", "transcribe", "-m", str(out), str(d / "abc.wav")])
    assert res.exit_code == 0 and set(res.output.strip()) <= set("abc "), res.output
    buf = io.BytesIO()
    soundfile.write(buf, speak("ab", 7), RATE, format="WAV", subtype="PCM_16")
    with LiveServer(create_app([str(out)], workers=1)) as live:
        r = httpx.post(f"{live.url}/v1/transcribe", files={"file": ("x.wav", buf.getvalue())},
                       timeout=30)  # fmt: skip
        assert r.status_code == 200, r.text
        assert set(r.json()["text"]) <= set("abc ")


def test_the_hash_split_of_a_manifest(tmp_path) -> None:
    from lstmkit.apps.speech.config import SpeechConfig

    rows = write_corpus(tmp_path, 60, 3, "x")
    (tmp_path / "m.tsv").write_text("audio\ttext\n" + "".join(f"{a}\t{t}\n" for a, t in rows))
    parts = user_recordings(SpeechConfig(manifest=str(tmp_path / "m.tsv")))
    ids = [r.id for rs in parts.values() for r in rs]
    assert sorted(ids) == sorted(a for a, _ in rows) and all(parts.values())
