"""Checks for the do-along cells: the learner writes a core function, a check says whether it is right.

Each lesson cell the learner completes defines one function (its reference solution sits between
nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers in the teacher's notebook). The cell
after it runs::

    scaled_dot_product_attention = exercises.check("scaled_dot_product_attention", scaled_dot_product_attention)

``check`` calls the learner's function on small inputs, compares it with the course's reference, and
prints one line: passed, not done yet, or what is wrong. When the answer matches a typical mistake it
names the mistake ("did you forget to transpose K?"). It returns the function the lesson goes on with:
the learner's when it passes, otherwise the reference, so one stuck learner is not blocked.

Under an autograder set ``TEXTCLF_GRADING=1``: a check that does not pass then raises
``ExerciseNotPassed`` (an ``AssertionError``), which nbgrader scores as a failed test cell.
``grade_notebook`` grades a submitted notebook without running it: it runs only the exercise cells.
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import attention, distill, encoder, imbalance, metrics, training

GRADING_ENV = "TEXTCLF_GRADING"
EXERCISE_TAG = "exercise"  # the cell tag of a do-along cell; the exercise's name is in its nbgrader grade_id
PASSED, FAILED, NOT_DONE = "passed", "failed", "not done yet"


class ExerciseNotPassed(AssertionError):
    """Raised by ``check`` under ``TEXTCLF_GRADING=1`` when the learner's function does not pass."""


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer, written out, and the hint to give when the learner's output matches it."""

    hint: str
    wrong: Callable[..., Any]


@dataclass(frozen=True)
class Exercise:
    """One do-along exercise: the reference, the inputs it is checked on, and its typical mistakes.

    ``cases()`` gives fresh ``(args, kwargs)`` tuples, described by ``case_names``; ``compare(got, expected)`` returns ``None`` when the
    two agree, else what differs. ``run(function, args, kwargs)`` calls a candidate (by default
    ``function(*args, **kwargs)``); exercises whose function changes its inputs (a training step) replace it.
    """

    name: str
    notebook: str
    reference: Callable[..., Any]
    reference_name: str
    cases: Callable[[], list[tuple[tuple, dict]]]
    compare: Callable[[Any, Any], str | None]
    mistakes: tuple[Mistake, ...]
    case_names: tuple[str, ...]
    run: Callable[[Callable[..., Any], tuple, dict], Any] | None = None

    def call(self, function: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        args, kwargs = copy.deepcopy((args, kwargs))  # the learner's function may change its inputs in place
        with warnings.catch_warnings():  # the written-out mistakes' own warnings are not the learner's concern
            warnings.simplefilter("ignore")
            if self.run is not None:
                return self.run(function, args, kwargs)
            return function(*args, **kwargs)


@dataclass(frozen=True)
class Outcome:
    """What ``evaluate`` found: ``status`` is ``"passed"``, ``"failed"`` or ``"not done yet"``."""

    exercise: str
    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == PASSED


# ---------------------------------------------------------------------------------------------
# Comparing results


def _as_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, list, float, int, np.floating)) and not isinstance(value, bool):
        try:
            return torch.as_tensor(np.asarray(value, dtype=float))
        except (TypeError, ValueError):
            return None
    return None


def _compare_tensor(got: Any, expected: Tensor, what: str = "your result", atol: float = 1e-5,
                    dtype_matters: bool = False) -> str | None:
    tensor = _as_tensor(got)
    if tensor is None:
        return f"{what} is a {type(got).__name__}; expected a tensor of shape {tuple(expected.shape)}"
    if tuple(tensor.shape) != tuple(expected.shape):
        return f"{what} has shape {tuple(tensor.shape)}; expected {tuple(expected.shape)}"
    if dtype_matters and tensor.dtype != expected.dtype:
        return f"{what} has dtype {tensor.dtype}; expected {expected.dtype}"
    if expected.dtype == torch.bool:
        if not torch.equal(tensor.bool(), expected):
            return f"{what} has the right shape, but {int((tensor.bool() != expected).sum())} wrong entries"
        return None
    tensor, expected = tensor.detach().double(), expected.detach().double()
    nan_got, nan_expected = torch.isnan(tensor), torch.isnan(expected)
    if not torch.equal(nan_got, nan_expected):
        return f"{what} contains NaN" if nan_got.any() else f"{what} has numbers where NaN was expected"
    difference = (tensor - expected).abs().masked_fill(nan_got, 0.0)
    if difference.max() > atol + 1e-4 * torch.nan_to_num(expected).abs().max():
        return f"{what} has the right shape, but differs from the reference by up to {difference.max().item():.3g}"
    return None


def _compare_pair(names: tuple[str, str]) -> Callable[[Any, Any], str | None]:
    def compare(got: Any, expected: tuple[Tensor, Tensor]) -> str | None:
        if not isinstance(got, tuple) or len(got) != 2:
            return f"it returned a {type(got).__name__}; return a tuple ({names[0]}, {names[1]})"
        for value, reference, name in zip(got, expected, names):
            problem = _compare_tensor(value, reference, f"your {name}")
            if problem:
                return problem
        return None

    return compare


