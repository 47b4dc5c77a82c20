"""Fine-tuning a text classifier: tokenise, pad per batch, group by length, train, evaluate.

Two recipes share the same data handling:

- ``train_classifier``: a plain PyTorch loop (AdamW, linear warm-up and decay, gradient clipping,
  dynamic padding, length-grouped batches, mixed precision on CUDA, a tqdm bar, evaluation each
  epoch, the best epoch's weights restored at the end);
- ``evaluate_classifier``: loss, accuracy, predictions and class probabilities on a dataset.

The model may be a Hugging Face classifier (its output has ``.logits``) or any module that takes
``input_ids`` / ``attention_mask`` / ``token_type_ids`` keywords and returns the logits tensor.
Datasets have a ``text`` column and a ``label`` column of class ids.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from .config import get_device, get_profile, set_seed
from .data import get_spec, load_course_dataset, stratified_subsample
from .models import PACKAGED_MODEL, load_classifier, packaged_model_path, resolve_model

TEXT_COLUMN = "text"
LABEL_COLUMN = "label"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# Checks made before any training starts


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


def check_classification_dataset(dataset, num_labels: int | None, name: str = "dataset") -> None:
    """Raise ``ValueError`` unless ``dataset`` is non-empty, has ``text``/``label`` and valid label ids."""
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
    labels = np.asarray(dataset[LABEL_COLUMN])
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"The {name}'s '{LABEL_COLUMN}' column must hold integer class ids, got {labels.dtype} "
                         "(map label names to ids first, e.g. with a datasets.ClassLabel).")
    if num_labels is not None:
        bad = (labels < 0) | (labels >= num_labels)
        if bad.any():
            raise ValueError(f"The {name} has label ids {sorted(set(labels[bad].tolist()))[:10]} outside "
                             f"0..{num_labels - 1} (the model has num_labels={num_labels}); "
                             f"{int(bad.sum())} rows, the first at index {int(np.flatnonzero(bad)[0])}.")


def check_max_length(max_length: int, model: nn.Module, tokenizer: Any = None) -> None:
    """Raise ``ValueError`` if ``max_length`` is not positive or above what the model can take."""
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an integer of at least 2 (room for [CLS] and [SEP]), got {max_length!r}.")
    limit = model_max_length(model, tokenizer)
    if limit is not None and max_length > limit:
        raise ValueError(f"max_length={max_length} is above the model's limit of {limit} tokens "
                         f"(its position embeddings stop there); use max_length <= {limit}.")


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if value is None or not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}.")


# ---------------------------------------------------------------------------------------------
# Tokenisation, padding and batching


def tokenize_dataset(dataset, tokenizer, max_length: int) -> list[dict[str, Any]]:
    """Tokenise ``dataset`` (truncating to ``max_length``, no padding yet) into a list of features.

    Each feature holds the tokenizer's outputs (``input_ids``, ``attention_mask``, ...) and ``labels``.
    Padding is left to the collator, batch by batch.
    """
    encoded = tokenizer(list(dataset[TEXT_COLUMN]), truncation=True, max_length=max_length)
    labels = list(dataset[LABEL_COLUMN])
    keys = [k for k in MODEL_INPUTS if k in encoded]
    return [{**{k: encoded[k][i] for k in keys}, "labels": labels[i]} for i in range(len(labels))]


def make_collator(tokenizer, fixed_length_padding: bool = False, max_length: int | None = None,
                  pad_to_multiple_of: int | None = None):
    """A ``DataCollatorWithPadding``: pad to the longest in each batch (default) or always to ``max_length``."""
    from transformers import DataCollatorWithPadding

    if fixed_length_padding:
        return DataCollatorWithPadding(tokenizer, padding="max_length", max_length=max_length)
    return DataCollatorWithPadding(tokenizer, padding="longest", pad_to_multiple_of=pad_to_multiple_of)


def length_grouped_sampler(features: Sequence[dict[str, Any]], batch_size: int,
                           generator: torch.Generator) -> Sampler:
    """Transformers' ``LengthGroupedSampler``: random mega-batches, each sorted by length, so that the
    examples of one batch have similar lengths and little padding is wasted."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    return LengthGroupedSampler(batch_size, lengths=[len(f["input_ids"]) for f in features], generator=generator)


def padding_fraction(loader: DataLoader) -> float:
    """The share of token positions in ``loader``'s batches that are padding."""
    padded = real = 0
    for batch in loader:
        padded += batch["attention_mask"].numel()
        real += int(batch["attention_mask"].sum())
    return 1 - real / padded if padded else 0.0


