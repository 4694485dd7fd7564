"""Keras 3's ``model.summary()`` table, drawn with rich.

::

    Model: "sequential"
    ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
    ┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
    ┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
    │ embedding (Embedding)           │ (None, None, 128)      │     2,560,000 │
    ...
     Total params: 2,741,057 (10.46 MB)

Functional models with several inputs get Keras's "Connected to" column.
"""

from __future__ import annotations

import io
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from lstmkit.layers.base import InputLayer, Layer


def _fmt_shape(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):  # several outputs: Keras prints the list
        return "[" + ", ".join(_fmt_shape(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _size(n_params: int, bytes_per: int = 4) -> str:
    b = n_params * bytes_per
    for unit, div in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if b >= div:
            return f"{b / div:.2f} {unit}"
    return f"{b:.2f} B"


def _params(layer: Layer) -> str:
    if not layer.built:
        return "0 (unbuilt)"
    return f"{sum(p.numel() for p in layer.parameters()):,}"


def summary_text(model: Any, line_length: int | None = None) -> str:
    """The summary of ``model`` as text."""
    functional = getattr(model, "_functional", False)
    multi_input = functional and len(model._input_tensors) > 1
    table = Table(box=box.HEAVY_HEAD, show_lines=True, header_style="bold")
    table.add_column("Layer (type)", no_wrap=False, min_width=31)
    table.add_column("Output Shape", min_width=22)
    table.add_column("Param #", justify="right", min_width=13)
    if multi_input:
        table.add_column("Connected to", min_width=17)
    rows: list[list[str]] = []
    if functional:
        for layer in model._input_layers:
            row = [f"{layer.name} ({InputLayer.__name__})", _fmt_shape(layer.shape), "0"]
            rows.append([*row, "-"] if multi_input else row)
        for node in model._nodes:
            layer = node.layer
            shapes = [t.shape for t in node.outputs]
            row = [
                f"{layer.name} ({type(layer).__name__})",
                _fmt_shape(shapes[0] if len(shapes) == 1 else shapes),
                _params(layer),
            ]
            if multi_input:
                sources = [f"{t.node.layer.name}[0][{t.index}]" for t in node.inputs()]
                row.append(", ".join(sources) or "-")
            rows.append(row)
    else:
        shapes = getattr(model, "_output_shapes", {})
        for layer in model.layers:
            shape = shapes.get(layer.name, layer._output_shape)
            rows.append(
                [f"{layer.name} ({type(layer).__name__})", _fmt_shape(shape), _params(layer)]
            )
    for row in rows:
        table.add_row(*row)
    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    # Wide enough that rich never cuts the table (the columns keep Keras's minimum widths).
    width = line_length or (200 if multi_input else 80)
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    console.print(f'Model: "{model.name}"')
    console.print(table)
    console.print(f" Total params: {total:,} ({_size(total)})")
    console.print(f" Trainable params: {trainable:,} ({_size(trainable)})")
    console.print(f" Non-trainable params: {total - trainable:,} ({_size(total - trainable)})")
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and optimizer.variables_count():
        n = optimizer.variables_count()
        console.print(f" Optimizer params: {n:,} ({_size(n)})")
    return out.getvalue().rstrip("\n")
