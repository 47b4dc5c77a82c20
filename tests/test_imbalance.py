import numpy as np
import pytest
import torch
import torch.nn.functional as F

from textclf_utils import imbalance


def test_weights_of_a_balanced_label_set_are_all_equal():
    labels = [0, 1, 2] * 10
    for scheme in imbalance.WEIGHT_SCHEMES:
        assert torch.allclose(imbalance.class_weights(labels, 3, scheme), torch.ones(3))


def test_inverse_frequency_weights_by_hand():
    # counts 8 and 2: raw weights 1/8 and 1/2, mean 5/16 -> 0.4 and 1.6
    assert imbalance.class_weights([0] * 8 + [1] * 2, 2).tolist() == pytest.approx([0.4, 1.6])


def test_effective_number_lies_between_equal_and_inverse_weights():
    labels = [0] * 900 + [1] * 100
    inverse = imbalance.class_weights(labels, 2, "inverse")
    effective = imbalance.class_weights(labels, 2, "effective", beta=0.99)
    assert 1.0 < effective[1] < inverse[1]
    assert torch.allclose(imbalance.class_weights(labels, 2, "effective", beta=0.0), torch.ones(2))


@pytest.mark.parametrize("call, message", [
    (lambda: imbalance.class_weights([0, 0, 2], 3), r"Label\(s\) \[1\] never occur"),
    (lambda: imbalance.class_weights([0, 1], 2, "sqrt"), "inverse, effective"),
    (lambda: imbalance.class_weights([0, 3], 2), r"0\.\.1"),
    (lambda: imbalance.class_weights([0, 1], 2, "effective", beta=1.0), r"\[0, 1\)"),
    (lambda: imbalance.FocalLoss(gamma=-1), "gamma"),
    (lambda: imbalance.best_threshold([0, 0], [0.1, 0.2]), "positive"),
])
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_focal_loss_at_gamma_zero_is_cross_entropy_weighted_or_not():
    torch.manual_seed(0)
    logits, labels = torch.randn(16, 3), torch.randint(0, 3, (16,))
    weight = torch.tensor([0.5, 1.0, 2.0])
    assert torch.allclose(imbalance.FocalLoss(0.0)(logits, labels), F.cross_entropy(logits, labels))
    assert torch.allclose(imbalance.FocalLoss(0.0, weight)(logits, labels), F.cross_entropy(logits, labels, weight=weight))
    assert torch.allclose(imbalance.weighted_cross_entropy(weight)(logits, labels), F.cross_entropy(logits, labels, weight=weight))


def test_focal_loss_discounts_easy_examples():
    easy = torch.tensor([[4.0, -4.0]])
    hard = torch.tensor([[0.0, 0.0]])
    label = torch.tensor([0])
    ratio = lambda z: (imbalance.FocalLoss(2.0)(z, label) / F.cross_entropy(z, label)).item()  # noqa: E731
    assert ratio(easy) < 1e-3 and ratio(hard) == pytest.approx(0.25)  # (1 - 1/2)^2


def test_balanced_sampler_draws_classes_equally_often():
    labels = np.array([0] * 950 + [1] * 50)
    drawn = labels[list(imbalance.balanced_sampler(labels, 2, num_samples=20_000, seed=0))]
    assert drawn.mean() == pytest.approx(0.5, abs=0.02)


def test_undersampling_keeps_the_rarest_count_of_each_class():
    labels = np.array([0] * 30 + [1] * 5 + [2] * 10)
    kept = imbalance.undersample_indices(labels, 3, seed=0)
    assert np.bincount(labels[kept]).tolist() == [5, 5, 5] and (np.diff(kept) > 0).all()


def test_threshold_selection_on_a_hand_made_case():
    y = [0, 0, 0, 1, 0, 1, 1]
    s = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    # threshold 0.4 -> 3 TP, 1 FP, 0 FN: P = 3/4, R = 1, F1 = 6/7, the best
    assert imbalance.best_threshold(y, s) == pytest.approx((0.4, 0.75, 1.0))
    # threshold 0.6 -> P 1, R 2/3: the most precise with recall ≥ 0.6
    assert imbalance.best_threshold(y, s, min_recall=0.6) == pytest.approx((0.6, 1.0, 2 / 3))


