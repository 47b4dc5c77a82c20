"""Scaled dot-product attention, masks and multi-head attention, written out from the equations.

Each function is checked against PyTorch (``F.scaled_dot_product_attention``,
``nn.MultiheadAttention``) and against BERT's own attention in the tests and in notebook 01.
Masks are boolean and follow PyTorch's convention: ``True`` means "may attend".
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _check_mask(mask: Tensor, scores_shape: torch.Size) -> Tensor:
    if mask.dtype != torch.bool:
        raise ValueError(f"The mask must be boolean (True = may attend), got dtype {mask.dtype}.")
    try:
        broadcast = torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        broadcast = None
    if broadcast != scores_shape:
        raise ValueError(
            f"A mask of shape {tuple(mask.shape)} does not broadcast to the attention scores' shape "
            f"{tuple(scores_shape)} (batch..., query length, key length); expected e.g. "
            f"(query length, key length) = {tuple(scores_shape[-2:])} or, for padding, "
            f"(batch, 1, 1, key length) from padding_mask()."
        )
    return mask


def masked_softmax(scores: Tensor, mask: Tensor | None = None) -> Tensor:
    """Softmax over the last dimension where ``mask`` is ``True``; masked positions get weight 0.

    A row whose keys are *all* masked out has no valid distribution: a plain softmax over a row of
    ``-inf`` gives NaN (0 / 0). Here such a row gets all-zero weights instead, as
    ``F.scaled_dot_product_attention`` does, so that it contributes nothing rather than poisoning the batch.
    """
    if mask is None:
        return torch.softmax(scores, dim=-1)
    mask = _check_mask(mask, scores.shape)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return torch.where(mask.any(dim=-1, keepdim=True), weights, torch.zeros((), dtype=weights.dtype))


def scaled_dot_product_attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None, dropout_p: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """softmax(Q Kᵀ / √d_k, masked) V, returning ``(output, attention_weights)``.

    Shapes: query ``(..., L_q, d_k)``, key ``(..., L_k, d_k)``, value ``(..., L_k, d_v)`` with the same
    leading (batch, heads) dimensions; output ``(..., L_q, d_v)``, weights ``(..., L_q, L_k)``.
    ``mask``: boolean, broadcastable to ``(..., L_q, L_k)``. A query row whose keys are all masked out
    gets all-zero weights (see ``masked_softmax``). ``dropout_p`` is applied to the weights.
    """
    if query.dim() < 2 or key.dim() != query.dim() or value.dim() != query.dim():
        raise ValueError(f"query, key and value must have the same number (≥ 2) of dimensions, got shapes "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}.")
    if not query.shape[:-2] == key.shape[:-2] == value.shape[:-2]:
        raise ValueError(f"query, key and value must share their leading (batch, heads) dimensions, got shapes "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}.")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query and key must share their last dimension d_k, got {query.shape[-1]} and {key.shape[-1]}.")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"key and value must have the same length L_k, got {key.shape[-2]} and {value.shape[-2]}.")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}.")
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    weights = masked_softmax(scores, mask)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ value, weights


def padding_mask(attention_mask: Tensor) -> Tensor:
    """A tokenizer's ``attention_mask`` ``(B, L)`` of 1/0 as a boolean key mask ``(B, 1, 1, L)``."""
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must have shape (batch, length), got {tuple(attention_mask.shape)}.")
    return attention_mask.bool()[:, None, None, :]


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """``(B, L, H)`` → ``(B, heads, L, H / heads)``: slice the features per head, then make heads a batch dim."""
    if x.dim() != 3 or x.shape[-1] % num_heads:
        raise ValueError(f"split_heads needs x of shape (batch, length, hidden) with hidden divisible by "
                         f"num_heads={num_heads}, got {tuple(x.shape)}.")
    batch, length, hidden = x.shape
    return x.view(batch, length, num_heads, hidden // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``(B, heads, L, d)`` → ``(B, L, heads · d)``: the inverse of ``split_heads``."""
    if x.dim() != 4:
        raise ValueError(f"merge_heads needs x of shape (batch, heads, length, head_dim), got {tuple(x.shape)}.")
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


def causal_mask(length: int, device: torch.device | None = None) -> Tensor:
    """A lower-triangular ``(L, L)`` mask: position i may attend to positions ≤ i."""
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length <= 0:
        raise ValueError(f"length must be a positive integer (the number of positions), got {length!r}.")
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention with BERT's layout: ``query``, ``key``, ``value`` and ``output`` projections."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if hidden_size <= 0 or num_heads <= 0:
            raise ValueError(f"hidden_size and num_heads must be positive, got {hidden_size} and {num_heads}.")
        if hidden_size % num_heads:
            fitting = [h for h in range(1, min(hidden_size, 64) + 1) if hidden_size % h == 0]
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads}): each head "
                             f"gets hidden_size / num_heads dimensions. Head counts that fit {hidden_size}: {fitting}.")
        self.hidden_size, self.num_heads, self.head_dim = hidden_size, num_heads, hidden_size // num_heads
        self.dropout = dropout
        self.query = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.key = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.value = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.output = nn.Linear(hidden_size, hidden_size, bias=bias)

    def split_heads(self, x: Tensor) -> Tensor:
        """``(B, L, H)`` → ``(B, heads, L, H / heads)``."""
        return split_heads(x, self.num_heads)

    def merge_heads(self, x: Tensor) -> Tensor:
        """``(B, heads, L, d)`` → ``(B, L, heads · d)``: the inverse of ``split_heads``."""
        return merge_heads(x)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Self-attention over ``x`` ``(B, L, H)``; returns ``(output (B, L, H), weights (B, heads, L, L))``.

        ``mask``: boolean, broadcastable to ``(B, heads, L, L)``, e.g. ``padding_mask(attention_mask)``.
        """
        if x.dim() != 3 or x.shape[-1] != self.hidden_size:
            raise ValueError(f"Expected input of shape (batch, length, {self.hidden_size}), got {tuple(x.shape)}.")
        q, k, v = (self.split_heads(proj(x)) for proj in (self.query, self.key, self.value))
        context, weights = scaled_dot_product_attention(
            q, k, v, mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.output(self.merge_heads(context)), weights


def _check_same_layout(target: MultiHeadAttention, hidden_size: int, num_heads: int, has_bias: bool,
                       source_name: str) -> None:
    if (target.hidden_size, target.num_heads) != (hidden_size, num_heads):
        raise ValueError(f"{source_name} has hidden size {hidden_size} and {num_heads} heads, but the target has "
                         f"{target.hidden_size} and {target.num_heads}: build MultiHeadAttention({hidden_size}, {num_heads}).")
    if (target.query.bias is not None) != has_bias:
        raise ValueError(f"{source_name} {'has' if has_bias else 'has no'} biases, the target "
                         f"{'has' if target.query.bias is not None else 'has none'}: match bias=.")


@torch.no_grad()
def copy_from_torch_multihead(target: MultiHeadAttention, source: nn.MultiheadAttention) -> MultiHeadAttention:
    """Copy the weights of ``torch.nn.MultiheadAttention`` into ``target`` (in place; returns it).

    PyTorch stores the three input projections stacked in one ``in_proj_weight`` ``(3H, H)``, in the
    order query, key, value, and the output projection as ``out_proj``.
    """
    if not isinstance(source, nn.MultiheadAttention):
        raise ValueError(f"Expected a torch.nn.MultiheadAttention, got {type(source).__name__}.")
    if not source._qkv_same_embed_dim:
        raise ValueError("Expected an nn.MultiheadAttention with kdim == vdim == embed_dim (self-attention).")
    _check_same_layout(target, source.embed_dim, source.num_heads, source.in_proj_bias is not None,
                       "The nn.MultiheadAttention")
    for i, linear in enumerate((target.query, target.key, target.value)):
        rows = slice(i * target.hidden_size, (i + 1) * target.hidden_size)
        linear.weight.copy_(source.in_proj_weight[rows])
        if linear.bias is not None:
            linear.bias.copy_(source.in_proj_bias[rows])
    target.output.weight.copy_(source.out_proj.weight)
    if target.output.bias is not None:
        target.output.bias.copy_(source.out_proj.bias)
    return target


@torch.no_grad()
def copy_from_bert_attention(target: MultiHeadAttention, source: nn.Module) -> MultiHeadAttention:
    """Copy a BERT layer's attention (``layer.attention``: ``self.query/key/value`` and ``output.dense``).

    Only the attention proper is copied: BERT's ``attention.output`` also adds the residual and applies
    a LayerNorm (``attention.output.LayerNorm``), which belong to the encoder block, not to attention.
    """
    try:
        self_attention, dense = source.self, source.output.dense
        linears = (self_attention.query, self_attention.key, self_attention.value, dense)
        num_heads = self_attention.num_attention_heads
    except AttributeError:
        raise ValueError(f"Expected a BERT attention module (e.g. model.encoder.layer[0].attention) with "
                         f"self.query/key/value and output.dense, got {type(source).__name__}.") from None
    _check_same_layout(target, dense.in_features, num_heads, dense.bias is not None, "The BERT attention")
    for mine, theirs in zip((target.query, target.key, target.value, target.output), linears):
        mine.weight.copy_(theirs.weight)
        if mine.bias is not None:
            mine.bias.copy_(theirs.bias)
    return target


# ---------------------------------------------------------------------------------------------
# Cost: the memory that attention allocates, measured, and how it grows with the sequence length


def peak_allocated_bytes(fn, device: torch.device | str = "cpu") -> int:
    """Peak of the bytes allocated (net of frees) while ``fn()`` runs, **including inside one operator**.

    On CUDA this is ``torch.cuda.max_memory_allocated`` after a reset, less what was allocated before.
    On the CPU it replays PyTorch's profiler (``profile_memory=True``): every operator, nested ones
    included, reports what it allocated net of what it freed itself (``self_cpu_memory_usage``); these
    are applied in the order the operators *finish*, so the temporaries that a composite operator builds
    through its sub-operators (e.g. the L×L scores of the math attention backend) count while they live.
    Summing only the top-level operators would net them out and see none of it.
    Allocations that a single leaf kernel makes and frees internally, without a sub-operator, stay invisible.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    if device.type != "cpu":
        raise ValueError(f"peak_allocated_bytes measures on 'cpu' or 'cuda', got {device.type!r}.")
    from torch.profiler import ProfilerActivity, profile

    with _stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    changes = sorted((event.time_range.end, event.self_cpu_memory_usage) for event in prof.events())
    running = peak = 0
    for _, change in changes:
        running += change
        peak = max(peak, running)
    return int(peak)


