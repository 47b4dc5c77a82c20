"""Benchmark: the naive fine-tuning recipe against the course's, same model, data and number of steps.

naive: every batch padded to --max-length (128), fp32, examples in random order;
ours : each batch padded only to its longest example, batches of similar lengths (length grouping),
       and mixed precision on CUDA (bf16 where supported, else fp16).

Both runs start from the same weights and seed, train for --steps optimisation steps on the same SST-2
subset and are evaluated on the same dev set. Prints train samples/s of each, the ratio, the share of
padding, and dev accuracy of each, measured in this one run:

    python scripts/benchmark_finetuning.py                      # packaged MiniLM, on this machine's device
    python scripts/benchmark_finetuning.py --model bert-base-uncased --steps 300 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from textclf_utils.config import get_device, set_seed  # noqa: E402
from textclf_utils.data import load_course_dataset, stratified_subsample  # noqa: E402
from textclf_utils.models import load_classifier  # noqa: E402
from textclf_utils.recipes import LEARNING_RATES, resolved_model_name  # noqa: E402
from textclf_utils.training import train_classifier  # noqa: E402

RECIPES = {
    "naive": dict(fixed_length_padding=True, group_by_length=False, mixed_precision=False),
    "ours": dict(fixed_length_padding=False, group_by_length=True, mixed_precision=None),
}


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
    args = parser.parse_args(argv)

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
