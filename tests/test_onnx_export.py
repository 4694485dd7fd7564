"""ONNX export (lstmkit.serve.onnx_export, ``lstmkit export``): onnxruntime gives lstmkit's
numbers (≤ 1e-5) for the sentiment classifier and the language model's step function, at batch
sizes and lengths other than the ones exported with.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from lstmkit.serve.onnx_export import TOLERANCE, ExportError, export_onnx
from test_serve_models import make_sentiment, make_textgen, make_translate


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("arch", ["lstm", "bilstm", "gru"])
def test_sentiment_classifier_matches_onnxruntime(arch, tmp_path):
    from lstmkit.apps.sentiment.model import SentimentClassifier

    path = make_sentiment(tmp_path / f"{arch}.lstmkit", arch=arch, seed=3)
    report = export_onnx(path, tmp_path / f"{arch}.onnx")
    assert report.app == "sentiment" and report.max_abs_diff <= TOLERANCE
    assert len(report.checked_shapes) >= 3
    proto = onnx.load(tmp_path / f"{arch}.onnx")
    assert dims(proto.graph.input[0]) == ["batch", "time"]
    ops = {n.op_type for n in proto.graph.node}
    assert ("GRU" if arch == "gru" else "LSTM") in ops  # ONNX's own recurrent operator
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["lstmkit.app"] == "sentiment" and json.loads(meta["lstmkit.labels"]) == [
        "negative",
        "positive",
    ]
    # Real texts through the stored tokenizer: ONNX equals the application's predict_proba.
    clf = SentimentClassifier.load(path)
    texts = ["a good film", "boring and awful plot", "not bad at all, i loved it", ""]
    ids = clf.tokenizer.encode(texts)
    (got,) = session(tmp_path / f"{arch}.onnx").run(None, {"ids": ids})
    want = clf.predict_proba(texts)
    assert np.abs(got.reshape(-1) - want).max() <= TOLERANCE
    # Another length than the model's maxlen (dynamic time axis).
    short = ids[:, -5:]
    (got_short,) = session(tmp_path / f"{arch}.onnx").run(None, {"ids": short})
    with torch.no_grad():
        want_short = clf.model(torch.as_tensor(short), training=False).numpy()
    assert np.abs(got_short - want_short).max() <= TOLERANCE


def test_language_model_step_function_generates_like_lstmkit(tmp_path):
    from lstmkit.apps.textgen.fast import FastLSTM
    from lstmkit.apps.textgen.model import LanguageModel

    path = make_textgen(tmp_path / "lm.lstmkit", seed=5)
    report = export_onnx(path, tmp_path / "lm.onnx")
    assert report.app == "textgen" and report.max_abs_diff <= TOLERANCE
    proto = onnx.load(tmp_path / "lm.onnx")
    assert [i.name for i in proto.graph.input] == ["ids", "h", "c"]
    assert [o.name for o in proto.graph.output] == ["logits", "h_out", "c_out"]
    assert dims(proto.graph.input[0]) == ["batch", "time"]
    assert dims(proto.graph.input[1]) == [2, "batch", 16]
    vocab = json.loads({p.key: p.value for p in proto.metadata_props}["lstmkit.vocabulary"])
    assert vocab["level"] == "char"

    lm = LanguageModel.load(path)
    fast = FastLSTM(lm.model)
    s = session(tmp_path / "lm.onnx")
    prompt = lm.vocab.encode("ROMEO:").tolist()
    # Read the prompt in one call (T = 6), then step one token at a time (T = 1) with the
    # carried state, greedily: the same tokens and logits as lstmkit's generation loop.
    h = np.zeros((2, 1, 16), np.float32)
    c = np.zeros((2, 1, 16), np.float32)
    logits, h, c = s.run(None, {"ids": np.array([prompt]), "h": h, "c": c})
    fast.reset()
    want = fast.prime(prompt)
    assert np.abs(logits[0, -1] - want.numpy()).max() <= TOLERANCE
    for _ in range(20):
        token = int(np.argmax(logits[0, -1]))
        assert token == int(torch.argmax(want))
        logits, h, c = s.run(None, {"ids": np.array([[token]]), "h": h, "c": c})
        want = fast.step(token)
        assert np.abs(logits[0, -1] - want.numpy()).max() <= TOLERANCE
    # A batch of 4 streams of 9 tokens from zero states: row k equals stream k alone.
    ids = np.random.default_rng(0).integers(0, len(lm.vocab), (4, 9))
    zeros = np.zeros((2, 4, 16), np.float32)
    batch_logits, _, _ = s.run(None, {"ids": ids, "h": zeros, "c": zeros})
    for k in range(4):
        assert np.abs(batch_logits[k, -1] - lm.next_token_logits(ids[k]).numpy()).max() <= TOLERANCE


def test_models_without_an_onnx_path_are_refused_with_the_reason(tmp_path):
    ln = make_sentiment(tmp_path / "ln.lstmkit", arch="lstm-ln")
    with pytest.raises(ExportError, match="not a plain LSTM"):
        export_onnx(ln, tmp_path / "ln.onnx")
    assert not (tmp_path / "ln.onnx").exists()
    translate = make_translate(tmp_path / "t.lstmkit")
    with pytest.raises(ExportError, match="is a translate model"):
        export_onnx(translate, tmp_path / "t.onnx")
    with pytest.raises(ExportError, match="is a directory"):
        export_onnx(ln, tmp_path)


def test_export_command(tmp_path):
    from lstmkit.cli import app

    path = make_sentiment(tmp_path / "m.lstmkit")
    result = CliRunner().invoke(app, ["export", str(path), str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert "onnxruntime vs lstmkit: max |diff|" in result.output
    assert (tmp_path / "m.onnx").stat().st_size > 0
