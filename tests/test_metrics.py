"""Each metric against a case computed by hand, and each bad input."""

import numpy as np
import pytest
from scipy import special
from sklearn.metrics import accuracy_score, f1_score

from textclf_utils import metrics

Y_TRUE = [0, 0, 1, 1, 1]
Y_PRED = [0, 1, 1, 1, 0]


def test_summary_matches_the_hand_computed_case():
    table = metrics.classification_summary(Y_TRUE, Y_PRED, ["neg", "pos"])
    # neg: TP 1, FP 1, FN 1 -> P = R = F1 = 1/2; pos: TP 2, FP 1, FN 1 -> 2/3 each
    assert table.loc["neg", ["precision", "recall", "f1"]].tolist() == pytest.approx([0.5] * 3)
    assert table.loc["pos", ["precision", "recall", "f1"]].tolist() == pytest.approx([2 / 3] * 3)
    assert table.loc["macro avg", "f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert table.loc["weighted avg", "f1"] == pytest.approx((2 * 0.5 + 3 * 2 / 3) / 5)
    assert table.loc["micro avg", "f1"] == pytest.approx(0.6) == table.attrs["accuracy"]
    assert table.loc["neg", "support"] == 2 and table.loc["pos", "support"] == 3


def test_summary_with_probabilities_adds_threshold_free_scores():
    prob = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7], [0.65, 0.35]])
    table = metrics.classification_summary(Y_TRUE, prob.argmax(1), ["neg", "pos"], y_prob=prob)
    # positives scored 0.8, 0.7, 0.35; negatives 0.1, 0.4: 5 of the 6 pairs ordered correctly
    assert table.loc["pos", "roc_auc"] == pytest.approx(5 / 6)
    assert table.loc["neg", "roc_auc"] == pytest.approx(5 / 6)


@pytest.mark.parametrize("normalize", ["rows", "True", 1])
def test_confusion_counts_refuse_an_unknown_normalisation(normalize):
    with pytest.raises(ValueError, match="normalize must be None, 'true' .* got"):
        metrics.confusion_counts([0, 1], [0, 1], 2, normalize=normalize)
    for known in ("pred", "all"):
        assert metrics.confusion_counts([0, 1], [0, 1], 2, normalize=known).sum() == (2.0 if known == "pred" else 1.0)


def test_confusion_counts_keep_absent_labels():
    counts = metrics.confusion_counts([0, 0, 1], [0, 1, 1], num_labels=3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert metrics.confusion_counts([0, 0, 1], [0, 1, 1], 3, normalize="true")[0].tolist() == [0.5, 0.5, 0.0]


def test_ece_of_the_hand_computed_case():
    prob = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    y = [0, 1, 1, 1]
    # 10 bins: confidences 0.9 (right), 0.8 (wrong), 0.7 and 0.6 (right): gaps 0.1, 0.8, 0.3, 0.4
    assert metrics.expected_calibration_error(y, prob, n_bins=10) == pytest.approx(0.4)
    # one bin: mean confidence 0.75, accuracy 0.75
    assert metrics.expected_calibration_error(y, prob, n_bins=1) == pytest.approx(0.0)


@pytest.mark.parametrize("temperature", ["2", 0, -1.0, float("inf"), True, None])
def test_softmax_with_temperature_needs_a_positive_finite_number(temperature):
    with pytest.raises(ValueError, match=rf"temperature must be a positive finite number, got {temperature!r}"):
        metrics.softmax_with_temperature(np.zeros((1, 2)), temperature)


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20_000, 3)) * 2
    y = np.array([rng.choice(3, p=p) for p in special.softmax(z, axis=1)])
    t = metrics.fit_temperature(3 * z, y)  # logits three times too sharp
    assert t == pytest.approx(3.0, rel=0.05)
    over = special.softmax(3 * z, axis=1)
    fixed = metrics.softmax_with_temperature(3 * z, t)
    assert (fixed.argmax(1) == over.argmax(1)).all()
    assert metrics.expected_calibration_error(y, fixed) < metrics.expected_calibration_error(y, over) / 3


def test_mcnemar_exact_p_value():
    y = np.zeros(20, dtype=int)
    a = np.array([0] * 8 + [1] * 2 + [0] * 10)
    b = np.array([1] * 8 + [0] * 2 + [0] * 10)
    result = metrics.mcnemar_test(y, a, b)
    assert (result.only_a_correct, result.only_b_correct) == (8, 2)
    assert result.p_value == pytest.approx(2 * (45 + 10 + 1) / 1024)  # two-sided Binomial(10, 1/2)
    assert metrics.mcnemar_test(y, a, a).p_value == 1.0


def test_bootstrap_interval_is_close_to_the_normal_approximation():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    pred = np.where(rng.random(1000) < 0.8, y, 1 - y)
    interval = metrics.bootstrap_interval(accuracy_score, y, pred, n_resamples=1000)
    acc = accuracy_score(y, pred)
    assert interval.low < acc < interval.high and interval.estimate == acc
    assert interval.half_width == pytest.approx(1.96 * np.sqrt(acc * (1 - acc) / 1000), rel=0.2)


