"""The workloads of issue 4, each returning tables of peers measured in the same run.

Peers (names used in every table):

* ``torch nn.LSTM`` / ``torch nn.GRU`` — a plain torch model on ``torch.nn.LSTM``/``GRU`` (oneDNN on
  CPU): the named peer of every ratio.
* ``torch nn.LSTM no-oneDNN`` — the same inside ``torch.backends.mkldnn.flags(enabled=False)``.
* ``lstmkit compiled`` / ``lstmkit fused`` / ``lstmkit reference`` — lstmkit's Keras-style layers
  (or ``lstmkit.nn`` drop-ins) forced onto one engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import lstmkit.nn as lnn
from benchmarks.harness import Table, measure
from lstmkit import engines, layers

VOCAB, EMBED, UNITS1, UNITS2 = 20000, 128, 128, 64


# -- the seed model ----------------------------------------------------------------------------


class TorchSeed(nn.Module):
    """Embedding(20000×128) → LSTM(128, seq) → Dropout(0.2) → LSTM(64) → Dense(1, sigmoid), on
    ``torch.nn``."""

    def __init__(self, rnn: str = "lstm") -> None:
        super().__init__()
        cls = nn.LSTM if rnn == "lstm" else nn.GRU
        self.embedding = nn.Embedding(VOCAB, EMBED)
        self.rnn1 = cls(EMBED, UNITS1, batch_first=True)
        self.dropout = nn.Dropout(0.2)
        self.rnn2 = cls(UNITS1, UNITS2, batch_first=True)
        self.dense = nn.Linear(UNITS2, 1)

    @classmethod
    @torch.no_grad()
    def like(cls, model: LstmkitSeed, rnn: str = "lstm") -> TorchSeed:
        """The same model with ``model``'s weights (Keras's initialisation, including the forget
        bias of 1): with torch's own initialisation the gradients of a 200-step sequence decay
        into denormal numbers and oneDNN's backward runs ~20× slower, which is not a fair peer."""
        ours = cls(rnn)
        ours.embedding.weight.copy_(model.embedding.embeddings)
        for mine, theirs in ((ours.rnn1, model.rnn1.cell), (ours.rnn2, model.rnn2.cell)):
            mine.weight_ih_l0.copy_(theirs.weight_ih)
            mine.weight_hh_l0.copy_(theirs.weight_hh)
            mine.bias_ih_l0.copy_(theirs.bias_ih)
            mine.bias_hh_l0.copy_(theirs.bias_hh if theirs.bias_hh is not None else 0.0)
        ours.dense.weight.copy_(model.dense.weight)
        ours.dense.bias.copy_(model.dense.bias)
        return ours

    def forward(self, ids: Tensor) -> Tensor:
        x, _ = self.rnn1(self.embedding(ids))
        x, _ = self.rnn2(self.dropout(x))
        return torch.sigmoid(self.dense(x[:, -1]))


class LstmkitSeed(nn.Module):
    """The same model from lstmkit's Keras-style layers on one engine (and a cell variant); every
    instance has the same weights (seeded), so the peers compute the same numbers."""

    def __init__(self, engine: str, rnn: str = "lstm", **variant: Any) -> None:
        super().__init__()
        torch.manual_seed(0)
        cls = layers.LSTM if rnn == "lstm" else layers.GRU
        self.embedding = layers.Embedding(VOCAB, EMBED)
        self.rnn1 = cls(UNITS1, return_sequences=True, engine=engine, **variant)
        self.dropout = layers.Dropout(0.2)
        self.rnn2 = cls(UNITS2, engine=engine, **variant)
        self.dense = layers.Dense(1, activation="sigmoid")
        with torch.no_grad():
            self(torch.ones(1, 2, dtype=torch.long))  # build the layers (weights) now

    @classmethod
    @torch.no_grad()
    def like(cls, model: TorchSeed, engine: str) -> LstmkitSeed:
        """The same model with ``model``'s (torch-initialised) weights; one bias = b_ih + b_hh."""
        ours = cls(engine)
        ours.embedding.embeddings.copy_(model.embedding.weight)
        for mine, theirs in ((ours.rnn1.cell, model.rnn1), (ours.rnn2.cell, model.rnn2)):
            mine.weight_ih.copy_(theirs.weight_ih_l0)
            mine.weight_hh.copy_(theirs.weight_hh_l0)
            mine.bias_ih.copy_(theirs.bias_ih_l0 + theirs.bias_hh_l0)
        ours.dense.weight.copy_(model.dense.weight)
        ours.dense.bias.copy_(model.dense.bias)
        return ours

    def forward(self, ids: Tensor) -> Tensor:
        return self.dense(self.rnn2(self.dropout(self.rnn1(self.embedding(ids)))))


