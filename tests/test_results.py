"""results.record_results: what a notebook records, where, and what it refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textclf_utils import results


def test_records_per_notebook_and_keeps_the_others(tmp_path):
    results.record_results("03_finetune_bert", {"sst2_test_accuracy": np.float64(0.89), "seeds": 3}, "cpu", tmp_path)
    results.record_results("04_evaluation_metrics", {"ece": 0.05}, "cpu", tmp_path)
    results.record_results("03_finetune_bert", {"sst2_test_accuracy": 0.9, "selected_on": "validation"}, "cpu", tmp_path)
    stored = json.loads((tmp_path / "cpu.json").read_text())
    assert stored == {"03_finetune_bert": {"sst2_test_accuracy": 0.9, "selected_on": "validation"},
                      "04_evaluation_metrics": {"ece": 0.05}}
    assert list(stored) == sorted(stored)
    assert [p.name for p in tmp_path.iterdir()] == ["cpu.json"]  # no temporary file left behind


def test_smoke_records_nothing(tmp_path, capsys):
    assert results.record_results("03_finetune_bert", {"x": 1.0}, "smoke", tmp_path) is None
    assert not (tmp_path / "smoke.json").exists() and "nothing recorded" in capsys.readouterr().out


def test_the_gpu_cpu_rehearsal_records_nothing(tmp_path, capsys):
    from textclf_utils.config import get_profile

    rehearsal = get_profile("gpu-cpu")
    assert rehearsal.name == "gpu" and rehearsal.rehearsal
    assert results.record_results("03_finetune_bert", {"x": 1.0}, rehearsal, tmp_path) is None
    assert not (tmp_path / "gpu.json").exists() and "nothing recorded" in capsys.readouterr().out


def test_nested_learning_curve_is_accepted(tmp_path):
    curve = {"sizes": [250, 1000], "tfidf": [0.7, 0.75]}
    results.record_results("02_build_an_encoder", {"learning_curve": curve}, "gpu", tmp_path)
    assert results.load_results("gpu", tmp_path)["02_build_an_encoder"]["learning_curve"] == curve


@pytest.mark.parametrize("figures, match", [
    ({"acc": float("nan")}, "not a finite number"),
    ({"acc": None}, "numbers or short strings"),
    ({"acc": object()}, "convert it"),
    ({"note": "x" * 201}, "201-character"),
    ({"curve": {"a": [0.5, float("inf")]}}, "curve.a"),
    ({}, "No figures"),
])
def test_bad_figures_are_refused_and_nothing_is_written(tmp_path, figures, match):
    with pytest.raises((TypeError, ValueError), match=match):
        results.record_results("03_finetune_bert", figures, "cpu", tmp_path)
    assert not (tmp_path / "cpu.json").exists()


@pytest.mark.parametrize("stem", ["03_finetune_bert.ipynb", "notebooks/03", ""])
def test_notebook_must_be_a_stem(tmp_path, stem):
    with pytest.raises(ValueError, match="file stem"):
        results.record_results(stem, {"x": 1}, "cpu", tmp_path)


@pytest.mark.parametrize("text, message", [
    ('{"01_attention_math": {"a": 1', "cpu.json in the results folder is not valid JSON"),
    ("[1, 2]", "should hold an object of notebooks, got list")])
def test_a_damaged_results_file_says_which_and_how_to_restore_it(tmp_path, text, message):
    (tmp_path / "cpu.json").write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        results.load_results("cpu", tmp_path)
    assert "git checkout results/cpu.json" in str(err.value)
    assert (tmp_path / "cpu.json").read_text() == text  # nothing lost
    with pytest.raises(ValueError, match="cpu.json"):  # nor overwritten by a new record
        results.record_results("01_attention_math", {"x": 1.0}, "cpu", tmp_path)
    assert (tmp_path / "cpu.json").read_text() == text


def test_the_file_is_written_sorted_with_two_space_indents_and_its_path_returned(tmp_path):
    results.record_results("04_evaluation_metrics", {"b": 2.0}, "cpu", tmp_path)
    path = results.record_results("03_finetune_bert", {"a": 1.0}, "cpu", tmp_path)
    assert path == tmp_path / "cpu.json"
    expected = {"03_finetune_bert": {"a": 1.0}, "04_evaluation_metrics": {"b": 2.0}}
    assert path.read_text() == json.dumps(expected, indent=2) + "\n"  # the committed format: small diffs


@pytest.mark.parametrize("readme", ["only the start <!-- x -->", "only the end"])
def test_a_readme_with_one_marker_is_refused(tmp_path, readme):
    for marker in (results.README_BEGIN, results.README_END):
        with pytest.raises(ValueError, match="no results markers"):
            results.readme_with_results(f"{readme}\n{marker}\n", tmp_path)


def test_results_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_ENV, str(tmp_path))
    assert results.results_dir() == tmp_path
    monkeypatch.delenv(results.RESULTS_ENV)
    assert results.results_dir().name == "results" and (results.results_dir().parent / "pyproject.toml").is_file()


def test_readme_table_is_written_between_the_markers(tmp_path):
    results.record_results("03_finetune_bert", {"sst2_test_accuracy": 0.8912, "selected_on": "validation",
                                                "curve": [1, 2]}, "cpu", tmp_path)
    readme = f"intro\n{results.README_BEGIN}\nold\n{results.README_END}\noutro\n"
    updated = results.readme_with_results(readme, tmp_path)
    assert updated.startswith("intro\n") and updated.endswith("outro\n") and "old" not in updated
    assert "| 03_finetune_bert | cpu | `sst2_test_accuracy` 0.8912; `selected_on` validation; `curve` (see" in updated
    with pytest.raises(ValueError, match="no results markers"):
        results.readme_with_results("no markers", tmp_path)


def test_readme_agrees_with_the_committed_results():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    assert readme == results.readme_with_results(readme, root / "results"), (
        "README.md's results table differs from results/*.json: run python scripts/update_readme_results.py")


def test_an_array_is_refused_with_its_key_and_nothing_is_written(tmp_path):
    with pytest.raises(TypeError, match=r"results\['acc'\] is an array of shape \(3,\).*float\(x.mean\(\)\)"):
        results.record_results("03_x", {"acc": np.ones(3)}, "cpu", tmp_path)
    with pytest.raises(TypeError, match=r"results\['per_seed.b'\] is an array of shape \(2, 2\)"):
        results.record_results("03_x", {"per_seed": {"a": 1.0, "b": np.ones((2, 2))}}, "cpu", tmp_path)
    assert not any(tmp_path.iterdir())
    results.record_results("03_x", {"acc": np.float32(0.5), "n": np.array(3)}, "cpu", tmp_path)
    assert results.load_results("cpu", tmp_path) == {"03_x": {"acc": 0.5, "n": 3}}


def test_the_readme_quotes_the_stored_precision_benchmark():
    """The README's bf16 table gives the stored benchmark's figures, rounded as the ranges allow."""
    from pathlib import Path

    from textclf_utils.recipes import stored_recipe_runs

    bench = stored_recipe_runs("precision_benchmark_cpu")
    native = bench["native"]
    limited = next(run for name, run in bench.items() if name.startswith("oneDNN limited"))
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    recipe, forced = native["recipe"], limited["bf16 forced"]
    assert (f"**{recipe['speed_vs_fp32']:.1f}× faster** [{recipe['speed_vs_fp32_min']:.2f}, "
            f"{recipe['speed_vs_fp32_max']:.2f}]") in readme
    assert (f"**{1 / forced['speed_vs_fp32']:.0f}× slower** ({1 / forced['speed_vs_fp32_max']:.0f}–"
            f"{1 / forced['speed_vs_fp32_min']:.0f}×)") in readme
    fallback = limited["recipe"]
    assert (f"**{fallback['speed_vs_fp32']:.2f}×** [{fallback['speed_vs_fp32_min']:.2f}, "
            f"{fallback['speed_vs_fp32_max']:.2f}]") in readme
    for run in (native, limited):
        assert f"| {round(run['fp32']['median_ms']):,} | {round(run['recipe']['median_ms']):,} |" in readme
