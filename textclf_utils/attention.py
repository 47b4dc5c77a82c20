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


def causal_mask(length: int, device: torch.device | None = None) -> Tensor:
    """A lower-triangular ``(L, L)`` mask: position i may attend to positions ≤ i."""
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}.")
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
