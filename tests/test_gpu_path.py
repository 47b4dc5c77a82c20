"""The gpu profile's code paths, checked on a CPU: one test per fault found by reading them and by
rehearsing Colab on a CPU (mixed precision, device moves, the T4's bf16, tokenizers, sizes, tolerances)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textclf_utils import compression, config, distill, models, recipes, training


@pytest.fixture(scope="module")
def tiny_bert():
    """A 4-layer BERT classifier small enough to build in milliseconds."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=4,
                                                    num_attention_heads=2, intermediate_size=64)).eval()


# ---- a T4 emulates bf16: the course must pick fp16 + GradScaler there

def test_a_t4_gets_fp16_with_a_scaler(monkeypatch):
    # torch.cuda.is_bf16_supported() answers True on a T4 (sm_75) unless including_emulation=False
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    amp = training.amp_settings("cuda")
    assert (amp.dtype, amp.use_scaler) == (torch.float16, True)


def test_an_ampere_gpu_gets_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert training.amp_settings("cuda") == training.AmpSettings(torch.bfloat16, use_scaler=False)


def test_the_trainer_and_the_students_follow_the_same_choice(monkeypatch, tmp_path):
    from textclf_utils.trainer_recipe import trainer_arguments

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    amp = training.amp_settings("cuda")
    assert amp.dtype == torch.float16
    args = trainer_arguments(str(tmp_path), epochs=1, learning_rate=1e-4, batch_size=8, cuda=False,
                             bf16_supported=False)
    assert not args.bf16 and not args.fp16  # a CPU, no rehearsal: full precision
    monkeypatch.setenv("TEXTCLF_PROFILE", "gpu-cpu")  # the rehearsal: bf16 on the CPU needs use_cpu
    args = trainer_arguments(str(tmp_path), epochs=1, learning_rate=1e-4, batch_size=8, cuda=False)
    assert args.bf16 and args.use_cpu


# ---- notebook 06: an autocast path against an fp32 path needs the dtype's tolerance

def test_bf16_scoring_agrees_with_fp32_within_the_dtype_tolerance(tiny_bert):
    import copy

    trained_like = copy.deepcopy(tiny_bert)  # logits of a trained model's size, not a fresh head's
    with torch.no_grad():
        trained_like.classifier.weight *= 20
    texts = torch.randint(5, 100, (64, 12))
    with torch.no_grad():
        fp32 = trained_like(input_ids=texts).logits.softmax(-1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = trained_like(input_ids=texts).logits.float().softmax(-1)
    gap = (fp32 - bf16).abs().max().item()
    assert gap > 1e-4  # the fixed tolerance notebook 06 had fails under autocast ...
    assert gap <= training.probability_tolerance("bfloat16")  # ... the dtype's does not
    assert training.probability_tolerance("fp32") == 1e-4
    assert training.probability_tolerance(torch.float16) < training.probability_tolerance("bfloat16")


def test_evaluate_classifier_reports_its_precision(tiny_bert, monkeypatch):
    from datasets import ClassLabel, Dataset, Features, Value

    class Words:  # a whitespace tokenizer over ids 5..99, enough for the tiny BERT
        model_max_length = 512
        pad_token_id = 0

        def __call__(self, texts, truncation=True, max_length=None, **kw):
            ids = [[1, *[5 + hash(w) % 90 for w in t.split()][: max_length - 2], 2] for t in texts]
            return {"input_ids": ids, "attention_mask": [[1] * len(i) for i in ids]}

    dataset = Dataset.from_dict({"text": ["a good film", "bad"] * 4, "label": [1, 0] * 4},
                                features=Features({"text": Value("string"), "label": ClassLabel(names=["n", "p"])}))
    monkeypatch.setattr(training, "make_collator", lambda tokenizer, *a, **k: _pad)
    result = training.evaluate_classifier(tiny_bert, Words(), dataset, max_length=16, device="cpu")
    assert result["precision"] == "fp32"
    monkeypatch.setenv("TEXTCLF_PROFILE", "gpu-cpu")
    assert training.evaluate_classifier(tiny_bert, Words(), dataset, max_length=16, device="cpu")["precision"] \
        == "bfloat16"


def _pad(features):
    longest = max(len(f["input_ids"]) for f in features)
    ids = [f["input_ids"] + [0] * (longest - len(f["input_ids"])) for f in features]
    mask = [f["attention_mask"] + [0] * (longest - len(f["attention_mask"])) for f in features]
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask),
            "labels": torch.tensor([f["labels"] for f in features])}


# ---- notebook 06: copies and comparisons on one device (CUDA, or a Mac's MPS)

def test_layer_dropped_copy_lands_on_the_models_device_or_the_one_asked(tiny_bert):
    dropped = distill.layer_dropped_copy(tiny_bert)
    training.assert_on_device(training.module_device(tiny_bert), dropped)
    on_meta = distill.layer_dropped_copy(tiny_bert, device="meta")  # a stand-in for cuda or mps
    training.assert_on_device("meta", on_meta)
    with pytest.raises(AssertionError, match="meta"):
        training.assert_on_device("cpu", on_meta)


