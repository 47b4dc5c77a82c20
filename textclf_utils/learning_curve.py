"""Learning curves: test accuracy against the number of labelled examples, for several methods, with
intervals, and the paired gaps between methods at each size (notebook 02, "why pre-training matters").

Protocol: every choice a method makes (regularisation strength, learning rate, epoch) is made on the
validation set; each final model is scored once on the test set. ``LearningCurve`` holds, per
(method, size), the test predictions and the choice made, so intervals and paired tests can be computed
from the same test sentences for every method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from .metrics import Interval, bootstrap_interval, paired_bootstrap_difference

DEFAULT_C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass
class CurvePoint:
    """One method trained on ``size`` labelled examples: its validation accuracy (the selection figure),
    its test predictions (scored once), and what was chosen on validation."""

    method: str
    size: int
    validation_accuracy: float
    test_predictions: np.ndarray
    choice: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


class LearningCurve:
    """Curve points on one fixed test set (``test_labels``), indexed by (method, size)."""

    def __init__(self, test_labels: Sequence[int]) -> None:
        self.test_labels = np.asarray(test_labels)
        if self.test_labels.ndim != 1 or len(self.test_labels) < 2:
            raise ValueError(f"test_labels must be a 1-D sequence of ≥ 2 label ids, got shape {self.test_labels.shape}.")
        self.points: dict[tuple[str, int], CurvePoint] = {}

    def add(self, point: CurvePoint) -> CurvePoint:
        predictions = np.asarray(point.test_predictions)
        if predictions.shape != self.test_labels.shape:
            raise ValueError(f"{point.method} at {point.size}: {predictions.shape[0] if predictions.ndim else 0} test "
                             f"predictions for {len(self.test_labels)} test labels.")
        point.test_predictions = predictions
        self.points[(point.method, point.size)] = point
        return point

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(method for method, _ in self.points))

    @property
    def sizes(self) -> list[int]:
        return sorted({size for _, size in self.points})

    def _point(self, method: str, size: int) -> CurvePoint:
        try:
            return self.points[(method, size)]
        except KeyError:
            raise KeyError(f"No point for {method!r} at {size} examples; have {sorted(self.points)}.") from None

    def accuracy(self, method: str, size: int, n_resamples: int = 2000, seed: int = 0) -> Interval:
        """Test accuracy with its 95 % percentile bootstrap interval (resampling test sentences)."""
        return bootstrap_interval(accuracy_score, self.test_labels, self._point(method, size).test_predictions,
                                  n_resamples=n_resamples, seed=seed)

    def gap(self, method_a: str, method_b: str, size: int, n_resamples: int = 2000, seed: int = 0) -> Interval:
        """Accuracy of ``method_a`` minus ``method_b`` at ``size``, with a paired bootstrap interval."""
        return paired_bootstrap_difference(accuracy_score, self.test_labels,
                                           self._point(method_a, size).test_predictions,
                                           self._point(method_b, size).test_predictions,
                                           n_resamples=n_resamples, seed=seed)

    def table(self, n_resamples: int = 2000) -> pd.DataFrame:
        """One row per (method, size): validation accuracy, test accuracy and its 95 % interval, the choice."""
        rows = []
        for (method, size), point in self.points.items():
            interval = self.accuracy(method, size, n_resamples)
            rows.append({"method": method, "examples": size, "validation acc": point.validation_accuracy,
                         "test acc": interval.estimate, "95% low": interval.low, "95% high": interval.high,
                         "chosen on validation": ", ".join(f"{k}={v}" for k, v in point.choice.items()),
                         "seconds": round(point.seconds)})
        return pd.DataFrame(rows).sort_values(["method", "examples"], key=lambda s: s.map(
            {m: i for i, m in enumerate(self.methods)}) if s.name == "method" else s).reset_index(drop=True)

    def to_record(self) -> dict[str, Any]:
        """The curve as plain numbers: sizes, and per method the test accuracy at each size."""
        return {"sizes": self.sizes,
                **{method: [round(float(accuracy_score(self.test_labels, self._point(method, size).test_predictions)), 4)
                            for size in self.sizes if (method, size) in self.points]
                   for method in self.methods}}


def _select_logistic_regression(train_x, train_y, validation_x, validation_y, c_grid: Sequence[float],
                                 max_iter: int = 2000) -> tuple[LogisticRegression, float, float]:
    """Fit one logistic regression per C, keep the best on validation (ties: the smaller C)."""
    if len(c_grid) == 0:
        raise ValueError("c_grid must hold at least one value of C.")
    best = None
    for c in c_grid:
        model = LogisticRegression(C=c, max_iter=max_iter).fit(train_x, train_y)
        accuracy = accuracy_score(validation_y, model.predict(validation_x))
        if best is None or accuracy > best[1]:
            best = (model, accuracy, c)
    return best


def tfidf_logistic_regression(train_texts, train_labels, validation_texts, validation_labels, test_texts,
                              c_grid: Sequence[float] = DEFAULT_C_GRID) -> tuple[np.ndarray, float, dict[str, Any]]:
    """TF-IDF of word unigrams and bigrams + logistic regression, C chosen on validation.
    Returns ``(test predictions, validation accuracy, {"C": chosen})``."""
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    train_x = vectorizer.fit_transform(list(train_texts))
    model, accuracy, c = _select_logistic_regression(train_x, np.asarray(train_labels),
                                                     vectorizer.transform(list(validation_texts)),
                                                     np.asarray(validation_labels), c_grid)
    return model.predict(vectorizer.transform(list(test_texts))), accuracy, {"C": c}


@torch.no_grad()
def mean_pooled_features(model, tokenizer, texts: Sequence[str], max_length: int, batch_size: int = 64,
                         device: torch.device | str = "cpu") -> np.ndarray:
    """The frozen encoder's mean-pooled final token vectors, one row per text (padding excluded).

    ``model`` is an ``encoder.Encoder`` or a ``transformers`` encoder: anything whose output has
    ``last_hidden_state``. Texts are batched in order of length (less padding) and returned in input order.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("No texts to encode.")
    model.eval().to(device)
    order = np.argsort([len(t) for t in texts], kind="stable")
    features = [None] * len(texts)
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt").to(device)
        states = model(**batch).last_hidden_state
        weights = batch["attention_mask"].to(states.dtype)[:, :, None]
        pooled = ((states * weights).sum(1) / weights.sum(1).clamp(min=1.0)).float().cpu().numpy()
        for i, vector in zip(rows, pooled):
            features[i] = vector
    return np.stack(features)


