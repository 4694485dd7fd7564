"""Losses and metrics against numbers worked out by hand (``math``), by plain torch written here,
by scikit-learn (AUC), or quoted from Keras 3 (``tests/reference/KERAS_NOTES.md``).

Keras facts used: probabilities are clipped to ``[1e-7, 1 - 1e-7]`` in float32 before the log
(the table of ``binary_crossentropy`` values in the notes); ``sum_over_batch_size`` divides the
weighted sum by the number of entries, not by the sum of the weights; a mask averages over the
valid entries only; ``"accuracy"`` is resolved from the shapes of ``y_true``/``y_pred``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit.training import losses as L
from lstmkit.training import metrics as M


def _f(t: torch.Tensor) -> float:
    return float(t.detach())


# -- binary cross-entropy -----------------------------------------------------------------------

# KERAS_NOTES.md, "binary_crossentropy (from_logits=False)": float32 values printed by Keras 3
# (stored in keras_reference.json), e.g. y = 1, p = 0 -> 16.118095 = -log(1e-7).
_REFERENCE = json.loads((Path(__file__).parent / "reference" / "keras_reference.json").read_text())
_TABLE = _REFERENCE["binary_crossentropy"][
    "binary_crossentropy(y_true, y_pred), from_logits=False, float32"
]
KERAS_BCE = [
    (float(key.split(",")[0][2:]), float(key.split(",")[1][2:]), value)
    for key, value in _TABLE.items()
]


@pytest.mark.parametrize("y, p, want", KERAS_BCE)
def test_bce_matches_keras_clipping_table(y: float, p: float, want: float) -> None:
    got = L.BinaryCrossentropy()(torch.tensor([[y]]), torch.tensor([[p]]))
    assert got.dtype == torch.float32
    assert math.isclose(_f(got), want, rel_tol=2e-6), (y, p, _f(got), want)


def test_bce_config_is_keras() -> None:
    want = _REFERENCE["binary_crossentropy"]["BinaryCrossentropy().get_config()"]
    config = L.BinaryCrossentropy().get_config()
    assert {k: config[k] for k in want} == want


def test_bce_from_logits_is_softplus_form() -> None:
    # KERAS_NOTES: logits [-50, 50, 0] with y [1, 0, 1] give [50, 50, log 2] without clipping.
    x = torch.tensor([[-50.0], [50.0], [0.0]])
    y = torch.tensor([[1.0], [0.0], [1.0]])
    per = L.BinaryCrossentropy(from_logits=True, reduction="none")(y, x)
    assert per.shape == (3,)
    torch.testing.assert_close(per, torch.tensor([50.0, 50.0, math.log(2.0)]))
    mean = L.BinaryCrossentropy(from_logits=True)(y, x)
    assert math.isclose(_f(mean), (100 + math.log(2)) / 3, rel_tol=1e-6)


def test_bce_label_smoothing_moves_targets_towards_half() -> None:
    # s = 0.2: y = 1 -> 0.9, y = 0 -> 0.1 (Keras: y (1 - s) + 0.5 s).
    got = L.BinaryCrossentropy(label_smoothing=0.2, reduction="none")(
        torch.tensor([[1.0], [0.0]]), torch.tensor([[0.8], [0.3]])
    )
    want = [
        -(0.9 * math.log(0.8) + 0.1 * math.log(0.2)),
        -(0.1 * math.log(0.3) + 0.9 * math.log(0.7)),
    ]
    torch.testing.assert_close(got, torch.tensor(want))


def test_bce_averages_over_last_axis_and_accepts_1d_labels() -> None:
    # Two labels per sample: the per-sample loss is the mean of the two entries.
    y = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[0.7, 0.4]])
    got = L.BinaryCrossentropy(reduction="none")(y, p)
    want = (-math.log(0.7) - math.log(0.6)) / 2
    assert got.shape == (1,) and math.isclose(_f(got[0]), want, rel_tol=1e-6)
    # (B,) labels against (B, 1) predictions broadcast as Keras does.
    got = L.BinaryCrossentropy()(torch.tensor([1.0, 0.0]), torch.tensor([[0.7], [0.4]]))
    assert math.isclose(_f(got), (-math.log(0.7) - math.log(0.6)) / 2, rel_tol=1e-6)


def test_bce_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 1\)"):
        L.BinaryCrossentropy()(torch.zeros(2, 3), torch.full((2, 1), 0.5))


# -- categorical / sparse ---------------------------------------------------------------------


def test_categorical_crossentropy_normalises_and_smooths() -> None:
    y = torch.tensor([[0.0, 1.0, 0.0]])
    assert math.isclose(
        _f(L.CategoricalCrossentropy()(y, torch.tensor([[0.2, 0.5, 0.3]]))),
        -math.log(0.5),
        rel_tol=1e-6,
    )
    # Unnormalised probabilities are divided by their sum first (Keras): [1, 2, 1] -> 0.5.
    assert math.isclose(
        _f(L.CategoricalCrossentropy()(y, torch.tensor([[1.0, 2.0, 1.0]]))),
        -math.log(0.5),
        rel_tol=1e-6,
    )
    logits = [1.0, 2.0, 0.5]
    log_z = math.log(sum(math.exp(v) for v in logits))
    got = L.CategoricalCrossentropy(from_logits=True)(y, torch.tensor([logits]))
    assert math.isclose(_f(got), log_z - 2.0, rel_tol=1e-6)
    # label_smoothing s = 0.3, K = 3: targets [0.1, 0.8, 0.1].
    got = L.CategoricalCrossentropy(label_smoothing=0.3)(y, torch.tensor([[0.2, 0.5, 0.3]]))
    want = -(0.1 * math.log(0.2) + 0.8 * math.log(0.5) + 0.1 * math.log(0.3))
    assert math.isclose(_f(got), want, rel_tol=1e-6)


def test_sparse_categorical_crossentropy_by_hand() -> None:
    p = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.25, 0.25]])
    want = (-math.log(0.6) - math.log(0.25)) / 2
    for labels in (torch.tensor([1, 2]), torch.tensor([[1], [2]]), torch.tensor([1.0, 2.0])):
        assert math.isclose(_f(L.SparseCategoricalCrossentropy()(labels, p)), want, rel_tol=1e-6), (
            labels
        )
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    want = -torch.log_softmax(logits, -1)[0, 2]
    got = L.SparseCategoricalCrossentropy(from_logits=True)(torch.tensor([2]), logits)
    assert math.isclose(_f(got), float(want), rel_tol=1e-6)


def test_sparse_ignore_class_averages_over_the_other_entries() -> None:
    # A (1, 4, 3) sequence; labels with id 0 ignored: the mean is over the 2 valid steps only.
    probs = torch.tensor([[[0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]])
    labels = torch.tensor([[1, 0, 2, 0]])
    got = L.SparseCategoricalCrossentropy(ignore_class=0)(labels, probs)
    want = (-math.log(0.5) - math.log(0.8)) / 2
    assert math.isclose(_f(got), want, rel_tol=1e-6)
    per = L.SparseCategoricalCrossentropy(ignore_class=0, reduction="none")(labels, probs)
    torch.testing.assert_close(
        per, torch.tensor([[-math.log(0.5), 0.0, -math.log(0.8), 0.0]]), rtol=1e-6, atol=1e-7
    )


def test_sparse_labels_out_of_range_and_wrong_shape() -> None:
    p = torch.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"\[0, 3\).*\[0, 3\]"):
        L.SparseCategoricalCrossentropy()(torch.tensor([0, 3]), p)
    with pytest.raises(ValueError, match=r"\(2,\).*\(2, 2\)"):
        L.SparseCategoricalCrossentropy()(torch.zeros(2, 2, dtype=torch.long), p)
    with pytest.raises(ValueError, match="integer class ids"):
        L.SparseCategoricalCrossentropy()(torch.tensor([0.5, 1.0]), p)


# -- regression losses ---------------------------------------------------------------------------


def test_mse_mae_huber_by_hand() -> None:
    y = torch.tensor([[0.0, 1.0], [2.0, -1.0]])
    p = torch.tensor([[0.5, 3.0], [2.0, 0.0]])
    # errors: [0.5, 2], [0, 1]
    assert math.isclose(_f(L.MeanSquaredError()(y, p)), (0.25 + 4 + 0 + 1) / 4, rel_tol=1e-6)
    assert math.isclose(_f(L.MeanAbsoluteError()(y, p)), (0.5 + 2 + 0 + 1) / 4, rel_tol=1e-6)
    # Huber δ = 1: 0.5·0.25 = 0.125; 1·(2 - 0.5) = 1.5; 0; 0.5·1 = 0.5.
    assert math.isclose(_f(L.Huber()(y, p)), (0.125 + 1.5 + 0 + 0.5) / 4, rel_tol=1e-6)
    # δ = 0.4: 0.4·(0.5 - 0.2) = 0.12; 0.4·(2 - 0.2) = 0.72; 0; 0.4·(1 - 0.2) = 0.32.
    assert math.isclose(_f(L.Huber(delta=0.4)(y, p)), (0.12 + 0.72 + 0.32) / 4, rel_tol=1e-6)
    per = L.MeanSquaredError(reduction="none")(y, p)
    torch.testing.assert_close(per, torch.tensor([(0.25 + 4) / 2, 0.5]))
    assert math.isclose(_f(L.MeanSquaredError(reduction="sum")(y, p)), 2.125 + 0.5, rel_tol=1e-6)


# -- reductions: sample weights and masks -------------------------------------------------------


def test_sample_weight_divides_by_batch_size_not_by_weights() -> None:
    # Keras's sum_over_batch_size: Σ w_i l_i / N.
    y = torch.tensor([[0.0], [0.0], [0.0]])
    p = torch.tensor([[1.0], [2.0], [3.0]])
    got = L.MeanSquaredError()(y, p, sample_weight=torch.tensor([1.0, 0.0, 2.0]))
    assert math.isclose(_f(got), (1 * 1 + 0 * 4 + 2 * 9) / 3, rel_tol=1e-6)
    # Weights of shape (B, 1) are accepted too.
    got = L.MeanSquaredError()(y, p, sample_weight=np.array([[1.0], [0.0], [2.0]]))
    assert math.isclose(_f(got), 19 / 3, rel_tol=1e-6)


def test_mask_on_predictions_averages_over_valid_steps() -> None:
    # A (2, 3, 1) sequence output with the Keras mask travelling on y_pred.
    y = torch.zeros(2, 3, 1)
    p = torch.tensor([[[1.0], [2.0], [3.0]], [[4.0], [5.0], [6.0]]])
    p._keras_mask = torch.tensor([[True, True, False], [True, False, False]])
    got = L.MeanSquaredError()(y, p)
    assert math.isclose(_f(got), (1 + 4 + 16) / 3, rel_tol=1e-6)
    # With sample weights too: Σ w m l / Σ m.
    got = L.MeanSquaredError()(y, p, sample_weight=torch.tensor([1.0, 3.0]))
    assert math.isclose(_f(got), (1 + 4 + 3 * 16) / 3, rel_tol=1e-6)
    # An explicit mask argument wins over nothing travelling.
    q = p.detach().clone()
    got = L.MeanAbsoluteError()(y, q, mask=torch.tensor([[False, False, True], [True, True, True]]))
    assert math.isclose(_f(got), (3 + 4 + 5 + 6) / 4, rel_tol=1e-6)


def test_loss_lookup_and_unknown_names() -> None:
    assert isinstance(L.get("mse"), L.MeanSquaredError)
    assert isinstance(L.get("huber"), L.Huber)
    assert isinstance(L.get("sparse_categorical_crossentropy"), L.SparseCategoricalCrossentropy)
    obj = L.BinaryCrossentropy(from_logits=True)
    assert L.get(obj) is obj
    again = L.get(L.serialize(L.BinaryCrossentropy(label_smoothing=0.1)))
    assert isinstance(again, L.BinaryCrossentropy) and again.label_smoothing == 0.1
    with pytest.raises(
        ValueError, match=r"unknown loss 'binary_crossentropi'.*binary_crossentropy"
    ):
        L.get("binary_crossentropi")
    with pytest.raises(ValueError, match="reduction"):
        L.MeanSquaredError(reduction="average")


# -- metrics -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "y_shape, p_shape, kind",
    [
        ((4, 1), (4, 1), M.BinaryAccuracy),
        ((4,), (4, 1), M.BinaryAccuracy),
        ((4,), (4, 3), M.SparseCategoricalAccuracy),
        ((4, 1), (4, 3), M.SparseCategoricalAccuracy),
        ((4, 3), (4, 3), M.CategoricalAccuracy),
        ((4, 5), (4, 5, 3), M.SparseCategoricalAccuracy),
    ],
)
def test_accuracy_resolves_from_shapes_as_keras(y_shape, p_shape, kind) -> None:
    m = M.get("accuracy", None, torch.zeros(y_shape), torch.zeros(p_shape))
    assert type(m) is kind and m.name == "accuracy"
    assert M.get("acc", None, torch.zeros(y_shape), torch.zeros(p_shape)).name == "acc"


def test_accuracy_for_multilabel_bce_is_categorical_as_keras3() -> None:
    # Keras 3 (trainers/compile_utils.get_metric) looks at shapes only: (B, 3) vs (B, 3) gives
    # categorical accuracy even with a binary cross-entropy loss.
    m = M.get("accuracy", "binary_crossentropy", torch.zeros(4, 3), torch.zeros(4, 3))
    assert type(m) is M.CategoricalAccuracy


def test_accuracies_by_hand() -> None:
    b = M.BinaryAccuracy()
    b.update_state(
        torch.tensor([[1.0], [0.0], [1.0], [0.0]]), torch.tensor([[0.9], [0.6], [0.4], [0.1]])
    )
    assert _f(b.result()) == 0.5
    b.update_state(torch.tensor([1.0, 1.0]), torch.tensor([[0.7], [0.8]]))  # streaming
    assert math.isclose(_f(b.result()), 4 / 6)
    b.reset_state()
    assert _f(b.result()) == 0.0
    t = M.BinaryAccuracy(threshold=0.95)
    t.update_state(torch.tensor([[1.0]]), torch.tensor([[0.9]]))
    assert _f(t.result()) == 0.0
    c = M.CategoricalAccuracy()
    c.update_state(torch.eye(3), torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.1, 0.2, 0.7]]))
    assert math.isclose(_f(c.result()), 2 / 3)
    s = M.SparseCategoricalAccuracy()
    s.update_state(torch.tensor([0, 1, 2, 2]), torch.tensor([[0.5, 0.3, 0.2]] * 3 + [[0, 0, 1.0]]))
    assert math.isclose(_f(s.result()), 2 / 4)
    # Weighted: Σ w·hit / Σ w.
    s.reset_state()
    s.update_state(
        torch.tensor([0, 1]), torch.tensor([[0.9, 0.1], [0.9, 0.1]]), torch.tensor([3.0, 1.0])
    )
    assert math.isclose(_f(s.result()), 3 / 4)


def test_accuracy_honours_masks_on_predictions() -> None:
    p = torch.tensor([[[0.9, 0.1], [0.9, 0.1], [0.1, 0.9]]])
    p._keras_mask = torch.tensor([[True, False, True]])
    s = M.SparseCategoricalAccuracy()
    s.update_state(torch.tensor([[0, 1, 0]]), p)  # valid steps: hit, (skip), miss
    assert _f(s.result()) == 0.5


def test_precision_recall_by_hand() -> None:
    y = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    p = torch.tensor([0.9, 0.8, 0.2, 0.7, 0.1, 0.3, 0.6])
    # threshold 0.5: predicted positive at 0, 1, 3, 6 -> tp = 3 (0, 1, 6), fp = 1 (3), fn = 1 (2)
    prec, rec = M.Precision(), M.Recall()
    prec.update_state(y, p)
    rec.update_state(y, p)
    assert math.isclose(_f(prec.result()), 3 / 4)
    assert math.isclose(_f(rec.result()), 3 / 4)
    # threshold 0.75: predicted positive at 0, 1 -> tp = 2, fp = 0, fn = 2
    prec, rec = M.Precision(thresholds=0.75), M.Recall(thresholds=0.75)
    prec.update_state(y.reshape(-1, 1), p.reshape(-1, 1))
    rec.update_state(y.reshape(-1, 1), p.reshape(-1, 1))
    assert _f(prec.result()) == 1.0 and _f(rec.result()) == 0.5
    # Nothing predicted positive: 0, not NaN.
    empty = M.Precision()
    empty.update_state(torch.tensor([1.0]), torch.tensor([0.1]))
    assert _f(empty.result()) == 0.0


def test_auc_matches_sklearn_on_random_data() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=600)
    scores = 1 / (1 + np.exp(-(rng.normal(size=600) + 1.2 * y)))  # informative but noisy
    auc = M.AUC()
    for lo in range(0, 600, 128):  # streamed in batches
        auc.update_state(torch.tensor(y[lo : lo + 128]), torch.tensor(scores[lo : lo + 128]))
    want = sklearn_metrics.roc_auc_score(y, scores)
    assert 0.7 < want < 0.95
    assert abs(_f(auc.result()) - want) < 1e-2
    # A perfect ranking gives 1, a reversed one 0.
    perfect = M.AUC()
    perfect.update_state(torch.tensor([0, 0, 1, 1]), torch.tensor([0.1, 0.2, 0.8, 0.9]))
    assert abs(_f(perfect.result()) - 1.0) < 1e-6
    reverse = M.AUC()
    reverse.update_state(torch.tensor([1, 1, 0, 0]), torch.tensor([0.1, 0.2, 0.8, 0.9]))
    assert abs(_f(reverse.result())) < 1e-6


def test_top_k_by_hand() -> None:
    p = torch.tensor([[0.1, 0.5, 0.3, 0.1], [0.4, 0.3, 0.2, 0.1], [0.05, 0.05, 0.1, 0.8]])
    labels = torch.tensor([2, 3, 3])  # ranks 2, 4, 1
    s = M.SparseTopKCategoricalAccuracy(k=2)
    s.update_state(labels, p)
    assert math.isclose(_f(s.result()), 2 / 3)
    c = M.TopKCategoricalAccuracy(k=1)
    c.update_state(torch.nn.functional.one_hot(labels, 4).float(), p)
    assert math.isclose(_f(c.result()), 1 / 3)
    five = M.SparseTopKCategoricalAccuracy()  # default k = 5 > classes: always a hit
    five.update_state(labels, p)
    assert _f(five.result()) == 1.0


def test_perplexity_is_exp_of_mean_token_cross_entropy() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.randint(1, 7, (2, 5))
    labels[1, 3:] = 0  # padding
    nll = torch.nn.functional.cross_entropy(
        logits.reshape(-1, 7), labels.reshape(-1), reduction="none"
    )
    valid = (labels.reshape(-1) != 0).float()
    want = math.exp(float((nll * valid).sum() / valid.sum()))
    ppl = M.Perplexity(from_logits=True, mask_token_id=0)
    ppl.update_state(labels, logits)
    assert math.isclose(_f(ppl.result()), want, rel_tol=1e-5)
    all_tokens = M.Perplexity(from_logits=True)
    all_tokens.update_state(labels, logits)
    assert math.isclose(_f(all_tokens.result()), math.exp(float(nll.mean())), rel_tol=1e-5)


def test_metric_lookup_and_unknown_names() -> None:
    assert isinstance(M.get("auc"), M.AUC)
    assert isinstance(M.get("precision"), M.Precision)
    with pytest.raises(ValueError, match=r"unknown metric 'acuracy'.*'accuracy'"):
        M.get("acuracy")
    again = M.get(M.serialize(M.AUC(num_thresholds=50)))
    assert isinstance(again, M.AUC) and again.num_thresholds == 50
