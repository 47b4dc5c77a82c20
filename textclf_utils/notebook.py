"""What the first code cell of every notebook calls: ``setup_notebook()`` seeds everything and prints the
environment report (versions, device, profile, precision, Hub, runtime, the gpu profile's T4 estimate)."""

from __future__ import annotations

import platform
import sys
from dataclasses import asdict

import datasets
import torch
import transformers

from .config import (Profile, get_device, get_profile, hosted_runtime, hub_status, precision_report, profile_reason,
                     set_seed)
from .gpu_plan import t4_estimate_line


def setup_notebook(profile: str | None = None, seed: int = 42, notebook: str | None = None) -> Profile:
    """Seed everything, print the environment report, and return the profile in force.

    Call it in the first code cell of every notebook. ``notebook`` (e.g. ``"06_knowledge_distillation"``)
    adds the notebook's estimated time on a Colab T4 in the gpu profile, and how it was made.
    """
    chosen = get_profile(profile)
    set_seed(seed)
    device = get_device()
    gpu = f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else ""
    rows = [
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("transformers", transformers.__version__),
        ("datasets", datasets.__version__),
        ("device", f"{device.type}{gpu}, {torch.get_num_threads()} CPU threads"),
        ("profile", f"{chosen.name} ({profile_reason(profile)}): {chosen.description}"),
        ("sizes", ", ".join(f"{k}={v}" for k, v in asdict(chosen).items()
                            if k not in {"name", "description", "autocast_on_cpu", "bf16_on_cpu"})),
        ("precision", precision_report(chosen, device)),
        ("hugging face hub", hub_status()),
        ("runtime", hosted_runtime() or "local"),
        ("seed", str(seed)),
    ]
    if notebook is not None:
        rows.append(("gpu profile on a T4", t4_estimate_line(notebook)))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}} : {value}")
    sys.stdout.flush()
    return chosen
