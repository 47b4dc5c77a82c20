"""Tests of textclf_utils.training: the plain loop, evaluation, bad input, AMP choice, determinism."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from torch import nn

from textclf_utils import checks, model_cache, recipes, trainer_recipe, training
from textclf_utils import models as models_module
from textclf_utils.data import load_course_dataset, stratified_subsample

LABELS = ("negative", "positive")
REPO = Path(__file__).resolve().parent.parent


def _dataset(texts, labels, names=LABELS) -> Dataset:
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(names))})
    return Dataset.from_dict({"text": list(texts), "label": list(labels)}, features=features)


@pytest.fixture(scope="module")
def sst2_small(mirror):
    data = load_course_dataset("sst2")
    return stratified_subsample(data["train"], 96, seed=0), stratified_subsample(data["validation"], 64, seed=0)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest


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


def test_length_grouping_and_dynamic_padding_waste_less(bert, mirror):
    tokenizer, _ = bert
    # enough examples for mega-batches of several batches (LengthGroupedSampler: len // (4 * batch_size))
    train = stratified_subsample(load_course_dataset("sst2")["train"], 512, seed=0)
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


def test_the_result_counts_padding_and_samples_exactly(bert):
    tokenizer, _ = bert
    texts = ["good", "a much longer and rather tedious film", "bad film", "fine"]
    lengths = [len(tokenizer(t)["input_ids"]) for t in texts]
    result = _train(tiny_bert(tokenizer), tokenizer, _dataset(texts, [1, 0, 0, 1]), batch_size=4, epochs=2,
                    group_by_length=False)
    assert result.padding_fraction == pytest.approx(1 - sum(lengths) / (len(texts) * max(lengths)))  # one batch
    assert result.train_samples_per_second * result.train_seconds == pytest.approx(2 * len(texts))  # 2 epochs


# --- mixed precision -----------------------------------------------------------------------------


def test_amp_choice():
    assert training.amp_settings("cpu") == training.AmpSettings(None, False)
    assert training.amp_settings("cuda", bf16_supported=True) == training.AmpSettings(torch.bfloat16, False)
    assert training.amp_settings("cuda", bf16_supported=False) == training.AmpSettings(torch.float16, True)
    assert training.amp_settings("cuda", enabled=False, bf16_supported=True).dtype is None
    assert training.amp_settings("cuda", bf16_supported=True).name == "bfloat16"
    assert training.amp_settings("mps").dtype is None  # off by default away from CUDA ...
    with pytest.raises(ValueError, match="Mixed precision is set up for CUDA and the CPU, not 'mps'.*mixed_precision=False"):
        training.amp_settings("mps", enabled=True)  # ... and not offered where it was never tried


def test_bf16_on_a_cpu_only_where_the_cpu_runs_it_natively(monkeypatch):
    # emulated bf16 (a CPU without AVX512-BF16 or AMX) is about 15x slower than fp32: stay in fp32 there
    assert training.amp_settings("cpu", True, bf16_supported=True) == training.AmpSettings(torch.bfloat16, False)
    assert training.amp_settings("cpu", True, bf16_supported=False) == training.AmpSettings(None, False)
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: False)
    assert training.amp_settings("cpu", True).dtype is None and not training.mixed_precision_pays("cpu")
    monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: True)
    assert training.amp_settings("cpu", True).dtype == torch.bfloat16 and training.mixed_precision_pays("cpu")
    assert training.mixed_precision_pays("cuda") and not training.mixed_precision_pays("mps")


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
    limit = checks.model_max_length(model, tokenizer)
    assert limit == 512
    with pytest.raises(ValueError, match="above the model's limit of 512"):
        _train(model, tokenizer, _dataset(["fine", "bad"], [1, 0]), max_length=1024)


def test_bad_evaluation_set_is_refused_before_training(untouched_model):
    tokenizer, model = untouched_model
    good = _dataset(["fine", "bad"], [1, 0])
    with pytest.raises(ValueError, match="evaluation dataset is empty"):
        training.train_classifier(model, tokenizer, good, _dataset([], []), epochs=1, learning_rate=1e-4,
                                  batch_size=2, max_length=16, device="cpu", progress=False)


@pytest.mark.parametrize("override, match", [
    (dict(learning_rate=math.nan), "learning_rate must be a positive finite number, got nan"),
    (dict(learning_rate=math.inf), "learning_rate must be a positive finite number, got inf"),
    (dict(epochs=0), "epochs must be a positive finite number, got 0"),
    (dict(batch_size=0), "batch_size must be a positive integer, got 0"),
    (dict(batch_size=2.5), "batch_size must be a positive integer, got 2.5"),
    (dict(batch_size=True), "batch_size must be a positive integer, got True"),
    (dict(max_steps=0), "max_steps must be a positive integer, got 0"),
    (dict(eval_batch_size=-1), "eval_batch_size must be a positive integer, got -1"),
    (dict(weight_decay=-0.1), "weight_decay must be a finite number >= 0, got -0.1"),
    (dict(weight_decay=math.inf), "weight_decay must be a finite number >= 0, got inf"),
    (dict(max_grad_norm=0.0), "max_grad_norm must be a positive finite number, got 0.0"),
    (dict(warmup_ratio=1.0), r"warmup_ratio must be in \[0, 1\), got 1.0"),
])
def test_bad_hyper_parameters_are_refused_before_training(untouched_model, override, match):
    tokenizer, model = untouched_model
    with pytest.raises(ValueError, match=match):
        _train(model, tokenizer, _dataset(["fine", "bad"], [1, 0]), **override)


def test_texts_that_are_not_strings_are_refused_naming_the_row(untouched_model):
    tokenizer, model = untouched_model
    data = _dataset(["fine", None, "bad", None], [1, 0, 0, 1])
    with pytest.raises(ValueError, match=r"'text' column must hold strings; 2 rows do not, the first at index 1 \(None\)"):
        _train(model, tokenizer, data)


def test_num_labels_that_disagree_with_the_model_are_refused(untouched_model):
    tokenizer, model = untouched_model
    with pytest.raises(ValueError, match="num_labels=3 but the model predicts 2 classes"):
        _train(model, tokenizer, _dataset(["fine", "bad"], [1, 0]), num_labels=3)
    _train(tiny_bert(tokenizer), tokenizer, _dataset(["fine", "bad"], [1, 0]), num_labels=2, max_steps=1)  # agreeing: fine


@pytest.mark.parametrize("device, message", [
    ("cuda", "PyTorch sees no CUDA GPU on this machine"), ("cuda:1", "PyTorch sees no CUDA GPU")])
def test_a_gpu_that_is_not_there_is_refused_before_training(untouched_model, monkeypatch, device, message):
    tokenizer, model = untouched_model
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=message):
        training.train_classifier(model, tokenizer, _dataset(["fine", "bad"], [1, 0]), None, epochs=1,
                                  learning_rate=1e-4, batch_size=2, max_length=16, device=device, progress=False)


def test_a_gpu_number_past_the_last_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert training._resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match=r"device='cuda:1', but this machine has 1 CUDA GPU\(s\), numbered from 0"):
        training._resolve_device("cuda:1")
    assert training._resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("batch_size", [0, -2, 1.5])
def test_length_grouped_sampler_refuses_a_batch_size_below_one(batch_size):
    features = [{"input_ids": [1] * n} for n in (3, 5, 2)]
    with pytest.raises(ValueError, match=f"batch_size must be a positive integer, got {batch_size}"):
        training.length_grouped_sampler(features, batch_size, torch.Generator())
    assert sorted(training.length_grouped_sampler(features, 1, torch.Generator().manual_seed(0))) == [0, 1, 2]


class _Vocab:
    """A stand-in tokenizer: only its vocabulary size matters to the check."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self):
        return self.size


