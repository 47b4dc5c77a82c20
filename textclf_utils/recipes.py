"""The course's fine-tuning recipe per dataset and profile: data, model, sizes and hyper-parameters.

``finetune_recipe("sst2")`` says how notebook 03 trains the model that notebooks 04-06 reuse (through
``model_cache.get_finetuned_classifier``); ``finetuning_data`` gives the data it trains and selects on.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from dataclasses import asdict, dataclass, replace
from typing import Any

from .config import get_device, get_profile
from .data import column_values, get_spec, load_course_dataset, sentence_like_rows, stratified_subsample
from .models import PACKAGED_MODEL, packaged_model_path, resolve_model
from .checks import TEXT_COLUMN
from .training import mixed_precision_pays

# Learning rates by model: the small packaged MiniLM wants a larger step than BERT-base.
LEARNING_RATES = {PACKAGED_MODEL: 1e-4, "bert-base-uncased": 2e-5, "google-bert/bert-base-uncased": 2e-5}
# Where the recipe departs from the profile's sizes, by (profile, dataset); None = every dataset.
# cpu: for sst2 mean pooling (chosen on validation: scripts/tune_recipe.py, the stored runs in
# textclf_utils/stored_runs/, tabled in notebook 03); its bf16 autocast is the profile's bf16_on_cpu.
# sst2: train on sentence-like rows only (>= 10 words), since validation and test are whole sentences
# and most training rows are short phrases. (Spending the cpu budget on all rows instead, phrases included,
# made no difference detectable on validation: stored_runs/recipe_budget_cpu.json.) smoke: a larger step, so
# that the 32 optimisation steps of its 256 examples in batches of 8 move the model.
# gpu: sized for about 20 minutes a notebook on a Colab T4 (see gpu_plan), leaving SST-2 training
# sentences unused for notebook 06's held-out and transfer sets.
GPU_SST2_SENTENCES = 11_000
RECIPE_OVERRIDES: dict[tuple[str, str | None], dict[str, Any]] = {
    ("smoke", None): {"learning_rate": 2e-4},
    ("smoke", "sst2"): {"min_train_words": 10},
    ("cpu", "sst2"): {"min_train_words": 10, "pooling": "mean"},
    ("gpu", "sst2"): {"min_train_words": 10, "train_examples": GPU_SST2_SENTENCES},
}
# The runs of scripts/tune_recipe.py that chose the cpu recipe, and of scripts/benchmark_finetuning.py --precision
# that chose its precision, shipped inside the package (stored_runs/).
STORED_RUNS = ("recipe_tuning_cpu", "recipe_budget_cpu", "precision_benchmark_cpu")
# The gpu-cpu rehearsal runs the gpu recipe at its scale profile's sizes and step size.
REHEARSED_FIELDS = ("train_examples", "eval_examples", "epochs", "batch_size", "learning_rate")


@dataclass(frozen=True)
class FinetuneRecipe:
    """Everything that decides a fine-tuned model: data, model, sizes and hyper-parameters."""

    dataset: str
    model: str
    profile: str
    train_examples: int | None
    min_train_words: int
    eval_examples: int | None
    epochs: float
    learning_rate: float
    batch_size: int
    max_length: int
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    pooling: str = "cls"  # "cls": BERT's pooler over [CLS]; "mean": the mean over real tokens (see pooling)
    # None: bf16/fp16 on CUDA only; True: bf16 on a CPU too (resolved per machine: see finetune_recipe)
    mixed_precision: bool | None = None

    def loop_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``train_classifier`` for this recipe."""
        return dict(epochs=self.epochs, learning_rate=self.learning_rate, batch_size=self.batch_size,
                    max_length=self.max_length, warmup_ratio=self.warmup_ratio,
                    weight_decay=self.weight_decay, seed=self.seed, mixed_precision=self.mixed_precision)

    def cache_key(self) -> str:
        """``<dataset>-<model>-<profile>-<hash of the whole recipe>``: a changed recipe is a new entry."""
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        model = self.model.replace("/", "_")
        return f"{self.dataset}-{model}-{self.profile}-{digest}"


def resolved_model_name(name: str | None) -> str:
    """The model a profile's ``model`` gives here: the Hub id when the Hub is reachable, else the
    packaged MiniLM (so that the ``gpu`` profile still runs offline)."""
    source = resolve_model(name, fallback_to_packaged=True)
    return PACKAGED_MODEL if source == str(packaged_model_path()) else (name or PACKAGED_MODEL)


