"""One adapter per application: what a loaded model file can do, through the app's own API.

A model file says which application wrote it in its ``model.assets`` (JSON inside the file):
``assets["app"] == "lstmkit.<application>"``. Files written before every application wrote that
key are recognised by their older markers:

=============  =================================================  ===============================
application    older marker in ``assets``                         loaded with
=============  =================================================  ===============================
sentiment      (always had ``"app"``)                             ``SentimentClassifier.load``
textgen        an ``assets["textgen"]`` dict                      ``LanguageModel.load``
translate      ``assets["format"] == "lstmkit-translate-1"``      ``Translator.load``
speech         an ``assets["speech"]`` dict                       ``Recognizer.load``
=============  =================================================  ===============================

:func:`detect` reads only ``config.json`` from the zip to find the marker (the translation and
speech models are classes that must be imported before ``load_model`` can rebuild them, so the
application is found first); :func:`load_handler` then loads the file with the application's
own loader, which validates it fully. Application modules are imported lazily: an application
whose module is missing from this build makes :class:`AppUnavailable` (HTTP 503), not an
import error at start-up.

Handlers run on worker threads (:mod:`lstmkit.serve.app`), several at once. Inference through
the Keras-style models is re-entrant (``predict`` under ``no_grad``; the sentiment app's
``explain`` records through the engines' context-variable hook); what keeps per-call state is
guarded: text generation draws a :class:`~lstmkit.apps.textgen.generate.TextGenerator` (its
fast loop owns state buffers) from a pool, and ``lstmkit.inspect.record`` — which may switch a
layer's engine for the duration, and the language model's layers are stateful — runs under the
handler's lock, as does generation through the (stateful) layers when the fast loop cannot be
used.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

APPS = ("sentiment", "textgen", "translate", "speech")
DIGITS = 5  # decimals kept in gate values sent over HTTP


class AppUnavailable(RuntimeError):
    """The application's Python API is not part of this build (HTTP 503)."""


class NotSupported(ValueError):
    """The model cannot do what was asked (e.g. gates of an audio model) (HTTP 400)."""


class InputError(ValueError):
    """The input is well-formed but unusable for this model (HTTP 422)."""


class MediaError(ValueError):
    """An upload that is not decodable audio (HTTP 415)."""


class ModelFault(FloatingPointError):
    """The model computed NaN or infinity where a number was due (HTTP 500): weights that
    overflow on this input, never a result to send as ``null``."""


def _finite(value: float, what: str, model: str) -> float:
    if not math.isfinite(value):
        raise ModelFault(
            f"model {model!r} computed {what} = {value} (not a finite number) for this input; "
            f"its weights overflow or have diverged, so no answer is given"
        )
    return value


