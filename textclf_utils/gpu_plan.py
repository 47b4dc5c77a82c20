"""What each notebook does in the ``gpu`` profile, and how long that takes on a Colab T4 (estimated).

The estimate is published T4 throughput scaled by FLOPs, not a measurement: NVIDIA's T4 datasheet gives
65 TFLOP/s for fp16 on its tensor cores; fine-tuning a BERT with short, dynamically padded batches uses a
small share of that (``T4_UTILISATION``), and each optimisation step also costs time for kernel launches
(``LAUNCH_S``) and for the optimizer, in proportion to the parameters (``OPTIMIZER_S_PER_PARAMETER``). A training step of a model with ``P`` parameters on
``n`` tokens is ``6 P n`` FLOPs, an evaluation ``2 P n``. Work that notebooks run on the CPU (the speed
benchmark of notebook 06) is costed at Colab's two CPU cores (``COLAB_CPU_FLOPS``). ``scripts/gpu_check.sh``
measures the real minutes on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from .compression import LATENCY_EXAMPLES
from .recipes import GPU_SST2_SENTENCES

T4_FP16_PEAK_FLOPS = 65e12  # NVIDIA T4 datasheet, fp16/mixed precision on tensor cores
T4_UTILISATION = 0.12  # assumed share of the peak a BERT fine-tuning loop reaches with short batches
LAUNCH_S = 0.015  # assumed fixed cost of one optimisation step: kernel launches, the data loader
OPTIMIZER_S_PER_PARAMETER = 0.045 / 110e6  # assumed AdamW + clipping cost (memory-bound, ~45 ms for bert-base)
COLAB_CPU_FLOPS = 50e9  # assumed fp32 rate of Colab's two CPU cores
SETUP_MINUTES = 1.5  # installing the package, downloading bert-base (440 MB) and the data


def bert_parameters(layers: int, hidden: int = 768, intermediate: int = 3_072, vocab: int = 30_522,
                    positions: int = 512, labels: int = 2) -> tuple[int, int]:
    """``(embedding weights, weights that compute)`` of a BERT classifier, bert-base-uncased's shape by default."""
    embeddings = (vocab + positions + 2) * hidden + 2 * hidden  # tokens, positions, 2 segments; LayerNorm
    layer = 4 * (hidden + 1) * hidden + 2 * hidden * intermediate + intermediate + hidden + 2 * 2 * hidden
    head = (hidden + 1) * hidden + (hidden + 1) * labels  # the pooler, the classifier
    return embeddings, layers * layer + head


# The models the gpu profile uses: bert-base-uncased, and notebook 06's student (2 of its 12 layers).
BERT_BASE = sum(bert_parameters(12))
BERT_BASE_2_LAYERS = sum(bert_parameters(2))
STUDENT_COMPUTING_WEIGHTS = bert_parameters(2)[1]  # the embeddings are looked up, not multiplied
HEAD_PARAMETERS = 768 * 2  # notebook 05's logistic-regression head on bert-base sentence vectors
HEAD_STEP_S = 0.5e-3  # one Adam step of that head: about 0.4 ms measured on this course's 2-core CPU

# The gpu profile's sizes. tests/test_gpu_plan.py reads each back from where it is set: the data and
# recipes.finetune_recipe (the fine-tuning sets), notebook 05's SIZES and notebook 06's LESSON dictionaries.
SST2 = {"train": GPU_SST2_SENTENCES, "validation": 1_000, "test": 872, "epochs": 2}
EMOTION = {"train": 16_000, "validation": 2_000, "test": 2_000, "epochs": 2}
SMS_SPAM = {"train": 4_128, "validation": 516, "test": 516}
LESSON_05 = {"sst2_train": 3_000, "sst2_validation": 1_500, "sst2_test": 3_000, "head_epochs": 40, "seeds": 5,
             "finetune_seeds": 3, "finetune_epochs": 3}
HEAD_REMEDIES, HEAD_CHOICES, HEAD_BATCH = 6, 3 + 3 + 2, 64  # notebook 05: remedies; L2, beta and gamma tried
FINETUNED_REMEDIES, TRAINER_APPENDIX_STEPS = 2, 4  # notebook 05: cross-entropy and inverse weights; the appendix
LESSON_06 = {"seeds": 3, "temperatures": 3, "hard_epochs": (2, 4), "transfer_epochs": 1, "batch_size": 64,
             "speed_examples": 128, "repeats": 2, "emotion_examples": 2_000}
