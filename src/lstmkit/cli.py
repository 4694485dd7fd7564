"""The ``lstmkit`` command: one sub-command per application and tool.

    lstmkit sentiment train | evaluate | predict | explain
    lstmkit textgen   train | evaluate | generate
    lstmkit translate train | evaluate | text
    lstmkit speech    synthesize | train | evaluate | transcribe
    lstmkit experiment adding | vanishing | ...
    lstmkit serve MODEL_FILE...      lstmkit export MODEL_FILE OUT.onnx

Each application registers its own Typer app (``lstmkit.apps.<name>.cli:app``); this module only
assembles them, so importing it stays cheap.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="lstmkit",
    help="LSTM networks and their gated relatives: applications, experiments and tools.",
    no_args_is_help=True,
    add_completion=False,
)

# (sub-command, module holding `app`, help)
_SUBCOMMANDS = [
    ("sentiment", "lstmkit.apps.sentiment.cli", "Sentiment classification of movie reviews."),
    ("textgen", "lstmkit.apps.textgen.cli", "Character/word language models on Shakespeare."),
    ("translate", "lstmkit.apps.translate.cli", "German→English translation (GNMT-style)."),
    ("speech", "lstmkit.apps.speech.cli", "Spoken-digit recognition with CTC."),
    ("experiment", "lstmkit.inspect.cli", "Long-range tasks: why LSTMs exist."),
]

for _name, _module, _help in _SUBCOMMANDS:
    try:
        _sub = importlib.import_module(_module)
    except ModuleNotFoundError as _e:  # the application is not part of this build yet
        if _e.name is None or not (_module == _e.name or _module.startswith(_e.name + ".")):
            raise
        continue
    app.add_typer(_sub.app, name=_name, help=_help)

try:
    from lstmkit.serve.cli import register as _register_serve
except ModuleNotFoundError as _e:
    if _e.name not in ("lstmkit.serve", "lstmkit.serve.cli"):
        raise
else:
    _register_serve(app)


@app.command()
def version() -> None:
    """Print lstmkit's and torch's versions."""
    import torch

    from lstmkit import __version__

    typer.echo(f"lstmkit {__version__} (torch {torch.__version__})")


if __name__ == "__main__":
    app()