def _import(module: str, app: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise AppUnavailable(
                f"the {app} application ({module}) is not available in this build of lstmkit"
            ) from None
        raise


# -- detection -----------------------------------------------------------------------------------


def read_assets(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``model.assets`` of an lstmkit model file, read from its ``config.json`` only.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an lstmkit model file (the message of ``load_model`` when it can say
            more).
    """
    from lstmkit.models.saving import read_assets as read_file_assets

    return read_file_assets(path)


def app_of_assets(assets: dict[str, Any]) -> str | None:
    """The application that wrote a file with these assets, or ``None``: ``assets["app"]``
    (``"lstmkit.<application>"``, written by every application), else the per-application
    markers of files written before that key existed."""
    app = assets.get("app")
    if isinstance(app, str) and app.startswith("lstmkit."):
        name = app.removeprefix("lstmkit.")
        if name in APPS:
            return name
    if isinstance(assets.get("textgen"), dict):
        return "textgen"
    if str(assets.get("format", "")).startswith("lstmkit-translate-"):
        return "translate"
    if isinstance(assets.get("speech"), dict):
        return "speech"
    return None


def detect(path: str | os.PathLike[str]) -> str:
    """The application of the model file at ``path``.

    Raises:
        ModelFileError: (a ``ValueError``) the file is an lstmkit model that no application
            wrote, or not a model file.
    """
    from lstmkit.models import ModelFileError

    assets = read_assets(path)
    app = app_of_assets(assets)
    if app is None:
        keys = ", ".join(sorted(assets)) or "none"
        raise ModelFileError(
            f"{path}: an lstmkit model file, but not one written by an lstmkit application "
            f"(sentiment, textgen, translate or speech train); its assets have keys: {keys}"
        )
    return app


# -- helpers -------------------------------------------------------------------------------------


def _values(array: Any) -> list:
    """A numpy/torch array as nested lists of floats rounded to :data:`DIGITS` decimals (NaN,
    which JSON cannot carry, becomes 0)."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    arr = np.nan_to_num(np.asarray(array, dtype=np.float64), nan=0.0)
    return np.round(arr, DIGITS).tolist()


def _layer(name: str, direction: str, kind: str, gates: dict[str, Any], keep: list[str] | None):
    """One layer's entry of a gates response from ``gate -> (T, H)`` arrays."""
    names = [g for g in gates if keep is None or g in keep]
    values = {g: np.asarray(gates[g], dtype=np.float64) for g in names}
    units = int(next(iter(gates.values())).shape[-1]) if gates else 0
    return {
        "name": name,
        "direction": direction,
        "kind": kind,
        "units": units,
        "values": {g: _values(v) for g, v in values.items()},
        "mean": {g: _values(v.mean(axis=-1)) for g, v in values.items()},
    }


def _check_gates(requested: list[str] | None, available: set[str]) -> list[str] | None:
    if requested is None:
        return None
    unknown = [g for g in requested if g not in available]
    if unknown:
        raise InputError(
            f"unknown gate(s) {', '.join(map(repr, unknown))}; this model records "
            f"{', '.join(sorted(available))}"
        )
    return list(requested)


def _recording_layers(rec: Any, keep: list[str] | None, row: int = 0) -> list[dict[str, Any]]:
    """Gates response entries from a :class:`lstmkit.inspect.Recording` (batch row ``row``)."""
    layers = []
    available = {g for trace in rec.traces() for g in trace.gates}
    keep = _check_gates(keep, available)
    for trace in rec.traces():
        gates = {g: trace[g][row].numpy() for g in trace.gates}  # (T, H) each
        direction = trace.direction if trace.direction in ("forward", "backward") else "forward"
        layers.append(_layer(trace.name, direction, trace.kind, gates, keep))
    return layers


# -- handlers ------------------------------------------------------------------------------------


class Handler:
    """A loaded model file and what it serves.

    Attributes:
        name: the name requests select it by.
        path: the model file.
        app: the application (class attribute).
        endpoints: the API paths it serves (class attribute).
    """

    app: ClassVar[str] = ""
    endpoints: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path

    def details(self) -> dict[str, Any]:
        return {}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "app": self.app,
            "file": str(self.path),
            "endpoints": list(self.endpoints),
            "details": self.details(),
        }

    def gates(self, text: str, gates: list[str] | None = None) -> dict[str, Any]:
        raise NotSupported(f"model {self.name!r} ({self.app}) has no gates for text input")


class SentimentHandler(Handler):
    """``/v1/sentiment`` and ``/v1/gates`` through :mod:`lstmkit.apps.sentiment`."""

    app = "sentiment"
    endpoints = ("/v1/sentiment", "/v1/gates")

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name, path)
        model_mod = _import("lstmkit.apps.sentiment.model", self.app)
        self._explain = _import("lstmkit.apps.sentiment.explain", self.app).explain
        self.classifier = model_mod.SentimentClassifier.load(path)

    def details(self) -> dict[str, Any]:
        cfg = self.classifier.config
        return {
            "arch": cfg.arch,
            "maxlen": cfg.maxlen,
            "vocabulary": self.classifier.tokenizer.vocabulary_size(),
            "labels": list(self.classifier.labels),
        }

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        return [
            {
                "text": p.text,
                "label": p.label,
                "probability": _finite(p.probability, "the probability", self.name),
                "p_positive": p.p_positive,
                "scores": p.scores,
                "tokens": p.tokens,
                "known": p.known,
            }
            for p in self.classifier.predict(texts)
        ]

    def gates(self, text: str, gates: list[str] | None = None) -> dict[str, Any]:
        try:
            expl = self._explain(self.classifier, text)
        except ValueError as e:  # no words
            raise InputError(str(e)) from None
        available = {g for run in expl.layers for g in run.gates}
        keep = _check_gates(gates, available)
        layers = []
        for run in expl.layers:
            kind = "lstm" if "c" in run.gates else "gru" if "z" in run.gates else "rnn"
            layers.append(_layer(run.name, run.direction, kind, run.gates, keep))
        _finite(expl.p_positive, "the probability", self.name)
        return {
            "tokens": expl.tokens,
            "layers": layers,
            "prediction": {
                "label": expl.label,
                "probability": expl.confidence,
                "p_positive": expl.p_positive if expl.binary else None,
                "scored_class": expl.target_name,
                "p_class": expl.p_positive,
                "prior": expl.prior,
                "prefix": _values(expl.prefix),
                "head": None if expl.head is None else _values(expl.head),
                "known": expl.known,
            },
        }