# ---------------------------------------------------------------------------------------------
# Splits with a chosen prior


def _labelled(labels):
    from datasets import Dataset

    return Dataset.from_dict({"text": [f"row {i}" for i in range(len(labels))], "label": list(labels)})


def test_prior_splits_are_disjoint_and_have_the_asked_prior():
    data = _labelled([1] * 300 + [0] * 700)
    splits = imbalance.prior_splits(data, {"train": 400, "validation": 100, "test": 200}, 0.05, seed=1)
    assert {k: len(v) for k, v in splits.items()} == {"train": 400, "validation": 100, "test": 200}
    assert [sum(v["label"]) for v in splits.values()] == [20, 5, 10]
    texts = [set(v["text"]) for v in splits.values()]
    assert sum(map(len, texts)) == len(set().union(*texts)) == 700


@pytest.mark.parametrize("sizes, fraction, message", [
    ({"train": 400}, 0.5, "need 200 rows of label 1 and 200 others; the dataset has 10 and 990"),
    ({"train": 100}, 1.0, r"\(0, 1\)"),
    ({"train": 0}, 0.05, "positive integers"),
])
def test_prior_splits_refuse_what_cannot_be_drawn(sizes, fraction, message):
    with pytest.raises(ValueError, match=message):
        imbalance.prior_splits(_labelled([1] * 10 + [0] * 990), sizes, fraction)


# ---------------------------------------------------------------------------------------------
# Fast binary metrics agree with scikit-learn


def test_binary_metrics_agree_with_scikit_learn():
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, precision_score, recall_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        y = (rng.random(200) < 0.1).astype(int)
        y[0] = 1
        scores = np.round(rng.random(200) * 0.6 + 0.4 * y, 2)  # rounded: ties included
        pred = (scores > 0.5).astype(int)
        report = imbalance.binary_report(y, pred, scores)
        assert report["precision"] == pytest.approx(precision_score(y, pred, zero_division=0))
        assert report["recall"] == pytest.approx(recall_score(y, pred))
        assert report["f1"] == pytest.approx(f1_score(y, pred, zero_division=0))
        assert report["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro", zero_division=0))
        assert report["pr_auc"] == pytest.approx(average_precision_score(y, scores))
        assert report["accuracy"] == pytest.approx(accuracy_score(y, pred))


def test_minority_f1_of_a_model_that_never_predicts_the_minority_is_zero():
    assert imbalance.minority_f1([0, 0, 1], [0, 0, 0]) == 0.0
    assert imbalance.macro_f1([0, 0, 1], [0, 0, 0]) == pytest.approx(0.4)  # (0.8 + 0) / 2
    with pytest.raises(ValueError, match="binary"):
        imbalance.minority_f1([0, 2], [0, 1])


# ---------------------------------------------------------------------------------------------
# The Trainer with a weighted loss


def _tiny_classifier():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config).eval()


def test_weighted_loss_trainer_uses_the_loss_function(tmp_path):
    from transformers import TrainingArguments

    model = _tiny_classifier()
    weight = torch.tensor([0.2, 1.8])
    loss_fn = imbalance.weighted_cross_entropy(weight)
    trainer = imbalance.WeightedLossTrainer(
        model=model, args=TrainingArguments(str(tmp_path), report_to="none", use_cpu=True), loss_fn=loss_fn)
    inputs = {"input_ids": torch.randint(0, 50, (8, 6)), "attention_mask": torch.ones(8, 6, dtype=torch.long),
              "labels": torch.tensor([0, 0, 0, 0, 0, 0, 1, 1])}
    with torch.no_grad():
        loss, outputs = trainer.compute_loss(model, inputs, return_outputs=True, num_items_in_batch=8)
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    assert torch.allclose(loss, loss_fn(logits, inputs["labels"]))
    assert torch.allclose(outputs.logits, logits)
    assert not torch.allclose(loss, F.cross_entropy(logits, inputs["labels"]))  # the weights matter
    assert "labels" in inputs  # the caller's batch is left as it was
    with pytest.raises(ValueError, match="loss_fn"):
        imbalance.WeightedLossTrainer(model=model, args=trainer.args, loss_fn=None)