def test_paired_difference_of_a_model_with_itself_is_zero_and_of_a_better_one_positive():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 400)
    good = np.where(rng.random(400) < 0.9, y, 1 - y)
    poor = np.where(rng.random(400) < 0.6, y, 1 - y)
    same = metrics.paired_bootstrap_difference(accuracy_score, y, good, good, n_resamples=200)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    better = metrics.paired_bootstrap_difference(lambda t, p: f1_score(t, p, average="macro"), y, good, poor,
                                                 n_resamples=300)
    assert better.low > 0


@pytest.mark.parametrize("call, message", [
    (lambda: metrics.classification_summary([0, 1], [0], ["a", "b"]), "same length"),
    (lambda: metrics.classification_summary([0, 2], [0, 1], ["a", "b"]), r"outside the label set 0\.\.1"),
    (lambda: metrics.classification_summary([0, 1], [0, 1], ["a", "b"], y_prob=[[1, 0]]), r"shape \(examples, classes\)"),
    (lambda: metrics.classification_summary([0, 1], [0, 1], ["a", "b"], y_prob=[[2.0, 1.0], [0.5, 0.5]]), "logits"),
    (lambda: metrics.expected_calibration_error([0, 1], [[0.5, 0.5]]), r"\(2, 2\)"),
    (lambda: metrics.softmax_with_temperature([[1.0, 2.0]], 0.0), "positive"),
    (lambda: metrics.mcnemar_test([0, 1], [0, 1], [0]), "equal length"),
    (lambda: metrics.mcnemar_test([], [], []), "no examples"),
    (lambda: metrics.fit_temperature([[1.0, 2.0]], [0, 1]), "same length"),
    (lambda: metrics.fit_temperature([[1.0, -np.inf], [0.0, 1.0]], [0, 1]), "finite"),
    (lambda: metrics.softmax_with_temperature([1.0, 2.0], 2.0), r"shape \(examples, classes\)"),
])
def test_bad_input_is_refused_with_a_clear_message(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------------------------------
# Edge cases just past each limit


@pytest.mark.parametrize("row, ok", [
    ([0.5, 0.5], True), ([0.50004, 0.5], True), ([0.5002, 0.5], False), ([0.6, 0.6], False),
    ([1.2, -0.2], False), ([np.nan, 1.0], False),
])
def test_probability_rows_must_sum_to_one(row, ok):
    prob = [[0.3, 0.7], row]
    if ok:
        assert metrics.check_probabilities(prob, 2, 2).shape == (2, 2)
    else:
        with pytest.raises(ValueError, match="row 1 sums to"):
            metrics.check_probabilities(prob, 2, 2)


def test_reliability_table_bin_edges_and_counts():
    prob = np.array([[0.45, 0.55], [0.4, 0.6], [0.25, 0.75], [0.05, 0.95], [0.0, 1.0]])
    table = metrics.reliability_table([1, 0, 1, 0, 1], prob, n_bins=5)
    assert table["low"].tolist() == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert table["high"].tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    # 0.55 in [0.4, 0.6); 0.6 and 0.75 in [0.6, 0.8); 0.95 and 1.0 (the top edge) in the last bin
    assert table["count"].tolist() == [0, 0, 1, 2, 2]
    assert table["confidence"].tolist()[2:] == pytest.approx([0.55, 0.675, 0.975])
    assert table["accuracy"].tolist()[2:] == pytest.approx([1.0, 0.5, 0.5])
    assert np.isnan(table["confidence"][0]) and np.isnan(table["accuracy"][1])


def test_summary_of_a_class_never_predicted_is_zero_not_an_error():
    table = metrics.classification_summary([0, 1, 2, 2], [0, 1, 1, 0], ["a", "b", "c"])
    assert table.loc["c", ["precision", "recall", "f1", "support"]].tolist() == [0.0, 0.0, 0.0, 2]
    assert table.loc["b", "precision"] == 0.5 and table.loc["b", "recall"] == 1.0
    assert table.loc["macro avg", "precision"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)


@pytest.mark.parametrize("call, message", [
    (lambda: metrics.softmax_with_temperature([[1.0, 2.0]], float("nan")), "positive finite"),
    (lambda: metrics.softmax_with_temperature([[1.0, 2.0]], float("inf")), "positive finite"),
    (lambda: metrics.reliability_table([0], [[0.5, 0.5]], n_bins=2.5), "n_bins must be a positive integer"),
    (lambda: metrics.reliability_table([0], [[0.5, 0.5]], n_bins=0), "n_bins must be a positive integer"),
    (lambda: metrics.bootstrap_interval(accuracy_score, [0, 1], [0, 1], n_resamples=0), "n_resamples"),
    (lambda: metrics.bootstrap_interval(accuracy_score, [0, 1], [0, 1], confidence=95), r"confidence must be"),
    (lambda: metrics.paired_bootstrap_difference(accuracy_score, [0, 1], [0, 1], [1, 1], confidence=1.0),
     "confidence must be"),
    (lambda: metrics.classification_summary([0, 1], [0.0, 1.0], ["a", "b"]), "integer label ids"),
])
def test_more_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("y_true", [[], [[0, 1]], [[0], [1]]])
def test_labels_must_be_a_non_empty_flat_sequence(y_true):
    with pytest.raises(ValueError, match="non-empty 1-D sequence"):
        metrics.check_labels(y_true, None, 2)


def test_bootstrap_seed_mean_averages_seeds_and_pairs_the_difference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    good = np.stack([np.where(rng.random(300) < 0.9, y, 1 - y) for _ in range(3)])
    poor = np.stack([np.where(rng.random(300) < 0.6, y, 1 - y) for _ in range(3)])
    mean = metrics.bootstrap_seed_mean(accuracy_score, y, good, n_resamples=300)
    assert mean.estimate == pytest.approx(np.mean([accuracy_score(y, g) for g in good]))
    assert mean.low < mean.estimate < mean.high < 1.0
    gap = metrics.bootstrap_seed_mean(accuracy_score, y, good, baseline=poor, n_resamples=300)
    assert gap.estimate == pytest.approx(mean.estimate - np.mean([accuracy_score(y, p) for p in poor]))
    assert 0 < gap.low < gap.estimate < gap.high
    none = metrics.bootstrap_seed_mean(accuracy_score, y, good, baseline=good, n_resamples=50)
    assert none.estimate == none.low == none.high == 0.0  # paired: identical models never differ
    single = metrics.bootstrap_seed_mean(accuracy_score, y, good[0], n_resamples=50)  # 1-D = one seed
    assert single.estimate == accuracy_score(y, good[0])
    with pytest.raises(ValueError, match="seeds"):
        metrics.bootstrap_seed_mean(accuracy_score, y, good[:, :10])


def test_bootstrap_seed_mean_resamples_whole_groups():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0] * 10)
    pred = np.array([1, 1, 1, 1, 1, 1, 1, 1] * 5 + [0, 0, 0, 0, 0, 0, 0, 0] * 5)  # right on whole groups
    groups = np.repeat(np.arange(20), 4)  # 4 identical examples per group
    rows = metrics.bootstrap_seed_mean(accuracy_score, y, pred, n_resamples=400)
    clusters = metrics.bootstrap_seed_mean(accuracy_score, y, pred, n_resamples=400, groups=groups)
    assert rows.estimate == clusters.estimate == 0.5
    assert clusters.high - clusters.low > 1.5 * (rows.high - rows.low)  # 20 groups, not 80 examples
    with pytest.raises(ValueError, match="one id per example"):
        metrics.bootstrap_seed_mean(accuracy_score, y, pred, groups=groups[:5])


