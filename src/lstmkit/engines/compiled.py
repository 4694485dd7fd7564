"""The compiled engine: lstmkit's own C++ kernel for whole sequences on CPU (``csrc/compiled.cpp``).

Every cell variant (LSTM plain, peephole, layer norm, CIFG, projection; GRU with
``reset_after`` true or false; SimpleRNN with ``tanh`` or ``relu``), masks, both directions,
input and recurrent dropout masks, float32 and float64, forward and backward, and the gates for
free: the forward keeps every step's gate activations (the backward needs them) and a recording
run returns them as views of those buffers (``(B, T, H)``, not contiguous), so ``record=True``
costs nothing. The records are differentiable like the reference engine's.

Per sequence:

* the input projection of every step, ``W_ih x`` (with the input layer norm and the input
  dropout masks), is one ATen GEMM over all ``T·B`` rows, time-major ``(T, B, G·H)``;
* the C++ loop does, per step, only the recurrent GEMM and one fused elementwise pass (which
  adds both biases), each thread running the whole sequence for its share of the batch rows;
* the backward loop does only the recurrence; the weight gradients are one GEMM over all steps,
  the bias / gain / peephole gradients sums accumulated inside the loop.

The ops (``torch.ops.lstmkit_compiled.lstm_forward`` … ``rnn_backward``) check every tensor
argument before touching a buffer (``csrc/checks.h``): CPU, the same float dtype (bool for the
mask), rank, and sizes consistent with each other; a bad call raises a RuntimeError naming the
op, the argument, what was expected and what came, and where each expected size was read.

Auto-selection (:meth:`CompiledEngine.declines`): on CPU this engine runs everything it supports,
except a plain LSTM in inference, which torch's oneDNN kernel runs faster. Never on CUDA.

The extension is compiled on first use with ``torch.utils.cpp_extension`` into
``~/.cache/lstmkit/ext-<hash>`` (``$LSTMKIT_EXTENSIONS_DIR`` to move it; ``LSTMKIT_COMPILED=0``
to switch the engine off). If the compiler or ninja is missing or the build fails, one warning
is issued and the engine reports itself unavailable, so the others take over. Build it ahead of
time (``make test`` set-up, CI) with ``python -m lstmkit.engines.csrc``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lstmkit import activations
from lstmkit import functional as fn
from lstmkit.cells import RecurrentCell
from lstmkit.engines import twin
from lstmkit.engines.base import Engine, RunOptions, SequenceResult, State, active_transforms
from lstmkit.engines.fused import FusedEngine
from lstmkit.functional import LSTMState

logger = logging.getLogger("lstmkit")

SOURCE = Path(__file__).with_name("csrc") / "compiled.cpp"
#: Every file the build reads (the source and the headers it includes): the cache key.
SOURCES = sorted(p for p in SOURCE.parent.iterdir() if p.suffix in (".cpp", ".h"))
EXTRA_CFLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-DNDEBUG"]
if platform.machine() in ("x86_64", "AMD64"):
    EXTRA_CFLAGS.append("-mprefer-vector-width=512")  # gcc defaults to 256 bits on AVX-512
EXTRA_LDFLAGS = ["-fopenmp"]

_lock = threading.Lock()
_ops: Any = None
_error: str | None = None


def _cpu_signature() -> str:
    """What ``-march=native`` depends on: the CPU's model and flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags"))]
        return "\n".join(sorted(set(lines)))
    except OSError:
        return platform.processor()


def build_directory() -> Path:
    """The cache folder of these sources (``compiled.cpp`` and the headers it includes), torch
    version, Python, compiler flags and CPU: a changed header rebuilds as a changed source does."""
    key = hashlib.sha256()
    for part in (
        *(p.name.encode() + b"\0" + p.read_bytes() for p in SOURCES),
        torch.__version__.encode(),
        sys.version.encode(),
        " ".join(EXTRA_CFLAGS + EXTRA_LDFLAGS).encode(),
        _cpu_signature().encode(),
    ):
        key.update(part)
    root = os.environ.get("LSTMKIT_EXTENSIONS_DIR") or Path.home() / ".cache" / "lstmkit"
    return Path(root) / f"ext-{key.hexdigest()[:16]}"


def _library_name(directory: Path) -> str:
    return f"lstmkit_compiled_{directory.name[4:]}"