def test_predict_logits_runs_where_it_is_told(tiny_bert, monkeypatch):
    seen = []
    original = tiny_bert.forward

    def spy(**inputs):
        seen.extend(v.device.type for v in inputs.values())
        return original(**inputs)

    monkeypatch.setattr(tiny_bert, "forward", spy)

    class Tok:
        def __call__(self, texts, truncation=True, max_length=None):
            return {"input_ids": [[1, 7, 2] for _ in texts], "attention_mask": [[1, 1, 1] for _ in texts]}

        def pad(self, rows, return_tensors="pt"):
            return {k: torch.tensor([r[k] for r in rows]) for k in rows[0]}

    logits = distill.predict_logits(tiny_bert, Tok(), ["x", "y"], max_length=8, device="cpu")
    assert logits.device.type == "cpu" and set(seen) == {"cpu"}


def test_a_module_on_cuda_0_is_on_cuda_and_on_no_other_device():
    from types import SimpleNamespace

    class OnGpu0:  # parameters that say they sit on cuda:0 (no GPU needed to ask where a tensor is)
        def parameters(self):
            return [SimpleNamespace(device=torch.device("cuda", 0))]

        def buffers(self):
            return []

    training.assert_on_device("cuda", OnGpu0())  # "cuda" means the current GPU: cuda:0 matches
    training.assert_on_device("cuda:0", OnGpu0())
    for elsewhere in ("cuda:1", "cpu"):
        with pytest.raises(AssertionError, match=f"item 0 \\(OnGpu0\\) has a tensor on cuda:0, expected {elsewhere}"):
            training.assert_on_device(elsewhere, OnGpu0())


# ---- the gpu recipe must leave SST-2 sentences for notebook 06's held-out and transfer sets

@pytest.mark.parametrize("profile", ["gpu-cpu", "cpu"])  # gpu: counted exactly in test_gpu_plan.py
def test_every_profile_leaves_unused_training_sentences(profile, mirror, monkeypatch):
    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(mirror))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = recipes.finetune_recipe("sst2", config.get_profile(profile))
    unused = recipes.unused_training_sentences(recipe)
    lesson_needs = 2_000 + 8_000  # notebook 06's gpu held-out and transfer sets
    assert len(unused) >= lesson_needs


def test_a_recipe_that_trains_on_every_row_is_refused_with_advice(mirror, monkeypatch):
    import dataclasses

    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(mirror))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    everything = dataclasses.replace(recipes.finetune_recipe("sst2", "gpu"), train_examples=None, min_train_words=0)
    with pytest.raises(ValueError, match="smaller train_examples"):
        recipes.unused_training_sentences(everything)


# ---- the tokenizer must be the model's own; any Hub model id is accepted

@pytest.mark.parametrize("name", ["bert-base-chinese", "xlm-roberta-base", "someone/their-model.v2"])
def test_any_hub_id_is_accepted_and_fails_offline_with_advice(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.OfflineModelError, match="internet"):
        models.resolve_model(name)
    monkeypatch.setattr(models, "hub_is_reachable", lambda *a, **k: True)
    assert models.resolve_model(name) == name


def test_a_model_with_another_models_tokenizer_is_refused(tokenizer):
    from transformers import BertConfig, BertForSequenceClassification

    bert_base_shaped = BertForSequenceClassification(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1,
                                                                num_attention_heads=2, intermediate_size=64))
    bert_base_shaped.name_or_path = "bert-base-uncased"  # what from_pretrained("bert-base-uncased") sets
    with pytest.raises(ValueError, match="tokenizer_for"):
        models.check_tokenizer_matches(bert_base_shaped, tokenizer)
    _, packaged = models.load_classifier(None, ["n", "p"])
    models.check_tokenizer_matches(packaged, tokenizer)
    assert models.tokenizer_for(packaged).name_or_path == tokenizer.name_or_path


def test_the_gpu_recipe_pairs_its_model_and_tokenizer(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = recipes.finetune_recipe("sst2", "gpu")
    tokenizer = models.load_tokenizer(recipe.model, fallback_to_packaged=True)
    _, model = models.load_classifier(recipe.model, ["n", "p"], fallback_to_packaged=True)
    models.check_tokenizer_matches(model, tokenizer)


# ---- the loop-vs-Trainer check: a tolerance from the measured disagreement, not a fixed 0.015

def test_loop_trainer_tolerance_covers_the_noise_of_two_runs():
    from textclf_utils.trainer_recipe import accuracy_difference_tolerance

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 872)
    # Two fine-tuning runs of one recipe: about 94 % accurate each, disagreeing on about 6 % of sentences
    misses = []
    for seed in range(200):
        both_right = rng.random(872) < 0.88  # the easy sentences; on the rest each run guesses
        a = np.where(both_right | (rng.random(872) < 0.5), labels, 1 - labels)
        b = np.where(both_right | (rng.random(872) < 0.5), labels, 1 - labels)
        tolerance = accuracy_difference_tolerance(a, b)
        misses.append(abs((a == labels).mean() - (b == labels).mean()) > tolerance)
    assert np.mean(misses) < 0.02  # a 3-sigma bound is exceeded rarely
    assert accuracy_difference_tolerance(a, b) > 0.015  # the fixed tolerance was inside the noise
    assert accuracy_difference_tolerance(a, a) == pytest.approx(1 / 872)


