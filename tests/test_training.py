"""Tests of textclf_utils.training: the plain loop, evaluation, bad input, AMP choice, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from torch import nn

from textclf_utils import training
from textclf_utils.data import load_course_dataset, stratified_subsample
from textclf_utils.models import load_tokenizer

LABELS = ("negative", "positive")


def _dataset(texts, labels, names=LABELS) -> Dataset:
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(names))})
    return Dataset.from_dict({"text": list(texts), "label": list(labels)}, features=features)


@pytest.fixture(scope="module")
def sst2_small(mirror):
    data = load_course_dataset("sst2")
    return stratified_subsample(data["train"], 96, seed=0), stratified_subsample(data["validation"], 64, seed=0)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread, above all on a machine shared with other jobs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(None)


def tiny_bert(tokenizer, num_labels: int = 2, seed: int = 0):
    """A 2-layer, 32-wide BERT with random weights: the real architecture and tokenizer, fast on a CPU."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512,
                        num_labels=num_labels)
    return BertForSequenceClassification(config)


@pytest.fixture
def bert(tokenizer):
    return tokenizer, tiny_bert(tokenizer)


class TinyBagOfWords(nn.Module):
    """A from-scratch-style classifier that returns a logits tensor, not an output object."""

    def __init__(self, vocab_size: int, num_labels: int = 2):
        super().__init__()
        self.num_labels = num_labels
        self.embed = nn.EmbeddingBag(vocab_size, 16, mode="sum")
        self.head = nn.Linear(16, num_labels)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        weights = attention_mask.float() / attention_mask.sum(dim=1, keepdim=True)  # mean over real tokens
        return self.head(self.embed(input_ids, per_sample_weights=weights))


# --- the loop -------------------------------------------------------------------------------------


def test_loop_lowers_the_loss_and_restores_the_best_epoch(bert, sst2_small):
    tokenizer, model = bert
    train, dev = sst2_small
    result = training.train_classifier(
        model, tokenizer, train, dev, epochs=8, learning_rate=1e-2, batch_size=16, max_length=48,
        device="cpu", progress=False)
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]  # it fits the training set
    assert [h["epoch"] for h in result.history] == list(range(1, 9))
    for record in result.history:
        assert {"epoch", "train_loss", "eval_loss", "eval_accuracy", "seconds"} <= set(record)
    accuracies = [h["eval_accuracy"] for h in result.history]
    assert result.best_eval_accuracy == max(accuracies)
    assert result.history[result.best_epoch - 1]["eval_accuracy"] == result.best_eval_accuracy
    # the model holds the best epoch's weights: evaluating it again gives that epoch's figures
    final = training.evaluate_classifier(model, tokenizer, dev, batch_size=32, max_length=48, device="cpu")
    assert final["accuracy"] == pytest.approx(result.best_eval_accuracy)
    assert final["loss"] == pytest.approx(result.history[result.best_epoch - 1]["eval_loss"], rel=1e-4)
    assert result.steps == 8 * math.ceil(96 / 16) and len(result.step_losses) == result.steps
    assert result.precision == "fp32"