class TextgenHandler(Handler):
    """``/v1/generate`` (streaming) and ``/v1/gates`` through :mod:`lstmkit.apps.textgen`."""

    app = "textgen"
    endpoints = ("/v1/generate", "/v1/gates")

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name, path)
        model_mod = _import("lstmkit.apps.textgen.model", self.app)
        gen_mod = _import("lstmkit.apps.textgen.generate", self.app)
        config_mod = _import("lstmkit.apps.textgen.config", self.app)
        self._model_mod = model_mod
        self._generator_class = gen_mod.TextGenerator
        self._sampling_class = config_mod.SamplingConfig
        self.lm = model_mod.LanguageModel.load(path)
        self._pool: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()  # the layers are stateful: one recording at a time
        self._pool.put(self._new_generator())  # fail now, not on the first request

    def _new_generator(self) -> Any:
        try:
            return self._generator_class(self.lm, backend="fast")
        except ValueError:  # a model the fast loop does not cover
            return self._generator_class(self.lm, backend="layers")

    def details(self) -> dict[str, Any]:
        cfg = self.lm.config
        return {
            "level": self.lm.vocab.level,
            "vocabulary": len(self.lm.vocab),
            "units": cfg.units,
            "layers": cfg.layers,
        }

    def stream(
        self,
        prompt: str,
        length: int,
        temperature: float,
        top_k: int,
        top_p: float,
        seed: int | None,
        should_stop: Callable[[], str | None],
    ) -> Iterator[str]:
        """Yield each drawn token's text; stops early when ``should_stop()`` gives a reason.

        Raises:
            InputError: the prompt has characters the model does not know (char level), or a
                sampling setting it cannot use.
        """
        try:
            sampling = self._sampling_class(
                temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), seed=seed
            )
        except (TypeError, ValueError) as e:
            raise InputError(str(e)) from None
        try:
            generator = self._pool.get_nowait()
        except queue.Empty:
            generator = self._new_generator()
        # The fast loop owns its state; the layer-by-layer fallback uses the shared stateful
        # model, so it runs one generation at a time.
        guard = self._lock if generator.backend == "layers" else contextlib.nullcontext()
        try:
            with guard:
                try:
                    pieces = generator.stream(prompt, length, sampling)
                    first = next(pieces, None)
                except ValueError as e:  # e.g. characters the model does not know
                    raise InputError(str(e)) from None
                if first is None:
                    return
                yield first
                for piece in pieces:
                    if should_stop() is not None:
                        pieces.close()
                        return
                    yield piece
        finally:
            self._pool.put(generator)

    def gates(self, text: str, gates: list[str] | None = None) -> dict[str, Any]:
        import torch

        from lstmkit import inspect as glass

        vocab = self.lm.vocab
        try:
            ids = vocab.encode(text, "unk")
        except ValueError as e:
            raise InputError(str(e)) from None
        if len(ids) == 0:
            raise InputError("the text has no tokens")
        tokens = [vocab.tokens[int(i)] for i in ids]
        x = torch.as_tensor(ids, dtype=torch.int64).view(1, -1)
        model = self.lm.model
        with self._lock, torch.no_grad():
            self._model_mod.reset_states(model)
            try:
                with glass.record(model) as rec:
                    logits = model(x, training=False)[0, -1]
            finally:
                self._model_mod.reset_states(model)
        probs = torch.softmax(logits.float(), -1)
        top = torch.topk(probs, min(5, probs.shape[0]))
        following = [
            {"token": vocab.tokens[int(i)], "p": round(float(p), DIGITS)}
            for p, i in zip(top.values, top.indices)
        ]
        return {
            "tokens": tokens,
            "layers": _recording_layers(rec, gates),
            "prediction": {"next": following},
        }


