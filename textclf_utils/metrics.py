"""Evaluation beyond accuracy: summaries, bootstrap intervals, calibration, paired comparisons.

Thin wrappers over scikit-learn and SciPy where they already compute a thing; every function checks
its input first and says what is wrong (lengths, probability shapes, labels outside the label set).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, special, stats
from sklearn.metrics import (accuracy_score, average_precision_score, confusion_matrix,
                             precision_recall_fscore_support, roc_auc_score)

from .checks import check_class_ids, kind_hint, prediction_kind

Metric = Callable[[np.ndarray, np.ndarray], float]


# ---------------------------------------------------------------------------------------------
# Input checks


def check_labels(y_true: Sequence[int], y_pred: Sequence[int] | None, num_labels: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer arrays of equal length, every value in ``0 .. num_labels - 1``."""
    true = np.asarray(y_true)
    pred = None if y_pred is None else np.asarray(y_pred)
    if true.ndim != 1 or len(true) == 0:
        raise ValueError(f"y_true must be a non-empty 1-D sequence of label ids, got shape {true.shape}."
                         f"{kind_hint(true, 'class ids') if true.ndim == 2 else ''}")
    if pred is not None and pred.ndim != 1:
        raise ValueError(f"y_pred must be one class id per example (1-D), got shape {pred.shape}.{kind_hint(pred, 'class ids')}")
    if pred is not None and pred.shape != true.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {len(true)} and {pred.size}.")
    for name, values in (("y_true", true), ("y_pred", pred)):
        if values is None:
            continue
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{name} must hold integer label ids, got dtype {values.dtype}.{kind_hint(values, 'class ids')}")
        outside = np.flatnonzero((values < 0) | (values >= num_labels))
        if outside.size:
            raise ValueError(f"{name} has labels outside the label set 0..{num_labels - 1} "
                             f"(e.g. {values[outside[0]]} at position {outside[0]}).")
    return true, pred


def check_probabilities(y_prob: np.ndarray, n: int, num_labels: int) -> np.ndarray:
    """``y_prob`` as an ``(n, num_labels)`` float array whose rows are probability distributions."""
    prob = np.asarray(y_prob, dtype=float)
    if prob.shape != (n, num_labels):
        raise ValueError(f"y_prob must have shape (examples, classes) = ({n}, {num_labels}), got {prob.shape}."
                         f"{kind_hint(y_prob, 'probabilities') if prob.ndim == 1 else ''}")
    bad = ~(prob >= 0).all(axis=1) | ~(np.abs(prob.sum(axis=1) - 1.0) <= 1e-4)  # NaN counts as bad
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"Each row of y_prob must be a probability distribution (non-negative, summing to 1); "
                         f"row {row} sums to {prob[row].sum():.4f} and its smallest value is {prob[row].min():.4f}. "
                         "Did you pass logits? Apply softmax first.")
    return prob


# ---------------------------------------------------------------------------------------------
# Summary table


def classification_summary(y_true, y_pred, label_names: Sequence[str], y_prob=None) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support, then the macro, weighted and micro averages.

    With ``y_prob``, one-vs-rest ROC-AUC and average precision per class are added (macro and
    weighted averages of them too). ``df.attrs["accuracy"]`` holds the accuracy.
    """
    k = len(label_names)
    true, pred = check_labels(y_true, y_pred, k)
    labels = list(range(k))
    per_class = precision_recall_fscore_support(true, pred, labels=labels, zero_division=0)
    table = pd.DataFrame({"precision": per_class[0], "recall": per_class[1], "f1": per_class[2],
                          "support": per_class[3]}, index=list(label_names))
    for average in ("macro", "weighted", "micro"):
        p, r, f, _ = precision_recall_fscore_support(true, pred, labels=labels, average=average, zero_division=0)
        table.loc[f"{average} avg"] = [p, r, f, len(true)]
    if y_prob is not None:
        prob = check_probabilities(y_prob, len(true), k)
        onehot = np.eye(k, dtype=int)[true]
        present = onehot.sum(axis=0) > 0
        auc = [roc_auc_score(onehot[:, c], prob[:, c]) if 0 < onehot[:, c].sum() < len(true) else np.nan
               for c in range(k)]
        ap = [average_precision_score(onehot[:, c], prob[:, c]) if present[c] else np.nan for c in range(k)]
        weights = onehot.sum(axis=0)
        table["roc_auc"] = auc + [np.nanmean(auc), np.nansum(np.multiply(auc, weights)) / weights.sum(), np.nan]
        table["average_precision"] = ap + [np.nanmean(ap), np.nansum(np.multiply(ap, weights)) / weights.sum(), np.nan]
    table["support"] = table["support"].astype(int)
    table.attrs["accuracy"] = accuracy_score(true, pred)
    return table


def confusion_counts(y_true, y_pred, num_labels: int, normalize: str | None = None) -> np.ndarray:
    """``confusion_matrix`` with every label present (rows: true, columns: predicted); ``normalize`` as in
    scikit-learn: None (counts), "true" (rows sum to 1), "pred" (columns) or "all"."""
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be None, 'true' (each row sums to 1), 'pred' (each column) or 'all'; "
                         f"got {normalize!r}.")
    true, pred = check_labels(y_true, y_pred, num_labels)
    return confusion_matrix(true, pred, labels=list(range(num_labels)), normalize=normalize)


# ---------------------------------------------------------------------------------------------
# Uncertainty


def precision_recall_f1(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 from a confusion matrix (rows: true class, columns: predicted).

    A class never predicted has precision 0, and one with precision = recall = 0 has F1 0 (scikit-learn's
    ``zero_division=0``); a class with no true example has recall 0.
    """
    counts = np.asarray(confusion, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0 or (counts < 0).any():
        raise ValueError(f"confusion must be a square matrix of counts, got shape {counts.shape}.")
    tp = np.diag(counts)
    predicted, actual = counts.sum(axis=0), counts.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=precision + recall > 0)
    return precision, recall, f1


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def __str__(self) -> str:
        return f"{self.estimate:.4f} [{self.low:.4f}, {self.high:.4f}]"


