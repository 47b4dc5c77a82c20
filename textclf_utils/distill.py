"""Knowledge distillation: a small student learns from a fine-tuned teacher.

- ``distillation_loss``: the loss of Hinton, Vinyals & Dean (2015), "Distilling the knowledge in a neural
  network": ``alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))``;
- ``DistillationLoss``: the same loss for the plain loop ``training.train_classifier`` (teacher on the fly);
- ``DistillationTrainer``: a ``transformers.Trainer`` whose ``compute_loss`` (the v5 signature) uses that loss,
  with the teacher's logits either precomputed (a ``teacher_logits`` column, the teacher is frozen) or computed
  on the fly by a ``teacher`` model; ``train_student`` runs it on the course's recipe;
- ``layer_dropped_copy``: a shallower copy of a BERT classifier initialised from some of its layers
  (``top_layers`` picks them evenly and always keeps the last one);
- ``augment_texts``: extra unlabelled sentences for a transfer set (masking and n-gram sampling, as Tang et
  al. 2019 did); the teacher labels them.

Shrinking and timing the result (int8, vocabulary pruning, the benchmark) is ``textclf_utils.compression``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import numbers
import random
import re
import tempfile
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PrinterCallback, Trainer
from transformers.modeling_outputs import SequenceClassifierOutput

from .checks import (TEXT_COLUMN, as_real_number, check_class_ids, check_classification_dataset, check_max_length, check_positive,
                     check_positive_int, check_texts, check_tokenizer_fits_model, model_num_labels)
from .data import column_values
from .training import MODEL_INPUTS, AmpSettings, amp_settings, autocast, check_finite_loss, loader_settings, module_device

TEACHER_LOGITS = "teacher_logits"


# ---------------------------------------------------------------------------------------------
# The loss


def check_distillation_settings(alpha: float, temperature: float) -> tuple[float, float]:
    """``(alpha, temperature)`` as floats; ``ValueError`` unless ``0 <= alpha <= 1`` and ``temperature > 0``
    (both finite real numbers: Python, NumPy or one-element tensors)."""
    a, t = as_real_number(alpha), as_real_number(temperature)
    if a is None or not 0.0 <= a <= 1.0:
        raise ValueError(f"alpha weighs the hard-label loss against the teacher's soft targets and must be a number "
                         f"in [0, 1] (1 = labels only, 0 = teacher only), got {alpha!r}.")
    if t is None or not math.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a positive finite number (1 = the plain softmax, higher = softer "
                         f"targets), got {temperature!r}.")
    return a, t


def check_finite_logits(logits: torch.Tensor, name: str = "teacher_logits") -> None:
    """Raise ``ValueError`` naming the first row of ``logits`` that holds NaN or an infinity."""
    bad = ~torch.isfinite(torch.as_tensor(logits, dtype=torch.float32)).reshape(len(logits), -1).all(dim=1)
    if bad.any():
        raise ValueError(f"{name} must be finite, but {int(bad.sum())} row(s) hold NaN or inf, the first at row "
                         f"{int(bad.nonzero()[0])}. Recompute them (is the teacher's checkpoint damaged?).")


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                  labels: torch.Tensor | None = None) -> None:
    for name, logits in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if logits.dim() != 2:
            raise ValueError(f"{name} must have shape (batch, num_labels), got {tuple(logits.shape)}.")
    if student_logits.shape[-1] != teacher_logits.shape[-1]:
        raise ValueError(f"The teacher predicts {teacher_logits.shape[-1]} classes but the student "
                         f"{student_logits.shape[-1]}: distillation needs the same label set in the same order "
                         "(give the student num_labels equal to the teacher's).")
    if student_logits.shape[0] != teacher_logits.shape[0]:
        raise ValueError(f"student_logits has {student_logits.shape[0]} rows but teacher_logits "
                         f"{teacher_logits.shape[0]}: they must score the same examples.")
    check_finite_logits(teacher_logits.detach())
    if labels is not None and tuple(labels.shape) != (student_logits.shape[0],):
        raise ValueError(f"labels must have shape ({student_logits.shape[0]},) (one class id per example), "
                         f"got {tuple(labels.shape)}.")


def soft_targets(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``softmax(logits / T)``: the teacher's class probabilities, softened (flatter) as ``T`` grows."""
    _, temperature = check_distillation_settings(1.0, temperature)
    return torch.softmax(logits.float() / temperature, dim=-1)


