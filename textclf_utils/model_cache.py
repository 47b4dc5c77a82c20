"""The shared cache of fine-tuned models: notebook 03 stores the model its recipe gives, notebooks
04-06 load it (or train it, if it is not there yet), keyed by the whole recipe."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .checks import LABEL_COLUMN, check_tokenizer_fits_model, model_num_labels
from .config import set_seed
from .distill import predict_logits
from .models import check_tokenizer_files, load_classifier, load_saved_classifier, save_classifier
from .recipes import FinetuneRecipe, finetune_recipe, finetuning_data
from .training import TrainingResult, train_classifier

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
    """Save a model trained on ``recipe`` into the cache (``models.save_classifier``: safetensors, tokenizer,
    model card; with ``training.json``; ``metrics`` may hold ``test_accuracy``, ``test_accuracy_interval`` and
    ``test_examples`` for the card), atomically:
    written to a temporary folder beside the entry, then renamed. If another run stored the same entry
    meanwhile, that one is kept."""
    target = finetuned_model_dir(recipe, cache_dir)
    if not (target / "training.json").is_file():
        check_cache_entry(target)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as any saved model
        metrics = metrics or {}
        interval = metrics.get("test_accuracy_interval")
        save_classifier(model, tokenizer, tmp, dataset=recipe.dataset, recipe=asdict(recipe),
                        test_accuracy=metrics.get("test_accuracy"), test_examples=metrics.get("test_examples"),
                        test_interval=tuple(interval) if interval is not None else None, precision=result.precision)
        record = {"recipe": asdict(recipe), "history": result.history, "best_epoch": result.best_epoch,
                  "best_eval_accuracy": result.best_eval_accuracy, "train_seconds": result.train_seconds,
                  "metrics": metrics}
        (tmp / "training.json").write_text(json.dumps(record, indent=2))
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "training.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class ModelCacheError(RuntimeError):
    """The cache of fine-tuned models cannot be used as it is: the message says what to delete or set."""


def check_cache_entry(folder: Path) -> None:
    """Raise ``ModelCacheError`` before any training if ``folder``'s entry could not be stored: the cache
    folder is not writable, or a folder stands there without the ``training.json`` a stored entry has."""
    if folder.exists() and not (folder / "training.json").is_file():
        raise ModelCacheError(
            f"The cache entry {folder} is incomplete (no training.json): it was not written by this cache, or "
            f"was copied without it. Delete that folder (shutil.rmtree({str(folder)!r})) and run again.")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        Path(tempfile.mkdtemp(dir=folder.parent, prefix=".write-test-")).rmdir()
    except OSError as err:
        raise ModelCacheError(
            f"The model cache {folder.parent} is not writable ({err}), so a model trained now could not be kept. "
            f"Set {ARTIFACTS_ENV} (or pass cache_dir=) to a folder you can write to.") from err


def load_cached_classifier(folder: Path):
    """``(tokenizer, model)`` from a cache entry; ``ModelCacheError`` saying what to delete if it is damaged."""
    from safetensors import SafetensorError

    try:
        check_tokenizer_files(folder)
        tokenizer, model = load_saved_classifier(folder)
        check_tokenizer_fits_model(tokenizer, model)
    except (OSError, ValueError, SafetensorError) as err:
        raise ModelCacheError(f"The cached model {folder} is damaged and cannot be loaded ({err}). Delete that "
                              f"folder (shutil.rmtree({str(folder)!r})) and run again to train it anew.") from err
    return tokenizer, model.eval()


def get_finetuned_classifier(dataset_name: str, profile=None, *, cache_dir: Path | None = None,
                             progress: bool = True):
    """``(tokenizer, model)`` fine-tuned on ``dataset_name`` with the course's recipe for ``profile``.

    Loaded from the cache (see ``artifacts_dir``) when there; otherwise trained with ``train_classifier``
    (the recipe notebook 03 uses), stored atomically, and returned. Keyed by dataset, model, profile and
    recipe, so notebooks 04-06 each run standalone and share one trained model. Before training, the
    cache is checked to be writable and free of an incomplete entry (``ModelCacheError`` otherwise).
    """
    recipe = finetune_recipe(dataset_name, profile)
    folder = finetuned_model_dir(recipe, cache_dir)
    if not (folder / "training.json").is_file():
        check_cache_entry(folder)
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
    return load_cached_classifier(folder)


def cached_teacher_logits(recipe: FinetuneRecipe, teacher: nn.Module, tokenizer, texts, *, name: str,
                          cache_dir: Path | None = None, progress: bool = True):
    """The fine-tuned ``teacher``'s logits on ``texts``, computed once and then read from the cache.

    The entry is ``teacher_logits/<recipe key>-<name>-<hash of the texts>.safetensors`` (safetensors: no
    pickle), so other texts or another teacher make a new entry. A damaged entry, or one whose shape is not
    (number of texts, the teacher's num_labels), is computed again.
    Scoring uses ``distill.predict_logits`` at the recipe's ``max_length``, under bf16 autocast where the recipe
    trained the teacher in bf16 on a CPU (``mixed_precision=True``: 1.8x faster there), else in float32.
    """
    texts = list(texts)
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    path = (cache_dir or artifacts_dir()) / "teacher_logits" / f"{recipe.cache_key()}-{name}-{digest}.safetensors"
    if path.is_file():
        try:
            logits = load_file(path)["logits"]
            num_labels = model_num_labels(teacher) or logits.shape[-1]
            if tuple(logits.shape) == (len(texts), num_labels) and torch.isfinite(logits).all():
                return logits
        except (SafetensorError, KeyError, OSError):
            pass
    on_cpu = next(teacher.parameters()).device.type == "cpu"
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(recipe.mixed_precision) and on_cpu):
        logits = predict_logits(teacher, tokenizer, texts, recipe.max_length, progress=progress,
                                desc=f"teacher labels {name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    save_file({"logits": logits.contiguous()}, str(partial))
    os.replace(partial, path)
    return logits
