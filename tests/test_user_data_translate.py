"""Translation on the user's own parallel data (issue 24): ``lstmkit translate train --data``.

A made-up French→English corpus written by the test in the three formats (a TSV, two aligned
files, Moses-style ``corpus.fr`` / ``corpus.en``) reads to the same pairs; a model trained through
the CLI on the TSV (hash split, a separate test file) memorises its pairs, keeps its language
codes, and is evaluated on a file, used from the command line and served. Misaligned files and
bad lines are one-line errors naming the file and line, with nothing written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstmkit.apps.translate.config import TranslateConfig
from lstmkit.apps.translate.user_pairs import read_aligned, read_pairs, read_tsv, user_split

NOUNS = [("chat", "cat"), ("chien", "dog"), ("maison", "house"), ("arbre", "tree"),
         ("voiture", "car"), ("livre", "book"), ("pomme", "apple")]  # fmt: skip
SUBJECTS = [("je vois", "i see"), ("tu vois", "you see"), ("il voit", "he sees"),
            ("nous voyons", "we see"), ("elle voit", "she sees")]  # fmt: skip
SMALL = [
    "src_vocab_size=100", "tgt_vocab_size=100", "embed_dim=64", "units=128", "encoder_layers=1",
    "decoder_layers=1", "dropout=0.0", "label_smoothing=0.0", "batch_size=8",
    "learning_rate=0.01", "epochs=60", "early_stopping=0", "lr_patience=1000", "max_minutes=0",
    "attention_units=64",
]  # fmt: skip


def pairs() -> list[tuple[str, str]]:
    return [(f"{s} le {n}", f"{e} the {m}") for s, e in SUBJECTS for n, m in NOUNS]


def write_all(d: Path) -> None:
    rows = pairs()
    (d / "pairs.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in rows), encoding="utf-8")
    (d / "src.txt").write_text("".join(f"{s}\n" for s, _ in rows), encoding="utf-8")
    (d / "tgt.txt").write_text("".join(f"{t}\n" for _, t in rows), encoding="utf-8")
    (d / "corpus.fr").write_text("".join(f"{s}\n" for s, _ in rows), encoding="utf-8")
    (d / "corpus.en").write_text("".join(f"{t}\n" for _, t in rows), encoding="utf-8")


def test_the_three_formats_read_the_same_pairs(tmp_path: Path) -> None:
    write_all(tmp_path)
    cfg = TranslateConfig(source_lang="fr", target_lang="en")
    want = pairs()
    assert read_tsv(tmp_path / "pairs.tsv") == want
    assert read_aligned(tmp_path / "src.txt", tmp_path / "tgt.txt") == want
    assert read_pairs(str(tmp_path / "corpus"), cfg) == want
    assert read_pairs(str(tmp_path / "pairs.tsv"), cfg) == want


def test_the_hash_split_is_disjoint_and_complete(tmp_path: Path) -> None:
    write_all(tmp_path)
    many = [(f"phrase numéro {i}", f"sentence number {i}") for i in range(400)]
    (tmp_path / "many.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in many))
    cfg = TranslateConfig(data=str(tmp_path / "many.tsv"))
    parts = {s: user_split(s, cfg) for s in ("train", "validation", "test")}
    assert sorted(p for part in parts.values() for p in part) == sorted(many)
    assert 300 < len(parts["train"]) < 400 and parts["validation"] and parts["test"]
    with_test = TranslateConfig(
        data=str(tmp_path / "many.tsv"), test_data=str(tmp_path / "pairs.tsv")
    )
    assert user_split("test", with_test) == pairs()
    # the pairs the hash had put in test now train
    assert len(user_split("train", with_test)) == len(parts["train"]) + len(parts["test"])


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({"p.tsv": "a b\tx y\nno tab here\n"}, ["--data", "{d}/p.tsv"],
         r"p\.tsv:2: 1 tab-separated field\(s\); expected 2"),
        ({"p.tsv": "a b\t\n"}, ["--data", "{d}/p.tsv"], r"p\.tsv:1: the target side is empty"),
        ({"s.txt": "a\nb\nc\n", "t.txt": "x\ny\n"},
         ["--source-file", "{d}/s.txt", "--target-file", "{d}/t.txt"],
         r"misaligned files: .*s\.txt has 3 lines and .*t\.txt 2; .*t\.txt ends after line 2"),
        ({"s.txt": "a\n\nc\n", "t.txt": "x\ny\nz\n"},
         ["--source-file", "{d}/s.txt", "--target-file", "{d}/t.txt"],
         r"s\.txt:2: an empty line where .*t\.txt:2 has a sentence"),
        ({"s.txt": "a\n"}, ["--source-file", "{d}/s.txt"], "source_file and target_file go"),
        ({"p.tsv": "x\ty\n"}, ["--data", "{d}/nope"], r"nope: no such file, nor .*nope\.de"),
        ({"p.tsv": "\xe9t\xe9\tsummer\n".encode("latin-1").decode("latin-1")},
         ["--data", "{d}/p.tsv"], "ok-latin"),
    ],
)  # fmt: skip
def test_bad_parallel_data_is_one_line_and_writes_nothing(tmp_path, files, args, message) -> None:
    from lstmkit.apps.translate.cli import app

    for name, content in files.items():
        if message == "ok-latin":
            (tmp_path / name).write_bytes(content.encode("latin-1"))
            message = r"p\.tsv: not UTF-8 text: byte offset 0 \(line 1\) holds e9"
        else:
            (tmp_path / name).write_text(content)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["train", "--out", str(out), *[a.format(d=tmp_path) for a in args], "--set",
              "epochs=1"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(error) == 1 and re.search(message, error[0]), result.output
    assert not (out / "model.lstmkit").exists() and not (out / "spm.de.model").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from lstmkit.apps.translate.cli import app

    d = tmp_path_factory.mktemp("fr_en")
    write_all(d)
    (d / "test.tsv").write_text(
        "je vois le chat\ti see the cat\nil voit le livre\the sees the book\n"
    )
    # validation on the training pairs themselves: the kept model (best validation BLEU) is the
    # one that memorised them
    args = ["train", "--out", str(d / "run"), "--data", str(d / "pairs.tsv"), "--valid-data",
            str(d / "pairs.tsv"), "--test-data", str(d / "test.tsv"), "--source-lang", "fr",
            "--target-lang", "en", "--quiet"]  # fmt: skip
    for item in SMALL:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return d, d / "run" / "model.lstmkit", result.output


def test_a_model_trained_on_user_pairs_keeps_its_languages_and_data(trained) -> None:
    from lstmkit.apps.translate.decode import Translator

    d, model, output = trained
    assert "fr," in output and " en pieces" in output
    tr = Translator.load(model)
    assert (tr.cfg.source_lang, tr.cfg.target_lang) == ("fr", "en")
    assert tr.cfg.data == str(d / "pairs.tsv") and tr.cfg.test_data == str(d / "test.tsv")
    got = [t.text for t in tr.translate(["je vois le chat", "il voit le livre"], beam_size=2)]
    assert got == ["i see the cat", "he sees the book"]


def test_evaluate_text_and_serve_a_user_model(trained) -> None:
    import httpx

    from lstmkit.apps.translate.cli import app
    from lstmkit.serve import create_app
    from test_serve_models import LiveServer

    d, model, _ = trained
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--model", str(model), "--data", str(d / "test.tsv")])
    assert res.exit_code == 0, res.output
    bleu = float(re.search(r"BLEU\s*=?\s*([\d.]+)", res.output).group(1))
    assert bleu == pytest.approx(100.0)
    res = runner.invoke(app, ["evaluate", "--model", str(model), "--split", "test"])
    assert res.exit_code == 0 and "BLEU" in res.output  # the model's own test file
    res = runner.invoke(app, ["text", "--model", str(model), "nous voyons le pomme"])
    assert res.exit_code == 0 and "the apple" in res.output, res.output
    with LiveServer(create_app([str(model)], workers=1)) as live:
        r = httpx.post(f"{live.url}/v1/translate", json={"text": "tu vois le arbre"}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["translations"][0]["text"] == "you see the tree"
        assert "fr" in json.dumps(httpx.get(f"{live.url}/v1/models").json())
