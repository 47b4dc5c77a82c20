"""A classifier saved by the course reloads the standard Hugging Face way, with equal predictions, or fails
loudly: never a plain BERT classifier with a new, random pooler."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from transformers import AutoModelForSequenceClassification, BertConfig, pipeline

from textclf_utils import model_card, model_cache, models, recipes, training
from textclf_utils.pooling import MEAN_POOLING_MODEL_TYPE, MeanPoolingBertForSequenceClassification

REPO = Path(__file__).resolve().parent.parent
TEXTS = ["a fine, moving film", "a dull and tiresome mess", "warm and funny", "flat, lifeless and long",
         "a gem", "two hours wasted", "beautifully acted", "not worth it"] * 2
LABELS = [1, 0] * 8


@pytest.fixture(scope="module")
def tokenizer():
    return models.load_tokenizer(None)


def tiny_trained_classifier(tokenizer, pooling: str):
    """A 2-layer, 32-wide BERT classifier with ``pooling``, trained for 4 steps on 16 short reviews."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2, id2label={0: "negative", 1: "positive"},
                        label2id={"negative": 0, "positive": 1})
    model_class = MeanPoolingBertForSequenceClassification if pooling == "mean" else \
        AutoModelForSequenceClassification.from_config
    model = model_class(config)
    features = Features({"text": Value("string"), "label": ClassLabel(names=["negative", "positive"])})
    data = Dataset.from_dict({"text": TEXTS, "label": LABELS}, features=features)
    training.train_classifier(model, tokenizer, data, None, epochs=1, batch_size=4, learning_rate=1e-3,
                              max_length=16, progress=False, device="cpu")
    return model.eval()


def course_logits(folder, texts):
    tokenizer, model = models.load_saved_classifier(folder)
    with torch.no_grad():
        return model(**tokenizer(texts, padding=True, return_tensors="pt")).logits


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_a_saved_classifier_reloads_through_auto_classes_and_pipeline_with_equal_predictions(tokenizer, tmp_path,
                                                                                              pooling):
    model = tiny_trained_classifier(tokenizer, pooling)
    models.save_classifier(model, tokenizer, tmp_path, dataset="sst2")
    texts = TEXTS[:6]
    expected = course_logits(tmp_path, texts)
    with torch.no_grad():
        torch.testing.assert_close(expected, model(**tokenizer(texts, padding=True, return_tensors="pt")).logits)
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(reloaded) is type(models.load_saved_classifier(tmp_path)[1])
    with torch.no_grad():
        logits = reloaded(**tokenizer(texts, padding=True, return_tensors="pt")).logits
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=0)
    predictions = pipeline("text-classification", model=str(tmp_path), device="cpu")(texts)
    probabilities = torch.softmax(expected, dim=-1)
    assert [p["label"] for p in predictions] == [model.config.id2label[int(i)] for i in probabilities.argmax(-1)]
    assert max(abs(p["score"] - float(q.max())) for p, q in zip(predictions, probabilities)) < 1e-4


FRESH_RELOAD = """
import json, sys, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, texts = sys.argv[1], json.loads(sys.argv[2])
try:
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
except (ValueError, KeyError) as err:
    print(json.dumps({"error": str(err)}))
    sys.exit(0)
tokenizer = AutoTokenizer.from_pretrained(folder)
assert "textclf_utils" not in sys.modules
with torch.no_grad():
    print(json.dumps({"logits": model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.tolist()}))
"""


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_without_the_course_package_a_saved_classifier_is_equal_or_refused_loudly(tokenizer, tmp_path, pooling):
    """A Python without ``textclf_utils`` imported: the standard head reloads exactly; the mean-pooling head is
    refused by name, never rebuilt as a BERT classifier with a random pooler."""
    models.save_classifier(tiny_trained_classifier(tokenizer, pooling), tokenizer, tmp_path, dataset="sst2")
    texts = TEXTS[:4]
    run = subprocess.run([sys.executable, "-c", FRESH_RELOAD, str(tmp_path), json.dumps(texts)],
                         capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    if pooling == "cls":
        torch.testing.assert_close(torch.tensor(answer["logits"]), course_logits(tmp_path, texts), atol=1e-4, rtol=0)
    else:
        assert MEAN_POOLING_MODEL_TYPE in answer["error"]
        assert json.loads((tmp_path / "config.json").read_text())["model_type"] == MEAN_POOLING_MODEL_TYPE


def test_a_mean_classifier_built_from_a_bert_config_still_saves_under_its_own_model_type(tokenizer, tmp_path):
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32)
    MeanPoolingBertForSequenceClassification(config).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == MEAN_POOLING_MODEL_TYPE
    _, from_checkpoint = models.load_classifier(None, ["negative", "positive"], pooling="mean")
    from_checkpoint.save_pretrained(tmp_path / "from-checkpoint")
    saved = json.loads((tmp_path / "from-checkpoint" / "config.json").read_text())
    assert (saved["model_type"], saved["classifier_pooling"]) == (MEAN_POOLING_MODEL_TYPE, "mean")