# Notebook 06's transfer set: the unused sentence-like SST-2 training rows and one augmented copy of the labelled
# sentences (identical copies dropped); tests/test_gpu_plan.py recomputes both from the data.
GPU_UNUSED_SENTENCES, GPU_AUGMENTED_COPIES = 10_558, 9_349
GPU_TRANSFER_TEXTS = GPU_UNUSED_SENTENCES + GPU_AUGMENTED_COPIES


@dataclass(frozen=True)
class Work:
    """One piece of a notebook's gpu-profile work: ``examples`` passes of ``tokens`` tokens each through a
    model of ``parameters`` weights, training (``train``) or scoring, on the GPU or Colab's CPU."""

    what: str
    parameters: float
    examples: float
    tokens: float = 32  # mean tokens per example after dynamic padding (SST-2 sentences: about 25-30)
    batch_size: int = 32  # the gpu recipes' batch size
    train: bool = True
    on_cpu: bool = False
    cpu_step_s: float = 0.0  # fixed cost of one optimisation step on the CPU (Python and launch overhead)

    def seconds(self) -> float:
        flops = (6 if self.train else 2) * self.parameters * self.examples * self.tokens
        if self.on_cpu:
            return flops / COLAB_CPU_FLOPS + self.cpu_step_s * self.examples / self.batch_size
        steps = self.examples / self.batch_size
        per_step = LAUNCH_S + OPTIMIZER_S_PER_PARAMETER * self.parameters
        return flops / (T4_FP16_PEAK_FLOPS * T4_UTILISATION) + (steps * per_step if self.train else 0.0)


def _teacher_if_not_cached(notebook: str) -> list[Work]:
    """Notebooks 04-06 load notebook 03's SST-2 model from the artifact cache, or train it."""
    return [Work(f"{notebook}: the sst2 model, unless notebook 03 cached it", BERT_BASE, SST2["epochs"] * SST2["train"])]