# ---------------------------------------------------------------------------------------------
# Mixed precision


@dataclass(frozen=True)
class AmpSettings:
    """How to run the forward pass: ``dtype`` None means full fp32; a scaler is needed for fp16 only."""

    dtype: torch.dtype | None
    use_scaler: bool

    @property
    def name(self) -> str:
        return "fp32" if self.dtype is None else str(self.dtype).replace("torch.", "")


def amp_settings(device: torch.device | str, enabled: bool | None = None,
                 bf16_supported: bool | None = None) -> AmpSettings:
    """Mixed precision on CUDA only: bf16 where the GPU supports it (no scaler needed), else fp16 with a
    ``GradScaler``. ``enabled=None`` means "on when the device is CUDA"; on a CPU it is always off (CPU
    autocast rarely speeds training up). ``bf16_supported`` overrides the GPU's own answer (for tests)."""
    device = torch.device(device)
    if device.type != "cuda" or enabled is False:
        return AmpSettings(dtype=None, use_scaler=False)
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    if bf16_supported:
        return AmpSettings(dtype=torch.bfloat16, use_scaler=False)
    return AmpSettings(dtype=torch.float16, use_scaler=True)


def autocast(device: torch.device, amp: AmpSettings):
    """``torch.autocast`` for ``amp``, or a do-nothing context in full precision."""
    if amp.dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp.dtype)


# ---------------------------------------------------------------------------------------------
# Forward pass, evaluation


