"""Fine-tuning a text classifier: tokenise, pad per batch, group by length, train, evaluate.

Two recipes share the same data handling:

- ``train_classifier``: a plain PyTorch loop (AdamW, linear warm-up and decay, gradient clipping,
  dynamic padding, length-grouped batches, mixed precision on CUDA, a tqdm bar, evaluation each
  epoch, the best epoch's weights restored at the end);
- ``evaluate_classifier``: loss, accuracy, predictions and class probabilities on a dataset.

The same recipe with ``transformers.Trainer`` is in ``trainer_recipe``; each dataset's and profile's
settings in ``recipes``; the shared cache of fine-tuned models in ``model_cache``.

The model may be a Hugging Face classifier (its output has ``.logits``) or any module that takes
``input_ids`` / ``attention_mask`` / ``token_type_ids`` keywords and returns the logits tensor.
Datasets have a ``text`` column and a ``label`` column of class ids.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from .checks import (LABEL_COLUMN, TEXT_COLUMN, check_classification_dataset, check_max_length, check_max_length_value,
                     check_optional_positive_int, check_positive, check_tokenizer_fits_model, model_num_labels)
from .config import PROFILE_ENV, PROFILES, cpu_has_native_bf16, get_device, gpu_has_native_bf16, set_seed
from .data import column_values

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

LossFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
PROGRESS_EVERY = 50  # on CUDA, the bar shows the loss every this many steps (reading it waits for the GPU)


# ---------------------------------------------------------------------------------------------
# Tokenisation, padding and batching


def tokenize_dataset(dataset, tokenizer, max_length: int) -> list[dict[str, Any]]:
    """Tokenise ``dataset`` (truncating to ``max_length``, no padding yet) into a list of features.

    Each feature holds the tokenizer's outputs (``input_ids``, ``attention_mask``, ...) and ``labels``.
    Padding is left to the collator, batch by batch.
    """
    check_max_length_value(max_length)
    encoded = tokenizer(column_values(dataset, TEXT_COLUMN), truncation=True, max_length=max_length)
    labels = column_values(dataset, LABEL_COLUMN)
    keys = [k for k in MODEL_INPUTS if k in encoded]
    return [{**{k: encoded[k][i] for k in keys}, "labels": labels[i]} for i in range(len(labels))]


def make_collator(tokenizer, fixed_length_padding: bool = False, max_length: int | None = None,
                  pad_to_multiple_of: int | None = None):
    """A ``DataCollatorWithPadding``: pad to the longest in each batch (default) or always to ``max_length``."""
    from transformers import DataCollatorWithPadding

    if fixed_length_padding:
        if max_length is None:
            raise ValueError("fixed_length_padding=True pads every batch to max_length, so it needs max_length= "
                             "(the one used to tokenise); or leave fixed_length_padding=False to pad to the longest.")
        check_max_length_value(max_length)
        return DataCollatorWithPadding(tokenizer, padding="max_length", max_length=max_length)
    return DataCollatorWithPadding(tokenizer, padding="longest", pad_to_multiple_of=pad_to_multiple_of)


def length_grouped_sampler(features: Sequence[dict[str, Any]], batch_size: int,
                           generator: torch.Generator) -> Sampler:
    """Transformers' ``LengthGroupedSampler``: random mega-batches, each sorted by length, so that the
    examples of one batch have similar lengths and little padding is wasted."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    check_optional_positive_int(batch_size=batch_size)
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


def autocast_forced_on_cpu() -> bool:
    """True in the ``gpu-cpu`` rehearsal (``TEXTCLF_PROFILE=gpu-cpu``): bf16 autocast on the CPU, so that
    the mixed-precision code of the gpu profile runs in CI."""

    key = os.environ.get(PROFILE_ENV, "").strip().lower().replace("_", "-")
    return key in PROFILES and PROFILES[key].autocast_on_cpu


