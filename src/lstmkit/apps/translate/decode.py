"""Decoding: greedy search and batched beam search with GNMT's scoring, and :class:`Translator`.

Beam search keeps ``k`` hypotheses per sentence, for a whole batch of sentences at once (the
``B·k`` rows run through the decoder together). Hypotheses are extended by their summed
log-probability (the ``2k`` best extensions are looked at); one whose ``</s>`` extension ranks
among the ``k`` best is finished and scored as in GNMT (Wu et al. 2016, §7)::

    s(Y, X) = log P(Y | X) / lp(Y) + cp(X; Y)
    lp(Y)   = (5 + |Y|)^α / (5 + 1)^α                       length normalisation
    cp(X;Y) = β · Σ_i log(min(Σ_j p_ij, 1.0))               coverage penalty

where ``|Y|`` counts the output tokens including ``</s>``, ``p_ij`` is the attention weight of
output step ``j`` on source token ``i`` (padding excluded), and a coverage below ``1e-9`` counts
as ``1e-9`` (so that an unattended word costs ``β·log(1e-9)``, not ``-∞``). A sentence stops
early once it has ``k`` finished hypotheses and none of its live hypotheses has a better
length-normalised log-probability ``log P / lp`` than the ``k``-th best finished one (the
usual heuristic: a live hypothesis is compared at its current length); at its maximum length
(``min(max_decode_len, ratio · source length + 10)``) its unfinished hypotheses are finished
as they are. With ``k = 1`` beam search makes exactly greedy search's choices.

Several models trained on the same vocabularies decode as one :class:`Ensemble` (as in GNMT,
§8.1): at each step the next-token distribution is the mean of the models' distributions,
``log p(y_t) = log (1/M) Σ_m p_m(y_t)``, and the attention used by the coverage penalty and the
heatmaps is the mean of the models' attention.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import Tensor

from lstmkit.apps.assets import AssetReader
from lstmkit.apps.translate.config import TranslateConfig
from lstmkit.apps.translate.data import BOS, EOS, Vocab, encode_source, pad
from lstmkit.apps.translate.model import GNMT, DecoderState, Encoded
from lstmkit.models import ModelFileError

COVERAGE_FLOOR = 1e-9
ASSET_FORMAT = "lstmkit-translate-1"  # model.assets["format"] of the files train writes


def length_penalty(length: Any, alpha: float) -> Any:
    """GNMT's ``lp(Y) = (5 + |Y|)^α / 6^α`` (a float, or a tensor for a tensor ``length``)."""
    return ((5.0 + length) / 6.0) ** alpha


def coverage_penalty(coverage: Tensor, mask: Tensor | None, beta: float) -> Tensor:
    """GNMT's ``cp = β · Σ_i log(min(Σ_j p_ij, 1))`` over the real source tokens.

    Args:
        coverage: ``(..., S)`` attention summed over the output steps, ``Σ_j p_ij``.
        mask: ``(..., S)`` True on real source tokens (padding contributes nothing).
        beta: the penalty's weight ``β``.
    """
    logs = torch.log(coverage.clamp(min=COVERAGE_FLOOR, max=1.0))
    if mask is not None:
        logs = logs * mask.to(logs.dtype)
    return beta * logs.sum(-1)


class EnsembleEncoded(NamedTuple):
    """Each model's :class:`Encoded`; they share the source mask."""

    parts: list[Encoded]

    @property
    def mask(self) -> Tensor:
        """``(B, S)`` True on real tokens (the same for every model: it comes from ``src``)."""
        return self.parts[0].mask

    def select(self, index: Tensor) -> EnsembleEncoded:
        return EnsembleEncoded([p.select(index) for p in self.parts])


class EnsembleState(NamedTuple):
    """Each model's :class:`DecoderState`."""

    parts: list[DecoderState]

    def select(self, index: Tensor) -> EnsembleState:
        return EnsembleState([p.select(index) for p in self.parts])


