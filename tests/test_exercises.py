"""The do-along checks: right answers pass, typical wrong answers (written here the way a learner would
write them) fail with the hint that names the mistake, and stubs report "not done yet"."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import precision_recall_fscore_support

from textclf_utils import exercises, imbalance, metrics, training


# ---------------------------------------------------------------------------------------------
# Learners' answers, right and wrong


def attention_right(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def attention_no_transpose(q, k, v, mask=None):
    weights = torch.softmax(q @ k / math.sqrt(q.size(-1)), dim=-1)
    return weights @ v, weights


def attention_unscaled(q, k, v, mask=None):
    scores = torch.matmul(q, k.transpose(2, 3))
    if mask is not None:
        scores = scores.masked_fill(mask == 0, -1e9)
    weights = F.softmax(scores, dim=3)
    return torch.matmul(weights, v), weights


def attention_mask_ignored(q, k, v, mask=None):
    weights = (q @ k.mT / q.shape[-1] ** 0.5).softmax(-1)
    return weights @ v, weights


def padding_mask_flat(attention_mask):
    return attention_mask == 1


def padding_mask_rows(attention_mask):
    return attention_mask.bool().unsqueeze(1).unsqueeze(-1)


def split_heads_view_only(x, num_heads):
    b, l, h = x.shape
    return x.reshape(b, num_heads, l, h // num_heads)


def split_heads_right(x, num_heads):
    b, l, h = x.shape
    return x.reshape(b, l, num_heads, h // num_heads).permute(0, 2, 1, 3)


def merge_heads_no_transpose(x):
    b, h, l, d = x.shape
    return x.contiguous().view(b, l, h * d)


def merge_heads_view(x):
    b, h, l, d = x.shape
    return x.permute(0, 2, 1, 3).view(b, l, h * d)


def block_pre_ln(block, x, mask=None):
    attended, weights = block.attention(block.attention_norm(x), mask)
    x = x + attended
    return x + block.feed_forward(block.output_norm(x)), weights


def block_no_residual(block, x, mask=None):
    attended, weights = block.attention(x, mask)
    x = block.attention_norm(attended)
    return block.output_norm(block.feed_forward(x)), weights


def block_without_dropout(block, x, mask=None):
    attended, weights = block.attention(x, mask)
    x = block.attention_norm(x + attended)
    return block.output_norm(x + block.feed_forward(x)), weights


def block_right(block, x, mask=None):
    attended, weights = block.attention(x, mask)
    x = block.attention_norm(x + block.dropout(attended))
    return block.output_norm(x + block.dropout(block.feed_forward(x))), weights


def step_right(model, batch, optimizer, scheduler, max_grad_norm=1.0):
    optimizer.zero_grad()
    output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    loss = F.cross_entropy(output.logits, batch["labels"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    return loss.item()


def step_with_the_models_own_loss(model, batch, optimizer, scheduler, max_grad_norm=1.0):
    loss = model(**batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    return loss.item()


def step_scheduler_first(model, batch, optimizer, scheduler, max_grad_norm=1.0):
    optimizer.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scheduler.step()
    optimizer.step()
    return loss.item()


def step_no_zero_grad(model, batch, optimizer, scheduler, max_grad_norm=1.0):
    loss = F.cross_entropy(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                           batch["labels"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    return loss.item()


def step_clip_after(model, batch, optimizer, scheduler, max_grad_norm=1.0):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                           batch["labels"])
    loss.backward()
    optimizer.step()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scheduler.step()
    return loss.item()


def step_no_scheduler(model, batch, optimizer, scheduler, max_grad_norm=1.0):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                           batch["labels"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item()


def step_returns_tensor(model, batch, optimizer, scheduler, max_grad_norm=1.0):
    optimizer.zero_grad()
    loss = F.cross_entropy(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                           batch["labels"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    scheduler.step()
    return loss


def prf_transposed(confusion):
    tp = np.diag(confusion)
    precision = tp / np.maximum(confusion.sum(axis=1), 1)
    recall = tp / np.maximum(confusion.sum(axis=0), 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    return precision, recall, f1


def prf_nan(confusion):
    tp = np.diag(confusion).astype(float)
    precision = tp / confusion.sum(axis=0)
    recall = tp / confusion.sum(axis=1)
    return precision, recall, 2 * precision * recall / (precision + recall)


def prf_arithmetic_f1(confusion):
    tp = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = tp / confusion.sum(axis=1)
    return precision, recall, (precision + recall) / 2


def weights_inverse(counts, beta):
    w = 1 / torch.as_tensor(counts, dtype=torch.float32)
    return w / w.mean()


def weights_unnormalised(counts, beta):
    return torch.tensor((1 - beta) / (1 - np.power(beta, counts)), dtype=torch.float32)


def weights_effective_number(counts, beta):
    effective = (1 - beta ** np.asarray(counts, dtype=float)) / (1 - beta)
    return torch.tensor(effective / effective.mean(), dtype=torch.float32)


def weights_power_swapped(counts, beta):
    raw = (1 - beta) / (1 - np.asarray(counts, dtype=float) ** beta)
    return torch.tensor(raw / raw.mean(), dtype=torch.float32)


def weights_as_numpy(counts, beta):
    raw = (1 - beta) / (1 - np.power(beta, np.asarray(counts, dtype=float)))
    return raw / raw.mean()


def focal_p_gamma(logits, labels, gamma=2.0):
    p = logits.softmax(-1).gather(1, labels[:, None]).squeeze(1)
    return (-(p ** gamma) * p.log()).mean()


def focal_summed(logits, labels, gamma=2.0):
    log_p = logits.log_softmax(-1)[torch.arange(len(labels)), labels]
    return (-(1 - log_p.exp()) ** gamma * log_p).sum()


def focal_from_mean_cross_entropy(logits, labels, gamma=2.0):
    ce = F.cross_entropy(logits, labels)
    return (1 - torch.exp(-ce)) ** gamma * ce


def focal_returns_a_number(logits, labels, gamma=2.0):
    return focal_right(logits, labels, gamma).item()


def focal_right(logits, labels, gamma=2.0):
    ce = F.cross_entropy(logits, labels, reduction="none")
    return ((1 - torch.exp(-ce)) ** gamma * ce).mean()


def kd_no_t_squared(student_logits, teacher_logits, labels, alpha=0.5, temperature=2.0):
    soft = F.kl_div(F.log_softmax(student_logits / temperature, -1), F.softmax(teacher_logits / temperature, -1),
                    reduction="batchmean")
    return alpha * F.cross_entropy(student_logits, labels) + (1 - alpha) * soft


def kd_probabilities_into_kl_div(student_logits, teacher_logits, labels, alpha=0.5, temperature=2.0):
    soft = F.kl_div(F.softmax(student_logits / temperature, -1), F.softmax(teacher_logits / temperature, -1),
                    reduction="batchmean")
    return alpha * F.cross_entropy(student_logits, labels) + (1 - alpha) * temperature ** 2 * soft


def kd_right(student_logits, teacher_logits, labels, alpha=0.5, temperature=2.0):
    teacher = F.softmax(teacher_logits / temperature, -1)
    kl = (teacher * (teacher.log() - F.log_softmax(student_logits / temperature, -1))).sum(-1).mean()
    return alpha * F.cross_entropy(student_logits, labels) + (1 - alpha) * temperature ** 2 * kl


RIGHT = {
    "scaled_dot_product_attention": attention_right, "split_heads": split_heads_right,
    "encoder_block_forward": block_right, "training_step": step_with_the_models_own_loss, "focal_loss": focal_right,
    "distillation_loss": kd_right,
}

# (exercise, a learner's wrong answer, words the hint must contain)
WRONG = [
    ("scaled_dot_product_attention", attention_no_transpose, "transpose K"),
    ("scaled_dot_product_attention", attention_unscaled, "√d_k"),
    ("scaled_dot_product_attention", attention_mask_ignored, "masked keys still get weight"),
    ("padding_mask", padding_mask_flat, "(B, 1, 1, L)"),
    ("padding_mask", padding_mask_rows, "masks queries"),
    ("split_heads", split_heads_view_only, "transpose(1, 2)"),
    ("merge_heads", merge_heads_no_transpose, "transpose(1, 2) back"),
    ("merge_heads", merge_heads_view, "no longer contiguous"),
    ("encoder_block_forward", block_pre_ln, "pre-LN"),
    ("encoder_block_forward", block_no_residual, "residual connection is missing"),
    ("encoder_block_forward", block_without_dropout, "block.dropout"),
    ("training_step", step_no_zero_grad, "zero_grad"),
    ("training_step", step_scheduler_first, "then scheduler.step()"),
    ("training_step", step_clip_after, "clip_grad_norm_"),
    ("training_step", step_no_scheduler, "scheduler.step()"),
    ("training_step", step_returns_tensor, "loss.item()"),
    ("precision_recall_f1", prf_transposed, "column sums"),
    ("precision_recall_f1", prf_nan, "zero_division=0"),
    ("precision_recall_f1", prf_arithmetic_f1, "harmonic mean"),
    ("effective_number_weights", weights_inverse, "inverse-frequency"),
    ("effective_number_weights", weights_as_numpy, "float32 torch tensor"),
    ("effective_number_weights", weights_power_swapped, "β ** n"),
    ("effective_number_weights", weights_unnormalised, "average 1"),
    ("effective_number_weights", weights_effective_number, "rare classes must get the larger weights"),
    ("focal_loss", focal_p_gamma, "(1 − p_true)^γ"),
    ("focal_loss", focal_summed, "mean"),
    ("focal_loss", focal_from_mean_cross_entropy, "reduction='none'"),
    ("focal_loss", focal_returns_a_number, "not .item()"),
    ("distillation_loss", kd_no_t_squared, "T² factor"),
    ("distillation_loss", kd_probabilities_into_kl_div, "log-probabilities"),
]


# ---------------------------------------------------------------------------------------------
# The checks


@pytest.mark.parametrize("name", sorted(exercises.EXERCISES))
def test_each_reference_passes_its_own_check(name):
    assert exercises.evaluate(name, exercises.EXERCISES[name].reference).passed


@pytest.mark.parametrize("name", sorted(RIGHT))
def test_a_right_answer_written_differently_passes(name):
    outcome = exercises.evaluate(name, RIGHT[name])
    assert outcome.passed, outcome.message


@pytest.mark.parametrize("name,wrong,hint", WRONG, ids=[f"{n}-{w.__name__}" for n, w, _ in WRONG])
def test_a_typical_wrong_answer_gets_the_hint_that_names_it(name, wrong, hint):
    outcome = exercises.evaluate(name, wrong)
    assert outcome.status == exercises.FAILED
    assert hint in outcome.message, outcome.message


def test_every_exercise_catches_at_least_two_typical_mistakes_with_distinct_hints():
    for name, exercise in exercises.EXERCISES.items():
        hints = {exercises.evaluate(name, mistake.wrong).message.split("Hint: ")[-1] for mistake in exercise.mistakes}
        assert len(exercise.mistakes) >= 2 and len(hints) == len(exercise.mistakes), name


def test_there_are_at_least_nine_exercises_over_notebooks_01_to_06():
    notebooks = {exercise.notebook[:2] for exercise in exercises.EXERCISES.values()}
    assert len(exercises.EXERCISES) >= 9 and notebooks == {"01", "02", "03", "04", "05", "06"}


def test_a_stub_is_not_done_yet_and_the_lesson_goes_on_with_the_reference(capsys):
    def focal_loss(logits, labels, gamma=2.0):
        raise NotImplementedError()

    assert exercises.evaluate("focal_loss", focal_loss).status == exercises.NOT_DONE
    assert exercises.check("focal_loss", focal_loss) is imbalance.focal_loss
    printed = capsys.readouterr().out
    assert "not done yet" in printed and "textclf_utils.imbalance.focal_loss" in printed


def test_a_passing_function_is_the_one_the_lesson_goes_on_with(capsys):
    assert exercises.check("focal_loss", focal_right) is focal_right
    assert "passes every check (with γ = 2 on 6 examples of 3 classes; with γ = 0.5)" in capsys.readouterr().out


def test_a_wrong_answer_prints_the_hint_and_gives_back_the_reference(capsys):
    assert exercises.check("distillation_loss", kd_no_t_squared) is exercises.EXERCISES["distillation_loss"].reference
    printed = capsys.readouterr().out
    assert printed.startswith("✘ distillation_loss") and "T² factor" in printed and "fix your cell" in printed


def test_an_error_in_the_learners_code_is_reported_not_raised():
    def split_heads(x, num_heads):
        return x.view(x.shape[0], num_heads, -1, 7)

    outcome = exercises.evaluate("split_heads", split_heads)
    assert outcome.status == exercises.FAILED and "RuntimeError" in outcome.message


def test_a_learners_function_that_exits_is_a_failed_exercise_not_the_end_of_grading():
    def padding_mask(attention_mask):
        raise SystemExit("bye")

    outcome = exercises.evaluate("padding_mask", padding_mask)
    assert outcome.status == exercises.FAILED and "SystemExit" in outcome.message


def test_a_loss_off_by_a_little_is_caught():
    def training_step(model, batch, optimizer, scheduler, max_grad_norm=1.0):
        return step_right(model, batch, optimizer, scheduler, max_grad_norm) + 0.01

    outcome = exercises.evaluate("training_step", training_step)
    assert outcome.status == exercises.FAILED and "returned the loss" in outcome.message


def test_nan_in_the_same_places_compares_equal_and_elsewhere_does_not():
    reference = torch.tensor([1.0, float("nan"), 3.0])
    assert exercises._compare_tensor(reference.clone(), reference) is None
    assert "NaN" in exercises._compare_tensor(torch.tensor([float("nan"), 2.0, 3.0]), reference)
    assert "differs" in exercises._compare_tensor(torch.tensor([1.0, float("nan"), 4.0]), reference)


def test_stopping_the_check_by_hand_is_not_swallowed():
    def padding_mask(attention_mask):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        exercises.evaluate("padding_mask", padding_mask)


def test_something_that_is_not_a_function_is_explained():
    outcome = exercises.evaluate("padding_mask", None)
    assert outcome.status == exercises.FAILED and "not a function" in outcome.message


def test_an_unknown_exercise_names_the_known_ones():
    with pytest.raises(ValueError, match="scaled_dot_product_attention"):
        exercises.evaluate("attention", attention_right)


def test_the_check_does_not_change_the_learners_inputs():
    case_args, _ = exercises.EXERCISES["training_step"].cases()[0]
    model = case_args[0]
    before = [p.detach().clone() for p in model.parameters()]
    exercises.EXERCISES["training_step"].call(step_right, case_args, {"max_grad_norm": 0.5})
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("value", ["1", "yes"])
def test_under_an_autograder_a_failed_check_raises(monkeypatch, value):
    monkeypatch.setenv(exercises.GRADING_ENV, value)
    with pytest.raises(exercises.ExerciseNotPassed, match="T² factor"):
        exercises.check("distillation_loss", kd_no_t_squared)
    assert exercises.check("distillation_loss", kd_right) is kd_right


def test_grading_off_when_the_variable_is_0(monkeypatch):
    monkeypatch.setenv(exercises.GRADING_ENV, "0")
    assert exercises.check("distillation_loss", kd_no_t_squared) is exercises.EXERCISES["distillation_loss"].reference


# ---------------------------------------------------------------------------------------------
# The references the lessons fall back on


def test_precision_recall_f1_equals_scikit_learn_with_zero_division_0():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 3, 200)  # class 3 is never predicted
    confusion = metrics.confusion_counts(y_true, y_pred, 4)
    ours = metrics.precision_recall_f1(confusion)
    theirs = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)[:3]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError, match="square"):
        metrics.precision_recall_f1(np.ones((2, 3)))


def test_effective_number_weights_limits_and_class_weights_agree():
    counts = np.array([900, 90, 9])
    np.testing.assert_allclose(imbalance.effective_number_weights(counts, 0.0), np.ones(3))
    inverse = 1 / counts
    np.testing.assert_allclose(imbalance.effective_number_weights(counts, 0.999999), inverse / inverse.mean(), rtol=1e-3)
    labels = np.repeat([0, 1, 2], counts)
    assert torch.equal(imbalance.class_weights(labels, 3, "effective", 0.99),
                       imbalance.effective_number_weights(counts, 0.99))
    with pytest.raises(ValueError, match="positive count"):
        imbalance.effective_number_weights([5, 0], 0.9)
    with pytest.raises(ValueError, match="beta"):
        imbalance.effective_number_weights([5, 3], 1.0)


def test_focal_loss_with_gamma_0_is_cross_entropy_and_matches_the_module():
    logits, labels = torch.randn(10, 3), torch.randint(0, 3, (10,))
    assert torch.allclose(imbalance.focal_loss(logits, labels, 0.0), F.cross_entropy(logits, labels))
    weight = torch.tensor([0.25, 1.0, 2.0])
    assert torch.allclose(imbalance.focal_loss(logits, labels, 2.0, weight), imbalance.FocalLoss(2.0, weight)(logits, labels))


def test_training_step_follows_the_warm_up_schedule_and_moves_the_weights():
    args, kwargs = exercises.EXERCISES["training_step"].cases()[0]
    model, batches, optimizer, scheduler = args
    weights = lambda: torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
    start = weights()
    loss = training.training_step(model, batches[0], optimizer, scheduler, **kwargs)
    assert isinstance(loss, float) and loss > 0
    assert torch.equal(weights(), start)  # the first step of warm-up has learning rate 0
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    training.training_step(model, batches[1], optimizer, scheduler, **kwargs)
    assert (weights() - start).abs().max() > 0.01


# ---------------------------------------------------------------------------------------------
# Grading a notebook


def _notebook(cells):
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _exercise_cell(name, source):
    return {"cell_type": "code", "source": source, "outputs": [], "execution_count": None,
            "metadata": {"tags": ["exercise"], "nbgrader": {"grade_id": name, "solution": True}}}


def test_grade_notebook_runs_only_the_exercise_cells(tmp_path):
    right = ("def distillation_loss(student_logits, teacher_logits, labels, alpha=0.5, temperature=2.0):\n"
             "    t = temperature\n"
             "    soft = F.kl_div(F.log_softmax(student_logits / t, -1), F.softmax(teacher_logits / t, -1),"
             " reduction='batchmean')\n"
             "    return alpha * F.cross_entropy(student_logits, labels) + (1 - alpha) * t * t * soft\n")
    stub = "def focal_loss(logits, labels, gamma=2.0):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n"
    cells = [{"cell_type": "code", "source": "raise SystemExit('the rest of the notebook is not run')",
              "outputs": [], "execution_count": None, "metadata": {}},
             _exercise_cell("distillation_loss", right), _exercise_cell("focal_loss", stub),
             _exercise_cell("padding_mask", "def padding_mask(attention_mask)\n    return 1\n"),
             _exercise_cell("merge_heads", "def merge(x):\n    return x\n")]
    path = tmp_path / "submission.ipynb"
    path.write_text(json.dumps(_notebook(cells)))
    outcomes = {o.exercise: o for o in exercises.grade_notebook(path)}
    assert outcomes["distillation_loss"].passed
    assert outcomes["focal_loss"].status == exercises.NOT_DONE
    assert "SyntaxError" in outcomes["padding_mask"].message
    assert "no function named merge_heads" in outcomes["merge_heads"].message


def test_grade_notebook_refuses_what_is_not_a_notebook(tmp_path):
    path = tmp_path / "essay.ipynb"
    path.write_text("not json")
    with pytest.raises(ValueError, match="Cannot read the notebook"):
        exercises.grade_notebook(path)
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a Jupyter notebook"):
        exercises.grade_notebook(path)
    path.write_text(json.dumps(_notebook([_exercise_cell("attention", "x = 1")])))
    with pytest.raises(ValueError, match="no known exercise"):
        exercises.grade_notebook(path)