def distillation_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged over the batch.

    The gradient of the KL term with respect to the student's logits scales as ``1 / T^2``; the factor
    ``T^2`` keeps it comparable with the cross-entropy's whatever the temperature (Hinton et al., 2015).
    """
    _, temperature = check_distillation_settings(0.0, temperature)
    _check_logits(student_logits, teacher_logits)
    student_log_probs = F.log_softmax(student_logits.float() / temperature, dim=-1)
    teacher_log_probs = F.log_softmax(teacher_logits.detach().float() / temperature, dim=-1)
    kl = F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True)
    return temperature ** 2 * kl


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      alpha: float = 0.5, temperature: float = 2.0) -> torch.Tensor:
    """Hinton et al.'s loss: ``alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(teacher_T || student_T)``.

    ``alpha = 1`` is plain cross-entropy on the labels; ``alpha = 0`` learns from the teacher alone. The
    teacher's logits get no gradient. Both logits are ``(batch, num_labels)``; ``labels`` are class ids.
    """
    alpha, temperature = check_distillation_settings(alpha, temperature)
    _check_logits(student_logits, teacher_logits, labels)
    hard = F.cross_entropy(student_logits.float(), labels)
    if alpha == 1.0:
        return hard
    return alpha * hard + (1.0 - alpha) * distillation_kl(student_logits, teacher_logits, temperature)


# ---------------------------------------------------------------------------------------------
# Logits of any classifier (Hugging Face or textclf_utils.encoder)


def logits_of(output: Any) -> torch.Tensor:
    """The logits of a model's output: the tensor itself, or its ``.logits``."""
    return output if isinstance(output, torch.Tensor) else output.logits


def _model_inputs(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if k in MODEL_INPUTS}


class DistillationLoss:
    """``distillation_loss`` for the plain loop: ``training.train_classifier(student, ..., loss_fn=
    DistillationLoss(teacher, alpha, temperature))``. The frozen teacher scores each batch on the fly."""

    needs_inputs = True  # train_classifier passes the batch's model inputs as ``inputs=``

    def __init__(self, teacher: nn.Module, alpha: float = 0.5, temperature: float = 2.0) -> None:
        self.alpha, self.temperature = check_distillation_settings(alpha, temperature)
        self.teacher = teacher.eval().requires_grad_(False)

    def __call__(self, student_logits: torch.Tensor, labels: torch.Tensor,
                 inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        features = _model_inputs(inputs)
        device = next(iter(features.values())).device
        self.teacher.to(device)  # the batch's device (a no-op after the first)
        with torch.no_grad(), autocast(device, amp_settings(device)):  # the student's precision
            teacher_logits = logits_of(self.teacher(**features)).float()
        return distillation_loss(student_logits, teacher_logits, labels, self.alpha, self.temperature)


@torch.inference_mode()
def predict_logits(model: nn.Module, tokenizer, texts: Sequence[str], max_length: int, batch_size: int = 64,
                   progress: bool = False, desc: str = "scoring",
                   device: torch.device | str | None = None) -> torch.Tensor:
    """``model``'s logits ``(len(texts), num_labels)`` on the CPU, in the order of ``texts``, in fp32.

    The model runs on ``device`` (default: where its weights are; it is moved there if need be), and the
    batches are put on that same device. Texts are scored in batches of similar length (little padding);
    ``model`` is put in eval mode.
    """
    from tqdm.auto import tqdm

    texts = check_texts(texts)
    if len(texts) == 0:
        raise ValueError("texts is empty: there is nothing to score.")
    check_max_length(max_length, model, tokenizer)
    check_positive_int(batch_size=batch_size)
    device = torch.device(device) if device is not None else module_device(model)
    if module_device(model) != device:  # (moving torchao's int8 tensors in place fails, even to where they are)
        model.to(device)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
    order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
    keys = [k for k in MODEL_INPUTS if k in encoded]
    was_training = model.training
    model.eval()
    chunks = []
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress, leave=False):
        rows = order[start:start + batch_size]
        batch = tokenizer.pad([{k: encoded[k][i] for k in keys} for i in rows], return_tensors="pt")
        chunks.append(logits_of(model(**{k: v.to(device) for k, v in batch.items()})).float().cpu())
    model.train(was_training)
    logits = torch.empty(len(order), chunks[0].shape[-1])
    logits[torch.as_tensor(order)] = torch.cat(chunks)
    return logits


