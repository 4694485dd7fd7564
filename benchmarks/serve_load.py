"""Load test of ``lstmkit serve``: many ``POST /v1/sentiment`` requests at a fixed concurrency,
over loopback HTTP, against a server started by this script (a separate process).

    python -m benchmarks.serve_load [--model FILE] [--requests 1000] [--concurrency 16]
                                    [--workers 2] [--texts 1]

What it does:

1. starts ``lstmkit serve MODEL --host 127.0.0.1 --port <free> --workers W --threads 1`` and
   waits for ``/health``;
2. sends ``--warmup`` requests, then ``--requests`` requests from ``--concurrency`` concurrent
   clients (httpx, async, keep-alive), each one review snippet (``--texts`` per request) drawn in
   turn from the movie-review test split (or a built-in list without the data);
3. counts errors (any status other than 200, any transport error) and reports the latency
   percentiles (p50, p90, p99, max) and the throughput (requests / wall time);
4. the server process's CPU time per request (user + system, from ``/proc``): what a request
   costs independently of how busy a shared machine is;
5. the peer, measured in the same run while the server is idle: the same texts through
   ``SentimentClassifier.predict`` in this process, one at a time (no HTTP, no queueing) —
   ``p50 HTTP / p50 in-process`` is what serving adds at this concurrency.

Without ``--model`` the seed network (``SentimentConfig()``'s defaults: Embedding(20000, 128),
LSTM(128), LSTM(64), Dense(1)) is built untrained with a tokenizer adapted on the texts:
inference costs the same as for a trained one. Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FALLBACK_TEXTS = [
    "a gripping, beautifully acted film",
    "the plot is thin and the jokes fall flat",
    "not bad at all, i enjoyed most of it",
    "one of the worst movies i have seen this year",
    "a warm, funny and surprisingly moving story",
    "boring from start to finish",
    "the cast is wonderful but the script lets them down",
    "an instant classic",
]


def review_texts() -> list[str]:
    try:
        from lstmkit.datasets import load_movie_reviews

        texts, _ = load_movie_reviews("test")
        return list(texts)
    except (ImportError, FileNotFoundError, ValueError):
        return FALLBACK_TEXTS


def seed_model(folder: Path, texts: list[str]) -> Path:
    """The seed network, untrained, with a tokenizer adapted on ``texts``."""
    import torch

    from lstmkit.apps.sentiment.config import SentimentConfig
    from lstmkit.apps.sentiment.data import Tokenizer
    from lstmkit.apps.sentiment.model import SentimentClassifier, build_model

    cfg = SentimentConfig()
    tokenizer = Tokenizer.adapt(texts, max_tokens=cfg.max_tokens, maxlen=cfg.maxlen)
    torch.manual_seed(0)
    return SentimentClassifier(build_model(cfg), tokenizer, cfg).save(folder / "seed.lstmkit")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, workers: int, log: Any) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "lstmkit.cli", "serve", str(model), "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--threads", "1",
        "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become healthy")


async def run_load(
    url: str, texts: list[str], n: int, concurrency: int, per_request: int
) -> tuple[list[float], list[str], float]:
    """Latencies (s) of the successful requests, error descriptions, wall time (s)."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            for k in counter:
                batch = [texts[(k * per_request + j) % len(texts)] for j in range(per_request)]
                body = {"text": batch[0]} if per_request == 1 else {"texts": batch}
                started = time.perf_counter()
                try:
                    r = await client.post("/v1/sentiment", json=body)
                except httpx.HTTPError as e:
                    errors.append(f"{type(e).__name__}: {e}")
                    continue
                elapsed = time.perf_counter() - started
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                elif len(r.json()["predictions"]) != per_request:
                    errors.append("wrong number of predictions")
                else:
                    latencies.append(elapsed)

        wall = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - wall
    return latencies, errors, wall


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def in_process(model: Path, texts: list[str], n: int) -> list[float]:
    """The peer: ``SentimentClassifier.predict([text])`` one at a time in this process."""
    import torch

    from lstmkit.apps.sentiment.model import SentimentClassifier

    torch.set_num_threads(1)
    clf = SentimentClassifier.load(model)
    for text in texts[:10]:
        clf.predict([text])
    out = []
    for k in range(n):
        started = time.perf_counter()
        clf.predict([texts[k % len(texts)]])
        out.append(time.perf_counter() - started)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None, help="sentiment model file (default: seed)")
    p.add_argument("--requests", type=int, default=1000, help="timed requests")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    p.add_argument("--warmup", type=int, default=50, help="untimed requests first")
    p.add_argument("--workers", type=int, default=2, help="the server's model threads")
    p.add_argument("--texts", type=int, default=1, help="texts per request")
    p.add_argument("--peer-requests", type=int, default=300, help="in-process predictions")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)

    from benchmarks.harness import machine

    info = machine()
    info["command"] = " ".join(["python -m benchmarks.serve_load", *sys.argv[1:]])
    texts = review_texts()
    with tempfile.TemporaryDirectory(prefix="lstmkit-load-") as tmp:
        model = args.model or seed_model(Path(tmp), texts)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = Path(tmp) / "server.log"
        with open(log_path, "w") as log:
            proc = start_server(model, port, args.workers, log)
            try:
                wait_healthy(url, proc)
                asyncio.run(run_load(url, texts, args.warmup, args.concurrency, args.texts))
                cpu_before = cpu_seconds(proc.pid)
                lat, errors, wall = asyncio.run(
                    run_load(url, texts, args.requests, args.concurrency, args.texts)
                )
                server_cpu = cpu_seconds(proc.pid) - cpu_before
                health = json.loads(__import__("httpx").get(f"{url}/health").text)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        peer = in_process(model, texts, args.peer_requests)
        if errors:
            print(log_path.read_text()[-2000:], file=sys.stderr)

    ms = [x * 1e3 for x in lat]
    figures = {
        "model": str(args.model) if args.model else "seed network (untrained)",
        "requests": args.requests,
        "concurrency": args.concurrency,
        "server workers": args.workers,
        "texts per request": args.texts,
        "ok": len(lat),
        "errors": len(errors),
        "p50 ms": percentile(ms, 50) if ms else float("nan"),
        "p90 ms": percentile(ms, 90) if ms else float("nan"),
        "p99 ms": percentile(ms, 99) if ms else float("nan"),
        "max ms": max(ms) if ms else float("nan"),
        "mean ms": statistics.fmean(ms) if ms else float("nan"),
        "throughput req/s": len(lat) / wall if wall else float("nan"),
        "server CPU ms per request": 1e3 * server_cpu / max(len(lat) + len(errors), 1),
        "in-process predict p50 ms": statistics.median(peer) * 1e3,
        "pending after": health.get("pending"),
        "load average at end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        **info,
    }
    figures["p50 HTTP / p50 in-process"] = figures["p50 ms"] / figures["in-process predict p50 ms"]
    for k, v in figures.items():
        print(f"{k:>28}: {v:.2f}" if isinstance(v, float) else f"{k:>28}: {v}")
    for e in errors[:5]:
        print("error:", e, file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