def amp_settings(device: torch.device | str, enabled: bool | None = None,
                 bf16_supported: bool | None = None) -> AmpSettings:
    """Which mixed precision to use. ``enabled=None`` means "on for CUDA, off elsewhere".

    CUDA: bf16 where the GPU has it natively (no scaler needed), else fp16 with a ``GradScaler`` (a T4).
    CPU (when ``enabled=True``): bf16 only where the CPU has bf16 instructions (AVX512-BF16 or AMX: about 2x
    faster than fp32 for the course's fine-tuning step), else fp32, since bf16 without them was about 16x
    slower. The gpu-cpu rehearsal forces
    bf16 on any CPU. ``bf16_supported`` overrides the device's own answer (for tests)."""
    device = torch.device(device)
    if enabled is False:
        return AmpSettings(dtype=None, use_scaler=False)
    if device.type == "cpu" and autocast_forced_on_cpu():
        return AmpSettings(dtype=torch.bfloat16, use_scaler=False)
    if enabled is None and device.type != "cuda":
        return AmpSettings(dtype=None, use_scaler=False)
    if device.type == "cpu":
        native = cpu_has_native_bf16() if bf16_supported is None else bf16_supported
        return AmpSettings(dtype=torch.bfloat16 if native else None, use_scaler=False)
    if device.type != "cuda":
        raise ValueError(f"Mixed precision is set up for CUDA and the CPU, not {device.type!r}; "
                         "pass mixed_precision=False.")
    if bf16_supported is None:
        bf16_supported = gpu_has_native_bf16()
    if bf16_supported:
        return AmpSettings(dtype=torch.bfloat16, use_scaler=False)
    return AmpSettings(dtype=torch.float16, use_scaler=True)


def mixed_precision_pays(device: torch.device | str) -> bool:
    """Whether mixed precision speeds training up on ``device``: on CUDA, and on a CPU with native bf16."""
    device = torch.device(device)
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())


def probability_tolerance(precision: str | torch.dtype | None) -> float:
    """How far two class probabilities of one model may differ when one was computed in ``precision``
    (``"fp32"``/``None``, ``"bfloat16"``, ``"float16"``) and the other in fp32: rounding in differently
    padded batches for fp32 (1e-4), else twice the dtype's machine epsilon (bf16: 0.0156, fp16: 0.002;
    a bf16 forward pass of the packaged MiniLM moves probabilities by up to 1.6e-3)."""
    if precision in (None, "fp32", torch.float32, "float32"):
        return 1e-4
    dtype = precision if isinstance(precision, torch.dtype) else getattr(torch, str(precision))
    return 2 * torch.finfo(dtype).eps


def loader_settings(device: torch.device | str) -> dict[str, Any]:
    """``DataLoader`` options that keep a GPU fed: pinned memory (for non-blocking copies) and two
    worker processes on CUDA; none on a CPU, where workers only compete with the model for cores."""
    if torch.device(device).type != "cuda":
        return {}
    workers = min(2, max(0, (os.cpu_count() or 1) - 1))
    return {"pin_memory": True, "num_workers": workers, "persistent_workers": workers > 0}


def module_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); the CPU for a module with neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def assert_on_device(device: torch.device | str, *items: nn.Module | torch.Tensor) -> None:
    """Raise ``AssertionError`` naming the culprit unless every tensor, and every parameter and buffer of
    every module, is on ``device`` (``cuda`` matches ``cuda:0``)."""
    wanted = torch.device(device)
    for index, item in enumerate(items):
        tensors = [item] if isinstance(item, torch.Tensor) else [*item.parameters(), *item.buffers()]
        for tensor in tensors:
            if tensor.device.type != wanted.type or (wanted.index is not None and tensor.device.index != wanted.index):
                raise AssertionError(f"item {index} ({type(item).__name__}) has a tensor on {tensor.device}, "
                                     f"expected {wanted}: move it with .to({str(wanted)!r}) first.")


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
    if device is None:
        return get_device()
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r}, but PyTorch sees no CUDA GPU on this machine; pass device=None "
                         "(the best one available) or 'cpu'. On Colab: Runtime > Change runtime type > GPU.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device={str(device)!r}, but this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                         "numbered from 0.")
    return device


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
        "precision": amp.name,
    }


def evaluate_classifier(model: nn.Module, tokenizer, dataset, batch_size: int = 64, max_length: int = 128,
                        device: torch.device | str | None = None, progress: bool = False) -> dict[str, Any]:
    """Loss and accuracy of ``model`` on ``dataset``, with its predictions and class probabilities.

    Returns ``{"accuracy", "loss", "predictions", "probabilities", "labels", "precision"}`` (arrays in
    the dataset's order). Mixed precision is used on CUDA, as in training (``precision`` says which; compare
    with an fp32 result within ``probability_tolerance(precision)``). ``model`` is moved to ``device``.
    """
    check_classification_dataset(dataset, model_num_labels(model), "evaluation dataset", model)
    check_max_length(max_length, model, tokenizer)
    check_tokenizer_fits_model(tokenizer, model)
    check_optional_positive_int(batch_size=batch_size)
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