# ---------------------------------------------------------------------------------------------
# Cases that tell right from wrong, and bad input


def test_average_precision_when_the_lowest_score_is_a_positive():
    from sklearn.metrics import average_precision_score

    y, scores = [1, 0, 0, 1], [0.9, 0.8, 0.7, 0.1]
    # thresholds 0.9: P 1, R 1/2; 0.8: P 1/2; 0.7: P 1/3; 0.1: P 1/2, R 1 -> AP = 1/2 * 1 + 1/2 * 1/2
    assert imbalance.average_precision(y, scores) == pytest.approx(0.75) == average_precision_score(y, scores)
    assert imbalance.average_precision([0, 1, 1], [0.5, 0.5, 0.2]) == pytest.approx(
        average_precision_score([0, 1, 1], [0.5, 0.5, 0.2]))  # a tie at the top counts as one threshold
    assert imbalance.average_precision([0, 0], [0.3, 0.2]) == 0.0


def test_binary_report_when_the_minority_is_never_predicted_or_never_present():
    report = imbalance.binary_report([0, 0, 1, 1], [0, 0, 0, 0], [0.1, 0.2, 0.3, 0.4])
    assert (report["precision"], report["recall"], report["f1"]) == (0.0, 0.0, 0.0)
    assert report["accuracy"] == 0.5 and report["pr_auc"] == pytest.approx(1.0)
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)
    absent = imbalance.binary_report([0, 0, 0], [1, 0, 0], [0.9, 0.1, 0.2])
    assert (absent["precision"], absent["recall"], absent["pr_auc"]) == (0.0, 0.0, 0.0)
    exact = imbalance.binary_report([1, 1, 0, 0, 0], [1, 0, 1, 1, 0], [0.9, 0.4, 0.8, 0.7, 0.1])
    assert (exact["precision"], exact["recall"], exact["f1"]) == pytest.approx((1 / 3, 1 / 2, 0.4))


@pytest.mark.parametrize("call, message", [
    (lambda: imbalance.minority_f1([0, 1, 1], [0.2, 0.9, 0.6]), r"predicted labels 0/1, got 0\.2.*threshold"),
    (lambda: imbalance.macro_f1([0, 1], [0, 2]), "predicted labels 0/1, got 2"),
    (lambda: imbalance.binary_report([0, 1], [0, 1], [0.1, np.nan]), "position 1 holds nan"),
    (lambda: imbalance.average_precision([0, 1], [np.inf, 0.5]), "scores must be finite"),
    (lambda: imbalance.best_threshold([0, 1], [0.2, np.nan]), "scores must be finite"),
    (lambda: imbalance.class_counts([0.0, 1.0], 2), "integer label ids"),
    (lambda: imbalance.FocalLoss(gamma=float("nan")), "gamma must be a finite number"),
    (lambda: imbalance.weighted_cross_entropy(torch.tensor([1.0, float("nan")])), "positive finite"),
    (lambda: imbalance.weighted_cross_entropy(torch.tensor([1.0, 0.0])), "positive finite"),
    (lambda: imbalance.balanced_sampler([0, 1], 2, num_samples=0), "num_samples must be a positive integer"),
])
def test_more_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_boolean_predictions_are_labels():
    assert imbalance.minority_f1(np.array([0, 1, 1]), np.array([False, True, False])) == pytest.approx(2 / 3)


# ---------------------------------------------------------------------------------------------
# Remedies trained the same way: batches, losses, the head, the prior correction

LABELS = np.array([0] * 90 + [1] * 10)


def test_prior_correction_to_a_balanced_prior_puts_the_decision_at_the_training_prior():
    p = np.array([0.01, 0.049, 0.051, 0.2, 0.9])
    corrected = imbalance.prior_corrected_scores(p, train_prior=0.05)
    assert ((corrected >= 0.5) == (p >= 0.05)).all()
    # odds multiplied by (0.5/0.5) / (0.05/0.95) = 19, exactly
    odds = corrected / (1 - corrected)
    assert np.allclose(odds, p / (1 - p) * 19)
    assert np.allclose(imbalance.prior_corrected_scores(p, 0.3, 0.3), p)  # no shift, no change
    assert np.argsort(corrected).tolist() == np.argsort(p).tolist()  # the ranking is untouched


