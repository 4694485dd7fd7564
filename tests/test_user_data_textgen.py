"""Text generation on the user's own text (issue 24): ``lstmkit textgen train --data``.

End to end through the CLI on files the test writes: a folder of ``.txt`` files plus standard
input, trained, evaluated on a file, sampled from and served. Bad input (not UTF-8, binary,
empty, missing, an empty folder, a bad fraction) is one line naming the file and the byte, and
leaves no model file behind.
"""

from __future__ import annotations

import io
import json
import random
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstmkit.cli import app
from lstmkit.data.user_text import decode_text, read_texts, split_tail

TINY = [
    "--steps", "40", "--units", "32", "--embedding-dim", "16", "--batch-size", "4",
    "--seq-len", "20", "--eval-every", "0", "--checkpoint-every", "0", "--seed", "3", "-q",
]  # fmt: skip


def _lines(seed: int, n: int) -> str:
    rng = random.Random(seed)
    words = "the cat sat on a mat and a dog ran to the park while birds sang".split()
    return "".join(" ".join(rng.choice(words) for _ in range(7)) + "\n" for _ in range(n))


def test_decode_names_the_byte_and_line_of_bad_input() -> None:
    with pytest.raises(ValueError, match=r"f: not UTF-8 text: byte offset 6 \(line 2\) holds ff"):
        decode_text(b"abc\nde\xff\n", "f")
    with pytest.raises(ValueError, match="f: a binary file, not text: a NUL byte at byte offset 2"):
        decode_text(b"ab\x00cd", "f")
    with pytest.raises(ValueError, match="f: the file is empty"):
        decode_text(b" \n\t", "f")
    # a BOM is dropped and Windows / old Mac line ends become \n
    assert decode_text("\ufeffa\r\nb\rc".encode(), "f") == "a\nb\nc"


def test_read_texts_takes_files_folders_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.txt").write_text("bee\n")
    (tmp_path / "d" / "sub" / "a.txt").write_text("ay\n")
    (tmp_path / "d" / "notes.md").write_text("ignored\n")
    (tmp_path / "one.txt").write_text("one")
    got = read_texts(
        [str(tmp_path / "one.txt"), str(tmp_path / "d"), "-"], stdin=io.BytesIO(b"from stdin\n")
    )
    assert [s.text for s in got] == ["one", "bee\n", "ay\n", "from stdin\n"]  # sorted paths
    assert got[-1].name == "<stdin>"
    with pytest.raises(FileNotFoundError, match=r"missing\.txt: no such file or folder"):
        read_texts([str(tmp_path / "missing.txt")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"a folder without \.txt files"):
        read_texts([str(tmp_path / "empty")])
    with pytest.raises(ValueError, match="only once"):
        read_texts(["-", "-"], stdin=io.BytesIO(b"x"))


def test_split_tail_cuts_at_a_line_end() -> None:
    text = "".join(f"line {i}\n" for i in range(100))
    head, tail = split_tail(text, 0.1)
    assert head + tail == text and head.endswith("\n") and tail.startswith("line ")
    assert abs(len(tail) / len(text) - 0.1) < 0.02
    with pytest.raises(ValueError, match="too short"):
        split_tail("ab", 0.5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A char model trained through the CLI on a folder of two files plus stdin."""
    d = tmp_path_factory.mktemp("tg")
    (d / "corpus").mkdir()
    (d / "corpus" / "a.txt").write_text(_lines(0, 150), encoding="utf-8")
    (d / "corpus" / "b.txt").write_text(_lines(1, 150), encoding="utf-8")
    (d / "test.txt").write_text(_lines(2, 40), encoding="utf-8")
    out = d / "mine.lstmkit"
    result = CliRunner().invoke(
        app,
        ["textgen", "train", "--data", str(d / "corpus"), "--data", "-", "--test",
         str(d / "test.txt"), "--valid-fraction", "0.2", "--output", str(out), *TINY],
        input=_lines(3, 50),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return d, out, result.output


def test_training_on_user_text_records_the_split(trained) -> None:
    from lstmkit.apps.textgen.model import LanguageModel

    d, out, output = trained
    assert "validation " in output and "test " in output and "nats/char" in output
    lm = LanguageModel.load(out)
    info = lm.info["data"]
    assert info["corpus"] == "user"
    assert info["train_files"] == [str(d / "corpus" / "a.txt"), str(d / "corpus" / "b.txt"),
                                   "<stdin>"]  # fmt: skip
    assert info["validation_fraction"] == 0.2 and info["test_files"] == [str(d / "test.txt")]
    total = info["train_chars"] + info["validation_chars"]
    assert abs(info["validation_chars"] / total - 0.2) < 0.02
    # the vocabulary is the user's characters (the plays' 71 would include capitals)
    assert set(lm.vocab.tokens[2:]) == set("the cat sat on a mat and a dog ran to the park while "
                                           "birds sang\n")  # fmt: skip


def test_evaluate_generate_and_serve_the_model(trained) -> None:
    import httpx

    from lstmkit.serve import create_app
    from test_serve_models import LiveServer

    d, out, _ = trained
    runner = CliRunner()
    result = runner.invoke(
        app, ["textgen", "evaluate", "-m", str(out), "--data", str(d / "test.txt"), "--json"]
    )
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output)["data"]
    assert scored["tokens"] == len((d / "test.txt").read_text()) - 1 and scored["nats"] > 0
    result = runner.invoke(
        app, ["textgen", "generate", "-m", str(out), "--prompt", "the ", "--length", "30",
              "--seed", "1", "--no-stream"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(result.output.strip()) >= 30
    assert set(result.output) <= set("the cat sat on a mat and a dog ran to the park while "
                                     "birds sang\n")  # fmt: skip
    with LiveServer(create_app([str(out)], workers=1)) as live:
        r = httpx.post(
            f"{live.url}/v1/generate", json={"prompt": "the ", "length": 10, "seed": 1}, timeout=30
        )
        assert r.status_code == 200
        assert json.loads(r.text.splitlines()[-1])["tokens"] == 10


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"good line\nw\xe9rld\n", r"bad.txt: not UTF-8 text: byte offset 11 \(line 2\)"),
        (b"abc\x00def", "bad.txt: a binary file, not text: a NUL byte at byte offset 3"),
        (b"", "bad.txt: the file is empty"),
    ],
)
def test_bad_text_is_one_line_and_writes_nothing(tmp_path, content, message) -> None:
    (tmp_path / "bad.txt").write_bytes(content)
    out = tmp_path / "m.lstmkit"
    result = CliRunner().invoke(
        app, ["textgen", "train", "--data", str(tmp_path / "bad.txt"), "--output", str(out), *TINY]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert re.search(message, lines[0]), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt"]  # no model, no curve


def test_bad_split_options(tmp_path) -> None:
    (tmp_path / "a.txt").write_text(_lines(0, 20))
    runner = CliRunner()
    result = runner.invoke(
        app, ["textgen", "train", "--data", str(tmp_path / "a.txt"), "--valid-fraction", "1", *TINY]
    )
    assert result.exit_code == 1 and "--valid-fraction" in result.output
    result = runner.invoke(app, ["textgen", "train", "--valid", str(tmp_path / "a.txt"), *TINY])
    assert result.exit_code == 1 and "--valid and --test go with --data" in result.output


@pytest.mark.parametrize(
    "module",
    ["lstmkit.data.user_text", "lstmkit.data.tables", "lstmkit.apps.speech.manifest"],
)
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
