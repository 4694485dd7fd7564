"""The fast generation path: one tight loop over the stacked cells, weights fused ahead of time,
state kept in place in preallocated buffers.

Generating with batch 1 is a chain of matrix-vector products that cannot be batched over time
(each token depends on the last), so the time per token is the matrix-vector products plus the
overhead around them. Calling a layer (or ``torch.nn.LSTM``) once per token pays for argument
checks, engine dispatch, state tuples and a dozen fresh tensors per layer; this module pays only
for the arithmetic, which it first makes smaller:

* **Embedding folded into layer 1.** ``W_ih x + b`` of the first layer depends only on the
  token, so it is precomputed for every token: ``table = E W_ih^T + b``, ``(V, 4H)``. Layer 1's
  step is then one row of ``table`` plus ``W_hh h``: one ``addmv``.
* **One matrix per upper layer.** ``W_ih h_{l-1} + W_hh h_l = [W_ih | W_hh] [h_{l-1}; h_l]``; the
  hidden states of all layers live in one buffer ``[h_1 | h_2 | …]`` so that
  ``[h_{l-1}; h_l]`` is a view: one ``addmv`` per layer.
* **Gates reordered** ``i, f, o, g`` so one in-place ``sigmoid_`` covers three gates and one
  ``tanh_`` the candidate; then ``c = f ⊙ c + i ⊙ g`` and ``h = o ⊙ tanh(c)`` in place (four
  more in-place ops). Seven tensor ops per layer and step, no allocation.

The equations are those of :func:`lstmkit.functional.lstm_step` (the Keras-style layer's plain
LSTM, sigmoid/tanh, one bias), so the next-token distribution equals the layer-based model's
(float32: within 1e-5; ``tests/test_textgen.py`` checks it).

Optional reduced-precision weights (``weights=``):

* ``"int8"``: the three kinds of matrix-vector products run as int8 dynamic-quantised
  ``Linear`` modules made by ``torch.ao.quantization.quantize_dynamic`` (weights int8 per
  tensor, the activation vector quantised on the fly each step, fbgemm/onednn kernels);
  the embedding table stays float32 (it is a lookup).
* ``"bf16"``: matrices stored as bfloat16 (half the bytes to read each step); the state and
  the gate arithmetic stay float32.

``benchmarks/textgen_generation.py`` measures the speed of each and ``docs/textgen.md`` their
effect on held-out cross-entropy.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from lstmkit import activations
from lstmkit.layers import LSTM, Dense, Dropout, Embedding

WEIGHTS = ("fp32", "bf16", "int8")


def _gate_order(hidden: int) -> Tensor:
    """Row permutation from torch's ``i, f, g, o`` blocks to ``i, f, o, g``."""
    i_f = torch.arange(0, 2 * hidden)
    g = torch.arange(2 * hidden, 3 * hidden)
    o = torch.arange(3 * hidden, 4 * hidden)
    return torch.cat([i_f, o, g])


def _stack_of(model: nn.Module) -> tuple[Embedding, list[LSTM], Dense]:
    """The ``Embedding -> LSTM… -> Dense`` layers of ``model`` (``Dropout`` ignored)."""
    layers = list(model.layers) if hasattr(model, "layers") else list(model.children())
    kinds = [layer for layer in layers if not isinstance(layer, Dropout)]
    ok = (
        len(kinds) >= 3
        and isinstance(kinds[0], Embedding)
        and isinstance(kinds[-1], Dense)
        and all(isinstance(layer, LSTM) for layer in kinds[1:-1])
    )
    if not ok:
        names = " -> ".join(type(layer).__name__ for layer in layers)
        raise ValueError(
            f"FastLSTM: expected Embedding -> LSTM (one or more) -> Dense, with optional "
            f"Dropout, got {names}"
        )
    embedding, lstms, dense = kinds[0], kinds[1:-1], kinds[-1]
    for layer in lstms:
        cell = layer.cell
        plain = (
            cell.is_plain
            and activations.is_default(layer.activation, "tanh")
            and activations.is_default(layer.recurrent_activation, "sigmoid")
            and cell.output_size == cell.hidden_size
            and not layer.go_backwards
        )
        if not plain:
            raise ValueError(
                f"FastLSTM: layer {layer.name!r} is not a plain forward LSTM (sigmoid/tanh, no "
                f"peephole, layer norm, coupling, projection or go_backwards)"
            )
    if not activations.is_default(dense.activation, "linear"):
        raise ValueError(
            f"FastLSTM: the output layer {dense.name!r} must give logits (no activation)"
        )
    return embedding, lstms, dense