# ---------------------------------------------------------------------------------------------
# Cases found by the sampled mutation run (scripts/mutation_sample.py, tests/MUTATION.md)


def test_summary_scores_a_class_with_one_example_and_weights_the_averages_by_support():
    prob = np.array([[0.7, 0.2, 0.1, 0], [0.5, 0.4, 0.1, 0], [0.2, 0.7, 0.1, 0], [0.3, 0.3, 0.4, 0],
                     [0.1, 0.3, 0.6, 0]])
    table = metrics.classification_summary([0, 0, 1, 1, 2], prob.argmax(1), ["a", "b", "c", "d"], y_prob=prob)
    # class b: positives scored 0.7 and 0.3, negatives 0.2, 0.4, 0.3: (3 + 1 + 1/2) of 6 pairs in order;
    # AP: 0.7 -> P 1, R 1/2; 0.3 -> P 2/4, R 1. Class c has one example, ranked first: 1, not NaN.
    # Class d has none: NaN, left out of the averages.
    assert table["roc_auc"].tolist()[:4] == pytest.approx([1.0, 0.75, 1.0, np.nan], nan_ok=True)
    assert table["average_precision"].tolist()[:4] == pytest.approx([1.0, 0.75, 1.0, np.nan], nan_ok=True)
    for column in ("roc_auc", "average_precision"):
        assert table.loc["macro avg", column] == pytest.approx(2.75 / 3)
        assert table.loc["weighted avg", column] == pytest.approx((2 * 1.0 + 2 * 0.75 + 1 * 1.0) / 5)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # one resample has no spread to report
def test_bootstrap_limits_one_resample_and_two_examples():
    assert metrics.bootstrap_interval(accuracy_score, [0, 1], [0, 1], n_resamples=1).estimate == 1.0
    with pytest.raises(ValueError, match="equal length ≥ 2"):
        metrics.bootstrap_interval(accuracy_score, [1], [1])


@pytest.mark.parametrize("call, message", [
    (lambda: metrics.paired_bootstrap_difference(accuracy_score, [0, 1], [0, 1], [0]), "equal length"),
    (lambda: metrics.paired_bootstrap_difference(accuracy_score, [[0, 1]], [[0, 1]], [[0, 1]]), "1-D"),
    (lambda: metrics.reliability_table([0, 1], [0.9, 0.8]), r"y_prob must have shape \(examples, classes\)"),
])
def test_shapes_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call()