class _Embedded(nn.Module):
    def __init__(self, rows: int):
        super().__init__()
        self.embed = nn.Embedding(rows, 4)

    def get_input_embeddings(self):
        return self.embed


@pytest.mark.parametrize("size, fits", [(100, True), (101, False), (50, True), (49, False), (5, False)])
def test_tokenizer_must_fit_the_embedding_table(size, fits):
    if fits:
        checks.check_tokenizer_fits_model(_Vocab(size), _Embedded(100))
    else:
        with pytest.raises(ValueError, match=f"tokenizer has {size} tokens but the model's embedding table 100"):
            checks.check_tokenizer_fits_model(_Vocab(size), _Embedded(100))


def test_stand_in_tokenizer_of_a_folder_without_one_is_refused_before_training(untouched_model, tmp_path):
    from transformers import AutoTokenizer

    tokenizer, model = untouched_model
    model.config.save_pretrained(tmp_path)  # a config but no vocabulary: transformers invents 5 tokens
    stand_in = AutoTokenizer.from_pretrained(tmp_path)
    assert len(stand_in) < 10
    with pytest.raises(ValueError, match="do not belong together"):
        _train(model, stand_in, _dataset(["fine", "bad"], [1, 0]))
    with pytest.raises(ValueError, match="do not belong together"):
        training.evaluate_classifier(model, stand_in, _dataset(["fine", "bad"], [1, 0]), device="cpu")


def test_non_finite_loss_stops_training_at_that_step(bert):
    tokenizer, _ = bert
    data = _dataset(["a good film", "a bad film"] * 8, [1, 0] * 8)
    model = TinyBagOfWords(tokenizer.vocab_size)
    calls = []

    def loss_fn(logits, labels):
        calls.append(1)
        loss = nn.functional.cross_entropy(logits, labels)
        return loss * math.nan if len(calls) == 3 else loss

    # the rate of step 3: 0.01 decayed linearly over 8 steps, 2 of them done
    with pytest.raises(FloatingPointError, match=r"loss is nan at step 3 \(learning rate 0.0075\)"):
        training.train_classifier(model, tokenizer, data, data, epochs=2, learning_rate=0.01, batch_size=4,
                                  max_length=8, device="cpu", loss_fn=loss_fn, warmup_ratio=0.0, progress=False)
    assert len(calls) == 3 and all(torch.isfinite(p).all() for p in model.parameters())


def test_huge_learning_rate_stops_instead_of_reporting_chance_accuracy(bert):
    tokenizer, _ = bert
    data = _dataset(["a good film", "a bad film"] * 8, [1, 0] * 8)
    with pytest.raises(FloatingPointError, match="Lower the learning rate"):
        training.train_classifier(TinyBagOfWords(tokenizer.vocab_size), tokenizer, data, data, epochs=3,
                                  learning_rate=1e20, batch_size=4, max_length=8, device="cpu", max_grad_norm=None,
                                  warmup_ratio=0.0, progress=False)