def finetune_recipe(dataset_name: str, profile=None) -> FinetuneRecipe:
    """The course's fine-tuning recipe for ``dataset_name`` in ``profile`` (default: the one in force).

    Sizes come from the profile, except where ``RECIPE_OVERRIDES`` says otherwise; the learning rate
    comes from the model. A profile with ``bf16_on_cpu`` trains in mixed precision only where it pays on
    this machine's device (CUDA, or a CPU with native bf16), else in fp32, so the recipe, and with it the
    cache key, records the precision that runs.
    """
    profile = profile if not isinstance(profile, (str, type(None))) else get_profile(profile)
    dataset = get_spec(dataset_name).name
    model = resolved_model_name(profile.model)
    recipe = FinetuneRecipe(
        dataset=dataset, model=model, profile=profile.name, train_examples=profile.train_examples,
        min_train_words=0, eval_examples=profile.eval_examples, epochs=profile.epochs,
        learning_rate=LEARNING_RATES.get(model, 5e-5), batch_size=profile.batch_size,
        max_length=profile.max_length,
        mixed_precision=mixed_precision_pays(get_device()) if profile.bf16_on_cpu else None,
    )
    overrides = {**RECIPE_OVERRIDES.get((profile.name, None), {}), **RECIPE_OVERRIDES.get((profile.name, dataset), {})}
    recipe = replace(recipe, **overrides)
    if profile.rehearsal:
        scaled = finetune_recipe(dataset, get_profile(profile.scale))
        recipe = replace(recipe, **{field: getattr(scaled, field) for field in REHEARSED_FIELDS})
    return recipe


def finetuning_data(recipe: FinetuneRecipe):
    """The recipe's ``DatasetDict``: the training subset (sentence-like rows if asked), the other splits
    subsampled to ``eval_examples``, all stratified and seeded."""
    from datasets import DatasetDict

    data = load_course_dataset(recipe.dataset, seed=recipe.seed)
    train = data["train"]
    if recipe.min_train_words:
        train = sentence_like_rows(train, recipe.min_train_words)
    splits = {"train": stratified_subsample(train, recipe.train_examples, recipe.seed)}
    for split, dataset in data.items():
        if split != "train":
            splits[split] = stratified_subsample(dataset, recipe.eval_examples, recipe.seed)
    return DatasetDict(splits)


def unused_training_sentences(recipe: FinetuneRecipe, min_words: int = 5):
    """SST-2-style training rows of at least ``min_words`` words (and ``recipe.min_train_words``) that none
    of the recipe's splits holds: sentences for a held-out set or a transfer set that the fine-tuned
    model has never seen. Raises ``ValueError`` if there are none (a recipe that trains on every row)."""
    data = load_course_dataset(recipe.dataset, seed=recipe.seed)
    used = {text for split in finetuning_data(recipe).values() for text in column_values(split, TEXT_COLUMN)}
    least = max(recipe.min_train_words, min_words)
    long_rows = sentence_like_rows(data["train"], least)
    rows = [i for i, text in enumerate(column_values(long_rows, TEXT_COLUMN)) if text not in used]
    if not rows:
        raise ValueError(f"The {recipe.profile} recipe for {recipe.dataset} uses every training row of at least "
                         f"{least} words: none is left to hold out. Give it a smaller train_examples.")
    return long_rows.select(rows)


def stored_recipe_runs(name: str) -> dict[str, Any]:
    """The stored runs called ``name`` (one of ``STORED_RUNS``) that chose the cpu recipe: of
    ``scripts/tune_recipe.py`` and ``scripts/benchmark_finetuning.py --precision``; shipped as package data, so
    they are there in an installed package too."""
    if name not in STORED_RUNS:
        raise ValueError(f"No stored recipe runs called {name!r}; the package has {', '.join(STORED_RUNS)}.")
    stored = resources.files(__package__) / "stored_runs" / f"{name}.json"
    if not stored.is_file():
        raise FileNotFoundError(f"The package's stored recipe runs {name}.json are missing (textclf_utils/stored_runs/): "
                                "this copy of textclf_utils is incomplete. Reinstall it (the README's set-up, or "
                                "%pip install on Colab).")
    return json.loads(stored.read_text(encoding="utf-8"))
