"""Remedies for class imbalance: class weights, focal loss, re-sampling and decision thresholds."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import precision_recall_curve
from torch import Tensor, nn
from torch.utils.data import WeightedRandomSampler

WEIGHT_SCHEMES = ("inverse", "effective")


def class_counts(labels: Sequence[int], num_labels: int) -> np.ndarray:
    """How many examples each label ``0 .. num_labels - 1`` has; an absent label is an error."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence of label ids, got shape {labels.shape}.")
    if labels.min() < 0 or labels.max() >= num_labels:
        raise ValueError(f"labels must lie in 0..{num_labels - 1}, found {labels.min()}..{labels.max()}.")
    counts = np.bincount(labels, minlength=num_labels)
    absent = np.flatnonzero(counts == 0)
    if absent.size:
        raise ValueError(f"Label(s) {absent.tolist()} never occur in the training labels, so their weight would "
                         "be infinite. Add examples of them, or drop them from the label set.")
    return counts


def class_weights(labels: Sequence[int], num_labels: int, scheme: str = "inverse", beta: float = 0.999) -> Tensor:
    """Per-class loss weights, scaled so that they average 1 over the classes.

    ``inverse``: proportional to 1 / count. ``effective``: the "effective number of samples" of
    Cui et al. (2019), proportional to (1 − β) / (1 − β^count); β → 1 gives ``inverse``, β = 0 equal weights.
    """
    counts = class_counts(labels, num_labels).astype(float)
    if scheme == "inverse":
        raw = 1.0 / counts
    elif scheme == "effective":
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"beta must be in [0, 1), got {beta}.")
        raw = (1.0 - beta) / (1.0 - np.power(beta, counts))
    else:
        raise ValueError(f"Unknown weighting scheme {scheme!r}; known schemes: {', '.join(WEIGHT_SCHEMES)}.")
    return torch.tensor(raw / raw.mean(), dtype=torch.float32)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al., 2017): cross-entropy scaled by (1 − p_true)^γ, so easy examples count less.

    ``gamma = 0`` is (weighted) cross-entropy. ``weight`` are per-class weights (the paper's α).
    With weights, the mean is normalised by the summed weights of the batch, as ``F.cross_entropy`` does.
    """

    def __init__(self, gamma: float = 2.0, weight: Tensor | None = None) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be ≥ 0, got {gamma}.")
        self.gamma = gamma
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        if logits.dim() != 2 or labels.shape != logits.shape[:1]:
            raise ValueError(f"Expected logits (batch, classes) and labels (batch,), got {tuple(logits.shape)} "
                             f"and {tuple(labels.shape)}.")
        log_p = F.log_softmax(logits.float(), dim=-1).gather(1, labels[:, None]).squeeze(1)
        loss = -((1.0 - log_p.exp()) ** self.gamma) * log_p
        if self.weight is None:
            return loss.mean()
        w = self.weight.to(logits.device)[labels]
        return (w * loss).sum() / w.sum()


def weighted_cross_entropy(weight: Tensor):
    """A ``loss_fn(logits, labels)`` for ``train_classifier``: cross-entropy with per-class weights."""
    weight = torch.as_tensor(weight, dtype=torch.float32)

    def loss_fn(logits: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(logits.float(), labels, weight=weight.to(logits.device))

    return loss_fn


def balanced_sampler(labels: Sequence[int], num_labels: int, num_samples: int | None = None,
                     seed: int = 42) -> WeightedRandomSampler:
    """Random over-sampling: draws examples with replacement so that every class is equally likely."""
    labels = np.asarray(labels)
    counts = class_counts(labels, num_labels)
    weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.double)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(weights, num_samples=num_samples or len(labels), replacement=True,
                                 generator=generator)


def undersample_indices(labels: Sequence[int], num_labels: int, seed: int = 42) -> np.ndarray:
    """Random under-sampling: sorted indices keeping every class down to the rarest class's count."""
    labels = np.asarray(labels)
    counts = class_counts(labels, num_labels)
    rng = np.random.default_rng(seed)
    keep = [rng.choice(np.flatnonzero(labels == c), size=counts.min(), replace=False) for c in range(num_labels)]
    return np.sort(np.concatenate(keep))


def best_threshold(y_true: Sequence[int], scores: Sequence[float], min_recall: float | None = None) -> tuple[float, float, float]:
    """A decision threshold on the positive class's score, chosen on validation data.

    Without ``min_recall``: the threshold with the best F1. With it: the highest-precision threshold whose
    recall is at least ``min_recall``. Returns ``(threshold, precision, recall)`` at that threshold.
    Predict positive where ``score >= threshold``.
    """
    y, s = np.asarray(y_true), np.asarray(scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"y_true and scores must be 1-D of equal length, got {y.shape} and {s.shape}.")
    if not set(np.unique(y)) <= {0, 1} or y.sum() == 0:
        raise ValueError("y_true must be binary (0/1) with at least one positive example.")
    if min_recall is not None and not 0.0 < min_recall <= 1.0:
        raise ValueError(f"min_recall must be in (0, 1], got {min_recall}.")
    precision, recall, thresholds = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    if min_recall is None:
        f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
        i = int(np.argmax(f1))
    else:
        ok = np.flatnonzero(recall >= min_recall)
        i = int(ok[np.argmax(precision[ok])])
    return float(thresholds[i]), float(precision[i]), float(recall[i])