def _compare_triple(got: Any, expected: tuple[np.ndarray, ...]) -> str | None:
    names = ("precision", "recall", "f1")
    if not isinstance(got, tuple) or len(got) != 3:
        return f"it returned a {type(got).__name__}; return a tuple (precision, recall, f1) of per-class arrays"
    for value, reference, name in zip(got, expected, names):
        problem = _compare_tensor(value, torch.as_tensor(reference), f"your {name}")
        if problem:
            return problem
    return None


def _compare_scalar(got: Any, expected: Tensor) -> str | None:
    if not isinstance(got, Tensor):
        return (f"your loss is a {type(got).__name__}; return the loss tensor (not .item()), since training "
                "backpropagates through it")
    return _compare_tensor(got, expected.reshape(()), "your loss")


def _compare_weights(got: Any, expected: Tensor) -> str | None:
    if not isinstance(got, Tensor):
        return (f"your weights are a {type(got).__name__}; return a float32 torch tensor, "
                "torch.tensor(..., dtype=torch.float32), which is what a loss's weight= takes")
    return _compare_tensor(got, expected, "your weights")


def _compare_mask(got: Any, expected: Tensor) -> str | None:
    return _compare_tensor(got, expected, "your mask", dtype_matters=True)


# ---------------------------------------------------------------------------------------------
# Notebook 01: attention


def _qkv(batch: int, length: int, d_k: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, 2, length, d_k, generator=generator) for _ in range(3))


def _key_mask(lengths: Sequence[int], total: int) -> Tensor:
    return (torch.arange(total)[None, :] < torch.tensor(lengths)[:, None])[:, None, None, :]


def _attention_cases() -> list[tuple[tuple, dict]]:
    q, k, v = _qkv(2, 5, 4, seed=0)
    q2, k2, v2 = _qkv(2, 4, 4, seed=1)  # L = d_k: a missing transpose does not crash here
    return [((q, k, v), {}), ((q2, k2, v2), {}), ((q, k, v), {"mask": _key_mask([5, 3], 5)})]


def _attention_reference(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    return attention.scaled_dot_product_attention(q, k, v, mask=mask)


def _attention_variant(scores_of: Callable[[Tensor, Tensor], Tensor], dim: int = -1, mask_mode: str = "fill",
                       swap: bool = False) -> Callable[..., tuple[Tensor, Tensor]]:
    def wrong(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        scores = scores_of(q, k)
        if mask is not None and mask_mode == "fill":
            scores = scores.masked_fill(~mask, float("-inf"))
        elif mask is not None and mask_mode == "inverted":
            scores = scores.masked_fill(mask, float("-inf"))
        weights = scores.softmax(dim=dim)
        if mask is not None and mask_mode == "after":
            weights = weights * mask
        output = weights @ v
        return (weights, output) if swap else (output, weights)

    return wrong


def _scaled(q: Tensor, k: Tensor) -> Tensor:
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


SCALED_DOT_PRODUCT_ATTENTION = Exercise(
    name="scaled_dot_product_attention", notebook="01_attention_math",
    reference=_attention_reference, reference_name="textclf_utils.attention.scaled_dot_product_attention",
    cases=_attention_cases, compare=_compare_pair(("output", "weights")),
    case_names=("on q, k, v of shape (2, 2, 5, 4) without a mask", "with L = d_k = 4",
                "with a padding mask (the second sentence has 3 real tokens of 5)"),
    mistakes=(
        Mistake("did you forget to transpose K? Each query must meet each key: scores = q @ k.transpose(-2, -1), "
                "of shape (..., L_q, L_k).",
                _attention_variant(lambda q, k: q @ k / math.sqrt(q.shape[-1]))),
        Mistake(".T reverses every dimension of a 4-D tensor (batch and heads too): transpose only the last two, "
                "k.transpose(-2, -1).",
                _attention_variant(lambda q, k: q @ k.T / math.sqrt(q.shape[-1]))),
        Mistake("the scores are not scaled: divide them by √d_k, math.sqrt(q.size(-1)), before the softmax.",
                _attention_variant(lambda q, k: q @ k.transpose(-2, -1))),
        Mistake("you divided the scores by d_k; divide by its square root, √d_k.",
                _attention_variant(lambda q, k: q @ k.transpose(-2, -1) / q.shape[-1])),
        Mistake("your weights sum to 1 down each column: take the softmax over the keys, the last dimension "
                "(dim=-1), so that each query's row sums to 1.",
                _attention_variant(_scaled, dim=-2)),
        Mistake("masked keys still get weight: set their scores to -inf, scores.masked_fill(~mask, float('-inf')), "
                "before the softmax.",
                _attention_variant(_scaled, mask_mode="ignore")),
        Mistake("you masked the keys that should be kept: True in the mask means 'may attend', so fill where ~mask.",
                _attention_variant(_scaled, mask_mode="inverted")),
        Mistake("you zeroed the masked weights after the softmax, so the rows no longer sum to 1: mask the scores "
                "before the softmax.",
                _attention_variant(_scaled, mask_mode="after")),
        Mistake("return (output, weights), in that order.", _attention_variant(_scaled, swap=True)),
    ),
)


def _padding_mask_cases() -> list[tuple[tuple, dict]]:
    return [((torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]]),), {}),
            ((torch.tensor([[1, 1, 1], [1, 1, 1], [1, 0, 0]]),), {})]


