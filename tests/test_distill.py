"""Tests of textclf_utils.distill: the loss, the Trainer subclass, layer dropping, the transfer set."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification, TrainingArguments

from textclf_utils import distill
from textclf_utils.encoder import EncoderConfig, EncoderForSequenceClassification


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest


def tiny_bert(num_labels: int = 2, layers: int = 4, seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=num_labels)
    return BertForSequenceClassification(config).eval()


def tiny_encoder(num_labels: int = 2) -> EncoderForSequenceClassification:
    torch.manual_seed(1)
    config = EncoderConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_position_embeddings=64)
    return EncoderForSequenceClassification(config, num_labels)


def logits_and_labels(rows: int = 6, classes: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    student = torch.randn(rows, classes, generator=generator)
    teacher = 3 * torch.randn(rows, classes, generator=generator)
    labels = torch.randint(0, classes, (rows,), generator=generator)
    return student, teacher, labels


# ---------------------------------------------------------------------------------------------
# The loss


def test_loss_is_cross_entropy_at_alpha_one():
    student, teacher, labels = logits_and_labels()
    for temperature in (0.5, 1.0, 4.0):
        loss = distill.distillation_loss(student, teacher, labels, alpha=1.0, temperature=temperature)
        assert torch.allclose(loss, F.cross_entropy(student, labels))


def test_kl_term_is_zero_for_equal_logits_and_positive_otherwise():
    student, teacher, labels = logits_and_labels()
    for temperature in (0.5, 2.0, 8.0):
        assert distill.distillation_kl(student, student.clone(), temperature).abs().item() < 1e-6
        assert distill.distillation_kl(student, teacher, temperature).item() > 1e-3
    loss = distill.distillation_loss(student, student.clone(), labels, alpha=0.3, temperature=2.0)
    assert torch.allclose(loss, 0.3 * F.cross_entropy(student, labels), atol=1e-6)


def test_kl_term_matches_the_formula_with_t_squared():
    student, teacher, _ = logits_and_labels()
    temperature = 3.0
    p_teacher = torch.softmax(teacher / temperature, dim=-1)
    p_student = torch.softmax(student / temperature, dim=-1)
    by_hand = temperature ** 2 * (p_teacher * (p_teacher.log() - p_student.log())).sum(dim=-1).mean()
    assert torch.allclose(distill.distillation_kl(student, teacher, temperature), by_hand, atol=1e-5)


def test_loss_mixes_the_two_terms_and_gives_the_teacher_no_gradient():
    student, teacher, labels = logits_and_labels()
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    loss = distill.distillation_loss(student, teacher, labels, alpha=0.25, temperature=2.0)
    expected = 0.25 * F.cross_entropy(student, labels) + 0.75 * distill.distillation_kl(student, teacher, 2.0)
    assert torch.allclose(loss, expected)
    loss.backward()
    assert teacher.grad is None and student.grad is not None and student.grad.abs().sum() > 0


@pytest.mark.parametrize("temperature", [0, -1.0, math.inf, math.nan, True])
def test_temperature_must_be_positive(temperature):
    student, teacher, labels = logits_and_labels()
    with pytest.raises(ValueError, match="temperature must be a positive"):
        distill.distillation_loss(student, teacher, labels, alpha=0.5, temperature=temperature)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, math.nan])
def test_alpha_must_be_in_unit_interval(alpha):
    student, teacher, labels = logits_and_labels()
    with pytest.raises(ValueError, match=r"alpha .* \[0, 1\]"):
        distill.distillation_loss(student, teacher, labels, alpha=alpha, temperature=2.0)


def test_different_label_counts_raise():
    student, _, labels = logits_and_labels(classes=2)
    teacher = torch.randn(len(student), 3)
    with pytest.raises(ValueError, match="teacher predicts 3 classes but the student 2"):
        distill.distillation_loss(student, teacher, labels)
    with pytest.raises(ValueError, match="same examples"):
        distill.distillation_loss(student, student[:3], labels)
    with pytest.raises(ValueError, match="labels must have shape"):
        distill.distillation_loss(student, student, labels[:2])


def test_soft_targets_flatten_as_temperature_grows():
    logits = torch.tensor([[4.0, 0.0, -2.0]])
    entropies = [-(p * p.log()).sum().item() for p in (distill.soft_targets(logits, t) for t in (1, 2, 8))]
    assert entropies[0] < entropies[1] < entropies[2] < math.log(3)
    assert torch.allclose(distill.soft_targets(logits, 1.0), torch.softmax(logits, dim=-1))


# ---------------------------------------------------------------------------------------------
# The Trainer subclass


def trainer_for(student, tmp_path, **kwargs):
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, save_strategy="no")
    return distill.DistillationTrainer(model=student, args=args, **kwargs)


def test_trainer_loss_equals_the_function_on_a_batch(tokenizer, tmp_path):
    student, teacher = tiny_encoder(), tiny_bert()
    batch = dict(tokenizer(["a fine film", "dull and far too long"], padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([1, 0])
    features = {k: v for k, v in batch.items() if k != "labels"}
    student.eval()
    with torch.no_grad():
        student_logits, teacher_logits = student(**features), teacher(**features).logits
    expected = distill.distillation_loss(student_logits, teacher_logits, batch["labels"], 0.3, 4.0)

    on_the_fly = trainer_for(student, tmp_path, teacher=teacher, alpha=0.3, temperature=4.0)
    with torch.no_grad():
        loss, outputs = on_the_fly.compute_loss(student, dict(batch), return_outputs=True)
    assert torch.allclose(loss, expected) and torch.allclose(outputs.logits, student_logits)

    precomputed = trainer_for(student, tmp_path, alpha=0.3, temperature=4.0)
    with torch.no_grad():
        loss = precomputed.compute_loss(student, {**batch, distill.TEACHER_LOGITS: teacher_logits})
    assert torch.allclose(loss, expected)
    with pytest.raises(ValueError, match="No teacher logits"):
        precomputed.compute_loss(student, dict(batch))


def test_plain_loop_loss_equals_the_function_and_moves_the_student_to_the_teacher(tokenizer):
    from textclf_utils.training import train_classifier

    student, teacher = tiny_encoder(), tiny_bert()
    batch = dict(tokenizer(["a fine film", "dull and far too long"], padding=True, return_tensors="pt"))
    labels = torch.tensor([1, 0])
    student.eval()
    with torch.no_grad():
        student_logits, teacher_logits = student(**batch), teacher(**batch).logits
    loss_fn = distill.DistillationLoss(teacher, alpha=0.3, temperature=4.0)
    expected = distill.distillation_loss(student_logits, teacher_logits, labels, 0.3, 4.0)
    assert torch.allclose(loss_fn(student_logits, labels, inputs=batch), expected)
    with pytest.raises(ValueError, match="temperature"):
        distill.DistillationLoss(teacher, temperature=0)

    texts = ["good", "bad", "great fun", "awful mess", "lovely", "boring", "a fine film", "far too long"] * 4
    data = Dataset.from_dict({"text": texts, "label": [1, 0] * 16})

    def gap_to_teacher() -> float:  # KL(teacher || student) on the training texts, T = 1
        return distill.distillation_kl(distill.predict_logits(student, tokenizer, texts, max_length=16),
                                       distill.predict_logits(teacher, tokenizer, texts, max_length=16), 1.0).item()

    with torch.no_grad():  # a confident teacher (its random head scaled up): something to learn
        teacher.classifier.weight.mul_(200.0)
    before = gap_to_teacher()
    assert before > 0.01
    result = train_classifier(student, tokenizer, data, data, epochs=8, learning_rate=3e-3, batch_size=8,
                              max_length=16, progress=False,
                              loss_fn=distill.DistillationLoss(teacher, alpha=0.0, temperature=1.0))
    assert gap_to_teacher() < 0.5 * before  # the teacher alone (alpha = 0) taught it
    assert all(math.isfinite(h["eval_loss"]) for h in result.history)  # evaluated with cross-entropy


def test_trainer_refuses_a_teacher_with_other_labels(tmp_path):
    with pytest.raises(ValueError, match="teacher predicts 3 classes but the student 2"):
        trainer_for(tiny_encoder(2), tmp_path, teacher=tiny_bert(3))
    with pytest.raises(ValueError, match="temperature"):
        trainer_for(tiny_encoder(2), tmp_path, teacher=tiny_bert(2), temperature=0)


def test_train_student_learns_from_precomputed_teacher_logits(tokenizer):
    texts = ["good", "bad", "great fun", "awful mess", "lovely", "boring"] * 8
    labels = [1, 0, 1, 0, 1, 0] * 8
    data = Dataset.from_dict({"text": texts, "label": labels})
    teacher_logits = torch.tensor([[-2.0, 2.0] if y else [2.0, -2.0] for y in labels])
    student = tiny_encoder()
    before = distill.predict_logits(student, tokenizer, texts, max_length=16)
    history = distill.train_student(student, tokenizer, distill.with_teacher_logits(data, teacher_logits),
                                    alpha=0.5, temperature=2.0, epochs=6, learning_rate=3e-3, batch_size=8,
                                    max_length=16, progress=False, logging_steps=6)
    after = distill.predict_logits(student, tokenizer, texts, max_length=16)
    assert history and history[-1]["loss"] < history[0]["loss"]
    assert distill.accuracy_of(after, labels) == 1.0
    assert not torch.allclose(before, after)
    with pytest.raises(ValueError, match="needs the teacher"):
        distill.train_student(student, tokenizer, data, alpha=0.5, temperature=2.0, epochs=1,
                              learning_rate=1e-3, batch_size=8, max_length=16, progress=False)


# ---------------------------------------------------------------------------------------------
# Students and the transfer set


def test_layer_dropping_keeps_half_the_layers_with_the_top_one(tokenizer):
    teacher = tiny_bert(layers=4)
    student = distill.layer_dropped_copy(teacher)
    assert student.config.num_hidden_layers == 2 and teacher.config.num_hidden_layers == 4
    teacher_state, student_state = teacher.state_dict(), student.state_dict()
    for new, old in enumerate([1, 3]):
        prefix_new, prefix_old = f"bert.encoder.layer.{new}.", f"bert.encoder.layer.{old}."
        names = [k for k in student_state if k.startswith(prefix_new)]
        assert names
        for name in names:
            assert torch.equal(student_state[name], teacher_state[prefix_old + name[len(prefix_new):]])
    for name in ("bert.embeddings.word_embeddings.weight", "bert.pooler.dense.weight", "classifier.weight"):
        assert torch.equal(student_state[name], teacher_state[name])
    chosen = distill.layer_dropped_copy(teacher, keep=[0, 2])
    assert torch.equal(chosen.state_dict()["bert.encoder.layer.1.output.dense.weight"],
                       teacher_state["bert.encoder.layer.2.output.dense.weight"])
    batch = tokenizer(["a short test"], return_tensors="pt")
    assert student(**batch).logits.shape == (1, 2)


@pytest.mark.parametrize("keep", [[], [2, 0], [0, 0], [0, 4]])
def test_layer_dropping_refuses_bad_layer_lists(keep):
    with pytest.raises(ValueError, match="keep must be"):
        distill.layer_dropped_copy(tiny_bert(layers=4), keep=keep)
    with pytest.raises(ValueError, match="num_hidden_layers"):
        distill.layer_dropped_copy(tiny_encoder())


def test_predict_logits_keeps_the_order_of_the_texts(tokenizer):
    model = tiny_bert()
    texts = ["a much longer sentence than the others here", "short", "middle sized one"]
    logits = distill.predict_logits(model, tokenizer, texts, max_length=32, batch_size=2)
    with torch.no_grad():
        for i, text in enumerate(texts):
            assert torch.allclose(logits[i], model(**tokenizer(text, return_tensors="pt")).logits[0], atol=1e-5)
    with pytest.raises(ValueError, match="empty"):
        distill.predict_logits(model, tokenizer, [], max_length=32)


# ---------------------------------------------------------------------------------------------
# Tests that tell right from wrong, and bad input


class OppositeTeacher(nn.Module):
    """A teacher that calls every text with a positive word negative, and every other text positive."""

    num_labels = 2

    def __init__(self, positive_ids: list[int]):
        super().__init__()
        self.positive_ids = torch.tensor(positive_ids)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        positive = torch.isin(input_ids, self.positive_ids).any(dim=1, keepdim=True)
        return torch.where(positive, torch.tensor([3.0, -3.0]), torch.tensor([-3.0, 3.0]))


@pytest.mark.parametrize("on_the_fly", [False, True])
def test_train_student_follows_a_teacher_that_disagrees_with_the_labels(tokenizer, on_the_fly):
    texts = ["good", "bad", "great fun", "awful mess", "lovely", "boring"] * 8
    labels = [1, 0, 1, 0, 1, 0] * 8
    data = Dataset.from_dict({"text": texts, "label": labels})
    teacher = OppositeTeacher(tokenizer.convert_tokens_to_ids(["good", "great", "lovely"]))
    if on_the_fly:
        kwargs = dict(teacher=teacher)
    else:
        data = distill.with_teacher_logits(data, distill.predict_logits(teacher, tokenizer, texts, max_length=16))
        kwargs = {}
    student = tiny_encoder()
    distill.train_student(student, tokenizer, data, alpha=0.0, temperature=np.float32(1.0), epochs=6,
                          learning_rate=3e-3, batch_size=8, max_length=16, progress=False, **kwargs)
    assert distill.accuracy_of(distill.predict_logits(student, tokenizer, texts, max_length=16), labels) == 0.0


def test_nan_teacher_logits_are_refused_before_training(tokenizer):
    data = Dataset.from_dict({"text": ["good", "bad"], "label": [1, 0]})
    bad = torch.tensor([[1.0, 0.0], [float("nan"), 0.0]])
    with pytest.raises(ValueError, match="1 row.*the first at row 1"):
        distill.with_teacher_logits(data, bad)
    sneaked = data.add_column(distill.TEACHER_LOGITS, bad.tolist())
    with pytest.raises(ValueError, match="teacher_logits must be finite"):
        distill.train_student(tiny_encoder(), tokenizer, sneaked, alpha=0.5, temperature=2.0, epochs=1,
                              learning_rate=1e-3, batch_size=2, max_length=16, progress=False)


def test_a_teacher_giving_nan_stops_the_trainer_at_its_logits(tokenizer):
    class NanTeacher(nn.Module):
        num_labels = 2

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            return torch.full((len(input_ids), 2), float("nan"))

    data = Dataset.from_dict({"text": ["good", "bad"] * 4, "label": [1, 0] * 4})
    with pytest.raises(ValueError, match=r"teacher_logits must be finite, but 4 row\(s\) hold NaN"):
        distill.train_student(tiny_encoder(), tokenizer, data, teacher=NanTeacher(), alpha=0.5, temperature=2.0,
                              epochs=1, learning_rate=1e-3, batch_size=4, max_length=16, progress=False)


@pytest.mark.parametrize("temperature", [np.float32(2.0), torch.tensor(2.0), np.int64(2)])
def test_numpy_and_tensor_temperatures_are_numbers(temperature):
    student, teacher, labels = logits_and_labels()
    expected = distill.distillation_loss(student, teacher, labels, alpha=np.float64(0.3), temperature=2.0)
    assert torch.allclose(distill.distillation_loss(student, teacher, labels, 0.3, temperature), expected)
    assert distill.check_distillation_settings(torch.tensor(0.5), temperature) == (0.5, 2.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_length=0), "max_length must be an integer of at least 2"),
    (dict(max_length=16, batch_size=0), "batch_size must be a positive integer, got 0"),
    (dict(max_length=16, texts=["fine", None]), r"texts\[1\] is None"),
    (dict(max_length=16, texts="one text"), "wrap it in a list"),
])
def test_predict_logits_refuses_bad_input(tokenizer, kwargs, message):
    arguments = {"texts": ["fine", "bad"], **kwargs}
    with pytest.raises(ValueError, match=message):
        distill.predict_logits(tiny_bert(), tokenizer, **arguments)


@pytest.mark.parametrize("override, message", [
    (dict(max_length=0), "max_length must be"), (dict(batch_size=0), "batch_size must be"),
    (dict(epochs=float("nan")), "epochs must be"), (dict(learning_rate=0), "learning_rate must be"),
    (dict(temperature="2"), "temperature must be"),
])
def test_train_student_refuses_bad_input(tokenizer, override, message):
    data = Dataset.from_dict({"text": ["good", "bad"], "label": [1, 0]})
    kwargs = {**dict(alpha=1.0, temperature=2.0, epochs=1, learning_rate=1e-3, batch_size=2, max_length=16,
                     progress=False), **override}
    with pytest.raises(ValueError, match=message):
        distill.train_student(tiny_encoder(), tokenizer, data, **kwargs)


# ---------------------------------------------------------------------------------------------
# Limits found by the sampled mutation run (scripts/mutation_sample.py, tests/MUTATION.md)


def test_predict_logits_one_text_at_a_time(tokenizer):
    model, texts = tiny_bert(), ["a much longer sentence than the others", "short", "middle sized one"]
    assert torch.allclose(distill.predict_logits(model, tokenizer, texts, 32, batch_size=1),
                          distill.predict_logits(model, tokenizer, texts, 32, batch_size=3), atol=1e-5)


def test_top_layers_are_evenly_spaced_and_keep_the_last():
    assert distill.top_layers(6, 3) == [1, 3, 5] and distill.top_layers(6, 1) == [5]
    assert distill.top_layers(6, 2) == [2, 5] and distill.top_layers(12, 6) == [1, 3, 5, 7, 9, 11]
    assert distill.top_layers(4, 4) == [0, 1, 2, 3] and distill.top_layers(1, 1) == [0]
    with pytest.raises(ValueError, match="Cannot keep 3 layers of a model with 2"):
        distill.top_layers(2, 3)
    with pytest.raises(ValueError, match="count must be a positive integer"):
        distill.top_layers(6, 0)


def test_augmented_texts_mask_words_and_sample_runs_without_copying_their_source():
    texts = ["the plot is thin but the cast carries it", "a warm and funny film about growing up"]
    augmented = distill.augment_texts(texts, copies=50, seed=3)
    assert 60 < len(augmented) <= 100 and not set(augmented) & set(texts)
    words = {w for t in texts for w in t.split()}
    for text in augmented:
        assert set(text.split()) <= words | {"[MASK]"} and set(text.split()) - {"[MASK]"}
    masked = sum(text.split().count("[MASK]") for text in augmented) / sum(len(t.split()) for t in augmented)
    assert 0.08 < masked < 0.25  # mask_probability = 0.1 of the words, a little more once unchanged texts go
    short = [t for t in augmented if len(t.split()) <= 5]
    assert 0.15 < len(short) / len(augmented) < 0.5  # ngram_probability = 0.25 of the tries are runs of 1-5 words
    assert distill.augment_texts(texts, copies=50, seed=3) == augmented  # seeded
    assert distill.augment_texts(texts, mask_probability=0.0, ngram_probability=0.0) == []
    with pytest.raises(ValueError, match="mask_probability is a probability"):
        distill.augment_texts(texts, mask_probability=1.5)
    with pytest.raises(ValueError, match=r"ngram_probability is a probability in \[0, 1\], got '0.1'"):
        distill.augment_texts(texts, ngram_probability="0.1")


def test_trainer_wraps_only_a_student_with_a_frozen_config(tmp_path):
    bert_student, encoder_student = tiny_bert(), tiny_encoder()
    assert trainer_for(bert_student, tmp_path).model is bert_student  # a Hugging Face model as it is
    wrapped = trainer_for(encoder_student, tmp_path).model
    assert wrapped is not encoder_student and wrapped.student is encoder_student


def test_gradient_accumulation_logs_the_mean_loss_not_the_sum(tokenizer):
    torch.manual_seed(1)
    config = EncoderConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                           max_position_embeddings=64, dropout=0.0, attention_dropout=0.0)
    student = EncoderForSequenceClassification(config, 2)
    data = Dataset.from_dict({"text": ["a fine film"] * 8, "label": [1] * 8})  # every batch has the same loss
    expected = F.cross_entropy(distill.predict_logits(student, tokenizer, ["a fine film"], 16), torch.tensor([1]))
    history = distill.train_student(student, tokenizer, data, alpha=1.0, temperature=2.0, epochs=1,
                                    learning_rate=1e-12, batch_size=2, max_length=16, progress=False,
                                    logging_steps=1, gradient_accumulation_steps=2)
    # two optimizer steps of two batches each: the logged loss is their mean (Trainer divides by 2), not the sum
    assert [h["loss"] for h in history] == pytest.approx([expected.item()] * 2, abs=1e-3)


def test_teacher_logits_are_computed_once_then_read_and_a_damaged_entry_is_redone(tokenizer, tmp_path, monkeypatch):
    from textclf_utils import model_cache, recipes

    recipe, teacher, texts = recipes.finetune_recipe("sst2", "smoke"), tiny_bert(layers=1), ["a fine film", "dull"]
    first = model_cache.cached_teacher_logits(recipe, teacher, tokenizer, texts, name="t", cache_dir=tmp_path,
                                              progress=False)
    assert torch.allclose(first, distill.predict_logits(teacher, tokenizer, texts, recipe.max_length), atol=1e-5)
    (entry,) = (tmp_path / "teacher_logits").iterdir()
    assert entry.suffix == ".safetensors" and recipe.cache_key() in entry.name
    import re  # <recipe key>-<name>-<12 hex digits of the texts' hash>: the names a copied cache holds

    assert re.fullmatch(re.escape(recipe.cache_key()) + r"-t-[0-9a-f]{12}\.safetensors", entry.name)
    calls = []
    real = distill.predict_logits
    monkeypatch.setattr(model_cache, "predict_logits", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    again = model_cache.cached_teacher_logits(recipe, teacher, tokenizer, texts, name="t", cache_dir=tmp_path)
    assert torch.equal(again, first) and calls == []  # read, not computed
    model_cache.cached_teacher_logits(recipe, teacher, tokenizer, texts[:1], name="t", cache_dir=tmp_path)
    assert calls == [texts[:1]] and len(list((tmp_path / "teacher_logits").iterdir())) == 2  # other texts: new entry
    entry.write_bytes(b"not a safetensors file")
    redone = model_cache.cached_teacher_logits(recipe, teacher, tokenizer, texts, name="t", cache_dir=tmp_path)
    assert torch.allclose(redone, first) and calls[-1] == texts


def test_a_teacher_trained_in_bf16_on_the_cpu_is_scored_in_bf16(tokenizer, tmp_path):
    import dataclasses

    from textclf_utils import model_cache, recipes

    recipe = dataclasses.replace(recipes.finetune_recipe("sst2", "smoke"), mixed_precision=True)
    teacher, texts = tiny_bert(layers=1), ["a fine film", "dull", "not bad at all, really"]
    logits = model_cache.cached_teacher_logits(recipe, teacher, tokenizer, texts, name="t", cache_dir=tmp_path,
                                               progress=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_bf16 = distill.predict_logits(teacher, tokenizer, texts, recipe.max_length)
    in_fp32 = distill.predict_logits(teacher, tokenizer, texts, recipe.max_length)
    assert torch.equal(logits, in_bf16) and not torch.equal(logits, in_fp32)


@pytest.mark.parametrize("shape", [(5, 2), (2, 3)])
def test_cached_teacher_logits_of_the_wrong_shape_are_recomputed(tokenizer, tmp_path, shape):
    from safetensors.torch import save_file

    from textclf_utils import model_cache, recipes

    recipe, teacher, texts = recipes.finetune_recipe("sst2", "smoke"), tiny_bert(layers=1), ["a fine film", "dull"]
    first = model_cache.cached_teacher_logits(recipe, teacher, tokenizer, texts, name="t", cache_dir=tmp_path,
                                              progress=False)
    (entry,) = (tmp_path / "teacher_logits").iterdir()
    save_file({"logits": torch.zeros(shape)}, str(entry))
    again = model_cache.cached_teacher_logits(recipe, teacher, tokenizer, texts, name="t", cache_dir=tmp_path,
                                              progress=False)
    assert again.shape == (2, 2) and torch.allclose(again, first, atol=1e-5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_teacher_logits_are_refused_by_the_loss(bad):
    student, teacher, labels = logits_and_labels()
    teacher[2, 1] = bad
    with pytest.raises(ValueError, match="teacher_logits must be finite.*first at row 2"):
        distill.distillation_loss(student, teacher, labels)
    with pytest.raises(ValueError, match="teacher_logits must be finite"):
        distill.distillation_kl(student, teacher, 2.0)


def test_accuracy_of_needs_one_label_per_row_of_logits():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert distill.accuracy_of(logits, [0, 1, 1]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"3 rows of logits but 2 labels"):
        distill.accuracy_of(logits, [0, 1])


def test_teacher_logits_need_one_row_per_example():
    from datasets import Dataset

    with pytest.raises(ValueError, match="There are 3 rows of teacher logits for 2 examples"):
        distill.with_teacher_logits(Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}), torch.zeros(3, 2))


def test_the_bottom_layer_alone_can_be_kept():
    teacher = tiny_bert(layers=2)
    student = distill.layer_dropped_copy(teacher, keep=[0])
    assert student.config.num_hidden_layers == 1
    torch.testing.assert_close(student.bert.encoder.layer[0].attention.self.query.weight,
                               teacher.bert.encoder.layer[0].attention.self.query.weight)


def test_an_ngram_crop_is_a_run_of_the_sources_words_never_empty():
    texts = ["one two three four five"] * 40
    cropped = distill.augment_texts(texts, mask_probability=0.0, ngram_probability=1.0, max_ngram=2, copies=1, seed=0)
    assert len(cropped) == len(texts)  # at most 2 of 5 words: never the source, never empty
    assert all(1 <= len(c.split()) <= 2 and f" {c} " in f" {texts[0]} " for c in cropped)
