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

from .recipes import GPU_SST2_SENTENCES

T4_FP16_PEAK_FLOPS = 65e12  # NVIDIA T4 datasheet, fp16/mixed precision on tensor cores
T4_UTILISATION = 0.12  # assumed share of the peak a BERT fine-tuning loop reaches with short batches
LAUNCH_S = 0.015  # assumed fixed cost of one optimisation step: kernel launches, the data loader
OPTIMIZER_S_PER_PARAMETER = 0.045 / 110e6  # assumed AdamW + clipping cost (memory-bound, ~45 ms for bert-base)
COLAB_CPU_FLOPS = 50e9  # assumed fp32 rate of Colab's two CPU cores
SETUP_MINUTES = 1.5  # installing the package, downloading bert-base (440 MB) and the data

# Parameters of the models the gpu profile uses (bert-base-uncased and the students of notebook 06).
BERT_BASE = 110e6
BERT_BASE_2_LAYERS = 38e6  # notebook 06's student: the embeddings (24 M) and 2 of the 12 layers
# Notebook 06's transfer set in the gpu profile: the unused sentence-like SST-2 training rows and one augmented copy
# of the labelled sentences (identical copies dropped); tests/test_gpu_plan.py recomputes both from the data.
GPU_UNUSED_SENTENCES, GPU_AUGMENTED_COPIES = 10_558, 9_349
GPU_TRANSFER_TEXTS = GPU_UNUSED_SENTENCES + GPU_AUGMENTED_COPIES
HEAD_PARAMETERS = 768 * 2  # notebook 05's logistic-regression head on bert-base sentence vectors
HEAD_STEP_S = 0.5e-3  # one Adam step of that head: about 0.4 ms measured on this course's 2-core CPU


@dataclass(frozen=True)
class Work:
    """One piece of a notebook's gpu-profile work: ``examples`` passes of ``tokens`` tokens each through a
    model of ``parameters`` weights, training (``train``) or scoring, on the GPU or Colab's CPU."""

    what: str
    parameters: float
    examples: float
    tokens: float = 32  # mean tokens per example after dynamic padding (SST-2 sentences: about 25-30)
    batch_size: int = 32
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
    """Notebooks 04-06 load notebook 03's model from the artifact cache, or train it (2 x 12,000 sentences)."""
    return [Work(f"{notebook}: the sst2 model, unless notebook 03 cached it", BERT_BASE, 2 * GPU_SST2_SENTENCES)]


# The gpu profile's work per notebook (the sizes the notebooks and recipes.RECIPE_OVERRIDES set).
NOTEBOOK_WORK: dict[str, list[Work]] = {
    "03_finetune_bert": [
        Work(f"plain loop, sst2: {GPU_SST2_SENTENCES:,} sentences x 2 epochs", BERT_BASE, 2 * GPU_SST2_SENTENCES),
        Work("Trainer, sst2: the same recipe", BERT_BASE, 2 * GPU_SST2_SENTENCES),
        Work("emotion: 16,000 tweets x 2 epochs", BERT_BASE, 2 * 16_000, tokens=28),
        Work("evaluations (validation each epoch, test)", BERT_BASE, 6 * 2_000 + 4_000, train=False),
    ],
    "04_evaluation_metrics": [
        *_teacher_if_not_cached("04"),
        Work("emotion model, unless notebook 03 cached it", BERT_BASE, 2 * 16_000, tokens=28),
        Work("scoring validation and test sets", BERT_BASE, 10_000, train=False),
    ],
    "05_imbalanced_data": [
        Work("sentence vectors: 8,372 SST-2 phrases and 5,160 SMS messages", BERT_BASE, 8_372 + 5_160 * 1.3,
             train=False),
        Work("logistic-regression heads: 2 datasets x (6 remedies x 5 seeds + 8 choices) + 6 at double length, "
             "1,880-2,600 steps of 64 x 768 each", HEAD_PARAMETERS, 2 * 38 * 2_300 * 64 + 6 * 3_760 * 64, tokens=1,
             batch_size=64, on_cpu=True, cpu_step_s=HEAD_STEP_S),
        Work("fine-tuning: 2 remedies x 3 seeds x 3,000 phrases x 3 epochs", BERT_BASE, 2 * 3 * 3 * 3_000),
        Work("scoring the fine-tuned models: 6 x 5,372 phrases", BERT_BASE, 6 * 5_372, train=False),
        Work("the Trainer appendix: 4 steps", BERT_BASE, 4 * 32),
    ],
    "06_knowledge_distillation": [
        *_teacher_if_not_cached("06"),
        Work(f"teacher logits: labelled + transfer set ({GPU_UNUSED_SENTENCES:,} unused sentences and "
             f"{GPU_AUGMENTED_COPIES:,} augmented copies)",
             BERT_BASE, GPU_SST2_SENTENCES + GPU_TRANSFER_TEXTS, train=False),
        Work(f"students, hard labels: 3 seeds x {GPU_SST2_SENTENCES:,} sentences x 3 epochs", BERT_BASE_2_LAYERS,
             3 * 3 * GPU_SST2_SENTENCES, batch_size=64),
        Work("students on the transfer set: (3 temperatures + 2 seeds) soft + 3 argmax, one pass each",
             BERT_BASE_2_LAYERS, 8 * (GPU_SST2_SENTENCES + GPU_TRANSFER_TEXTS), batch_size=64),
        Work("scoring: untrained copies, 11 students on validation and test", BERT_BASE_2_LAYERS, 13 * 2_000,
             train=False),
        Work("CPU benchmark, the teacher: accuracy on 1,000 validation sentences, speed over 2 repeats + warm-up "
             "of 128 + 32 sentences (its int8 copies are left out on the gpu profile)", BERT_BASE, 1_000 + 3 * 160,
             train=False, on_cpu=True),
        Work("CPU benchmark, 6 students: the same (their 2 layers: 15 M weights that compute)", 15e6,
             6 * (1_000 + 3 * 160), train=False, on_cpu=True),
        Work("emotion teacher on 2,000 validation tweets", BERT_BASE, 2_000, tokens=28, train=False),
    ],
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