@pytest.mark.parametrize("call, message", [
    (lambda: imbalance.prior_corrected_scores([0.5], 0.0), "train_prior"),
    (lambda: imbalance.prior_corrected_scores([0.5], 0.05, 1.0), "target_prior"),
    (lambda: imbalance.prior_corrected_scores([np.nan], 0.05), "finite"),
    (lambda: imbalance.remedy_batches("smote", LABELS, 3, 8, 0), "Unknown remedy"),
    (lambda: imbalance.remedy_batches("oversampling", LABELS, 0, 8, 0), "steps"),
    (lambda: imbalance.remedy_loss("focal", LABELS, imbalance.RemedySettings(focal_alpha=1.5)), "focal_alpha"),
    (lambda: imbalance.train_head(np.zeros((100, 4)), LABELS, "cross-entropy", steps=2, seed=0,
                                  evaluate={"v": np.zeros((3, 5))}), "evaluate"),
    (lambda: imbalance.train_head(np.zeros((100, 4)), LABELS, "cross-entropy", steps=2, seed=0, evaluate={},
                                  l2=-1.0), "l2"),
])
def test_remedy_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_remedy_gets_the_same_steps_and_the_right_rows():
    shapes = {r: imbalance.remedy_batches(r, LABELS, steps=50, batch_size=8, seed=0).shape for r in imbalance.REMEDIES}
    assert set(shapes.values()) == {(50, 8)}
    plain = imbalance.remedy_batches("cross-entropy", LABELS, steps=25, batch_size=8, seed=0).ravel()
    assert sorted(plain[:100].tolist()) == list(range(100))  # the first pass holds every row once
    over = imbalance.remedy_batches("oversampling", LABELS, steps=500, batch_size=8, seed=0).ravel()
    assert 0.45 < LABELS[over].mean() < 0.55  # balanced draws, although 10 % are minority rows
    under = imbalance.remedy_batches("undersampling", LABELS, steps=50, batch_size=8, seed=0).ravel()
    assert len(set(under.tolist())) == 20 and LABELS[under].mean() == 0.5  # 10 + 10 rows, repeated
    again = imbalance.remedy_batches("oversampling", LABELS, steps=500, batch_size=8, seed=0)
    assert (again.ravel() == over).all()


def test_remedy_losses_are_the_named_losses():
    logits, y = torch.randn(6, 2), torch.tensor([0, 0, 0, 1, 1, 0])
    assert torch.allclose(imbalance.remedy_loss("undersampling", LABELS)(logits, y), F.cross_entropy(logits, y))
    inverse = imbalance.class_weights(LABELS, 2, "inverse")
    assert torch.allclose(imbalance.remedy_loss("weights: inverse", LABELS)(logits, y),
                          F.cross_entropy(logits, y, weight=inverse))
    focal = imbalance.remedy_loss("focal", LABELS, imbalance.RemedySettings(focal_gamma=0.0, focal_alpha=0.25))
    assert torch.allclose(focal(logits, y), F.cross_entropy(logits, y, weight=torch.tensor([0.75, 0.25])))


def _separable_features(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(100, 5)).astype(np.float32)
    x[:, 0] += 4.0 * LABELS  # the minority sits to the right on the first feature
    return x


