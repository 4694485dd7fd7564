"""``lstmkit serve MODEL_FILE...`` and ``lstmkit export MODEL_FILE OUT.onnx``.

:func:`register` adds both commands to the ``lstmkit`` Typer application (``lstmkit.cli`` calls
it when this module exists). Errors a user can fix end the command with a one-line message:
exit status 2 when ``serve`` refuses its model files at start-up (missing, foreign, damaged,
hostile or over a limit of :mod:`lstmkit.models.archive`, or assets an application cannot use),
1 for the others (a busy port, a model that cannot be exported). Models are loaded once, at
start-up: nothing read at run time can take the service down.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

BAD_MODEL_FILE = 2  # the exit status of `serve` refusing a model file at start-up


def _fail(message: str, code: int = 1) -> typing.NoReturn:
    line = " ".join(str(message).split())  # one line, whatever the error's text holds
    typer.echo(f"Error: {line}", err=True)
    raise typer.Exit(code)


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from lstmkit.serve.handlers import AppUnavailable

        try:
            return func(*args, **kwargs)
        except (FileNotFoundError, ValueError, TypeError, AppUnavailable) as e:
            _fail(str(e))

    return wrapper


@_user_errors
def serve(
    model_files: Annotated[
        list[str],
        typer.Argument(
            help="Model files written by the applications' `train` commands (sentiment, "
            "textgen, translate, speech); NAME=PATH names one (default: the file's stem).",
            show_default=False,
        ),
    ],
    host: Annotated[
        str,
        typer.Option(help="Address to bind; the default serves this machine only (loopback)."),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="TCP port (0 = any free port).", min=0, max=65535)
    ] = 8000,
    workers: Annotated[
        int, typer.Option(help="Threads running model work (0 = CPUs, at most 4).", min=0)
    ] = 0,
    threads: Annotated[
        int,
        typer.Option(
            help="torch intra-op threads per computation (0 = torch's default); 1 keeps "
            "concurrent requests from fighting over the cores.",
            min=0,
        ),
    ] = 1,
    timeout: Annotated[
        float, typer.Option(help="Time limit of one request's model work, in seconds.", min=0.1)
    ] = 30.0,
    max_body_mb: Annotated[
        float, typer.Option(help="Largest JSON request body, in MiB.", min=0.001)
    ] = 1.0,
    max_upload_mb: Annotated[
        float, typer.Option(help="Largest audio upload, in MiB.", min=0.001)
    ] = 10.0,
    header_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a client has, from connecting (or the end of the previous response), "
            "to send its request headers; then 408 and closed.",
            min=0.1,
        ),
    ] = 10.0,
    read_timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a client has, after the headers, to send the request body; "
            "then 408 and closed.",
            min=0.1,
        ),
    ] = 30.0,
    keep_alive: Annotated[
        float, typer.Option(help="Seconds an idle keep-alive connection stays open.", min=0.1)
    ] = 5.0,
    max_slow_connections: Annotated[
        int,
        typer.Option(
            help="Connections that may be sending a request at once; one more closes the one "
            "sending longest.",
            min=1,
        ),
    ] = 64,
    max_connections: Annotated[
        int, typer.Option(help="Open connections; above it new requests get 503.", min=2)
    ] = 1024,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve models over HTTP: JSON API (docs at /docs) and the web page at /."""
    import uvicorn

    from lstmkit.serve.app import MiB, create_app
    from lstmkit.serve.connections import ConnectionLimits, server_config
    from lstmkit.utils import set_threads

    try:
        set_threads(threads, "--threads")
    except (TypeError, ValueError) as e:
        raise typer.BadParameter(
            str(e).removeprefix("--threads "), param_hint="--threads"
        ) from None
    import math

    for flag, value in (
        ("--timeout", timeout),
        ("--max-body-mb", max_body_mb),
        ("--max-upload-mb", max_upload_mb),
        ("--header-timeout", header_timeout),
        ("--read-timeout", read_timeout),
        ("--keep-alive", keep_alive),
    ):
        if not math.isfinite(value):
            raise typer.BadParameter(f"{value} is not a finite number", param_hint=flag)
    if max_slow_connections >= max_connections:
        raise typer.BadParameter(
            f"{max_slow_connections} is not below --max-connections ({max_connections}): slow "
            f"connections could fill every slot",
            param_hint="--max-slow-connections",
        )
    limits = ConnectionLimits(
        header_timeout_s=header_timeout,
        body_timeout_s=read_timeout,
        keep_alive_s=keep_alive,
        max_reading=max_slow_connections,
        max_connections=max_connections,
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            f"Warning: binding to {host}: the service has no authentication; anyone who can "
            f"reach this address can use it.",
            err=True,
        )
    from lstmkit.serve.handlers import AppUnavailable

    try:
        app = create_app(
            model_files,
            workers=workers or None,
            timeout_s=timeout,
            max_body_bytes=int(max_body_mb * MiB),
            max_upload_bytes=int(max_upload_mb * MiB),
        )
    except (FileNotFoundError, ValueError, TypeError, AppUnavailable) as e:
        _fail(str(e), BAD_MODEL_FILE)
    for info in app.state.registry.handlers.values():
        typer.echo(f"model {info.name!r}: {info.app} ({info.path}) -> {', '.join(info.endpoints)}")
    if port:  # with port 0, uvicorn's own start-up line names the port it got
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"web page: http://{shown}:{port}/   API docs: http://{shown}:{port}/docs")
    try:
        config = server_config(
            app, host, port, limits, log_level=log_level, timeout_graceful_shutdown=5
        )
        server = uvicorn.Server(config)
        server.run()
    except OSError as e:
        _fail(f"cannot listen on {host}:{port}: {e}")
    except SystemExit:  # uvicorn's start-up failure (it logged why, e.g. the port is in use)
        _fail(f"cannot listen on {host}:{port} (see the message above)")
    if not server.started:
        _fail(f"cannot listen on {host}:{port} (see the message above)")


@_user_errors
def export(
    model_file: Annotated[
        Path, typer.Argument(help="A sentiment or textgen model file.", show_default=False)
    ],
    out: Annotated[Path, typer.Argument(help="The ONNX file to write.", show_default=False)],
    opset: Annotated[int, typer.Option(help="ONNX opset version.", min=9)] = 17,
    check: Annotated[
        bool,
        typer.Option(
            help="Compare onnxruntime's outputs with lstmkit's on random inputs of several "
            "batch sizes and lengths (fails above 1e-5)."
        ),
    ] = True,
) -> None:
    """Export a sentiment classifier or a language model's step function to ONNX.

    The sentiment graph maps token ids to p(positive); the textgen step function maps token ids
    and the LSTM states to logits and the new states. Batch and time axes are dynamic."""
    from torch.onnx._constants import ONNX_MAX_OPSET

    from lstmkit.serve.onnx_export import export_onnx

    if opset > ONNX_MAX_OPSET:
        raise typer.BadParameter(
            f"{opset} is above {ONNX_MAX_OPSET}, the newest opset this torch exports",
            param_hint="--opset",
        )
    report = export_onnx(model_file, out, opset=opset, check=check)
    typer.echo(report.describe())


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``export`` to the ``lstmkit`` command."""
    app.command("serve")(serve)
    app.command("export")(export)