def _logits(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    output = model(**{k: v for k, v in batch.items() if k in MODEL_INPUTS})
    return output if isinstance(output, torch.Tensor) else output.logits


def _needs_inputs(loss_fn: Callable[..., torch.Tensor]) -> bool:
    """Whether ``loss_fn`` also wants the batch's model inputs (it says so with ``needs_inputs = True``)."""
    return bool(getattr(loss_fn, "needs_inputs", False))


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _resolve_device(device: torch.device | str | None) -> torch.device:
    return torch.device(device) if device is not None else get_device()


@torch.no_grad()
def _evaluate_features(model: nn.Module, features: list[dict[str, Any]], collator, batch_size: int,
                       device: torch.device, amp: AmpSettings, loss_fn: LossFunction | None = None,
                       progress: bool = False) -> dict[str, Any]:
    from tqdm.auto import tqdm

    # Sorted by length, batches need almost no padding; the results are put back in the original order.
    order = np.argsort([len(f["input_ids"]) for f in features], kind="stable")
    was_training = model.training
    model.eval()
    logits_sorted = []
    for start in tqdm(range(0, len(order), batch_size), desc="evaluating", disable=not progress, leave=False):
        batch = _to_device(collator([features[i] for i in order[start:start + batch_size]]), device)
        with autocast(device, amp):
            logits_sorted.append(_logits(model, batch).float().cpu())
    model.train(was_training)
    logits = torch.empty((len(order), logits_sorted[0].shape[-1]))
    logits[torch.as_tensor(order)] = torch.cat(logits_sorted)
    labels = torch.tensor([f["labels"] for f in features])
    if loss_fn is None or _needs_inputs(loss_fn):  # a loss that needs the batch (distillation): CE on labels
        loss_fn = nn.functional.cross_entropy
    loss = loss_fn(logits, labels).item()
    probabilities = torch.softmax(logits, dim=-1).numpy()
    predictions = probabilities.argmax(axis=-1)
    return {
        "accuracy": float((predictions == labels.numpy()).mean()),
        "loss": float(loss),
        "predictions": predictions,
        "probabilities": probabilities,
        "labels": labels.numpy(),
    }


def evaluate_classifier(model: nn.Module, tokenizer, dataset, batch_size: int = 64, max_length: int = 128,
                        device: torch.device | str | None = None, progress: bool = False) -> dict[str, Any]:
    """Loss and accuracy of ``model`` on ``dataset``, with its predictions and class probabilities.

    Returns ``{"accuracy", "loss", "predictions", "probabilities", "labels"}`` (arrays in the
    dataset's order). Mixed precision is used on CUDA, as in training.
    """
    check_classification_dataset(dataset, model_num_labels(model), "evaluation dataset")
    check_max_length(max_length, model, tokenizer)
    _check_positive(batch_size=batch_size)
    device = _resolve_device(device)
    model.to(device)
    features = tokenize_dataset(dataset, tokenizer, max_length)
    return _evaluate_features(model, features, make_collator(tokenizer), batch_size, device,
                              amp_settings(device), progress=progress)


# ---------------------------------------------------------------------------------------------
# The plain PyTorch training loop


@dataclass
class TrainingResult:
    """What ``train_classifier`` measured.

    ``history`` has one dict per epoch: ``epoch``, ``step``, ``train_loss`` (mean over the epoch),
    ``eval_loss``, ``eval_accuracy``, ``learning_rate`` (at the epoch's end), ``seconds`` (training time of
    the epoch, evaluation excluded) and ``train_samples_per_second``. ``step_losses`` holds the loss of
    every optimisation step. The model holds the weights of ``best_epoch`` when training returns.
    """

    history: list[dict[str, float]]
    step_losses: list[float]
    best_epoch: int
    best_eval_accuracy: float | None
    train_seconds: float
    train_samples_per_second: float
    steps: int
    precision: str
    padding_fraction: float
    final_eval: dict[str, Any] | None = field(default=None, repr=False)


def _optimizer(model: nn.Module, learning_rate: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with no weight decay on biases and LayerNorm weights (as BERT was trained)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "norm" in name.lower() else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=learning_rate, fused=None)


def train_classifier(
    model: nn.Module,
    tokenizer,
    train_dataset,
    eval_dataset=None,
    *,
    epochs: float,
    learning_rate: float,
    batch_size: int,
    max_length: int,
    warmup_ratio: float = 0.1,
    weight_decay: float = 0.01,
    max_grad_norm: float | None = 1.0,
    group_by_length: bool = True,
    fixed_length_padding: bool = False,
    mixed_precision: bool | None = None,
    seed: int = 42,
    device: torch.device | str | None = None,
    max_steps: int | None = None,
    eval_batch_size: int | None = None,
    loss_fn: LossFunction | None = None,
    sampler: Sampler | None = None,
    num_labels: int | None = None,
    progress: bool = True,
) -> TrainingResult:
    """Fine-tune ``model`` on ``train_dataset`` with a plain PyTorch loop; evaluate on ``eval_dataset``
    after every epoch and restore the weights of the epoch with the best accuracy at the end.

    ``epochs`` may be fractional (e.g. 1.5); ``max_steps`` overrides it. ``group_by_length`` batches
    examples of similar length (less padding); ``fixed_length_padding`` pads every batch to ``max_length``
    (the naive recipe, for comparison). ``mixed_precision=None`` uses AMP on CUDA only (bf16 if the GPU
    supports it, else fp16 with a gradient scaler). ``loss_fn(logits, labels)`` replaces cross-entropy
    (a loss with ``needs_inputs = True``, such as ``distill.DistillationLoss``, is also given the batch's
    model inputs as ``inputs=``; the evaluation loss is then plain cross-entropy);
    ``sampler`` (over the training examples) replaces the shuffling/length-grouping sampler.
    Bad input (empty data, a missing column, label ids outside ``num_labels``, ``max_length`` above the
    model's limit) raises ``ValueError`` before any training.
    """
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    num_labels = num_labels or model_num_labels(model)
    check_classification_dataset(train_dataset, num_labels, "training dataset")
    if eval_dataset is not None:
        check_classification_dataset(eval_dataset, num_labels, "evaluation dataset")
    check_max_length(max_length, model, tokenizer)
    _check_positive(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size)
    if max_steps is not None:
        _check_positive(max_steps=max_steps)
    if not 0 <= warmup_ratio < 1:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}.")

    set_seed(seed)
    device = _resolve_device(device)
    amp = amp_settings(device, mixed_precision)
    model.to(device)

    train_features = tokenize_dataset(train_dataset, tokenizer, max_length)
    eval_features = tokenize_dataset(eval_dataset, tokenizer, max_length) if eval_dataset is not None else None
    collator = make_collator(tokenizer, fixed_length_padding, max_length)
    eval_collator = make_collator(tokenizer)
    generator = torch.Generator().manual_seed(seed)
    if sampler is None and group_by_length:
        sampler = length_grouped_sampler(train_features, batch_size, generator)
    loader = DataLoader(train_features, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                        collate_fn=collator, generator=generator if sampler is None else None)

    steps_per_epoch = len(loader)
    total_steps = max_steps or math.ceil(epochs * steps_per_epoch)
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    optimizer = _optimizer(model, learning_rate, weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)
    scaler = torch.amp.GradScaler(device.type) if amp.use_scaler else None
    compute_loss = loss_fn or nn.functional.cross_entropy

    history: list[dict[str, float]] = []
    step_losses: list[float] = []
    best_state, best_epoch, best_accuracy, best_loss = None, num_epochs, None, math.inf
    real_tokens = padded_tokens = samples = 0
    train_seconds = 0.0
    step = 0
    model.train()
    bar = tqdm(total=total_steps, desc="training", disable=not progress, unit="step")
    for epoch in range(1, num_epochs + 1):
        epoch_losses: list[float] = []
        epoch_samples = 0
        started = time.perf_counter()
        for batch in _limited(loader, total_steps - step):
            batch = _to_device(batch, device)
            with autocast(device, amp):
                logits = _logits(model, batch)
            if _needs_inputs(compute_loss):
                loss = compute_loss(logits.float(), batch["labels"], inputs=batch)
            else:
                loss = compute_loss(logits.float(), batch["labels"])
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if max_grad_norm:
                nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            step += 1
            step_losses.append(loss.item())
            epoch_losses.append(step_losses[-1])
            epoch_samples += len(batch["labels"])
            real_tokens += int(batch["attention_mask"].sum())
            padded_tokens += batch["attention_mask"].numel()
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{step_losses[-1]:.3f}")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
        train_seconds += seconds
        samples += epoch_samples
        record = {"epoch": epoch_fraction(step, steps_per_epoch), "step": step,
                  "train_loss": float(np.mean(epoch_losses)), "learning_rate": scheduler.get_last_lr()[0],
                  "seconds": seconds, "train_samples_per_second": epoch_samples / seconds}
        if eval_features is not None:
            metrics = _evaluate_features(model, eval_features, eval_collator, eval_batch_size or 2 * batch_size,
                                         device, amp, loss_fn)
            record.update(eval_loss=metrics["loss"], eval_accuracy=metrics["accuracy"])
            better = best_accuracy is None or (metrics["accuracy"], -metrics["loss"]) > (best_accuracy, -best_loss)
            if better:
                best_epoch, best_accuracy, best_loss = epoch, metrics["accuracy"], metrics["loss"]
                if epoch < num_epochs:  # the last epoch's weights are in the model already
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                else:
                    best_state = None
        else:
            record.update(eval_loss=math.nan, eval_accuracy=math.nan)
        history.append(record)
        if progress:
            bar.write(_describe_epoch(record))
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    final_eval = None
    if eval_features is not None:
        final_eval = _evaluate_features(model, eval_features, eval_collator, eval_batch_size or 2 * batch_size,
                                        device, amp, loss_fn)
    return TrainingResult(
        history=history, step_losses=step_losses, best_epoch=best_epoch, best_eval_accuracy=best_accuracy,
        train_seconds=train_seconds, train_samples_per_second=samples / train_seconds if train_seconds else 0.0,
        steps=step, precision=amp.name,
        padding_fraction=1 - real_tokens / padded_tokens if padded_tokens else 0.0, final_eval=final_eval,
    )