# ---- the loop keeps a GPU fed

def test_cuda_loaders_pin_memory_and_use_workers():
    assert training.loader_settings("cuda")["pin_memory"] is True
    assert training.loader_settings("cpu") == {}


def test_distillation_teacher_runs_in_the_students_precision(tiny_bert, monkeypatch):
    monkeypatch.setenv("TEXTCLF_PROFILE", "gpu-cpu")  # autocast forced on, on the CPU
    dtypes = []
    tiny_bert.bert.encoder.layer[0].register_forward_hook(
        lambda module, args, output: dtypes.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu")
                                                   else None))
    loss = distill.DistillationLoss(tiny_bert)
    inputs = {"input_ids": torch.randint(5, 100, (4, 6)), "attention_mask": torch.ones(4, 6, dtype=torch.long)}
    loss(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), inputs=inputs)
    assert dtypes == [torch.bfloat16]


# ---- the rehearsal profile, and the T4 estimates

def test_the_rehearsal_takes_gpu_branches_at_smoke_scale(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rehearsal = config.get_profile("gpu-cpu")
    assert (rehearsal.name, rehearsal.scale, rehearsal.rehearsal) == ("gpu", "smoke", True)
    recipe, smoke = recipes.finetune_recipe("sst2", rehearsal), recipes.finetune_recipe("sst2", "smoke")
    assert recipe.profile == "gpu" and recipe.max_length == config.get_profile("gpu").max_length
    assert (recipe.train_examples, recipe.epochs, recipe.batch_size) == (smoke.train_examples, smoke.epochs,
                                                                        smoke.batch_size)
    monkeypatch.setenv("TEXTCLF_PROFILE", "gpu-cpu")
    assert training.amp_settings("cpu").dtype == torch.bfloat16
    monkeypatch.setenv("TEXTCLF_PROFILE", "gpu")
    assert training.amp_settings("cpu").dtype is None


@pytest.mark.parametrize("notebook", ["03_finetune_bert", "04_evaluation_metrics", "05_imbalanced_data",
                                      "06_knowledge_distillation"])
def test_each_notebook_fits_twenty_t4_minutes(notebook):
    from textclf_utils import gpu_plan

    assert gpu_plan.t4_minutes(notebook) <= 20
    assert "estimated" in gpu_plan.t4_estimate_line(notebook)


def test_train_student_trains_in_the_mixed_precision_of_the_loop(tiny_bert, tokenizer, monkeypatch):
    from datasets import Dataset

    tiny_bert.resize_token_embeddings(len(tokenizer))  # the student must fit the tokenizer
    seen = []
    monkeypatch.setattr(distill.DistillationTrainer, "train", lambda self, *a, **k: seen.append(self.args))
    monkeypatch.setenv("TEXTCLF_PROFILE", "gpu-cpu")  # the rehearsal: bf16 autocast on the CPU, as on a GPU
    data = Dataset.from_dict({"text": ["a good film", "bad"], "label": [1, 0]})
    distill.train_student(tiny_bert, tokenizer, data, alpha=1.0, temperature=1.0, epochs=1, learning_rate=1e-3,
                          batch_size=2, max_length=8, progress=False)
    assert seen and seen[0].bf16 and not seen[0].fp16


def test_a_student_trained_in_mixed_precision_computes_in_float32_afterwards(tokenizer, monkeypatch):
    from datasets import Dataset
    from transformers import BertConfig, BertForSequenceClassification

    monkeypatch.setenv("TEXTCLF_PROFILE", "gpu-cpu")  # bf16 autocast in training, as on a GPU
    student = BertForSequenceClassification(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                                       num_attention_heads=2, intermediate_size=64))
    data = Dataset.from_dict({"text": ["a good film", "bad"] * 4, "label": [1, 0] * 4})
    distill.train_student(student, tokenizer, data, alpha=1.0, temperature=1.0, epochs=1, learning_rate=1e-3,
                          batch_size=4, max_length=8, progress=False)
    monkeypatch.delenv("TEXTCLF_PROFILE")
    inputs = tokenizer(["a good film"], return_tensors="pt")
    assert compression.quantize_int8(student)(**inputs).logits.dtype == torch.float32  # failed: bf16 into int8 layers
