"""Fine-tune a classifier on one of the course's datasets with transformers.Trainer, from the command line.

The recipe is notebook 03's (``textclf_utils.recipes.finetune_recipe``): a profile gives the sizes,
any of them can be overridden. One process runs on one device; for several GPUs launch the same
script with torchrun or accelerate and the Trainer runs distributed data parallel by itself:

    python scripts/finetune.py --dataset sst2 --profile cpu --output-dir artifacts/runs/sst2-cpu
    torchrun --nproc_per_node 4 scripts/finetune.py --dataset sst2 --profile gpu --output-dir runs/sst2
    accelerate launch --num_processes 4 scripts/finetune.py --dataset emotion --profile gpu --output-dir runs/emotion

``--batch-size`` is per device: with N processes one optimisation step sees N times as many examples.
The best epoch's model (safetensors), the tokenizer and ``metrics.json`` are written to ``--output-dir``,
which must be new or empty unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from textclf_utils.config import get_profile  # noqa: E402
from textclf_utils.data import DATASETS  # noqa: E402
from textclf_utils.models import load_classifier, save_classifier  # noqa: E402
from textclf_utils.recipes import finetune_recipe, finetuning_data  # noqa: E402
from textclf_utils.trainer_recipe import train_with_trainer  # noqa: E402
from textclf_utils.checks import check_tokenizer_fits_model  # noqa: E402


def _number(convert: type, minimum: float, inclusive: bool = True) -> Callable[[str], float]:
    """An argparse ``type=``: ``convert`` the text, and reject numbers below ``minimum`` (or equal, if not
    ``inclusive``) with a message saying what is allowed."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            kind = "an integer" if convert is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            bound = f"at least {minimum:g}" if inclusive else f"above {minimum:g}"
            raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text}")
        return value
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--output-dir", required=True, type=Path, help="where the fine-tuned model is saved")
    parser.add_argument("--profile", choices=["smoke", "cpu", "gpu"],
                        help="sizes and model (default: $TEXTCLF_PROFILE, else gpu with CUDA, else cpu)")
    parser.add_argument("--model", help="a Hub id (e.g. bert-base-uncased), a saved model folder, or "
                                        "all-MiniLM-L6-v2 (the packaged offline BERT); default: the profile's")
    parser.add_argument("--train-examples", type=_number(int, 0), help="training subset size (0 = the whole split)")
    parser.add_argument("--eval-examples", type=_number(int, 0), help="evaluation subset size (0 = the whole split)")
    parser.add_argument("--min-train-words", type=_number(int, 0),
                        help="keep training rows with at least this many words")
    parser.add_argument("--epochs", type=_number(float, 0, inclusive=False))
    parser.add_argument("--learning-rate", type=_number(float, 0, inclusive=False))
    parser.add_argument("--batch-size", type=_number(int, 1), help="per device")
    parser.add_argument("--max-length", type=_number(int, 2), help="at least 2 (room for [CLS] and [SEP])")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into --output-dir even if it holds files (a previous run's are replaced)")
    args = parser.parse_args(argv)
    if args.output_dir.exists() and not args.output_dir.is_dir():
        parser.error(f"--output-dir {args.output_dir} is a file, not a folder.")
    if args.output_dir.is_dir() and any(args.output_dir.iterdir()) and not args.overwrite:
        parser.error(f"--output-dir {args.output_dir} already holds files (a previous run's model, checkpoints or "
                     "metrics?). Choose a new folder, or pass --overwrite to replace them.")
    return args


def build_recipe(args: argparse.Namespace):
    """The profile's recipe for the dataset, with the command line's explicit values in place."""
    profile = get_profile(args.profile)
    if args.model:
        profile = dataclasses.replace(profile, model=args.model)
    recipe = finetune_recipe(args.dataset, profile)
    overrides = {
        "train_examples": args.train_examples, "eval_examples": args.eval_examples,
        "min_train_words": args.min_train_words, "epochs": args.epochs, "learning_rate": args.learning_rate,
        "batch_size": args.batch_size, "max_length": args.max_length, "seed": args.seed,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    for size in ("train_examples", "eval_examples"):
        if overrides.get(size) == 0:
            overrides[size] = None
    return dataclasses.replace(recipe, **overrides)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    recipe = build_recipe(args)
    data = finetuning_data(recipe)
    label_names = data["train"].features["label"].names
    tokenizer, model = load_classifier(recipe.model, label_names, fallback_to_packaged=True, pooling=recipe.pooling)
    check_tokenizer_fits_model(tokenizer, model)
    started = time.perf_counter()
    trainer, history = train_with_trainer(
        model, tokenizer, data["train"], data["validation"], output_dir=str(args.output_dir / "checkpoints"),
        progress=not args.no_progress, **recipe.loop_arguments())
    seconds = time.perf_counter() - started
    metrics = {"recipe": dataclasses.asdict(recipe), "history": history, "train_seconds": seconds,
               "world_size": trainer.args.world_size, "optimizer_steps": trainer.state.global_step,
               "train_examples": len(data["train"])}
    for split in ("validation", "test"):
        if split in data:
            result = trainer.evaluate(eval_dataset=data[split].map(
                lambda b: tokenizer(b["text"], truncation=True, max_length=recipe.max_length), batched=True),
                metric_key_prefix=split)
            metrics[split] = {k.removeprefix(f"{split}_"): v for k, v in result.items()}
    if trainer.is_world_process_zero():
        # the best epoch's weights (load_best_model_at_end) as safetensors, the tokenizer and a model card
        save_classifier(trainer.model, tokenizer, args.output_dir, dataset=recipe.dataset,
                        recipe=dataclasses.asdict(recipe), test_accuracy=metrics.get("test", {}).get("accuracy"),
                        test_examples=len(data["test"]) if "test" in data else None)
        (args.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        summary = ", ".join(f"{split} accuracy {metrics[split]['accuracy']:.4f}"
                            for split in ("validation", "test") if split in metrics)
        print(f"{recipe.dataset} with {recipe.model} ({len(data['train']):,} training examples, "
              f"{trainer.args.world_size} process(es)): {summary}; {seconds:.0f} s of training. "
              f"Saved to {args.output_dir}")
    return metrics


if __name__ == "__main__":
    main()
