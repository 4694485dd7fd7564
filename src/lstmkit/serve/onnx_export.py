"""ONNX export of the sentiment classifier and of the language model's step function.

Two graphs, both with dynamic batch ``B`` and time ``T`` axes:

* **sentiment** — ``ids (B, T) int64 -> p_positive (B, 1) float32`` (a model of ``C > 2``
  classes: ``probabilities (B, C)``): the whole classifier
  (Embedding -> recurrent layers -> Dense(sigmoid)); tokenise with the tokenizer stored in the
  model file (also copied into the ONNX file's metadata, key ``lstmkit.tokenizer``).
* **textgen** — the step function ``(ids (B, T) int64, h (L, B, H), c (L, B, H)) -> (logits
  (B, T, V), h_out (L, B, H), c_out (L, B, H))``: ``T`` tokens read from the carried LSTM state
  of each of the ``L`` layers. ``T = 1`` is one generation step; zeros for ``h``/``c`` start a
  sequence. The vocabulary is in the metadata (``lstmkit.vocabulary``).

How. lstmkit's engines run a Python loop (the reference), torch's fused kernel (``_VF``) or the
compiled C++ kernel; rather than trace any of them, each recurrent layer is rebuilt as a
``torch.nn.LSTM``/``torch.nn.GRU`` with the layer's weights copied (lstmkit stores parameters in
torch's layout and gate order, DESIGN.md), which torch's TorchScript-based exporter writes as
ONNX's own ``LSTM``/``GRU`` operators — one node per layer and direction, any ``T``. The
dynamo-based exporter (torch's default) was not used: for ``nn.LSTM`` it took 30 s and gave a
graph whose time axis was fixed to the example's length (onnxruntime refused other lengths).
This covers plain cells (sigmoid/tanh, no peephole, layer norm, coupling or projection), GRUs
with ``reset_after=True``, ``Bidirectional`` wrappers and unmasked inputs; other models are
refused with the reason.

Check. With ``check=True`` (the default) the written file is run by onnxruntime on random inputs
of several batch sizes and lengths and compared with lstmkit's own model (``model(x)``, the
engine it picks): the largest absolute difference must be at most ``1e-5``.
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit.utils import atomic_write

TOLERANCE = 1e-5


class ExportError(ValueError):
    """The model cannot be exported, or the exported graph does not match it."""


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and measured."""

    path: Path
    app: str
    inputs: dict[str, list[str | int]]
    outputs: dict[str, list[str | int]]
    opset: int
    seconds: float
    max_abs_diff: float | None = None
    checked_shapes: list[tuple[int, int]] = field(default_factory=list)

    def describe(self) -> str:
        sig = ", ".join(f"{k} {tuple(v)}" for k, v in self.inputs.items())
        out = ", ".join(f"{k} {tuple(v)}" for k, v in self.outputs.items())
        lines = [
            f"wrote {self.path} ({self.app}; opset {self.opset}; {self.seconds:.1f} s)",
            f"  inputs:  {sig}",
            f"  outputs: {out}",
        ]
        if self.max_abs_diff is not None:
            shapes = ", ".join(f"{b}x{t}" for b, t in self.checked_shapes)
            lines.append(
                f"  onnxruntime vs lstmkit: max |diff| = {self.max_abs_diff:.2e} "
                f"(<= {TOLERANCE:g}) on (B x T) = {shapes}"
            )
        return "\n".join(lines)


# -- the recurrent layers as torch.nn modules ----------------------------------------------------


def _check_cell(layer: Any, where: str) -> None:
    cell = layer.cell
    if cell is None:
        raise ExportError(f"{where}: layer {layer.name!r} is not built")
    if cell.kind not in ("lstm", "gru"):
        raise ExportError(f"{where}: layer {layer.name!r} is a {cell.kind}; LSTM or GRU expected")
    if not cell.is_plain or cell.output_size != cell.hidden_size:
        raise ExportError(
            f"{where}: layer {layer.name!r} is not a plain {cell.kind.upper()} (a variant — "
            f"peephole, layer norm, coupled gates, projection — or non-default activations), "
            f"which ONNX's {cell.kind.upper()} operator does not compute"
        )
    if cell.kind == "gru" and not getattr(cell, "reset_after", True):
        raise ExportError(f"{where}: GRU {layer.name!r} has reset_after=False; ONNX export "
                          f"supports reset_after=True (torch's and cuDNN's GRU)")  # fmt: skip
    if layer.return_state:
        raise ExportError(f"{where}: layer {layer.name!r} returns its state (return_state=True)")


