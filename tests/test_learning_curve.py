"""textclf_utils.learning_curve: selection on validation, intervals and paired gaps on one test set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textclf_utils.learning_curve import (
    CurvePoint,
    LearningCurve,
    linear_probe,
    mean_pooled_features,
    nested_subsets,
    tfidf_logistic_regression,
)

POSITIVE = ["great fun", "a wonderful film", "moving and funny", "superb acting", "a delight", "loved it"]
NEGATIVE = ["dull and slow", "a boring mess", "awful script", "tedious", "a waste of time", "hated it"]


def test_tfidf_learns_words_and_reports_the_chosen_c():
    texts = POSITIVE + NEGATIVE
    labels = [1] * 6 + [0] * 6
    predictions, accuracy, choice = tfidf_logistic_regression(texts, labels, texts, labels,
                                                              ["wonderful acting", "boring script"], c_grid=(1.0, 10.0))
    assert predictions.tolist() == [1, 0] and accuracy == 1.0 and choice["C"] in (1.0, 10.0)
    with pytest.raises(ValueError, match="c_grid"):
        tfidf_logistic_regression(texts, labels, texts, labels, texts, c_grid=())


def test_linear_probe_on_separable_features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)); y = (x[:, 0] > 0).astype(int)
    predictions, accuracy, _ = linear_probe(x[:100], y[:100], x[100:150], y[100:150], x[150:])
    assert accuracy > 0.9 and (predictions == y[150:]).mean() > 0.9


def test_nested_subsets_grow_and_keep_the_label_shares():
    labels = np.array([0] * 400 + [1] * 600)
    subsets = nested_subsets(labels, [100, 500, 50])
    assert list(subsets) == [50, 100, 500]
    assert set(subsets[50]) <= set(subsets[100]) <= set(subsets[500])
    assert [len(s) for s in subsets.values()] == [50, 100, 500]
    assert labels[subsets[500]].mean() == pytest.approx(0.6, abs=0.01)
    with pytest.raises(ValueError, match="at most"):
        nested_subsets(labels, [2000])


def test_curve_intervals_gaps_and_record():
    labels = np.array([0, 1] * 100)
    curve = LearningCurve(labels)
    curve.add(CurvePoint("good", 10, 0.9, labels.copy(), {"lr": 1e-4}))
    wrong = labels.copy(); wrong[:60] = 1 - wrong[:60]
    curve.add(CurvePoint("poor", 10, 0.6, wrong))
    assert curve.accuracy("good", 10).estimate == 1.0
    gap = curve.gap("good", "poor", 10)
    assert gap.estimate == pytest.approx(0.3) and gap.low > 0.2
    assert curve.to_record() == {"sizes": [10], "good": [1.0], "poor": [0.7]}
    table = curve.table(n_resamples=200)
    assert list(table["method"]) == ["good", "poor"] and "lr=0.0001" in table["chosen on validation"][0]
    with pytest.raises(ValueError, match="test predictions"):
        curve.add(CurvePoint("short", 10, 0.5, labels[:5]))
    with pytest.raises(KeyError, match="No point"):
        curve.gap("good", "poor", 20)


def test_mean_pooled_features_ignore_padding_and_keep_order(tokenizer):
    from textclf_utils.encoder import Encoder, EncoderConfig

    torch.manual_seed(0)
    encoder = Encoder(EncoderConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    texts = ["a much longer sentence than the other one", "short"]
    together = mean_pooled_features(encoder, tokenizer, texts, max_length=32, batch_size=2)
    alone = mean_pooled_features(encoder, tokenizer, texts[1:], max_length=32)
    assert together.shape == (2, 32)
    np.testing.assert_allclose(together[1], alone[0], atol=1e-5)


def test_epochs_for():
    from textclf_utils.learning_curve import epochs_for

    assert epochs_for(250, 1000, 20) == 4 and epochs_for(4000, 1000, 20) == 1 and epochs_for(10, 1000, 20) == 20
    with pytest.raises(ValueError, match="positive"):
        epochs_for(0, 10, 2)


def test_train_with_selection_keeps_the_best_learning_rate(tokenizer, one_thread):
    from datasets import Dataset

    from textclf_utils.encoder import EncoderConfig, EncoderForSequenceClassification
    from textclf_utils.learning_curve import train_with_selection

    data = Dataset.from_dict({"text": (POSITIVE + NEGATIVE) * 4, "label": ([1] * 6 + [0] * 6) * 4})
    small = EncoderConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    chosen = train_with_selection(lambda: EncoderForSequenceClassification(small, 2, pooling="mean"), tokenizer,
                                  data, data, [1e-6, 3e-3], epochs=3, batch_size=8, max_length=16)
    assert set(chosen.validation_by_learning_rate) == {1e-6, 3e-3}
    assert chosen.validation_accuracy == max(chosen.validation_by_learning_rate.values())
    assert chosen.learning_rate == 3e-3 and chosen.validation_accuracy > 0.9


@pytest.mark.parametrize("accuracy_by_c, chosen", [
    ({0.1: 0.6, 1.0: 0.9, 3.0: 0.95, 10.0: 0.7}, 3.0),  # the best on validation, above C = 1 too
    ({0.1: 0.8, 1.0: 0.8, 3.0: 0.8}, 0.1),  # ties: the smaller C
])
def test_logistic_regression_keeps_the_c_best_on_validation(monkeypatch, accuracy_by_c, chosen):
    from textclf_utils import learning_curve

    class ScriptedRegression:  # right on the first round(accuracy * 20) of 20 validation rows
        def __init__(self, C, max_iter):
            self.C = C

        def fit(self, x, y):
            return self

        def predict(self, x):
            right = round(accuracy_by_c[self.C] * 20)
            return np.array([1] * right + [0] * (20 - right))

    monkeypatch.setattr(learning_curve, "LogisticRegression", ScriptedRegression)
    model, accuracy, c = learning_curve._select_logistic_regression(None, None, None, np.ones(20, dtype=int),
                                                                      tuple(accuracy_by_c))
    assert (c, model.C, accuracy) == (chosen, chosen, accuracy_by_c[chosen])


@pytest.mark.parametrize("labels", [[1], [[0, 1], [1, 0]], []])
def test_a_curve_needs_a_flat_test_set_of_two_labels_or_more(labels):
    with pytest.raises(ValueError, match="test_labels must be a 1-D sequence of ≥ 2 label ids"):
        LearningCurve(labels)


def test_nested_subsets_take_each_class_in_its_share_without_repeats():
    labels = np.array([0] * 200 + [1] * 300 + [2] * 500)
    subsets = nested_subsets(labels, [1, 100, 1000])
    assert np.bincount(labels[subsets[100]], minlength=3).tolist() == [20, 30, 50]
    assert len(set(subsets[100].tolist())) == 100 and len(subsets[1]) == 1
    assert sorted(subsets[1000].tolist()) == list(range(1000))  # every row once, at the largest size
    with pytest.raises(ValueError, match="sizes must be positive"):
        nested_subsets(labels, [0, 10])


def test_epochs_for_a_single_example_and_bad_limits():
    from textclf_utils.learning_curve import epochs_for

    assert epochs_for(1, 3, 5) == 3 and epochs_for(1, 10, 5) == 5
    for size, min_examples, max_epochs in ((10, 0, 2), (10, 5, 0), (-1, 5, 2)):
        with pytest.raises(ValueError, match="must be positive"):
            epochs_for(size, min_examples, max_epochs)


def test_mean_pooled_features_are_the_mean_of_the_token_vectors(tokenizer):
    from textclf_utils.encoder import Encoder, EncoderConfig

    torch.manual_seed(0)
    encoder = Encoder(EncoderConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)).eval()
    features = mean_pooled_features(encoder, tokenizer, ["short", "a longer sentence"], max_length=32)
    with torch.no_grad():
        for row, text in enumerate(["short", "a longer sentence"]):
            states = encoder(**tokenizer([text], return_tensors="pt")).last_hidden_state[0]
            np.testing.assert_allclose(features[row], states.mean(0).numpy(), atol=1e-5)
