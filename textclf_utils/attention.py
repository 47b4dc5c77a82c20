"""Scaled dot-product attention, masks and multi-head attention, written out from the equations.

Each function is checked against PyTorch (``F.scaled_dot_product_attention``,
``nn.MultiheadAttention``) and against BERT's own attention in the tests and in notebook 01.
Masks are boolean and follow PyTorch's convention: ``True`` means "may attend".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _check_mask(mask: Tensor, scores_shape: torch.Size) -> Tensor:
    if mask.dtype != torch.bool:
        raise ValueError(f"The mask must be boolean (True = may attend), got dtype {mask.dtype}.")
    try:
        torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        raise ValueError(
            f"A mask of shape {tuple(mask.shape)} does not broadcast to the attention scores' shape "
            f"{tuple(scores_shape)} (batch..., query length, key length)."
        ) from None
    return mask


def scaled_dot_product_attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None, dropout_p: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """softmax(Q Kᵀ / √d_k + mask) V, returning ``(output, attention_weights)``.

    Shapes: query ``(..., L_q, d_k)``, key ``(..., L_k, d_k)``, value ``(..., L_k, d_v)``; output
    ``(..., L_q, d_v)``, weights ``(..., L_q, L_k)``. A query row whose keys are all masked out gets
    all-zero weights (PyTorch's fused kernels give NaN there; notebook 01 shows why).
    """
    if query.dim() < 2 or key.dim() != query.dim() or value.dim() != query.dim():
        raise ValueError(f"query, key and value must have the same number (≥ 2) of dimensions, got shapes "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}.")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query and key must share their last dimension d_k, got {query.shape[-1]} and {key.shape[-1]}.")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"key and value must have the same length L_k, got {key.shape[-2]} and {value.shape[-2]}.")
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.shape[-1])
    if mask is not None:
        mask = _check_mask(mask, scores.shape)
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = torch.nan_to_num(weights, nan=0.0)  # rows with every key masked
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ value, weights


def padding_mask(attention_mask: Tensor) -> Tensor:
    """A tokenizer's ``attention_mask`` ``(B, L)`` of 1/0 as a boolean key mask ``(B, 1, 1, L)``."""
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must have shape (batch, length), got {tuple(attention_mask.shape)}.")
    return attention_mask.bool()[:, None, None, :]


def causal_mask(length: int, device: torch.device | None = None) -> Tensor:
    """A lower-triangular ``(L, L)`` mask: position i may attend to positions ≤ i."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention with BERT's layout: ``query``, ``key``, ``value`` and ``output`` projections."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if hidden_size <= 0 or num_heads <= 0:
            raise ValueError(f"hidden_size and num_heads must be positive, got {hidden_size} and {num_heads}.")
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads}); "
                             f"e.g. {hidden_size - hidden_size % num_heads} or {num_heads * 64}.")
        self.hidden_size, self.num_heads, self.head_dim = hidden_size, num_heads, hidden_size // num_heads
        self.dropout = dropout
        self.query = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.key = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.value = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.output = nn.Linear(hidden_size, hidden_size, bias=bias)

    def split_heads(self, x: Tensor) -> Tensor:
        """``(B, L, H)`` → ``(B, heads, L, H / heads)``."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def merge_heads(self, x: Tensor) -> Tensor:
        """``(B, heads, L, d)`` → ``(B, L, heads · d)``: the inverse of ``split_heads``."""
        batch, _, length, _ = x.shape
        return x.transpose(1, 2).reshape(batch, length, self.hidden_size)

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