def _copy_cell(rnn: nn.RNNBase, suffix: str, cell: Any) -> None:
    zeros = torch.zeros(cell.weight_ih.shape[0], dtype=cell.weight_ih.dtype)
    b_ih = cell.bias_ih if cell.bias_ih is not None else zeros
    b_hh = cell.bias_hh if cell.bias_hh is not None else zeros
    with torch.no_grad():
        getattr(rnn, f"weight_ih{suffix}").copy_(cell.weight_ih)
        getattr(rnn, f"weight_hh{suffix}").copy_(cell.weight_hh)
        getattr(rnn, f"bias_ih{suffix}").copy_(b_ih)
        getattr(rnn, f"bias_hh{suffix}").copy_(b_hh)


def _torch_rnn(kind: str, input_size: int, hidden: int, layers: int = 1, bidir: bool = False):
    cls = nn.LSTM if kind == "lstm" else nn.GRU
    return cls(input_size, hidden, num_layers=layers, batch_first=True, bidirectional=bidir)


class _Recurrent(nn.Module):
    """A Keras-style ``LSTM``/``GRU`` (optionally in ``Bidirectional``) as ``torch.nn``."""

    def __init__(self, layer: Any) -> None:
        super().__init__()
        from lstmkit.layers import Bidirectional

        self.bidirectional = isinstance(layer, Bidirectional)
        forward = layer.forward_layer if self.bidirectional else layer
        _check_cell(forward, "export")
        if self.bidirectional:
            _check_cell(layer.backward_layer, "export")
            if layer.merge_mode not in ("concat", "sum", "ave", "mul"):
                raise ExportError(f"export: Bidirectional merge_mode {layer.merge_mode!r}")
            self.merge_mode = layer.merge_mode
        elif forward.go_backwards:
            raise ExportError(f"export: layer {layer.name!r} has go_backwards=True")
        cell = forward.cell
        self.kind = cell.kind
        self.return_sequences = bool(layer.return_sequences)
        self.rnn = _torch_rnn(cell.kind, cell.input_size, cell.hidden_size, 1, self.bidirectional)
        _copy_cell(self.rnn, "_l0", cell)
        if self.bidirectional:
            _copy_cell(self.rnn, "_l0_reverse", layer.backward_layer.cell)
        self.hidden = cell.hidden_size

    def _merge(self, a: Tensor, b: Tensor) -> Tensor:
        if self.merge_mode == "concat":
            return torch.cat([a, b], -1)
        if self.merge_mode == "sum":
            return a + b
        if self.merge_mode == "ave":
            return (a + b) / 2
        return a * b

    def forward(self, x: Tensor) -> Tensor:
        out, state = self.rnn(x)  # out (B, T, D·H)
        h_n = state[0] if self.kind == "lstm" else state  # (D, B, H)
        if self.return_sequences:
            if self.bidirectional and self.merge_mode != "concat":
                return self._merge(out[..., : self.hidden], out[..., self.hidden :])
            return out
        if self.bidirectional:
            return self._merge(h_n[0], h_n[1])
        return h_n[-1]


