"""The T4 estimate of the gpu profile: the formula of gpu_plan's docstring, and its inputs from the data."""

import pytest

from textclf_utils import gpu_plan
from textclf_utils.gpu_plan import Work


def test_a_training_pass_costs_six_flops_per_weight_and_token_plus_a_cost_per_step():
    work = Work("x", parameters=110e6, examples=3_200, tokens=32, batch_size=32)
    compute = 6 * 110e6 * 3_200 * 32 / (65e12 * 0.12)
    per_step = 0.015 + 0.045 / 110e6 * 110e6  # launches, then AdamW in proportion to the weights
    assert work.seconds() == pytest.approx(compute + 100 * per_step, rel=1e-12)


def test_scoring_costs_two_flops_per_weight_and_token_and_no_optimizer_steps():
    work = Work("x", parameters=110e6, examples=3_200, tokens=32, batch_size=32, train=False)
    assert work.seconds() == pytest.approx(2 * 110e6 * 3_200 * 32 / (65e12 * 0.12), rel=1e-12)


def test_work_on_colabs_cpu_runs_at_the_cpu_rate_plus_its_step_cost():
    work = Work("x", parameters=1_536, examples=6_400, tokens=1, batch_size=64, on_cpu=True, cpu_step_s=0.5e-3)
    assert work.seconds() == pytest.approx(6 * 1_536 * 6_400 / 50e9 + 0.5e-3 * 100, rel=1e-12)


def test_notebook_minutes_add_the_set_up_to_the_work(monkeypatch):
    monkeypatch.setitem(gpu_plan.NOTEBOOK_WORK, "99_example", [
        Work("a: 60 s", 1.0, 1.0, train=False), Work("b, unless notebook 03 cached it", 1.0, 1.0, train=False)])
    monkeypatch.setattr(Work, "seconds", lambda self: 60.0 if self.what.startswith("a") else 120.0)
    assert gpu_plan.t4_minutes("99_example") == gpu_plan.SETUP_MINUTES + 3.0
    assert gpu_plan.t4_minutes("99_example", with_cached_teacher=True) == gpu_plan.SETUP_MINUTES + 1.0
    assert gpu_plan.t4_estimate_line("99_example").startswith("about 4 min (2 min with notebook 03's models cached)")
    assert gpu_plan.t4_minutes("01_attention_math") == 0.0
    assert gpu_plan.t4_estimate_line("01_attention_math").startswith("no fine-tuning here")


def test_the_transfer_set_of_notebook_06_is_counted_from_the_data(mirror, monkeypatch):
    from textclf_utils import distill, recipes

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the sizes do not depend on the model
    recipe = recipes.finetune_recipe("sst2", "gpu")
    train = recipes.finetuning_data(recipe)["train"]
    assert len(train) == gpu_plan.GPU_SST2_SENTENCES
    assert len(recipes.unused_training_sentences(recipe, min_words=10)) == gpu_plan.GPU_UNUSED_SENTENCES
    assert gpu_plan.GPU_UNUSED_SENTENCES >= 2_000 + 8_000  # enough for notebook 06's held-out and transfer sets
    assert len(distill.augment_texts(train["text"], copies=1, seed=recipe.seed)) == gpu_plan.GPU_AUGMENTED_COPIES
