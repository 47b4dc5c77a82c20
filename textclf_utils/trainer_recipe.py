"""The course's fine-tuning recipe with ``transformers.Trainer`` (current v5 API): the same data, schedule,
batch size and epochs as the plain loop in ``training``, behind one call."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import Trainer

from .checks import (TEXT_COLUMN, check_classification_dataset, check_max_length, check_max_length_value,
                     check_optional_positive_int, check_positive, check_tokenizer_fits_model, model_num_labels)
from .training import amp_settings, check_finite_loss, loader_settings


def tokenize_for_trainer(dataset, tokenizer, max_length: int):
    """``dataset`` with the tokenizer's columns added (truncated, unpadded), for ``Trainer``."""
    check_max_length_value(max_length)
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
                      mixed_precision: bool | None = None, bf16_supported: bool | None = None,
                      cuda: bool | None = None, **overrides: Any):
    """``TrainingArguments`` for the course's recipe: evaluate and save every epoch, keep the best
    (by accuracy), linear warm-up and decay, length-grouped batches, and bf16 (else fp16) on CUDA;
    ``mixed_precision=True`` asks for bf16 on a CPU too, as in ``training.amp_settings``.

    ``cuda`` and ``bf16_supported`` default to what this machine has (they can be given for tests).
    In transformers v5 length grouping is ``train_sampling_strategy="group_by_length"`` (the v4
    ``group_by_length=True`` flag is gone). Launched by torchrun/accelerate on a machine without CUDA,
    the processes train data-parallel on the CPU (gloo): the Trainer needs ``use_cpu=True`` for that, and for
    bf16 on a CPU (the gpu-cpu rehearsal).
    """
    from transformers import TrainingArguments

    check_positive(epochs=epochs, learning_rate=learning_rate)
    check_optional_positive_int(batch_size=batch_size)
    if isinstance(warmup_ratio, bool) or not isinstance(warmup_ratio, (int, float)) or not 0 <= warmup_ratio < 1:
        raise ValueError(f"warmup_ratio is the share of the training steps spent warming up and must be in [0, 1), "
                         f"got {warmup_ratio!r}: e.g. 0.1 warms up over the first tenth.")
    cuda = torch.cuda.is_available() if cuda is None else cuda
    several_processes = int(os.environ.get("WORLD_SIZE", "1")) > 1
    amp = amp_settings("cuda" if cuda else "cpu", mixed_precision, bf16_supported=bf16_supported)
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
        dataloader_num_workers=loader_settings("cuda" if cuda else "cpu").get("num_workers", 0),
        use_cpu=not cuda and (several_processes or amp.dtype is not None),
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


class FiniteLossTrainer(Trainer):
    """``transformers.Trainer`` that stops at the first NaN/inf training loss, as ``train_classifier`` does.

    The check is in ``compute_loss``, not in a callback's ``on_log``: the Trainer's default
    ``logging_nan_inf_filter`` replaces a non-finite loss by the window's mean before logging it.
    """

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None):
        result = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                      num_items_in_batch=num_items_in_batch)
        if model.training:
            loss = result[0] if return_outputs else result
            check_finite_loss(loss.item(), self.state.global_step + 1, self._get_learning_rate())
        return result


def train_with_trainer(model: nn.Module, tokenizer, train_dataset, eval_dataset, *, output_dir: str,
                       epochs: float, learning_rate: float, batch_size: int, max_length: int,
                       warmup_ratio: float = 0.1, weight_decay: float = 0.01, max_grad_norm: float = 1.0,
                       group_by_length: bool = True, seed: int = 42, progress: bool = True,
                       mixed_precision: bool | None = None, **overrides: Any):
    """Fine-tune with ``transformers.Trainer`` on the same recipe as ``train_classifier``.

    Returns ``(trainer, history)``: the trainer holds the best epoch's model, ``history`` has one dict
    per epoch (``epoch``, ``train_loss``, ``eval_loss``, ``eval_accuracy``, ``eval_f1_macro``).
    The same checks as ``train_classifier`` run first, and a NaN/inf training loss stops it with a
    ``FloatingPointError`` naming the step and the learning rate.
    """
    from transformers import DataCollatorWithPadding

    num_labels = model_num_labels(model)
    check_classification_dataset(train_dataset, num_labels, "training dataset", model)
    check_classification_dataset(eval_dataset, num_labels, "evaluation dataset", model)
    check_max_length(max_length, model, tokenizer)
    check_tokenizer_fits_model(tokenizer, model)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise NotADirectoryError(f"output_dir={output_dir!r} is a file; the Trainer writes checkpoints into a "
                                 "folder: give a new folder's path.")
    args = trainer_arguments(output_dir, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size,
                             warmup_ratio=warmup_ratio, weight_decay=weight_decay, max_grad_norm=max_grad_norm,
                             group_by_length=group_by_length, seed=seed, progress=progress,
                             mixed_precision=mixed_precision, **overrides)
    trainer = FiniteLossTrainer(
        model=model,
        args=args,
        train_dataset=tokenize_for_trainer(train_dataset, tokenizer, max_length),
        eval_dataset=tokenize_for_trainer(eval_dataset, tokenizer, max_length),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=classification_metrics,
    )
    trainer.train()
    trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)  # drop the autocast wrapper
    return trainer, trainer_history(trainer.state.log_history)


def accuracy_difference_tolerance(predictions_a, predictions_b, z: float = 3.0) -> float:
    """How far the accuracies of two models on the same examples may differ by chance alone: ``z`` standard
    errors of the difference, ``sqrt(d / n)`` for a share ``d`` of the ``n`` examples on which the two
    disagree (the variance McNemar's test uses), and at least one example's worth. Two fine-tuning runs of
    one recipe (the plain loop and the ``Trainer``, or two seeds) should agree within it."""
    a, b = np.asarray(predictions_a), np.asarray(predictions_b)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"Expected two equally long, non-empty 1-D arrays of predictions, got {a.shape} and {b.shape}.")
    disagreement = float((a != b).mean())
    return max(z * math.sqrt(disagreement / len(a)), 1 / len(a))