# --- the Trainer recipe --------------------------------------------------------------------------


def test_trainer_arguments_follow_the_v5_api_and_the_hardware(tmp_path):
    args = trainer_recipe.trainer_arguments(str(tmp_path), epochs=2, learning_rate=3e-5, batch_size=16, cuda=False)
    assert (args.eval_strategy, args.save_strategy) == ("epoch", "epoch")
    assert args.train_sampling_strategy == "group_by_length"
    assert (args.metric_for_best_model, args.greater_is_better, args.load_best_model_at_end) == ("accuracy", True, True)
    assert (args.save_total_limit, args.save_only_model) == (1, True)  # one model's weights on disk, no optimizer
    assert (args.dataloader_num_workers, args.dataloader_pin_memory) == (0, False)  # a CPU: no workers
    assert (args.per_device_train_batch_size, args.per_device_eval_batch_size) == (16, 32)
    assert not args.bf16 and not args.fp16 and args.use_cpu is False  # one CPU process, no autocast
    assert args.warmup_steps == pytest.approx(0.1) and args.lr_scheduler_type == "linear"
    no_grouping = trainer_recipe.trainer_arguments(str(tmp_path), epochs=1, learning_rate=1e-4, batch_size=8,
                                             group_by_length=False, cuda=False)
    assert no_grouping.train_sampling_strategy == "random"


def test_trainer_precision_on_a_faked_gpu(monkeypatch, tmp_path):
    captured = {}

    class FakeArguments:
        def __init__(self, **kwargs):
            captured.update(kwargs)

    monkeypatch.setattr("transformers.TrainingArguments", FakeArguments)
    trainer_recipe.trainer_arguments(str(tmp_path), epochs=1, learning_rate=1e-4, batch_size=8, cuda=True,
                               bf16_supported=True)
    assert (captured["bf16"], captured["fp16"]) == (True, False)
    trainer_recipe.trainer_arguments(str(tmp_path), epochs=1, learning_rate=1e-4, batch_size=8, cuda=True,
                               bf16_supported=False)
    assert (captured["bf16"], captured["fp16"]) == (False, True)


def test_classification_metrics_match_scikit_learn():
    from transformers import EvalPrediction

    logits = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.3, 0.2]])
    labels = np.array([0, 1, 1, 1])
    metrics = trainer_recipe.classification_metrics(EvalPrediction(predictions=logits, label_ids=labels))
    assert metrics["accuracy"] == 0.5
    # predictions [0, 1, 0, 0]: class 0 has P=1/3, R=1, F1=1/2; class 1 has P=1, R=1/3, F1=1/2
    assert metrics["f1_macro"] == pytest.approx(0.5)


def test_trainer_recipe_trains_and_reports_each_epoch(bert, sst2_small, tmp_path):
    tokenizer, model = bert
    train, dev = sst2_small
    trainer, history = trainer_recipe.train_with_trainer(
        model, tokenizer, train, dev, output_dir=str(tmp_path), epochs=2, learning_rate=1e-2, batch_size=16,
        max_length=32, progress=False, use_cpu=True)
    assert [round(h["epoch"]) for h in history] == [1, 2]
    for record in history:
        assert {"train_loss", "eval_loss", "eval_accuracy", "eval_f1_macro"} <= set(record)
    best = max(h["eval_accuracy"] for h in history)
    metrics = training.evaluate_classifier(trainer.model, tokenizer, dev, batch_size=32, max_length=32,
                                           device="cpu")
    assert metrics["accuracy"] == pytest.approx(best)


def test_trainer_recipe_refuses_bad_input_before_training(bert, tmp_path):
    tokenizer, model = bert
    with pytest.raises(ValueError, match="above the model's limit"):
        trainer_recipe.train_with_trainer(model, tokenizer, _dataset(["a"], [0]), _dataset(["b"], [1]),
                                    output_dir=str(tmp_path), epochs=1, learning_rate=1e-4, batch_size=2,
                                    max_length=600)
    assert not any(tmp_path.iterdir())
    small = tiny_bert(tokenizer)
    small.resize_token_embeddings(1000)  # fewer token embeddings than the tokenizer has ids
    with pytest.raises(ValueError, match="tokenizer"):
        trainer_recipe.train_with_trainer(small, tokenizer, _dataset(["a"], [0]), _dataset(["b"], [1]),
                                          output_dir=str(tmp_path), epochs=1, learning_rate=1e-4, batch_size=2,
                                          max_length=16)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    with pytest.raises(NotADirectoryError, match="is a file"):
        trainer_recipe.train_with_trainer(model, tokenizer, _dataset(["a"], [0]), _dataset(["b"], [1]),
                                          output_dir=str(a_file), epochs=1, learning_rate=1e-4, batch_size=2,
                                          max_length=16)
    assert a_file.read_text() == "keep me" and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_datasets_whose_class_names_give_ids_other_meanings_are_refused(untouched_model):
    tokenizer, model = untouched_model
    model.config.id2label, model.config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    swapped = _dataset(["fine", "bad"], [0, 1], names=("positive", "negative"))  # e.g. a test file loaded alone
    with pytest.raises(ValueError, match=r"\['positive', 'negative'\].*\['negative', 'positive'\]"):
        training.evaluate_classifier(model, tokenizer, swapped, max_length=16)
    with pytest.raises(ValueError, match="label_names"):
        _train(model, tokenizer, swapped)
    with pytest.raises(ValueError, match="evaluation dataset"):
        training.train_classifier(model, tokenizer, _dataset(["a"], [0]), swapped, epochs=1, learning_rate=1e-4,
                                  batch_size=2, max_length=16, device="cpu", progress=False)
    only_negative = _dataset(["bad"], [0], names=("negative",))  # a subset of the classes, same ids: fine
    assert training.evaluate_classifier(model, tokenizer, only_negative, max_length=16)["labels"].tolist() == [0]