class Ensemble:
    """``M`` models decoding as one; anything that decodes a :class:`GNMT` decodes an ensemble.

    Each step runs every model on its own state; the next-token log-probabilities are those of
    the mean distribution, ``log (1/M) Σ_m p_m(y_t | y_<t, x)`` (shape ``(N, V)``), and the
    attention ``(N, S)`` is the mean over the models that attend (``None`` if none does). The
    models must share their target vocabulary size; :meth:`Translator.load` also checks that
    both vocabularies are the same SentencePiece models.
    """

    def __init__(self, models: Sequence[GNMT]) -> None:
        self.models = list(models)
        if not self.models:
            raise ValueError("Ensemble: give at least one model")
        sizes = {m.config["tgt_vocab_size"] for m in self.models}
        if len(sizes) > 1:
            raise ValueError(
                f"Ensemble: the models' target vocabulary sizes differ: {sorted(sizes)}"
            )

    def eval(self) -> Ensemble:
        for m in self.models:
            m.eval()
        return self

    def encode(self, src: Tensor, training: bool | None = None) -> EnsembleEncoded:
        return EnsembleEncoded([m.encode(src, training=training) for m in self.models])

    def initial_state(self, enc: EnsembleEncoded) -> EnsembleState:
        return EnsembleState([m.initial_state(e) for m, e in zip(self.models, enc.parts)])

    def step(
        self, tokens: Tensor, state: EnsembleState, enc: EnsembleEncoded
    ) -> tuple[Tensor, EnsembleState, Tensor | None]:
        return self._combine([m.step for m in self.models], tokens, state, enc)

    def fast_step(
        self, tokens: Tensor, state: EnsembleState, enc: EnsembleEncoded
    ) -> tuple[Tensor, EnsembleState, Tensor | None]:
        return self._combine([m.fast_step for m in self.models], tokens, state, enc)

    def _combine(
        self, steps: list[Any], tokens: Tensor, state: EnsembleState, enc: EnsembleEncoded
    ) -> tuple[Tensor, EnsembleState, Tensor | None]:
        log_probs, states, weights = [], [], []
        for step, s, e in zip(steps, state.parts, enc.parts):
            lp, s, w = step(tokens, s, e)
            log_probs.append(lp)
            states.append(s)
            if w is not None:
                weights.append(w)
        mean = torch.logsumexp(torch.stack(log_probs), 0) - math.log(len(log_probs))
        attention = torch.stack(weights).mean(0) if weights else None
        return mean, EnsembleState(states), attention


@dataclass
class Hypothesis:
    """One decoded output: ids (without ``</s>``), its GNMT score, raw log-probability and
    attention ``(len(ids) [+1 for </s>], S)``."""

    tokens: list[int]
    score: float
    log_prob: float
    attention: Tensor | None = field(default=None, repr=False)
    length: int = 0  # |Y|: output steps, including </s> when the hypothesis ended with one


def _max_lengths(enc: Encoded | EnsembleEncoded, cfg: TranslateConfig) -> Tensor:
    src_len = enc.mask.sum(-1).to(torch.float32)  # (B,)
    limit = torch.floor(cfg.max_decode_ratio * src_len + 10).long()
    return limit.clamp(max=cfg.max_decode_len)


def _step(model: GNMT | Ensemble, fast: bool) -> Any:
    return model.fast_step if fast else model.step