PADDING_MASK = Exercise(
    name="padding_mask", notebook="01_attention_math",
    reference=attention.padding_mask, reference_name="textclf_utils.attention.padding_mask",
    cases=_padding_mask_cases, compare=_compare_mask,
    case_names=("on a batch of 2 sentences of 5 tokens", "on a batch of 3 sentences of 3 tokens"),
    mistakes=(
        Mistake("your mask has shape (B, L): broadcasting aligns shapes from the right, so against scores "
                "(B, heads, L, L) your B would meet the queries' axis. Add a heads axis and a query axis: (B, 1, 1, L).",
                lambda attention_mask: attention_mask.bool()),
        Mistake("your mask is (B, 1, L, 1): it masks queries (rows). Padding must be masked as keys (columns), "
                "(B, 1, 1, L), so that no real token reads from a [PAD].",
                lambda attention_mask: attention_mask.bool()[:, None, :, None]),
        Mistake("True must mark the real tokens (attention_mask == 1), which may be attended to; yours marks the "
                "padding.",
                lambda attention_mask: (attention_mask == 0)[:, None, None, :]),
        Mistake("right shape and values, but not booleans: return .bool(), since masked_fill and ~ need a bool mask.",
                lambda attention_mask: attention_mask[:, None, None, :]),
    ),
)


def _heads_cases() -> list[tuple[tuple, dict]]:
    generator = torch.Generator().manual_seed(0)
    return [((torch.randn(2, 5, 12, generator=generator), 3), {}), ((torch.randn(1, 4, 8, generator=generator), 2), {})]


def _split_straight(x: Tensor, num_heads: int) -> Tensor:
    batch, length, hidden = x.shape
    return x.view(batch, num_heads, length, hidden // num_heads)


def _split_no_transpose(x: Tensor, num_heads: int) -> Tensor:
    batch, length, hidden = x.shape
    return x.view(batch, length, num_heads, hidden // num_heads)


SPLIT_HEADS = Exercise(
    name="split_heads", notebook="01_attention_math",
    reference=attention.split_heads, reference_name="textclf_utils.attention.split_heads",
    cases=_heads_cases, compare=lambda got, expected: _compare_tensor(got, expected, "your heads"),
    case_names=("on x of shape (2, 5, 12) with 3 heads", "on x of shape (1, 4, 8) with 2 heads"),
    mistakes=(
        Mistake("the shape is right but tokens and features are mixed up: a view straight to (B, heads, L, d) "
                "cuts each token's features across positions. View to (B, L, heads, d) first, then transpose(1, 2).",
                _split_straight),
        Mistake("heads must come before the length, (B, heads, L, d), so that one matmul runs every head: "
                "add .transpose(1, 2) after the view.",
                _split_no_transpose),
    ),
)


def _merge_cases() -> list[tuple[tuple, dict]]:
    generator = torch.Generator().manual_seed(1)
    return [((torch.randn(2, 3, 5, 4, generator=generator),), {}), ((torch.randn(1, 2, 4, 4, generator=generator),), {})]


def _merge_straight(x: Tensor) -> Tensor:
    batch, heads, length, head_dim = x.shape
    return x.reshape(batch, length, heads * head_dim)


def _merge_view_after_transpose(x: Tensor) -> Tensor:
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).view(batch, length, heads * head_dim)


MERGE_HEADS = Exercise(
    name="merge_heads", notebook="01_attention_math",
    reference=attention.merge_heads, reference_name="textclf_utils.attention.merge_heads",
    cases=_merge_cases, compare=lambda got, expected: _compare_tensor(got, expected, "your merged tensor"),
    case_names=("on x of shape (2, 3, 5, 4)", "on x of shape (1, 2, 4, 4)"),
    mistakes=(
        Mistake("the shape is right but the heads are not put side by side per token: transpose(1, 2) back to "
                "(B, L, heads, d) before reshaping to (B, L, heads · d).",
                _merge_straight),
        Mistake("after transpose(1, 2) the tensor is no longer contiguous in memory, so .view fails: use "
                ".reshape(...) (or .contiguous().view(...)).",
                _merge_view_after_transpose),
    ),
)


# ---------------------------------------------------------------------------------------------
# Notebook 02: the encoder block


def _random_block(dropout: float = 0.1) -> encoder.EncoderBlock:
    torch.manual_seed(0)
    config = encoder.EncoderConfig(vocab_size=50, hidden_size=8, num_layers=1, num_heads=2, intermediate_size=16,
                                   dropout=dropout, attention_dropout=0.0)
    block = encoder.EncoderBlock(config).eval()
    with torch.no_grad():  # LayerNorms with their own scale and shift, so that swapping them shows
        for norm in (block.attention_norm, block.output_norm):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    return block


def _block_cases() -> list[tuple[tuple, dict]]:
    block = _random_block()
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(2))
    training_block = _random_block(dropout=0.5).train()  # dropout on: the same seed gives the same masks
    return [((block, x, _key_mask([5, 3], 5)), {}), ((block, x[:1], None), {}),
            ((training_block, x, _key_mask([5, 3], 5)), {})]


