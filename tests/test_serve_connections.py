"""Slow and idle clients over real loopback sockets (lstmkit.serve.connections).

A server with short limits (headers 1 s, body 1.5 s, at most 8 connections sending a request)
is attacked with idle connections, headers and bodies dripped a byte at a time, and 40 slow
connections at once; each must be closed within its timeout (with a 408 naming it) while
``/health`` keeps answering. Without the protocol (plain uvicorn) every one of these stays open.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from lstmkit.serve import create_app
from lstmkit.serve.connections import ConnectionLimits, reading_connections
from test_serve_models import LiveServer, make_sentiment

LIMITS = ConnectionLimits(
    header_timeout_s=1.0, body_timeout_s=1.5, keep_alive_s=1.0, max_reading=8, max_connections=64
)
SLACK = 1.5  # seconds of scheduling noise allowed past a timeout on a busy 2-core machine


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    path = make_sentiment(tmp_path_factory.mktemp("conn") / "s.lstmkit")
    with LiveServer(create_app([str(path)], workers=1), limits=LIMITS) as live:
        live.host, live.port = "127.0.0.1", int(live.url.rsplit(":", 1)[1])
        yield live


def _connect(server) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.settimeout(10)
    return sock


def _closed_after(sock: socket.socket, drip: bytes = b"", every: float = 0.2):
    """Send ``drip`` one byte every ``every`` seconds until the server closes the connection;
    the seconds it stayed open and everything the server sent."""
    start = time.monotonic()
    got = b""
    sock.setblocking(False)
    i = 0
    while time.monotonic() - start < 20:
        if i < len(drip):
            try:
                sock.send(drip[i : i + 1])
            except (BrokenPipeError, ConnectionResetError):
                break
            i += 1
        deadline = time.monotonic() + every
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return time.monotonic() - start, got
            got += chunk
    sock.close()
    return time.monotonic() - start, got


def _health_ok(server) -> bool:
    r = httpx.get(f"{server.url}/health", timeout=3)
    return r.status_code == 200 and r.json()["status"] == "ok"


def test_an_idle_connection_is_closed_at_the_header_timeout(server):
    seconds, got = _closed_after(_connect(server))
    assert LIMITS.header_timeout_s - 0.1 <= seconds <= LIMITS.header_timeout_s + SLACK
    assert got.startswith(b"HTTP/1.1 408")
    assert b"request headers did not arrive within 1 s" in got


def test_headers_dripped_a_byte_at_a_time_are_cut_off(server):
    drip = b"POST /v1/sentiment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" * 4
    seconds, got = _closed_after(_connect(server), drip, every=0.1)
    assert seconds <= LIMITS.header_timeout_s + SLACK
    assert got.startswith(b"HTTP/1.1 408")


def test_a_body_dripped_a_byte_at_a_time_is_cut_off_at_the_body_timeout(server):
    sock = _connect(server)
    body = b'{"text": "' + b"a" * 500 + b'"}'
    sock.sendall(
        b"POST /v1/sentiment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    seconds, got = _closed_after(sock, body, every=0.1)
    assert LIMITS.body_timeout_s - 0.1 <= seconds <= LIMITS.body_timeout_s + SLACK
    assert got.startswith(b"HTTP/1.1 408")
    assert b"request body did not arrive within 1.5 s" in got


def test_keep_alive_requests_still_work_and_idle_keep_alive_closes(server):
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for text in ("a fine film", "a dull film", "awful"):  # one connection, three requests
            r = client.post("/v1/sentiment", json={"text": text})
            assert r.status_code == 200, r.text
    sock = _connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    seconds, got = _closed_after(sock)
    assert got.startswith(b"HTTP/1.1 200")
    assert seconds <= LIMITS.keep_alive_s + SLACK  # closed when idle, not left open


def test_forty_slow_connections_are_all_closed_while_health_answers(server):
    """40 slow-drip connections at once (5x the cap): the server never holds more than the cap
    reading, every one is closed within the header timeout, /health answers throughout."""
    results: list[tuple[float, bytes]] = []
    lock = threading.Lock()

    def attacker():
        out = _closed_after(_connect(server), b"GET /health HTTP/1.1\r\nHost: x\r\n" * 20, 0.15)
        with lock:
            results.append(out)

    threads = [threading.Thread(target=attacker) for _ in range(40)]
    for t in threads:
        t.start()
        time.sleep(0.005)
    health, most_reading = [], 0
    start = time.monotonic()
    while any(t.is_alive() for t in threads) and time.monotonic() - start < 30:
        most_reading = max(most_reading, reading_connections(server.config))
        t0 = time.monotonic()
        health.append((_health_ok(server), time.monotonic() - t0))
        time.sleep(0.05)
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 40
    assert all(seconds <= LIMITS.header_timeout_s + SLACK for seconds, _ in results)
    assert all(got.startswith(b"HTTP/1.1 408") for _, got in results)
    evicted = [got for _, got in results if b"had been sending longest" in got]
    assert len(evicted) >= 40 - LIMITS.max_reading - 4  # most made room for newer ones
    assert most_reading <= LIMITS.max_reading
    assert len(health) >= 5 and all(ok for ok, _ in health)
    assert max(s for _, s in health) < 1.0
    assert reading_connections(server.config) <= 1  # nothing left behind


def test_limits_are_checked():
    with pytest.raises(ValueError, match="header_timeout_s must be > 0"):
        ConnectionLimits(header_timeout_s=0)
    with pytest.raises(ValueError, match="body_timeout_s must be > 0 and finite"):
        ConnectionLimits(body_timeout_s=float("inf"))
    with pytest.raises(TypeError, match="max_reading must be an int"):
        ConnectionLimits(max_reading=2.5)
    with pytest.raises(ValueError, match="must be below max_connections"):
        ConnectionLimits(max_reading=10, max_connections=10)
