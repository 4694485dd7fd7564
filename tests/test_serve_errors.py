"""Bad requests get a 4xx with a clear message, and the service keeps serving afterwards.

One server (sentiment + speech models; no textgen/translate model, for the 503 path), real HTTP.
After every bad request the same server must still answer a good one.
"""

from __future__ import annotations

import socket

import httpx
import pytest
from typer.testing import CliRunner

from lstmkit.serve import create_app
from lstmkit.serve.app import _parse_model_args
from test_serve_models import LiveServer, make_sentiment, make_speech, wav_bytes

LIMIT = 4096  # bytes of JSON, small so that the tests stay small
UPLOAD_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {
        "sentiment": make_sentiment(folder / "sentiment.lstmkit"),
        "speech": make_speech(folder / "speech.lstmkit"),
    }


@pytest.fixture(scope="module")
def client(files):
    app = create_app(
        list(files.values()), max_body_bytes=LIMIT, max_upload_bytes=UPLOAD_LIMIT, workers=1
    )
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=30) as c:
        yield c


def still_serving(client):
    r = client.post("/v1/sentiment", json={"text": "a good film"})
    assert r.status_code == 200, r.text
    assert client.get("/health").json()["status"] == "ok"


def post_raw(client, path, body, content_type="application/json", **kw):
    return client.post(path, content=body, headers={"content-type": content_type}, **kw)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{bad json", "malformed JSON body"),
        (b'{"text": "unterminated', "malformed JSON body"),
        (b"\xff\xfe not utf-8", "malformed JSON body"),
    ],
)
def test_malformed_json_is_a_400(client, body, message):
    r = post_raw(client, "/v1/sentiment", body)
    assert r.status_code == 400 and message in r.json()["detail"]
    still_serving(client)


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/sentiment", {}, 422, "give exactly one of 'text'"),
        ("/v1/sentiment", {"text": "a", "texts": ["b"]}, 422, "give exactly one of 'text'"),
        ("/v1/sentiment", {"txt": "a"}, 422, "unknown field 'txt'"),
        ("/v1/sentiment", {"text": 42}, 422, "text: Input should be a valid string"),
        ("/v1/sentiment", {"texts": ["a"] * 65}, 422, "texts: List should have at most 64"),
        ("/v1/sentiment", [1, 2], 422, "invalid request"),
        ("/v1/gates", {}, 422, "missing field 'text'"),
        ("/v1/gates", {"text": ""}, 422, "text: String should have at least 1 character"),
        ("/v1/gates", {"text": "good", "gates": ["q"]}, 422, "unknown gate(s) 'q'"),
        ("/v1/gates", {"text": "!!! ???"}, 422, "has no words"),
        ("/v1/generate", {"prompt": "x", "temprature": 1}, 422, "unknown field 'temprature'"),
        ("/v1/generate", {"length": 0}, 422, "length: Input should be greater than or equal to 1"),
        ("/v1/generate", {"length": 10**6}, 422, "length: Input should be less than or equal to"),
        ("/v1/generate", {"temperature": -1}, 422, "temperature"),
        ("/v1/translate", {"text": "Hallo", "beam_size": 0}, 422, "beam_size"),
    ],
)
def test_invalid_bodies_name_the_field(client, path, body, status, message):
    r = client.post(path, json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"], r.json()
    still_serving(client)


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/v1/sentiment", {"text": 5}, "text: Input should be a valid string, got an integer 5"),
        ("/v1/sentiment", {"texts": "a film"}, "texts: Input should be a valid list, got a string"),
        ("/v1/sentiment", {"texts": ["a", 3]}, "texts.1: Input should be a valid string, got an"),
        ("/v1/sentiment", {"text": "a", "model": 7}, "model: Input should be a valid string, got"),
        ("/v1/gates", {"text": "good", "gates": "f"}, "gates: Input should be a valid list, got a"),
        ("/v1/gates", {"text": True}, "text: Input should be a valid string, got a boolean true"),
        (
            "/v1/generate",
            {"length": "5"},
            'length: Input should be a valid integer, got a string "5"',
        ),
        (
            "/v1/generate",
            {"length": 5.0},
            "length: Input should be a valid integer, got a number 5.0",
        ),
        (
            "/v1/generate",
            {"length": True},
            "length: Input should be a valid integer, got a boolean",
        ),
        (
            "/v1/generate",
            {"stream": "yes"},
            'stream: Input should be a valid boolean, got a string "yes"',
        ),
        (
            "/v1/generate",
            {"stream": 1},
            "stream: Input should be a valid boolean, got an integer 1",
        ),
        (
            "/v1/generate",
            {"temperature": "0.5"},
            "temperature: Input should be a valid number, got a",
        ),
        ("/v1/generate", {"top_k": True}, "top_k: Input should be a valid integer, got a boolean"),
        (
            "/v1/generate",
            {"top_p": "0.9"},
            'top_p: Input should be a valid number, got a string "0.9"',
        ),
        ("/v1/generate", {"seed": "1"}, 'seed: Input should be a valid integer, got a string "1"'),
        ("/v1/generate", {"prompt": 5}, "prompt: Input should be a valid string, got an integer 5"),
        (
            "/v1/translate",
            {"text": "Hallo", "beam_size": "2"},
            "beam_size: Input should be a valid",
        ),
        ("/v1/translate", {"text": "Hallo", "beam_size": True}, "beam_size: Input should be a val"),
        (
            "/v1/translate",
            {"texts": [1]},
            "texts.0: Input should be a valid string, got an integer",
        ),
    ],
)
def test_wrong_json_types_are_not_coerced(client, path, body, message):
    """Each field takes its own JSON type only: a 422 naming the field, what it takes and what
    came (the service used to read "5" as 5 and "yes" as true)."""
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"], r.json()
    still_serving(client)