def test_train_head_converges_and_learns_the_minority():
    x = _separable_features()
    run = imbalance.train_head(x, LABELS, "cross-entropy", steps=600, seed=0, batch_size=50,
                               evaluate={"train": x}, l2=0.01, checkpoints=(5,))
    assert len(run.epoch_losses) == 300 and run.epoch_losses[-1] < run.epoch_losses[0]
    assert run.late_change(75) < 0.01  # flat over the last quarter ...
    assert run.late_change(299) == pytest.approx(1.0)  # ... the whole drop, seen from the first epoch
    short = imbalance.train_head(x, LABELS, "cross-entropy", steps=600, seed=0, batch_size=50, evaluate={},
                                 l2=0.01, learning_rate=1e-4)
    # a step size too small: still falling late (the cosine decay alone does not flatten it), far from the optimum
    assert short.late_change(75) > 2 * run.late_change(75) and short.epoch_losses[-1] > run.epoch_losses[-1] + 0.1
    assert imbalance.average_precision(LABELS, run.scores["train"]) > 0.8
    assert set(run.checkpoint_scores) == {5} and run.checkpoint_scores[5]["train"].shape == (100,)
    # at its optimum, cross-entropy with an intercept matches the training prior on average
    assert abs(run.scores["train"].mean() - LABELS.mean()) < 0.03
    weighted = imbalance.train_head(x, LABELS, "weights: inverse", steps=600, seed=0, batch_size=50,
                                    evaluate={"train": x}, l2=0.01)
    assert weighted.scores["train"].mean() > LABELS.mean() + 0.05  # weights move the probabilities towards a balanced world
    same = imbalance.train_head(x, LABELS, "cross-entropy", steps=600, seed=0, batch_size=50,
                                evaluate={"train": x}, l2=0.01)
    assert np.array_equal(same.scores["train"], run.scores["train"])  # one seed, one result


def test_the_objective_of_undersampling_is_its_own_subset():
    x = _separable_features()
    run = imbalance.train_head(x, LABELS, "undersampling", steps=100, seed=0, batch_size=20, evaluate={}, l2=0.01)
    rows = imbalance.undersample_indices(LABELS, 2, seed=0)
    assert len(run.epoch_losses) == 20 and rows.size == 20
    with pytest.raises(ValueError, match="cannot look"):
        run.late_change(20)


def test_minority_calibration_by_hand():
    y = np.array([0, 0, 0, 1, 1, 0, 1, 1])
    p = np.array([0.05, 0.05, 0.15, 0.15, 0.95, 0.95, 0.95, 0.95])
    table = imbalance.minority_reliability(y, p, n_bins=10)
    assert table["count"].tolist() == [2, 2, 4] and table["low"].tolist() == [0.0, 0.1, 0.9]
    assert np.allclose(table["observed"], [0.0, 0.5, 0.75]) and np.allclose(table["predicted"], [0.05, 0.15, 0.95])
    # (2 * 0.05 + 2 * 0.35 + 4 * 0.2) / 8
    assert imbalance.minority_calibration_error(y, p, 10) == pytest.approx(0.2)
    assert imbalance.minority_calibration_error([0, 1], [0.0, 1.0]) == 0.0
    assert imbalance.minority_reliability([1], [1.0], 10)["low"].tolist() == [0.9]  # p = 1 falls in the last bin
    with pytest.raises(ValueError, match="probabilities"):
        imbalance.minority_calibration_error([0, 1], [0.2, 1.5])


def test_prior_splits_keep_each_group_in_one_split():
    from datasets import Dataset

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(200), 5)  # 200 "sentences" of 5 phrases each
    labels = (rng.random(1000) < 0.5).astype(int)
    data = Dataset.from_dict({"text": [f"row {i}" for i in range(1000)], "label": labels.tolist()})
    splits = imbalance.prior_splits(data, {"train": 200, "validation": 100, "test": 200}, 0.05, seed=0,
                                    groups=groups)
    seen = {name: {groups[int(t.split()[1])] for t in split["text"]} for name, split in splits.items()}
    assert not (seen["train"] & seen["test"]) and not (seen["train"] & seen["validation"])
    assert not (seen["validation"] & seen["test"])
    assert [sum(s["label"]) for s in splits.values()] == [10, 5, 10]
    with pytest.raises(ValueError, match="share of the groups has"):
        imbalance.prior_splits(data, {"train": 500, "test": 500}, 0.9, groups=groups)
    with pytest.raises(ValueError, match="one id per row"):
        imbalance.prior_splits(data, {"train": 10}, 0.5, groups=groups[:10])


# Limits found by the sampled mutation run (scripts/mutation_sample.py, tests/MUTATION.md)


def test_a_label_equal_to_num_labels_is_outside():
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1, found 0\.\.2"):
        imbalance.class_counts([0, 1, 2], 2)