def test_evaluation_returns_probabilities_in_dataset_order(bert, sst2_small):
    tokenizer, model = bert
    _, dev = sst2_small
    metrics = training.evaluate_classifier(model, tokenizer, dev, batch_size=7, max_length=48, device="cpu")
    probabilities = metrics["probabilities"]
    assert probabilities.shape == (len(dev), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(metrics["labels"], np.asarray(dev["label"]))
    np.testing.assert_array_equal(metrics["predictions"], probabilities.argmax(axis=1))
    # one example at a time, unsorted and unpadded, gives the same probabilities
    model.eval()
    with torch.no_grad():
        for i in (0, 17, len(dev) - 1):
            encoded = tokenizer(dev[i]["text"], truncation=True, max_length=48, return_tensors="pt")
            expected = torch.softmax(model(**encoded).logits, dim=-1)[0].numpy()
            np.testing.assert_allclose(probabilities[i], expected, atol=1e-5)
    assert metrics["accuracy"] == pytest.approx(float((metrics["predictions"] == metrics["labels"]).mean()))


def test_model_returning_a_tensor_and_max_steps(bert):
    tokenizer, _ = bert
    texts = ["good fine great lovely"] * 20 + ["bad awful poor dreadful"] * 20
    data = _dataset(texts, [1] * 20 + [0] * 20)
    torch.manual_seed(0)
    model = TinyBagOfWords(tokenizer.vocab_size)
    result = training.train_classifier(model, tokenizer, data, data, epochs=50, max_steps=30,
                                       learning_rate=0.05, batch_size=8, max_length=16, device="cpu",
                                       warmup_ratio=0.0, progress=False)
    assert result.steps == 30
    assert result.best_eval_accuracy == 1.0
    assert result.history[-1]["eval_loss"] < result.history[0]["eval_loss"]


def test_custom_loss_function_is_used(bert):
    tokenizer, _ = bert
    data = _dataset(["a good film", "a bad film"] * 8, [1, 0] * 8)
    calls = []

    def loss_fn(logits, labels):
        calls.append(len(labels))
        return nn.functional.cross_entropy(logits, labels)

    training.train_classifier(TinyBagOfWords(tokenizer.vocab_size), tokenizer, data, None, epochs=1,
                              learning_rate=0.01, batch_size=4, max_length=8, device="cpu", loss_fn=loss_fn,
                              progress=False)
    assert calls == [4, 4, 4, 4]


def test_same_seed_same_cpu_result_twice(tokenizer, sst2_small):
    train, dev = sst2_small
    runs = []
    for _ in range(2):
        model = tiny_bert(tokenizer)
        result = training.train_classifier(model, tokenizer, train, dev, epochs=2,
                                           learning_rate=1e-3, batch_size=16, max_length=32, device="cpu",
                                           seed=7, progress=False)
        runs.append((result.step_losses, result.history[0]["eval_loss"],
                     model.classifier.weight.detach().clone()))
    assert runs[0][0] == runs[1][0] and len(runs[0][0]) == 12
    assert runs[0][1] == runs[1][1]
    assert torch.equal(runs[0][2], runs[1][2])


# --- batching ------------------------------------------------------------------------------------


def test_length_grouping_and_dynamic_padding_waste_less(bert, sst2_small):
    tokenizer, _ = bert
    train, _ = sst2_small
    features = training.tokenize_dataset(train, tokenizer, max_length=64)
    generator = torch.Generator().manual_seed(0)
    from torch.utils.data import DataLoader

    naive = DataLoader(features, batch_size=16, collate_fn=training.make_collator(tokenizer, True, 64))
    dynamic = DataLoader(features, batch_size=16, shuffle=True, generator=generator,
                         collate_fn=training.make_collator(tokenizer))
    grouped = DataLoader(features, batch_size=16, collate_fn=training.make_collator(tokenizer),
                         sampler=training.length_grouped_sampler(features, 16, generator))
    waste = [training.padding_fraction(loader) for loader in (naive, dynamic, grouped)]
    assert waste[0] > waste[1] > waste[2]
    assert next(iter(naive))["input_ids"].shape[1] == 64
    assert sorted(i for b in grouped for i in b["labels"].tolist()) == sorted(train["label"])


# --- mixed precision -----------------------------------------------------------------------------


def test_amp_choice():
    assert training.amp_settings("cpu") == training.AmpSettings(None, False)
    assert training.amp_settings("cuda", bf16_supported=True) == training.AmpSettings(torch.bfloat16, False)
    assert training.amp_settings("cuda", bf16_supported=False) == training.AmpSettings(torch.float16, True)
    assert training.amp_settings("cuda", enabled=False, bf16_supported=True).dtype is None
    assert training.amp_settings("cuda", bf16_supported=True).name == "bfloat16"


def test_autocast_context_follows_the_settings():
    with training.autocast(torch.device("cpu"), training.AmpSettings(None, False)):
        assert not torch.is_autocast_enabled("cpu")
    with training.autocast(torch.device("cpu"), training.AmpSettings(torch.bfloat16, False)):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16


# --- bad input, caught before training -----------------------------------------------------------


def _train(model, tokenizer, train, **overrides):
    kwargs = dict(epochs=1, learning_rate=1e-4, batch_size=4, max_length=16, device="cpu", progress=False)
    kwargs.update(overrides)
    return training.train_classifier(model, tokenizer, train, None, **kwargs)


@pytest.fixture
def untouched_model(bert):
    tokenizer, model = bert
    before = {k: v.clone() for k, v in model.state_dict().items()}
    yield tokenizer, model
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "training started despite bad input"


def test_empty_dataset_is_refused(untouched_model):
    tokenizer, model = untouched_model
    with pytest.raises(ValueError, match="empty"):
        _train(model, tokenizer, _dataset([], []))


def test_label_ids_outside_num_labels_are_refused(untouched_model):
    tokenizer, model = untouched_model
    features = Features({"text": Value("string"), "label": Value("int64")})
    data = Dataset.from_dict({"text": ["fine", "bad", "odd"], "label": [1, 0, 2]}, features=features)
    with pytest.raises(ValueError, match=r"label ids \[2\] outside 0..1"):
        _train(model, tokenizer, data)


def test_missing_text_column_is_refused(untouched_model):
    tokenizer, model = untouched_model
    data = _dataset(["fine", "bad"], [1, 0]).rename_column("text", "sentence")
    with pytest.raises(ValueError, match="no \\['text'\\] column"):
        _train(model, tokenizer, data)


def test_max_length_above_the_model_limit_is_refused(untouched_model):
    tokenizer, model = untouched_model
    limit = training.model_max_length(model, tokenizer)
    assert limit == 512
    with pytest.raises(ValueError, match="above the model's limit of 512"):
        _train(model, tokenizer, _dataset(["fine", "bad"], [1, 0]), max_length=1024)


def test_bad_evaluation_set_is_refused_before_training(untouched_model):
    tokenizer, model = untouched_model
    good = _dataset(["fine", "bad"], [1, 0])
    with pytest.raises(ValueError, match="evaluation dataset is empty"):
        training.train_classifier(model, tokenizer, good, _dataset([], []), epochs=1, learning_rate=1e-4,
                                  batch_size=2, max_length=16, device="cpu", progress=False)