def test_an_integer_is_a_number(client):
    # JSON has one number type: 1 is a valid temperature (503: no language model is loaded here).
    r = client.post("/v1/generate", json={"prompt": "a", "temperature": 1, "top_p": 1})
    assert r.status_code == 503, r.text


def test_an_upload_field_must_be_a_file(client):
    r = client.post("/v1/transcribe", data={"file": "not a file"}, files={"x": ("x", b"1")})
    assert r.status_code == 422, r.text
    assert (
        "file: expected a file (a multipart part with a filename), got a text field"
        in (r.json()["detail"])
    )
    still_serving(client)


def test_oversized_bodies_are_refused_before_they_are_read(client):
    big = {"text": "x" * (LIMIT + 10)}
    r = client.post("/v1/sentiment", json=big)
    assert r.status_code == 413 and "over the limit of 4,096 bytes" in r.json()["detail"]
    still_serving(client)

    def chunks():  # no Content-Length: counted while it arrives
        yield b'{"text": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    r = client.post("/v1/sentiment", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over the limit" in r.json()["detail"]
    still_serving(client)
    big_upload = {"file": ("big.wav", b"\0" * (UPLOAD_LIMIT + 1), "audio/wav")}
    r = client.post("/v1/transcribe", files=big_upload)
    assert r.status_code == 413
    still_serving(client)
    # A Content-Length that is not a number (httpx refuses to send one: a raw socket).
    host, port = client.base_url.host, client.base_url.port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/sentiment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: abc\r\n\r\n{}"
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 400")
    still_serving(client)


@pytest.mark.parametrize(
    ("path", "content_type", "message"),
    [
        ("/v1/sentiment", "text/plain", "expected Content-Type application/json, got text/plain"),
        ("/v1/sentiment", "", "got none"),
        ("/v1/gates", "application/x-www-form-urlencoded", "application/json"),
        ("/v1/transcribe", "application/json", "expected Content-Type multipart/form-data"),
        ("/v1/transcribe", "audio/wav", "multipart/form-data"),
    ],
)
def test_wrong_content_types_are_a_415(client, path, content_type, message):
    r = post_raw(client, path, b'{"text": "a good film"}', content_type)
    assert r.status_code == 415 and message in r.json()["detail"]
    still_serving(client)


def test_unknown_models_wrong_kinds_and_missing_applications(client):
    r = client.post("/v1/sentiment", json={"text": "a", "model": "nope"})
    assert r.status_code == 404
    assert (
        r.json()["detail"] == "unknown model 'nope'; loaded: sentiment (sentiment), speech (speech)"
    )
    r = client.post("/v1/sentiment", json={"text": "a", "model": "speech"})
    assert r.status_code == 400 and "'speech' is a speech model" in r.json()["detail"]
    r = client.post("/v1/gates", json={"text": "a", "model": "speech"})
    assert r.status_code == 400
    for path, body in (("/v1/generate", {"prompt": "a"}), ("/v1/translate", {"text": "Hallo"})):
        r = client.post(path, json=body)
        assert r.status_code == 503 and "is not available: no" in r.json()["detail"]
    assert set(client.get("/v1/models").json()["unavailable"]) == {"/v1/generate", "/v1/translate"}
    r = client.post(
        "/v1/transcribe",
        data={"model": "sentiment"},
        files={"file": ("a.wav", wav_bytes(), "audio/wav")},
    )
    assert r.status_code == 400
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/sentiment").status_code == 405
    still_serving(client)