@torch.no_grad()
def greedy_search(
    model: GNMT | Ensemble, src: Tensor, cfg: TranslateConfig, fast: bool = True
) -> list[Hypothesis]:
    """The most probable next token at every step, for each row of ``src (B, S)``."""
    model.eval()
    enc = model.encode(src, training=False)
    state = model.initial_state(enc)
    max_len = _max_lengths(enc, cfg)
    batch = src.shape[0]
    tokens = torch.full((batch,), BOS, dtype=torch.long)
    done = torch.zeros(batch, dtype=torch.bool)
    log_prob = torch.zeros(batch)
    out: list[list[int]] = [[] for _ in range(batch)]
    attn: list[list[Tensor]] = [[] for _ in range(batch)]
    step = _step(model, fast)
    for t in range(int(max_len.max())):
        logp, state, weights = step(tokens, state, enc)  # (B, V), (B, S)
        best_lp, tokens = logp.max(-1)
        for b in (~done).nonzero().flatten().tolist():
            log_prob[b] += best_lp[b]
            out[b].append(int(tokens[b]))
            if weights is not None:
                attn[b].append(weights[b])
        done |= (tokens == EOS) | (t + 1 >= max_len)
        if bool(done.all()):
            break
    hyps = []
    for b in range(batch):
        ids = out[b]
        a = torch.stack(attn[b]) if attn[b] else None
        n = len(ids)
        score = float(log_prob[b]) / length_penalty(n, cfg.length_penalty)
        if a is not None and cfg.coverage_penalty:
            score += float(coverage_penalty(a.sum(0), enc.mask[b], cfg.coverage_penalty))
        if ids and ids[-1] == EOS:
            ids = ids[:-1]
        hyps.append(Hypothesis(ids, score, float(log_prob[b]), a, n))
    return hyps


@torch.no_grad()
def beam_search(
    model: GNMT | Ensemble,
    src: Tensor,
    cfg: TranslateConfig,
    beam_size: int | None = None,
    fast: bool = True,
) -> list[Hypothesis]:
    """Batched beam search (see the module doc) for each row of ``src (B, S)``; the best
    hypothesis per sentence."""
    return [nbest[0] for nbest in beam_search_nbest(model, src, cfg, beam_size, fast)]


@torch.no_grad()
def beam_search_nbest(
    model: GNMT | Ensemble,
    src: Tensor,
    cfg: TranslateConfig,
    beam_size: int | None = None,
    fast: bool = True,
) -> list[list[Hypothesis]]:
    """Like :func:`beam_search`, returning every finished hypothesis, best first."""
    model.eval()
    k = beam_size or cfg.beam_size
    alpha, beta = cfg.length_penalty, cfg.coverage_penalty
    batch = src.shape[0]
    enc0 = model.encode(src, training=False)
    max_len = _max_lengths(enc0, cfg).tolist()
    rows = torch.arange(batch).repeat_interleave(k)  # beam r of sentence b is row b*k + r
    enc = enc0.select(rows)
    state = model.initial_state(enc)
    scores = torch.full((batch, k), -math.inf)
    scores[:, 0] = 0.0  # one live hypothesis at the start
    tokens = torch.full((batch * k,), BOS, dtype=torch.long)
    history = torch.zeros(batch * k, 0, dtype=torch.long)  # (B·k, t)
    attn_hist: Tensor | None = None  # (B·k, t, S)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    done = [False] * batch
    step = _step(model, fast)
    for t in range(max(max_len)):
        logp, state, weights = step(tokens, state, enc)  # (B·k, V), (B·k, S)
        vocab = logp.shape[-1]
        if weights is not None:
            w = weights.unsqueeze(1)
            attn_hist = w if attn_hist is None else torch.cat([attn_hist, w], 1)
        total = (scores.view(-1, 1) + logp).view(batch, k * vocab)  # (B, k·V)
        top_scores, top_index = total.topk(min(2 * k, k * vocab), dim=-1)  # (B, 2k)
        new_rows = torch.zeros(batch, k, dtype=torch.long)
        new_tokens = torch.full((batch, k), EOS, dtype=torch.long)
        new_scores = torch.full((batch, k), -math.inf)
        for b in range(batch):
            if done[b]:
                new_rows[b] = b * k
                continue
            chosen = 0
            for rank, (score, index) in enumerate(
                zip(top_scores[b].tolist(), top_index[b].tolist())
            ):
                if score == -math.inf:
                    break
                row, token = b * k + index // vocab, index % vocab
                if token == EOS:  # finished, if it ranks among the k best extensions
                    if rank < k:
                        finished[b].append(
                            _finish(history, attn_hist, enc, row, EOS, score, alpha, beta)
                        )
                    continue
                new_rows[b, chosen], new_tokens[b, chosen] = row, token
                new_scores[b, chosen] = score
                chosen += 1
                if chosen == k:
                    break
            if t + 1 >= max_len[b]:
                for r in range(chosen):  # out of length: finish the live hypotheses as they are
                    row, token = int(new_rows[b, r]), int(new_tokens[b, r])
                    score = float(new_scores[b, r])
                    finished[b].append(
                        _finish(history, attn_hist, enc, row, token, score, alpha, beta)
                    )
                done[b] = True
            elif len(finished[b]) >= k:
                done[b] = chosen == 0 or _kth_best(finished[b], k, alpha) >= float(
                    new_scores[b, :chosen].max()
                ) / length_penalty(t + 1, alpha)
            if done[b]:
                new_scores[b] = -math.inf
        if all(done):
            break
        flat_rows = new_rows.view(-1)
        history = torch.cat([history[flat_rows], new_tokens.view(-1, 1)], 1)
        if attn_hist is not None:
            attn_hist = attn_hist[flat_rows]
        state = state.select(flat_rows)
        scores = new_scores
        tokens = new_tokens.view(-1)
    for b in range(batch):
        if not finished[b]:  # cannot happen with a vocabulary of more than 2k tokens
            finished[b].append(Hypothesis([], -math.inf, -math.inf, None))
        finished[b].sort(key=lambda h: -h.score)
    return finished


