"""Remedies for class imbalance: class weights, focal loss, re-sampling and decision thresholds.

Also what a lesson on imbalance needs around them: splits with a chosen class prior, fast binary
metrics for bootstrap intervals (checked against scikit-learn in the tests), and a ``Trainer`` whose
loss is any ``loss_fn(logits, labels)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import precision_recall_curve
from torch import Tensor, nn
from torch.utils.data import WeightedRandomSampler
from transformers import Trainer

from .data import column_values
from .checks import check_optional_positive_int, prediction_kind

WEIGHT_SCHEMES = ("inverse", "effective")
REMEDIES = ("cross-entropy", "oversampling", "undersampling", "weights: inverse", "weights: effective", "focal")


def class_counts(labels: Sequence[int], num_labels: int) -> np.ndarray:
    """How many examples each label ``0 .. num_labels - 1`` has; an absent label is an error."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence of label ids, got shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integer label ids, got dtype {labels.dtype} (map names to ids first).")
    if labels.min() < 0 or labels.max() >= num_labels:
        raise ValueError(f"labels must lie in 0..{num_labels - 1}, found {labels.min()}..{labels.max()}.")
    counts = np.bincount(labels, minlength=num_labels)
    absent = np.flatnonzero(counts == 0)
    if absent.size:
        raise ValueError(f"Label(s) {absent.tolist()} never occur in the training labels, so their weight would "
                         "be infinite. Add examples of them, or drop them from the label set.")
    return counts


def effective_number_weights(counts: Sequence[int], beta: float) -> Tensor:
    """Cui et al.'s (2019) class weights from per-class counts: (1 − β) / (1 − β^count), scaled to average 1.

    The *effective number* of ``n`` samples is (1 − β^n) / (1 − β); each class is weighted by its inverse.
    β → 1 gives inverse-frequency weights, β = 0 equal weights.
    """
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 1 or counts.size == 0 or not np.all(counts > 0):
        raise ValueError(f"counts must be one positive count per class, got {counts.tolist()}.")
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta}.")
    raw = (1.0 - beta) / (1.0 - np.power(beta, counts))
    return torch.tensor(raw / raw.mean(), dtype=torch.float32)


def class_weights(labels: Sequence[int], num_labels: int, scheme: str = "inverse", beta: float = 0.999) -> Tensor:
    """Per-class loss weights, scaled so that they average 1 over the classes.

    ``inverse``: proportional to 1 / count. ``effective``: the "effective number of samples" of
    Cui et al. (2019), proportional to (1 − β) / (1 − β^count); β → 1 gives ``inverse``, β = 0 equal weights.
    """
    counts = class_counts(labels, num_labels).astype(float)
    if scheme == "inverse":
        raw = 1.0 / counts
        return torch.tensor(raw / raw.mean(), dtype=torch.float32)
    if scheme == "effective":
        return effective_number_weights(counts, beta)
    raise ValueError(f"Unknown weighting scheme {scheme!r}; known schemes: {', '.join(WEIGHT_SCHEMES)}.")


def _check_gamma(gamma: float) -> None:
    if not 0 <= gamma < np.inf:
        raise ValueError(f"gamma must be a finite number ≥ 0 (0 = cross-entropy), got {gamma}.")


def focal_loss(logits: Tensor, labels: Tensor, gamma: float = 2.0, weight: Tensor | None = None) -> Tensor:
    """Focal loss (Lin et al., 2017), the mean over the batch of −(1 − p_true)^γ · log p_true.

    ``p_true`` is each example's softmax probability of its true class; ``gamma = 0`` is cross-entropy.
    With per-class ``weight`` (the paper's α) the mean is normalised by the batch's summed weights, as
    ``F.cross_entropy`` does.
    """
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"Expected logits (batch, classes) and labels (batch,), got {tuple(logits.shape)} "
                         f"and {tuple(labels.shape)}.")
    _check_gamma(gamma)
    if weight is not None and tuple(weight.shape) != (logits.shape[1],):
        raise ValueError(f"weight must hold one number per class ({logits.shape[1]} for these logits), got shape "
                         f"{tuple(weight.shape)}: compute it with class_weights(labels, num_labels).")
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < logits.shape[1]:
        raise ValueError(f"labels must be class ids from 0 to {logits.shape[1] - 1} for these logits, got values "
                         f"from {int(labels.min())} to {int(labels.max())}.")
    log_p = F.log_softmax(logits.float(), dim=-1).gather(1, labels[:, None]).squeeze(1)
    loss = -((1.0 - log_p.exp()) ** gamma) * log_p
    if weight is None:
        return loss.mean()
    w = weight.to(logits.device)[labels]
    return (w * loss).sum() / w.sum()


