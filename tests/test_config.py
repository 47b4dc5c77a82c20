import dataclasses
import os
import random
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from textclf_utils import config, notebook


def test_unknown_profile_lists_the_known_ones(monkeypatch):
    monkeypatch.setenv("TEXTCLF_PROFILE", "laptop")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        config.get_profile()


def test_profile_from_environment_and_argument(monkeypatch):
    monkeypatch.setenv("TEXTCLF_PROFILE", "SMOKE")
    assert config.get_profile().name == "smoke"
    assert config.get_profile("gpu").name == "gpu"


@pytest.mark.parametrize("cuda, expected", [(True, "gpu"), (False, "cpu")])
def test_default_profile_follows_cuda(monkeypatch, cuda, expected):
    monkeypatch.delenv("TEXTCLF_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert config.get_profile().name == expected


def test_profiles_are_frozen_and_grow_from_smoke_to_gpu():
    smoke, cpu, gpu = (config.PROFILES[n] for n in ("smoke", "cpu", "gpu"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        smoke.epochs = 10
    assert smoke.train_examples < cpu.train_examples and gpu.train_examples is None


def test_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert config.get_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.get_device().type == "cpu"


def test_set_seed_repeats_every_generator():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    config.set_seed(7)
    first = draw()
    config.set_seed(7)
    assert draw() == first


@pytest.mark.parametrize("seed", ["42", -1, 2**32, 1.5, True, None])
def test_set_seed_refuses_what_is_not_a_whole_number_in_range(seed):
    with pytest.raises(ValueError, match=r"seed must be a whole number from 0 to 2\*\*32 - 1"):
        config.set_seed(seed)


def test_set_seed_takes_numpy_integers_and_the_range_ends():
    for seed in (np.int64(3), 0, 2**32 - 1):
        config.set_seed(seed)
    config.set_seed(np.int64(3))
    first = torch.rand(1)
    config.set_seed(3)
    assert torch.equal(torch.rand(1), first)


def test_hub_offline_flag_is_respected(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert config.hub_is_reachable() is False
    assert config.hub_status() == "offline (HF_HUB_OFFLINE is set)"


@pytest.mark.parametrize("reachable, status", [(True, "reachable"), (False, "unreachable (working offline)")])
def test_hub_status_without_the_offline_flag_says_what_the_probe_found(monkeypatch, reachable, status):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(config, "hub_is_reachable", lambda: reachable)
    assert config.hub_status() == status


@pytest.mark.parametrize("module, env, expected", [
    (True, {}, "colab"), (False, {"COLAB_RELEASE_TAG": "release-colab_2026"}, "colab"),
    (False, {"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "kaggle"), (False, {}, None)])
def test_hosted_runtime_from_either_sign(monkeypatch, module, env, expected):
    import sys
    import types

    for name in ("COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if module:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert config.hosted_runtime() == expected


def test_the_rehearsal_is_the_gpu_path_at_smoke_sizes():
    smoke, gpu, rehearsal = (config.PROFILES[name] for name in ("smoke", "gpu", "gpu-cpu"))
    assert rehearsal.rehearsal is True and not any(config.PROFILES[n].rehearsal for n in ("smoke", "cpu", "gpu"))
    assert (rehearsal.name, rehearsal.scale, rehearsal.autocast_on_cpu) == ("gpu", "smoke", True)
    for size in ("train_examples", "eval_examples", "epochs", "batch_size"):  # the sizes of smoke ...
        assert getattr(rehearsal, size) == getattr(smoke, size), size
    for setting in ("max_length", "model"):  # ... the sequence length and model of gpu
        assert getattr(rehearsal, setting) == getattr(gpu, setting), setting


def test_the_readme_states_the_smoke_sizes():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    smoke = config.PROFILES["smoke"]
    epochs = f"{smoke.epochs:g} epoch{'s' * (smoke.epochs != 1)}"
    assert f"{smoke.train_examples} training / {smoke.eval_examples} evaluation examples, {epochs}" in readme


def test_setup_notebook_reports_versions_device_profile_and_hub(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    profile = notebook.setup_notebook("smoke", seed=3)
    out = capsys.readouterr().out
    assert profile.name == "smoke"
    for key in ("python", "torch", "transformers", "datasets", "device", "profile", "hugging face hub"):
        assert key in out
    assert "smoke (chosen in code)" in out and "offline" in out
    monkeypatch.setattr(notebook, "hosted_runtime", lambda: None)
    notebook.setup_notebook("smoke")
    assert re.search(r"runtime\s+: local\n", capsys.readouterr().out)
    monkeypatch.setattr(notebook, "hosted_runtime", lambda: "kaggle")
    notebook.setup_notebook("smoke")
    assert re.search(r"runtime\s+: kaggle\n", capsys.readouterr().out)


def test_the_report_says_which_precision_the_profile_uses_and_why(monkeypatch):
    cpu, smoke = config.get_profile("cpu"), config.get_profile("smoke")
    monkeypatch.setattr(config, "cpu_has_native_bf16", lambda: True)
    assert config.precision_report(cpu, torch.device("cpu")).startswith("bf16 autocast: this CPU has bf16 instructions")
    monkeypatch.setattr(config, "cpu_has_native_bf16", lambda: False)
    assert config.precision_report(cpu, torch.device("cpu")).startswith("fp32: this CPU has no bf16 instructions")
    assert config.precision_report(smoke, torch.device("cpu")).startswith("fp32 (the smoke profile")
    assert "forced on" in config.precision_report(config.get_profile("gpu-cpu"), torch.device("cpu"))
    assert config.precision_report(cpu, torch.device("mps")).startswith("fp32")
    monkeypatch.setattr(config, "gpu_has_native_bf16", lambda: False)
    assert "fp16" in config.precision_report(cpu, torch.device("cuda"))


def test_native_bf16_follows_onednn_and_the_isa_limit():
    """oneDNN's own answer: ONEDNN_MAX_CPU_ISA=AVX2 (a laptop without AVX512-BF16 or AMX) turns it off."""
    code = "from textclf_utils.config import cpu_has_native_bf16; print(cpu_has_native_bf16())"
    limited = subprocess.run([sys.executable, "-c", code], env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"},
                             capture_output=True, text=True, check=True)
    assert limited.stdout.strip() == "False"
    assert isinstance(config.cpu_has_native_bf16(), bool)


def test_native_bf16_needs_the_instructions_not_only_onednn(monkeypatch):
    """oneDNN says yes on any AVX-512 CPU, where it only emulates bf16: the instructions must be there too."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    for avx512_bf16, amx, expected in ((False, False, False), (True, False, True), (False, True, True)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert config.cpu_has_native_bf16() is expected
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False, raising=False)
    assert config.cpu_has_native_bf16() is False


def test_the_cpu_and_smoke_batches_and_lengths_are_the_ones_the_recipe_was_chosen_with():
    """The stored runs that chose the cpu recipe trained in batches of 32 cut to 64 tokens; smoke keeps the
    same length, so that its assertions exercise the same truncation."""
    from textclf_utils.recipes import stored_recipe_runs

    chosen_with = {(run["recipe"]["batch_size"], run["recipe"]["max_length"])
                   for name in ("recipe_tuning_cpu", "recipe_budget_cpu") for run in stored_recipe_runs(name)["runs"]
                   if run["recipe"]["train_examples"] in (3000, 8000)}
    cpu, smoke = config.PROFILES["cpu"], config.PROFILES["smoke"]
    assert chosen_with == {(cpu.batch_size, cpu.max_length)} and smoke.max_length == cpu.max_length == 64


def test_the_profile_reason_without_a_choice_follows_cuda(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert config.profile_reason() == "default: no CUDA GPU found"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.profile_reason() == "default: CUDA is available"


def test_without_onednns_answer_there_is_no_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None, raising=False)
    assert config.cpu_has_native_bf16() is False


def test_the_hub_is_reachable_when_its_https_port_answers(monkeypatch):
    import contextlib

    calls = []

    def connect(address, timeout):
        calls.append((address, timeout))
        return contextlib.nullcontext()

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(config.socket, "create_connection", connect)
    assert config.hub_is_reachable(timeout=1.5) is True and calls == [(("huggingface.co", 443), 1.5)]

    def refuse(address, timeout):
        raise OSError("no route")

    monkeypatch.setattr(config.socket, "create_connection", refuse)
    assert config.hub_is_reachable() is False