def _kth_best(finished: list[Hypothesis], k: int, alpha: float) -> float:
    """The k-th best length-normalised log-probability among finished hypotheses."""
    return sorted((h.log_prob / length_penalty(h.length, alpha) for h in finished), reverse=True)[
        k - 1
    ]


def _finish(
    history: Tensor,
    attn_hist: Tensor | None,
    enc: Encoded | EnsembleEncoded,
    row: int,
    token: int,
    log_prob: float,
    alpha: float,
    beta: float,
) -> Hypothesis:
    """A finished hypothesis: beam ``row``'s tokens plus ``token``, scored by GNMT's s(Y, X)."""
    ids = [*history[row].tolist(), token]
    attn = None if attn_hist is None else attn_hist[row]  # (len(ids), S)
    score = log_prob / length_penalty(len(ids), alpha)
    if attn is not None and beta:
        score += float(coverage_penalty(attn.sum(0), enc.mask[row], beta))
    length = len(ids)
    if token == EOS:
        ids = ids[:-1]
    return Hypothesis(ids, score, log_prob, attn, length)


def _load_translation_model(path: Any) -> GNMT:
    from lstmkit.models import load_model

    model = load_model(path, compile=False)
    if not isinstance(model, GNMT):
        raise ModelFileError(f"{path}: not a translation model (no GNMT with vocabularies)")
    return model


def _vocabs(path: Any, model: GNMT) -> tuple[TranslateConfig, Vocab, Vocab]:
    """The configuration and both SentencePiece vocabularies of a translation model file,
    checked: base64 text that SentencePiece's own loader accepts, as large as the model's
    embeddings expect."""
    reader = AssetReader(path, "translate", model.assets)
    reader.equal("format", ASSET_FORMAT, "translation model format")
    with reader.rebuilding("config"):
        cfg = TranslateConfig.from_dict(reader.mapping("config", required=False))
    vocabs = []
    sides = (
        ("src_spm", "German", model.src_embedding),
        ("tgt_spm", "English", model.tgt_embedding),
    )
    for side, language, embedding in sides:
        text = reader.get(side, str)
        with reader.rebuilding(f"{language} SentencePiece model", side):
            try:
                proto = base64.b64decode(text.encode("ascii"), validate=True)
            except (ValueError, UnicodeEncodeError) as e:
                raise ValueError(f"not base64 text: {e}") from None
            vocab = Vocab(proto)
        if len(vocab) != embedding.input_dim:
            raise ModelFileError(
                f"{reader.where}: {side} has {len(vocab)} pieces but the model's {language} "
                f"embedding {embedding.input_dim} (they must be equal)"
            )
        vocabs.append(vocab)
    return cfg, vocabs[0], vocabs[1]


# -- translating text -----------------------------------------------------------------------------


