"""Every bad input and fault of ``fault_catalogue``: a clear error that names the problem, or the right
behaviour (repairing, keeping, accepting), and never a raw library error, a vague one, a silent wrong result,
lost data or a hang."""

from __future__ import annotations

import pytest

import fault_catalogue as faults

# Cases that do not behave well yet, by name, with the reason (none today).
KNOWN_FAILURES: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def quiet_and_clean(monkeypatch_module):
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    with faults.quiet_libraries():
        yield
    faults.remove_temporary_folders()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def case_marks(probe: faults.Probe):
    if probe.name in KNOWN_FAILURES:
        return [pytest.mark.xfail(reason=KNOWN_FAILURES[probe.name], strict=True)]
    return []


@pytest.mark.parametrize("probe", [pytest.param(p, id=f"{p.area}/{p.name}", marks=case_marks(p))
                                   for p in faults.PROBES])
def test_the_package_answers_a_fault_well(probe):
    result = faults.run_probe(probe)
    assert result.well, f"[{result.outcome}] {probe.description}: {result.detail}"


def test_the_catalogue_covers_every_area_with_unique_names():
    names = [p.name for p in faults.PROBES]
    assert len(names) == len(set(names)) and len(names) >= 300
    assert {p.area for p in faults.PROBES} >= {"data", "training loop", "distillation", "compression", "metrics",
                                               "imbalance", "scripts", "exercises", "model cache"}
    assert set(KNOWN_FAILURES) <= set(names)


def test_the_judge_tells_a_clear_error_from_a_raw_vague_or_silent_one():
    """The classification itself: a library's own error, a package error without the expected words, and no
    error at all are each caught (a catalogue that passes everything proves nothing)."""
    import numpy as np

    from textclf_utils import metrics

    def judge(call, expect):
        return faults.run_probe(faults.Probe("self-check", "case", "case", call, expect)).outcome

    assert judge(lambda: metrics.check_labels([0, 5], None, 2), r"outside the label set") == "clear"
    assert judge(lambda: metrics.check_labels([0, 5], None, 2), r"no such words") == "vague"
    assert judge(lambda: np.zeros(2).reshape(3), r"reshape") == "raw"
    assert judge(lambda: metrics.check_labels([0, 1], None, 2), r"anything") == "silent"