class FocalLoss(nn.Module):
    """Focal loss (Lin et al., 2017): cross-entropy scaled by (1 − p_true)^γ, so easy examples count less.

    ``gamma = 0`` is (weighted) cross-entropy. ``weight`` are per-class weights (the paper's α).
    With weights, the mean is normalised by the summed weights of the batch, as ``F.cross_entropy`` does.
    """

    def __init__(self, gamma: float = 2.0, weight: Tensor | None = None) -> None:
        super().__init__()
        _check_gamma(gamma)
        self.gamma = gamma
        self.register_buffer("weight", None if weight is None else torch.as_tensor(weight, dtype=torch.float32))

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        return focal_loss(logits, labels, self.gamma, self.weight)


def weighted_cross_entropy(weight: Tensor):
    """A ``loss_fn(logits, labels)`` for ``train_classifier``: cross-entropy with per-class weights."""
    weight = torch.as_tensor(weight, dtype=torch.float32)
    if weight.dim() != 1 or not torch.isfinite(weight).all() or (weight <= 0).any():
        raise ValueError(f"weight must be one positive finite number per class, got {weight.tolist()}.")

    def loss_fn(logits: Tensor, labels: Tensor) -> Tensor:
        if logits.shape[-1] != len(weight):
            raise ValueError(f"This loss has {len(weight)} class weights but the logits have {logits.shape[-1]} "
                             "classes: compute the weights with class_weights(labels, num_labels).")
        return F.cross_entropy(logits.float(), labels, weight=weight.to(logits.device))

    return loss_fn


def balanced_sampler(labels: Sequence[int], num_labels: int, num_samples: int | None = None,
                     seed: int = 42) -> WeightedRandomSampler:
    """Random over-sampling: draws examples with replacement so that every class is equally likely."""
    labels = np.asarray(labels)
    counts = class_counts(labels, num_labels)
    if num_samples is not None and (isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer))
                                    or num_samples < 1):
        raise ValueError(f"num_samples must be a positive integer or None (= len(labels)), got {num_samples!r}.")
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
    y, s = np.asarray(y_true), _finite_scores(scores)
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


def prior_corrected_scores(scores: Sequence[float], train_prior: float, target_prior: float = 0.5) -> np.ndarray:
    """P(minority) moved from the class prior the model was trained at to ``target_prior`` (Bayes' rule,
    Saerens et al. 2002): the logit shifts by log-odds(target) − log-odds(train). With ``target_prior = 0.5``
    this is the logit adjustment log p − log π (Menon et al. 2021): "positive" when p > ``train_prior``."""
    for name, prior in (("train_prior", train_prior), ("target_prior", target_prior)):
        if not 0.0 < prior < 1.0:
            raise ValueError(f"{name} must be a class share in (0, 1), got {prior!r}.")
    p = _finite_scores(scores)
    outside = np.flatnonzero((p < 0) | (p > 1))
    if outside.size:
        raise ValueError(f"scores must be probabilities of the minority class, in [0, 1]; position {outside[0]} holds "
                         f"{p.flat[outside[0]]:g}. Pass softmax probabilities, not logits.")
    p = np.clip(p, 1e-12, 1 - 1e-12)
    shift = math.log(target_prior / (1 - target_prior)) - math.log(train_prior / (1 - train_prior))
    return 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + shift)))


# ---------------------------------------------------------------------------------------------
# Every remedy, trained the same way: a classifier head on frozen sentence features


@dataclass(frozen=True)
class RemedySettings:
    """The remedies' own knobs: ``beta`` of the effective-number weights; focal loss's ``focal_gamma`` and
    ``focal_alpha``, the minority class's weight (Lin et al. 2017 use γ = 2, α = 0.25; the majority gets 1 − α;
    ``None``: no weights)."""

    beta: float = 0.999
    focal_gamma: float = 2.0
    focal_alpha: float | None = 0.25


