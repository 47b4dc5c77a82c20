"""The shared input checks: each refuses what it must with a message that says what is wrong, and lets pass
what is right (the edges included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value

from textclf_utils import checks


def dataset(texts, labels, names=("negative", "positive")):
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(names))})
    return Dataset.from_dict({"text": texts, "label": labels}, features=features)


class Model(torch.nn.Module):
    """A stand-in with a config, token embeddings and a position limit."""

    def __init__(self, num_labels=2, positions=64, vocab=100, id2label=None):
        super().__init__()
        self.embeddings = torch.nn.Embedding(vocab, 4)
        self.config = type("Config", (), {"num_labels": num_labels, "max_position_embeddings": positions,
                                          "id2label": id2label or {0: "negative", 1: "positive"}})()

    def get_input_embeddings(self):
        return self.embeddings


@pytest.mark.parametrize("value, expected", [(2, 2.0), (np.float32(0.5), 0.5), (torch.tensor([3.0]), 3.0),
                                             (True, None), ("2", None), (torch.zeros(2), None), (np.bool_(1), None)])
def test_a_real_number_is_a_python_numpy_or_one_element_tensor_number(value, expected):
    assert checks.as_real_number(value) == expected


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf"), "1", None, True])
def test_check_positive_refuses_what_is_not_a_positive_finite_number(value):
    with pytest.raises(ValueError, match=r"rate must be a positive finite number, got"):
        checks.check_positive(rate=value)


def test_check_positive_takes_the_smallest_positive_numbers():
    checks.check_positive(a=1e-300, b=np.float64(2.0), c=torch.tensor(0.5))


@pytest.mark.parametrize("value", [0, -3, 1.0, 2.5, True, np.bool_(True), None, "4"])
def test_check_positive_int_refuses_what_is_not_a_whole_number_from_one(value):
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer, got"):
        checks.check_positive_int(batch_size=value)


def test_positive_ints_from_one_and_none_where_it_means_no_limit():
    checks.check_positive_int(a=1, b=np.int64(7))
    checks.check_optional_positive_int(max_steps=None, batch_size=1)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        checks.check_optional_positive_int(max_steps=None, batch_size=0)


def test_texts_are_a_sequence_of_strings():
    assert checks.check_texts(("a", "b")) == ["a", "b"]
    with pytest.raises(ValueError, match="got one string: wrap it in a list"):
        checks.check_texts("a film")
    with pytest.raises(ValueError, match=r"texts\[1\] is None, not a string"):
        checks.check_texts(["a", None])


def test_a_models_classes_and_length_limit_come_from_its_config_or_itself():
    assert checks.model_num_labels(Model(num_labels=3)) == 3
    assert checks.model_num_labels(torch.nn.Linear(2, 2)) is None
    tokenizer = type("Tokenizer", (), {"model_max_length": 32})()
    assert checks.model_max_length(Model(positions=64)) == 64
    assert checks.model_max_length(Model(positions=64), tokenizer) == 32
    huge = type("Tokenizer", (), {"model_max_length": 10**30})()  # transformers' "no limit"
    assert checks.model_max_length(Model(positions=64), huge) == 64
    assert checks.model_max_length(torch.nn.Linear(2, 2)) is None


def test_a_classification_dataset_passes_with_text_label_and_ids_in_range():
    checks.check_classification_dataset(dataset(["a", "b"], [0, 1]), 2, model=Model())


@pytest.mark.parametrize("make, num_labels, message", [
    (lambda: None, 2, "The train set is None"),
    (lambda: Dataset.from_dict({"sentence": ["a"], "label": [0]}), 2, r"no \['text'\] column"),
    (lambda: dataset([], []), 2, "is empty"),
    (lambda: Dataset.from_dict({"text": ["a", None], "label": [0, 1]}), 2, "must hold strings; 1 rows do not"),
    (lambda: Dataset.from_dict({"text": ["a", "b"], "label": ["pos", "neg"]}), 2, "must hold integer class ids"),
    (lambda: Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 2, -1]}), 2, r"label ids \[-1, 2\] outside 0..1"),
])
def test_a_bad_classification_dataset_is_refused_by_name(make, num_labels, message):
    with pytest.raises(ValueError, match=message):
        checks.check_classification_dataset(make(), num_labels, name="train set")


def test_class_names_that_give_an_id_another_meaning_are_refused():
    swapped = dataset(["a", "b"], [0, 1], names=("positive", "negative"))
    with pytest.raises(ValueError, match=r"classes are \['positive', 'negative'\].*model's are \['negative', 'positive'\]"):
        checks.check_label_names(swapped, Model(), "test set")
    checks.check_label_names(dataset(["a"], [0], names=("negative",)), Model())  # a subset with the same ids
    checks.check_label_names(swapped, Model(id2label={0: "LABEL_0", 1: "LABEL_1"}))  # a model given no names


@pytest.mark.parametrize("value", [1, 0, 2.0, True, "8"])
def test_max_length_is_a_whole_number_of_at_least_two(value):
    with pytest.raises(ValueError, match="max_length must be an integer of at least 2"):
        checks.check_max_length_value(value)


def test_max_length_up_to_the_models_positions():
    checks.check_max_length(2, Model(positions=64))
    checks.check_max_length(64, Model(positions=64))
    with pytest.raises(ValueError, match="max_length=65 is above the model's limit of 64 tokens"):
        checks.check_max_length(65, Model(positions=64))


@pytest.mark.parametrize("size, fits", [(100, True), (50, True), (49, False), (101, False)])
def test_a_tokenizer_fits_a_model_between_half_and_all_of_its_embedding_rows(size, fits):
    tokenizer = type("Tokenizer", (), {"__len__": lambda self: size})()
    if fits:
        checks.check_tokenizer_fits_model(tokenizer, Model(vocab=100))
    else:
        with pytest.raises(ValueError, match=f"The tokenizer has {size} tokens but the model's embedding table 100"):
            checks.check_tokenizer_fits_model(tokenizer, Model(vocab=100))


@pytest.mark.parametrize("values, kind", [
    ([0, 2, 1], "class ids"), ([True, False], "class ids"), ([0.0, 1.0], "class ids"), ([0.2, 0.9], "scores"),
    ([np.nan, 1.0], "scores"), ([[0.3, 0.7], [1.0, 0.0]], "probabilities"), ([[0.3, 0.8], [1.0, 0.0]], "logits"),
    ([[-1.0, 2.0]], "logits"), ([[[0.5, 0.5]]], "a 3-D array"), ([[0.30004, 0.7]], "probabilities"),
])
def test_the_kind_of_predictions_is_told_from_their_shape_and_values(values, kind):
    assert checks.prediction_kind(np.array(values)) == kind


def test_class_ids_are_refused_with_what_they_look_like_and_the_fix():
    assert checks.check_class_ids([1, 0]).tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"y_pred must be class ids.*looks like probabilities \(shape \(1, 2\).*argmax"):
        checks.check_class_ids([[0.4, 0.6]])
    with pytest.raises(ValueError, match=r"labels must be class ids.*looks like scores.*threshold"):
        checks.check_class_ids([0.4, 0.6], "labels")
    assert "argmax" in checks.kind_hint([[2.0, -1.0]], "class ids") and checks.kind_hint([0, 1], "class ids") == ""


def test_the_probability_hint_says_what_was_passed_instead():
    assert "not its predicted classes" in checks.kind_hint([0, 1], "probabilities")
    assert "np.stack([1 - p, p], axis=1)" in checks.kind_hint([0.2, 0.8], "probabilities")
    assert "softmax" in checks.kind_hint([[2.0, -1.0]], "probabilities")
    assert checks.kind_hint([[0.5, 0.5]], "probabilities") == ""