def test_a_training_step_without_labels_says_what_the_batch_has(bert):
    tokenizer, model = bert
    batch = dict(tokenizer(["fine"], return_tensors="pt"))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(KeyError, match=r"'labels'.*\['attention_mask', 'input_ids', 'token_type_ids'\]"):
        training.training_step(model, batch, optimizer, None)



def test_trainer_recipe_stops_at_a_non_finite_loss(bert, tmp_path):
    tokenizer, model = bert
    data = _dataset(["a good film", "a bad film"] * 8, [1, 0] * 8)
    training_calls = []

    def nan_at_the_third_training_step(module, args, logits):
        if module.training:
            training_calls.append(1)
            return logits * math.nan if len(training_calls) == 3 else logits
        return logits

    model.classifier.register_forward_hook(nan_at_the_third_training_step)  # the model's loss follows
    # the rate of step 3: 0.01 decayed linearly over 8 steps, 2 of them done
    with pytest.raises(FloatingPointError, match=r"loss is nan at step 3 \(learning rate 0.0075\).*Lower the"):
        trainer_recipe.train_with_trainer(model, tokenizer, data, data, output_dir=str(tmp_path), epochs=2,
                                          learning_rate=0.01, batch_size=4, max_length=8, warmup_ratio=0.0,
                                          progress=False, use_cpu=True)
    assert len(training_calls) == 3 and all(torch.isfinite(p).all() for p in model.parameters())


def test_the_finite_loss_check_reads_the_loss_when_the_outputs_come_back_too(bert, tmp_path):
    tokenizer, model = bert
    args = trainer_recipe.trainer_arguments(str(tmp_path), epochs=1, learning_rate=1e-4, batch_size=2, cuda=False,
                                            progress=False, eval_strategy="no", save_strategy="no",
                                            load_best_model_at_end=False)
    trainer = trainer_recipe.FiniteLossTrainer(model=model, args=args)
    trainer.create_optimizer_and_scheduler(num_training_steps=4)
    inputs = dict(tokenizer(["a good film", "bad"], padding=True, return_tensors="pt"), labels=torch.tensor([1, 0]))
    model.train()
    loss, outputs = trainer.compute_loss(model, inputs, return_outputs=True)
    assert torch.isfinite(loss) and outputs.logits.shape == (2, 2)
    model.classifier.register_forward_hook(lambda module, args, logits: logits * math.nan)
    with pytest.raises(FloatingPointError, match="loss is nan at step 1"):
        trainer.compute_loss(model, inputs, return_outputs=True)

# --- the recipe and the shared cache -------------------------------------------------------------


def test_the_model_cache_lives_in_the_repositorys_artifacts_folder_unless_told(monkeypatch):
    monkeypatch.delenv(model_cache.ARTIFACTS_ENV, raising=False)
    package_root = Path(model_cache.__file__).resolve().parent.parent  # the repository (a checkout)
    assert model_cache.artifacts_dir() == package_root / "artifacts"
    monkeypatch.setenv(model_cache.ARTIFACTS_ENV, "~/course-models")
    assert model_cache.artifacts_dir() == Path.home() / "course-models"


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("tiny-bert")
    tiny_bert(tokenizer).bert.save_pretrained(folder)  # the encoder only, like a pre-trained checkpoint
    tokenizer.save_pretrained(folder)
    return folder


def tiny_profile(model_dir, name="tests"):
    from textclf_utils.config import Profile

    return Profile(name=name, train_examples=48, eval_examples=32, epochs=1, max_length=32, batch_size=16,
                   model=str(model_dir), description="tests")


def test_recipe_follows_the_profile_and_model():
    from textclf_utils.config import get_profile

    cpu = recipes.finetune_recipe("sst2", "cpu")
    assert cpu.model == "all-MiniLM-L6-v2" and cpu.learning_rate == recipes.LEARNING_RATES["all-MiniLM-L6-v2"]
    assert (cpu.max_length, cpu.batch_size) == (get_profile("cpu").max_length, get_profile("cpu").batch_size)
    overrides = recipes.RECIPE_OVERRIDES[("cpu", "sst2")]
    assert all(getattr(cpu, name) == value for name, value in overrides.items())
    emotion = recipes.finetune_recipe("emotion", "cpu")  # no overrides: the profile's sizes
    assert (emotion.train_examples, emotion.epochs, emotion.min_train_words) == (
        get_profile("cpu").train_examples, get_profile("cpu").epochs, 0)
    assert cpu.cache_key().startswith("sst2-all-MiniLM-L6-v2-cpu-")
    import re

    assert re.fullmatch(r"sst2-all-MiniLM-L6-v2-cpu-[0-9a-f]{10}", cpu.cache_key())  # the documented entry names
    assert recipes.finetune_recipe("emotion", "cpu").cache_key() != cpu.cache_key()
    assert recipes.finetune_recipe("sst2", "smoke").cache_key() != cpu.cache_key()


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu", "gpu-cpu"])
@pytest.mark.parametrize("dataset", ["sst2", "emotion", "sms_spam"])
def test_every_recipe_trains_with_the_epochs_and_batch_size_its_profile_prints(monkeypatch, profile, dataset):
    from textclf_utils.config import get_profile

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # (gpu: the packaged model offline; the sizes stay)
    recipe = recipes.finetune_recipe(dataset, profile)
    printed = get_profile(profile)  # what setup_notebook shows as the profile's sizes
    assert (recipe.epochs, recipe.batch_size, recipe.max_length) == (printed.epochs, printed.batch_size,
                                                                     printed.max_length)


