"""The model card saved beside a fine-tuned classifier: ``README.md`` in the model's folder, with the Hub's
metadata block, how to load it, its data, recipe and test accuracy, intended use and limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

MODEL_CARD = "README.md"
# The Hub ids of the course's datasets and of its packaged model, for the card's metadata block.
HUB_DATASETS = {"sst2": "stanfordnlp/sst2", "sms_spam": "ucirvine/sms_spam", "emotion": "dair-ai/emotion"}
HUB_BASE_MODELS = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}
LIMITS = (
    "It was trained on one dataset's domain and language (English), and is only as good there as the test "
    "accuracy below says; on other text (another domain, era or language) measure it before you rely on it.",
    "Its probabilities are not calibrated unless you calibrate them (lesson 04): do not read 0.9 as 90 %.",
    "It inherits the biases of its pre-training text and of the labelled data; it is a teaching model, not "
    "a product.",
)


def model_card_text(*, base_model: str, dataset: str, dataset_description: str, label_names: Sequence[str],
                    pooling: str, recipe: Mapping[str, Any], test_accuracy: float | None = None,
                    test_interval: tuple[float, float] | None = None, test_examples: int | None = None,
                    precision: str | None = None) -> str:
    """The card's Markdown: metadata block, loading, data, recipe (with the ``precision`` that ran, when given),
    evaluation, intended use, limits."""
    if pooling not in ("cls", "mean"):
        raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}.")
    if test_interval is not None and test_accuracy is None:
        raise ValueError("A test interval needs its test accuracy: pass test_accuracy= as well.")
    metadata = ["---", "library_name: transformers", "pipeline_tag: text-classification", "language: en",
                "license: apache-2.0", f"base_model: {HUB_BASE_MODELS.get(base_model, base_model)}"]
    if dataset in HUB_DATASETS:
        metadata.append(f"datasets: [{HUB_DATASETS[dataset]}]")
    metadata += ["metrics: [accuracy]", "---"]
    head = "mean of the last layer's token vectors" if pooling == "mean" else "BERT's pooler over [CLS]"
    truncation = f", truncation=True, max_length={recipe['max_length']}" if recipe.get("max_length") else ""
    load = ["```python", "from transformers import pipeline", "",
            'classify = pipeline("text-classification", model="path/to/this/folder")',
            f'classify(["A gripping, beautifully acted film."]{truncation})', "```"]
    if truncation:
        load += ["", f"It was trained and scored on texts cut to {recipe['max_length']} tokens: pass the same "
                 "truncation to reproduce its test accuracy."]
    if pooling == "mean":
        load[1:1] = ["import textclf_utils  # registers the course's mean-pooling head with transformers"]
        load += ["", "The head averages the token vectors instead of reading [CLS], so the folder's model type is "
                 "`textclf_mean_pooling_bert`. Install the course's package `textclf_utils` (from the course's "
                 "repository: see its README) and import it first; in a Python that has not imported it, "
                 "transformers refuses the folder (\"does not recognize this architecture\") rather than loading "
                 "it wrong."]
    recipe_rows = [f"| `{key}` | {value} |" for key, value in recipe.items()]
    if precision:
        recipe_rows.append(f"| precision that ran | {precision} |")
    data = [dataset_description + "."]
    if recipe.get("train_examples"):
        shortest = f", each of at least {recipe['min_train_words']} words" if recipe.get("min_train_words") else ""
        data.append(f"This model trained on {recipe['train_examples']:,} of its training rows{shortest}.")
    if test_accuracy is None:
        evaluation = ["Not scored on a test set yet."]
    else:
        interval = (f", 95 % bootstrap interval [{test_interval[0]:.3f}, {test_interval[1]:.3f}]"
                    if test_interval is not None else "")
        count = f" on {test_examples:,} test examples" if test_examples else ""
        evaluation = [f"Test accuracy **{test_accuracy:.4f}**{count}{interval}. The recipe and the epoch kept were "
                      "chosen on the validation set; the test set was scored once."]
    lines = [
        *metadata, "",
        f"# {base_model} fine-tuned on {dataset}", "",
        f"A text classifier from the course *Transformer text classification*: `{base_model}` with a new "
        f"classification head ({head}), fine-tuned end to end on {dataset}. Labels: "
        f"{', '.join(f'`{name}`' for name in label_names)}.", "",
        "## How to load it", "", *load, "",
        "## Training data", "", " ".join(data), "",
        "## Recipe", "", "| setting | value |", "|---|---|", *recipe_rows, "",
        "## Evaluation", "", *evaluation, "",
        "## Intended use", "",
        f"Learning and teaching: classifying short English texts like those of {dataset} "
        f"({' / '.join(label_names)}), and a baseline to compare other models with.", "",
        "## Limits", "", *[f"- {limit}" for limit in LIMITS], "",
    ]
    return "\n".join(lines)


def write_model_card(folder: str | Path, **card: Any) -> Path:
    """Write ``model_card_text(**card)`` to ``folder/README.md`` (the folder must exist: save the model first)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder: save the model there first (model.save_pretrained(folder)).")
    path = folder / MODEL_CARD
    path.write_text(model_card_text(**card), encoding="utf-8")
    return path