class FastLSTM:
    """Batch-1 next-token computer for an ``Embedding -> LSTM… -> Dense`` model.

    Args:
        model: a built Keras-style model (e.g. :func:`~.model.build_model`'s). Its weights are
            copied (fused) now; later changes to the model are not seen.
        weights: ``"fp32"`` (default), ``"bf16"`` or ``"int8"`` (see the module docstring).

    Use :meth:`reset`, then :meth:`step` once per token; :meth:`step` returns the logits of the
    next token in a buffer that the following call overwrites.

    Example:
        >>> from lstmkit.apps.textgen.config import TextgenConfig
        >>> from lstmkit.apps.textgen.model import build_model
        >>> fast = FastLSTM(build_model(TextgenConfig(units=8, embedding_dim=4), 10))
        >>> tuple(fast.step(3).shape)
        (10,)
    """

    def __init__(self, model: nn.Module, weights: str = "fp32") -> None:
        if weights not in WEIGHTS:
            raise ValueError(
                f"FastLSTM: weights must be one of {', '.join(WEIGHTS)}, got {weights!r}"
            )
        self.weights = weights
        embedding, lstms, dense = _stack_of(model)
        sizes = [layer.cell.hidden_size for layer in lstms]
        self.sizes = sizes
        self.vocab_size = int(dense.weight.shape[0])
        offsets = [0]
        for size in sizes:
            offsets.append(offsets[-1] + size)
        with torch.no_grad():
            fused = [self._fuse(k, layer, embedding) for k, layer in enumerate(lstms)]
            w_out = dense.weight.detach().float().clone()  # (V, H_L)
            b_out = (
                dense.bias.detach().float().clone()
                if dense.bias is not None
                else torch.zeros(self.vocab_size)
            )
        # State: h of every layer in one buffer; c, gate and scratch buffers per layer.
        self.h = torch.zeros(offsets[-1])  # (ΣH,)
        self.c = [torch.zeros(size) for size in sizes]
        self.logits = torch.empty(self.vocab_size)
        self.table = fused[0][0]  # (V, 4H_1): E W_ih^T + b of layer 1
        # The input of layer k's matrix: h_1 for layer 1, [h_{k-1}; h_k] for the others.
        inputs = [self.h[0 : sizes[0]]] + [
            self.h[offsets[k - 1] : offsets[k + 1]] for k in range(1, len(sizes))
        ]
        self._layers = []
        for k, size in enumerate(sizes):
            z = torch.empty(4 * size)  # (4H,) gates i, f, o, g
            h = self.h[offsets[k] : offsets[k + 1]]
            self._layers.append(
                (
                    fused[k][1],  # matrix (4H, H) or (4H, H_{k-1} + H)
                    fused[k][2],  # bias (4H,) (layers >= 2)
                    inputs[k],
                    z,
                    z[: 3 * size],  # sigmoid block i, f, o
                    z[3 * size :],  # tanh block g
                    z[:size],  # i
                    z[size : 2 * size],  # f
                    z[2 * size : 3 * size],  # o
                    z[3 * size :],  # g
                    self.c[k],
                    h,
                    torch.empty(size),  # tanh(c) scratch
                )
            )
        self._h_last = self.h[offsets[-2] : offsets[-1]]
        self._w_out, self._b_out = w_out, b_out
        if weights == "int8":
            self._quantize(fused, w_out, b_out)
            self.step = self._step_int8  # type: ignore[method-assign]
        elif weights == "bf16":
            self._to_bf16(fused, w_out, b_out)
            self.step = self._step_bf16  # type: ignore[method-assign]

    @staticmethod
    def _fuse(k: int, layer: LSTM, embedding: Embedding) -> tuple[Tensor | None, Tensor, Tensor]:
        """``(table, matrix, bias)`` of one layer, rows in gate order ``i, f, o, g``."""
        cell = layer.cell
        size = cell.hidden_size
        order = _gate_order(size)
        w_ih = cell.weight_ih.detach().float()[order]  # (4H, I)
        w_hh = cell.weight_hh.detach().float()[order]  # (4H, H)
        bias = torch.zeros(4 * size)
        if cell.bias_ih is not None:
            bias = bias + cell.bias_ih.detach().float()[order]
        if cell.bias_hh is not None:
            bias = bias + cell.bias_hh.detach().float()[order]
        if k == 0:
            table = embedding.embeddings.detach().float() @ w_ih.T + bias  # (V, 4H)
            return table.contiguous(), w_hh.contiguous(), bias
        return None, torch.cat([w_ih, w_hh], 1).contiguous(), bias

    def _quantize(self, fused: list, w_out: Tensor, b_out: Tensor) -> None:
        linears = nn.ModuleList()
        for k, (_, matrix, bias) in enumerate(fused):
            lin = nn.Linear(matrix.shape[1], matrix.shape[0], bias=k > 0)
            lin.weight.data.copy_(matrix)
            if k > 0:
                lin.bias.data.copy_(bias)
            linears.append(lin)
        out = nn.Linear(w_out.shape[1], w_out.shape[0])
        out.weight.data.copy_(w_out)
        out.bias.data.copy_(b_out)
        linears.append(out)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from torch.ao.quantization import quantize_dynamic

            q = quantize_dynamic(linears, {nn.Linear}, dtype=torch.qint8)
        self._q = list(q)
        self._q_inputs = [layer[2].view(1, -1) for layer in self._layers] + [
            self._h_last.view(1, -1)
        ]

    def _to_bf16(self, fused: list, w_out: Tensor, b_out: Tensor) -> None:
        bf = torch.bfloat16
        self._h16 = torch.zeros(self.h.shape, dtype=bf)
        offsets = [0]
        for size in self.sizes:
            offsets.append(offsets[-1] + size)
        self._bf = []
        for k, layer in enumerate(self._layers):
            lo = 0 if k == 0 else offsets[k - 1]
            x16 = self._h16[lo : offsets[k + 1]]
            z16 = torch.empty(layer[3].shape, dtype=bf)
            self._bf.append((fused[k][1].to(bf), fused[k][2].to(bf), x16, z16))
        self._w_out16, self._b_out16 = w_out.to(bf), b_out.to(bf)
        self._h_last16 = self._h16[offsets[-2] : offsets[-1]]
        self._logits16 = torch.empty(self.vocab_size, dtype=bf)

    # -- state ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Zero the state (a fresh sequence)."""
        self.h.zero_()
        for c in self.c:
            c.zero_()

    def state(self) -> list[tuple[Tensor, Tensor]]:
        """Copies of ``(h, c)`` of every layer, input to output."""
        return [(layer[11].clone(), layer[10].clone()) for layer in self._layers]

    def prime(self, ids: Sequence[int]) -> Tensor:
        """Feed ``ids`` from the current state; the logits after the last one."""
        if len(ids) == 0:
            raise ValueError("FastLSTM.prime: expected at least one token id")
        logits = self.logits
        for token in ids:
            logits = self.step(int(token))
        return logits

    # -- one step -------------------------------------------------------------------------

    @staticmethod
    def _cell(layer: tuple) -> None:
        _, _, _, _, sig, tanh_block, i, f, o, g, c, h, scratch = layer
        sig.sigmoid_()
        tanh_block.tanh_()
        c.mul_(f).addcmul_(i, g)  # c = f ⊙ c + i ⊙ g
        torch.tanh(c, out=scratch)
        torch.mul(o, scratch, out=h)  # h = o ⊙ tanh(c)

    def step(self, token: int) -> Tensor:
        """Advance by one token (an id); the next token's logits ``(V,)`` (a reused buffer)."""
        first = self._layers[0]
        torch.addmv(self.table[token], first[0], first[2], out=first[3])
        self._cell(first)
        for layer in self._layers[1:]:
            torch.addmv(layer[1], layer[0], layer[2], out=layer[3])
            self._cell(layer)
        return torch.addmv(self._b_out, self._w_out, self._h_last, out=self.logits)

    def _step_int8(self, token: int) -> Tensor:
        q, xs = self._q, self._q_inputs
        for k, layer in enumerate(self._layers):
            z = layer[3]
            z.copy_(q[k](xs[k])[0])
            if k == 0:
                z.add_(self.table[token])
            self._cell(layer)
        self.logits.copy_(q[-1](xs[-1])[0])
        return self.logits

    def _step_bf16(self, token: int) -> Tensor:
        h16 = self._h16
        for k, (layer, (w16, b16, x16, z16)) in enumerate(zip(self._layers, self._bf)):
            h16.copy_(self.h)
            z = layer[3]
            if k == 0:
                torch.mv(w16, x16, out=z16)
                torch.add(self.table[token], z16, out=z)
            else:
                torch.addmv(b16, w16, x16, out=z16)
                z.copy_(z16)
            self._cell(layer)
        self._h_last16.copy_(self._h_last)
        torch.addmv(self._b_out16, self._w_out16, self._h_last16, out=self._logits16)
        return self.logits.copy_(self._logits16)

    # -- a whole sequence -----------------------------------------------------------------

    def run(
        self,
        prompt: Sequence[int],
        length: int,
        choose: Callable[[Tensor], int],
        on_token: Callable[[int], None] | None = None,
    ) -> list[int]:
        """Generate ``length`` token ids after ``prompt`` (from a zero state).

        ``choose(logits) -> id`` picks each token (see :class:`~.generate.Sampler`);
        ``on_token(id)`` is called with each one as soon as it is chosen (streaming).
        """
        self.reset()
        logits = self.prime(prompt)
        out: list[int] = []
        step = self.step
        for n in range(length):
            token = choose(logits)
            out.append(token)
            if on_token is not None:
                on_token(token)
            if n + 1 < length:
                logits = step(token)
        return out

    def score(self, ids: Sequence[int]) -> float:
        """Mean cross-entropy (nats per token) of ``ids[1:]``, each predicted from all before it
        (one stream from a zero state): how much the reduced-precision weights cost."""
        if len(ids) < 2:
            raise ValueError("FastLSTM.score: expected at least two token ids")
        self.reset()
        total = 0.0
        for token, target in itertools.pairwise(ids):
            logits = self.step(int(token))
            total -= float(torch.log_softmax(logits, 0)[int(target)])
        return total / (len(ids) - 1)