def _check_bootstrap(n_resamples: int, confidence: float) -> None:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer (e.g. 2000), got {n_resamples!r}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be a fraction in (0, 1), e.g. 0.95, got {confidence!r}.")


def bootstrap_interval(metric: Metric, y_true, y_pred, n_resamples: int = 2000, confidence: float = 0.95,
                       seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``metric(y_true, y_pred)``, resampling examples (``scipy.stats.bootstrap``)."""
    _check_bootstrap(n_resamples, confidence)
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    if true.shape != pred.shape or true.ndim != 1 or len(true) < 2:
        raise ValueError(f"y_true and y_pred must be 1-D, of equal length ≥ 2; got {true.shape} and {pred.shape}."
                         f"{kind_hint(pred, 'class ids') if pred.ndim == 2 else ''}")
    result = stats.bootstrap((true, pred), lambda t, p: metric(t, p), paired=True, vectorized=False,
                             n_resamples=n_resamples, confidence_level=confidence, method="percentile",
                             random_state=np.random.default_rng(seed))
    return Interval(float(metric(true, pred)), float(result.confidence_interval.low),
                    float(result.confidence_interval.high), confidence)


def paired_bootstrap_difference(metric: Metric, y_true, pred_a, pred_b, n_resamples: int = 2000,
                                confidence: float = 0.95, seed: int = 0) -> Interval:
    """Interval of ``metric(a) − metric(b)`` on the same resampled examples (a paired comparison)."""
    _check_bootstrap(n_resamples, confidence)
    true, a, b = (np.asarray(x) for x in (y_true, pred_a, pred_b))
    if not (true.shape == a.shape == b.shape) or true.ndim != 1:
        raise ValueError(f"y_true, pred_a and pred_b must be 1-D of equal length, got {true.shape}, {a.shape}, {b.shape}."
                         f"{next((kind_hint(x, 'class ids') for x in (a, b) if x.ndim == 2), '')}")
    result = stats.bootstrap((true, a, b), lambda t, x, y: metric(t, x) - metric(t, y), paired=True,
                             vectorized=False, n_resamples=n_resamples, confidence_level=confidence,
                             method="percentile", random_state=np.random.default_rng(seed))
    return Interval(float(metric(true, a) - metric(true, b)), float(result.confidence_interval.low),
                    float(result.confidence_interval.high), confidence)


def bootstrap_seed_mean(metric: Metric, y_true, predictions, baseline=None, n_resamples: int = 2000,
                        confidence: float = 0.95, seed: int = 0, groups=None) -> Interval:
    """Interval of a metric averaged over several training seeds, resampling the test examples.

    ``predictions`` has one row per seed (``(seeds, examples)``; a 1-D array is one seed). With ``baseline``
    (same shape) the interval is of the paired difference mean(metric(predictions)) − mean(metric(baseline)):
    both scored on the same resampled examples, so the examples' own difficulty cancels out. ``groups`` (one
    id per example) resamples whole groups of related examples (a cluster bootstrap), e.g. the phrases of
    one sentence, which are not independent of each other.
    """
    _check_bootstrap(n_resamples, confidence)
    true = np.asarray(y_true)
    sets = [np.atleast_2d(np.asarray(predictions))]
    if baseline is not None:
        sets.append(np.atleast_2d(np.asarray(baseline)))
    if true.ndim != 1 or any(s.ndim != 2 or s.shape[1] != len(true) for s in sets):
        raise ValueError(f"predictions (and baseline) must be (seeds, {len(true)}) for {len(true)} labels, got "
                         f"{[s.shape for s in sets]}.")

    def statistic(rows: np.ndarray) -> float:
        means = [np.mean([metric(true[rows], row[rows]) for row in s]) for s in sets]
        return means[0] - means[1] if baseline is not None else means[0]

    rng = np.random.default_rng(seed)
    every = np.arange(len(true))
    if groups is None:
        draw = lambda: rng.integers(0, len(true), len(true))  # noqa: E731
    else:
        groups = np.asarray(groups)
        if groups.shape != true.shape:
            raise ValueError(f"groups must hold one id per example ({len(true)}), got shape {groups.shape}.")
        order = np.argsort(groups, kind="stable")
        _, starts, counts = np.unique(groups[order], return_index=True, return_counts=True)

        def draw() -> np.ndarray:  # whole groups, drawn with replacement
            chosen = rng.integers(0, len(starts), len(starts))
            sizes = counts[chosen]
            first = np.repeat(starts[chosen] - np.cumsum(sizes) + sizes, sizes)
            return order[first + np.arange(sizes.sum())]
    draws = np.array([statistic(draw()) for _ in range(n_resamples)])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return Interval(float(statistic(every)), float(low), float(high), confidence)


@dataclass(frozen=True)
class McNemarResult:
    only_a_correct: int
    only_b_correct: int
    p_value: float


def mcnemar_test(y_true, pred_a, pred_b) -> McNemarResult:
    """McNemar's exact test: do models a and b err on the same examples equally often?

    Only the discordant examples count (one model right, the other wrong); under the null hypothesis
    each is equally likely to favour either model, so their split is Binomial(n, 1/2).
    """
    true, a, b = (np.asarray(x) for x in (y_true, pred_a, pred_b))
    for name, values in (("y_true", true), ("pred_a", a), ("pred_b", b)):
        if values.size and prediction_kind(values) != "class ids":  # McNemar counts right and wrong class ids
            check_class_ids(values, name)
    if not (true.shape == a.shape == b.shape) or true.ndim != 1:
        raise ValueError(f"y_true, pred_a and pred_b must be 1-D of equal length, got {true.shape}, {a.shape}, {b.shape}.")
    if true.size == 0:
        raise ValueError("mcnemar_test got no examples: pass the labels and both models' predictions on the test set.")
    only_a = int(((a == true) & (b != true)).sum())
    only_b = int(((a != true) & (b == true)).sum())
    p_value = 1.0 if only_a + only_b == 0 else stats.binomtest(only_a, only_a + only_b, 0.5).pvalue
    return McNemarResult(only_a, only_b, float(p_value))


# ---------------------------------------------------------------------------------------------
# Calibration


def reliability_table(y_true, y_prob, n_bins: int = 10) -> pd.DataFrame:
    """Top-label confidence in ``n_bins`` equal-width bins: mean confidence, accuracy and count per bin."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    prob = np.asarray(y_prob, dtype=float)
    if prob.ndim != 2:
        raise ValueError(f"y_prob must have shape (examples, classes), got {prob.shape}.{kind_hint(y_prob, 'probabilities')}")
    true, _ = check_labels(y_true, None, prob.shape[1])
    prob = check_probabilities(prob, len(true), prob.shape[1])
    confidence, predicted = prob.max(axis=1), prob.argmax(axis=1)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        inside = bins == b
        rows.append({"low": b / n_bins, "high": (b + 1) / n_bins, "count": int(inside.sum()),
                     "confidence": float(confidence[inside].mean()) if inside.any() else np.nan,
                     "accuracy": float((predicted[inside] == true[inside]).mean()) if inside.any() else np.nan})
    return pd.DataFrame(rows)


