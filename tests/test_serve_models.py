"""Tiny model files of every application for the serving tests, and the tests of how ``lstmkit
serve`` recognises them.

The builders make each file exactly as the application writes it (its own classes and ``save``),
untrained and small (a second each): the service, the page and the exporter are tested on what
a model file holds, not on what a model learnt. Other test files import them (``from
test_serve_models import ...``).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit.serve import handlers

REVIEWS = [
    "a good film",
    "a bad film",
    "great acting and a wonderful story",
    "boring and awful plot",
    "not bad at all",
    "the worst movie ever made",
    "i loved every minute of it",
]
LABELS = [1, 0, 1, 0, 1, 0, 1]

SHAKESPEARE = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\n"
    "JULIET:\nO Romeo, Romeo, wherefore art thou Romeo?\n"
)

PAIRS = [
    ("Ich habe keine Zeit.", "I have no time."),
    ("Das Haus ist gross.", "The house is big."),
    ("Wir gehen nach Hause.", "We are going home."),
    ("Er liest ein Buch.", "He is reading a book."),
    ("Sie trinkt Wasser.", "She drinks water."),
]


def make_sentiment(path: Path, arch: str = "lstm", seed: int = 0, epochs: int = 0) -> Path:
    """A sentiment model file; ``epochs > 0`` fits it to :data:`REVIEWS` first (so that the
    page shows gates that moved)."""
    from lstmkit.apps.sentiment.config import SentimentConfig
    from lstmkit.apps.sentiment.data import Tokenizer
    from lstmkit.apps.sentiment.model import SentimentClassifier, build_model

    cfg = SentimentConfig(
        arch=arch,
        max_tokens=60,
        maxlen=12,
        embedding_dim=8,
        units=8,
        units2=6,
        epochs=1,
        learning_rate=0.03,
    )
    tokenizer = Tokenizer.adapt(REVIEWS, max_tokens=cfg.max_tokens, maxlen=cfg.maxlen)
    torch.manual_seed(seed)
    model = build_model(cfg)
    if epochs:
        ids = tokenizer.encode(REVIEWS)
        model.fit(ids, np.array(LABELS, dtype=np.float32), epochs=epochs, batch_size=7, verbose=0)
    SentimentClassifier(model, tokenizer, cfg).save(path)
    return path


def make_textgen(path: Path, seed: int = 0, layers: int = 2) -> Path:
    from lstmkit.apps.textgen.config import TextgenConfig
    from lstmkit.apps.textgen.data import Vocabulary
    from lstmkit.apps.textgen.model import LanguageModel

    cfg = TextgenConfig(level="char", embedding_dim=8, units=16, layers=layers)
    vocab = Vocabulary.build("char", SHAKESPEARE)
    torch.manual_seed(seed)
    LanguageModel.create(cfg, vocab).save(path)
    return path


def make_translate(path: Path, seed: int = 0) -> Path:
    from lstmkit.apps.translate.config import TranslateConfig
    from lstmkit.apps.translate.data import Vocab
    from lstmkit.apps.translate.train import build_model

    cfg = TranslateConfig(
        embed_dim=8, units=8, attention_units=6, encoder_layers=2, decoder_layers=2,
        beam_size=3, max_decode_len=12,
    )  # fmt: skip
    src = Vocab.train([de for de, _ in PAIRS] * 4, vocab_size=300)
    tgt = Vocab.train([en for _, en in PAIRS] * 4, vocab_size=300)
    torch.manual_seed(seed)
    build_model(cfg, src, tgt).save(path, include_optimizer=False)
    return path


def make_speech(path: Path, seed: int = 0) -> Path:
    from lstmkit.apps.speech.evaluate import Recognizer
    from lstmkit.apps.speech.features import FeatureSpec
    from lstmkit.apps.speech.model import SpeechRecognizer
    from lstmkit.datasets.digits import VOCABULARY

    torch.manual_seed(seed)
    model = SpeechRecognizer(
        n_mels=80, n_classes=len(VOCABULARY) + 1, conv_filters=4, lstm_units=8, lstm_layers=1,
        dropout=0.0,
    )  # fmt: skip
    Recognizer(model, tuple(VOCABULARY), FeatureSpec()).save(path)
    return path


def wav_bytes(
    seconds: float = 0.6, rate: int = 8000, amplitude: float = 0.3, noise: float = 0.01
) -> bytes:
    """A mono 16-bit WAV of a 440 Hz tone with a little noise."""
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    hiss = np.random.default_rng(0).normal(0, noise, t.shape)
    signal = (amplitude * np.sin(2 * np.pi * 440 * t) + hiss).astype(np.float32)
    buf = io.BytesIO()
    soundfile.write(buf, signal, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


MAKERS = {
    "sentiment": make_sentiment,
    "textgen": make_textgen,
    "translate": make_translate,
    "speech": make_speech,
}


def make_all(folder: Path, sentiment_epochs: int = 0) -> dict[str, Path]:
    """One file per application: ``{app: path}`` (file stems are the app names)."""
    out = {app: make(folder / f"{app}.lstmkit") for app, make in MAKERS.items()}
    if sentiment_epochs:
        out["sentiment"] = make_sentiment(out["sentiment"], epochs=sentiment_epochs)
    return out


# -- detection ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return make_all(tmp_path_factory.mktemp("models"))


def test_each_application_file_is_recognised_and_loads(files):
    for app, path in files.items():
        assert handlers.detect(path) == app
        assert handlers.read_assets(path)["app"] == f"lstmkit.{app}"  # the one marker
        handler = handlers.load_handler(f"my-{app}", path)
        assert handler.app == app and handler.name == f"my-{app}"
        info = handler.describe()
        assert info["file"] == str(path) and info["endpoints"] and isinstance(info["details"], dict)
        json.dumps(info)  # JSON-serialisable


def test_foreign_and_broken_files_are_refused_with_the_reason(tmp_path):
    from lstmkit.layers import Dense
    from lstmkit.models import ModelFileError, Sequential

    plain = Sequential([Dense(2)])
    plain.build((None, 3))
    plain.save(tmp_path / "plain.lstmkit")
    with pytest.raises(ValueError, match="not one written by an lstmkit application"):
        handlers.detect(tmp_path / "plain.lstmkit")
    (tmp_path / "notes.lstmkit").write_text("hello")
    with pytest.raises(ModelFileError, match="not an lstmkit model file"):
        handlers.detect(tmp_path / "notes.lstmkit")
    with pytest.raises(FileNotFoundError):
        handlers.detect(tmp_path / "missing.lstmkit")
    broken = tmp_path / "broken.lstmkit"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("config.json", "{not json")
    with pytest.raises(ModelFileError):
        handlers.detect(broken)


def test_assets_markers():
    assert handlers.app_of_assets({"app": "lstmkit.sentiment"}) == "sentiment"
    assert handlers.app_of_assets({"textgen": {"vocabulary": {}}}) == "textgen"
    assert handlers.app_of_assets({"format": "lstmkit-translate-1"}) == "translate"
    assert handlers.app_of_assets({"speech": {"format": 1}}) == "speech"
    assert handlers.app_of_assets({}) is None
    assert handlers.app_of_assets({"textgen": "not a dict"}) is None
    for app in ("sentiment", "textgen", "translate", "speech"):
        assert handlers.app_of_assets({"app": f"lstmkit.{app}"}) == app
    assert handlers.app_of_assets({"app": "lstmkit.other"}) is None


# -- a real server for the HTTP and browser tests ------------------------------------------------


class LiveServer:
    """``app`` served by uvicorn on a free loopback port, in a background thread."""

    def __init__(self, app, limits=None) -> None:
        import threading

        import uvicorn

        from lstmkit.serve.connections import server_config

        self.config = server_config(app, "127.0.0.1", 0, limits, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