def _build(verbose: bool = False) -> Any:
    """Compile (if not cached) and load the extension; returns ``torch.ops.lstmkit_compiled``."""
    from torch.utils import cpp_extension

    directory = build_directory()
    name = _library_name(directory)
    library = directory / f"{name}.so"
    # A finished build from an earlier process: load it without asking ninja.
    if library.exists() and not (directory / "lock").exists():
        torch.ops.load_library(str(library))
        return torch.ops.lstmkit_compiled
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler ({compiler!r} is not on PATH)")
    if not cpp_extension.is_ninja_available():
        raise RuntimeError("ninja is not installed (torch.utils.cpp_extension needs it)")
    directory.mkdir(parents=True, exist_ok=True)
    logger.warning("lstmkit: compiling the CPU engine once into %s (15-30 s)", directory)
    start = time.perf_counter()
    cpp_extension.load(
        name=name,
        sources=[str(SOURCE)],
        extra_cflags=list(EXTRA_CFLAGS),  # (load() appends to the lists it gets)
        extra_ldflags=list(EXTRA_LDFLAGS),
        build_directory=str(directory),
        is_python_module=False,
        verbose=verbose,
    )
    logger.info("lstmkit: compiled the CPU engine in %.1f s", time.perf_counter() - start)
    return torch.ops.lstmkit_compiled


def load_extension(verbose: bool = False) -> Any:
    """The extension's ops (``torch.ops.lstmkit_compiled``), built on first use; ``None`` (with
    one warning) if it cannot be built, or if ``LSTMKIT_COMPILED=0``."""
    global _ops, _error
    if _ops is not None or _error is not None:
        return _ops
    with _lock:
        if _ops is not None or _error is not None:
            return _ops
        if os.environ.get("LSTMKIT_COMPILED", "1") == "0":
            _error = "switched off by LSTMKIT_COMPILED=0"
            return None
        try:
            _ops = _build(verbose)
        except Exception as exc:  # any failure means: fall back, never fail
            _error = (
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc) else ''}"
            )
            warnings.warn(
                f"lstmkit: the compiled CPU engine is unavailable ({_error}); using torch's fused "
                f"kernels and the reference loop instead",
                RuntimeWarning,
                stacklevel=3,
            )
    return _ops


def unavailable_reason() -> str | None:
    """Why the extension could not be loaded (``None`` if it is loaded or not tried yet)."""
    return _error


# -- autograd functions: one per cell kind ----------------------------------------------------


def _none_if_empty(t: Tensor | None) -> Tensor | None:
    return None if t is None or t.numel() == 0 else t


