"""The HTTP service and web page (``lstmkit serve``) and ONNX export (``lstmkit export``).

    from lstmkit.serve import create_app
    app = create_app(["runs/sentiment/model.lstmkit", "shakespeare=runs/textgen/char.lstmkit"])
    # uvicorn.run(app, host="127.0.0.1", port=8000)

Modules: :mod:`~lstmkit.serve.app` (the FastAPI application: endpoints, limits, worker pool),
:mod:`~lstmkit.serve.limits` (worker pool, time limit, body sizes and content types),
:mod:`~lstmkit.serve.schemas` (request/response bodies), :mod:`~lstmkit.serve.handlers` (one
adapter per application, detected from the model file), :mod:`~lstmkit.serve.onnx_export`,
:mod:`~lstmkit.serve.cli`; the page is ``static/`` (plain HTML, CSS and JavaScript, no build
step, nothing loaded from the network). See docs/serving.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy: ``lstmkit --help`` imports lstmkit.serve.cli, which must not pull in FastAPI.
    if name == "create_app":
        from lstmkit.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'lstmkit.serve' has no attribute {name!r}")