class _stderr_silenced:
    """Some PyTorch builds' profiler logs a line to the process's stderr each time it starts and stops."""

    def __enter__(self):
        import os
        import sys

        sys.stderr.flush()
        try:
            self._saved = os.dup(2)
        except OSError:  # no file descriptor 2: nothing to silence
            self._saved = None
            return self
        self._devnull = open(os.devnull, "w")
        os.dup2(self._devnull.fileno(), 2)
        return self

    def __exit__(self, *exc):
        import os

        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._devnull.close()
        return False


def growth_exponent(lengths, values, last: int = 3) -> float:
    """The exponent p of ``value ≈ c · length^p``: the slope of log(value) on log(length), fitted over the
    ``last`` largest lengths (where the leading term dominates)."""
    import numpy as np

    x, y = np.asarray(lengths, dtype=float), np.asarray(values, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"lengths and values must be 1-D of equal length ≥ 2, got {x.shape} and {y.shape}.")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("lengths and values must be positive to fit a power law (a measured 0 bytes means the "
                         "measurement saw nothing: check it).")
    order = np.argsort(x)[-max(2, last):]
    return float(np.polyfit(np.log(x[order]), np.log(y[order]), 1)[0])


def check_memory_growth(lengths, peak_bytes, expected: str, tolerance: float = 0.3, last: int = 3) -> float:
    """Assert that memory grows with the sequence length as ``expected``: ``"linear"`` (at most linearly:
    exponent ≤ 1 + ``tolerance``; a kernel's fixed work buffers can make it grow more slowly still) or
    ``"quadratic"`` (exponent within ``tolerance`` of 2).

    Fits the exponent with ``growth_exponent`` and raises ``AssertionError`` otherwise; returns the fitted
    exponent. A measurement that misses the L×L matrix fails the ``"quadratic"`` check; one that sees it
    fails the ``"linear"`` check.
    """
    if expected not in ("linear", "quadratic"):
        raise ValueError(f"expected must be 'linear' or 'quadratic', got {expected!r}.")
    exponent = growth_exponent(lengths, peak_bytes, last)
    fits = exponent <= 1 + tolerance if expected == "linear" else abs(exponent - 2) <= tolerance
    if not fits:
        bound = f"L^p with p ≤ {1 + tolerance:.1f}" if expected == "linear" else f"L^p with |p − 2| ≤ {tolerance}"
        raise AssertionError(f"memory grows like L^{exponent:.2f}, not {expected} ({bound}); peak MiB by length: "
                             + ", ".join(f"{n}: {b / 2**20:.2f}" for n, b in zip(lengths, peak_bytes)))
    return exponent