def test_learning_rates_follow_the_published_fine_tuning_grid():
    # Devlin et al. (2019) fine-tune BERT-base with 2e-5, 3e-5 or 5e-5; the small packaged MiniLM takes a larger
    # step (1e-4, chosen on validation: recipes.stored_recipe_runs("recipe_tuning_cpu"))
    for name in ("bert-base-uncased", "google-bert/bert-base-uncased"):
        assert recipes.LEARNING_RATES[name] in (2e-5, 3e-5, 5e-5), name
    assert recipes.LEARNING_RATES["all-MiniLM-L6-v2"] == 1e-4
    for profile in ("smoke", "cpu", "gpu"):  # BERT's fine-tuning schedule: 10 % warm-up, weight decay 0.01
        recipe = recipes.finetune_recipe("emotion", profile)
        assert (recipe.warmup_ratio, recipe.weight_decay) == (0.1, 0.01), profile
    # smoke: a larger step so that its 32 steps move the model, still well below where fine-tuning diverges
    assert 1e-4 < recipes.finetune_recipe("sst2", "smoke").learning_rate <= 5e-4


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu", "gpu-cpu"])
def test_sst2_recipes_train_on_sentences_and_the_cpu_ones_in_bf16_where_the_cpu_runs_it(monkeypatch, profile):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # SST-2's validation and test sets are whole sentences; its training rows are mostly phrases
    assert recipes.finetune_recipe("sst2", profile).min_train_words == 10
    monkeypatch.setattr(recipes, "get_device", lambda: torch.device("cpu"))
    for native in (True, False):  # bf16 autocast on a CPU with AVX512-BF16/AMX; fp32 on one without (15x faster)
        monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: native)
        expected = native if profile == "cpu" else None
        assert all(recipes.finetune_recipe(name, profile).mixed_precision is expected
                   for name in ("sst2", "emotion", "sms_spam")), (profile, native)
    keys = set()
    for native in (True, False):  # the cache keeps the two precisions apart
        monkeypatch.setattr(training, "cpu_has_native_bf16", lambda: native)
        keys.add(recipes.finetune_recipe("sst2", "cpu").cache_key())
    assert len(keys) == 2


def test_the_stored_recipe_runs_ship_inside_the_package():
    for name in ("recipe_tuning_cpu", "recipe_budget_cpu"):
        runs = recipes.stored_recipe_runs(name)
        assert runs["runs"] and all("validation_accuracy_by_epoch" in run for run in runs["runs"])
    bench = recipes.stored_recipe_runs("precision_benchmark_cpu")
    assert bench["native"]["recipe_precision"] == "bfloat16" and bench["machine"]["cores"] >= 1
    with pytest.raises(ValueError, match="No stored recipe runs called 'nope'"):
        recipes.stored_recipe_runs("nope")


@pytest.mark.parametrize("a, b", [([0, 1], [0, 1, 1]), ([[0, 1]], [[0, 1]]), ([], [])])
def test_accuracy_difference_tolerance_needs_two_equally_long_flat_prediction_lists(a, b):
    with pytest.raises(ValueError, match="Expected two equally long, non-empty 1-D arrays of predictions"):
        trainer_recipe.accuracy_difference_tolerance(a, b)


def test_a_reachable_hub_model_keeps_its_name_in_the_recipe(monkeypatch):
    monkeypatch.setattr(recipes, "resolve_model", lambda name, fallback_to_packaged=False: name)  # as if online
    assert recipes.resolved_model_name("bert-base-uncased") == "bert-base-uncased"
    assert recipes.resolved_model_name(None) == "all-MiniLM-L6-v2"
    from textclf_utils.config import get_profile

    other = dataclasses.replace(get_profile("gpu"), model="roberta-base")  # a model without a rate of its own
    assert recipes.finetune_recipe("emotion", other).learning_rate == 5e-5  # the top of BERT's grid