def test_bad_uploads(client):
    def upload(data, name="a.wav", **form):
        return client.post("/v1/transcribe", files={"file": (name, data, "audio/wav")}, data=form)

    r = upload(b"these are not samples\n" * 50, name="notes.wav")
    assert r.status_code == 415 and "not an audio file the server can decode" in r.json()["detail"]
    assert "notes.wav" in r.json()["detail"] and "/tmp" not in r.json()["detail"]
    r = upload(wav_bytes()[:3000])
    assert r.status_code == 422 and "truncated" in r.json()["detail"]
    r = upload(b"")
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    r = upload(wav_bytes(), decoder="viterbi")
    assert r.status_code == 422 and "decoder must be one of greedy, beam" in r.json()["detail"]
    r = client.post("/v1/transcribe", data={"decoder": "greedy"}, files={"other": ("a", b"x")})
    assert r.status_code == 422 and "missing field 'file'" in r.json()["detail"]
    still_serving(client)
    assert upload(wav_bytes()).status_code == 200


# -- start-up errors -------------------------------------------------------------------------------


def test_model_names(tmp_path):
    a, b = tmp_path / "x" / "model.lstmkit", tmp_path / "y" / "model.lstmkit"
    assert _parse_model_args([a, b]) == [("x-model", a), ("y-model", b)]
    assert _parse_model_args(["one=" + str(a), b]) == [("one", a), ("model", b)]
    assert _parse_model_args({"m": a}) == [("m", a)]
    with pytest.raises(ValueError, match="would both be called 'm'"):
        _parse_model_args([f"m={a}", f"m={b}"])
    with pytest.raises(ValueError, match="at least one model"):
        _parse_model_args([])


def test_cli_serve_and_export_errors(files, tmp_path):
    from lstmkit.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "127.0.0.1" in result.output
    result = runner.invoke(app, ["serve", str(tmp_path / "missing.lstmkit")])
    assert result.exit_code == 2 and "no such model file" in result.output
    (tmp_path / "notes.lstmkit").write_text("not a model")
    result = runner.invoke(app, ["serve", str(tmp_path / "notes.lstmkit")])
    assert result.exit_code == 2 and "not an lstmkit model file" in result.output
    assert len(result.output.strip().splitlines()) == 1  # one line
    result = runner.invoke(app, ["export", str(files["speech"]), str(tmp_path / "s.onnx")])
    assert result.exit_code == 1 and "is a speech model; ONNX export covers" in result.output
    assert not (tmp_path / "s.onnx").exists()


def test_cli_serve_refuses_a_busy_port_and_bad_connection_limits(files):
    from lstmkit.cli import app

    runner = CliRunner()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", str(files["sentiment"]), "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    flags = ["--timeout", "--max-body-mb", "--max-upload-mb", "--header-timeout"]
    flags += ["--read-timeout", "--keep-alive"]
    for flag in flags:
        for value in ("0", "nan", "inf", "1e400", "-1"):
            result = runner.invoke(app, ["serve", str(files["sentiment"]), flag, value])
            assert result.exit_code == 2 and flag in result.output, (flag, value, result.output)
    limits = ["--max-slow-connections", "50", "--max-connections", "50"]
    result = runner.invoke(app, ["serve", str(files["sentiment"]), *limits])
    words = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "not below --max-connections (50)" in words, words


def test_a_model_whose_numbers_overflow_is_a_500_not_a_null(files, tmp_path):
    """Weights that are finite on disk (so the file loads) but give NaN on an input: the
    service answers 500 naming the model, never 200 with ``probability: null``; text
    generation from NaN logits and transcription from NaN log-probabilities likewise."""
    import torch

    from test_serve_models import make_textgen

    textgen = make_textgen(tmp_path / "tg.lstmkit")
    app = create_app([str(files["sentiment"]), str(textgen), str(files["speech"])], workers=1)
    handlers = app.state.registry.handlers
    models = {"sentiment": lambda h: h.classifier.model, "textgen": lambda h: h.lm.model,
              "speech": lambda h: h.recognizer.model}  # fmt: skip
    with torch.no_grad():
        for h in handlers.values():
            model = models[h.app](h)
            for w in model.parameters():
                w.fill_(float("nan"))
            if h.app == "textgen":  # its generators copied the weights when made
                h._pool.get()
                h._pool.put(h._new_generator())
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=30) as c:
        r = c.post("/v1/sentiment", json={"text": "a good film"})
        assert r.status_code == 500, r.text
        assert "model 'sentiment' computed the probability = nan" in r.json()["detail"]
        r = c.post("/v1/gates", json={"text": "a good film", "model": "sentiment"})
        assert r.status_code == 500 and "not a finite number" in r.json()["detail"]
        r = c.post("/v1/generate", json={"prompt": "ab", "length": 5, "seed": 1})
        assert r.status_code == 500, r.text
        assert "not finite" in r.json()["detail"] and "NaN" in r.json()["detail"]
        r = c.post("/v1/transcribe", files={"file": ("a.wav", wav_bytes())})
        assert r.status_code == 500, r.text  # not 200 with an empty transcript
        assert "non-finite log-probabilities" in r.json()["detail"]
        assert c.get("/health").json()["status"] == "ok"
