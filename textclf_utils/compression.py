"""Making a trained classifier smaller and faster for CPU inference, and measuring what that costs.

- ``quantize_int8``: post-training dynamic int8 of the ``nn.Linear`` layers with the eager PyTorch API
  (``torch.ao.quantization.quantize_dynamic``, deprecated but fast on CPUs), per tensor or per channel;
- ``quantize_int8_torchao``: the same idea with its successor, ``torchao``'s
  ``Int8DynamicActivationInt8WeightConfig`` (per-channel weights, per-token activations);
- ``prune_vocabulary``: keep only the token embeddings a task uses (``used_token_ids``); the rest map to [UNK];
- ``quantize_embeddings``: token embeddings stored as int8 rows with one scale per row (``Int8Embedding``);
- ``count_parameters``, ``size_on_disk_mb``, ``measure_speed`` (end to end: tokenisation included) and
  ``benchmark_classifiers``, which puts them in one table with ratios to a reference model;
  ``texts_per_second`` times any classifier the same way.

Every function returns a new model and leaves its input untouched.
"""

from __future__ import annotations

import copy
import logging
import numbers
import os
import statistics
import tempfile
import time
import warnings
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from .checks import (LABEL_COLUMN, TEXT_COLUMN, check_classification_dataset, check_max_length,
                     check_max_length_value, check_positive_int, check_texts)
from .data import column_values
from .distill import accuracy_of, logits_of, predict_logits

# Layers left in float32 by default: the classifier head is tiny, and it sets the decision directly.
KEEP_FLOAT = ("classifier",)
LATENCY_EXAMPLES = 32  # texts timed one at a time, for the latency


def _kept_float(name: str, keep_float: Sequence[str]) -> bool:
    """True when the module called ``name`` is, or sits inside, one of the modules named in ``keep_float``."""
    parts = name.split(".")
    return any(part in keep_float for part in parts) or name in keep_float


def _linear_names(model: nn.Module, keep_float: Sequence[str]) -> list[str]:
    names = [name for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and not _kept_float(name, keep_float)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer to quantize outside {list(keep_float)}.")
    return names


# ---------------------------------------------------------------------------------------------
# Int8 linear layers: the eager API and torchao


def quantize_int8(model: nn.Module, *, per_channel: bool = False, keep_float: Sequence[str] = KEEP_FLOAT) -> nn.Module:
    """A CPU copy of ``model`` whose ``nn.Linear`` layers (except those in ``keep_float``) hold int8 weights
    and quantize their activations on the fly: ``torch.ao.quantization.quantize_dynamic``.

    ``per_channel=False`` gives one scale per weight matrix (the API's default); ``True`` one per output row,
    which follows each neuron's own range. PyTorch marks this API deprecated in favour of ``torchao``
    (see ``quantize_int8_torchao``); it is kept because its CPU kernels are fast, and its warning is silenced.
    """
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig

    model = copy.deepcopy(model).cpu().eval()
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    spec = {name: qconfig for name in _linear_names(model, keep_float)}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)


def _import_torchao():
    """``torchao.quantization``, with its import-time notes about GPU-only kernels kept out of the output."""
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import torchao.quantization as quantization
    except ImportError as error:
        raise ImportError("quantize_int8_torchao needs the torchao package: pip install -r requirements.txt "
                          "(it pins the torchao release that matches the course's torch).") from error
    return quantization


def quantize_int8_torchao(model: nn.Module, *, keep_float: Sequence[str] = KEEP_FLOAT) -> nn.Module:
    """A CPU copy of ``model`` whose ``nn.Linear`` layers (except those in ``keep_float``) are quantized with
    torchao's ``Int8DynamicActivationInt8WeightConfig``: int8 weights with one scale per output channel,
    activations quantized per token at each call. The current API that replaces ``quantize_dynamic``."""
    quantization = _import_torchao()
    model = copy.deepcopy(model).cpu().eval()
    targets = set(_linear_names(model, keep_float))
    quantization.quantize_(model, quantization.Int8DynamicActivationInt8WeightConfig(),
                           filter_fn=lambda module, name: name in targets)
    return model


