"""Plots used across the course's notebooks (matplotlib; each function returns what it drew on)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure


# --- attention heatmaps (notebook 01) ---------------------------------------------------------------

def _as_numpy_square(weights: torch.Tensor | np.ndarray, tokens: Sequence[str]) -> np.ndarray:
    array = weights.detach().cpu().numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights)
    if array.ndim != 2 or array.shape != (len(tokens), len(tokens)):
        raise ValueError(f"Expected attention weights of shape (query length, key length) = "
                         f"({len(tokens)}, {len(tokens)}) for {len(tokens)} tokens, got {array.shape}.")
    return array


def plot_attention_head(
    weights: torch.Tensor | np.ndarray,
    tokens: Sequence[str],
    ax: Axes | None = None,
    title: str | None = None,
    colorbar: bool = True,
) -> Axes:
    """One head's attention weights ``(L, L)`` as a heatmap: row = query token, column = key token."""
    array = _as_numpy_square(weights, tokens)
    if ax is None:
        size = max(3.0, 0.35 * len(tokens) + 1.5)
        _, ax = plt.subplots(figsize=(size + (1.0 if colorbar else 0.0), size))
    image = ax.imshow(array, cmap="viridis", vmin=0.0, vmax=max(float(array.max()), 1e-12))
    ax.set_xticks(range(len(tokens)), labels=list(tokens), rotation=90)
    ax.set_yticks(range(len(tokens)), labels=list(tokens))
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    return ax


def plot_attention_grid(
    attentions: Sequence[torch.Tensor] | torch.Tensor,
    tokens: Sequence[str],
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    batch_index: int = 0,
    cell_size: float = 1.6,
) -> Figure:
    """A grid of heatmaps, one row per layer and one column per head, token labels on the outer axes.

    ``attentions`` is what a Hugging Face model returns with ``output_attentions=True`` (one
    ``(batch, heads, L, L)`` tensor per layer; ``batch_index`` picks the sentence), or a tensor
    ``(layers, heads, L, L)``. ``layers`` / ``heads`` select which to draw (default: all).
    """
    if isinstance(attentions, torch.Tensor):
        if attentions.dim() != 4:
            raise ValueError(f"Expected a tensor of shape (layers, heads, L, L), got {tuple(attentions.shape)}.")
        stacked = attentions
    else:
        if len(attentions) == 0:
            raise ValueError("Expected one attention tensor per layer, got an empty sequence.")
        if any(a.dim() != 4 for a in attentions):
            raise ValueError("Expected each layer's attention as (batch, heads, L, L), got shapes "
                             f"{[tuple(a.shape) for a in attentions]}.")
        if not 0 <= batch_index < attentions[0].shape[0]:
            raise ValueError(f"batch_index {batch_index} is out of range for a batch of {attentions[0].shape[0]}.")
        stacked = torch.stack([a[batch_index] for a in attentions])
    num_layers, num_heads = stacked.shape[:2]
    layers = list(range(num_layers)) if layers is None else list(layers)
    heads = list(range(num_heads)) if heads is None else list(heads)
    if not layers or not heads or not all(0 <= i < num_layers for i in layers) or not all(0 <= h < num_heads for h in heads):
        raise ValueError(f"layers must be non-empty indices in [0, {num_layers}) and heads in [0, {num_heads}), "
                         f"got layers={layers}, heads={heads}.")
    fig, axes = plt.subplots(len(layers), len(heads), figsize=(cell_size * len(heads) + 1, cell_size * len(layers) + 1),
                             squeeze=False)
    for row, layer in enumerate(layers):
        for col, head in enumerate(heads):
            ax = axes[row, col]
            ax.imshow(_as_numpy_square(stacked[layer, head], tokens), cmap="viridis", vmin=0.0)
            ax.set_xticks(range(len(tokens)), labels=list(tokens), rotation=90, fontsize=7)
            ax.set_yticks(range(len(tokens)), labels=list(tokens), fontsize=7)
            ax.tick_params(length=0, labelbottom=row == len(layers) - 1, labelleft=col == 0)
            if row == 0:
                ax.set_title(f"head {head}", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"layer {layer}", fontsize=9)
    fig.tight_layout()
    return fig