class _Classifier(nn.Module):
    """``ids (B, T) -> outputs``: Embedding, recurrent layers, Dropout (identity), Dense."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        from lstmkit.layers import GRU, LSTM, Bidirectional, Dense, Dropout, Embedding

        self.steps = nn.ModuleList()
        self._kinds: list[str] = []
        layers = list(model.layers)
        for k, layer in enumerate(layers):
            if isinstance(layer, Embedding):
                if k != 0:
                    raise ExportError("export: the Embedding must be the first layer")
                if layer.mask_zero:
                    raise ExportError(
                        f"export: Embedding {layer.name!r} has mask_zero=True; masked "
                        f"sequences are not exportable (ONNX's LSTM takes lengths, not masks)"
                    )
                self.register_buffer("embeddings", layer.embeddings.detach().clone())
                self._kinds.append("embedding")
            elif isinstance(layer, (LSTM, GRU, Bidirectional)):
                self.steps.append(_Recurrent(layer))
                self._kinds.append("recurrent")
            elif isinstance(layer, Dense):
                lin = nn.Linear(layer.weight.shape[1], layer.weight.shape[0], bias=layer.use_bias)
                with torch.no_grad():
                    lin.weight.copy_(layer.weight)
                    if layer.use_bias:
                        lin.bias.copy_(layer.bias)
                self.steps.append(_Dense(lin, layer.activation))
                self._kinds.append("dense")
            elif isinstance(layer, Dropout):
                continue  # identity at inference
            else:
                raise ExportError(
                    f"export: layer {layer.name!r} ({type(layer).__name__}) is not supported; "
                    f"expected Embedding, LSTM, GRU, Bidirectional, Dropout and Dense layers"
                )
        if not self._kinds or self._kinds[0] != "embedding":
            raise ExportError("export: expected a model that starts with an Embedding")

    def forward(self, ids: Tensor) -> Tensor:
        x = F.embedding(ids, self.embeddings)  # (B, T, E)
        for step in self.steps:
            x = step(x)
        return x


class _Dense(nn.Module):
    def __init__(self, linear: nn.Linear, activation: Any) -> None:
        super().__init__()
        self.linear, self.activation = linear, activation

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.linear(x))


class _LanguageModelStep(nn.Module):
    """``(ids, h, c) -> (logits, h_out, c_out)`` of an ``Embedding -> LSTM… -> Dense`` model."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        from lstmkit.layers import LSTM, Dense, Dropout, Embedding

        layers = [layer for layer in model.layers if not isinstance(layer, Dropout)]
        ok = (
            len(layers) >= 3
            and isinstance(layers[0], Embedding)
            and isinstance(layers[-1], Dense)
            and all(isinstance(layer, LSTM) for layer in layers[1:-1])
        )
        if not ok:
            names = " -> ".join(type(layer).__name__ for layer in model.layers)
            raise ExportError(f"export: expected Embedding -> LSTM… -> Dense, got {names}")
        embedding, lstms, dense = layers[0], layers[1:-1], layers[-1]
        for layer in lstms:
            _check_cell(layer, "export")
            if layer.go_backwards:
                raise ExportError(f"export: layer {layer.name!r} has go_backwards=True")
        sizes = {layer.cell.hidden_size for layer in lstms}
        if len(sizes) != 1:
            raise ExportError(f"export: the LSTM layers must have one size, got {sorted(sizes)}")
        hidden = sizes.pop()
        self.register_buffer("embeddings", embedding.embeddings.detach().clone())
        self.rnn = _torch_rnn("lstm", lstms[0].cell.input_size, hidden, len(lstms))
        for k, layer in enumerate(lstms):
            _copy_cell(self.rnn, f"_l{k}", layer.cell)
        self.out = nn.Linear(hidden, dense.weight.shape[0], bias=dense.use_bias)
        with torch.no_grad():
            self.out.weight.copy_(dense.weight)
            if dense.use_bias:
                self.out.bias.copy_(dense.bias)
        self.activation = dense.activation
        self.layers, self.hidden = len(lstms), hidden

    def forward(self, ids: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = F.embedding(ids, self.embeddings)  # (B, T, E)
        out, (h_out, c_out) = self.rnn(x, (h, c))  # (B, T, H), (L, B, H) x 2
        return self.activation(self.out(out)), h_out, c_out  # (B, T, V)


# -- export --------------------------------------------------------------------------------------


def _to_onnx(
    module: nn.Module,
    args: tuple[Tensor, ...],
    inputs: list[str],
    outputs: list[str],
    axes: dict[str, dict[int, str]],
    opset: int,
    metadata: dict[str, str],
) -> bytes:
    import onnx

    buf = io.BytesIO()
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter is deprecated in favour of dynamo (see the module docstring),
        # and warns that an LSTM without given initial states may fix the batch size; the
        # check below runs other batch sizes.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buf,
            dynamo=False,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "lstmkit"
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _session(blob: bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])


def _max_diff(got: np.ndarray, want: Tensor) -> float:
    want_np = want.detach().cpu().numpy()
    if got.shape != want_np.shape:
        raise ExportError(f"export check: ONNX output shape {got.shape} != lstmkit {want_np.shape}")
    return float(np.abs(got.astype(np.float64) - want_np.astype(np.float64)).max(initial=0.0))


def _check_shapes(default_t: int) -> list[tuple[int, int]]:
    return [(1, default_t), (3, 7), (5, max(default_t, 2)), (2, 1)]