def test_balanced_sampler_of_one_draw():
    assert len(list(imbalance.balanced_sampler([0, 1, 1], 2, num_samples=1))) == 1


@pytest.mark.parametrize("min_recall", [0.0, 1.5])
def test_min_recall_outside_the_unit_interval_is_refused(min_recall):
    with pytest.raises(ValueError, match=r"min_recall must be in \(0, 1\]"):
        imbalance.best_threshold([0, 1], [0.2, 0.8], min_recall=min_recall)


def test_threshold_with_no_true_positive_has_f1_zero():
    # threshold 0.9 catches only the negative: P = R = 0, so F1 is 0 there, not the best; 0.1 gives 2/3
    assert imbalance.best_threshold([1, 0], [0.1, 0.9]) == pytest.approx((0.1, 0.5, 1.0))
    assert imbalance.best_threshold([1, 0], [0.1, 0.9], min_recall=1.0) == pytest.approx((0.1, 0.5, 1.0))


def test_prior_splits_may_use_every_row_of_each_kind():
    splits = imbalance.prior_splits(_labelled([1] * 10 + [0] * 10), {"train": 12, "test": 8}, 0.5, seed=0)
    assert [sorted(v["label"]) for v in splits.values()] == [[0] * 6 + [1] * 6, [0] * 4 + [1] * 4]
    assert set(splits["train"]["text"]) | set(splits["test"]["text"]) == {f"row {i}" for i in range(20)}
    with pytest.raises(ValueError, match=r"\(0, 1\), got 0.0"):
        imbalance.prior_splits(_labelled([1, 0]), {"train": 2}, 0.0)


def test_binary_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="two 1-D arrays of equal, non-zero length"):
        imbalance.minority_f1([0, 1], [1])


@pytest.mark.parametrize("kwargs, message", [
    (dict(gamma=-1.0), r"gamma must be a finite number ≥ 0.*-1"),
    (dict(weight=torch.ones(3)), r"weight must hold one number per class \(2 for these logits\), got shape \(3,\)"),
])
def test_focal_loss_function_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        imbalance.focal_loss(torch.zeros(2, 2), torch.tensor([0, 1]), **kwargs)
    with pytest.raises(ValueError, match=message):
        imbalance.FocalLoss(**kwargs)(torch.zeros(2, 2), torch.tensor([0, 1]))


@pytest.mark.parametrize("label", [2, -1])
def test_focal_loss_refuses_a_label_that_is_not_a_class(label):
    with pytest.raises(ValueError, match=rf"class ids from 0 to 1 .* got values from {min(label, 0)} to {max(label, 0)}"):
        imbalance.focal_loss(torch.zeros(2, 2), torch.tensor([0, label]))


def test_weighted_cross_entropy_refuses_logits_with_another_number_of_classes():
    loss_fn = imbalance.weighted_cross_entropy(torch.tensor([1.0, 3.0]))
    with pytest.raises(ValueError, match=r"2 class weights but the logits have 3 classes"):
        loss_fn(torch.zeros(4, 3), torch.tensor([0, 1, 2, 0]))
    assert torch.isclose(loss_fn(torch.zeros(2, 2), torch.tensor([0, 1])), torch.log(torch.tensor(2.0)))


@pytest.mark.parametrize("scores, bad", [([0.2, 1.5], "1.5"), ([-2.0, 0.9], "-2")])
def test_prior_correction_refuses_scores_outside_zero_one_before_clipping(scores, bad):
    with pytest.raises(ValueError, match=rf"in \[0, 1\]; position \d holds {bad}\. .*not logits"):
        imbalance.prior_corrected_scores(scores, train_prior=0.1)
    assert imbalance.prior_corrected_scores([0.0, 1.0], train_prior=0.1) == pytest.approx([0.0, 1.0], abs=1e-9)


@pytest.mark.parametrize("kwargs", [dict(input_size=0), dict(input_size=8, hidden_size=0)])
def test_classifier_head_refuses_sizes_below_one(kwargs):
    with pytest.raises(ValueError, match=r"must be a positive integer, got 0"):
        imbalance.classifier_head(**kwargs)