def epoch_fraction(step: int, steps_per_epoch: int) -> float:
    return round(step / steps_per_epoch, 3)


def _limited(loader: DataLoader, steps: int) -> Iterator[dict[str, torch.Tensor]]:
    for index, batch in enumerate(loader):
        if index >= steps:
            return
        yield batch


def _describe_epoch(record: dict[str, float]) -> str:
    text = (f"epoch {record['epoch']:g}: train loss {record['train_loss']:.4f}, "
            f"{record['train_samples_per_second']:.0f} samples/s")
    if not math.isnan(record["eval_accuracy"]):
        text += f", eval loss {record['eval_loss']:.4f}, eval accuracy {record['eval_accuracy']:.4f}"
    return text


# ---------------------------------------------------------------------------------------------
# The same recipe with transformers.Trainer


def tokenize_for_trainer(dataset, tokenizer, max_length: int):
    """``dataset`` with the tokenizer's columns added (truncated, unpadded), for ``Trainer``."""
    return dataset.map(lambda batch: tokenizer(batch[TEXT_COLUMN], truncation=True, max_length=max_length),
                       batched=True, desc="tokenising")


def classification_metrics(eval_prediction) -> dict[str, float]:
    """``compute_metrics`` for ``Trainer``: accuracy and macro-F1 from scikit-learn."""
    from sklearn.metrics import accuracy_score, f1_score

    logits, labels = eval_prediction.predictions, eval_prediction.label_ids
    logits = logits[0] if isinstance(logits, tuple) else logits
    predictions = np.asarray(logits).argmax(axis=-1)
    return {"accuracy": float(accuracy_score(labels, predictions)),
            "f1_macro": float(f1_score(labels, predictions, average="macro"))}


