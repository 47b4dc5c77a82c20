"""Choose notebook 03's fine-tuning recipe on the validation set: one change per row, several seeds.

Each variant changes one setting of a base recipe; every (variant, seed) pair fine-tunes from the
pre-trained weights and is scored on SST-2's validation sentences after each epoch (never on test).
The runs are written to a JSON file that notebook 03 reads and tables:

    python scripts/tune_recipe.py --examples 3000 --epochs 1 --seeds 0 1 2 --output textclf_utils/stored_runs/recipe_tuning_cpu.json

The base and the variants are small on purpose (a tuning run must be cheap to repeat over seeds); the
chosen settings are then used at the profile's full size. ``--complete`` compares whole recipes at that
full size instead (``COMPLETE_RECIPES``: what to spend the notebook's minutes on), also tabled in notebook 03:

    python scripts/tune_recipe.py --complete --seeds 0 1 2 --output textclf_utils/stored_runs/recipe_budget_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textclf_utils.config import get_profile, set_seed  # noqa: E402
from textclf_utils.models import load_classifier  # noqa: E402
from textclf_utils.recipes import finetune_recipe, finetuning_data  # noqa: E402
from textclf_utils.training import train_classifier  # noqa: E402

# One change each against the base (the first entry).
VARIANTS: dict[str, dict] = {
    "base: all rows, lr 1e-4, [CLS] pooler, bf16": {},
    "sentence-like rows (>= 10 words)": {"min_train_words": 10},
    "learning rate 5e-5": {"learning_rate": 5e-5},
    "learning rate 2e-5": {"learning_rate": 2e-5},
    "mean pooling": {"pooling": "mean"},
    "fp32 instead of bf16": {"mixed_precision": False},
}
BASE = {"min_train_words": 0, "learning_rate": 1e-4, "pooling": "cls", "mixed_precision": True}
# Whole recipes at the profile's full size and about the same minutes (--complete): what to spend the
# notebook's time budget on. Each sets the data, length, batch size and step of the profile's recipe as a whole;
# the first is the profile's own sizes on sentence-like rows.
COMPLETE_RECIPES: dict[str, dict] = {
    "sentence-like rows, 8,000 x 2 epochs, batch 32, lr 1e-4": {"min_train_words": 10, "train_examples": 8_000,
                                                               "epochs": 2, "batch_size": 32, "learning_rate": 1e-4},
    "rows of any length, 40,000 x 1 epoch, batch 128, lr 2e-4": {"min_train_words": 0, "train_examples": 40_000,
                                                              "epochs": 1, "batch_size": 128, "learning_rate": 2e-4},
    "rows of any length, 20,000 x 2 epochs, batch 128, lr 2e-4": {"min_train_words": 0, "train_examples": 20_000,
                                                               "epochs": 2, "batch_size": 128, "learning_rate": 2e-4},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=3000, help="training examples per run")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=None, help="names from VARIANTS (or COMPLETE_RECIPES)")
    parser.add_argument("--complete", action="store_true",
                        help="compare COMPLETE_RECIPES at the profile's full size instead of one-change variants")
    parser.add_argument("--profile", default="cpu", help="profile giving the model, max_length and batch size")
    parser.add_argument("--output", type=Path, required=True, help="JSON file; runs already there are kept")
    args = parser.parse_args()
    known = COMPLETE_RECIPES if args.complete else VARIANTS
    args.variants = args.variants or list(known)
    unknown = [v for v in args.variants if v not in known]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(known)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    base = finetune_recipe("sst2", get_profile(args.profile))
    if not args.complete:
        base = replace(base, train_examples=args.examples, epochs=args.epochs, eval_examples=None, **BASE)
    runs = json.loads(args.output.read_text())["runs"] if args.output.is_file() else []
    done = {(r["variant"], r["recipe"]["seed"]) for r in runs}
    for seed in args.seeds:
        for variant in args.variants:
            if (variant, seed) in done:
                continue
            recipe = replace(base, seed=seed, **known[variant])
            data = finetuning_data(recipe)
            set_seed(seed)
            tokenizer, model = load_classifier(recipe.model, data["train"].features["label"].names,
                                               fallback_to_packaged=True, pooling=recipe.pooling)
            started = time.perf_counter()
            result = train_classifier(model, tokenizer, data["train"], data["validation"], progress=False,
                                      **recipe.loop_arguments())
            runs.append({"variant": variant, "recipe": asdict(recipe),
                         "validation_accuracy_by_epoch": [h["eval_accuracy"] for h in result.history],
                         "train_samples_per_second": result.train_samples_per_second,
                         "minutes": (time.perf_counter() - started) / 60})
            print(f"{variant:<45} seed {seed}: validation accuracy "
                  f"{runs[-1]['validation_accuracy_by_epoch']} ({result.train_samples_per_second:.0f} samples/s)",
                  flush=True)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps({"validation_examples": len(data["validation"]), "runs": runs},
                                              indent=1) + "\n")


if __name__ == "__main__":
    main()