def remedy_loss(remedy: str, labels: Sequence[int], settings: RemedySettings = RemedySettings()
                ) -> Callable[[Tensor, Tensor], Tensor]:
    """The training loss ``loss_fn(logits, labels)`` of ``remedy`` (one of ``REMEDIES``) for binary ``labels``
    (the minority class is 1): cross-entropy, class-weighted cross-entropy, or focal loss."""
    _check_remedy(remedy)
    if remedy.startswith("weights: "):
        return weighted_cross_entropy(class_weights(labels, 2, remedy.split(": ")[1], beta=settings.beta))
    if remedy == "focal":
        alpha = settings.focal_alpha
        if alpha is not None and not 0.0 < alpha < 1.0:
            raise ValueError(f"focal_alpha must be in (0, 1) or None, got {alpha!r}.")
        return FocalLoss(settings.focal_gamma, None if alpha is None else torch.tensor([1.0 - alpha, alpha]))
    return lambda logits, y: F.cross_entropy(logits.float(), y)


def remedy_batches(remedy: str, labels: Sequence[int], steps: int, batch_size: int, seed: int) -> np.ndarray:
    """Row indices of ``steps`` training batches, shape ``(steps, batch_size)``, for ``remedy``: shuffled passes
    over all rows; class-balanced draws with replacement (``oversampling``); or shuffled passes over a
    balanced subset, repeated as often as needed (``undersampling``). Every remedy gets the same steps."""
    _check_remedy(remedy)
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    total = steps * batch_size
    if remedy == "oversampling":
        weights = 1.0 / class_counts(labels, 2)[labels]
        return rng.choice(len(labels), size=total, p=weights / weights.sum()).reshape(steps, batch_size)
    rows = undersample_indices(labels, 2, seed=seed) if remedy == "undersampling" else np.arange(len(labels))
    passes = [rng.permutation(rows) for _ in range(-(-total // len(rows)))]
    return np.concatenate(passes)[:total].reshape(steps, batch_size)


def _check_remedy(remedy: str) -> None:
    if remedy not in REMEDIES:
        raise ValueError(f"Unknown remedy {remedy!r}; known remedies: {', '.join(REMEDIES)}.")


@dataclass
class HeadRun:
    """One remedy's training run: its training objective (the remedy's loss on the rows it trains on, without
    the L2 term) after each epoch of ``len(train)`` examples, P(minority) on each evaluated split at the end
    (``scores``) and after each checkpoint step (``checkpoint_scores``)."""

    remedy: str
    seed: int
    steps: int
    epoch_losses: list[float]
    scores: dict[str, np.ndarray]
    checkpoint_scores: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    seconds: float = 0.0

    def late_change(self, epochs_back: int = 1) -> float:
        """How much the objective still moved in the last ``epochs_back`` epochs, as a share of its whole drop
        since the first epoch: 0 when it has flattened (a share, so it also works for losses near zero)."""
        if len(self.epoch_losses) <= epochs_back:
            raise ValueError(f"The run has {len(self.epoch_losses)} epochs; cannot look {epochs_back} back.")
        first, before, last = self.epoch_losses[0], self.epoch_losses[-1 - epochs_back], self.epoch_losses[-1]
        return abs(before - last) / max(abs(first - last), 1e-12)


def _objective(remedy: str, labels: np.ndarray, settings: RemedySettings, seed: int
               ) -> tuple[np.ndarray, Callable[[Tensor, Tensor], Tensor]]:
    """The rows and the loss whose minimum ``remedy``'s training seeks: its loss over the rows it draws from;
    for ``oversampling``, the expected loss of class-balanced draws (inverse-weighted cross-entropy)."""
    if remedy == "undersampling":
        return undersample_indices(labels, 2, seed=seed), remedy_loss("cross-entropy", labels)
    if remedy == "oversampling":
        return np.arange(len(labels)), weighted_cross_entropy(class_weights(labels, 2, "inverse"))
    return np.arange(len(labels)), remedy_loss(remedy, labels, settings)


def classifier_head(input_size: int, hidden_size: int | None = 256, dropout: float = 0.1) -> nn.Sequential:
    """The classifier on top of frozen sentence vectors: Linear → GELU → Dropout → Linear to 2 classes, or
    one Linear layer (logistic regression) when ``hidden_size`` is ``None``."""
    check_optional_positive_int(input_size=input_size, hidden_size=hidden_size)
    if hidden_size is None:
        return nn.Sequential(nn.Linear(input_size, 2))
    return nn.Sequential(nn.Linear(input_size, hidden_size), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(hidden_size, 2))


def train_head(features: np.ndarray, labels: Sequence[int], remedy: str, *, steps: int, seed: int,
               evaluate: Mapping[str, np.ndarray], settings: RemedySettings = RemedySettings(),
               batch_size: int = 64, learning_rate: float = 1e-2, l2: float = 1e-3,
               hidden_size: int | None = None, checkpoints: Sequence[int] = ()) -> HeadRun:
    """Train ``classifier_head`` on frozen ``features`` with ``remedy`` for exactly ``steps`` Adam steps (cosine
    decay of ``learning_rate``); return P(minority) for each array in ``evaluate`` (features of other splits).

    The loss adds ``l2`` × the squared weights (not the biases). With the default linear head the objective is
    convex for every remedy but focal loss, and all its minima make the same predictions; focal loss is not
    convex, so its convergence is a matter to check (``late_change``, a longer run). Features are
    standardised with the training rows' mean and spread. The seed fixes the head's start and the batches,
    so two remedies with one seed start from the same head.
    """
    x, y = np.asarray(features, dtype=np.float32), np.asarray(labels)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"features must be (examples, dims) with one label per row; got {x.shape} and {y.shape}.")
    bad = [k for k, v in evaluate.items() if np.ndim(v) != 2 or np.shape(v)[1] != x.shape[1]]
    if bad:
        raise ValueError(f"evaluate[{bad[0]!r}] must be (examples, {x.shape[1]}) like the training features.")
    batches = remedy_batches(remedy, y, steps, batch_size, seed)
    loss_fn = remedy_loss(remedy, y, settings)
    mean, std = x.mean(0), x.std(0) + 1e-6
    scale = lambda a: torch.from_numpy((np.asarray(a, dtype=np.float32) - mean) / std)  # noqa: E731
    x_train, y_train = scale(x), torch.from_numpy(y).long()
    torch.manual_seed(seed)
    head = classifier_head(x.shape[1], hidden_size)
    if not 0.0 <= l2 < math.inf:
        raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}.")
    weights = [p for name, p in head.named_parameters() if name.endswith("weight")]
    optimizer = torch.optim.Adam(head.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    evaluate = {name: scale(a) for name, a in evaluate.items()}

    @torch.no_grad()
    def score() -> dict[str, np.ndarray]:
        head.eval()
        out = {name: head(a).softmax(-1)[:, 1].numpy() for name, a in evaluate.items()}
        head.train()
        return out

    objective_rows, objective = _objective(remedy, y, settings, seed)
    x_objective, y_objective = x_train[objective_rows], y_train[objective_rows]

    @torch.no_grad()
    def objective_now() -> float:
        head.eval()
        value = objective(head(x_objective), y_objective).item()
        head.train()
        return value

    steps_per_epoch = -(-len(y) // batch_size)
    epoch_losses, checkpoint_scores = [], {}
    started = time.perf_counter()
    head.train()
    for step, rows in enumerate(batches, start=1):
        rows = torch.from_numpy(rows)
        loss = loss_fn(head(x_train[rows]), y_train[rows]) + l2 * sum((w ** 2).sum() for w in weights)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"The {remedy} loss became {loss.item()} at step {step}; lower the "
                                     f"learning rate ({learning_rate}) or check the features for NaN.")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % steps_per_epoch == 0 or step == steps:
            epoch_losses.append(objective_now())
        if step in checkpoints:
            checkpoint_scores[step] = score()
    return HeadRun(remedy, seed, steps, epoch_losses, score(), checkpoint_scores, time.perf_counter() - started)


# ---------------------------------------------------------------------------------------------
# Splits with a chosen class prior


def prior_splits(dataset, sizes: dict[str, int], minority_fraction: float, minority_label: int = 1,
                 seed: int = 42, groups: Sequence[int] | None = None):
    """Disjoint splits of ``dataset`` (a ``datasets.Dataset`` with a ``label`` column), each of the given
    size with ``round(size * minority_fraction)`` examples of ``minority_label``, the rest from the others
    (in their own proportions). E.g. ``{"train": 2000, "validation": 1000, "test": 2000}`` at 0.05.

    ``groups`` (one id per row, e.g. ``data.sst2_sentence_groups``) keeps related rows together: every group
    goes to one split (shares of groups in proportion to the sizes), so no text of one split is part of
    another's. Returns a ``DatasetDict``; raises ``ValueError`` when ``dataset`` has too few rows of a kind.
    """
    from datasets import DatasetDict

    if not 0.0 < minority_fraction < 1.0:
        raise ValueError(f"minority_fraction must be in (0, 1), got {minority_fraction}.")
    if not sizes or any(not isinstance(n, (int, np.integer)) or n <= 0 for n in sizes.values()):
        raise ValueError(f"sizes must map split names to positive integers, got {sizes}.")
    labels = np.asarray(column_values(dataset, "label"))
    rng = np.random.default_rng(seed)
    if groups is None:
        owner = {name: np.arange(len(labels)) for name in sizes}  # every split draws from one shuffled pool
    else:
        groups = np.asarray(groups)
        if groups.shape != labels.shape:
            raise ValueError(f"groups must hold one id per row ({len(labels)}), got shape {groups.shape}.")
        unique = rng.permutation(np.unique(groups))
        cuts = np.round(np.cumsum(list(sizes.values())) / sum(sizes.values()) * len(unique)).astype(int)
        bucket = dict(zip(unique, np.searchsorted(cuts, np.arange(len(unique)), side="right")))
        of_row = np.array([bucket[g] for g in groups])
        owner = {name: np.flatnonzero(of_row == k) for k, name in enumerate(sizes)}
    splits, used = {}, np.zeros(len(labels), dtype=bool)
    for name, n in sizes.items():
        rows = rng.permutation(owner[name])
        rows = rows[~used[rows]]
        k = round(n * minority_fraction)
        minority, majority = rows[labels[rows] == minority_label], rows[labels[rows] != minority_label]
        if k > len(minority) or n - k > len(majority):
            where = "the dataset has" if groups is None else "its share of the groups has"
            raise ValueError(f"Split {name!r} of {n} at a minority fraction of {minority_fraction} would need {k} "
                             f"rows of label {minority_label} and {n - k} others; {where} {len(minority)} and "
                             f"{len(majority)} left. Use smaller sizes or a larger dataset.")
        chosen = np.concatenate([minority[:k], majority[:n - k]])
        used[chosen] = True
        splits[name] = dataset.select(np.sort(chosen))
    return DatasetDict(splits)


# ---------------------------------------------------------------------------------------------
# Binary metrics, fast enough to bootstrap (the minority class is label 1)


def _finite_scores(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    if not np.isfinite(s).all():
        raise ValueError(f"scores must be finite numbers; position {int(np.flatnonzero(~np.isfinite(s))[0])} holds "
                         f"{s[~np.isfinite(s)][0].item()}. Check the model's outputs for NaN/inf.")
    return s


def _binary_arrays(y_true, other, other_name: str = "y_pred") -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` as booleans and ``other``: 0/1 predictions (as booleans) or, for "scores", finite floats."""
    y, o = np.asarray(y_true), np.asarray(other)
    if o.ndim == 2 and o.shape[:1] == y.shape:
        fix = ("pass the minority class's column, y_prob[:, 1]" if other_name == "scores"
               else "pass class ids, e.g. y_prob.argmax(axis=1)")
        raise ValueError(f"{other_name} must be one value per example (1-D), got shape {o.shape}: "
                         f"{prediction_kind(o)}, one column per class. {fix[0].upper() + fix[1:]}.")
    if y.shape != o.shape or y.ndim != 1 or y.size == 0:
        raise ValueError(f"Expected two 1-D arrays of equal, non-zero length; got {y.shape} and {o.shape}.")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must be binary (0/1), the minority class being 1.")
    if other_name == "scores":
        return y.astype(bool), _finite_scores(o)
    if not np.isin(o, (0, 1)).all():
        bad = o[~np.isin(o, (0, 1))][0].item()
        raise ValueError(f"y_pred must hold predicted labels 0/1, got {bad!r}. For scores or probabilities, "
                         "threshold them first: (scores >= threshold).astype(int).")
    return y.astype(bool), o.astype(bool)


def minority_f1(y_true, y_pred) -> float:
    """F1 of class 1 (0 when it is neither predicted nor present): ``f1_score(..., zero_division=0)``."""
    y, p = _binary_arrays(y_true, y_pred)
    tp = np.count_nonzero(y & p)
    denominator = y.sum() + p.sum()
    return float(2 * tp / denominator) if denominator else 0.0


def macro_f1(y_true, y_pred) -> float:
    """The mean of the two classes' F1: ``f1_score(..., average="macro", zero_division=0)`` for 0/1 labels."""
    y, p = _binary_arrays(y_true, y_pred)
    return (minority_f1(y, p) + minority_f1(~y, ~p)) / 2


def average_precision(y_true, scores) -> float:
    """Area under the precision-recall curve as scikit-learn's ``average_precision_score``:
    Σ (R_n − R_{n−1}) P_n over the distinct score thresholds, highest first."""
    y, s = _binary_arrays(y_true, scores, "scores")
    if not y.any():
        return 0.0
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_ties = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]
    tp = np.cumsum(y_sorted)[last_of_ties]
    precision = tp / (last_of_ties + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def minority_reliability(y_true, scores, n_bins: int = 10) -> "pd.DataFrame":
    """The minority class's reliability: test examples binned by predicted P(minority) (equal-width bins), with
    each bin's count, mean predicted probability and the share that truly is the minority (empty bins dropped)."""
    import pandas as pd

    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    y, p = _binary_arrays(y_true, scores, "scores")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("scores must be probabilities of the minority class, in [0, 1].")
    which = np.minimum((p * n_bins).astype(int), n_bins - 1)
    rows = [{"low": b / n_bins, "high": (b + 1) / n_bins, "count": int((which == b).sum()),
             "predicted": float(p[which == b].mean()), "observed": float(y[which == b].mean())}
            for b in range(n_bins) if (which == b).any()]
    return pd.DataFrame(rows)


def minority_calibration_error(y_true, scores, n_bins: int = 10) -> float:
    """The count-weighted mean gap |observed share − mean predicted P(minority)| over ``minority_reliability``'s
    bins: the calibration of the rare class's probability. The top-label ECE can miss it: it bins by the
    predicted class's probability, so P(minority) = q and 1 − q share a bin, and a model that over-predicts
    the minority is under-confident on one and over-confident on the other; the gaps cancel."""
    table = minority_reliability(y_true, scores, n_bins)
    return float((table["count"] * (table["observed"] - table["predicted"]).abs()).sum() / table["count"].sum())


def binary_report(y_true, y_pred, scores) -> dict[str, float]:
    """Minority (class 1) precision, recall and F1, macro-F1, PR-AUC (from ``scores``, the minority
    class's probability) and accuracy."""
    y, p = _binary_arrays(y_true, y_pred)
    _binary_arrays(y_true, scores, "scores")
    tp = np.count_nonzero(y & p)
    return {"precision": tp / p.sum() if p.sum() else 0.0, "recall": tp / y.sum() if y.sum() else 0.0,
            "f1": minority_f1(y, p), "macro_f1": macro_f1(y, p), "pr_auc": average_precision(y, scores),
            "accuracy": float((y == p).mean())}


# ---------------------------------------------------------------------------------------------
# A Trainer with any loss


class WeightedLossTrainer(Trainer):
    """``transformers.Trainer`` whose training and evaluation loss is ``loss_fn(logits, labels)``, e.g.
    ``weighted_cross_entropy(class_weights(...))`` or ``FocalLoss(2.0)`` (the same functions the plain
    loop takes).

    The loss is the batch's (weighted) mean, so ``loss_is_scaled_for_ga = False``: with gradient
    accumulation the Trainer divides it by the number of accumulated batches. ``num_items_in_batch``
    (the label count over the accumulated batches, which token-level losses divide by) is accepted, as
    the v5 signature requires, and not needed here.
    """

    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, loss_fn: Callable[[Tensor, Tensor], Tensor], **kwargs: Any) -> None:
        if not callable(loss_fn):
            raise ValueError(f"loss_fn must be a callable loss_fn(logits, labels), got {loss_fn!r}.")
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Tensor | int | None = None):
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = self.loss_fn(outputs.logits.float(), labels)
        return (loss, outputs) if return_outputs else loss