def trainer_arguments(output_dir: str, *, epochs: float, learning_rate: float, batch_size: int,
                      warmup_ratio: float = 0.1, weight_decay: float = 0.01, max_grad_norm: float = 1.0,
                      group_by_length: bool = True, seed: int = 42, progress: bool = True,
                      bf16_supported: bool | None = None, cuda: bool | None = None, **overrides: Any):
    """``TrainingArguments`` for the course's recipe: evaluate and save every epoch, keep the best
    (by accuracy), linear warm-up and decay, length-grouped batches, and bf16 (else fp16) on CUDA.

    ``cuda`` and ``bf16_supported`` default to what this machine has (they can be given for tests).
    In transformers v5 length grouping is ``train_sampling_strategy="group_by_length"`` (the v4
    ``group_by_length=True`` flag is gone). Launched by torchrun/accelerate on a machine without CUDA,
    the processes train data-parallel on the CPU (gloo): the Trainer needs ``use_cpu=True`` for that.
    """
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available() if cuda is None else cuda
    several_processes = int(os.environ.get("WORLD_SIZE", "1")) > 1
    amp = amp_settings("cuda" if cuda else "cpu", bf16_supported=bf16_supported)
    settings = dict(
        output_dir=output_dir,
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=2 * batch_size,
        lr_scheduler_type="linear",
        warmup_steps=warmup_ratio,  # a float in [0, 1) is a fraction of the total steps
        weight_decay=weight_decay,
        max_grad_norm=max_grad_norm,
        train_sampling_strategy="group_by_length" if group_by_length else "random",
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        greater_is_better=True,
        save_total_limit=1,
        save_only_model=True,
        bf16=amp.dtype == torch.bfloat16,
        fp16=amp.dtype == torch.float16,
        seed=seed,
        data_seed=seed,
        report_to="none",
        disable_tqdm=not progress,
        dataloader_pin_memory=cuda,
        use_cpu=not cuda and several_processes,
    )
    settings.update(overrides)
    return TrainingArguments(**settings)


def trainer_history(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """``Trainer.state.log_history`` as one dict per epoch, with the keys ``train_classifier`` uses."""
    by_epoch: dict[float, dict[str, float]] = {}
    for entry in log_history:
        if "epoch" not in entry:
            continue
        record = by_epoch.setdefault(round(entry["epoch"], 3), {"epoch": round(entry["epoch"], 3)})
        if "loss" in entry:
            record["train_loss"] = entry["loss"]
            record["learning_rate"] = entry.get("learning_rate", math.nan)
        if "eval_loss" in entry:
            record["eval_loss"] = entry["eval_loss"]
            record["eval_accuracy"] = entry["eval_accuracy"]
            record["eval_f1_macro"] = entry.get("eval_f1_macro", math.nan)
    return [r for _, r in sorted(by_epoch.items()) if "eval_loss" in r or "train_loss" in r]


def train_with_trainer(model: nn.Module, tokenizer, train_dataset, eval_dataset, *, output_dir: str,
                       epochs: float, learning_rate: float, batch_size: int, max_length: int,
                       warmup_ratio: float = 0.1, weight_decay: float = 0.01, max_grad_norm: float = 1.0,
                       group_by_length: bool = True, seed: int = 42, progress: bool = True,
                       **overrides: Any):
    """Fine-tune with ``transformers.Trainer`` on the same recipe as ``train_classifier``.

    Returns ``(trainer, history)``: the trainer holds the best epoch's model, ``history`` has one dict
    per epoch (``epoch``, ``train_loss``, ``eval_loss``, ``eval_accuracy``, ``eval_f1_macro``).
    The same checks as ``train_classifier`` run first.
    """
    from transformers import DataCollatorWithPadding, Trainer

    num_labels = model_num_labels(model)
    check_classification_dataset(train_dataset, num_labels, "training dataset")
    check_classification_dataset(eval_dataset, num_labels, "evaluation dataset")
    check_max_length(max_length, model, tokenizer)
    _check_positive(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size)
    args = trainer_arguments(output_dir, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                             warmup_ratio=warmup_ratio, weight_decay=weight_decay, max_grad_norm=max_grad_norm,
                             group_by_length=group_by_length, seed=seed, progress=progress, **overrides)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=tokenize_for_trainer(train_dataset, tokenizer, max_length),
        eval_dataset=tokenize_for_trainer(eval_dataset, tokenizer, max_length),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=classification_metrics,
    )
    trainer.train()
    return trainer, trainer_history(trainer.state.log_history)


