"""Slow and idle clients: read timeouts and a cap on connections still sending their request.

uvicorn bounds the size of request headers (h11's 16 KiB) and closes a keep-alive connection that
stays idle between requests, but a client that connects and sends nothing, or sends its headers
or its body one byte at a time, holds a socket and a protocol object for as long as it likes.
:func:`server_config` gives uvicorn an HTTP protocol (uvicorn's own h11 protocol with three
additions) under the limits of :class:`ConnectionLimits`:

* **header timeout**: from the moment a connection opens, or the previous response on it ends,
  the request line and headers must be complete within ``header_timeout_s``;
* **body timeout**: from the end of the headers, the body must be complete within
  ``body_timeout_s`` (a 10 MiB upload at 1 MiB/s needs 10 s: the default is 30 s);
* **cap on connections still reading**: at most ``max_reading`` connections may be sending a
  request at once; when one more opens, the one that has been reading longest is closed. A slow
  or idle client therefore cannot take the service from fast ones: an attacker with many slow
  connections only competes with itself, and ``/health`` keeps answering.

A connection closed for one of these reasons is answered ``408 Request Timeout`` with a JSON
``detail`` (when no response had started) and closed. Once a request has arrived whole, its model
work is bounded by the service's own time limit (:mod:`lstmkit.serve.limits`), and the idle time
before the next request on the connection by ``keep_alive_s``.

The protocol is a subclass of ``uvicorn.protocols.http.h11_impl.H11Protocol`` and reads the
request's progress from h11's public state (``their_state``), nothing else of uvicorn's.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol


@dataclass(frozen=True)
class ConnectionLimits:
    """What a connection may take before the request on it has arrived whole.

    Attributes:
        header_timeout_s: seconds from connect (or the end of the previous response) to the end
            of the request headers.
        body_timeout_s: seconds from the end of the headers to the end of the body.
        keep_alive_s: seconds an idle keep-alive connection stays open between requests.
        max_reading: connections that may be sending a request at once; one more closes the
            one that has been reading longest.
        max_connections: open connections; above it uvicorn answers 503 to new requests.
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    max_reading: int = 64
    max_connections: int = 1024

    def __post_init__(self) -> None:
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
            if not 0 < value < float("inf"):
                raise ValueError(f"{name} must be > 0 and finite, got {value!r}")
        for name in ("max_reading", "max_connections"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.max_reading >= self.max_connections:
            raise ValueError(
                f"max_reading ({self.max_reading}) must be below max_connections "
                f"({self.max_connections}), or slow connections could fill every slot"
            )


def _timeout_response(detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body timeouts and the cap on reading connections.

    A subclass made by :func:`protocol_class` carries its ``limits`` and the server's table of
    reading connections (``reading``: connection -> when it started reading, oldest first).
    """

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    reading: ClassVar[dict[GuardedH11Protocol, float]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = "closed"  # "headers" | "body" | "working" | "closed"
        self._timer: asyncio.TimerHandle | None = None

    # -- phases ------------------------------------------------------------------------------

    def _enter(self, phase: str) -> None:
        if phase == self._phase:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._phase = phase
        if phase in ("headers", "body"):
            limits = self.limits
            seconds = limits.header_timeout_s if phase == "headers" else limits.body_timeout_s
            self._timer = self.loop.call_later(seconds, self._time_up, phase, seconds)
            if self not in self.reading:
                self.reading[self] = time.monotonic()
                self._evict()
        else:
            self.reading.pop(self, None)

    def _follow(self) -> None:
        """Move to the phase h11's view of the client's side says the request is in."""
        if self._phase == "closed":
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            # No request yet on this cycle; while a response is still being sent (pipelining)
            # the next request's clock starts when that response ends.
            if self.cycle is None or self.cycle.response_complete:
                self._enter("headers")
        elif state is h11.SEND_BODY:
            self._enter("body")
        else:
            self._enter("working")

    def _evict(self) -> None:
        while len(self.reading) > self.limits.max_reading:
            oldest = next(iter(self.reading))
            oldest._close(
                f"closed: more than {self.limits.max_reading} connections were sending a "
                f"request at once, and this one had been sending longest"
            )

    def _time_up(self, phase: str, seconds: float) -> None:
        self._timer = None
        what = "request headers" if phase == "headers" else "request body"
        self._close(f"the {what} did not arrive within {seconds:g} s")

    def _close(self, detail: str) -> None:
        self._enter("closed")
        if self.transport.is_closing():
            return
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(_timeout_response(detail))
        who = f"{self.client[0]}:{self.client[1]}" if self.client else "client"
        self.logger.info("%s: %s", who, detail)
        self.transport.close()

    # -- uvicorn's protocol interface --------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._phase = "new"
        self._enter("headers")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._enter("closed")
        super().connection_lost(exc)


def protocol_class(limits: ConnectionLimits) -> type[GuardedH11Protocol]:
    """A protocol class for one server: its limits and its own table of reading connections."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"limits": limits, "reading": {}, "__module__": __name__},
    )


def server_config(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    limits: ConnectionLimits | None = None,
    log_level: str = "info",
    **kwargs: Any,
) -> uvicorn.Config:
    """uvicorn's configuration for serving ``app`` under ``limits`` (default
    :class:`ConnectionLimits`); ``kwargs`` go to ``uvicorn.Config``."""
    limits = limits or ConnectionLimits()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(limits),
        timeout_keep_alive=limits.keep_alive_s,
        limit_concurrency=limits.max_connections,
        log_level=log_level,
        **kwargs,
    )


def reading_connections(config: uvicorn.Config) -> int:
    """How many connections of the server made from ``config`` are sending a request now."""
    cls = config.http
    return len(cls.reading) if isinstance(cls, type) and issubclass(cls, GuardedH11Protocol) else 0