def test_gpu_recipe_offline_falls_back_to_the_packaged_model(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = recipes.finetune_recipe("sst2", "gpu")
    assert recipe.model == "all-MiniLM-L6-v2" and recipe.train_examples == recipes.GPU_SST2_SENTENCES  # sized for a T4
    assert recipe.cache_key().startswith("sst2-all-MiniLM-L6-v2-gpu-")


def test_finetuning_data_keeps_sentence_like_rows(mirror):
    recipe = dataclasses.replace(recipes.finetune_recipe("sst2", "smoke"), min_train_words=12)
    data = recipes.finetuning_data(recipe)
    assert len(data["train"]) == recipe.train_examples
    assert min(len(t.split()) for t in data["train"]["text"]) >= 12
    assert len(data["validation"]) == recipe.eval_examples


def test_shared_cache_trains_once_then_loads(mirror, tiny_model_dir, tmp_path, monkeypatch, sst2_small):
    profile = tiny_profile(tiny_model_dir)
    tokenizer, model = model_cache.get_finetuned_classifier("sst2", profile, cache_dir=tmp_path, progress=False)
    entries = list((tmp_path / "finetuned").iterdir())
    assert len(entries) == 1 and entries[0].name.startswith("sst2-") and "-tests-" in entries[0].name
    assert (entries[0] / "model.safetensors").is_file() and (entries[0] / "training.json").is_file()
    assert model.config.id2label == {0: "negative", 1: "positive"}

    def no_training(*args, **kwargs):
        raise AssertionError("the cached model should have been loaded, not trained again")

    monkeypatch.setattr(model_cache, "train_classifier", no_training)
    _, again = model_cache.get_finetuned_classifier("sst2", profile, cache_dir=tmp_path, progress=False)
    _, dev = sst2_small
    first = training.evaluate_classifier(model, tokenizer, dev, max_length=32, device="cpu")
    second = training.evaluate_classifier(again, tokenizer, dev, max_length=32, device="cpu")
    np.testing.assert_allclose(first["probabilities"], second["probabilities"], atol=1e-6)


def test_cache_write_is_atomic(mirror, tiny_model_dir, tmp_path, monkeypatch):
    profile = tiny_profile(tiny_model_dir)

    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    from transformers import PreTrainedModel

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", broken_save)
    with pytest.raises(OSError, match="disk full"):
        model_cache.get_finetuned_classifier("sst2", profile, cache_dir=tmp_path, progress=False)
    assert list((tmp_path / "finetuned").iterdir()) == []  # no half-written entry, no temporary folder


def _untrainable(monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("the cache's problem should have been found before training")

    monkeypatch.setattr(model_cache, "train_classifier", no_training)


def _store_tiny_entry(tiny_model_dir, cache: Path) -> Path:
    """A cache entry written by the cache itself, for a tiny model that was never trained."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    recipe = recipes.finetune_recipe("sst2", tiny_profile(tiny_model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
    result = training.TrainingResult([], [], 1, 0.5, 0.0, 0.0, 0, "fp32", 0.0)
    return model_cache.store_finetuned_classifier(recipe, AutoTokenizer.from_pretrained(tiny_model_dir), model,
                                                  result, cache_dir=cache)


def test_a_stored_entry_is_readable_by_everyone_like_any_saved_model(tiny_model_dir, tmp_path):
    entry = _store_tiny_entry(tiny_model_dir, tmp_path / "new" / "cache")  # its folders are made as needed
    assert entry.stat().st_mode & 0o777 == 0o755  # not mkdtemp's private 0o700
    assert not list(entry.parent.glob(".*partial-*"))  # the temporary folder was renamed, nothing left over


def test_a_failed_rename_is_raised_unless_another_run_stored_the_entry(tiny_model_dir, tmp_path, monkeypatch):
    def refuse(source, target):
        raise OSError(39, "Directory not empty")

    monkeypatch.setattr(model_cache.os, "replace", refuse)
    with pytest.raises(OSError, match="Directory not empty"):  # nothing stored: the failure is reported
        _store_tiny_entry(tiny_model_dir, tmp_path / "empty")
    assert not [p for p in (tmp_path / "empty").rglob("*") if p.is_dir() and "partial" in p.name]
    monkeypatch.undo()
    entry = _store_tiny_entry(tiny_model_dir, tmp_path / "stored")
    before = (entry / "training.json").read_text()
    monkeypatch.setattr(model_cache.os, "replace", refuse)
    assert _store_tiny_entry(tiny_model_dir, tmp_path / "stored") == entry  # the other run's entry is kept
    assert (entry / "training.json").read_text() == before


def test_a_recipe_cannot_be_changed_after_it_is_made():
    import dataclasses

    recipe = recipes.finetune_recipe("emotion", "cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.epochs = 5  # the recipe is the cache key: a changed copy is made with dataclasses.replace


def test_cache_entry_without_its_record_is_refused_before_training(tiny_model_dir, tmp_path, monkeypatch):
    entry = _store_tiny_entry(tiny_model_dir, tmp_path)
    (entry / "training.json").unlink()
    _untrainable(monkeypatch)
    with pytest.raises(model_cache.ModelCacheError, match=rf"{entry.name} is incomplete.*Delete that folder"):
        model_cache.get_finetuned_classifier("sst2", tiny_profile(tiny_model_dir), cache_dir=tmp_path,
                                             progress=False)
    assert (entry / "model.safetensors").is_file()  # nothing of the user's deleted


def test_unwritable_cache_is_refused_before_training(tiny_model_dir, tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    _untrainable(monkeypatch)
    with pytest.raises(model_cache.ModelCacheError, match="not writable.*TEXTCLF_ARTIFACTS_DIR"):
        model_cache.get_finetuned_classifier("sst2", tiny_profile(tiny_model_dir), cache_dir=blocked,
                                             progress=False)


@pytest.mark.parametrize("damage", ["truncate weights", "drop tokenizer"])
def test_damaged_cache_entry_says_what_to_delete(tiny_model_dir, tmp_path, monkeypatch, damage):
    entry = _store_tiny_entry(tiny_model_dir, tmp_path)
    tokenizer, model = model_cache.load_cached_classifier(entry)  # intact, it loads
    assert model.config.num_labels == 2 and not model.training
    if damage == "truncate weights":
        weights = entry / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
    else:
        for name in models_module.TOKENIZER_FILES:
            (entry / name).unlink(missing_ok=True)
    _untrainable(monkeypatch)
    with pytest.raises(model_cache.ModelCacheError, match=rf"{entry.name} is damaged.*shutil.rmtree"):
        model_cache.get_finetuned_classifier("sst2", tiny_profile(tiny_model_dir), cache_dir=tmp_path,
                                             progress=False)


# --- scripts/finetune.py -------------------------------------------------------------------------


def test_finetune_script_tiny_configuration(mirror, tiny_model_dir, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("finetune_script", REPO / "scripts" / "finetune.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "run"
    metrics = script.main(["--dataset", "emotion", "--profile", "smoke", "--model", str(tiny_model_dir),
                           "--train-examples", "48", "--eval-examples", "36", "--epochs", "1",
                           "--batch-size", "16", "--max-length", "32", "--learning-rate", "1e-3",
                           "--output-dir", str(out), "--no-progress"])
    assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file()
    assert metrics["train_examples"] == 48 and metrics["world_size"] == 1
    assert 0 <= metrics["test"]["accuracy"] <= 1 and len(metrics["history"]) == 1
    from transformers import AutoModelForSequenceClassification

    saved = AutoModelForSequenceClassification.from_pretrained(out)
    assert saved.config.num_labels == 6 and saved.config.id2label[5] == "surprise"



def test_finetune_script_runs_distributed_with_torchrun(mirror, tiny_model_dir, tmp_path):
    # Two CPU processes (gloo): the Trainer's own DDP, started by torchrun, no launcher of ours.
    import json
    import os
    import subprocess
    import sys

    import socket

    with socket.socket() as probe:  # a free port for the processes to meet on
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port,
               str(REPO / "scripts" / "finetune.py"), "--dataset", "sst2", "--profile", "smoke",
               "--model", str(tiny_model_dir), "--train-examples", "64", "--eval-examples", "32",
               "--epochs", "1", "--batch-size", "8", "--max-length", "32", "--output-dir", str(out), "--no-progress"]
    env = {**os.environ, "TEXTCLF_DATA_DIR": str(mirror), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert (out / "model.safetensors").is_file()
    # 64 examples, 8 per device on 2 devices: 4 optimisation steps in the one epoch
    assert metrics["optimizer_steps"] == 4


# --- the plots notebook 03 uses --------------------------------------------------------------------


@pytest.mark.parametrize("call, message", [
    (lambda tok, data: training.tokenize_dataset(data, tok, 0), r"max_length must be an integer of at least 2.*got 0"),
    (lambda tok, data: trainer_recipe.tokenize_for_trainer(data, tok, 0), r"max_length must be .*got 0"),
    (lambda tok, data: training.make_collator(tok, fixed_length_padding=True),
     r"fixed_length_padding=True .* needs max_length="),
    (lambda tok, data: training.make_collator(tok, fixed_length_padding=True, max_length=0), r"max_length .*got 0"),
])
def test_tokenising_and_padding_refuse_a_max_length_below_two(tokenizer, call, message):
    with pytest.raises(ValueError, match=message):
        call(tokenizer, _dataset(["a fine film", "dull"], [1, 0]))


@pytest.mark.parametrize("override, message", [
    (dict(epochs=0), r"epochs must be a positive finite number, got 0"),
    (dict(learning_rate=-1.0), r"learning_rate must be a positive finite number, got -1"),
    (dict(batch_size=2.5), r"batch_size must be a positive integer, got 2\.5"),
    (dict(warmup_ratio=1.5), r"warmup_ratio .* must be in \[0, 1\), got 1\.5"),
    (dict(warmup_ratio=1.0), r"warmup_ratio .* must be in \[0, 1\), got 1\.0"),
])
def test_trainer_arguments_refuse_bad_settings(tmp_path, override, message):
    settings = dict(epochs=1, learning_rate=1e-4, batch_size=8, cuda=False) | override
    with pytest.raises(ValueError, match=message):
        trainer_recipe.trainer_arguments(str(tmp_path), **settings)


def test_trainer_history_gives_one_record_per_epoch():
    log = [{"loss": 0.69, "learning_rate": 5e-5, "epoch": 1.0, "step": 3},
           {"eval_loss": 0.6, "eval_accuracy": 0.7, "eval_f1_macro": 0.69, "epoch": 1.0, "step": 3},
           {"loss": 0.5, "learning_rate": 0.0, "epoch": 1.9996, "step": 6},
           {"eval_loss": 0.55, "eval_accuracy": 0.75, "epoch": 2.0, "step": 6},
           {"train_runtime": 4.2, "epoch": 2.0, "step": 6},  # the end-of-training summary: no loss of its own
           {"total_flos": 1.0}]
    history = trainer_recipe.trainer_history(log)
    assert [r["epoch"] for r in history] == [1.0, 2.0]  # 1.9996 and 2.0 are one epoch (rounded to 3 places)
    assert history[0] == {"epoch": 1.0, "train_loss": 0.69, "learning_rate": 5e-5, "eval_loss": 0.6,
                          "eval_accuracy": 0.7, "eval_f1_macro": 0.69}
    assert history[1]["train_loss"] == 0.5 and math.isnan(history[1]["eval_f1_macro"])
    only_eval = trainer_recipe.trainer_history([{"eval_loss": 0.6, "eval_accuracy": 0.7, "epoch": 1.0}])
    only_train = trainer_recipe.trainer_history([{"loss": 0.6, "epoch": 0.5}])
    assert len(only_eval) == 1 and len(only_train) == 1
    assert trainer_recipe.trainer_history([{"train_runtime": 1.0, "epoch": 1.0}]) == []


@pytest.mark.parametrize("world_size, use_cpu", [("2", True), ("1", False), (None, False)])
def test_data_parallel_processes_without_cuda_are_told_use_cpu(tmp_path, monkeypatch, world_size, use_cpu):
    import transformers

    monkeypatch.setenv("TEXTCLF_PROFILE", "smoke")
    if world_size is None:
        monkeypatch.delenv("WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("WORLD_SIZE", world_size)
    # the settings only: real TrainingArguments would start the processes' rendezvous (torchrun's job)
    monkeypatch.setattr(transformers, "TrainingArguments", lambda **settings: settings)
    settings = trainer_recipe.trainer_arguments(str(tmp_path), epochs=1, learning_rate=1e-4, batch_size=8, cuda=False)
    assert settings["use_cpu"] is use_cpu


def test_storing_into_a_cache_path_where_a_file_sits_says_what_to_set(tiny_model_dir, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(model_cache.ModelCacheError, match=r"a-file/finetuned is not writable.*TEXTCLF_ARTIFACTS_DIR"):
        _store_tiny_entry(tiny_model_dir, blocked)


# --- the loop's bookkeeping, pinned (survivors of the mutation sample) ----------------------------


def test_padding_fraction_is_the_share_of_padded_positions():
    loader = [{"attention_mask": torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])}, {"attention_mask": torch.ones(1, 4)}]
    assert training.padding_fraction(loader) == pytest.approx(4 / 12)
    assert training.padding_fraction([]) == 0.0


def test_weight_matrices_decay_and_biases_and_layer_norms_do_not(bert):
    _, model = bert
    optimizer = training._optimizer(model, 1e-4, 0.01)
    decay, no_decay = (group for group in optimizer.param_groups if group["weight_decay"] == 0.01), \
        (group for group in optimizer.param_groups if group["weight_decay"] == 0.0)
    decay_ids, no_decay_ids = {id(p) for p in next(decay)["params"]}, {id(p) for p in next(no_decay)["params"]}
    named = dict(model.named_parameters())
    assert id(named["bert.encoder.layer.0.attention.self.query.weight"]) in decay_ids
    assert id(named["bert.embeddings.word_embeddings.weight"]) in decay_ids  # 2-D: decays
    assert id(named["bert.encoder.layer.0.attention.self.query.bias"]) in no_decay_ids
    assert id(named["bert.embeddings.LayerNorm.weight"]) in no_decay_ids


def test_training_step_returns_the_batchs_loss_before_the_step(bert):
    tokenizer, model = bert
    batch = training.make_collator(tokenizer)(training.tokenize_dataset(_dataset(["a fine film", "dull"], [1, 0]),
                                                                        tokenizer, 16))
    model.eval()  # no dropout: the step computes the same loss as below
    with torch.no_grad():
        expected = nn.functional.cross_entropy(model(input_ids=batch["input_ids"],
                                                     attention_mask=batch["attention_mask"]).logits, batch["labels"])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    assert training.training_step(model, batch, optimizer, scheduler) == pytest.approx(float(expected), rel=1e-5)


def test_the_schedule_warms_up_over_the_given_share_of_steps(bert, monkeypatch):
    tokenizer, model = bert
    import transformers

    seen = []
    real = transformers.get_linear_schedule_with_warmup
    monkeypatch.setattr(transformers, "get_linear_schedule_with_warmup",
                        lambda optimizer, warmup, total: seen.append((warmup, total)) or real(optimizer, warmup, total))
    _train(model, tokenizer, _dataset(["a b"] * 16, [0, 1] * 8), warmup_ratio=0.5)  # 4 steps of 4
    assert seen == [(2, 4)]


def test_the_history_counts_samples_per_second_and_a_tie_keeps_the_earlier_epoch(bert):
    tokenizer, model = bert
    data = _dataset(["a fine film", "dull and slow", "great", "awful"] * 2, [1, 0, 1, 0] * 2)
    result = training.train_classifier(model, tokenizer, data, data, epochs=2, learning_rate=1e-30, batch_size=4,
                                       max_length=16, device="cpu", progress=False, weight_decay=0.0)
    for epoch in result.history:
        assert epoch["train_samples_per_second"] == pytest.approx(len(data) / epoch["seconds"])
    first, second = result.history
    assert (first["eval_accuracy"], first["eval_loss"]) == (second["eval_accuracy"], second["eval_loss"])
    assert result.best_epoch == 1  # equally good: the earlier, cheaper one is kept
