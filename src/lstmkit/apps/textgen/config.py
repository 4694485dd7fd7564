"""The text-generation application's typed configurations.

:class:`TextgenConfig` is everything ``lstmkit textgen train`` does; every field is a flag
(``batch_size`` -> ``--batch-size``) whose help text is written here, and a JSON file given with
``--config`` may set any of them. Unknown keys are rejected with the list of known ones, and
values are checked when the config is made, so a typo fails before any data is read.

The defaults are the character model that reaches the target of the issue (held-out
cross-entropy <= 1.55 nats/char within one hour on two CPU cores; see ``docs/textgen.md`` for the
curve and the measured time): Embedding(71+2, 64) -> LSTM(512) -> Dropout(0.2) -> LSTM(512) ->
Dropout(0.2) -> Dense(vocabulary), trained statefully with truncated backpropagation through
time on 64 contiguous streams of 100 characters for 2,400 steps (15.4M characters, 3.7 passes),
Adam with a 100-step warm-up and cosine decay from 2e-3, the global gradient norm clipped at 5,
and bfloat16 autocast where the CPU computes it natively (``precision="auto"``).

``TextgenConfig.preset("word")`` is the word-level model (lower-cased words and punctuation, a
10,000-token vocabulary, 2 x LSTM(256) with tied input and output embeddings initialised
uniform in [-1, 1], dropout 0.3,
32 streams of 50 words, 2,500 steps).

:class:`SamplingConfig` is how ``generate`` draws each next token.

>>> cfg = TextgenConfig(steps=10)
>>> cfg.level, cfg.units, cfg.layers, cfg.steps
('char', 512, 2, 10)
>>> TextgenConfig.preset("word").tie_weights
True
>>> TextgenConfig.from_dict({"step": 10})
Traceback (most recent call last):
...
ValueError: TextgenConfig: unknown key 'step'; known keys: batch_size, budget_minutes, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lstmkit.apps.common import ConfigMixin
from lstmkit.apps.common import check_type as check_type
from lstmkit.apps.common import config_field as _opt
from lstmkit.apps.common import field_help as field_help

LEVELS = ("char", "word")
PRECISIONS = ("auto", "fp32", "bf16")
ENGINES = ("auto", "fused", "reference", "compiled")
DEFAULT_MODEL_PATHS = {"char": "runs/textgen/char.lstmkit", "word": "runs/textgen/word.lstmkit"}


@dataclass(frozen=True)
class TextgenConfig(ConfigMixin):
    """What ``lstmkit textgen train`` does; see the module docstring."""

    # -- data --------------------------------------------------------------------------------
    level: str = _opt(
        "char",
        "Tokens: char = one per character (case and punctuation kept); word = lower-cased "
        "words, punctuation marks and line ends.",
        LEVELS,
    )
    max_tokens: int = _opt(
        10000,
        "Word level: vocabulary size, padding and [UNK] included; rarer words become [UNK]. "
        "Ignored for characters (every training character is kept).",
    )
    stage_directions: bool = _opt(
        False, "Keep the plays' stage directions as [...] lines (default: dropped)."
    )
    # -- model -------------------------------------------------------------------------------
    embedding_dim: int = _opt(64, "Size of the learnt token vectors.")
    embedding_init: float = _opt(
        0.05,
        "The embeddings start uniform in [-a, a] (Keras's default a = 0.05). Word models learn "
        "much sooner from a = 1: with small vectors they sit at the unigram loss for hundreds "
        "of steps.",
    )
    units: int = _opt(512, "Units of each LSTM layer.")
    layers: int = _opt(2, "Number of stacked LSTM layers.")
    dropout: float = _opt(
        0.2, "Dropout rate after the embedding (word level only) and after every LSTM layer."
    )
    recurrent_dropout: float = _opt(
        0.0,
        "Variational dropout on the LSTMs' recurrent state (one mask per sequence chunk, Gal & "
        "Ghahramani). Slower: torch's fused kernel cannot apply it, so another engine runs.",
    )
    tie_weights: bool = _opt(
        False,
        "Share the embedding matrix with the output layer (needs embedding_dim == units).",
    )
    engine: str = _opt(
        "auto", "lstmkit engine for the LSTM layers during training (auto picks).", ENGINES
    )
    # -- training ----------------------------------------------------------------------------
    batch_size: int = _opt(64, "Parallel contiguous streams of text (rows of each batch).")
    seq_len: int = _opt(
        100, "Tokens per truncated-backpropagation chunk; the state is carried across chunks."
    )
    steps: int = _opt(2400, "Optimiser steps (one chunk of batch_size x seq_len tokens each).")
    learning_rate: float = _opt(2e-3, "Adam's peak learning rate (after the warm-up).")
    warmup_steps: int = _opt(100, "Steps of linear learning-rate warm-up from 0.")
    final_lr_fraction: float = _opt(
        0.05, "The cosine decay ends at this fraction of the peak learning rate."
    )
    clipnorm: float = _opt(5.0, "Clip the global gradient norm to this value (0 = off).")
    precision: str = _opt(
        "auto",
        "Training arithmetic: bf16 = bfloat16 autocast (weights, optimiser and loss stay fp32; "
        "about 3x faster on CPUs with AMX or AVX-512 BF16), fp32, or auto = bf16 where the CPU "
        "has native bfloat16 matrix units, else fp32. Evaluation always runs in fp32.",
        PRECISIONS,
    )
    eval_every: int = _opt(200, "Evaluate on the validation plays every this many steps.")
    eval_tokens: int = _opt(
        0,
        "Tokens of the validation plays scored at intermediate evaluations (0 = all); the "
        "final evaluation always scores the whole validation and test splits.",
    )
    checkpoint_every: int = _opt(
        200, "Save the model (with optimiser state, for --resume) every this many steps."
    )
    budget_minutes: float = _opt(
        0.0,
        "Stop training after this many wall-clock minutes, evaluation excluded (0 = no limit; "
        "the learning-rate schedule still assumes `steps`).",
    )
    seed: int = _opt(0, "Random seed of weights, dropout and the per-epoch stream offsets.")
    threads: int = _opt(
        1,
        "CPU threads for torch (0 = torch's default). One is the safe choice on a shared "
        "machine: with two, a busy CPU can make every step several times slower.",
    )
    output: str = _opt(
        "",
        "Model file to write (default: runs/textgen/<level>.lstmkit); the curve goes next "
        "to it as <name>.curve.csv.",
    )

    def __post_init__(self) -> None:
        self.check_fields()
        for name in ("embedding_dim", "units", "layers", "batch_size", "seq_len", "steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"TextgenConfig: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "eval_every", "eval_tokens", "checkpoint_every", "seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"TextgenConfig: {name} must be >= 0, got {getattr(self, name)}")
        if self.threads < 0:
            raise ValueError(f"TextgenConfig: threads must be >= 0, got {self.threads}")
        if self.max_tokens < 3:
            raise ValueError(f"TextgenConfig: max_tokens must be >= 3, got {self.max_tokens}")
        for name in ("dropout", "recurrent_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(
                    f"TextgenConfig: {name} must be in [0, 1), got {getattr(self, name)}"
                )
        if not self.embedding_init > 0.0:
            raise ValueError(
                f"TextgenConfig: embedding_init must be > 0, got {self.embedding_init}"
            )
        if not self.learning_rate > 0.0:
            raise ValueError(f"TextgenConfig: learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            raise ValueError(
                f"TextgenConfig: final_lr_fraction must be in [0, 1], got {self.final_lr_fraction}"
            )
        if self.clipnorm < 0 or self.budget_minutes < 0:
            raise ValueError("TextgenConfig: clipnorm and budget_minutes must be >= 0")
        if self.tie_weights and self.embedding_dim != self.units:
            raise ValueError(
                f"TextgenConfig: tie_weights needs embedding_dim == units, got "
                f"embedding_dim={self.embedding_dim}, units={self.units}"
            )

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def preset(cls, level: str = "char") -> TextgenConfig:
        """The default configuration of a level: ``"char"`` or ``"word"``."""
        if level not in LEVELS:
            raise ValueError(
                f"TextgenConfig: level must be one of {', '.join(LEVELS)}, got {level!r}"
            )
        if level == "char":
            return cls()
        return cls(
            level="word",
            embedding_dim=256,
            embedding_init=1.0,
            units=256,
            tie_weights=True,
            dropout=0.3,
            batch_size=32,
            seq_len=50,
            steps=2500,
            eval_every=250,
            checkpoint_every=250,
        )

    @classmethod
    def from_dict(cls, values: dict[str, Any], base: TextgenConfig | None = None) -> TextgenConfig:
        """A config from a dict of field values over ``base`` (default: the level's preset)."""
        if base is None:
            base = cls.preset(values.get("level", "char")) if "level" in values else cls()
        return base.replace(**values)

    @property
    def resolved_precision(self) -> str:
        """``precision`` with ``"auto"`` decided for this machine (see :func:`native_bf16`)."""
        if self.precision == "auto":
            return "bf16" if native_bf16() else "fp32"
        return self.precision

    @property
    def output_path(self) -> Path:
        return Path(self.output or DEFAULT_MODEL_PATHS[self.level])


@dataclass(frozen=True)
class SamplingConfig(ConfigMixin):
    """How each next token is drawn from the model's distribution ``softmax(logits)``.

    The filters apply in this order: ``temperature`` divides the logits (``0`` = greedy:
    always the most likely token); ``top_k`` keeps the ``k`` most likely tokens; ``top_p``
    keeps the smallest set of most likely tokens whose probabilities sum to at least ``p``
    (the nucleus, Holtzman et al. 2020). The padding id is never drawn, and ``[UNK]`` only with
    ``allow_unknown``.

    >>> SamplingConfig(temperature=0.8, top_k=5).top_p
    1.0
    """

    temperature: float = _opt(1.0, "Divide the logits by this (0 = greedy decoding).")
    top_k: int = _opt(0, "Sample only among the k most likely tokens (0 = all).")
    top_p: float = _opt(
        1.0, "Sample only from the smallest set of tokens with total probability >= p (1 = all)."
    )
    seed: int | None = _opt(None, "Random seed: the same seed gives the same text.")
    allow_unknown: bool = _opt(False, "Allow the [UNK] token to be generated.")

    def __post_init__(self) -> None:
        self.check_fields()
        if self.temperature < 0:
            raise ValueError(f"SamplingConfig: temperature must be >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"SamplingConfig: top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"SamplingConfig: top_p must be in (0, 1], got {self.top_p}")


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX-512 BF16 or AMX), so that
    bf16 autocast speeds training up instead of emulating bfloat16."""
    try:
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
