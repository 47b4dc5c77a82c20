"""Input checks that several modules share, made before any long work starts: numbers, texts, a classification
dataset and the model it meets, the model's limits, and predictions (class ids, probabilities or logits).

Each raises ``ValueError`` (or ``TypeError``) with a message that says what is wrong and what to do.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .data import column_values

TEXT_COLUMN = "text"
LABEL_COLUMN = "label"


# ---------------------------------------------------------------------------------------------
# Numbers and texts


def as_real_number(value: Any) -> float | None:
    """``value`` as a float when it is one real number (Python, NumPy or a one-element tensor), else None."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_complex():
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def check_positive(**values: float) -> None:
    """Raise ``ValueError`` unless every value is a positive finite real number."""
    for name, value in values.items():
        number = as_real_number(value)
        if number is None or not math.isfinite(number) or number <= 0:
            raise ValueError(f"{name} must be a positive finite number, got {value!r}.")


def check_positive_int(**values: int) -> None:
    """Raise ``ValueError`` unless every value is a positive whole number (Python or NumPy)."""
    for name, value in values.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def check_optional_positive_int(**values: int | None) -> None:
    """``check_positive_int`` for the values that are not ``None`` (``None``: "no limit")."""
    check_positive_int(**{name: value for name, value in values.items() if value is not None})


def check_texts(texts: Sequence[str]) -> list[str]:
    """``texts`` as a list of strings; ``ValueError`` naming the first position that holds something else."""
    if isinstance(texts, str):
        raise ValueError("texts must be a sequence of strings, got one string: wrap it in a list.")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{i}] is {text!r}, not a string: drop or fill the missing texts first.")
    return texts


# ---------------------------------------------------------------------------------------------
# A model's limits, and the dataset it meets


def model_num_labels(model: nn.Module) -> int | None:
    """The number of classes ``model`` predicts, when it says so (``config.num_labels`` or ``num_labels``)."""
    config = getattr(model, "config", None)
    for source in (config, model):
        value = getattr(source, "num_labels", None)
        if isinstance(value, int):
            return value
    return None


def model_max_length(model: nn.Module, tokenizer: Any = None) -> int | None:
    """The longest input, in tokens, that ``model`` (and ``tokenizer``) can take, when known."""
    limits = []
    config = getattr(model, "config", None)
    for source, name in ((config, "max_position_embeddings"), (model, "max_position_embeddings"),
                         (model, "max_length")):
        value = getattr(source, name, None)
        if isinstance(value, int):
            limits.append(value)
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and tokenizer_limit < 1_000_000:  # huge = "no limit" sentinel
        limits.append(tokenizer_limit)
    return min(limits) if limits else None


def check_classification_dataset(dataset, num_labels: int | None, name: str = "dataset",
                                 model: nn.Module | None = None) -> None:
    """Raise ``ValueError`` unless ``dataset`` is non-empty, has ``text``/``label`` and valid label ids, and,
    given the ``model``, its class names (a ``ClassLabel``) mean what the model's ``id2label`` says."""
    if dataset is None:
        raise ValueError(f"The {name} is None; expected a datasets.Dataset with 'text' and 'label' columns.")
    columns = list(getattr(dataset, "column_names", []) or [])
    missing = [c for c in (TEXT_COLUMN, LABEL_COLUMN) if c not in columns]
    if missing:
        raise ValueError(f"The {name} has no {missing} column(s); its columns are {columns}. "
                         f"Expected a '{TEXT_COLUMN}' column of strings and a '{LABEL_COLUMN}' column of class ids "
                         "(rename yours with dataset.rename_column).")
    if len(dataset) == 0:
        raise ValueError(f"The {name} is empty: there is nothing to train or evaluate on.")
    not_text = [i for i, text in enumerate(column_values(dataset, TEXT_COLUMN)) if not isinstance(text, str)]
    if not_text:
        raise ValueError(f"The {name}'s '{TEXT_COLUMN}' column must hold strings; {len(not_text)} rows do not, "
                         f"the first at index {not_text[0]} ({dataset[not_text[0]][TEXT_COLUMN]!r}). Drop or fill "
                         "them first, e.g. dataset.filter(lambda row: isinstance(row['text'], str)).")
    labels = np.asarray(column_values(dataset, LABEL_COLUMN))
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"The {name}'s '{LABEL_COLUMN}' column must hold integer class ids, got {labels.dtype} "
                         "(map label names to ids first, e.g. with a datasets.ClassLabel).")
    if num_labels is not None:
        bad = (labels < 0) | (labels >= num_labels)
        if bad.any():
            raise ValueError(f"The {name} has label ids {sorted(set(labels[bad].tolist()))[:10]} outside "
                             f"0..{num_labels - 1} (the model has num_labels={num_labels}); "
                             f"{int(bad.sum())} rows, the first at index {int(np.flatnonzero(bad)[0])}.")
    if model is not None:
        check_label_names(dataset, model, name)