def training_step(
    model: nn.Module, batch: int, steps: int, context: Callable[[], Any] = contextlib.nullcontext
) -> Callable[[], None]:
    """One Adam step on binary cross-entropy over a fixed random batch."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, VOCAB, (batch, steps), generator=g)
    labels = torch.randint(0, 2, (batch,), generator=g).float()
    model.train()
    with torch.no_grad():
        model(ids[:2])  # build lazily-built layers before the optimiser sees the parameters
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        with context():
            opt.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy(model(ids).reshape(-1), labels)
            loss.backward()
            opt.step()

    return step


def _no_onednn() -> Any:
    return torch.backends.mkldnn.flags(enabled=False)


def _recording() -> Any:
    return engines.recording(lambda owner, direction, record, mask: None)


def seed(repeats: int, shapes: tuple[tuple[int, int], ...] = ((32, 200), (64, 80))) -> list[Table]:
    """The seed model's training step: lstmkit on each engine vs the same model on nn.LSTM."""
    tables = []
    for batch, steps in shapes:
        peers = {
            "torch nn.LSTM": training_step(TorchSeed.like(LstmkitSeed("fused")), batch, steps),
            "torch nn.LSTM no-oneDNN": training_step(
                TorchSeed.like(LstmkitSeed("fused")), batch, steps, _no_onednn
            ),
            "lstmkit compiled": training_step(LstmkitSeed("compiled"), batch, steps),
            "lstmkit fused": training_step(LstmkitSeed("fused"), batch, steps),
            "lstmkit reference": training_step(LstmkitSeed("reference"), batch, steps),
        }
        tables.append(
            measure(
                f"Seed model, one training step, B{batch}/T{steps}",
                peers,
                baseline="torch nn.LSTM",
                repeats=repeats,
                samples=batch,
            )
        )
    return tables


def torchinit(repeats: int, batch: int = 32, steps: int = 200) -> list[Table]:
    """The seed model with torch's default initialisation (forget bias ~0) in both peers."""
    torch.manual_seed(0)
    reference = TorchSeed()
    peers = {
        "torch nn.LSTM": training_step(reference, batch, steps),
        "lstmkit compiled": training_step(LstmkitSeed.like(reference, "compiled"), batch, steps),
    }
    note = (
        "Both peers hold torch's default initialisation. Over 200 steps the gradients decay into"
        " denormal numbers; oneDNN's backward computes on them (~100× slower per operation), the"
        " compiled engine flushes them to zero. Not the headline comparison (the seed tables use"
        " Keras's initialisation, forget bias 1, in every peer)."
    )
    title = f"Seed model with torch's default initialisation, training step, B{batch}/T{steps}"
    return [
        measure(title, peers, baseline="torch nn.LSTM", repeats=repeats, samples=batch, note=note)
    ]


def record(repeats: int, batch: int = 32, steps: int = 200) -> list[Table]:
    """Training with every gate of every layer recorded vs nn.LSTM without recording."""
    peers = {
        "torch nn.LSTM": training_step(TorchSeed.like(LstmkitSeed("fused")), batch, steps),
        "lstmkit compiled": training_step(LstmkitSeed("compiled"), batch, steps),
        "lstmkit compiled, recording": training_step(
            LstmkitSeed("compiled"), batch, steps, _recording
        ),
        "lstmkit reference, recording": training_step(
            LstmkitSeed("reference"), batch, steps, _recording
        ),
    }
    note = "recording: `lstmkit.engines.recording(sink)` with a no-op sink (all gates, both layers)"
    title = f"Seed model training with every gate recorded, B{batch}/T{steps}"
    return [
        measure(title, peers, baseline="torch nn.LSTM", repeats=repeats, samples=batch, note=note)
    ]


def variants(repeats: int, batch: int = 32, steps: int = 200) -> list[Table]:
    """Layer-norm and peephole LSTM training (no fused kernel exists) vs plain nn.LSTM."""
    peers = {
        "torch nn.LSTM": training_step(TorchSeed.like(LstmkitSeed("fused")), batch, steps),
        "lstmkit compiled, layer norm": training_step(
            LstmkitSeed("compiled", layer_norm=True), batch, steps
        ),
        "lstmkit compiled, peephole": training_step(
            LstmkitSeed("compiled", peephole=True), batch, steps
        ),
        "lstmkit reference, layer norm": training_step(
            LstmkitSeed("reference", layer_norm=True), batch, steps
        ),
    }
    title = f"Seed model with layer-norm / peephole LSTMs, training step, B{batch}/T{steps}"
    return [measure(title, peers, baseline="torch nn.LSTM", repeats=repeats, samples=batch)]


