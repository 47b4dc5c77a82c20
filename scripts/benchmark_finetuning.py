"""Benchmark: the naive fine-tuning recipe against the course's, same model, data and number of steps.

naive: every batch padded to --max-length (128), fp32, examples in random order;
ours : each batch padded only to its longest example, batches of similar lengths (length grouping),
       and mixed precision on CUDA (bf16 where supported, else fp16).

Both runs start from the same weights and seed, train for --steps optimisation steps on the same SST-2
subset and are evaluated on the same dev set. Prints train samples/s of each, the ratio, the share of
padding, and dev accuracy of each, measured in this one run:

    python scripts/benchmark_finetuning.py                      # packaged MiniLM, on this machine's device
    python scripts/benchmark_finetuning.py --model bert-base-uncased --steps 300 --batch-size 32

--precision instead times training steps of the cpu recipe (its model, pooling, batch size and
sentence-like rows) in fp32, in the precision the recipe picks on this CPU, and in bf16 autocast forced on,
interleaved, with repeats. It runs twice, each in a fresh process: with oneDNN's native instructions, and
with ONEDNN_MAX_CPU_ISA=AVX2, which keeps PyTorch's CPU backend (oneDNN) from the CPU's bf16 and AVX-512
instructions, as on a CPU that lacks them (this simulates such a CPU on the same machine):

    python scripts/benchmark_finetuning.py --precision --repeats 7 \
        --json textclf_utils/stored_runs/precision_benchmark_cpu.json   # lesson 03 reads it
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from textclf_utils.config import cpu_has_native_bf16, get_device, set_seed  # noqa: E402
from textclf_utils.data import load_course_dataset, stratified_subsample  # noqa: E402
from textclf_utils.models import load_classifier  # noqa: E402
from textclf_utils.recipes import LEARNING_RATES, finetune_recipe, finetuning_data, resolved_model_name  # noqa: E402
from textclf_utils.training import (AmpSettings, amp_settings, autocast, make_collator, optimizer_step,  # noqa: E402
                                    tokenize_dataset, train_classifier)

RECIPES = {
    "naive": dict(fixed_length_padding=True, group_by_length=False, mixed_precision=False),
    "ours": dict(fixed_length_padding=False, group_by_length=True, mixed_precision=None),
}


ISA_SETTINGS = {"native": None, "oneDNN limited to AVX2 (as on a CPU without bf16 instructions)": "AVX2"}
PRECISIONS = ("fp32", "recipe", "bf16 forced")


def time_precisions(steps: int, repeats: int, seed: int) -> dict:
    """Milliseconds per training step of the cpu recipe in each of ``PRECISIONS`` on this process's CPU,
    each repeat timing ``steps`` steps of every precision in turn (the order rotates between repeats)."""
    import torch
    from transformers import get_constant_schedule

    recipe = finetune_recipe("sst2", "cpu")
    train = finetuning_data(recipe)["train"]
    set_seed(seed)
    tokenizer, model = load_classifier(recipe.model, train.features["label"].names, pooling=recipe.pooling)
    features = tokenize_dataset(train.shuffle(seed=seed).select(range(recipe.batch_size * steps)), tokenizer,
                                recipe.max_length)
    collate = make_collator(tokenizer)
    batches = [collate(features[i:i + recipe.batch_size]) for i in range(0, len(features), recipe.batch_size)]
    device = torch.device("cpu")
    settings = {"fp32": AmpSettings(None, False), "recipe": amp_settings(device, recipe.mixed_precision),
                "bf16 forced": AmpSettings(torch.bfloat16, False)}
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate)
    scheduler = get_constant_schedule(optimizer)
    model.train()

    def run(amp: AmpSettings, count: int) -> list[float]:
        """Milliseconds of each of the first ``count`` batches' training steps in ``amp``."""
        times = []
        for batch in batches[:count]:
            started = time.perf_counter()
            with autocast(device, amp):
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            optimizer_step(torch.nn.functional.cross_entropy(logits.float(), batch["labels"]), model, optimizer,
                           scheduler)
            times.append(1000 * (time.perf_counter() - started))
        return times

    # Emulated bf16 is so slow that it is timed on the first batch only (and compared with fp32 on that batch).
    counts = {name: len(batches) for name in PRECISIONS}
    if not cpu_has_native_bf16():
        counts["bf16 forced"] = 1
    for name, amp in settings.items():  # warm-up: oneDNN builds its kernels on first use
        run(amp, 1)
    ms = {name: [] for name in PRECISIONS}
    for repeat in range(repeats):
        order = PRECISIONS[repeat % 3:] + PRECISIONS[:repeat % 3]
        for name in order:
            ms[name].append(run(settings[name], counts[name]))
    return {"ms_per_batch": ms, "recipe_precision": settings["recipe"].name, "native_bf16": cpu_has_native_bf16(),
            "batch_size": recipe.batch_size, "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def cpu_description() -> dict:
    """The machine the benchmark ran on: CPU model, its bf16-related flags, torch's version."""
    import platform

    import torch

    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    wanted = ("avx2", "avx512f", "avx512bw", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"cpu": model, "bf16_flags": [f for f in wanted if f in flags], "torch": torch.__version__,
            "cores": os.cpu_count()}


def precision_benchmark(steps: int, repeats: int, seed: int) -> dict:
    """``time_precisions`` in a fresh process per entry of ``ISA_SETTINGS``; per setting, the median and
    range over repeats of each precision's ms per step, and of the per-repeat ratio fp32 / precision."""
    figures = {"machine": cpu_description(), "repeats": repeats}
    for label, isa in ISA_SETTINGS.items():
        env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
        if isa:
            env["ONEDNN_MAX_CPU_ISA"] = isa
        child = subprocess.run([sys.executable, __file__, "--precision-child", "--steps", str(steps), "--repeats",
                                str(repeats), "--seed", str(seed)], env=env, capture_output=True, text=True)
        if child.returncode:
            raise SystemExit(f"The {label} run failed:\n{child.stderr[-3000:]}")
        run = json.loads(child.stdout.strip().splitlines()[-1])
        ms = run.pop("ms_per_batch")
        per_step = {name: [statistics.mean(r) for r in repeats_] for name, repeats_ in ms.items()}
        summary = {name: {"median_ms": statistics.median(v), "min_ms": min(v), "max_ms": max(v), "batches": len(ms[name][0])}
                   for name, v in per_step.items()}
        for name in PRECISIONS[1:]:
            # per repeat: fp32's time over the same batches / this precision's time
            ratios = [statistics.mean(f[:len(p)]) / statistics.mean(p) for f, p in zip(ms["fp32"], ms[name])]
            summary[name].update(speed_vs_fp32=statistics.median(ratios), speed_vs_fp32_min=min(ratios),
                                 speed_vs_fp32_max=max(ratios))
        figures[label] = {**run, **summary, "ms_per_batch": ms}
        print(f"{label}: native bf16 {run['native_bf16']}, the recipe picks {run['recipe_precision']}")
        for name in PRECISIONS:
            row = summary[name]
            speed = "" if name == "fp32" else (f"; speed vs fp32 x{row['speed_vs_fp32']:.2f} "
                                               f"[{row['speed_vs_fp32_min']:.2f}, {row['speed_vs_fp32_max']:.2f}]")
            print(f"  {name:<12} {row['median_ms']:7.0f} ms/step [{row['min_ms']:.0f}, {row['max_ms']:.0f}] "
                  f"over {row['batches']} batches{speed}",
                  flush=True)
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="default: the packaged all-MiniLM-L6-v2")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--eval-examples", type=int, default=None, help="dev subset (default: all 872)")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--precision", action="store_true",
                        help="time fp32, the recipe's precision and forced bf16, natively and under ONEDNN_MAX_CPU_ISA=AVX2")
    parser.add_argument("--repeats", type=int, default=5, help="--precision: interleaved repeats")
    parser.add_argument("--precision-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.precision_child:
        print(json.dumps(time_precisions(args.steps, args.repeats, args.seed)))
        return {}
    if args.precision:
        steps = args.steps if "--steps" in (argv or sys.argv) else 4
        figures = precision_benchmark(steps, args.repeats, args.seed)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        return figures

    model_name = resolved_model_name(args.model)
    learning_rate = args.learning_rate or LEARNING_RATES.get(model_name, 5e-5)
    data = load_course_dataset("sst2")
    train = stratified_subsample(data["train"], args.steps * args.batch_size, seed=args.seed)
    dev = stratified_subsample(data["validation"], args.eval_examples, seed=args.seed)
    device = get_device()
    print(f"{model_name} on {device.type}, {args.steps} steps of {args.batch_size} "
          f"({len(train):,} SST-2 training examples, one epoch), max_length {args.max_length}, "
          f"learning rate {learning_rate:g}; dev: {len(dev)} examples", flush=True)
    figures = {}
    for name, switches in RECIPES.items():
        set_seed(args.seed)
        tokenizer, model = load_classifier(model_name, data["train"].features["label"].names)
        result = train_classifier(model, tokenizer, train, dev, epochs=1, max_steps=args.steps,
                                  learning_rate=learning_rate, batch_size=args.batch_size,
                                  max_length=args.max_length, seed=args.seed, device=device, **switches)
        figures[name] = {"train_samples_per_second": result.train_samples_per_second,
                         "train_seconds": result.train_seconds, "padding_fraction": result.padding_fraction,
                         "precision": result.precision, "dev_accuracy": result.history[-1]["eval_accuracy"]}
        print(f"{name:>5}: {result.train_samples_per_second:7.1f} train samples/s "
              f"({result.train_seconds:.0f} s), padding {result.padding_fraction:.0%} of token positions, "
              f"{result.precision}, dev accuracy {figures[name]['dev_accuracy']:.4f}", flush=True)
        del model
    ratio = figures["ours"]["train_samples_per_second"] / figures["naive"]["train_samples_per_second"]
    difference = figures["ours"]["dev_accuracy"] - figures["naive"]["dev_accuracy"]
    figures.update(speedup=ratio, dev_accuracy_difference=difference, device=device.type, model=model_name,
                   steps=args.steps, batch_size=args.batch_size, max_length=args.max_length)
    print(f"speed-up ours/naive: {ratio:.2f}x; dev accuracy ours - naive: {difference:+.4f} "
          f"({abs(difference) * len(dev):.0f} of {len(dev)} sentences)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
