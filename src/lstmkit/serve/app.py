"""The HTTP service: ``create_app(model_files...)`` gives a FastAPI application.

Endpoints (OpenAPI at ``/openapi.json``, Swagger UI at ``/docs``; the web page at ``/``)::

    GET  /health            liveness, loaded models, pending work
    GET  /v1/models         loaded models, what each serves, the glass box's colour maps
    POST /v1/sentiment      {"text" | "texts", "model"?}             label and probability
    POST /v1/gates          {"text", "gates"?, "model"?}             every gate at every token
    POST /v1/generate       {"prompt", "length", "temperature", "top_k", "top_p", "seed",
                             "stream"}                              NDJSON stream of tokens
    POST /v1/translate      {"text" | "texts", "beam_size"?}        text, pieces, attention
    POST /v1/transcribe     multipart: file=<audio>, model?, decoder?  transcript

How requests are kept from hurting the service (:mod:`lstmkit.serve.limits`):

* **Sizes.** The body of a request is limited before it is read (``max_body_bytes`` for JSON,
  ``max_upload_bytes`` for uploads): a ``Content-Length`` over the limit is refused at once and a
  chunked body is counted as it arrives (413). The schemas bound text lengths, batch sizes and
  generation lengths (:mod:`lstmkit.serve.schemas`).
* **Content types.** JSON endpoints take ``application/json``, the upload endpoint
  ``multipart/form-data`` (415 otherwise). Malformed JSON is a 400, a body that does not fit the
  schema a 422 naming the field, an unknown model name a 404, a model of the wrong kind a 400.
* **Time.** Model work runs on a pool of ``workers`` threads (torch releases the GIL), never on
  the event loop, so the service answers ``/health`` and other requests while models compute.
  A request that is not answered within ``timeout_s`` gets a 504 (a queued job whose time is up
  is skipped; a running one finishes in the background, its result dropped); generation stops
  itself at 90% of the time limit and says so (``finish_reason: "time_limit"``). More than
  ``max_pending`` requests waiting for the workers get a 503 at once.
* **Connections.** ``lstmkit serve`` (and :func:`lstmkit.serve.connections.server_config`) runs
  uvicorn with header and body read timeouts and a cap on connections still sending a request,
  so idle and slow-drip clients are closed with a 408 (:mod:`lstmkit.serve.connections`).
* **Numbers.** A model that computes NaN or infinity for an input is answered 500 naming the
  model (``ModelFault``), never 200 with ``null``.

Every error is JSON ``{"detail": "<what went wrong and what was expected>"}`` (validation errors
add ``"errors"``: pydantic's list), and the service keeps serving afterwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from lstmkit.serve import handlers as h
from lstmkit.serve import schemas as s
from lstmkit.serve.limits import RequestGuard, Workers

log = logging.getLogger("lstmkit.serve")
T = TypeVar("T")

MiB = 1 << 20


# -- model registry --------------------------------------------------------------------------------


def _parse_model_args(models: Iterable[Any] | Mapping[str, Any]) -> list[tuple[str, Path]]:
    """``[(name, path)]`` from paths, ``"name=path"`` strings or a ``{name: path}`` mapping.

    A path's default name is its file stem; when two stems collide, the parent folder is
    prefixed (``runs/sentiment/model.lstmkit`` -> ``sentiment-model``).
    """
    if isinstance(models, Mapping):
        pairs = [(str(k), Path(os.fspath(v))) for k, v in models.items()]
    else:
        pairs = []
        for item in models:
            text = os.fspath(item)
            name, sep, rest = text.partition("=")
            if sep and name and "/" not in name and not Path(text).exists():
                pairs.append((name, Path(rest)))
            else:
                pairs.append(("", Path(text)))
        stems = [p.stem for n, p in pairs if not n]
        pairs = [
            (n or (p.stem if stems.count(p.stem) == 1 else f"{p.parent.name}-{p.stem}"), p)
            for n, p in pairs
        ]
    if not pairs:
        raise ValueError("serve: give at least one model file")
    names = [n for n, _ in pairs]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(
                f"serve: two model files would both be called {name!r}; name them with "
                f"NAME=PATH (e.g. reviews={pairs[names.index(name)][1]})"
            )
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise ValueError(f"serve: model name {name!r} must be letters, digits, '-', '_' or '.'")
    return pairs


class Registry:
    """The loaded models by name, in the order given."""

    def __init__(self, handlers: list[h.Handler]) -> None:
        self.handlers = {handler.name: handler for handler in handlers}

    def serving(self, endpoint: str) -> list[h.Handler]:
        apps = h.ENDPOINT_APPS[endpoint]
        return [x for x in self.handlers.values() if x.app in apps]

    def unavailable(self) -> dict[str, str]:
        out = {}
        for endpoint, apps in h.ENDPOINT_APPS.items():
            if not self.serving(endpoint):
                out[endpoint] = f"no {' or '.join(apps)} model is loaded"
        return out

    def _listing(self) -> str:
        return ", ".join(f"{n} ({x.app})" for n, x in self.handlers.items())

    def get(self, name: str | None, endpoint: str) -> h.Handler:
        """The model that answers ``endpoint``: ``name``, or the first that serves it."""
        apps = h.ENDPOINT_APPS[endpoint]
        if name is None:
            serving = self.serving(endpoint)
            if not serving:
                raise HTTPException(
                    503,
                    f"{endpoint} is not available: no {' or '.join(apps)} model is loaded "
                    f"(loaded: {self._listing()}); start the server with such a model file",
                )
            return serving[0]
        handler = self.handlers.get(name)
        if handler is None:
            raise HTTPException(404, f"unknown model {name!r}; loaded: {self._listing()}")
        if handler.app not in apps:
            others = ", ".join(x.name for x in self.serving(endpoint)) or "none loaded"
            raise HTTPException(
                400,
                f"model {name!r} is a {handler.app} model; {endpoint} needs a "
                f"{' or '.join(apps)} model ({others})",
            )
        return handler


def _model_errors(e: Exception) -> HTTPException:
    """The HTTP error for an exception raised by a handler."""
    if isinstance(e, HTTPException):
        return e
    if isinstance(e, h.AppUnavailable):
        return HTTPException(503, str(e))
    if isinstance(e, h.MediaError):
        return HTTPException(415, str(e))
    if isinstance(e, h.NotSupported):
        return HTTPException(400, str(e))
    if isinstance(e, FloatingPointError):  # ModelFault, the text sampler's NaN logits
        log.error("non-finite model output: %s", e)
        return HTTPException(500, f"the model's numbers are not finite: {e}")
    if isinstance(e, (ValueError, TypeError)):  # the application's own input checks
        return HTTPException(422, str(e))
    log.exception("internal error", exc_info=e)
    return HTTPException(500, f"internal error: {type(e).__name__}: {e}")


# -- the application -----------------------------------------------------------------------------


def _validation_message(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """Status and a readable one-line summary of pydantic/FastAPI validation errors."""
    for err in errors:
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            return 400, f"malformed JSON body: {ctx.get('error', err.get('msg'))}"
    parts = []
    for err in errors[:5]:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        where = ".".join(loc) or "body"
        if err.get("type") == "missing":
            parts.append(f"missing field '{where}'")
        elif err.get("type") == "extra_forbidden":
            parts.append(f"unknown field '{where}'")
        else:
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            if msg.startswith("Expected UploadFile"):  # a text field where a file goes
                msg = "expected a file (a multipart part with a filename), got a text field"
            elif loc and err.get("type") != "value_error" and "input" in err:
                msg += f", got {_json_kind(err['input'])}"
            parts.append(f"{where}: {msg}" if loc else msg)
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return 422, "invalid request: " + "; ".join(parts) + more


def _json_kind(value: Any) -> str:
    """What a JSON value is, for error messages: ``a string "5"``, ``a boolean true``."""
    kind = (
        "null" if value is None
        else "a boolean" if isinstance(value, bool)
        else "an integer" if isinstance(value, int)
        else "a number" if isinstance(value, float)
        else "a string" if isinstance(value, str)
        else "an array" if isinstance(value, list)
        else "an object" if isinstance(value, dict)
        else type(value).__name__
    )  # fmt: skip
    if value is None or isinstance(value, (list, dict)):
        return kind
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return f"{kind} {text[:40] + '...' if len(text) > 40 else text}"


def _static_dir() -> Path:
    return Path(str(resources.files("lstmkit.serve") / "static"))


def create_app(
    models: Iterable[Any] | Mapping[str, Any],
    *,
    workers: int | None = None,
    timeout_s: float = 30.0,
    max_body_bytes: int = 1 * MiB,
    max_upload_bytes: int = 10 * MiB,
    max_pending: int = 256,
) -> FastAPI:
    """The FastAPI application serving ``models``.

    Args:
        models: model files (paths, or ``"name=path"``), or a ``{name: path}`` mapping; each is
            loaded now through its application's API (see :mod:`lstmkit.serve.handlers`).
        workers: threads running model work (default: the number of CPUs, at most 4).
        timeout_s: the time limit of one request's model work.
        max_body_bytes: the largest JSON body.
        max_upload_bytes: the largest audio upload.
        max_pending: requests that may wait for the workers before new ones get a 503.

    Raises:
        FileNotFoundError, ValueError: a file is missing or not an application's model file.
        lstmkit.serve.handlers.AppUnavailable: its application is not in this build.
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    for arg, value in (
        ("max_body_bytes", max_body_bytes),
        ("max_upload_bytes", max_upload_bytes),
        ("max_pending", max_pending),
    ):
        if value < 1:
            raise ValueError(f"{arg} must be >= 1, got {value}")
    n_workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    if n_workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    registry = Registry([h.load_handler(n, p) for n, p in _parse_model_args(models)])
    pool = Workers(n_workers, max_pending, timeout_s)
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()

    app = FastAPI(
        title="lstmkit",
        summary="LSTM models as a service: sentiment, text generation, translation, speech — "
        "and every gate.",
        version=_version(),
        lifespan=lifespan,
        responses={
            400: {"model": s.ErrorResponse},
            404: {"model": s.ErrorResponse},
            413: {"model": s.ErrorResponse},
            415: {"model": s.ErrorResponse},
            422: {"model": s.ErrorResponse},
            503: {"model": s.ErrorResponse},
            504: {"model": s.ErrorResponse},
        },
    )
    app.state.registry, app.state.workers = registry, pool
    app.add_middleware(
        RequestGuard, max_body_bytes=max_body_bytes, max_upload_bytes=max_upload_bytes
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in exc.errors()]
        status, message = _validation_message(list(exc.errors()))
        return JSONResponse({"detail": message, "errors": errors}, status_code=status)

    async def run(fn: Callable[[], T]) -> T:
        try:
            return await pool.run(fn)
        except HTTPException:
            raise
        except Exception as e:
            raise _model_errors(e) from None

    # -- service ------------------------------------------------------------------------------

    @app.get("/health", response_model=s.HealthResponse, tags=["service"])
    async def health() -> dict[str, Any]:
        """Liveness: always answers at once, also while models are busy."""
        return {
            "status": "ok",
            "models": {n: x.app for n, x in registry.handlers.items()},
            "uptime_s": round(time.monotonic() - started, 3),
            "pending": pool.pending,
        }

    @app.get("/v1/models", response_model=s.ModelsResponse, tags=["service"])
    async def models_() -> dict[str, Any]:
        """The loaded models, the endpoints each serves, and the glass box's colour scales."""
        from lstmkit.inspect import colors

        return {
            "models": [x.describe() for x in registry.handlers.values()],
            "unavailable": registry.unavailable(),
            "colormaps": {name: list(colors.anchors(name)) for name in colors.CMAPS},
            "gate_scales": dict(colors.GATE_SCALES),
        }

    # -- applications -------------------------------------------------------------------------

    @app.post("/v1/sentiment", response_model=s.SentimentResponse, tags=["sentiment"])
    async def sentiment(req: s.SentimentRequest) -> dict[str, Any]:
        """Label (positive/negative) and probability of each text."""
        handler = registry.get(req.model, "/v1/sentiment")
        texts = req.all_texts()
        predictions = await run(lambda: handler.predict(texts))  # type: ignore[attr-defined]
        return {"model": handler.name, "predictions": predictions}

    @app.post("/v1/gates", response_model=s.GatesResponse, tags=["glass box"])
    async def gates(req: s.GatesRequest) -> dict[str, Any]:
        """Every gate and state of every recurrent layer at every token of ``text``."""
        handler = registry.get(req.model, "/v1/gates")
        result = await run(lambda: handler.gates(req.text, req.gates))
        return {"model": handler.name, "app": handler.app, **result}

    @app.post(
        "/v1/generate",
        tags=["textgen"],
        response_model=s.GenerateResponse,
        responses={200: {"content": {"application/x-ndjson": {}}}},
    )
    async def generate(req: s.GenerateRequest) -> Any:
        """Text drawn token by token; streamed as NDJSON unless ``stream`` is false."""
        handler = registry.get(req.model, "/v1/generate")
        # Generation stops itself a little before the hard time limit, so that a long text is
        # answered (cut short, finish_reason "time_limit") rather than lost to a 504.
        deadline = time.monotonic() + 0.9 * pool.timeout_s
        cancelled = threading.Event()

        def should_stop() -> str | None:
            if cancelled.is_set():
                return "cancelled"
            return "time_limit" if time.monotonic() > deadline else None

        def pieces() -> Any:
            return handler.stream(  # type: ignore[attr-defined]
                req.prompt, req.length, req.temperature, req.top_k, req.top_p, req.seed,
                should_stop,
            )  # fmt: skip

        if not req.stream:

            def whole() -> dict[str, Any]:
                out = list(pieces())
                reason = "length" if len(out) == req.length else (should_stop() or "length")
                return {"text": "".join(out), "tokens": len(out), "finish_reason": reason}

            result = await run(whole)
            return {"model": handler.name, "prompt": req.prompt, **result}

        # Streaming: the first token is drawn before the response starts, so that a prompt the
        # model cannot read is a 422 rather than a broken stream.
        iterator = pieces()
        first = await run(lambda: next(iterator, None))
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[bytes | None] = asyncio.Queue()

        def emit(item: bytes | None) -> None:
            try:
                loop.call_soon_threadsafe(lines.put_nowait, item)
            except RuntimeError:  # the event loop is gone (shutdown): stop generating
                cancelled.set()

        def produce() -> None:
            count = 0 if first is None else 1
            try:
                for piece in iterator:
                    count += 1
                    emit(_line({"token": piece}))
                stop = should_stop()
                reason = stop if (stop and count < req.length) else "length"
                done = {"done": True, "tokens": count, "finish_reason": reason}
            except Exception as e:  # after the first token: report in the stream
                log.exception("generation failed", exc_info=e)
                done = {"done": True, "tokens": count, "error": f"{type(e).__name__}: {e}"}
            finally:
                pool.release()
            emit(_line(done))
            emit(None)

        pool.admit()
        try:
            pool.pool.submit(produce)
        except RuntimeError:
            pool.release()
            raise HTTPException(503, "the server is shutting down") from None

        async def body() -> AsyncIterator[bytes]:
            try:
                yield _line({"model": handler.name, "prompt": req.prompt})
                if first is not None:
                    yield _line({"token": first})
                while (item := await lines.get()) is not None:
                    yield item
            finally:
                cancelled.set()  # the client went away: the worker stops at the next token

        return StreamingResponse(
            body(), media_type="application/x-ndjson", headers={"cache-control": "no-store"}
        )

    @app.post("/v1/translate", response_model=s.TranslateResponse, tags=["translate"])
    async def translate(req: s.TranslateRequest) -> dict[str, Any]:
        """German -> English with beam search; subword pieces and the attention weights."""
        handler = registry.get(req.model, "/v1/translate")
        texts = req.all_texts()
        result = await run(lambda: handler.translate(texts, req.beam_size))  # type: ignore[attr-defined]
        return {"model": handler.name, "translations": result}

    @app.post("/v1/transcribe", response_model=s.TranscribeResponse, tags=["speech"])
    async def transcribe(
        file: Annotated[UploadFile, File(description="An audio file (WAV, FLAC, OGG …).")],
        model: Annotated[str | None, Form(description="A loaded speech model's name.")] = None,
        decoder: Annotated[str, Form(description="'greedy' or 'beam' CTC decoding.")] = "greedy",
    ) -> dict[str, Any]:
        """The transcript of an uploaded recording."""
        handler = registry.get(model, "/v1/transcribe")
        data = await file.read()
        name = file.filename or "upload"
        result = await run(lambda: handler.transcribe(data, name, decoder))  # type: ignore[attr-defined]
        return {"model": handler.name, **result}

    # -- the page -------------------------------------------------------------------------------

    static = _static_dir()
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(static / "index.html", headers={"cache-control": "no-cache"})

    return app


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def _version() -> str:
    from lstmkit import __version__

    return __version__
