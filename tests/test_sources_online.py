"""The datasets' public sources are alive: runs only where the network is reachable, else skipped."""

from __future__ import annotations

import urllib.request

import pytest

from textclf_utils import data
from textclf_utils.config import hub_is_reachable

pytestmark = pytest.mark.skipif(not hub_is_reachable(), reason="offline (or HF_HUB_OFFLINE is set): "
                                "the link check of the datasets' sources needs the network")


@pytest.mark.parametrize("name", list(data.DATASETS))
def test_hub_split_has_the_published_rows(name, empty_cache):
    spec = data.DATASETS[name]
    for file in spec.files:
        texts, labels = data.load_hub_rows(file.hub, spec)
        assert (len(texts), data.content_fingerprint(texts, labels)) == (file.rows, file.fingerprint), file.name


@pytest.mark.parametrize("url", sorted({f.url for s in data.DATASETS.values() for f in s.files if f.url}))
def test_archive_answers(url):
    request = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(request, timeout=data.DOWNLOAD_TIMEOUT_S) as response:
        assert response.status == 200