# ---------------------------------------------------------------------------------------------
# Property checks for any multi-head self-attention module: what "debug the tutorial" runs


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one named property check on a module."""

    check: str
    passed: bool
    detail: str


def _call(module: nn.Module, x: Tensor) -> tuple[Tensor, Tensor | None]:
    """``module(x)`` in eval mode without gradients, as ``(output, weights or None)``."""
    module.eval()
    with torch.no_grad():
        result = module(x)
    if isinstance(result, tuple):
        return result[0], (result[1] if len(result) > 1 else None)
    return result, None


def _random_input(hidden_size: int, batch: int = 2, length: int = 7, seed: int = 0) -> Tensor:
    return torch.randn(batch, length, hidden_size, generator=torch.Generator().manual_seed(seed))


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return f"raises {type(err).__name__}: {text.splitlines()[0] if text else ''}"


def check_shapes(module: nn.Module, hidden_size: int, num_heads: int) -> CheckResult:
    """Shape check: on a ``(B, L, H)`` batch the module runs and returns ``(B, L, H)``, and its attention
    weights, if it returns them, are ``(B, heads, L, L)`` (one L×L map per head) with rows summing to 1."""
    name = "shapes"
    x = _random_input(hidden_size)
    batch, length, _ = x.shape
    try:
        output, weights = _call(module, x)
    except Exception as err:  # a tutorial's bug often shows as a crash: report it, don't raise
        return CheckResult(name, False, _first_line(err))
    if tuple(output.shape) != (batch, length, hidden_size):
        return CheckResult(name, False, f"output {tuple(output.shape)}, expected {(batch, length, hidden_size)}")
    if weights is not None:
        expected = (batch, num_heads, length, length)
        if tuple(weights.shape) != expected:
            return CheckResult(name, False, f"weights {tuple(weights.shape)}, expected (B, heads, L, L) = {expected}")
        if not torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-5):
            return CheckResult(name, False, "attention weights' rows do not sum to 1")
    return CheckResult(name, True, f"output {tuple(output.shape)}"
                       + (f", weights {tuple(weights.shape)}" if weights is not None else ""))


def check_permutation_equivariance(module: nn.Module, hidden_size: int, atol: float = 1e-5) -> CheckResult:
    """Permutation check: self-attention without positions treats the tokens as a set, so shuffling the
    input tokens must shuffle the output rows the same way: ``f(x[:, perm]) == f(x)[:, perm]``."""
    name = "permutation equivariance"
    x = _random_input(hidden_size, seed=1)
    perm = torch.randperm(x.shape[1], generator=torch.Generator().manual_seed(0))
    try:
        shuffled_then, _ = _call(module, x[:, perm])
        then_shuffled, _ = _call(module, x)
        error = (shuffled_then - then_shuffled[:, perm]).abs().max().item()
    except Exception as err:
        return CheckResult(name, False, _first_line(err))
    return CheckResult(name, error <= atol, f"max |f(x[perm]) - f(x)[perm]| = {error:.1e}")


def check_matches_torch_multihead(module: nn.Module, hidden_size: int, num_heads: int,
                                  names: tuple[str, str, str, str] = ("query", "key", "value", "output"),
                                  atol: float = 1e-5) -> CheckResult:
    """Reference check: load a seeded ``torch.nn.MultiheadAttention``'s weights into the module's four
    projections (attributes ``names``: query, key, value, output) and compare the outputs on a batch."""
    name = "equals nn.MultiheadAttention"
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(hidden_size, num_heads, batch_first=True).eval()
    try:
        linears = [getattr(module, attribute) for attribute in names]
        shapes = [tuple(linear.weight.shape) for linear in linears]
    except AttributeError as err:
        return CheckResult(name, False, f"cannot load the reference weights: {err}")
    if shapes != [(hidden_size, hidden_size)] * 4:
        return CheckResult(name, False, f"projection weights {shapes}: nn.MultiheadAttention's are 4 × "
                                        f"{(hidden_size, hidden_size)}, so its weights do not fit")
    with torch.no_grad():
        for i, linear in enumerate(linears[:3]):
            rows = slice(i * hidden_size, (i + 1) * hidden_size)
            linear.weight.copy_(reference.in_proj_weight[rows])
            linear.bias.copy_(reference.in_proj_bias[rows])
        linears[3].weight.copy_(reference.out_proj.weight)
        linears[3].bias.copy_(reference.out_proj.bias)
    x = _random_input(hidden_size, seed=2)
    try:
        output, _ = _call(module, x)
        with torch.no_grad():
            expected, _ = reference(x, x, x)
        error = (output - expected).abs().max().item()
    except Exception as err:
        return CheckResult(name, False, _first_line(err))
    return CheckResult(name, error <= atol, f"max |module - nn.MultiheadAttention| = {error:.1e}")


def run_attention_checks(module: nn.Module, hidden_size: int, num_heads: int,
                         reference: bool = True) -> dict[str, CheckResult]:
    """The named property checks, in order: shapes, permutation equivariance and (with ``reference``)
    equality with ``nn.MultiheadAttention``. Returns ``{check name: CheckResult}``; raises nothing."""
    results = [check_shapes(module, hidden_size, num_heads),
               check_permutation_equivariance(module, hidden_size)]
    if reference:
        results.append(check_matches_torch_multihead(module, hidden_size, num_heads))
    return {result.check: result for result in results}