def linear_probe(train_features, train_labels, validation_features, validation_labels, test_features,
                 c_grid: Sequence[float] = DEFAULT_C_GRID) -> tuple[np.ndarray, float, dict[str, Any]]:
    """Logistic regression on frozen features (standardised on the training rows), C chosen on validation.
    Returns ``(test predictions, validation accuracy, {"C": chosen})``."""
    train_features = np.asarray(train_features, dtype=float)
    mean, std = train_features.mean(0), train_features.std(0) + 1e-6
    scale = lambda x: (np.asarray(x, dtype=float) - mean) / std  # noqa: E731
    model, accuracy, c = _select_logistic_regression(scale(train_features), np.asarray(train_labels),
                                                     scale(validation_features), np.asarray(validation_labels),
                                                     c_grid)
    return model.predict(scale(test_features)), accuracy, {"C": c}


def nested_subsets(labels: Sequence[int], sizes: Sequence[int], seed: int = 42) -> dict[int, np.ndarray]:
    """Row indices of stratified training subsets, each containing the smaller ones (so a bigger size
    only adds examples): ``{size: rows}``. The order of a seeded stratified shuffle, cut at each size."""
    labels = np.asarray(labels)
    sizes = sorted(int(s) for s in sizes)
    if not sizes or sizes[0] <= 0 or sizes[-1] > len(labels):
        raise ValueError(f"sizes must be positive and at most the {len(labels)} rows available, got {sizes}.")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    shuffled = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
    shares = {c: len(shuffled[c]) / len(labels) for c in classes}
    subsets = {}
    for size in sizes:
        quotas = {c: int(round(shares[c] * size)) for c in classes}
        quotas[classes[-1]] = size - sum(quotas[c] for c in classes[:-1])
        subsets[size] = np.sort(np.concatenate([shuffled[c][:quotas[c]] for c in classes]))
    return subsets


def epochs_for(size: int, min_examples: int, max_epochs: int) -> int:
    """Enough passes over ``size`` examples to see at least ``min_examples`` (at most ``max_epochs``, at least 1)."""
    if size <= 0 or min_examples <= 0 or max_epochs <= 0:
        raise ValueError(f"size, min_examples and max_epochs must be positive, got {size}, {min_examples}, {max_epochs}.")
    return int(min(max_epochs, max(1, -(-min_examples // size))))


@dataclass
class Selected:
    """The model trained with the learning rate that did best on validation (its best epoch restored)."""

    model: Any
    learning_rate: float
    epoch: int
    validation_accuracy: float
    result: Any  # training.TrainingResult of the chosen run
    validation_by_learning_rate: dict[float, float]


def train_with_selection(build, tokenizer, train_dataset, validation_dataset, learning_rates: Sequence[float],
                         *, epochs: int, batch_size: int, max_length: int, seed: int = 42,
                         progress: bool = False) -> Selected:
    """Train ``build()`` once per learning rate with ``training.train_classifier``, which evaluates on
    ``validation_dataset`` after every epoch and keeps the best epoch; return the run with the best
    validation accuracy (ties: the earlier learning rate). The test set is not touched here."""
    from .training import train_classifier

    if len(learning_rates) == 0:
        raise ValueError("learning_rates must hold at least one value.")
    best, scores = None, {}
    for learning_rate in learning_rates:
        torch.manual_seed(seed)
        model = build()
        result = train_classifier(model, tokenizer, train_dataset, validation_dataset, epochs=epochs,
                                  learning_rate=learning_rate, batch_size=batch_size, max_length=max_length,
                                  seed=seed, progress=progress)
        scores[learning_rate] = result.best_eval_accuracy
        if best is None or result.best_eval_accuracy > best.validation_accuracy:
            best = Selected(model, learning_rate, result.best_epoch, result.best_eval_accuracy, result, scores)
        else:
            del model
    best.validation_by_learning_rate = scores
    return best
