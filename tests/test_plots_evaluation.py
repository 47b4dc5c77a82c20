"""The evaluation plots draw what the metrics compute."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from textclf_utils import metrics, plots  # noqa: E402


@pytest.fixture
def three_class():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    prob = rng.dirichlet([1, 1, 1], 300)
    prob[np.arange(300), y] += 0.5
    return y, prob / prob.sum(axis=1, keepdims=True)


def test_confusion_matrices_show_counts_then_recall(three_class):
    y, prob = three_class
    fig = plots.plot_confusion_matrices(y, prob.argmax(1), ["a", "b", "c"])
    counts_ax, share_ax = fig.axes[:2]
    expected = metrics.confusion_counts(y, prob.argmax(1), 3)
    assert [t.get_text() for t in counts_ax.texts] == [str(v) for v in expected.ravel()]
    assert "share" in share_ax.get_title()


def test_curves_have_one_line_per_class_or_the_positive_class(three_class):
    y, prob = three_class
    fig = plots.plot_roc_and_pr_curves(y, prob, ["a", "b", "c"])
    assert len(fig.axes[1].get_lines()) == 3
    binary = plots.plot_roc_and_pr_curves((y > 0).astype(int), np.c_[prob[:, 0], 1 - prob[:, 0]], ["no", "yes"])
    assert "yes" in binary.axes[1].get_legend().get_texts()[0].get_text()


def test_reliability_diagram_reports_the_ece(three_class):
    y, prob = three_class
    ax = plots.plot_reliability_diagram(y, prob, n_bins=10, label="toy")
    ece = metrics.expected_calibration_error(y, prob, 10)
    assert f"ECE {ece:.3f}" in ax.get_legend().get_texts()[1].get_text()


def test_reliability_diagrams_share_one_axes_and_one_diagonal(three_class):
    y, prob = three_class
    ax = plots.plot_reliability_diagram(y, prob, label="first")
    sharper = prob ** 3 / (prob ** 3).sum(axis=1, keepdims=True)
    plots.plot_reliability_diagram(y, sharper, ax=ax, label="second")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0] == "perfectly calibrated" and len(texts) == 3
    assert f"ECE {metrics.expected_calibration_error(y, sharper):.3f}" in texts[2]