def _block_reference(block: encoder.EncoderBlock, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    return encoder.EncoderBlock.forward(block, x, mask)


def _run_block(function: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    torch.manual_seed(0)
    with torch.no_grad():
        return function(*args, **kwargs)


def _block_variant(kind: str) -> Callable[..., tuple[Tensor, Tensor]]:
    def wrong(block: encoder.EncoderBlock, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if kind == "pre-ln":
            attended, weights = block.attention(block.attention_norm(x), mask)
            x = x + block.dropout(attended)
            return x + block.dropout(block.feed_forward(block.output_norm(x))), weights
        attended, weights = block.attention(x, None if kind == "no mask" else mask)
        if kind == "no dropout":
            x = block.attention_norm(x + attended)
            return block.output_norm(x + block.feed_forward(x)), weights
        if kind == "no residual":
            x = block.attention_norm(block.dropout(attended))
            return block.output_norm(block.dropout(block.feed_forward(x))), weights
        first, second = ((block.output_norm, block.attention_norm) if kind == "swapped norms"
                         else (block.attention_norm, block.output_norm))
        h = first(x + block.dropout(attended))
        ffn_input = x if kind == "ffn on input" else h
        return second(h + block.dropout(block.feed_forward(ffn_input))), weights

    return wrong


ENCODER_BLOCK = Exercise(
    name="encoder_block_forward", notebook="02_build_an_encoder",
    reference=_block_reference, reference_name="textclf_utils.encoder.EncoderBlock.forward",
    cases=_block_cases, compare=_compare_pair(("output", "attention weights")), run=_run_block,
    case_names=("on a batch of 2 with a padding mask", "on one sentence without a mask",
                "in training mode (dropout on)"),
    mistakes=(
        Mistake("you normalised before each sub-layer (pre-LN). BERT is post-LN: add the residual first, then "
                "LayerNorm: x = attention_norm(x + dropout(attended)).",
                _block_variant("pre-ln")),
        Mistake("the residual connection is missing: LayerNorm gets the input plus the sub-layer's output, "
                "attention_norm(x + dropout(attended)), and likewise around the feed-forward.",
                _block_variant("no residual")),
        Mistake("the two LayerNorms are swapped: attention_norm follows attention, output_norm follows the "
                "feed-forward.",
                _block_variant("swapped norms")),
        Mistake("padding changes the real tokens' outputs: pass the mask on, block.attention(x, mask).",
                _block_variant("no mask")),
        Mistake("the feed-forward must read the attention sub-layer's output (after its LayerNorm), not the "
                "block's input.",
                _block_variant("ffn on input")),
        Mistake("right in eval mode, wrong in training: apply block.dropout to each sub-layer's output before adding "
                "the residual (dropout does nothing in eval mode, which is why the other checks passed).",
                _block_variant("no dropout")),
    ),
)


# ---------------------------------------------------------------------------------------------
# Notebook 03: one training step


class _TinyClassifier(nn.Module):
    """Bag-of-embeddings classifier with a Hugging Face-style output (``.logits``)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 6)
        self.head = nn.Linear(6, 3)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None,
                labels: Tensor | None = None) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        mask = attention_mask[..., None].float()
        logits = self.head((self.embed(input_ids) * mask).sum(1) / mask.sum(1))
        loss = None if labels is None else F.cross_entropy(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


@dataclass
class _StepRecord:
    losses: list[Any]
    parameters: list[Tensor]
    learning_rates: list[float]


STEPS_CHECKED = 3


def _step_cases() -> list[tuple[tuple, dict]]:
    from transformers import get_linear_schedule_with_warmup

    torch.manual_seed(0)
    model = _TinyClassifier()
    with torch.no_grad():
        model.head.weight.mul_(20.0)  # large gradients, so that clipping at 0.5 matters
    generator = torch.Generator().manual_seed(3)
    batches = [{"input_ids": torch.randint(1, 20, (4, 5), generator=generator),
                "attention_mask": torch.ones(4, 5, dtype=torch.long),
                "labels": torch.randint(0, 3, (4,), generator=generator)} for _ in range(STEPS_CHECKED)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, 1, 6)
    return [((model, batches, optimizer, scheduler), {"max_grad_norm": 0.5})]


def _run_steps(function: Callable[..., Any], args: tuple, kwargs: dict) -> _StepRecord:
    model, batches, optimizer, scheduler = args
    record = _StepRecord([], [], [])
    model.train()
    for batch in batches:
        record.losses.append(function(model, batch, optimizer, scheduler, **kwargs))
        record.parameters.append(torch.cat([p.detach().flatten() for p in model.parameters()]).clone())
        record.learning_rates.append(optimizer.param_groups[0]["lr"])
    return record


def _compare_steps(got: _StepRecord, expected: _StepRecord) -> str | None:
    for step, (loss, reference) in enumerate(zip(got.losses, expected.losses), start=1):
        if not isinstance(loss, float):
            return (f"step {step} returned a {type(loss).__name__}; return the loss as a Python number, loss.item() "
                    "(a tensor would keep the whole graph of the step alive)")
        if not math.isclose(loss, reference, rel_tol=1e-4, abs_tol=1e-5):
            return f"step {step} returned the loss {loss:.4f}; the batch's cross-entropy is {reference:.4f}"
    for step, (mine, reference) in enumerate(zip(got.parameters, expected.parameters), start=1):
        if not torch.allclose(mine, reference, atol=1e-5):
            return f"after step {step} the weights differ from the reference step's by up to {(mine - reference).abs().max():.3g}"
    for step, (mine, reference) in enumerate(zip(got.learning_rates, expected.learning_rates), start=1):
        if not math.isclose(mine, reference, rel_tol=1e-6):
            return f"after step {step} the learning rate is {mine:.4g}; expected {reference:.4g}"
    return None


def _step_variant(*, zero_grad: bool = True, clip: bool = True, optimizer_step: bool = True,
                  scheduler_step: bool = True, scheduler_first: bool = False) -> Callable[..., Any]:
    def wrong(model, batch, optimizer, scheduler, max_grad_norm=1.0):
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = F.cross_entropy(logits, batch["labels"])
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        if scheduler_first:
            scheduler.step()
        if optimizer_step:
            optimizer.step()
        if scheduler_step and not scheduler_first:
            scheduler.step()
        if zero_grad:
            optimizer.zero_grad()
        return loss.item()

    return wrong


TRAINING_STEP = Exercise(
    name="training_step", notebook="03_finetune_bert",
    reference=training.training_step, reference_name="textclf_utils.training.training_step",
    cases=_step_cases, compare=_compare_steps, run=_run_steps,
    case_names=("over 3 steps with warm-up and clipping at 0.5",),
    mistakes=(
        Mistake("the gradients pile up from step to step: call optimizer.zero_grad() once per step (before "
                "loss.backward(), or after optimizer.step()).",
                _step_variant(zero_grad=False)),
        Mistake("the weights moved as if unclipped: clip with torch.nn.utils.clip_grad_norm_(model.parameters(), "
                "max_grad_norm) after loss.backward() and before optimizer.step() (clipping after the step "
                "changes nothing).",
                _step_variant(clip=False)),
        Mistake("the learning rate never changes: call scheduler.step() after optimizer.step().",
                _step_variant(scheduler_step=False)),
        Mistake("you stepped the scheduler before the optimiser, so every step used the next step's learning rate "
                "(the first step of warm-up must use 0): call optimizer.step(), then scheduler.step().",
                _step_variant(scheduler_first=True)),
        Mistake("the weights did not move: compute the gradients with loss.backward(), then take the step with "
                "optimizer.step().",
                _step_variant(optimizer_step=False)),
    ),
)


# ---------------------------------------------------------------------------------------------
# Notebook 04: precision, recall and F1 from a confusion matrix


def _confusion_cases() -> list[tuple[tuple, dict]]:
    return [((np.array([[5, 2, 0], [1, 3, 0], [4, 1, 0]]),), {}),  # class 2 is never predicted
            ((np.array([[8, 2], [3, 7]]),), {})]


def _prf_variant(kind: str) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    def wrong(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        counts = np.asarray(confusion, dtype=float)
        if kind == "transposed":
            counts = counts.T
        tp = np.diag(counts)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision, recall = tp / counts.sum(axis=0), tp / counts.sum(axis=1)
            if kind != "nan":
                precision, recall = np.nan_to_num(precision), np.nan_to_num(recall)
            if kind == "nan f1":
                return precision, recall, 2 * precision * recall / (precision + recall)
            f1 = (precision + recall) / 2 if kind == "mean" else 2 * precision * recall / (precision + recall)
        return precision, recall, (f1 if kind == "nan" else np.nan_to_num(f1))

    return wrong


PRECISION_RECALL_F1 = Exercise(
    name="precision_recall_f1", notebook="04_evaluation_metrics",
    reference=metrics.precision_recall_f1, reference_name="textclf_utils.metrics.precision_recall_f1",
    cases=_confusion_cases, compare=_compare_triple,
    case_names=("on a 3-class matrix whose class 2 is never predicted", "on a 2-class matrix"),
    mistakes=(
        Mistake("your precision is the recall and the other way round: rows are true classes and columns "
                "predicted ones, so precision divides the diagonal by the column sums (axis=0).",
                _prf_variant("transposed")),
        Mistake("a class that is never predicted gives 0 / 0 = NaN: set its precision (and F1) to 0, as "
                "scikit-learn does with zero_division=0 (np.divide(..., out=np.zeros_like(tp, dtype=float), where=...)).",
                _prf_variant("nan")),
        Mistake("your precision is right, but F1 is 0 / 0 = NaN for a class with precision = recall = 0: "
                "F1 is 0 there.",
                _prf_variant("nan f1")),
        Mistake("F1 is the harmonic mean 2·P·R / (P + R), not the arithmetic mean (P + R) / 2.",
                _prf_variant("mean")),
    ),
)


# ---------------------------------------------------------------------------------------------
# Notebook 05: effective-number class weights and focal loss


def _weights_cases() -> list[tuple[tuple, dict]]:
    return [((np.array([900, 100]), 0.99), {}), ((np.array([5000, 400, 20]), 0.999), {})]


def _normalised(raw: np.ndarray) -> Tensor:
    return torch.tensor(raw / raw.mean(), dtype=torch.float32)


EFFECTIVE_NUMBER_WEIGHTS = Exercise(
    name="effective_number_weights", notebook="05_imbalanced_data",
    reference=imbalance.effective_number_weights, reference_name="textclf_utils.imbalance.effective_number_weights",
    cases=_weights_cases, compare=_compare_weights,
    case_names=("for counts (900, 100) and β = 0.99", "for counts (5000, 400, 20) and β = 0.999"),
    mistakes=(
        Mistake("these are inverse-frequency weights, 1 / n: the effective number is (1 − β^n) / (1 − β), and each "
                "class's weight is its inverse, (1 − β) / (1 − β^n).",
                lambda counts, beta: _normalised(1.0 / np.asarray(counts, float))),
        Mistake("rare classes must get the larger weights: weight each class by the inverse of its effective "
                "number, (1 − β) / (1 − β^n), not by the effective number itself.",
                lambda counts, beta: _normalised((1 - beta ** np.asarray(counts, float)) / (1 - beta))),
        Mistake("the ratios are right but not the scale: divide by the weights' mean, so that they average 1 over "
                "the classes and the loss keeps its size.",
                lambda counts, beta: torch.tensor((1 - beta) / (1 - beta ** np.asarray(counts, float)),
                                                  dtype=torch.float32)),
        Mistake("you divided by the weights' sum; divide by their mean, so that they average 1 (and sum to the "
                "number of classes).",
                lambda counts, beta: (lambda raw: torch.tensor(raw / raw.sum(), dtype=torch.float32))(
                    (1 - beta) / (1 - beta ** np.asarray(counts, float)))),
        Mistake("β and n are swapped in the power: it is β ** n (β to the power of the class's count).",
                lambda counts, beta: _normalised((1 - beta) / (1 - np.asarray(counts, float) ** beta))),
    ),
)


def _focal_cases() -> list[tuple[tuple, dict]]:
    generator = torch.Generator().manual_seed(4)
    logits = torch.randn(6, 3, generator=generator) * 2
    labels = torch.tensor([0, 2, 1, 1, 0, 2])
    return [((logits, labels), {"gamma": 2.0}), ((logits, labels), {"gamma": 0.5})]


def _focal_variant(kind: str) -> Callable[..., Tensor]:
    def wrong(logits: Tensor, labels: Tensor, gamma: float = 2.0) -> Tensor:
        log_p_all = F.log_softmax(logits, dim=-1)
        log_p = log_p_all[:, 1] if kind == "class 1" else log_p_all.gather(1, labels[:, None]).squeeze(1)
        p = log_p.exp()
        factor = p ** gamma if kind == "p^gamma" else (1 - p) ** gamma
        loss = -factor * log_p
        if kind == "no minus":
            loss = -loss
        if kind == "mean first":
            return (1 - torch.exp(-F.cross_entropy(logits, labels))) ** gamma * F.cross_entropy(logits, labels)
        return loss.sum() if kind == "sum" else loss.mean()

    return wrong


FOCAL_LOSS = Exercise(
    name="focal_loss", notebook="05_imbalanced_data",
    reference=imbalance.focal_loss, reference_name="textclf_utils.imbalance.focal_loss",
    cases=_focal_cases, compare=_compare_scalar,
    case_names=("with γ = 2 on 6 examples of 3 classes", "with γ = 0.5"),
    mistakes=(
        Mistake("the factor is (1 − p_true)^γ, not p_true^γ: examples the model already gets right (p_true near 1) "
                "must count less, not more.",
                _focal_variant("p^gamma")),
        Mistake("you summed over the batch; take the mean, so that the loss does not grow with the batch size "
                "(and γ = 0 gives F.cross_entropy).",
                _focal_variant("sum")),
        Mistake("use each example's probability of its *true* class: log_softmax(logits, -1).gather(1, "
                "labels[:, None]).",
                _focal_variant("class 1")),
        Mistake("your loss is negative: it is −(1 − p)^γ · log p, and log p ≤ 0.",
                _focal_variant("no minus")),
        Mistake("you applied the factor to the batch's mean cross-entropy: weight each example's own loss first "
                "(F.cross_entropy(..., reduction='none')), then take the mean.",
                _focal_variant("mean first")),
    ),
)


# ---------------------------------------------------------------------------------------------
# Notebook 06: Hinton's distillation loss


def _distillation_cases() -> list[tuple[tuple, dict]]:
    generator = torch.Generator().manual_seed(5)
    student, teacher = torch.randn(8, 3, generator=generator), torch.randn(8, 3, generator=generator) * 3
    labels = torch.tensor([0, 1, 2, 1, 0, 2, 2, 1])
    return [((student, teacher, labels), {"alpha": 0.5, "temperature": 4.0}),
            ((student, teacher, labels), {"alpha": 0.2, "temperature": 2.0})]


def _distillation_variant(kind: str) -> Callable[..., Tensor]:
    def wrong(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor, alpha: float = 0.5,
              temperature: float = 2.0) -> Tensor:
        t = temperature
        log_student = F.log_softmax(student_logits / (1.0 if kind == "student unscaled" else t), dim=-1)
        teacher = F.softmax(teacher_logits / (1.0 if kind == "teacher unscaled" else t), dim=-1)
        if kind == "reversed":
            soft = F.kl_div(teacher.log(), log_student.exp(), reduction="batchmean")
        elif kind == "probabilities":
            soft = F.kl_div(log_student.exp(), teacher, reduction="batchmean")
        else:
            soft = F.kl_div(log_student, teacher, reduction="mean" if kind == "mean" else "batchmean")
        factor = 1.0 if kind == "no T squared" else t ** 2
        hard = F.cross_entropy(student_logits / (t if kind == "hard softened" else 1.0), labels)
        if kind == "alpha swapped":
            return (1 - alpha) * hard + alpha * factor * soft
        return alpha * hard + (1 - alpha) * factor * soft

    return wrong


DISTILLATION_LOSS = Exercise(
    name="distillation_loss", notebook="06_knowledge_distillation",
    reference=distill.distillation_loss, reference_name="textclf_utils.distill.distillation_loss",
    cases=_distillation_cases, compare=_compare_scalar,
    case_names=("with α = 0.5 and T = 4", "with α = 0.2 and T = 2"),
    mistakes=(
        Mistake("the T² factor is missing: multiply the KL term by temperature ** 2, or its gradient shrinks like "
                "1 / T² and α loses its meaning.",
                _distillation_variant("no T squared")),
        Mistake("the KL divergence is the wrong way round: it is KL(teacher ‖ student); F.kl_div(input, target) "
                "takes the student's log-probabilities as input and the teacher's probabilities as target.",
                _distillation_variant("reversed")),
        Mistake("soften the student's logits with the same temperature as the teacher's: "
                "log_softmax(student_logits / T).",
                _distillation_variant("student unscaled")),
        Mistake("soften the teacher's logits too: softmax(teacher_logits / T).",
                _distillation_variant("teacher unscaled")),
        Mistake("the cross-entropy on the labels uses the student's plain logits, not logits / T: only the teacher "
                "term is softened.",
                _distillation_variant("hard softened")),
        Mistake("F.kl_div expects log-probabilities as its first argument: pass log_softmax(student_logits / T), "
                "not softmax.",
                _distillation_variant("probabilities")),
        Mistake("reduction='mean' also divides by the number of classes: use reduction='batchmean', the mean over "
                "examples of each example's KL.",
                _distillation_variant("mean")),
        Mistake("α weights the cross-entropy on the labels and 1 − α the teacher's term (α = 1 is ordinary "
                "training); yours has them the other way round.",
                _distillation_variant("alpha swapped")),
    ),
)


EXERCISES: dict[str, Exercise] = {exercise.name: exercise for exercise in (
    SCALED_DOT_PRODUCT_ATTENTION, PADDING_MASK, SPLIT_HEADS, MERGE_HEADS, ENCODER_BLOCK, TRAINING_STEP,
    PRECISION_RECALL_F1, EFFECTIVE_NUMBER_WEIGHTS, FOCAL_LOSS, DISTILLATION_LOSS)}


# ---------------------------------------------------------------------------------------------
# Checking


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _same_error(mistake: Mistake, exercise: Exercise, args: tuple, kwargs: dict, error: Exception) -> bool:
    try:
        exercise.call(mistake.wrong, args, kwargs)
    except Exception as other:  # noqa: BLE001 - the written-out mistake fails the way the learner's did
        return type(other) is type(error) and str(other) == str(error)
    return False


def _matches(mistake: Mistake, exercise: Exercise, args: tuple, kwargs: dict, got: Any) -> bool:
    try:
        return exercise.compare(got, exercise.call(mistake.wrong, args, kwargs)) is None
    except Exception:  # noqa: BLE001 - a mistake that fails on this case cannot be the one made
        return False


def evaluate(name: str, function: Callable[..., Any]) -> Outcome:
    """Run exercise ``name``'s checks on ``function``; say what is wrong without printing or raising."""
    if name not in EXERCISES:
        raise ValueError(f"Unknown exercise {name!r}; the exercises are: {', '.join(EXERCISES)}.")
    exercise = EXERCISES[name]
    if not callable(function):
        return Outcome(name, FAILED, f"`{name}` is a {type(function).__name__}, not a function: run the cell "
                                     "that defines it (def ...) before this check.")
    for number, (args, kwargs) in enumerate(exercise.cases(), start=1):
        expected = exercise.call(exercise.reference, args, kwargs)
        try:
            got = exercise.call(function, args, kwargs)
        except NotImplementedError:
            return Outcome(name, NOT_DONE, "not done yet")
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - the learner's code may fail in any way (even exit); say how
            for mistake in exercise.mistakes:
                if _same_error(mistake, exercise, args, kwargs, error):
                    return Outcome(name, FAILED, f"it raised {_first_line(error)}. Hint: {mistake.hint}")
            return Outcome(name, FAILED, f"{exercise.case_names[number - 1]}, it raised {_first_line(error)}")
        problem = exercise.compare(got, expected)
        if problem is None:
            continue
        for mistake in exercise.mistakes:
            if _matches(mistake, exercise, args, kwargs, got):
                return Outcome(name, FAILED, f"{problem}. Hint: {mistake.hint}")
        return Outcome(name, FAILED, f"{exercise.case_names[number - 1]}, {problem}")
    return Outcome(name, PASSED, f"passes every check ({'; '.join(exercise.case_names)})")


def check(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """Check the learner's ``function`` for exercise ``name``, print the verdict, and return the function
    the lesson goes on with: the learner's if it passes, else the course's reference."""
    outcome = evaluate(name, function)
    exercise = EXERCISES[name]
    if outcome.passed:
        print(f"✔ {name}: {outcome.message}. The lesson goes on with your function.")
        return function
    if os.environ.get(GRADING_ENV, "").strip() not in ("", "0"):
        raise ExerciseNotPassed(f"{name}: {outcome.message}")
    if outcome.status == NOT_DONE:
        print(f"… {name}: not done yet (the cell still raises NotImplementedError). The lesson goes on with the "
              f"course's reference, {exercise.reference_name}; come back to it any time.")
    else:
        print(f"✘ {name}: {outcome.message}\n  The lesson goes on with the course's reference, "
              f"{exercise.reference_name}; fix your cell, then run it and this check again.")
    return exercise.reference


# ---------------------------------------------------------------------------------------------
# Grading a submitted notebook


def exercise_cells(notebook: dict) -> list[tuple[str, str]]:
    """``(exercise name, source)`` of a notebook's do-along cells (tag ``exercise``, name in the nbgrader
    ``grade_id``)."""
    cells = []
    for cell in notebook.get("cells", []):
        meta = cell.get("metadata", {})
        if cell.get("cell_type") == "code" and EXERCISE_TAG in meta.get("tags", []):
            name = meta.get("nbgrader", {}).get("grade_id")
            if name not in EXERCISES:
                raise ValueError(f"A cell tagged {EXERCISE_TAG!r} names no known exercise (grade_id {name!r}).")
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            cells.append((name, source))
    return cells


def grade_notebook(path: str | Path) -> list[Outcome]:
    """Grade the do-along cells of the notebook at ``path`` without running the rest of it.

    Each exercise cell is run on its own, in a namespace holding ``math``, ``numpy as np``, ``torch``,
    ``torch.nn as nn`` and ``torch.nn.functional as F`` (what the lessons import before their exercises),
    and the function it defines is checked. A cell that fails to run is a failed exercise, with the reason.
    """
    path = Path(path)
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"Cannot read the notebook {path}: {error}. Pass the .ipynb file a student submitted.") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError(f"{path} is JSON but not a Jupyter notebook (no list of cells). Pass the .ipynb file a "
                         "student submitted.")
    outcomes = []
    for name, source in exercise_cells(notebook):
        namespace: dict[str, Any] = {"math": math, "np": np, "torch": torch, "nn": nn, "F": F}
        try:
            exec(compile(source, f"<{path.name}: {name}>", "exec"), namespace)  # noqa: S102 - the teacher grades
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - a cell that exits or fails is a failed exercise
            outcomes.append(Outcome(name, FAILED, f"the cell does not run: {_first_line(error)}"))
            continue
        if name not in namespace:
            outcomes.append(Outcome(name, FAILED, f"the cell defines no function named {name}"))
            continue
        outcomes.append(evaluate(name, namespace[name]))
    return outcomes