def accuracy_of(logits: torch.Tensor, labels: Sequence[int]) -> float:
    """The share of rows whose highest logit is the label."""
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if hasattr(logits, "shape") else type(logits).__name__
        raise ValueError(f"accuracy_of takes logits, one row of class scores per example (2-D), got {shape}; "
                         "for predicted classes compare them with the labels directly.")
    labels = torch.as_tensor(check_class_ids(labels, "labels"))
    if len(logits) != len(labels):
        raise ValueError(f"accuracy_of got {len(logits)} rows of logits but {len(labels)} labels: give one label "
                         "per row.")
    return float((logits.argmax(dim=-1).cpu() == labels).float().mean())


def with_teacher_logits(dataset, teacher_logits: torch.Tensor):
    """``dataset`` with a ``teacher_logits`` column (one row of logits per example), for ``train_student``."""
    if len(teacher_logits) != len(dataset):
        raise ValueError(f"There are {len(teacher_logits)} rows of teacher logits for {len(dataset)} examples.")
    check_finite_logits(teacher_logits)
    if TEACHER_LOGITS in dataset.column_names:
        dataset = dataset.remove_columns(TEACHER_LOGITS)
    return dataset.add_column(TEACHER_LOGITS, teacher_logits.float().tolist())


# ---------------------------------------------------------------------------------------------
# Training with transformers.Trainer