def gru(repeats: int, batch: int = 32, steps: int = 200) -> list[Table]:
    """The seed model on GRUs: lstmkit compiled vs torch.nn.GRU; and GRU forward+backward."""
    peers = {
        "torch nn.GRU": training_step(
            TorchSeed.like(LstmkitSeed("fused", "gru"), "gru"), batch, steps
        ),
        "torch nn.GRU no-oneDNN": training_step(
            TorchSeed.like(LstmkitSeed("fused", "gru"), "gru"), batch, steps, _no_onednn
        ),
        "lstmkit compiled": training_step(LstmkitSeed("compiled", "gru"), batch, steps),
        "lstmkit fused": training_step(LstmkitSeed("fused", "gru"), batch, steps),
    }
    title = f"Seed model on GRUs, training step, B{batch}/T{steps}"
    tables = [measure(title, peers, baseline="torch nn.GRU", repeats=repeats, samples=batch)]
    for hidden in (128, 256):
        tables.append(_forward_backward("gru", hidden, hidden, 32, 100, repeats))
    return tables


# -- single layers: forward + backward --------------------------------------------------------


def _forward_backward(
    kind: str, inputs: int, hidden: int, batch: int, steps: int, repeats: int, train: bool = True
) -> Table:
    torch_cls = nn.LSTM if kind == "lstm" else nn.GRU
    ours_cls = lnn.LSTM if kind == "lstm" else lnn.GRU
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, steps, inputs, generator=g, requires_grad=train)
    grad = torch.randn(batch, steps, hidden, generator=g)

    def run(module: nn.Module, context: Callable[[], Any] = contextlib.nullcontext) -> Callable:
        def call() -> None:
            with context():
                if train:
                    out, _ = module(x)
                    out.backward(grad)
                else:
                    with torch.no_grad():
                        module(x)

        return call

    name = f"torch nn.{kind.upper()}"
    torch.manual_seed(0)
    reference = torch_cls(inputs, hidden, batch_first=True)
    if kind == "lstm":  # forget-gate bias 1 (Keras's default): no gradients decaying to denormals
        with torch.no_grad():
            reference.bias_ih_l0[hidden : 2 * hidden] = 1.0
    plain = torch_cls(inputs, hidden, batch_first=True)
    compiled = ours_cls(inputs, hidden, batch_first=True, engine="compiled")
    for module in (plain, compiled):
        module.load_state_dict(reference.state_dict())
    peers = {
        name: run(reference),
        f"{name} no-oneDNN": run(plain, _no_onednn),
        "lstmkit compiled": run(compiled),
    }
    what = "forward+backward" if train else "forward (no grad)"
    title = f"{kind.upper()} {what}, I{inputs} H{hidden} B{batch} T{steps}"
    return measure(title, peers, baseline=name, repeats=repeats, samples=batch)


def hidden(repeats: int, sizes: tuple[int, ...] = (64, 128, 256, 512, 1024)) -> list[Table]:
    """LSTM forward+backward at B32/T100 for H in 64…1024 (input size = H)."""
    return [_forward_backward("lstm", h, h, 32, 100, repeats) for h in sizes]


def inference(repeats: int, sizes: tuple[int, ...] = (64, 128, 256, 512, 1024)) -> list[Table]:
    """LSTM forward without gradients at B32/T100 (where auto-selection may prefer oneDNN)."""
    return [_forward_backward("lstm", h, h, 32, 100, repeats, train=False) for h in sizes]


def tsweep(repeats: int, lengths: tuple[int, ...] = (50, 100, 200, 400, 800)) -> list[Table]:
    """LSTM(128→128) forward+backward at B32 for T in 50…800: cost per step must stay flat."""
    tables = [_forward_backward("lstm", 128, 128, 32, t, repeats) for t in lengths]
    _per_unit(tables, lengths, "T")
    return tables


def bsweep(repeats: int, batches: tuple[int, ...] = (8, 16, 32, 64, 128)) -> list[Table]:
    """LSTM(128→128) forward+backward at T100 for B in 8…128: cost per row must stay flat."""
    tables = [_forward_backward("lstm", 128, 128, b, 100, repeats) for b in batches]
    _per_unit(tables, batches, "B")
    return tables


def _per_unit(tables: list[Table], sizes: tuple[int, ...], unit: str) -> None:
    """Note each table's cost per unit of the swept size, relative to the smallest size."""
    for peer in ("lstmkit compiled", "torch nn.LSTM"):
        first = tables[0].row(peer).median / sizes[0]
        for table, size in zip(tables, sizes):
            per = table.row(peer).median / size
            table.extra[f"{peer}: ms per {unit}"] = (
                f"{per * 1e3:.3f} ({per / first:.2f}× {unit}={sizes[0]})"
            )


WORKLOADS: dict[str, Callable[[int], list[Table]]] = {
    "seed": seed,
    "record": record,
    "variants": variants,
    "hidden": hidden,
    "tsweep": tsweep,
    "bsweep": bsweep,
    "gru": gru,
    "inference": inference,
    "torchinit": torchinit,
}