class TranslateHandler(Handler):
    """``/v1/translate`` (beam search, attention) and ``/v1/gates`` (the encoder's gates)."""

    app = "translate"
    endpoints = ("/v1/translate", "/v1/gates")

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name, path)
        decode = _import("lstmkit.apps.translate.decode", self.app)
        self._data = _import("lstmkit.apps.translate.data", self.app)
        self.translator = decode.Translator.load(path)
        self._lock = threading.Lock()  # one recording of the shared model at a time

    def details(self) -> dict[str, Any]:
        cfg = self.translator.cfg
        return {
            "attention": cfg.attention,
            "beam_size": cfg.beam_size,
            "source_lang": cfg.source_lang,
            "target_lang": cfg.target_lang,
            "source_vocabulary": len(self.translator.src),
            "target_vocabulary": len(self.translator.tgt),
        }

    def translate(self, texts: list[str], beam_size: int | None) -> list[dict[str, Any]]:
        out = []
        for t in self.translator.translate(texts, beam_size=beam_size):
            out.append(
                {
                    "source": t.source,
                    "text": t.text,
                    "source_pieces": list(t.source_pieces),
                    "target_pieces": list(t.target_pieces),
                    "attention": None if t.attention is None else _values(t.attention),
                    "score": _finite(float(t.score), "the translation's score", self.name),
                }
            )
        return out

    def gates(self, text: str, gates: list[str] | None = None) -> dict[str, Any]:
        import torch

        from lstmkit import inspect as glass

        tr = self.translator
        ids = self._data.encode_source(text, tr.src, tr.cfg, warn=False)
        if not ids:
            raise InputError("the text is empty after cleaning")
        src = self._data.pad([ids])
        with self._lock, torch.no_grad(), glass.record(tr.model) as rec:
            tr.model.encode(src, training=False)
        return {
            "tokens": tr.src.pieces(ids),
            "layers": _recording_layers(rec, gates),
            "prediction": None,
        }


class SpeechHandler(Handler):
    """``/v1/transcribe`` (an uploaded audio file) through :mod:`lstmkit.apps.speech`."""

    app = "speech"
    endpoints = ("/v1/transcribe",)
    max_seconds: ClassVar[float] = 120.0

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name, path)
        evaluate = _import("lstmkit.apps.speech.evaluate", self.app)
        self._decoders = tuple(evaluate.DECODERS)
        self.recognizer = evaluate.Recognizer.load(path)
        self._load_audio = _import("lstmkit.data.audio", self.app).load_audio
        # Warm up now: the first feature computation imports librosa (seconds), which would
        # otherwise count against the first request's time limit.
        rate = self.recognizer.spec.sample_rate
        self.recognizer.transcribe_audio(
            np.random.default_rng(0).normal(0.0, 0.1, rate // 4).astype(np.float32), rate
        )

    def details(self) -> dict[str, Any]:
        return {
            "vocabulary": list(self.recognizer.vocabulary),
            "sample_rate": self.recognizer.spec.sample_rate,
            "decoders": list(self._decoders),
        }

    def transcribe(self, data: bytes, filename: str, decoder: str) -> dict[str, Any]:
        """The transcript of one uploaded audio file (any format libsndfile reads).

        Raises:
            MediaError: not audio (undecodable).
            InputError: empty, truncated or too long audio; unknown decoder.
        """
        if decoder not in self._decoders:
            raise InputError(f"decoder must be one of {', '.join(self._decoders)}, got {decoder!r}")
        if not data:
            raise InputError("the uploaded file is empty")
        rate = self.recognizer.spec.sample_rate
        suffix = Path(filename or "upload").suffix[:10] or ".audio"
        with tempfile.TemporaryDirectory(prefix="lstmkit-serve-") as tmp:
            audio_path = Path(tmp) / f"upload{suffix}"
            audio_path.write_bytes(data)
            try:
                audio = self._load_audio(audio_path, rate)
            except ValueError as e:
                message = str(e).replace(str(audio_path), filename or "the upload")
                if "could not be decoded" in message:
                    raise MediaError(
                        f"not an audio file the server can decode: {message}"
                    ) from None
                raise InputError(message) from None
        seconds = len(audio) / rate
        if seconds > self.max_seconds:
            raise InputError(
                f"the audio lasts {seconds:.1f} s; at most {self.max_seconds:g} s are transcribed"
            )
        text = self.recognizer.transcribe_audio(audio, rate, decoder=decoder)
        return {"text": text, "seconds": round(seconds, 3), "decoder": decoder}


HANDLERS: dict[str, type[Handler]] = {
    "sentiment": SentimentHandler,
    "textgen": TextgenHandler,
    "translate": TranslateHandler,
    "speech": SpeechHandler,
}

#: Endpoint -> the applications that serve it.
ENDPOINT_APPS: dict[str, tuple[str, ...]] = {
    "/v1/sentiment": ("sentiment",),
    "/v1/generate": ("textgen",),
    "/v1/translate": ("translate",),
    "/v1/transcribe": ("speech",),
    "/v1/gates": ("sentiment", "textgen", "translate"),
}


def load_handler(name: str, path: str | os.PathLike[str]) -> Handler:
    """Detect the application of ``path`` and load it.

    Raises:
        FileNotFoundError, ValueError: not a model file of an lstmkit application.
        AppUnavailable: the application is not part of this build.
    """
    path = Path(path)
    app = detect(path)
    started = time.perf_counter()
    handler = HANDLERS[app](name, path)
    handler.load_seconds = time.perf_counter() - started  # type: ignore[attr-defined]
    return handler