def optimizer_step(loss: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                   max_grad_norm: float | None = 1.0, scaler: torch.amp.GradScaler | None = None) -> None:
    """Backpropagate ``loss`` and take one step: fresh gradients, clipping, the optimiser, then the scheduler.

    With a ``GradScaler`` (fp16 on a GPU) the loss is scaled for the backward pass and the gradients are
    unscaled before clipping, so that ``max_grad_norm`` means the same in every precision.
    """
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


def training_step(model: nn.Module, batch: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                  scheduler: Any, max_grad_norm: float | None = 1.0) -> float:
    """One step of ``train_classifier``'s loop in float32: cross-entropy on ``batch["labels"]``, backward,
    clip, optimiser and scheduler step. Returns the batch's loss before the step, as a Python float."""
    if "labels" not in batch:
        raise KeyError(f"training_step needs the batch's 'labels' (a tensor of class ids); the batch has "
                       f"{sorted(batch)}. Rename your label column to 'labels' (or 'label' before collating).")
    logits = _logits(model, batch)
    loss = nn.functional.cross_entropy(logits.float(), batch["labels"])
    optimizer_step(loss, model, optimizer, scheduler, max_grad_norm)
    return loss.item()


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

    declared = model_num_labels(model)
    if num_labels is not None and declared is not None and num_labels != declared:
        raise ValueError(f"num_labels={num_labels} but the model predicts {declared} classes; leave num_labels out "
                         "or load the model with the dataset's label names.")
    num_labels = num_labels or declared
    check_classification_dataset(train_dataset, num_labels, "training dataset", model)
    if eval_dataset is not None:
        check_classification_dataset(eval_dataset, num_labels, "evaluation dataset", model)
    check_max_length(max_length, model, tokenizer)
    check_tokenizer_fits_model(tokenizer, model)
    check_positive(epochs=epochs, learning_rate=learning_rate)
    check_optional_positive_int(batch_size=batch_size, max_steps=max_steps, eval_batch_size=eval_batch_size)
    if not 0 <= warmup_ratio < 1:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}.")
    if not (isinstance(weight_decay, numbers.Real) and 0 <= weight_decay < math.inf):
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}.")
    if max_grad_norm is not None:
        check_positive(max_grad_norm=max_grad_norm)

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
                        collate_fn=collator, generator=generator if sampler is None else None,
                        **loader_settings(device))

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
        epoch_losses: list[torch.Tensor] = []  # kept on the device: no GPU-to-CPU sync each step
        epoch_samples = 0
        started = time.perf_counter()
        for batch in _limited(loader, total_steps - step):
            real_tokens += int(batch["attention_mask"].sum())  # counted on the CPU, before the copy
            padded_tokens += batch["attention_mask"].numel()
            epoch_samples += len(batch["labels"])
            batch = _to_device(batch, device)
            with autocast(device, amp):
                logits = _logits(model, batch)
            if _needs_inputs(compute_loss):
                loss = compute_loss(logits.float(), batch["labels"], inputs=batch)
            else:
                loss = compute_loss(logits.float(), batch["labels"])
            if device.type != "cuda" or (step + 1) % PROGRESS_EVERY == 0:  # .item() waits for the GPU
                check_finite_loss(loss.item(), step + 1, scheduler.get_last_lr()[0])
            optimizer_step(loss, model, optimizer, scheduler, max_grad_norm, scaler)
            step += 1
            epoch_losses.append(loss.detach())
            bar.update(1)
            if step % PROGRESS_EVERY == 0 or device.type != "cuda":
                bar.set_postfix(epoch=epoch, loss=f"{epoch_losses[-1].item():.3f}")
        epoch_step_losses = torch.stack(epoch_losses).float().cpu().tolist() if epoch_losses else []
        step_losses.extend(epoch_step_losses)
        seconds = time.perf_counter() - started
        train_seconds += seconds
        samples += epoch_samples
        record = {"epoch": epoch_fraction(step, steps_per_epoch), "step": step,
                  "train_loss": float(np.mean(epoch_step_losses)), "learning_rate": scheduler.get_last_lr()[0],
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


def check_finite_loss(loss: float, step: int, learning_rate: float) -> None:
    """Raise ``FloatingPointError`` if the loss is NaN or infinite: the run would go on learning nothing."""
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"The training loss is {loss} at step {step} (learning rate {learning_rate:.3g}); training was stopped "
            "there. Lower the learning rate, check the inputs and any teacher logits for NaN/inf, or train in "
            "full precision (mixed_precision=False).")


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
