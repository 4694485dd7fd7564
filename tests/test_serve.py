"""The HTTP service (lstmkit.serve) over real HTTP: one uvicorn server on a loopback port with a
model of every application, asked what each application's own API answers.

Bad requests (malformed JSON, missing or unknown fields, oversized and chunked bodies, wrong
content types, unknown models, non-audio uploads) are tested in test_serve_errors.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import numpy as np
import pytest

from lstmkit.serve import create_app
from test_serve_models import LiveServer, make_all, make_sentiment, wav_bytes


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    out = make_all(folder)
    out["bilstm"] = make_sentiment(folder / "bi.lstmkit", arch="bilstm", seed=1)
    return out


@pytest.fixture(scope="module")
def server(files):
    models = [str(files[a]) for a in ("sentiment", "textgen", "translate", "speech")]
    app = create_app([*models, f"reviews-bi={files['bilstm']}"], workers=2)
    with LiveServer(app) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def apps(files):
    """The applications' own objects for the same files (the expected answers)."""
    from lstmkit.apps.sentiment.model import SentimentClassifier
    from lstmkit.apps.speech.evaluate import Recognizer
    from lstmkit.apps.textgen.generate import TextGenerator
    from lstmkit.apps.textgen.model import LanguageModel
    from lstmkit.apps.translate.decode import Translator

    return {
        "sentiment": SentimentClassifier.load(files["sentiment"]),
        "textgen": TextGenerator(LanguageModel.load(files["textgen"])),
        "translate": Translator.load(files["translate"]),
        "speech": Recognizer.load(files["speech"]),
    }


# -- service ------------------------------------------------------------------------------------


def test_health_models_docs_and_page(client):
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["models"] == {
        "sentiment": "sentiment",
        "textgen": "textgen",
        "translate": "translate",
        "speech": "speech",
        "reviews-bi": "sentiment",
    }
    models = client.get("/v1/models").json()
    assert [m["name"] for m in models["models"]][:4] == [
        "sentiment",
        "textgen",
        "translate",
        "speech",
    ]
    assert models["unavailable"] == {}
    assert set(models["colormaps"]) == {"diverging", "sequential"}
    assert models["gate_scales"]["f"] == ["sequential", 0.0, 1.0]
    spec = client.get("/openapi.json").json()
    for path in ("/v1/sentiment", "/v1/generate", "/v1/translate", "/v1/transcribe", "/v1/gates"):
        assert path in spec["paths"]
    assert "text" in spec["components"]["schemas"]["SentimentRequest"]["properties"]
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="review"' in page.text and "/static/app.js" in page.text
    # The page is self-contained: no script, style or font from another host.
    for asset in ("/", "/static/app.js", "/static/style.css"):
        body = client.get(asset).text
        assert "http://" not in body.replace("http://${", "") and "https://" not in body
    assert client.get("/docs").status_code == 200


# -- sentiment -----------------------------------------------------------------------------------


def test_sentiment_matches_the_application(client, apps):
    texts = ["a good film", "boring and awful plot", "", "words nobody knows"]
    got = client.post("/v1/sentiment", json={"texts": texts}).json()
    assert got["model"] == "sentiment"
    want = apps["sentiment"].predict(texts)
    assert [p["label"] for p in got["predictions"]] == [w.label for w in want]
    assert np.allclose([p["p_positive"] for p in got["predictions"]], [w.p_positive for w in want])
    assert [p["known"] for p in got["predictions"]] == [w.known for w in want]
    one = client.post("/v1/sentiment", json={"text": "a good film"}).json()
    assert one["predictions"][0] == got["predictions"][0]
    by_name = client.post("/v1/sentiment", json={"text": "a good film", "model": "reviews-bi"})
    assert by_name.json()["model"] == "reviews-bi"


