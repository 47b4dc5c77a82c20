"""Run profiles, device choice, precision, seeding, and whether the Hub can be reached: the base of the package,
which imports none of its other modules (the environment report built from them is in ``notebook``)."""

from __future__ import annotations

import os
import random
import socket
import sys
from dataclasses import dataclass

import numpy as np
import torch

PROFILE_ENV = "TEXTCLF_PROFILE"
HUB_HOST = "huggingface.co"


@dataclass(frozen=True)
class Profile:
    """Sizes for one run profile; ``None`` for a size means "the whole split".

    ``name`` picks the code path (``gpu``: the full-scale branches); ``scale`` picks the sizes and the
    thresholds a notebook asserts. They differ only in the ``gpu-cpu`` rehearsal, which runs the gpu
    branches on a CPU at smoke scale, with autocast forced on (``autocast_on_cpu``) so that the
    mixed-precision code runs too. ``bf16_on_cpu`` fine-tunes in bf16 autocast on a CPU, but only where
    the CPU runs bf16 natively.
    """

    name: str
    train_examples: int | None
    eval_examples: int | None
    epochs: float
    max_length: int
    batch_size: int
    model: str
    description: str
    scale: str = ""
    autocast_on_cpu: bool = False
    bf16_on_cpu: bool = False  # bf16 autocast on a CPU that runs it natively (else fp32; see cpu_has_native_bf16)

    def __post_init__(self) -> None:
        if not self.scale:
            object.__setattr__(self, "scale", self.name)

    @property
    def rehearsal(self) -> bool:
        """True for the gpu-cpu rehearsal: the gpu code path at another profile's scale."""
        return self.scale != self.name


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke", train_examples=256, eval_examples=128, epochs=1, max_length=64, batch_size=8,
        model="all-MiniLM-L6-v2",
        description="CI: tiny subsets, seconds per notebook; the assertions still check real results",
    ),
    "cpu": Profile(
        name="cpu", train_examples=8000, eval_examples=None, epochs=2, max_length=64, batch_size=32,
        model="all-MiniLM-L6-v2", bf16_on_cpu=True,
        description="a laptop with no GPU: real results in about 10 minutes a notebook on 2 cores",
    ),
    "gpu": Profile(
        name="gpu", train_examples=None, eval_examples=None, epochs=2, max_length=128, batch_size=32,
        model="bert-base-uncased",
        description="CUDA: bert-base-uncased when the Hub is reachable, mixed precision, each notebook sized "
                    "for about 20 minutes on a Colab T4",
    ),
    "gpu-cpu": Profile(
        name="gpu", train_examples=256, eval_examples=128, epochs=1, max_length=128, batch_size=8,
        model="bert-base-uncased", scale="smoke", autocast_on_cpu=True,
        description="CI rehearsal of the gpu profile on a CPU: the gpu code paths at smoke sizes, bf16 autocast "
                    "forced on, the packaged model where bert-base cannot be downloaded",
    ),
}


def default_profile_name() -> str:
    """``gpu`` when CUDA is available, else ``cpu``."""
    return "gpu" if torch.cuda.is_available() else "cpu"


def get_profile(name: str | None = None) -> Profile:
    """The profile called ``name``, else ``$TEXTCLF_PROFILE``, else the default for this machine."""
    chosen = name or os.environ.get(PROFILE_ENV) or default_profile_name()
    key = chosen.strip().lower().replace("_", "-")
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


def gpu_has_native_bf16() -> bool:
    """Whether the CUDA GPU computes in bf16 natively (Ampere, sm_80, and later). A T4 (sm_75) only
    emulates it, slowly: ``torch.cuda.is_bf16_supported()`` answers True there unless asked
    ``including_emulation=False``."""
    return torch.cuda.is_bf16_supported(including_emulation=False)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX, on x86) and PyTorch's CPU backend, oneDNN,
    may use them. (oneDNN alone answers yes for any AVX-512 CPU, where it only emulates bf16; elsewhere bf16
    matrix products fall back to generic code.) Anything else, ARM included, counts as no: fp32 is the safe
    choice there. ``ONEDNN_MAX_CPU_ISA=AVX2`` turns it off, as on a CPU without bf16: see
    ``scripts/benchmark_finetuning.py --precision``."""
    onednn = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        onednn_ok = bool(onednn()) if onednn is not None else False
    except RuntimeError:
        return False
    instructions = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return onednn_ok and instructions


def precision_report(profile: "Profile", device: torch.device) -> str:
    """Which precision ``profile`` computes in on ``device``, and why, in words."""
    if device.type == "cuda":
        return ("bf16 mixed precision (this GPU has native bf16)" if gpu_has_native_bf16()
                else "fp16 mixed precision with a gradient scaler (this GPU has no native bf16)")
    if device.type != "cpu":
        return f"fp32 (mixed precision is set up for CUDA and CPUs, not {device.type})"
    if profile.autocast_on_cpu:
        return "bf16 autocast on the CPU, forced on to rehearse the gpu profile's mixed-precision code"
    native = cpu_has_native_bf16()
    if not profile.bf16_on_cpu:
        return f"fp32 (the {profile.name} profile does not use mixed precision on a CPU)"
    if native:
        return ("bf16 autocast: this CPU has bf16 instructions (AVX512-BF16 or AMX); on such a CPU the course's "
                "fine-tuning step ran about 2x faster than in fp32")
    return ("fp32: this CPU has no bf16 instructions (AVX512-BF16 or AMX), and without them bf16 made the course's "
            "fine-tuning step about 16x slower")


def set_seed(seed: int = 42) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so that a CPU run repeats exactly."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be a whole number from 0 to 2**32 - 1, such as 42; got {seed!r}.")
    seed = int(seed)  # random.seed refuses NumPy integers
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


def hosted_runtime() -> str | None:
    """``"colab"`` on Google Colab, ``"kaggle"`` in a Kaggle notebook, else ``None``."""
    if "google.colab" in sys.modules or os.environ.get("COLAB_RELEASE_TAG"):
        return "colab"
    if os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):
        return "kaggle"
    return None
