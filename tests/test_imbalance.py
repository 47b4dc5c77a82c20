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