# ---------------------------------------------------------------------------------------------
# The vocabulary and the token embeddings


def used_token_ids(tokenizer, texts: Sequence[str], max_length: int) -> list[int]:
    """The sorted ids of every token that ``tokenizer`` produces for ``texts``, plus its special tokens."""
    texts = check_texts(texts)
    if not texts:
        raise ValueError("texts is empty: give the texts whose tokens the pruned model must keep.")
    check_max_length_value(max_length)
    ids = set(tokenizer.all_special_ids)
    for row in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]:
        ids.update(row)
    return sorted(ids)


class PrunedVocabularyClassifier(nn.Module):
    """A classifier whose token-embedding table keeps only some rows, behind a lookup that maps the
    tokenizer's ids to the kept rows (every dropped token becomes [UNK]). It takes the tokenizer's batches
    unchanged and returns what the wrapped model returns."""

    def __init__(self, model: nn.Module, keep_ids: Sequence[int], unk_token_id: int) -> None:
        super().__init__()
        if not hasattr(model, "get_input_embeddings"):
            raise TypeError(f"prune_vocabulary needs a Hugging Face model with get_input_embeddings() (a "
                            f"token-embedding table), got a {type(model).__name__}.")
        embeddings = model.get_input_embeddings()
        vocabulary = embeddings.num_embeddings
        keep = torch.as_tensor(sorted(set(int(i) for i in keep_ids)), dtype=torch.long)
        if len(keep) == 0 or keep[0] < 0 or keep[-1] >= vocabulary:
            raise ValueError(f"keep_ids must be token ids in 0..{vocabulary - 1}, got {len(keep)} id(s) from "
                             f"{int(keep[0]) if len(keep) else None} to {int(keep[-1]) if len(keep) else None}.")
        if unk_token_id not in set(keep.tolist()):
            raise ValueError(f"keep_ids must hold the [UNK] id {unk_token_id}: dropped tokens are mapped to it.")
        self.model = copy.deepcopy(model).cpu().eval()
        pruned = nn.Embedding(len(keep), embeddings.embedding_dim)
        pruned.weight.data.copy_(embeddings.weight.detach().cpu()[keep])
        self.model.set_input_embeddings(pruned)
        if hasattr(self.model, "config"):
            self.model.config.vocab_size = len(keep)
        # int32: the lookup is one number per token of the tokenizer's whole vocabulary, stored with the model
        id_map = torch.full((vocabulary,), int((keep == unk_token_id).nonzero()), dtype=torch.int32)
        id_map[keep] = torch.arange(len(keep), dtype=torch.int32)
        self.register_buffer("id_map", id_map)
        self.config = getattr(self.model, "config", None)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None):
        return self.model(input_ids=self.id_map[input_ids].long(), attention_mask=attention_mask,
                          token_type_ids=token_type_ids)


def prune_vocabulary(model: nn.Module, keep_ids: Sequence[int], unk_token_id: int) -> PrunedVocabularyClassifier:
    """``model`` with only the token embeddings in ``keep_ids`` (see ``used_token_ids``); others read [UNK]."""
    return PrunedVocabularyClassifier(model, keep_ids, unk_token_id)