def expected_calibration_error(y_true, y_prob, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean gap |accuracy − confidence| over equal-width confidence bins."""
    table = reliability_table(y_true, y_prob, n_bins).dropna()
    return float((table["count"] * (table["accuracy"] - table["confidence"]).abs()).sum() / table["count"].sum())


def check_logits(logits) -> np.ndarray:
    """``logits`` as a finite ``(examples, classes)`` float array."""
    z = np.asarray(logits, dtype=float)
    if z.ndim != 2:
        raise ValueError(f"logits must have shape (examples, classes), got {z.shape}.")
    if not np.isfinite(z).all():
        raise ValueError("logits must be finite; log-probabilities of exactly 0 give -inf "
                         "(pass the model's logits, or clip the probabilities before the log).")
    return z


def softmax_with_temperature(logits, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / T) row by row."""
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not 0 < temperature < np.inf:
        raise ValueError(f"The temperature must be a positive finite number, got {temperature!r}.")
    return special.softmax(check_logits(logits) / temperature, axis=1)


def fit_temperature(logits, y_true) -> float:
    """The temperature T > 0 that minimises the negative log-likelihood of ``y_true`` (Guo et al., 2017).

    Fit it on validation data, then apply it to test logits: it changes confidence, never the argmax.
    """
    z = check_logits(logits)
    true, _ = check_labels(y_true, None, z.shape[1])
    if len(true) != len(z):
        raise ValueError(f"logits and y_true must have the same length, got {len(z)} and {len(true)}.")

    def nll(log_t: float) -> float:
        return float(-special.log_softmax(z / np.exp(log_t), axis=1)[np.arange(len(true)), true].mean())

    best = optimize.minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(best.x))