def _notebook_05() -> list[Work]:
    sizes = LESSON_05
    sst2_steps = sizes["head_epochs"] * -(-sizes["sst2_train"] // HEAD_BATCH)
    sms_steps = sizes["head_epochs"] * -(-SMS_SPAM["train"] // HEAD_BATCH)
    head_runs = HEAD_REMEDIES * sizes["seeds"] + HEAD_CHOICES
    scored = sizes["sst2_validation"] + sizes["sst2_test"] + SST2["test"]  # and the balanced test: all of SST-2's
    finetuned = FINETUNED_REMEDIES * sizes["finetune_seeds"]
    return [
        Work(f"sentence vectors: {sizes['sst2_train'] + scored:,} SST-2 phrases and {sum(SMS_SPAM.values()):,} SMS "
             "messages (about 1.3 x as long)", BERT_BASE, sizes["sst2_train"] + scored + 1.3 * sum(SMS_SPAM.values()),
             train=False),
        Work(f"logistic-regression heads: 2 datasets x ({HEAD_REMEDIES} remedies x {sizes['seeds']} seeds + "
             f"{HEAD_CHOICES} choices) + {HEAD_REMEDIES} at double length, of {sst2_steps:,} (SST-2) and {sms_steps:,} "
             f"(SMS) steps of {HEAD_BATCH} x 768", HEAD_PARAMETERS,
             HEAD_BATCH * (head_runs * (sst2_steps + sms_steps) + HEAD_REMEDIES * 2 * sst2_steps), tokens=1,
             batch_size=HEAD_BATCH, on_cpu=True, cpu_step_s=HEAD_STEP_S),
        Work(f"fine-tuning: {finetuned} runs x {sizes['sst2_train']:,} phrases x {sizes['finetune_epochs']} epochs",
             BERT_BASE, finetuned * sizes["sst2_train"] * sizes["finetune_epochs"]),
        Work(f"scoring the fine-tuned models: {finetuned} x {scored:,} phrases", BERT_BASE, finetuned * scored,
             train=False),
        Work(f"the Trainer appendix: {TRAINER_APPENDIX_STEPS} steps", BERT_BASE, TRAINER_APPENDIX_STEPS * 32),
    ]


def _notebook_06() -> list[Work]:
    lesson, labelled, everything = LESSON_06, SST2["train"], SST2["train"] + GPU_TRANSFER_TEXTS
    seeds, hard = lesson["seeds"], lesson["hard_epochs"]
    # Seed 0 tries every number of passes; the other seeds train the one chosen (counted at the longest).
    hard_passes = sum(hard) + (seeds - 1) * max(hard)
    # Seed 0 tries every temperature; then the other seeds of the soft student and every seed of the teacher's argmax.
    transfer_runs = lesson["temperatures"] + (seeds - 1) + seeds
    validated = len(hard) + lesson["temperatures"] + 3 * seeds  # the choices, then every student
    benchmark = SST2["validation"] + (lesson["repeats"] + 1) * (lesson["speed_examples"] + LATENCY_EXAMPLES)
    return [
        *_teacher_if_not_cached("06"),
        Work(f"teacher logits: labelled + transfer set ({GPU_UNUSED_SENTENCES:,} unused sentences and "
             f"{GPU_AUGMENTED_COPIES:,} augmented copies)", BERT_BASE, everything, train=False),
        Work(f"students, hard labels: {hard_passes} passes over {labelled:,} sentences", BERT_BASE_2_LAYERS,
             hard_passes * labelled, batch_size=lesson["batch_size"]),
        Work(f"students on the transfer set: {transfer_runs} runs x {lesson['transfer_epochs']} pass",
             BERT_BASE_2_LAYERS, transfer_runs * lesson["transfer_epochs"] * everything,
             batch_size=lesson["batch_size"]),
        Work(f"scoring: 2 untrained copies and {validated} students on validation, {3 * seeds} students on test",
             BERT_BASE_2_LAYERS, (2 + validated) * SST2["validation"] + 3 * seeds * SST2["test"], train=False),
        Work("scoring the teacher on validation and test", BERT_BASE, SST2["validation"] + SST2["test"], train=False),
        Work(f"CPU benchmark, the teacher: accuracy on {SST2['validation']:,} validation sentences, speed over "
             f"{lesson['repeats']} repeats + a warm-up (its int8 copies are left out on the gpu profile)", BERT_BASE,
             benchmark, train=False, on_cpu=True),
        Work("CPU benchmark, 6 students: the same, and the final student on test", STUDENT_COMPUTING_WEIGHTS,
             6 * benchmark + SST2["test"], train=False, on_cpu=True),
        Work(f"emotion teacher on {lesson['emotion_examples']:,} validation tweets", BERT_BASE,
             min(lesson["emotion_examples"], EMOTION["validation"]), tokens=28, train=False),
    ]


# The gpu profile's work per notebook, from the sizes above.
NOTEBOOK_WORK: dict[str, list[Work]] = {
    "03_finetune_bert": [
        Work(f"plain loop, sst2: {SST2['train']:,} sentences x {SST2['epochs']} epochs", BERT_BASE,
             SST2["epochs"] * SST2["train"]),
        Work("Trainer, sst2: the same recipe", BERT_BASE, SST2["epochs"] * SST2["train"]),
        Work(f"emotion: {EMOTION['train']:,} tweets x {EMOTION['epochs']} epochs", BERT_BASE,
             EMOTION["epochs"] * EMOTION["train"], tokens=28),
        Work("validation each epoch (sst2 twice, emotion), test sets", BERT_BASE,
             SST2["epochs"] * (2 * SST2["validation"] + EMOTION["validation"]) + 2 * SST2["test"] + EMOTION["test"],
             train=False),
    ],
    "04_evaluation_metrics": [
        *_teacher_if_not_cached("04"),
        Work("emotion model, unless notebook 03 cached it", BERT_BASE, EMOTION["epochs"] * EMOTION["train"], tokens=28),
        Work("scoring validation and test sets", BERT_BASE,
             SST2["validation"] + SST2["test"] + EMOTION["validation"] + EMOTION["test"], train=False),
    ],
    "05_imbalanced_data": _notebook_05(),
    "06_knowledge_distillation": _notebook_06(),
}


def t4_minutes(notebook: str, with_cached_teacher: bool = False) -> float:
    """Estimated minutes of ``notebook`` in the gpu profile on a Colab T4 (0 for a notebook that trains
    nothing). ``with_cached_teacher``: notebook 03's models are in the artifact cache already."""
    work = NOTEBOOK_WORK.get(notebook, [])
    if with_cached_teacher:
        work = [w for w in work if "unless notebook 03 cached it" not in w.what]
    return SETUP_MINUTES + sum(w.seconds() for w in work) / 60 if work else 0.0


def t4_estimate_line(notebook: str) -> str:
    """One line for the notebook's environment report: the estimate, and how it was made."""
    if notebook not in NOTEBOOK_WORK:
        return "no fine-tuning here: a minute or two on any runtime"
    full, cached = t4_minutes(notebook), t4_minutes(notebook, with_cached_teacher=True)
    reuse = f" ({cached:.0f} min with notebook 03's models cached)" if cached < full - 0.5 else ""
    return (f"about {full:.0f} min{reuse}, estimated from the T4's published fp16 throughput scaled by each run's "
            f"FLOPs (textclf_utils.gpu_plan), not measured")
