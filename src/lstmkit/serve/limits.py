"""What keeps one request from hurting the others: the worker pool with its time limit, and the
guard that checks content types and body sizes before a body is read.

* :class:`Workers` runs model work on threads (torch releases the GIL while it computes), never
  on the event loop; a request not answered within the time limit gets a 504, a queued job
  whose time is up is skipped, and more than ``max_pending`` waiting requests get a 503 at once.
* :class:`RequestGuard` is raw ASGI middleware in front of FastAPI: JSON endpoints need
  ``application/json`` and the upload endpoint ``multipart/form-data`` (415 otherwise); a body
  whose ``Content-Length`` is over the limit is refused before it is read, and a chunked body is
  counted as it arrives (413).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import HTTPException

T = TypeVar("T")

JSON_ENDPOINTS = ("/v1/sentiment", "/v1/gates", "/v1/generate", "/v1/translate")
UPLOAD_ENDPOINTS = ("/v1/transcribe",)


class Workers:
    """Runs model work on a thread pool with a time limit and a bound on waiting requests."""

    def __init__(self, workers: int, max_pending: int, timeout_s: float) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="lstmkit-serve"
        )
        self.max_pending, self.timeout_s = max_pending, timeout_s
        self.pending = 0
        self._lock = threading.Lock()

    def admit(self) -> None:
        with self._lock:
            if self.pending >= self.max_pending:
                raise HTTPException(
                    503, f"server busy: {self.pending} requests are waiting; retry shortly"
                )
            self.pending += 1

    def release(self) -> None:
        with self._lock:
            self.pending -= 1

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on a worker thread; 504 when it is not done within the time limit.

        The request counts as pending until its job has finished or was skipped, also when
        the client got its 504 earlier: a job that is already running cannot be stopped.
        """
        self.admit()
        deadline = time.monotonic() + self.timeout_s

        def job() -> T:
            if time.monotonic() > deadline:  # queued past its time: skip
                raise TimeoutError
            return fn()

        try:
            submitted = self.pool.submit(job)
        except RuntimeError:  # shut down
            self.release()
            raise HTTPException(503, "the server is shutting down") from None
        submitted.add_done_callback(lambda _: self.release())
        try:
            return await asyncio.wait_for(asyncio.wrap_future(submitted), self.timeout_s)
        except TimeoutError:
            raise HTTPException(
                504, f"the model did not answer within the time limit of {self.timeout_s:g} s"
            ) from None

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class RequestGuard:
    """Content types and body sizes, checked before FastAPI reads a body."""

    def __init__(self, app: Any, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes, self.max_upload_bytes = max_body_bytes, max_upload_bytes

    @staticmethod
    async def _reply(send: Any, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        upload = path in UPLOAD_ENDPOINTS
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        if path in JSON_ENDPOINTS and ctype != "application/json":
            await self._reply(
                send,
                415,
                f"{path} takes a JSON body: expected Content-Type application/json, got "
                f"{ctype or 'none'}",
            )
            return
        if upload and ctype != "multipart/form-data":
            await self._reply(
                send,
                415,
                f"{path} takes an audio file upload: expected Content-Type multipart/form-data "
                f"(a form field 'file'), got {ctype or 'none'}",
            )
            return
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await self._reply(send, 400, f"invalid Content-Length header {length!r}")
                return
            if int(length) > limit:
                await self._reply(
                    send,
                    413,
                    f"request body of {int(length):,} bytes is over the limit of {limit:,} bytes",
                )
                return
        received = 0

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"request body is over the limit of {limit:,} bytes")
            return message

        started = False

        async def tracked(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except HTTPException as e:
            if started:
                raise
            await self._reply(send, e.status_code, str(e.detail))