def test_the_cache_saves_a_model_card_with_the_recipe_and_the_test_accuracy(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = recipes.finetune_recipe("sst2", "smoke")
    model = tiny_trained_classifier(tokenizer, "mean")
    result = training.TrainingResult(history=[], step_losses=[], best_epoch=1, best_eval_accuracy=None,
                                     train_seconds=1.0, train_samples_per_second=16.0, steps=4, precision="fp32",
                                     padding_fraction=0.1)
    folder = model_cache.store_finetuned_classifier(
        recipe, tokenizer, model, result, cache_dir=tmp_path,
        metrics={"test_accuracy": 0.8532, "test_accuracy_interval": [0.8314, 0.8761], "test_examples": 872})
    card = (folder / model_card.MODEL_CARD).read_text()
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: text-classification")
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in card and "datasets: [stanfordnlp/sst2]" in card
    assert "Test accuracy **0.8532** on 872 test examples, 95 % bootstrap interval [0.831, 0.876]" in card
    assert "import textclf_utils" in card and f"| `learning_rate` | {recipe.learning_rate} |" in card
    assert "| precision that ran | fp32 |" in card and f"truncation=True, max_length={recipe.max_length}" in card
    assert f"This model trained on {recipe.train_examples:,} of its training rows, each of at least 10 words." in card
    for section in ("## How to load it", "## Training data", "## Recipe", "## Intended use", "## Limits"):
        assert section in card


def test_a_model_card_says_when_there_is_no_test_score_and_refuses_an_interval_alone():
    card = model_card.model_card_text(base_model="bert-base-uncased", dataset="mine", dataset_description="my data",
                                      label_names=["a", "b"], pooling="cls", recipe={})
    assert "Not scored on a test set yet." in card and "import textclf_utils" not in card
    assert "datasets:" not in card  # not a Hub dataset
    with pytest.raises(ValueError, match="needs its test accuracy"):
        model_card.model_card_text(base_model="m", dataset="d", dataset_description="d", label_names=["a", "b"],
                                   pooling="cls", recipe={}, test_interval=(0.1, 0.2))
    with pytest.raises(ValueError, match="not a folder: save the model there first"):
        model_card.write_model_card("/nonexistent/folder", base_model="m", dataset="d", dataset_description="d",
                                    label_names=["a", "b"], pooling="cls", recipe={})


def test_finetune_saves_a_model_that_pipeline_reloads_with_its_card(tmp_path, monkeypatch, mirror):
    """The script's folder: the recipe's pooling (mean for the cpu sst2 recipe), a model card, and a reload through
    pipeline that agrees with the script's own test accuracy."""
    from transformers import pipeline

    from textclf_utils.data import load_course_dataset

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(mirror))
    spec = importlib.util.spec_from_file_location("finetune_script", REPO / "scripts" / "finetune.py")
    finetune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(finetune)
    out = tmp_path / "run"
    metrics = finetune.main(["--dataset", "sst2", "--profile", "cpu", "--output-dir", str(out), "--train-examples",
                             "64", "--eval-examples", "32", "--epochs", "1", "--batch-size", "16", "--no-progress"])
    config = json.loads((out / "config.json").read_text())
    assert (config["model_type"], config["classifier_pooling"]) == ("textclf_mean_pooling_bert", "mean")
    assert "Test accuracy" in (out / "README.md").read_text() and (out / "metrics.json").is_file()
    test = finetune.finetuning_data(finetune.build_recipe(finetune.parse_args(
        ["--dataset", "sst2", "--profile", "cpu", "--output-dir", str(tmp_path / "x"), "--eval-examples", "32"])))["test"]
    predictions = pipeline("text-classification", model=str(out), device="cpu")(list(test["text"]), truncation=True,
                                                                                   max_length=64)
    labels = load_course_dataset("sst2")["test"].features["label"].names
    accuracy = sum(labels.index(p["label"]) == y for p, y in zip(predictions, test["label"])) / len(test)
    assert accuracy == pytest.approx(metrics["test"]["accuracy"], abs=1e-9)