class Int8Embedding(nn.Module):
    """An embedding table stored as int8, each row with its own float scale (symmetric: row ≈ scale × int8).
    A lookup returns the float32 rows, so the rest of the model is unchanged."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        weight = weight.detach().float().cpu()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        self.register_buffer("weight_int8", torch.round(weight / scale[:, None]).to(torch.int8))
        self.register_buffer("scale", scale)
        self.num_embeddings, self.embedding_dim = weight.shape

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.weight_int8[input_ids].float() * self.scale[input_ids, None]


def quantize_embeddings(model: nn.Module) -> nn.Module:
    """A CPU copy of ``model`` whose token-embedding table (``get_input_embeddings``; a wrapped model's too) is
    an ``Int8Embedding``: a quarter of the float32 bytes."""
    model = copy.deepcopy(model).cpu().eval()
    holder = model.model if isinstance(model, PrunedVocabularyClassifier) else model
    if not callable(getattr(holder, "get_input_embeddings", None)):
        raise ValueError(f"{type(model).__name__} has no get_input_embeddings(): quantize_embeddings needs a "
                         "Hugging Face model (or one wrapped by prune_vocabulary).")
    embeddings = holder.get_input_embeddings()
    if not isinstance(embeddings, nn.Embedding):
        raise ValueError(f"The token embeddings are a {type(embeddings).__name__}, not an nn.Embedding: "
                         "are they quantized already?")
    holder.set_input_embeddings(Int8Embedding(embeddings.weight))
    return model


# ---------------------------------------------------------------------------------------------
# Size


def _quantized_linears(model: nn.Module) -> list[nn.Module]:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    return [m for m in model.modules() if isinstance(m, DynamicQuantizedLinear)]


def count_parameters(model: nn.Module) -> int:
    """The number of weights, counting those packed inside dynamically quantized linear layers and the rows of
    ``Int8Embedding`` tables."""
    total = sum(p.numel() for p in model.parameters())
    for linear in _quantized_linears(model):
        bias = linear.bias()
        total += linear.weight().numel() + (bias.numel() if bias is not None else 0)
    total += sum(m.weight_int8.numel() for m in model.modules() if isinstance(m, Int8Embedding))
    return total


def _plain_tensors(name: str, value: torch.Tensor) -> dict[str, torch.Tensor]:
    """A tensor subclass (torchao's int8 weights) as the plain tensors it is made of; a plain tensor as itself."""
    flatten = getattr(type(value), "__tensor_flatten__", None)
    if flatten is None or type(value) in (torch.Tensor, nn.Parameter):
        return {name: value}
    inner, _ = value.__tensor_flatten__()
    tensors: dict[str, torch.Tensor] = {}
    for part in inner:
        tensors.update(_plain_tensors(f"{name}.{part}", getattr(value, part)))
    return tensors


def _storable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as plain tensors: a quantized weight becomes its int8 values plus its scales."""
    state: dict[str, torch.Tensor] = {}
    for name, value in model.state_dict().items():
        if isinstance(value, tuple):  # a dynamic quantized linear's packed (weight, bias)
            weight, bias = value
            state[f"{name}.weight_int8"] = weight.int_repr()
            if weight.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
                state[f"{name}.weight_scale"] = torch.tensor([weight.q_scale()])
                state[f"{name}.weight_zero_point"] = torch.tensor([weight.q_zero_point()])
            else:
                state[f"{name}.weight_scale"] = weight.q_per_channel_scales()
                state[f"{name}.weight_zero_point"] = weight.q_per_channel_zero_points()
            if bias is not None:
                state[f"{name}.bias"] = bias
        elif isinstance(value, torch.Tensor):
            state.update(_plain_tensors(name, value))
    return {k: v.detach().contiguous().cpu().clone() for k, v in state.items()}


def size_on_disk_mb(model: nn.Module) -> float:
    """The size in MB (10^6 bytes) of ``model``'s weights written to a safetensors file (int8 weights as int8
    tensors with their scales)."""
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.safetensors")
        save_file(_storable_state(model), path)
        return os.path.getsize(path) / 1e6


# ---------------------------------------------------------------------------------------------
# Speed, end to end


def _on_cpu(model: nn.Module) -> nn.Module:
    """``model`` on the CPU; one already there is left alone (torchao's int8 tensors cannot be moved in place)."""
    return model if all(p.device.type == "cpu" for p in model.parameters()) else model.cpu()


def texts_per_second(classify: Callable[[list[str]], object], texts: Sequence[str], *, batch_size: int = 64,
                     repeats: int = 3, warmup: int = 1) -> float:
    """How many texts per second ``classify`` (texts in, predictions out) handles when given ``texts`` in arrival
    order, ``batch_size`` at a time: the median of ``repeats`` timed passes after ``warmup`` untimed ones.
    Any classifier can be timed this way, a TF-IDF pipeline as well as a transformer."""
    check_positive_int(batch_size=batch_size, repeats=repeats)
    if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0 (untimed passes), got {warmup!r}.")
    texts = check_texts(texts)
    if not texts:
        raise ValueError("texts is empty: there is nothing to time.")
    times = []
    for _ in range(warmup + repeats):
        started = time.perf_counter()
        for start in range(0, len(texts), batch_size):
            classify(texts[start:start + batch_size])
        times.append(time.perf_counter() - started)
    return len(texts) / statistics.median(times[warmup:])


def measure_speed(model: nn.Module, tokenizer, texts: Sequence[str], max_length: int, *, batch_size: int = 64,
                  latency_examples: int = LATENCY_EXAMPLES, repeats: int = 3, warmup: int = 1) -> dict[str, float]:
    """End-to-end CPU speed of classifying ``texts``: tokenisation, the model and the argmax are all timed.

    ``throughput``: texts per second in batches of ``batch_size`` in the order given (no sorting by length);
    ``latency_ms``: milliseconds per text at batch size 1, over the first ``latency_examples`` texts.
    Each is the median of ``repeats`` timed passes after ``warmup`` untimed ones (``texts_per_second``).
    """
    check_positive_int(batch_size=batch_size, latency_examples=latency_examples, repeats=repeats)
    texts = check_texts(texts)
    if len(texts) < max(batch_size, latency_examples):
        raise ValueError(f"measure_speed needs at least {max(batch_size, latency_examples)} texts, got {len(texts)}.")
    check_max_length(max_length, model, tokenizer)
    model = _on_cpu(model).eval()

    @torch.inference_mode()
    def classify(batch: list[str]) -> torch.Tensor:
        encoded = tokenizer(batch, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
        return logits_of(model(**encoded)).argmax(dim=-1)

    throughput = texts_per_second(classify, texts, batch_size=batch_size, repeats=repeats, warmup=warmup)
    per_text = texts_per_second(classify, texts[:latency_examples], batch_size=1, repeats=repeats, warmup=warmup)
    return {"throughput": throughput, "latency_ms": 1000 / per_text}


def benchmark_classifiers(models: Mapping[str, nn.Module], tokenizer, dataset, *, reference: str, max_length: int,
                          batch_size: int = 64, repeats: int = 3, latency_examples: int = LATENCY_EXAMPLES,
                          speed_examples: int | None = 256, num_threads: int | None = None, progress: bool = True):
    """One row per model: accuracy on ``dataset`` (``text``/``label``), parameters, size on disk (MB), end-to-end
    throughput (texts/s at ``batch_size``) and latency (ms per text at batch 1), and the ratios to the
    ``reference`` model: ``accuracy_kept``, ``smaller`` (size), ``faster`` (throughput), ``faster_latency``.

    Every model runs on the CPU with ``num_threads`` threads (default: as many as torch has now) and shares
    ``tokenizer``; see ``measure_speed`` for what is timed, on the first ``speed_examples`` texts (``None``: all).
    A pandas ``DataFrame`` indexed by name.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    if reference not in models:
        raise ValueError(f"The reference {reference!r} is not among the models {list(models)}.")
    if num_threads is not None and (isinstance(num_threads, bool) or num_threads < 1):
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}.")
    check_classification_dataset(dataset, None, "benchmark dataset")
    texts, labels = column_values(dataset, TEXT_COLUMN), column_values(dataset, LABEL_COLUMN)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(num_threads or threads_before)
    rows = []
    try:
        for name, model in tqdm(models.items(), desc="benchmark", disable=not progress):
            model = _on_cpu(model).eval()
            logits = predict_logits(model, tokenizer, texts, max_length)
            speed = measure_speed(model, tokenizer, texts[:speed_examples], max_length, batch_size=batch_size,
                                  repeats=repeats, latency_examples=latency_examples)
            rows.append({"model": name, "accuracy": accuracy_of(logits, labels),
                         "parameters": count_parameters(model), "size_mb": size_on_disk_mb(model), **speed})
    finally:
        torch.set_num_threads(threads_before)
    table = pd.DataFrame(rows).set_index("model")
    ref = table.loc[reference]
    table["accuracy_kept"] = table["accuracy"] / ref["accuracy"]
    table["smaller"] = ref["size_mb"] / table["size_mb"]
    table["faster"] = table["throughput"] / ref["throughput"]
    table["faster_latency"] = ref["latency_ms"] / table["latency_ms"]
    return table