def _export_sentiment(
    path: Path, opset: int, check: bool
) -> tuple[bytes, dict, float | None, list]:
    from lstmkit.apps.sentiment.model import SentimentClassifier

    clf = SentimentClassifier.load(path)
    model = clf.model.eval()
    module = _Classifier(model).eval()
    maxlen = clf.config.maxlen
    example = torch.randint(0, clf.config.max_tokens, (2, maxlen))
    metadata = {
        "lstmkit.app": "sentiment",
        "lstmkit.tokenizer": json.dumps(clf.tokenizer.get_config()),
        "lstmkit.labels": json.dumps(list(clf.labels)),
        "lstmkit.maxlen": str(maxlen),
    }
    # two classes: p of the second (the sigmoid); more: every class's probability (softmax)
    output = "p_positive" if clf.binary else "probabilities"
    blob = _to_onnx(
        module, (example,), ["ids"], [output],
        {"ids": {0: "batch", 1: "time"}, output: {0: "batch"}}, opset, metadata,
    )  # fmt: skip
    signature = {
        "inputs": {"ids": ["batch", "time"]},
        "outputs": {output: ["batch", 1 if clf.binary else len(clf.labels)]},
    }
    if not check:
        return blob, signature, None, []
    session = _session(blob)
    rng = torch.Generator().manual_seed(0)
    worst, shapes = 0.0, _check_shapes(maxlen)
    for b, t in shapes:
        ids = torch.randint(0, clf.config.max_tokens, (b, t), generator=rng)
        ids[:, : t // 3] = 0  # front padding, as the tokenizer writes it
        with torch.no_grad():
            want = model(ids, training=False)
        (got,) = session.run(None, {"ids": ids.numpy()})
        worst = max(worst, _max_diff(got, want))
    return blob, signature, worst, shapes


def _export_textgen(path: Path, opset: int, check: bool) -> tuple[bytes, dict, float | None, list]:
    from lstmkit.apps.textgen.model import LanguageModel, get_states, reset_states, set_states

    lm = LanguageModel.load(path)
    model = lm.model.eval()
    module = _LanguageModelStep(model).eval()
    n_layers, hidden, vocab = module.layers, module.hidden, len(lm.vocab)
    example = (
        torch.randint(0, vocab, (2, 5)),
        torch.zeros(n_layers, 2, hidden),
        torch.zeros(n_layers, 2, hidden),
    )
    metadata = {
        "lstmkit.app": "textgen",
        "lstmkit.vocabulary": json.dumps(lm.vocab.get_config()),
    }
    axes = {
        "ids": {0: "batch", 1: "time"},
        "h": {1: "batch"},
        "c": {1: "batch"},
        "logits": {0: "batch", 1: "time"},
        "h_out": {1: "batch"},
        "c_out": {1: "batch"},
    }
    blob = _to_onnx(
        module, example, ["ids", "h", "c"], ["logits", "h_out", "c_out"], axes, opset, metadata
    )
    signature = {
        "inputs": {
            "ids": ["batch", "time"],
            "h": [n_layers, "batch", hidden],
            "c": [n_layers, "batch", hidden],
        },
        "outputs": {
            "logits": ["batch", "time", vocab],
            "h_out": [n_layers, "batch", hidden],
            "c_out": [n_layers, "batch", hidden],
        },
    }
    if not check:
        return blob, signature, None, []
    session = _session(blob)
    rng = torch.Generator().manual_seed(0)
    worst, shapes = 0.0, _check_shapes(16)
    try:
        for b, t in shapes:
            ids = torch.randint(0, vocab, (b, t), generator=rng)
            h = 0.5 * torch.randn(n_layers, b, hidden, generator=rng)
            c = torch.randn(n_layers, b, hidden, generator=rng)
            with torch.no_grad():
                set_states(model, [[h[k], c[k]] for k in range(n_layers)])
                want = model(ids, training=False)
                states = get_states(model)
            got, h_out, c_out = session.run(
                None, {"ids": ids.numpy(), "h": h.numpy(), "c": c.numpy()}
            )
            worst = max(
                worst,
                _max_diff(got, want),
                _max_diff(h_out, torch.stack([s[0] for s in states])),
                _max_diff(c_out, torch.stack([s[1] for s in states])),
            )
    finally:
        reset_states(model)
    return blob, signature, worst, shapes


def export_onnx(
    model_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    opset: int = 17,
    check: bool = True,
) -> ExportReport:
    """Write the ONNX graph of a sentiment or textgen model file to ``out`` (atomically).

    Raises:
        FileNotFoundError: no model file.
        ExportError: a model of another application, a layer ONNX's operators do not compute,
            or (with ``check``) onnxruntime's outputs differ from lstmkit's by more than 1e-5
            (nothing is written then).
    """
    from lstmkit.serve.handlers import detect

    path, out = Path(model_file), Path(out)
    if out.is_dir():
        raise ExportError(f"export: {out} is a directory; give a file name such as model.onnx")
    app = detect(path)
    started = time.perf_counter()
    if app == "sentiment":
        blob, signature, diff, shapes = _export_sentiment(path, opset, check)
    elif app == "textgen":
        blob, signature, diff, shapes = _export_textgen(path, opset, check)
    else:
        raise ExportError(
            f"export: {path} is a {app} model; ONNX export covers the sentiment classifier and "
            f"the textgen language model's step function"
        )
    if diff is not None and not diff <= TOLERANCE:
        raise ExportError(
            f"export check failed: onnxruntime and lstmkit differ by {diff:.3g} (> {TOLERANCE:g}); "
            f"{out} was not written"
        )
    with atomic_write(out) as fh:
        fh.write(blob)
    return ExportReport(
        out,
        app,
        signature["inputs"],
        signature["outputs"],
        opset,
        time.perf_counter() - started,
        diff,
        shapes,
    )