def test_gates_of_a_review(client, apps):
    from lstmkit.apps.sentiment.explain import explain

    text = "not bad at all, a wonderful zzz story"
    got = client.post("/v1/gates", json={"text": text}).json()
    expl = explain(apps["sentiment"], text)
    assert got["app"] == "sentiment" and got["tokens"] == expl.tokens
    assert "zzz?" in got["tokens"]  # unknown words are flagged
    names = [layer["name"] for layer in got["layers"]]  # automatic names: lstm, lstm_1 …
    assert names == [run.name for run in expl.layers] and len(set(names)) == 2
    n = len(got["tokens"])
    for layer, run in zip(got["layers"], expl.layers):
        assert layer["kind"] == "lstm" and set(layer["values"]) == set("ifgoch")
        for g, values in layer["values"].items():
            assert np.array(values).shape == (n, layer["units"])
            assert np.allclose(values, run.gates[g], atol=1e-5)
            assert np.allclose(layer["mean"][g], run.gates[g].mean(-1), atol=1e-5)
        assert np.all((np.array(layer["values"]["f"]) >= 0) & (np.array(layer["values"]["f"]) <= 1))
    p = got["prediction"]
    assert p["label"] == expl.label and abs(p["p_positive"] - expl.p_positive) < 1e-6
    assert len(p["prefix"]) == n and abs(p["prefix"][-1] - expl.p_positive) < 1e-5
    only = client.post("/v1/gates", json={"text": text, "gates": ["f", "c"]}).json()
    assert set(only["layers"][0]["values"]) == {"f", "c"}


def test_gates_of_a_bidirectional_model_name_both_directions(client):
    got = client.post("/v1/gates", json={"text": "a good film", "model": "reviews-bi"}).json()
    assert [(layer["direction"]) for layer in got["layers"]] == ["forward", "backward"] * 2
    assert got["prediction"]["head"] is None  # no single h_t reading for bidirectional models


# -- text generation ----------------------------------------------------------------------------


