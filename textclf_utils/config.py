"""Run profiles, device choice, seeding and the environment report printed by every notebook."""

from __future__ import annotations

import os
import platform
import random
import socket
import sys
from dataclasses import dataclass, asdict

import numpy as np
import torch

PROFILE_ENV = "TEXTCLF_PROFILE"
HUB_HOST = "huggingface.co"


@dataclass(frozen=True)
class Profile:
    """Sizes for one run profile; ``None`` for a size means "the whole split"."""

    name: str
    train_examples: int | None
    eval_examples: int | None
    epochs: float
    max_length: int
    batch_size: int
    model: str
    description: str


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", train_examples=256, eval_examples=128, epochs=1, max_length=64, batch_size=32,
        model="all-MiniLM-L6-v2",
        description="CI: tiny subsets, seconds per notebook; the assertions still check real results",
    ),
    "cpu": Profile(
        name="cpu", train_examples=8000, eval_examples=None, epochs=2, max_length=64, batch_size=32,
        model="all-MiniLM-L6-v2",
        description="a laptop with no GPU: real results in about 10 minutes a notebook on 2 cores",
    ),
    "gpu": Profile(
        name="gpu", train_examples=None, eval_examples=None, epochs=3, max_length=128, batch_size=32,
        model="bert-base-uncased",
        description="CUDA: full datasets, bert-base-uncased when the Hub is reachable, mixed precision",
    ),
}


def default_profile_name() -> str:
    """``gpu`` when CUDA is available, else ``cpu``."""
    return "gpu" if torch.cuda.is_available() else "cpu"


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name``, else ``$TEXTCLF_PROFILE``, else the default for this machine."""
    chosen = name or os.environ.get(PROFILE_ENV) or default_profile_name()
    key = chosen.strip().lower()
    if key not in PROFILES:
        raise ValueError(
            f"Unknown profile {chosen!r}. Known profiles: {', '.join(PROFILES)}. "
            f"Set {PROFILE_ENV} to one of them (or unset it to use the default for this machine)."
        )
    return PROFILES[key]


def profile_reason(name: str | None = None) -> str:
    """Why the profile in force was chosen, in words."""
    if name:
        return "chosen in code"
    if os.environ.get(PROFILE_ENV):
        return f"set by {PROFILE_ENV}={os.environ[PROFILE_ENV]}"
    return "default: CUDA is available" if torch.cuda.is_available() else "default: no CUDA GPU found"


def get_device() -> torch.device:
    """CUDA if available, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int = 42) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so that a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def hub_is_reachable(timeout: float = 2.0) -> bool:
    """False when ``HF_HUB_OFFLINE`` is set or ``huggingface.co`` cannot be reached within ``timeout``."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def hub_status() -> str:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return "offline (HF_HUB_OFFLINE is set)"
    return "reachable" if hub_is_reachable() else "unreachable (working offline)"


def setup_notebook(profile: str | None = None, seed: int = 42) -> Profile:
    """Seed everything, print the environment report, and return the profile in force.

    Call it in the first code cell of every notebook.
    """
    import datasets
    import transformers

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
        ("sizes", ", ".join(f"{k}={v}" for k, v in asdict(chosen).items() if k not in {"name", "description"})),
        ("hugging face hub", hub_status()),
        ("seed", str(seed)),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}} : {value}")
    sys.stdout.flush()
    return chosen
