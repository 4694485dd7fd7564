"""The glass box: record every gate, measure saturation and gradient flow, draw them.

Keras and PyTorch hide the gates; lstmkit shows them::

    from lstmkit import inspect as gb

    with gb.record(model) as rec:              # any model with LSTM / GRU / SimpleRNN layers
        model.predict(x)
    rec.names                                  # ['bidirectional/forward_lstm', ..., 'lstm']
    f = rec["lstm"]["f"]                       # (B, T, H) forget gate at every step
    gb.saturation(rec)                         # fractions < 0.1 and > 0.9 per gate and unit
    gb.memory_time_scales(rec)                 # f̄ and τ = -1/ln f̄ per unit
    gb.save_trace_html("cell.html", rec["lstm"], text, unit=7)   # Karpathy-style heatmap
    flows = gb.compare_gradient_flow(x)        # ‖∂L/∂h_t‖ vs lag: SimpleRNN, GRU, LSTM
    gb.gradient_flow_png("flow.png", flows)

Modules: :mod:`~lstmkit.inspect.record` (recording), :mod:`~lstmkit.inspect.stats`
(saturation, time scales, state magnitude), :mod:`~lstmkit.inspect.gradflow` (gradient flow),
:mod:`~lstmkit.inspect.html` and :mod:`~lstmkit.inspect.plots` (pictures),
:mod:`~lstmkit.inspect.tasks` (adding, temporal order, copy memory),
:mod:`~lstmkit.inspect.experiments` and the ``lstmkit experiment`` CLI
(:mod:`~lstmkit.inspect.cli`).
"""

from lstmkit.inspect.gradflow import (
    GradientFlow,
    compare_gradient_flow,
    decay_rate,
    gradient_flow,
)
from lstmkit.inspect.html import (
    save_text_heatmap_html,
    save_trace_html,
    text_heatmap_html,
    trace_html,
)
from lstmkit.inspect.plots import (
    gates_png,
    gradient_flow_png,
    learning_curves_png,
    saturation_png,
    text_heatmap_png,
    trace_heatmap_png,
)
from lstmkit.inspect.record import (
    GATES,
    Recording,
    RecordLookupError,
    Trace,
    UnitIndexError,
    record,
)
from lstmkit.inspect.stats import (
    StateMagnitude,
    cell_magnitude,
    memory_time_scales,
    saturation,
    saturation_fractions,
    state_magnitude,
    summary,
    time_scale,
)
from lstmkit.inspect.tasks import TASKS, adding_problem, copy_memory, temporal_order

__all__ = [
    "GATES",
    "TASKS",
    "GradientFlow",
    "RecordLookupError",
    "Recording",
    "StateMagnitude",
    "Trace",
    "UnitIndexError",
    "adding_problem",
    "cell_magnitude",
    "compare_gradient_flow",
    "copy_memory",
    "decay_rate",
    "gates_png",
    "gradient_flow",
    "gradient_flow_png",
    "learning_curves_png",
    "memory_time_scales",
    "record",
    "saturation",
    "saturation_fractions",
    "saturation_png",
    "save_text_heatmap_html",
    "save_trace_html",
    "state_magnitude",
    "summary",
    "temporal_order",
    "text_heatmap_html",
    "text_heatmap_png",
    "time_scale",
    "trace_heatmap_png",
    "trace_html",
]