class _LSTMSequence(torch.autograd.Function):
    """``xw (T, B, G·H)`` … -> ``hbuf (T+1, B, P)``, ``cbuf (T+1, B, H)``, ``gates (T, B, 4H)``,
    ``out (T, B, P)`` (empty without a mask). State slots are indexed by input time."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        xw: Tensor,
        h0: Tensor,
        c0: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        peephole: Tensor | None,
        ln_hh_w: Tensor | None,
        ln_hh_b: Tensor | None,
        ln_c_w: Tensor | None,
        ln_c_b: Tensor | None,
        w_hr: Tensor | None,
        rec_mask: Tensor | None,
        mask: Tensor | None,
        coupled: bool,
        reverse: bool,
        zero_output: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ops = load_extension()
        params = (b_ih, b_hh, peephole, ln_hh_w, ln_hh_b, ln_c_w, ln_c_b, w_hr, rec_mask, mask)
        saved = ops.lstm_forward(xw, h0, c0, w_hh, *params, coupled, reverse, zero_output, True)
        hbuf, cbuf, gates, tc, out = saved[:5]
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(xw, h0, c0, w_hh, *params, hbuf, cbuf, gates, out)
        ctx.extra = (tc, *saved[5:])
        ctx.flags = (coupled, reverse, zero_output)
        return hbuf, cbuf, gates, out

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        xw, h0, c0, w_hh, *params, hbuf, cbuf, gates, out = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a backward that is itself a graph
            inputs = (xw, h0, c0, w_hh, *params)
            return twin.differentiate(
                twin.lstm_sequence, inputs, ctx.flags, grads, ctx.needs_input_grad
            )
        saved = [hbuf, cbuf, gates, ctx.extra[0], out, *ctx.extra[1:]]
        d_hbuf, d_cbuf, d_gates, d_out = grads
        res = load_extension().lstm_backward(
            w_hh, *params, *ctx.flags, saved, d_hbuf, d_cbuf, d_gates, d_out
        )
        d_xw, d_h0, d_c0, d_w_hh, d_b_ih, d_b_hh, d_peep, d_lhw, d_lhb, d_lcw, d_lcb, d_w_hr = res
        return (
            d_xw,
            d_h0,
            d_c0,
            d_w_hh,
            _none_if_empty(d_b_ih),
            _none_if_empty(d_b_hh),
            _none_if_empty(d_peep),
            _none_if_empty(d_lhw),
            _none_if_empty(d_lhb),
            _none_if_empty(d_lcw),
            _none_if_empty(d_lcb),
            _none_if_empty(d_w_hr),
            None,
            None,
            None,
            None,
            None,
        )


class _GRUSequence(torch.autograd.Function):
    """``xw (T, B, 3H)`` … -> ``hbuf (T+1, B, H)``, ``gates (T, B, 3H)``, ``out``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        xw: Tensor,
        h0: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        rec_mask: Tensor | None,
        mask: Tensor | None,
        reset_after: bool,
        reverse: bool,
        zero_output: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        flags = (reset_after, reverse, zero_output)
        hbuf, gates, hn, out = load_extension().gru_forward(
            xw, h0, w_hh, b_ih, b_hh, rec_mask, mask, *flags, True
        )
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(xw, h0, w_hh, b_ih, b_hh, rec_mask, mask, hbuf, gates, out)
        ctx.hn, ctx.flags = hn, flags
        return hbuf, gates, out

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        xw, h0, w_hh, b_ih, b_hh, rec_mask, mask, hbuf, gates, _ = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a backward that is itself a graph
            inputs = (xw, h0, w_hh, b_ih, b_hh, rec_mask, mask)
            return twin.differentiate(
                twin.gru_sequence, inputs, ctx.flags, grads, ctx.needs_input_grad
            )
        d_hbuf, d_gates, d_out = grads
        saved = [hbuf, gates, ctx.hn]
        d_xw, d_h0, d_w_hh, d_b_ih, d_b_hh = load_extension().gru_backward(
            w_hh, b_ih, b_hh, rec_mask, mask, *ctx.flags, saved, d_hbuf, d_gates, d_out
        )
        biases = _none_if_empty(d_b_ih), _none_if_empty(d_b_hh)
        return d_xw, d_h0, d_w_hh, *biases, None, None, None, None, None


class _RNNSequence(torch.autograd.Function):
    """``xw (T, B, H)`` … -> ``hbuf (T+1, B, H)``, ``out``."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        xw: Tensor,
        h0: Tensor,
        w_hh: Tensor,
        b_ih: Tensor | None,
        b_hh: Tensor | None,
        rec_mask: Tensor | None,
        mask: Tensor | None,
        relu: bool,
        reverse: bool,
        zero_output: bool,
    ) -> tuple[Tensor, Tensor]:
        flags = (relu, reverse, zero_output)
        ops = load_extension()
        hbuf, hcomp, out = ops.rnn_forward(xw, h0, w_hh, b_ih, b_hh, rec_mask, mask, *flags, True)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(xw, h0, w_hh, b_ih, b_hh, rec_mask, mask, hbuf, out)
        ctx.hcomp, ctx.flags = hcomp, flags
        return hbuf, out

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        xw, h0, w_hh, b_ih, b_hh, rec_mask, mask, hbuf, _ = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: a backward that is itself a graph
            inputs = (xw, h0, w_hh, b_ih, b_hh, rec_mask, mask)
            return twin.differentiate(
                twin.rnn_sequence, inputs, ctx.flags, grads, ctx.needs_input_grad
            )
        d_hbuf, d_out = grads
        d_xw, d_h0, d_w_hh, d_b_ih, d_b_hh = load_extension().rnn_backward(
            w_hh, b_ih, b_hh, rec_mask, mask, *ctx.flags, [hbuf, ctx.hcomp], d_hbuf, d_out
        )
        biases = _none_if_empty(d_b_ih), _none_if_empty(d_b_hh)
        return d_xw, d_h0, d_w_hh, *biases, None, None, None, None, None


# -- the engine ---------------------------------------------------------------------------------

_FUSED = FusedEngine()


def _beats_fused(cell: RecurrentCell, x: Tensor) -> bool:
    """Whether this engine is faster than torch's fused kernel for a configuration both run
    (measured with ``python -m benchmarks``; figures in benchmarks/RESULTS.md):

    * GRU, SimpleRNN and the projected LSTM: torch has no fast CPU path for them (its GRU
      trains 10-50x slower), so always;
    * the plain LSTM in training: yes below 1024 units (1.03-1.28x on two threads); at 1024
      units both are bound by the recurrent GEMM and oneDNN's is faster (the kernel 0.92x);
    * the plain LSTM in inference: no - oneDNN keeps no gates and fuses the gate arithmetic into
      its GEMM, and is ~1.5x faster.
    """
    if cell.kind != "lstm" or cell.weight_hr is not None:
        return True
    if cell.hidden_size >= 1024:
        return False
    return torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for p in cell.parameters())
    )


def _input_projection(cell: RecurrentCell, x: Tensor, dropout_mask: Tensor | None) -> Tensor:
    """``W_ih (x ⊙ m)`` (``LN(W_ih (x ⊙ m))`` with layer norm) of every step, time-major
    ``(T, B, G·H)``, in one GEMM. The bias ``b_ih`` is added by the kernel, which also sums its
    gradient: ``cell.input_transform`` minus the bias."""
    ln = (cell.ln_ih_weight, cell.ln_ih_bias) if getattr(cell, "layer_norm", False) else None
    if dropout_mask is not None and dropout_mask.dim() == 3:  # one mask per gate block
        xw = fn.input_transform(x, cell.weight_ih, None, layer_norm=ln, dropout_mask=dropout_mask)
        return xw.transpose(0, 1).contiguous()
    xt = x.transpose(0, 1)  # (T, B, I)
    if dropout_mask is not None:
        xt = xt * dropout_mask  # (B, I) broadcasts over T
    return fn.input_transform(xt, cell.weight_ih, None, layer_norm=ln).contiguous()


def _needs_graph(record: bool, *tensors: Tensor | None) -> bool:
    """Whether the run must keep every step's gates: for recording, or for a backward pass."""
    if record:
        return True
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _states(buf: Tensor, reverse: bool) -> Tensor:
    """The states after each step, ``(T, B, ·)`` aligned with the input's time index."""
    return buf[:-1] if reverse else buf[1:]