def _stream(client, body):
    lines = []
    with client.stream("POST", "/v1/generate", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        for line in r.iter_lines():
            if line:
                lines.append(json.loads(line))
    return lines


def test_generation_streams_the_applications_text(client, apps):
    from lstmkit.apps.textgen.config import SamplingConfig

    body = {
        "model": "textgen",
        "prompt": "ROMEO:",
        "length": 40,
        "temperature": 0.9,
        "top_k": 5,
        "seed": 7,
    }
    lines = _stream(client, body)
    assert lines[0] == {"model": "textgen", "prompt": "ROMEO:"}
    tokens = [x["token"] for x in lines if "token" in x]
    assert lines[-1] == {"done": True, "tokens": 40, "finish_reason": "length"}
    assert len(tokens) == 40
    want = apps["textgen"].generate("ROMEO:", 40, SamplingConfig(temperature=0.9, top_k=5, seed=7))
    assert "".join(tokens) == want
    whole = client.post("/v1/generate", json={**body, "stream": False}).json()
    assert whole["text"] == want and whole["finish_reason"] == "length" and whole["tokens"] == 40
    greedy = client.post(
        "/v1/generate", json={"prompt": "", "length": 15, "temperature": 0, "stream": False}
    )
    assert greedy.json()["text"] == apps["textgen"].generate("", 15, SamplingConfig(temperature=0))


def test_prompt_gates_of_the_language_model(client):
    got = client.post("/v1/gates", json={"text": "ROMEO", "model": "textgen"}).json()
    assert got["tokens"] == list("ROMEO")
    assert [layer["name"] for layer in got["layers"]] == ["lstm_1", "lstm_2"]  # textgen's names
    assert np.array(got["layers"][1]["values"]["c"]).shape == (5, 16)
    nxt = got["prediction"]["next"]
    assert len(nxt) == 5 and sum(x["p"] for x in nxt) <= 1.0 + 1e-6
    # the stateful layers were left reset: generation is unaffected (tested above)


# -- translation ----------------------------------------------------------------------------------


def test_translation_with_attention_matches_the_application(client, apps):
    texts = ["Ich habe keine Zeit.", "", "Das Haus ist gross."]
    got = client.post("/v1/translate", json={"texts": texts, "beam_size": 2}).json()
    want = apps["translate"].translate(texts, beam_size=2)
    assert [t["text"] for t in got["translations"]] == [w.text for w in want]
    first = got["translations"][0]
    assert first["source_pieces"] == want[0].source_pieces
    attention = np.array(first["attention"])
    assert attention.shape == (len(first["target_pieces"]), len(first["source_pieces"]))
    assert np.allclose(attention.sum(1), 1.0, atol=1e-3)
    assert got["translations"][1]["attention"] is None and got["translations"][1]["text"] == ""
    gates = client.post("/v1/gates", json={"text": "Ich habe keine Zeit.", "model": "translate"})
    enc = gates.json()
    assert enc["tokens"] == first["source_pieces"]
    assert {layer["direction"] for layer in enc["layers"]} == {"forward", "backward"}


# -- speech ----------------------------------------------------------------------------------------


def test_transcription_of_an_upload_matches_the_application(client, apps, tmp_path):
    audio = wav_bytes(0.8)
    got = client.post("/v1/transcribe", files={"file": ("tone.wav", audio, "audio/wav")}).json()
    path = tmp_path / "tone.wav"
    path.write_bytes(audio)
    assert got["text"] == apps["speech"].transcribe_file(path)
    assert got["seconds"] == pytest.approx(0.8) and got["decoder"] == "greedy"
    beam = client.post(
        "/v1/transcribe",
        files={"file": ("tone.wav", audio, "application/octet-stream")},
        data={"decoder": "beam", "model": "speech"},
    ).json()
    assert beam["text"] == apps["speech"].transcribe_file(path, decoder="beam")
    silent = client.post(
        "/v1/transcribe",
        files={"file": ("s.wav", wav_bytes(0.5, amplitude=0.0, noise=0.0), "audio/wav")},
    )
    assert silent.json()["text"] == ""


# -- concurrency and time limits -------------------------------------------------------------------


def test_concurrent_requests_all_answer(server):
    async def burst():
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as ac:
            texts = [f"a good film number {k}" for k in range(24)]
            rs = await asyncio.gather(*(ac.post("/v1/sentiment", json={"text": t}) for t in texts))
            return texts, rs

    texts, responses = asyncio.run(burst())
    assert [r.status_code for r in responses] == [200] * len(texts)
    assert [r.json()["predictions"][0]["text"] for r in responses] == texts


@pytest.fixture(scope="module")
def slow_server(files):
    """A server whose model work is slowed down on demand (texts starting with "slow", and
    generation at 20 ms a token), with a 0.5 s time limit."""
    app = create_app([files["sentiment"], files["textgen"]], timeout_s=0.5, workers=2)
    sentiment = app.state.registry.handlers["sentiment"]
    predict = sentiment.predict

    def slow_predict(texts):
        if texts and texts[0].startswith("slow"):
            time.sleep(1.5)
        return predict(texts)

    sentiment.predict = slow_predict
    textgen = app.state.registry.handlers["textgen"]
    generator = textgen._pool.get()
    stream = generator.stream

    def slow_stream(*args, **kwargs):
        for piece in stream(*args, **kwargs):
            time.sleep(0.02)
            yield piece

    generator.stream = slow_stream
    textgen._pool.put(generator)
    with LiveServer(app) as live:
        yield live


def test_model_work_does_not_block_the_event_loop(slow_server):
    with httpx.Client(base_url=slow_server.url, timeout=30) as c:
        result = {}

        def slow():
            result["r"] = c.post("/v1/sentiment", json={"text": "slow and steady"})

        threads = [threading.Thread(target=slow) for _ in range(2)]  # both workers busy
        for t in threads:
            t.start()
        time.sleep(0.1)
        started = time.perf_counter()
        health = c.get("/health").json()
        assert time.perf_counter() - started < 0.4, "/health waited for the model workers"
        assert health["pending"] >= 1
        for t in threads:
            t.join()
        r = result["r"]
        assert r.status_code == 504
        assert "time limit of 0.5 s" in r.json()["detail"]
        # The abandoned jobs finish in the background (a running thread cannot be stopped),
        # then the service goes on serving.
        deadline = time.monotonic() + 10
        while c.get("/health").json()["pending"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get("/health").json()["pending"] == 0
        ok = c.post("/v1/sentiment", json={"text": "a good film"})
        assert ok.status_code == 200


def test_generation_stops_at_the_time_limit(slow_server):
    with httpx.Client(base_url=slow_server.url, timeout=30) as c:
        lines = _stream(c, {"prompt": "ROMEO:", "length": 500, "temperature": 1.0})
        done = lines[-1]
        assert done["done"] and done["finish_reason"] == "time_limit"
        assert 1 <= done["tokens"] < 500
        assert done["tokens"] == sum("token" in x for x in lines)
        whole = c.post("/v1/generate", json={"prompt": "R", "length": 500, "stream": False})
        assert whole.status_code == 200 and whole.json()["finish_reason"] == "time_limit"
        assert c.get("/health").json()["pending"] == 0
