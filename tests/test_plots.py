"""textclf_utils.plots: the attention heatmaps draw what they are given, with token labels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from textclf_utils.plots import (plot_attention_grid, plot_attention_head, plot_length_distribution,  # noqa: E402
                                 plot_training_history)

TOKENS = ["[CLS]", "the", "exam", "[SEP]"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_head_heatmap_shows_the_weights_with_token_labels():
    weights = torch.softmax(torch.randn(4, 4), dim=-1)
    ax = plot_attention_head(weights, TOKENS, title="layer 0, head 3")
    assert np.allclose(ax.images[0].get_array(), weights.numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == TOKENS
    assert [t.get_text() for t in ax.get_yticklabels()] == TOKENS
    assert ax.get_title() == "layer 0, head 3"
    assert len(ax.figure.axes) == 2  # the heatmap and its colour bar


def test_head_heatmap_draws_on_a_given_axes():
    fig, ax = plt.subplots()
    assert plot_attention_head(np.eye(4), TOKENS, ax=ax, colorbar=False) is ax
    assert len(fig.axes) == 1


def test_head_heatmap_refuses_weights_that_do_not_match_the_tokens():
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        plot_attention_head(torch.rand(5, 5), TOKENS)


def test_grid_from_hugging_face_attentions():
    # what a model returns with output_attentions=True: one (batch, heads, L, L) tensor per layer
    attentions = tuple(torch.softmax(torch.randn(2, 3, 4, 4), dim=-1) for _ in range(2))
    fig = plot_attention_grid(attentions, TOKENS, batch_index=1)
    assert len(fig.axes) == 2 * 3 + 1  # the panels and one shared colour bar
    bottom_left = fig.axes[3]  # layer 1, head 0
    assert np.allclose(bottom_left.images[0].get_array(), attentions[1][1, 0].numpy())
    assert [t.get_text() for t in bottom_left.get_xticklabels()] == TOKENS
    assert bottom_left.get_ylabel() == "layer 1"
    assert fig.axes[0].get_title() == "head 0"
    # token labels only on the outer axes: x on the bottom row, y on the left column
    def shown(ticks):
        return any(tick.label1.get_visible() for tick in ticks)

    assert shown(bottom_left.xaxis.get_major_ticks()) and shown(bottom_left.yaxis.get_major_ticks())
    assert not shown(fig.axes[1].xaxis.get_major_ticks()) and not shown(fig.axes[1].yaxis.get_major_ticks())


def test_grid_selects_layers_and_heads_from_a_stacked_tensor():
    stacked = torch.softmax(torch.randn(6, 12, 4, 4), dim=-1)
    fig = plot_attention_grid(stacked, TOKENS, layers=[0, 5], heads=[2, 7, 11])
    assert len(fig.axes) == 6 + 1
    assert np.allclose(fig.axes[5].images[0].get_array(), stacked[5, 11].numpy())
    assert [ax.get_title() for ax in fig.axes[:3]] == ["head 2", "head 7", "head 11"]


@pytest.mark.parametrize(
    "attentions, kwargs, message",
    [
        (torch.rand(2, 3, 4), {}, r"\(layers, heads, L, L\)"),
        ((), {}, "empty"),
        ((torch.rand(1, 2, 4, 4),), {"batch_index": 1}, "batch_index"),
        (torch.rand(2, 3, 4, 4), {"heads": [3]}, r"heads in \[0, 3\)"),
        (torch.rand(2, 3, 5, 5), {}, "5 tokens|4 tokens"),
    ],
)
def test_grid_bad_input_raises(attentions, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot_attention_grid(attentions, TOKENS, **kwargs)


def test_grid_panels_share_one_colour_scale_with_a_colour_bar():
    stacked = torch.rand(2, 3, len(TOKENS), len(TOKENS)).softmax(-1)
    fig = plot_attention_grid(stacked, TOKENS)
    limits = {tuple(ax.images[0].get_clim()) for ax in fig.axes if ax.images}
    assert limits == {(0.0, 1.0)}
    assert len(fig.axes) == 2 * 3 + 1 and "attention weight" in fig.axes[-1].get_ylabel()
    fig = plot_attention_grid(stacked, TOKENS, vmax=None)
    assert {round(ax.images[0].get_clim()[1], 5) for ax in fig.axes if ax.images} == {round(float(stacked.max()), 5)}


HISTORY = [{"epoch": 1, "train_loss": 0.6, "eval_loss": 0.5, "eval_accuracy": 0.8},
           {"epoch": 2, "train_loss": 0.4, "eval_loss": 0.45, "eval_accuracy": 0.85}]


def test_training_history_plot_draws_each_run():
    fig = plot_training_history({"loop": HISTORY, "Trainer": HISTORY}, step_losses={"loop": [0.7, 0.5, 0.4]})
    loss_ax, acc_ax = fig.axes
    assert len(acc_ax.lines) == 2 and list(acc_ax.lines[0].get_ydata()) == [0.8, 0.85]
    assert len(loss_ax.lines) == 5  # per-step loss + train and dev for both runs


def test_step_losses_are_spread_evenly_up_to_the_last_epoch():
    fig = plot_training_history(HISTORY, step_losses={"run": [0.9, 0.7, 0.6, 0.5]})
    steps = fig.axes[0].lines[0]
    assert list(steps.get_xdata()) == [0.5, 1.0, 1.5, 2.0] and list(steps.get_ydata()) == [0.9, 0.7, 0.6, 0.5]


def test_a_history_of_one_epoch_is_drawn_and_an_empty_one_refused():
    fig = plot_training_history(HISTORY[:1])
    assert list(fig.axes[1].lines[0].get_xdata()) == [1]
    with pytest.raises(ValueError, match="at least one epoch"):
        plot_training_history({"loop": []})
    with pytest.raises(ValueError, match="at least one epoch"):
        plot_training_history({"a": HISTORY, "b": []})


@pytest.mark.parametrize("lengths, bins", [([5, 6, 6, 9, 14], 10), (list(range(3, 200)), 60), ([7, 7], 1)])
def test_length_histogram_has_one_bar_per_length_up_to_sixty(lengths, bins):
    ax = plot_length_distribution(lengths)
    assert len(ax.patches) == bins
    assert sum(patch.get_height() for patch in ax.patches) == len(lengths)


def test_length_histogram_reports_the_share_cut_off():
    ax = plot_length_distribution([5, 10, 12, 70], max_length=64)
    assert any("truncates 25.00%" in text.get_text() for text in ax.get_legend().get_texts())
