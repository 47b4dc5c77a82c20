"""Shared fixtures: the data mirror, and a clean environment for each test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _mirror() -> Path | None:
    candidates = [os.environ.get("TEXTCLF_DATA_DIR"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "sst2" / "dev.tsv").is_file():
            return Path(candidate).resolve()
    return None


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The folder holding verified copies of the course's datasets (TEXTCLF_DATA_DIR)."""
    found = _mirror()
    if found is None:
        pytest.skip("no data mirror: set TEXTCLF_DATA_DIR to a folder with the course's datasets")
    return found


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    """No mirror, and an empty download cache in a temporary folder."""
    cache = tmp_path / "cache"
    monkeypatch.delenv("TEXTCLF_DATA_DIR", raising=False)
    monkeypatch.delenv("TEXTCLF_OFFLINE", raising=False)
    monkeypatch.setenv("TEXTCLF_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, above all on a machine shared with other jobs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():
    """The packaged BERT's WordPiece tokenizer."""
    from textclf_utils.models import load_tokenizer

    return load_tokenizer(None)