@dataclass
class Translation:
    """One translated line: the text, the subword pieces of both sides and the attention."""

    source: str
    text: str
    source_pieces: list[str]
    target_pieces: list[str]
    attention: Tensor | None  # (len(target_pieces), len(source_pieces)), or None
    score: float


class Translator:
    """A trained :class:`GNMT` with its two vocabularies and configuration.

    >>> # translator = Translator.load("runs/translate/model.lstmkit")
    >>> # translator.translate(["Ich habe keine Zeit."])[0].text
    """

    def __init__(
        self, model: GNMT | Ensemble, src: Vocab, tgt: Vocab, cfg: TranslateConfig
    ) -> None:
        self.model, self.src, self.tgt, self.cfg = model, src, tgt, cfg
        model.eval()

    @classmethod
    def load(cls, path: Any, *more: Any) -> Translator:
        """From a model file written by ``lstmkit translate train`` (one file: weights,
        configuration and both SentencePiece models). With more files, their models decode as
        one :class:`Ensemble`; all must hold the same two vocabularies, and the first file's
        configuration (decoding settings, input limits) is used."""
        first = _load_translation_model(path)
        cfg, src, tgt = _vocabs(path, first)
        if not more:
            return cls(first, src, tgt, cfg)
        models = [first]
        for other in more:
            model = _load_translation_model(other)
            assets = AssetReader(other, "translate", model.assets).assets
            for side, language in (("src_spm", "German"), ("tgt_spm", "English")):
                if assets.get(side) != first.assets[side]:
                    raise ValueError(
                        f"{other}: its {language} vocabulary differs from {path}'s; an ensemble "
                        f"needs models trained with the same vocabularies"
                    )
            _vocabs(other, model)  # the same text as the first file's, but its own embeddings
            models.append(model)
        return cls(Ensemble(models), src, tgt, cfg)

    def translate(
        self,
        lines: Sequence[str],
        beam_size: int | None = None,
        batch_size: int = 64,
        fast: bool = True,
    ) -> list[Translation]:
        """Translate ``lines`` (German); ``beam_size=1`` is greedy search. Empty lines give
        empty translations; over-long lines are cut with a warning."""
        k = self.cfg.beam_size if beam_size is None else beam_size
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"beam_size must be an integer >= 1, got {k!r}")
        for n, line in enumerate(lines):
            if not isinstance(line, str):
                raise TypeError(f"lines[{n}] must be a str, got {type(line).__name__}")
            try:
                line.encode("utf-8")
            except UnicodeEncodeError as e:  # lone surrogates: undecodable bytes of argv/stdin
                raise ValueError(
                    f"lines[{n}] is not valid UTF-8 text: character {e.start} is "
                    f"{line[e.start]!r} (an undecodable byte)"
                ) from None
        encoded = [encode_source(line, self.src, self.cfg) for line in lines]
        results: list[Translation | None] = [None] * len(lines)
        order = sorted((i for i, ids in enumerate(encoded) if ids), key=lambda i: len(encoded[i]))
        for lo in range(0, len(order), batch_size):
            idx = order[lo : lo + batch_size]
            src = pad([encoded[i] for i in idx])
            if k == 1:
                hyps = greedy_search(self.model, src, self.cfg, fast=fast)
            else:
                hyps = beam_search(self.model, src, self.cfg, k, fast=fast)
            for i, hyp in zip(idx, hyps):
                n_src = len(encoded[i])
                attn = None if hyp.attention is None else hyp.attention[:, :n_src]
                target_ids = list(hyp.tokens)
                if attn is not None and attn.shape[0] > len(target_ids):
                    target_ids = [*target_ids, EOS]
                results[i] = Translation(
                    lines[i],
                    self.tgt.decode(hyp.tokens),
                    self.src.pieces(encoded[i]),
                    self.tgt.pieces(target_ids),
                    attn,
                    hyp.score,
                )
        for i, line in enumerate(lines):
            if results[i] is None:
                results[i] = Translation(line, "", [], [], None, 0.0)
        return results  # type: ignore[return-value]
