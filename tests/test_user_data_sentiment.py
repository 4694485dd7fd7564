"""Text classification on the user's own data (issue 24): ``lstmkit sentiment train --data``.

The test writes small labelled sets in every format (CSV with quotes, commas and line breaks
inside fields; TSV; JSONL; a folder of one subfolder per class), trains through the CLI, then
evaluates (per-class scores, confusion matrix), predicts (class names) and serves the model.
Each kind of bad input is one line naming the file and line, and leaves no model file.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstmkit.apps.sentiment.user_data import class_names, hash_fraction, read_labelled
from lstmkit.cli import app

WORDS = {
    "sport": "match goal team score league coach player win",
    "food": "recipe taste dinner spicy bread cheese soup sweet",
    "tech": "laptop software battery screen code chip update phone",
}
FILLER = "the a this that really very quite so and with".split()
TINY = [
    "--epochs", "8", "--embedding-dim", "16", "--units", "16", "--units2", "8", "--maxlen", "12",
    "--batch-size", "16", "--learning-rate", "0.02", "--min-count", "1", "--max-tokens", "200",
    "--patience", "8", "--monitor", "val_loss", "--seed", "0", "-q",
]  # fmt: skip


def examples(n: int, classes: tuple[str, ...] = ("sport", "food", "tech"), seed: int = 0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = classes[i % len(classes)]
        words = [rng.choice(WORDS[label].split()) for _ in range(3)]
        words += [rng.choice(FILLER) for _ in range(3)]
        rng.shuffle(words)
        out.append((" ".join(words), label))
    return out


def write_csv(path: Path, rows, delimiter: str = ",", header=("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


# -- reading -------------------------------------------------------------------------------------


def test_every_format_reads_the_same_examples(tmp_path: Path) -> None:
    rows = [('a "quoted", comma text\nover two lines', "pos"), ("plain\ttabbed? no", "neg")]
    csv_path = write_csv(tmp_path / "d.csv", rows)
    tsv_path = write_csv(tmp_path / "d.tsv", [("a, b", "pos"), ("c", "neg")], delimiter="\t")
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "x y", "label": 1}\n\n{"text": "z", "label": 0}\n')
    (tmp_path / "folder" / "pos").mkdir(parents=True)
    (tmp_path / "folder" / "neg" / "deep").mkdir(parents=True)
    (tmp_path / "folder" / "pos" / "1.txt").write_text("good one\n")
    (tmp_path / "folder" / "neg" / "deep" / "2.txt").write_text("bad one")
    got = read_labelled(csv_path)
    assert got.texts == [rows[0][0], rows[1][0]] and got.labels == ["pos", "neg"]
    assert got.where == [f"{csv_path}:3", f"{csv_path}:4"]  # line where each row ends
    assert read_labelled(tsv_path).texts == ["a, b", "c"]
    assert read_labelled(jsonl).labels == ["1", "0"]
    assert read_labelled(jsonl).where == [f"{jsonl}:1", f"{jsonl}:3"]
    folder = read_labelled(tmp_path / "folder")
    assert folder.texts == ["bad one", "good one"] and folder.labels == ["neg", "pos"]
    assert read_labelled(csv_path, label_column=None).labels is None


@pytest.mark.parametrize(
    ("name", "content", "args", "message"),
    [
        ("d.csv", "body,label\nx,1\n", {}, r"d\.csv: no column 'text' \(columns: 'body', "),
        ("d.csv", "text,label\nx,1\n,0\n", {}, r"d\.csv:3: 'text' is empty"),
        ("d.csv", "text,label\nx,1\ny,\n", {}, r"d\.csv:3: 'label' is empty"),
        ("d.csv", "text,label\nx,1,extra\n", {}, r"d\.csv:2: 3 fields where the header has 2"),
        ("d.csv", "text,label\n", {}, r"d\.csv: no records"),
        ("d.jsonl", '{"text": "x", "label": 1}\n[1]\n', {}, r"d\.jsonl:2: expected a JSON object"),
        ("d.jsonl", '{"text": "x"}\n', {}, r"d\.jsonl:1: no key 'label' \(keys: 'text'\)"),
        ("d.jsonl", "{bad\n", {}, r"d\.jsonl:1: not JSON"),
        ("d.xlsx", "x", {}, r"d\.xlsx: unknown table format '\.xlsx'"),
        ("d.csv", "review,stars\nx,1\n", {"text_column": "review", "label_column": "star"},
         r"no column 'star'.*--label-column"),
    ],
)  # fmt: skip
def test_bad_tables_name_the_file_line_and_field(tmp_path, name, content, args, message) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_labelled(path, **args)


def test_non_utf8_and_single_class(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes(b"text,label\ncaf\xe9,1\n")
    with pytest.raises(ValueError, match=r"d\.csv: not UTF-8 text: byte offset 14 \(line 2\)"):
        read_labelled(tmp_path / "d.csv")
    with pytest.raises(ValueError, match="holds one class \\('pos'\\)"):
        class_names(["pos", "pos"], "d.csv", "label")


def test_hash_split_is_stable_and_ignores_case_and_spacing() -> None:
    assert hash_fraction("A  good film") == hash_fraction("a good film")
    values = [hash_fraction(f"text {i}") for i in range(2000)]
    assert 0.0 <= min(values) and max(values) < 1.0
    assert abs(np.mean(np.array(values) < 0.1) - 0.1) < 0.02


# -- end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_class(tmp_path_factory):
    """A 3-class model trained through the CLI on a CSV (hash split), with a separate test TSV."""
    d = tmp_path_factory.mktemp("tc")
    quoted = [(f'{t.split()[0]}, "{" ".join(t.split()[1:])}"', c) for t, c in examples(240)]
    write_csv(d / "train.csv", quoted, header=("review", "topic"))  # commas, quotes inside
    write_csv(d / "test.tsv", examples(60, seed=1), delimiter="\t", header=("review", "topic"))
    out = d / "topics.lstmkit"
    args = ["sentiment", "train", "--data", str(d / "train.csv"), "--test-data",
            str(d / "test.tsv"), "--text-column", "review", "--label-column", "topic",
            "--output", str(out), *TINY]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return d, out, result.output


def test_three_classes_train_evaluate_predict(three_class) -> None:
    from lstmkit.apps.sentiment.model import SentimentClassifier

    d, out, _ = three_class
    clf = SentimentClassifier.load(out)
    assert clf.labels == ("food", "sport", "tech") and not clf.binary
    assert clf.model.layers[-1].units == 3
    results = clf.results
    assert results["classes"] == ["food", "sport", "tech"]
    assert results["data"]["sizes"]["test"] == 60 and results["test_accuracy"] >= 0.9
    assert results["baseline"]["test_accuracy"] >= 0.9  # TF-IDF on the same data
    runner = CliRunner()
    res = runner.invoke(app, ["sentiment", "evaluate", "-m", str(out), "--data",
                              str(d / "test.tsv"), "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["n"] == 60 and set(report["classes"]) == {"food", "sport", "tech"}
    confusion = np.array(report["confusion"])
    assert confusion.sum() == 60 and confusion.sum(axis=1).tolist() == [20, 20, 20]
    assert report["accuracy"] == pytest.approx(np.trace(confusion) / 60)
    res = runner.invoke(app, ["sentiment", "evaluate", "-m", str(out), "--data",
                              str(d / "test.tsv")], env={"COLUMNS": "200"})  # fmt: skip
    assert "Confusion matrix" in res.output and "precision" in res.output
    res = runner.invoke(app, ["sentiment", "predict", "-m", str(out), "--json",
                              "team goal win", "spicy soup dinner"])  # fmt: skip
    rows = [json.loads(line) for line in res.output.splitlines()]
    assert [r["label"] for r in rows] == ["sport", "food"]
    assert rows[0]["p_positive"] is None
    assert sum(rows[0]["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert rows[0]["probability"] == pytest.approx(max(rows[0]["scores"].values()))
    res = runner.invoke(app, ["sentiment", "predict", "-m", str(out), "--data",
                              str(d / "test.tsv"), "--text-column", "review"])  # fmt: skip
    assert res.exit_code == 0 and len(res.output.splitlines()) == 60
    res = runner.invoke(app, ["sentiment", "explain", "-m", str(out), "--no-files",
                              "coach team league"], env={"COLUMNS": "200"})  # fmt: skip
    assert res.exit_code == 0, res.output
    assert res.output.startswith("sport (") and "p(sport)" in res.output


def test_three_classes_are_served_with_their_names(three_class) -> None:
    import httpx

    from lstmkit.serve import create_app
    from test_serve_models import LiveServer

    _, out, _ = three_class
    with LiveServer(create_app([str(out)], workers=1)) as live:
        r = httpx.post(f"{live.url}/v1/sentiment", json={"text": "laptop battery code"})
        assert r.status_code == 200, r.text
        p = r.json()["predictions"][0]
        assert p["label"] == "tech" and set(p["scores"]) == {"food", "sport", "tech"}
        r = httpx.post(f"{live.url}/v1/gates", json={"text": "laptop battery code"})
        assert r.status_code == 200 and r.json()["prediction"]["scored_class"] == "tech"
        models = httpx.get(f"{live.url}/v1/models").json()
        assert "food" in json.dumps(models)


def test_a_folder_of_two_classes_trains_a_binary_model(tmp_path: Path) -> None:
    from lstmkit.apps.sentiment.model import SentimentClassifier

    for i, (text, label) in enumerate(examples(120, classes=("sport", "food"))):
        (tmp_path / "data" / label).mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / label / f"{i}.txt").write_text(text)
    out = tmp_path / "m.lstmkit"
    result = CliRunner().invoke(
        app, ["sentiment", "train", "--data", str(tmp_path / "data"), "--output", str(out),
              "--no-baseline", *TINY],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    clf = SentimentClassifier.load(out)
    assert clf.labels == ("food", "sport") and clf.binary and clf.model.layers[-1].units == 1
    (p,) = clf.predict(["goal match team"])
    assert p.label == "sport" and p.p_positive == pytest.approx(p.probability)


@pytest.mark.parametrize(
    ("files", "extra", "message"),
    [
        ({"d.csv": "text,label\nx,only\ny,only\nz,only\n"}, [], "holds one class"),
        ({"d.csv": "body,label\nx,1\n"}, [], "no column 'text'"),
        ({"d.csv": "text,label\n" + "".join(f"t{i},{i % 2}\n" for i in range(30)),
          "v.csv": "text,label\nq,2\n"}, ["--valid-data", "{d}/v.csv"],
         r"v\.csv:2: label '2' is not one of the model's classes \('0', '1'\)"),
    ],
)  # fmt: skip
def test_bad_data_is_one_line_and_writes_nothing(tmp_path, files, extra, message) -> None:
    import re

    for name, content in files.items():
        (tmp_path / name).write_text(content)
    before = sorted(p.name for p in tmp_path.iterdir())
    out = tmp_path / "runs" / "m.lstmkit"
    args = ["sentiment", "train", "--data", str(tmp_path / "d.csv"), "--output", str(out),
            *[a.format(d=tmp_path) for a in extra], *TINY]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and re.search(message, lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no runs/ folder, no model


def test_a_three_class_model_exports_to_onnx(three_class, tmp_path) -> None:
    from lstmkit.serve.onnx_export import export_onnx

    _, out, _ = three_class
    report = export_onnx(out, tmp_path / "m.onnx")  # checks onnxruntime against lstmkit
    assert "probabilities ('batch', 3)" in report.describe()
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-5
    assert report.outputs == {"probabilities": ["batch", 3]}
