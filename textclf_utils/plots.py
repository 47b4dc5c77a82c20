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
    vmax: float | None = 1.0,
) -> Figure:
    """A grid of heatmaps, one row per layer and one column per head, token labels on the outer axes.

    Every panel shares one colour scale, from 0 to ``vmax`` (default 1, the largest possible weight; ``None``:
    the largest weight drawn), shown by one colour bar, so that panels can be compared with each other.

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
    # fixed margins (room for the token labels) rather than tight_layout, which is slow on a large grid
    label_room = 0.09 * max(len(token) for token in tokens) + 0.5
    bar_room = 0.9
    width, height = cell_size * len(heads) + label_room + bar_room, cell_size * len(layers) + label_room + 0.3
    if vmax is None:
        vmax = max(float(stacked[layer, head].max()) for layer in layers for head in heads)
    fig, axes = plt.subplots(len(layers), len(heads), figsize=(width, height), squeeze=False,
                             gridspec_kw=dict(left=label_room / width, right=1 - bar_room / width, bottom=label_room / height,
                                              top=1 - 0.35 / height, wspace=0.08, hspace=0.08))
    positions = range(len(tokens))
    for row, layer in enumerate(layers):
        for col, head in enumerate(heads):
            ax = axes[row, col]
            image = ax.imshow(_as_numpy_square(stacked[layer, head], tokens), cmap="viridis", vmin=0.0, vmax=vmax)
            # token labels only on the outer axes: the bottom row and the left column
            last_row, first_col = row == len(layers) - 1, col == 0
            ax.set_xticks(positions, labels=list(tokens), rotation=90, fontsize=7) if last_row else ax.set_xticks([])
            ax.set_yticks(positions, labels=list(tokens), fontsize=7) if first_col else ax.set_yticks([])
            ax.tick_params(length=0)
            if row == 0:
                ax.set_title(f"head {head}", fontsize=9)
            if first_col:
                ax.set_ylabel(f"layer {layer}", fontsize=9)
    bar = fig.add_axes((1 - (bar_room - 0.15) / width, label_room / height, 0.18 / width,
                        1 - (label_room + 0.35) / height))
    fig.colorbar(image, cax=bar, label="attention weight (one scale for every panel)")
    return fig


# --- training curves and token lengths (notebook 03) ---------------------------------------------

def plot_training_history(histories: dict[str, Sequence[dict]] | Sequence[dict],
                          step_losses: dict[str, Sequence[float]] | None = None) -> Figure:
    """Loss and validation accuracy per epoch, for one run (a list of per-epoch dicts with ``epoch``,
    ``train_loss``, ``eval_loss``, ``eval_accuracy``) or several (``{name: history}``), side by side.
    ``step_losses`` (``{name: loss per step}``) adds the raw training loss of every step, faint."""
    runs = histories if isinstance(histories, dict) else {"run": histories}
    if not runs or any(len(history) == 0 for history in runs.values()):
        raise ValueError("Each history must hold at least one epoch's record.")
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 3.8))
    for index, (name, history) in enumerate(runs.items()):
        color = f"C{index}"
        epochs = [record["epoch"] for record in history]
        if step_losses and name in step_losses and len(step_losses[name]):
            steps = np.arange(1, len(step_losses[name]) + 1) / len(step_losses[name]) * epochs[-1]
            loss_ax.plot(steps, step_losses[name], color=color, alpha=0.2, linewidth=0.8)
        if all("train_loss" in record for record in history):
            loss_ax.plot(epochs, [r["train_loss"] for r in history], "o-", color=color, label=f"{name}: train")
        loss_ax.plot(epochs, [r["eval_loss"] for r in history], "s--", color=color, label=f"{name}: validation")
        acc_ax.plot(epochs, [r["eval_accuracy"] for r in history], "o-", color=color, label=name)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss (train: mean over the epoch)")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy after each epoch")
    loss_ax.legend(fontsize=8)
    acc_ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_length_distribution(lengths: Sequence[int], max_length: int | None = None,
                             title: str = "tokens per example") -> Axes:
    """A histogram of token counts, with the ``max_length`` cut-off and the share it truncates."""
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        raise ValueError("No lengths to plot.")
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(lengths, bins=min(60, int(lengths.max() - lengths.min() + 1)), color="C0")
    for q, style in ((50, ":"), (95, "-."), (99, "--")):
        ax.axvline(np.percentile(lengths, q), color="k", linestyle=style, linewidth=1,
                   label=f"{q}th percentile: {np.percentile(lengths, q):.0f}")
    if max_length is not None:
        ax.axvline(max_length, color="C3", linewidth=2,
                   label=f"max_length {max_length}: truncates {(lengths > max_length).mean():.2%}")
    ax.set(xlabel="tokens (with [CLS] and [SEP])", ylabel="examples", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return ax


# --- evaluation (notebook 04) -------------------------------------------------------------------------

def plot_confusion_matrices(y_true, y_pred, label_names: Sequence[str], title: str = "") -> Figure:
    """Counts and row-normalised (recall per class) confusion matrices side by side."""
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(3.5, 0.6 * len(label_names) + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, normalize, fmt, name in ((axes[0], None, "d", "counts"), (axes[1], "true", ".2f", "share of each true class")):
        ConfusionMatrixDisplay.from_predictions(
            y_true, y_pred, labels=list(range(len(label_names))), display_labels=list(label_names),
            normalize=normalize, values_format=fmt, cmap="Blues", ax=ax, colorbar=False, xticks_rotation=45)
        ax.set_title(f"{title}: {name}" if title else name)
    fig.tight_layout()
    return fig


def plot_roc_and_pr_curves(y_true, y_prob, label_names: Sequence[str], title: str = "") -> Figure:
    """One-vs-rest ROC and precision-recall curves, one line per class (the positive class only when binary)."""
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    y_true, y_prob = np.asarray(y_true), np.asarray(y_prob)
    classes = [1] if len(label_names) == 2 else range(len(label_names))
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    for c in classes:
        is_c = (y_true == c).astype(int)
        RocCurveDisplay.from_predictions(is_c, y_prob[:, c], name=label_names[c], ax=roc_ax, plot_chance_level=c == classes[-1])
        PrecisionRecallDisplay.from_predictions(is_c, y_prob[:, c], name=label_names[c], ax=pr_ax,
                                                plot_chance_level=len(label_names) == 2)
    roc_ax.set_title(f"{title} ROC (one-vs-rest)" if title else "ROC (one-vs-rest)")
    pr_ax.set_title(f"{title} precision-recall" if title else "precision-recall")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)")
    pr_ax.set(xlabel="recall", ylabel="precision")
    for ax in (roc_ax, pr_ax):
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_reliability_diagram(y_true, y_prob, n_bins: int = 10, ax: Axes | None = None, label: str = "model") -> Axes:
    """Accuracy against mean confidence per confidence bin; the diagonal is perfect calibration.

    Call it again with the same ``ax`` to compare models (e.g. before and after temperature scaling):
    the diagonal is drawn once.
    """
    from .metrics import expected_calibration_error, reliability_table

    table = reliability_table(y_true, y_prob, n_bins).dropna()
    ece = expected_calibration_error(y_true, y_prob, n_bins)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    if not any(line.get_label() == "perfectly calibrated" for line in ax.get_lines()):
        ax.plot([0, 1], [0, 1], "k:", linewidth=1, label="perfectly calibrated")
    ax.plot(table["confidence"], table["accuracy"], "o-", label=f"{label} (ECE {ece:.3f})")
    ax.set(xlabel="mean confidence in bin", ylabel="accuracy in bin", xlim=(0, 1), ylim=(0, 1.02),
           title="reliability diagram")
    ax.legend(fontsize=8)
    return ax
