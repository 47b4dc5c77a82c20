"""The T4 estimate of the gpu profile: the formula of gpu_plan's docstring, and its inputs from the data."""

import ast
import json
from pathlib import Path

import pytest
import torch

from textclf_utils import gpu_plan, imbalance, recipes
from textclf_utils.gpu_plan import Work

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


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
    monkeypatch.setattr(Work, "seconds", lambda self: 60.0 if self.what.startswith("a") else 61.0)
    assert "(2 min with notebook 03's models cached)" in gpu_plan.t4_estimate_line("99_example")  # 1 min less: said
    monkeypatch.setattr(Work, "seconds", lambda self: 60.0 if self.what.startswith("a") else 20.0)
    assert gpu_plan.t4_estimate_line("99_example").startswith("about 3 min, estimated")  # 20 s less: not worth it
    assert gpu_plan.t4_minutes("01_attention_math") == 0.0
    assert gpu_plan.t4_estimate_line("01_attention_math").startswith("no fine-tuning here")


def test_the_transfer_set_of_notebook_06_is_counted_from_the_data(mirror, monkeypatch):
    from textclf_utils import distill

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the sizes do not depend on the model
    recipe = recipes.finetune_recipe("sst2", "gpu")
    train = recipes.finetuning_data(recipe)["train"]
    assert len(train) == gpu_plan.GPU_SST2_SENTENCES
    assert len(recipes.unused_training_sentences(recipe, min_words=10)) == gpu_plan.GPU_UNUSED_SENTENCES
    assert gpu_plan.GPU_UNUSED_SENTENCES >= 2_000 + 8_000  # enough for notebook 06's held-out and transfer sets
    assert len(distill.augment_texts(train["text"], copies=1, seed=recipe.seed)) == gpu_plan.GPU_AUGMENTED_COPIES


def _gpu_sizes(notebook: str, name: str) -> dict:
    """The ``"gpu"`` entry of the ``name = {...}[profile.scale]`` dictionary in a notebook's code."""
    cells = json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if cell["cell_type"] != "code" or f"{name} = {{" not in "".join(cell["source"]):
            continue
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
                table = node.value.value
                gpu = table.values[[ast.literal_eval(k) for k in table.keys].index("gpu")]
                return {k.arg: ast.literal_eval(k.value) for k in gpu.keywords}
    raise AssertionError(f"no {name} dictionary in {notebook}")


def test_the_plan_uses_the_sizes_notebooks_05_and_06_set_for_the_gpu_profile():
    sizes = _gpu_sizes("05_imbalanced_data", "SIZES")
    assert sizes["balanced_test"] is sizes["sms_train"] is sizes["sms_eval"] is None  # whole splits
    for key, planned in gpu_plan.LESSON_05.items():
        assert planned == (len(sizes[key]) if isinstance(sizes[key], list) else sizes[key]), key
    lesson = _gpu_sizes("06_knowledge_distillation", "LESSON")
    assert lesson["unused_examples"] is None and lesson["augment_copies"] == 1  # as GPU_TRANSFER_TEXTS counts them
    assert lesson["student_layers"] == 2 and lesson["teacher_int8"] is False  # BERT_BASE_2_LAYERS; no int8 teacher
    for key, planned in gpu_plan.LESSON_06.items():
        value = lesson[key]
        assert planned == (tuple(value) if key == "hard_epochs" else len(value) if isinstance(value, list) else value), key
    assert gpu_plan.HEAD_REMEDIES == len(imbalance.REMEDIES)


def test_the_plan_uses_the_fine_tuning_sets_of_the_gpu_recipes(mirror, monkeypatch):
    from textclf_utils.data import load_course_dataset

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name, planned in (("sst2", gpu_plan.SST2), ("emotion", gpu_plan.EMOTION)):
        recipe = recipes.finetune_recipe(name, "gpu")
        splits = {split: len(ds) for split, ds in recipes.finetuning_data(recipe).items()}
        assert planned == {**splits, "epochs": recipe.epochs}, name
        assert recipe.batch_size == Work.batch_size, name  # the table's default batch
    assert gpu_plan.SMS_SPAM == {split: len(ds) for split, ds in load_course_dataset("sms_spam").items()}