class _StudentForTrainer(nn.Module):
    """Holds a student whose ``config`` is a frozen dataclass (``textclf_utils.encoder``), which ``Trainer``
    would try to write to; the parameters are the student's own, so training this trains the student."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student
        self.num_labels = model_num_labels(student)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return logits_of(self.student(input_ids=input_ids, attention_mask=attention_mask,
                                       token_type_ids=token_type_ids))


def _has_frozen_config(model: nn.Module) -> bool:
    config = getattr(model, "config", None)
    return dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen


class DistillationTrainer(Trainer):
    """A ``Trainer`` that trains its model (the student) with ``distillation_loss``.

    The teacher's logits come from a ``teacher_logits`` column of the training data when there is one
    (precomputed once: the teacher is frozen), else from ``teacher`` run on the batch without gradients.
    ``alpha = 1`` trains on the labels alone through the same code path (the fair baseline). Pass the
    student as ``model=``; a ``textclf_utils.encoder`` student (immutable config) is wrapped, not copied.
    """

    # compute_loss returns a per-batch mean: Trainer divides it for gradient accumulation.
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, teacher: nn.Module | None = None, alpha: float = 0.5,
                 temperature: float = 2.0, **kwargs: Any) -> None:
        alpha, temperature = check_distillation_settings(alpha, temperature)
        if _has_frozen_config(kwargs.get("model")):
            kwargs["model"] = _StudentForTrainer(kwargs["model"])
        super().__init__(*args, **kwargs)
        self.alpha, self.temperature = float(alpha), float(temperature)
        if not self.label_names:  # plain nn.Module students have no `labels` argument to find
            self.label_names = ["labels"]
        self.teacher = None
        if teacher is not None:
            student_labels, teacher_labels = model_num_labels(self.model), model_num_labels(teacher)
            if None not in (student_labels, teacher_labels) and student_labels != teacher_labels:
                raise ValueError(f"The teacher predicts {teacher_labels} classes but the student "
                                 f"{student_labels}: give the student num_labels={teacher_labels}.")
            self.teacher = teacher.to(self.args.device).eval().requires_grad_(False)

    def _amp(self) -> AmpSettings:
        """The mixed precision the student trains in (``bf16``/``fp16`` of the arguments)."""
        dtype = torch.bfloat16 if self.args.bf16 else torch.float16 if self.args.fp16 else None
        return AmpSettings(dtype=dtype, use_scaler=dtype == torch.float16)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if TEACHER_LOGITS not in self._signature_columns:
            self._signature_columns.append(TEACHER_LOGITS)

    def compute_loss(self, model: nn.Module, inputs: dict[str, torch.Tensor | Any], return_outputs: bool = False,
                     num_items_in_batch: torch.Tensor | int | None = None):
        """``distillation_loss`` of the student on ``inputs`` (a padded batch with ``labels``)."""
        features = _model_inputs(inputs)
        student_logits = logits_of(model(**features))
        teacher_logits = inputs.get(TEACHER_LOGITS)
        if teacher_logits is None:
            if self.teacher is None:
                raise ValueError("No teacher logits: give the trainer a `teacher` model or add a "
                                 f"'{TEACHER_LOGITS}' column to the data (see with_teacher_logits).")
            with torch.no_grad(), autocast(self.args.device, self._amp()):  # the student's precision
                teacher_logits = logits_of(self.teacher(**features))
        loss = distillation_loss(student_logits, teacher_logits, inputs["labels"], self.alpha, self.temperature)
        if model.training:
            check_finite_loss(loss.item(), self.state.global_step + 1, self._get_learning_rate())
        return (loss, SequenceClassifierOutput(loss=loss, logits=student_logits)) if return_outputs else loss


def without_autocast_wrapper(trainer: Trainer) -> nn.Module:
    """The trainer's model with its forward restored: for bf16/fp16 the ``Trainer`` (through accelerate) wraps
    the model's ``forward`` in autocast, and the wrapper would stay on the trained model and on its copies
    (a quantized copy then receives bf16 activations on the CPU and fails)."""
    return trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)


def train_student(student: nn.Module, tokenizer, train_dataset, *, alpha: float, temperature: float,
                  epochs: float, learning_rate: float, batch_size: int, max_length: int,
                  teacher: nn.Module | None = None, warmup_ratio: float = 0.1, weight_decay: float = 0.01,
                  seed: int = 42, mixed_precision: bool | None = None, output_dir: str | None = None,
                  progress: bool = True, **overrides: Any) -> list[dict[str, float]]:
    """Train ``student`` with ``DistillationTrainer`` (AdamW, linear warm-up and decay, length-grouped
    batches) and return the logged training losses, ``[{"step", "epoch", "loss"}, ...]``.

    ``train_dataset`` has ``text``, ``label`` and, unless ``teacher`` is given, ``teacher_logits``
    (see ``with_teacher_logits``). Mixed precision as in ``training.amp_settings(device, mixed_precision)``
    (``None``: bf16 on GPUs that have it, else fp16, and none on a CPU; ``True``: bf16 on a CPU too, as the
    cpu recipe does; the teacher runs in it too). Nothing is checkpointed; the student is left in eval mode.
    """
    from transformers import DataCollatorWithPadding, TrainingArguments

    alpha, temperature = check_distillation_settings(alpha, temperature)
    check_classification_dataset(train_dataset, model_num_labels(student), "training dataset", student)
    columns = list(train_dataset.column_names)
    check_max_length(max_length, student, tokenizer)
    check_tokenizer_fits_model(tokenizer, student)
    check_positive_int(batch_size=batch_size)
    check_positive(epochs=epochs, learning_rate=learning_rate)
    check_texts(column_values(train_dataset, TEXT_COLUMN))
    if TEACHER_LOGITS in columns:
        check_finite_logits(torch.tensor(train_dataset[TEACHER_LOGITS]))
    if teacher is None and TEACHER_LOGITS not in columns and alpha < 1.0:
        raise ValueError(f"Distillation (alpha < 1) needs the teacher: pass teacher=... or add a "
                         f"'{TEACHER_LOGITS}' column with with_teacher_logits().")
    tokenized = train_dataset.map(lambda b: tokenizer(b[TEXT_COLUMN], truncation=True, max_length=max_length),
                                  batched=True, remove_columns=[TEXT_COLUMN])
    if teacher is None and TEACHER_LOGITS not in tokenized.column_names:  # labels only (alpha = 1)
        tokenized = with_teacher_logits(tokenized, torch.zeros(len(tokenized), model_num_labels(student) or 2))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    amp = amp_settings(device, mixed_precision)
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(**{
            "output_dir": output_dir or scratch, "num_train_epochs": epochs, "learning_rate": learning_rate,
            "per_device_train_batch_size": batch_size, "lr_scheduler_type": "linear",
            "warmup_steps": warmup_ratio, "weight_decay": weight_decay,
            "train_sampling_strategy": "group_by_length", "save_strategy": "no", "eval_strategy": "no",
            "logging_steps": 25, "seed": seed, "data_seed": seed, "report_to": "none",
            "disable_tqdm": not progress, "use_cpu": device == "cpu",
            "bf16": amp.dtype == torch.bfloat16, "fp16": amp.dtype == torch.float16,
            "dataloader_pin_memory": device == "cuda",
            "dataloader_num_workers": loader_settings(device).get("num_workers", 0), **overrides})
        trainer = DistillationTrainer(
            model=student, args=args, train_dataset=tokenized, data_collator=DataCollatorWithPadding(tokenizer),
            teacher=teacher, alpha=alpha, temperature=temperature)
        if not progress:  # no bar, and no printed log lines either
            trainer.remove_callback(PrinterCallback)
        trainer.train()
        without_autocast_wrapper(trainer)
    student.eval()
    return [{"step": e["step"], "epoch": e["epoch"], "loss": e["loss"]}
            for e in trainer.state.log_history if "loss" in e]


# ---------------------------------------------------------------------------------------------
# Students


def top_layers(num_layers: int, count: int) -> list[int]:
    """``count`` of ``num_layers`` layers, evenly spaced and ending with the top one: (6, 3) -> [1, 3, 5],
    (6, 1) -> [5], (12, 6) -> [1, 3, 5, 7, 9, 11]. The top layer is the one the classifier head was trained
    on, so a copy that keeps it starts far better than one that keeps the bottom layers."""
    for name, value in (("num_layers", num_layers), ("count", count)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if count > num_layers:
        raise ValueError(f"Cannot keep {count} layers of a model with {num_layers}.")
    return [num_layers - 1 - round(i * num_layers / count) for i in reversed(range(count))]


def layer_dropped_copy(model: nn.Module, keep: Sequence[int] | None = None,
                       device: torch.device | str | None = None) -> nn.Module:
    """A copy of a BERT-family classifier (``config.num_hidden_layers``, ``encoder.layer.<i>.`` weights) with
    only the layers in ``keep`` (default: half of them, ``top_layers``), renumbered 0, 1, ...; embeddings, pooler and
    classifier are copied as they are. The copy is on ``device`` (default: the model's own, so that the two
    can be compared tensor by tensor). The original is left untouched."""
    config = getattr(model, "config", None)
    num_layers = getattr(config, "num_hidden_layers", None)
    if not isinstance(num_layers, int):
        raise ValueError(f"{type(model).__name__} has no config.num_hidden_layers: layer_dropped_copy needs a "
                         "Hugging Face BERT-family model (e.g. BertForSequenceClassification).")
    keep = top_layers(num_layers, max(1, num_layers // 2)) if keep is None else [int(i) for i in keep]
    if not keep or sorted(set(keep)) != keep or keep[0] < 0 or keep[-1] >= num_layers:
        raise ValueError(f"keep must be increasing, distinct layer indices in 0..{num_layers - 1}, got {keep}.")
    new_index = {old: new for new, old in enumerate(keep)}
    layer_name = re.compile(r"^(.*encoder\.layer\.)(\d+)(\..+)$")
    state = {}
    for name, tensor in model.state_dict().items():
        match = layer_name.match(name)
        if match:
            if int(match[2]) not in new_index:
                continue
            name = f"{match[1]}{new_index[int(match[2])]}{match[3]}"
        state[name] = tensor.detach().clone()
    student_config = copy.deepcopy(config)
    student_config.num_hidden_layers = len(keep)
    student = type(model)(student_config)
    student.load_state_dict(state, strict=True)
    return student.to(torch.device(device) if device is not None else module_device(model))


# ---------------------------------------------------------------------------------------------
# A transfer set


def augment_texts(texts: Sequence[str], copies: int = 1, *, mask_probability: float = 0.1,
                  ngram_probability: float = 0.25, max_ngram: int = 5, mask_token: str = "[MASK]",
                  seed: int = 0) -> list[str]:
    """``copies`` new texts per text, made as Tang et al. (2019) made their transfer set: each word becomes
    ``mask_token`` with probability ``mask_probability``; then, with probability ``ngram_probability``, only a
    random run of 1 to ``max_ngram`` words is kept. The texts carry no label: the teacher gives them one.
    Texts that come out equal to their source, or with no word left unmasked, are left out, so the result
    may be shorter."""
    texts = check_texts(texts)
    for name, value in (("mask_probability", mask_probability), ("ngram_probability", ngram_probability)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} is a probability in [0, 1], got {value!r}.")
    check_positive_int(copies=copies, max_ngram=max_ngram)
    rng = random.Random(seed)
    augmented = []
    for _ in range(copies):
        for text in texts:
            words = [mask_token if rng.random() < mask_probability else word for word in text.split()]
            if words and rng.random() < ngram_probability:
                n = rng.randint(1, min(max_ngram, len(words)))
                start = rng.randint(0, len(words) - n)
                words = words[start:start + n]
            new = " ".join(words)
            if new != text and any(word != mask_token for word in words):
                augmented.append(new)
    return augmented
