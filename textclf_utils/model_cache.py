"""The shared cache of fine-tuned models: notebook 03 stores the model its recipe gives, notebooks
04-06 load it (or train it, if it is not there yet), keyed by the whole recipe."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from torch import nn

from .config import set_seed
from .models import load_classifier, load_saved_classifier
from .recipes import FinetuneRecipe, finetune_recipe, finetuning_data
from .training import LABEL_COLUMN, TrainingResult, train_classifier

ARTIFACTS_ENV = "TEXTCLF_ARTIFACTS_DIR"


def artifacts_dir() -> Path:
    """Where trained models are cached: ``$TEXTCLF_ARTIFACTS_DIR``, else the repository's git-ignored
    ``artifacts/`` folder, else ``~/.cache/textclf_utils/artifacts``."""
    if os.environ.get(ARTIFACTS_ENV):
        return Path(os.environ[ARTIFACTS_ENV]).expanduser()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file():
        return repo / "artifacts"
    return Path.home() / ".cache" / "textclf_utils" / "artifacts"


def finetuned_model_dir(recipe: FinetuneRecipe, cache_dir: Path | None = None) -> Path:
    return (cache_dir or artifacts_dir()) / "finetuned" / recipe.cache_key()


def store_finetuned_classifier(recipe: FinetuneRecipe, tokenizer, model: nn.Module, result: TrainingResult,
                               metrics: dict[str, float] | None = None, cache_dir: Path | None = None) -> Path:
    """Save a model trained on ``recipe`` into the cache (safetensors, with ``training.json``), atomically:
    written to a temporary folder beside the entry, then renamed. If another run stored the same entry
    meanwhile, that one is kept."""
    target = finetuned_model_dir(recipe, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as any saved model
        model.save_pretrained(tmp)  # safetensors by default
        tokenizer.save_pretrained(tmp)
        record = {"recipe": asdict(recipe), "history": result.history, "best_epoch": result.best_epoch,
                  "best_eval_accuracy": result.best_eval_accuracy, "train_seconds": result.train_seconds,
                  "metrics": metrics or {}}
        (tmp / "training.json").write_text(json.dumps(record, indent=2))
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "training.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def get_finetuned_classifier(dataset_name: str, profile=None, *, cache_dir: Path | None = None,
                             progress: bool = True):
    """``(tokenizer, model)`` fine-tuned on ``dataset_name`` with the course's recipe for ``profile``.

    Loaded from the cache (see ``artifacts_dir``) when there; otherwise trained with ``train_classifier``
    (the recipe notebook 03 uses), stored atomically, and returned. Keyed by dataset, model, profile and
    recipe, so notebooks 04-06 each run standalone and share one trained model.
    """
    recipe = finetune_recipe(dataset_name, profile)
    folder = finetuned_model_dir(recipe, cache_dir)
    if not (folder / "training.json").is_file():
        data = finetuning_data(recipe)
        set_seed(recipe.seed)
        tokenizer, model = load_classifier(recipe.model, data["train"].features[LABEL_COLUMN].names,
                                           fallback_to_packaged=True, pooling=recipe.pooling)
        if progress:
            print(f"No cached model for {recipe.cache_key()}: fine-tuning it now "
                  f"({len(data['train']):,} examples, {recipe.epochs:g} epochs).")
        result = train_classifier(model, tokenizer, data["train"], data["validation"], progress=progress,
                                  **recipe.loop_arguments())
        store_finetuned_classifier(recipe, tokenizer, model, result, cache_dir=cache_dir)
    return load_saved_classifier(folder)