def check_label_names(dataset, model: nn.Module, name: str = "dataset") -> None:
    """Refuse class names that give an id another class than the model's ``id2label`` does: e.g. a test file
    loaded on its own, whose label set sorts differently. A model given no names (``LABEL_0`` ...) passes."""
    names = getattr(getattr(dataset, "features", {}).get(LABEL_COLUMN), "names", None)
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
    model_names = [str(id2label[k]) for k in sorted(id2label, key=int)]
    if not names or all(re.fullmatch(r"LABEL_\d+", n) for n in model_names):
        return  # plain integer labels, or a model that was given no class names
    if list(names) != model_names[:len(names)]:
        raise ValueError(f"The {name}'s classes are {list(names)} (id 0, 1, ...) but the model's are {model_names}: "
                         "the same id would mean different classes. Load every file in one call "
                         "(load_csv_dataset({'train': ..., 'test': ...})) or pass the same label_names=[...].")


def check_max_length_value(max_length: int) -> None:
    """Raise ``ValueError`` unless ``max_length`` is an integer of at least 2 (room for [CLS] and [SEP])."""
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an integer of at least 2 (room for [CLS] and [SEP]), got {max_length!r}.")


def check_max_length(max_length: int, model: nn.Module, tokenizer: Any = None) -> None:
    """Raise ``ValueError`` if ``max_length`` is not positive or above what the model can take."""
    check_max_length_value(max_length)
    limit = model_max_length(model, tokenizer)
    if limit is not None and max_length > limit:
        raise ValueError(f"max_length={max_length} is above the model's limit of {limit} tokens "
                         f"(its position embeddings stop there); use max_length <= {limit}.")


def check_tokenizer_fits_model(tokenizer: Any, model: nn.Module) -> None:
    """Raise ``ValueError`` unless ``tokenizer``'s vocabulary fits ``model``'s token embeddings.

    A tokenizer with more tokens than the embedding table gives ids the model cannot look up; one with
    far fewer (e.g. the 5-token stand-in transformers builds for a folder without tokenizer files) maps
    every word to ``[UNK]``, and training silently ends at majority-class accuracy.
    """
    get_embeddings = getattr(model, "get_input_embeddings", None)
    rows = getattr(get_embeddings() if callable(get_embeddings) else None, "num_embeddings", None)
    try:
        size = len(tokenizer)
    except TypeError:
        return
    if not isinstance(rows, int):
        return
    if size > rows or size < rows // 2:
        raise ValueError(f"The tokenizer has {size} tokens but the model's embedding table {rows} rows: they do not "
                         "belong together. Load the tokenizer saved with the model (tokenizer.save_pretrained() "
                         "into the model's folder), or the one of the model it was fine-tuned from.")


# ---------------------------------------------------------------------------------------------
# Predictions: class ids, probabilities, logits


def prediction_kind(values: np.ndarray) -> str:
    """What an array of predictions looks like: ``"class ids"`` (1-D whole numbers), ``"scores"`` (1-D other
    numbers), ``"probabilities"`` (2-D rows of non-negative numbers summing to 1) or ``"logits"`` (other 2-D)."""
    values = np.asarray(values)
    if values.ndim == 1:
        if np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.bool_):
            return "class ids"
        if np.issubdtype(values.dtype, np.floating) and np.isfinite(values).all() and \
                np.array_equal(values, np.round(values)):
            return "class ids"
        return "scores"
    if values.ndim == 2 and np.issubdtype(values.dtype, np.number):
        as_float = values.astype(float)
        if (as_float >= 0).all() and np.allclose(as_float.sum(axis=1), 1.0, atol=1e-4):
            return "probabilities"
        return "logits"
    return f"a {values.ndim}-D array"


PREDICTION_FIXES = {
    "probabilities": "take the most likely class with y_prob.argmax(axis=1)",
    "logits": "take the most likely class with logits.argmax(axis=1)",
    "scores": "turn scores into classes with a threshold, e.g. (scores >= 0.5).astype(int)",
}


def check_class_ids(values, name: str = "y_pred") -> np.ndarray:
    """``values`` as a 1-D integer array of class ids; ``ValueError`` saying what was passed instead
    (probabilities, logits or scores) and how to turn it into class ids."""
    array = np.asarray(values)
    kind = prediction_kind(array)
    if kind != "class ids":
        fix = PREDICTION_FIXES.get(kind, "pass a 1-D sequence of class ids")
        raise ValueError(f"{name} must be class ids (a 1-D sequence of whole numbers), but it looks like {kind} "
                         f"(shape {array.shape}, dtype {array.dtype}): {fix}.")
    return array.astype(int)


PROBABILITY_FIXES = {
    "class ids": "pass the model's probabilities (softmax of its logits), not its predicted classes",
    "scores": "pass one row per example with a probability per class, e.g. np.stack([1 - p, p], axis=1)",
    "logits": "apply a softmax first, e.g. scipy.special.softmax(logits, axis=1)",
}


def kind_hint(values, expected: str) -> str:
    """What ``values`` look like where ``expected`` ("class ids" or "probabilities") was wanted, and what to do;
    "" when they look right or like nothing known."""
    fixes = {"class ids": PREDICTION_FIXES, "probabilities": PROBABILITY_FIXES}[expected]
    kind = prediction_kind(np.asarray(values))
    return f" It looks like {kind}: {fixes[kind]}." if kind in fixes else ""