def _final(buf: Tensor, reverse: bool) -> Tensor:
    return (buf[0] if reverse else buf[-1]).clone()


class CompiledEngine(Engine):
    """lstmkit's C++ kernel: every variant, masks, dropout masks, gates for free (CPU)."""

    name = "compiled"

    def available(self) -> bool:
        return load_extension() is not None

    def unsupported(self, cell: RecurrentCell, x: Tensor, opts: RunOptions) -> str | None:
        if x.device.type != "cpu" or cell.weight_hh.device.type != "cpu":
            return "CPU tensors only (on CUDA torch's fused kernels are the fast path)"
        if x.dtype not in (torch.float32, torch.float64):
            return f"float32 and float64 only, got {x.dtype}"
        if cell.weight_hh.dtype != x.dtype:
            return f"input dtype {x.dtype} differs from the weights' {cell.weight_hh.dtype}"
        if torch.is_autocast_enabled(x.device.type):
            return "autocast (mixed precision) is on; the kernel computes in float32 or float64"
        if x.dim() != 3 or x.shape[0] == 0 or x.shape[1] == 0:
            return "an empty batch or sequence"
        if cell.kind == "rnn":
            if not (
                activations.is_default(cell.activation, "tanh")
                or activations.is_default(cell.activation, "relu")
            ):
                return "SimpleRNN activations other than tanh and relu"
        elif not (
            activations.is_default(cell.activation, "tanh")
            and activations.is_default(cell.recurrent_activation, "sigmoid")
        ):
            return "activations other than tanh (activation) and sigmoid (recurrent_activation)"
        for mask in (opts.input_dropout_mask, opts.recurrent_dropout_mask):
            if mask is not None and mask.requires_grad:
                return "dropout masks that require grad"
        if active_transforms():
            return "torch.func transforms (vmap, grad, jacrev): use engine='reference' or 'auto'"
        return None

    def declines(self, cell: RecurrentCell, x: Tensor, opts: RunOptions) -> str | None:
        if _FUSED.unsupported(cell, x, opts) is None and not _beats_fused(cell, x):
            return "torch's fused kernel is faster for this plain configuration"
        return None

    def declines_stack(
        self, cells: list[list[RecurrentCell]], x: Tensor, record: bool
    ) -> str | None:
        if _FUSED.unsupported_stack(cells, x, record) is None and not all(
            _beats_fused(c, x) for layer in cells for c in layer
        ):
            return "torch's fused kernel is faster for this plain stack"
        return None

    def run(self, cell: RecurrentCell, x: Tensor, state: State, opts: RunOptions) -> SequenceResult:
        xw = _input_projection(cell, x, opts.input_dropout_mask)  # (T, B, G·H)
        mask = opts.mask
        if mask is not None:
            mask = mask.to(dtype=torch.bool).contiguous()
            if bool(mask.all()):
                mask = None  # all valid: the plain path gives the same numbers
        rec_mask = opts.recurrent_dropout_mask
        if rec_mask is not None:
            rec_mask = (rec_mask.unsqueeze(0) if rec_mask.dim() == 2 else rec_mask).contiguous()
        flags = (opts.reverse, opts.zero_output_for_mask)
        if cell.kind == "lstm":
            return self._run_lstm(cell, xw, state, rec_mask, mask, flags, opts.record)
        if cell.kind == "gru":
            args = (xw, state[0], cell.weight_hh, cell.bias_ih, cell.bias_hh, rec_mask, mask)
            args += (cell.reset_after,)
            if _needs_graph(opts.record, *args[:5]):
                hbuf, gates, out = _GRUSequence.apply(*args, *flags)
            else:  # inference: nothing per step is kept
                hbuf, gates, _, out = load_extension().gru_forward(*args, *flags, False)
            record = None
            if opts.record:
                h = cell.hidden_size
                record = {
                    k: gates[..., n * h : (n + 1) * h].transpose(0, 1)
                    for n, k in enumerate(("r", "z", "n"))
                }
                record["h"] = _states(hbuf, opts.reverse).transpose(0, 1)
        else:
            relu = activations.is_default(cell.activation, "relu")
            args = (xw, state[0], cell.weight_hh, cell.bias_ih, cell.bias_hh, rec_mask, mask, relu)
            if _needs_graph(opts.record, *args[:5]):
                hbuf, out = _RNNSequence.apply(*args, *flags)
            else:
                hbuf, _, out = load_extension().rnn_forward(*args, *flags, False)
            record = {"h": _states(hbuf, opts.reverse).transpose(0, 1)} if opts.record else None
        outputs = (out if mask is not None else _states(hbuf, opts.reverse)).transpose(0, 1)
        return SequenceResult(outputs, (_final(hbuf, opts.reverse),), record)

    def _run_lstm(
        self,
        cell: Any,
        xw: Tensor,
        state: State,
        rec_mask: Tensor | None,
        mask: Tensor | None,
        flags: tuple[bool, bool],
        record: bool,
    ) -> SequenceResult:
        reverse = flags[0]
        peephole = None
        if cell.peephole:
            f = (
                cell.peephole_f
                if cell.peephole_f is not None
                else torch.zeros_like(cell.peephole_i)
            )
            peephole = torch.stack([cell.peephole_i, f, cell.peephole_o])  # (3, H)
        ln = cell.layer_norm_weights()
        ln_args = (ln.hh_weight, ln.hh_bias, ln.c_weight, ln.c_bias) if ln else (None,) * 4
        args = (xw, state[0], state[1], cell.weight_hh, cell.bias_ih, cell.bias_hh, peephole)
        args += (*ln_args, cell.weight_hr, rec_mask, mask, cell.coupled)
        if _needs_graph(record, *args[:12]):
            hbuf, cbuf, gates, out = _LSTMSequence.apply(*args, *flags)
        else:  # inference: the gates of a step live in a scratch that stays in cache
            hbuf, cbuf, gates, _, out = load_extension().lstm_forward(*args, *flags, False)[:5]
        outputs = (out if mask is not None else _states(hbuf, reverse)).transpose(0, 1)
        rec = None
        if record:
            h = cell.hidden_size
            rec = {
                k: gates[..., n * h : (n + 1) * h].transpose(0, 1)
                for n, k in enumerate(("i", "f", "g", "o"))
            }
            rec["c"] = _states(cbuf, reverse).transpose(0, 1)
            rec["h"] = _states(hbuf, reverse).transpose(0, 1)
        final = LSTMState(_final(hbuf, reverse), _final(cbuf, reverse))
        return SequenceResult(outputs, final, rec)


def main() -> None:
    """``python -m lstmkit.engines.csrc [-v]``: build the extension now and report the time."""
    start = time.perf_counter()
    ops = load_extension(verbose="-v" in sys.argv)
    if ops is None:
        print(f"lstmkit compiled engine: unavailable ({_error})")
        raise SystemExit(1)
    print(
        f"lstmkit compiled engine: ready in {time.perf_counter() - start:.1f} s "
        f"({build_directory()}; direct BLAS: {ops.blas_direct()})"
    )


if __name__ == "__main__":
    main()