# ---------------------------------------------------------------------------------------------
# The course's recipe per dataset and profile, and the shared cache of fine-tuned models

ARTIFACTS_ENV = "TEXTCLF_ARTIFACTS_DIR"

# Learning rates by model: the small packaged MiniLM wants a larger step than BERT-base.
LEARNING_RATES = {PACKAGED_MODEL: 1e-4, "bert-base-uncased": 2e-5, "google-bert/bert-base-uncased": 2e-5}
# Where the recipe departs from the profile's sizes, by (profile, dataset); None = every dataset.
# sst2: train on sentence-like rows only (>= 10 words), since the dev set is whole sentences and most
# training rows are short phrases. cpu: 2,000 examples, one epoch, to fit the notebook's CPU budget
# (both the loop and the Trainer train in it). smoke: batches of 8 and a larger step, so that its 256
# examples give 32 optimisation steps that move the model. (Notebook 03 shows the measurements.)
RECIPE_OVERRIDES: dict[tuple[str, str | None], dict[str, Any]] = {
    ("smoke", None): {"batch_size": 8, "learning_rate": 2e-4},
    ("smoke", "sst2"): {"min_train_words": 10},
    ("cpu", "sst2"): {"min_train_words": 10},
}


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

    def loop_arguments(self) -> dict[str, Any]:
        """The keyword arguments of ``train_classifier`` (and ``train_with_trainer``) for this recipe."""
        return dict(epochs=self.epochs, learning_rate=self.learning_rate, batch_size=self.batch_size,
                    max_length=self.max_length, warmup_ratio=self.warmup_ratio,
                    weight_decay=self.weight_decay, seed=self.seed)

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
    comes from the model.
    """
    profile = profile if not isinstance(profile, (str, type(None))) else get_profile(profile)
    dataset = get_spec(dataset_name).name
    model = resolved_model_name(profile.model)
    recipe = FinetuneRecipe(
        dataset=dataset, model=model, profile=profile.name, train_examples=profile.train_examples,
        min_train_words=0, eval_examples=profile.eval_examples, epochs=profile.epochs,
        learning_rate=LEARNING_RATES.get(model, 5e-5), batch_size=profile.batch_size,
        max_length=profile.max_length,
    )
    overrides = {**RECIPE_OVERRIDES.get((profile.name, None), {}), **RECIPE_OVERRIDES.get((profile.name, dataset), {})}
    return replace(recipe, **overrides)


def finetuning_data(recipe: FinetuneRecipe):
    """The recipe's ``DatasetDict``: the training subset (sentence-like rows if asked), the other splits
    subsampled to ``eval_examples``, all stratified and seeded."""
    from datasets import DatasetDict

    data = load_course_dataset(recipe.dataset, seed=recipe.seed)
    train = data["train"]
    if recipe.min_train_words:
        words = np.array([len(text.split()) for text in train[TEXT_COLUMN]])
        train = train.select(np.flatnonzero(words >= recipe.min_train_words))
    splits = {"train": stratified_subsample(train, recipe.train_examples, recipe.seed)}
    for split, dataset in data.items():
        if split != "train":
            splits[split] = stratified_subsample(dataset, recipe.eval_examples, recipe.seed)
    return DatasetDict(splits)


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
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    recipe = finetune_recipe(dataset_name, profile)
    folder = finetuned_model_dir(recipe, cache_dir)
    if not (folder / "training.json").is_file():
        data = finetuning_data(recipe)
        set_seed(recipe.seed)
        tokenizer, model = load_classifier(recipe.model, data["train"].features[LABEL_COLUMN].names,
                                           fallback_to_packaged=True)
        if progress:
            print(f"No cached model for {recipe.cache_key()}: fine-tuning it now "
                  f"({len(data['train']):,} examples, {recipe.epochs:g} epochs).")
        result = train_classifier(model, tokenizer, data["train"], data["validation"], progress=progress,
                                  **recipe.loop_arguments())
        store_finetuned_classifier(recipe, tokenizer, model, result, cache_dir=cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
    return tokenizer, model.eval()
