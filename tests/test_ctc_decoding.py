"""CTC decoding and error rates: hand-made cases, brute force over all paths, jiwer's rates."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lstmkit.apps.speech.decoding import ctc_greedy_decode, ctc_prefix_beam_search, error_rates

BLANK, A, B, C = 0, 1, 2, 3


def one_hot_log_probs(path: list[int], classes: int, peak: float = 0.9) -> torch.Tensor:
    """(T, C) log-probabilities whose argmax per frame is ``path``."""
    probs = torch.full((len(path), classes), (1 - peak) / (classes - 1))
    probs[torch.arange(len(path)), torch.tensor(path)] = peak
    return probs.log()


def brute_force(log_probs: np.ndarray, blank: int = 0) -> dict[tuple[int, ...], float]:
    """log P(labels) for every label sequence: log-sum-exp over all C**T paths."""
    T, C = log_probs.shape
    total: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(C), repeat=T):
        score = sum(log_probs[t, c] for t, c in enumerate(path))
        labels = tuple(c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1]))
        total[labels] = np.logaddexp(total.get(labels, -math.inf), score)
    return total


def random_log_probs(T: int, C: int, seed: int) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(scale=2.0, size=(T, C))
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


# ----------------------------------------------------------------------------- greedy


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ([A, A, BLANK, A], [A, A]),  # a blank separates two a's
        ([A, A, A], [A]),  # repeats collapse
        ([BLANK, BLANK], []),
        ([A, B, B, BLANK, B, C, C], [A, B, B, C]),
        ([BLANK, A, BLANK, BLANK, A, A, B], [A, A, B]),
    ],
)
def test_greedy_collapses_repeats_then_drops_blanks(path, expected):
    assert ctc_greedy_decode(one_hot_log_probs(path, 4)) == [expected]


def test_greedy_uses_the_given_blank_index_and_lengths():
    # Class 3 is the blank here; class 0 is an ordinary label.
    batch = torch.stack(
        [one_hot_log_probs([0, 3, 0, 1, 1], 4), one_hot_log_probs([2, 2, 3, 2, 0], 4)]
    )  # (B=2, T=5, C=4)
    assert ctc_greedy_decode(batch, blank=3) == [[0, 0, 1], [2, 2, 0]]
    assert ctc_greedy_decode(batch, lengths=[2, 4], blank=3) == [[0], [2, 2]]
    assert ctc_greedy_decode(batch.numpy(), lengths=torch.tensor([5, 0]), blank=3) == [
        [0, 0, 1],
        [],
    ]


def test_greedy_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        ctc_greedy_decode(torch.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match="lengths"):
        ctc_greedy_decode(torch.zeros(2, 3, 4), lengths=[3, 4])
    with pytest.raises(ValueError, match="blank"):
        ctc_greedy_decode(torch.zeros(3, 4), blank=4)
    with pytest.raises(TypeError, match="log_probs"):
        ctc_greedy_decode([[0.0, 1.0]])


# ----------------------------------------------------------------------------- beam search


def test_beam_sums_paths_where_greedy_takes_the_best_one():
    # Two frames, P(blank) = 0.6, P(a) = 0.4: best path "_ _" → [] (0.36), yet [a] has
    # 0.4·0.6 + 0.6·0.4 + 0.4·0.4 = 0.64.
    log_probs = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).log()
    assert ctc_greedy_decode(log_probs) == [[]]
    (best, best_score), (second, second_score) = ctc_prefix_beam_search(log_probs, beam_size=2)
    assert best == [1] and best_score == pytest.approx(math.log(0.64))
    assert second == [] and second_score == pytest.approx(math.log(0.36))


def test_beam_of_one_is_not_best_path_on_flat_frames():
    # a .6 / _ .4, then _ .6 / a .4, then a .6 / _ .4: the best path is "a _ a" → [a, a], but
    # after frame 3 the prefix [a] has .384 against [a, a]'s .216, so a beam of one keeps [a].
    log_probs = torch.tensor([[0.4, 0.6], [0.6, 0.4], [0.4, 0.6]]).log()
    assert ctc_greedy_decode(log_probs) == [[1, 1]]
    [(labels, score)] = ctc_prefix_beam_search(log_probs, beam_size=1)
    assert labels == [1] and score == pytest.approx(math.log(0.384))


@settings(max_examples=60, deadline=None)
@given(T=st.integers(1, 5), C=st.integers(2, 4), seed=st.integers(0, 2**32 - 1))
def test_full_beam_scores_equal_the_sum_over_all_alignments(T, C, seed):
    log_probs = random_log_probs(T, C, seed)
    exact = brute_force(log_probs)
    beams = ctc_prefix_beam_search(torch.from_numpy(log_probs), beam_size=len(exact) + 1)
    assert {tuple(labels) for labels, _ in beams} == set(exact)
    for labels, score in beams:
        assert score == pytest.approx(exact[tuple(labels)], abs=1e-9)
    assert [s for _, s in beams] == sorted((s for _, s in beams), reverse=True)
    best_labels, best_score = beams[0]
    assert best_score == pytest.approx(max(exact.values()), abs=1e-9)
    assert exact[tuple(best_labels)] == pytest.approx(best_score, abs=1e-9)
    assert np.logaddexp.reduce([s for _, s in beams]) == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 6), C=st.integers(2, 4), blank=st.integers(0, 3), seed=st.integers(0, 99))
def test_narrow_beam_keeps_the_best_prefix_on_tiny_inputs(T, C, blank, seed):
    blank = blank % C
    log_probs = random_log_probs(T, C, seed)
    exact = brute_force(log_probs, blank=blank)
    beams = ctc_prefix_beam_search(log_probs, beam_size=3, blank=blank)
    assert len(beams) <= 3
    for labels, score in beams:  # a pruned search only loses paths, never invents them
        assert score <= exact[tuple(labels)] + 1e-9


@settings(max_examples=100, deadline=None)
@given(
    path=st.lists(st.integers(0, 4), min_size=1, max_size=15),
    noise_seed=st.integers(0, 2**16),
)
def test_beam_of_one_equals_greedy_when_one_path_dominates(path, noise_seed):
    # Beam 1 and best path agree when each frame's best class has probability ≥ 0.999:
    # then every other path is too improbable to outweigh it. (With flatter frames they
    # differ, e.g. a .6 / _ .4, _ .6 / a .4, a .6 / _ .4: greedy "a a", beam 1 "a".)
    rest = np.random.default_rng(noise_seed).dirichlet(np.ones(4), size=len(path)) * 1e-3
    probs = np.insert(rest, 0, 0.0, axis=1)  # (T, 5): room for the dominant class
    for t, c in enumerate(path):
        probs[t] = np.roll(probs[t], c)
        probs[t, c] = 1 - 1e-3
    log_probs = torch.from_numpy(np.log(probs))
    (labels, _), *_ = ctc_prefix_beam_search(log_probs, beam_size=1)
    assert [labels] == ctc_greedy_decode(log_probs)


def test_beam_search_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        ctc_prefix_beam_search(torch.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="beam_size"):
        ctc_prefix_beam_search(torch.zeros(3, 4), beam_size=0)
    with pytest.raises(ValueError, match="blank"):
        ctc_prefix_beam_search(torch.zeros(3, 4), blank=-1)


# ----------------------------------------------------------------------------- error rates


def test_error_rates_match_hand_counts():
    refs = ["one two three", "four five", "seven"]
    hyps = ["one three", "four  five six ", "seven"]
    rates = error_rates(refs, hyps)
    # Words: "two" deleted, "six" inserted; 6 reference words.
    assert rates["wer"] == pytest.approx(2 / 6)
    # Characters (spaces count): "two " deleted (4), " six" inserted (4); 13 + 9 + 5 = 27.
    assert rates["cer"] == pytest.approx(8 / 27)
    assert rates["ser"] == pytest.approx(2 / 3)


def test_error_rates_substitution_and_perfect():
    assert error_rates(["one two"], ["one too"]) == pytest.approx(
        {"wer": 1 / 2, "cer": 1 / 7, "ser": 1.0}
    )
    assert error_rates(["oh oh seven"], ["oh oh seven"]) == {"wer": 0.0, "cer": 0.0, "ser": 0.0}
    assert error_rates(["one two"], [""]) == pytest.approx({"wer": 1.0, "cer": 1.0, "ser": 1.0})


def test_error_rates_reject_bad_input():
    with pytest.raises(ValueError, match="refs and hyps"):
        error_rates(["one"], ["one", "two"])
    with pytest.raises(ValueError, match="empty"):
        error_rates(["one", " "], ["one", "two"])
    with pytest.raises(TypeError, match="refs"):
        error_rates("one", "one")