def test_the_work_table_counts_each_run_of_the_notebooks():
    # Examples through a model, worked out by hand from the sizes above (11,000 SST-2 sentences, 2 epochs; emotion
    # 16,000 tweets, 2 epochs; validation/test: SST-2 1,000/872, emotion 2,000/2,000).
    expected = {
        "03_finetune_bert": [
            2 * 11_000, 2 * 11_000, 2 * 16_000,  # the loop, the Trainer, emotion
            2 * (2 * 1_000 + 2_000) + 2 * 872 + 2_000],  # validation each epoch; the test sets
        "04_evaluation_metrics": [2 * 11_000, 2 * 16_000, 1_000 + 872 + 2_000 + 2_000],
        "05_imbalanced_data": [
            3_000 + 1_500 + 3_000 + 872 + 1.3 * 5_160,  # sentence vectors
            64 * ((6 * 5 + 8) * (40 * 47 + 40 * 65) + 6 * 2 * 40 * 47),  # heads: 40 epochs of 47 / 65 batches
            2 * 3 * 3_000 * 3, 2 * 3 * (1_500 + 3_000 + 872), 4 * 32],  # fine-tuning, its scoring, the appendix
        "06_knowledge_distillation": [
            2 * 11_000,  # the teacher, unless cached
            11_000 + 19_907,  # teacher logits on the labelled and transfer sets
            (2 + 4 + 2 * 4) * 11_000,  # hard labels: 2 and 4 passes for seed 0, then 4 (at most) for 2 seeds
            (3 + 2 + 3) * (11_000 + 19_907),  # 3 temperatures, 2 more soft seeds, 3 argmax seeds
            (2 + 2 + 3 + 9) * 1_000 + 9 * 872,  # untrained copies, choices and students on validation; students on test
            1_000 + 872,  # the teacher on validation and test
            1_000 + 3 * (128 + 32),  # its CPU benchmark: accuracy, then 2 repeats + a warm-up
            6 * (1_000 + 3 * (128 + 32)) + 872,  # 6 students' benchmarks; the final student on test
            2_000],  # the emotion teacher
    }
    assert {notebook: [w.examples for w in work] for notebook, work in gpu_plan.NOTEBOOK_WORK.items()} == expected
    batches = {notebook: [w.batch_size for w in work if w.train] for notebook, work in gpu_plan.NOTEBOOK_WORK.items()}
    assert batches == {"03_finetune_bert": [32, 32, 32], "04_evaluation_metrics": [32, 32],
                       "05_imbalanced_data": [64, 32, 32], "06_knowledge_distillation": [32, 64, 64]}
    on_cpu = {notebook: [w.what for w in work if w.on_cpu] for notebook, work in gpu_plan.NOTEBOOK_WORK.items()}
    assert {notebook: len(works) for notebook, works in on_cpu.items()} == {
        "03_finetune_bert": 0, "04_evaluation_metrics": 0, "05_imbalanced_data": 1, "06_knowledge_distillation": 2}
    assert all("CPU benchmark" in what for what in on_cpu["06_knowledge_distillation"])
    assert on_cpu["05_imbalanced_data"][0].startswith("logistic-regression heads")
    trained = {notebook: [w.train for w in work] for notebook, work in gpu_plan.NOTEBOOK_WORK.items()}
    assert trained == {"03_finetune_bert": [True, True, True, False], "04_evaluation_metrics": [True, True, False],
                       "05_imbalanced_data": [False, True, True, False, True],
                       "06_knowledge_distillation": [True, False, True, True, False, False, False, False, False]}


def test_the_parameter_counts_are_those_of_bert_base_and_its_two_layer_student():
    from transformers import BertConfig, BertForSequenceClassification

    for layers in (12, 2):
        with torch.device("meta"):  # shapes only: nothing is allocated
            model = BertForSequenceClassification(BertConfig(num_hidden_layers=layers, num_labels=2))
        embeddings = sum(p.numel() for p in model.bert.embeddings.parameters())
        computing = sum(p.numel() for p in model.parameters()) - embeddings
        assert gpu_plan.bert_parameters(layers) == (embeddings, computing)
    assert gpu_plan.BERT_BASE == 109_483_778 and gpu_plan.BERT_BASE_2_LAYERS == 38_605_058
    assert gpu_plan.STUDENT_COMPUTING_WEIGHTS == 38_605_058 - 23_837_184
