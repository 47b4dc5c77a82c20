"""The command-line scripts refuse what would lose work, and follow TEXTCLF_PROFILE (no training here)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_script", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finetune_refuses_an_output_dir_with_files_unless_overwrite(tmp_path, capsys):
    finetune = _script("finetune")
    out = tmp_path / "run"
    out.mkdir()
    assert finetune.parse_args(["--dataset", "sst2", "--output-dir", str(out)]).output_dir == out  # empty: fine
    (out / "metrics.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_:
        finetune.parse_args(["--dataset", "sst2", "--output-dir", str(out)])
    assert exit_.value.code == 2 and "already holds files" in capsys.readouterr().err
    assert finetune.parse_args(["--dataset", "sst2", "--output-dir", str(out), "--overwrite"]).overwrite
    assert (out / "metrics.json").read_text() == "{}"
    with pytest.raises(SystemExit):
        finetune.parse_args(["--dataset", "sst2", "--output-dir", str(out / "metrics.json")])
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("env, argv, expected", [
    ("smoke", [], "smoke"), ("gpu", ["--profile", "cpu"], "cpu"), (None, [], "cpu")])
def test_run_course_follows_textclf_profile(monkeypatch, tmp_path, env, argv, expected):
    run_course = _script("run_course")
    if env is None:
        monkeypatch.delenv("TEXTCLF_PROFILE", raising=False)
    else:
        monkeypatch.setenv("TEXTCLF_PROFILE", env)
    seen = []
    monkeypatch.setattr(run_course, "run_notebook", lambda path, output, timeout: (seen.append(output), (True, 0.0))[1])
    assert run_course.main([*argv, "01", "--output-dir", str(tmp_path)]) == 0
    assert seen and all(p.parent == tmp_path for p in seen)
    assert os.environ["TEXTCLF_PROFILE"] == expected


def test_mutation_sites_of_a_small_function(monkeypatch):
    spec = importlib.util.spec_from_file_location("mutation_sample", REPO / "scripts" / "mutation_sample.py")
    mutation = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "mutation_sample", mutation)  # its dataclass looks itself up there
    spec.loader.exec_module(mutation)
    source = ('def f(x: int = 3, flag=True) -> int:\n'
              '    """Doc 1 < 2."""\n'
              '    if x < 0 and flag:\n'
              '        raise ValueError(f"x={x + 1}")\n'
              '    return x * 2\n')
    sites = {m.description: m for m in mutation.mutation_sites(source)}
    # nothing from the defaults, the annotations, the docstring or the f-string
    assert sorted(sites) == sorted(["< -> <=", "0 -> 1", "and -> or", "raise -> pass", "return value -> return None",
                                    "* -> /", "2 -> 3"])
    lines = lambda key: sites[key].apply(source).splitlines()  # noqa: E731
    assert lines("< -> <=")[2] == "    if (x <= 0) and flag:"
    assert lines("and -> or")[2] == "    if (x < 0 or flag):"
    assert lines("raise -> pass")[3] == "        pass"
    assert lines("return value -> return None")[4] == "    return None"
    assert lines("* -> /")[4] == "    return (x / 2)"
    assert lines("2 -> 3")[4] == "    return x * 3"
    for mutant in sites.values():  # each changes one thing and stays valid Python
        compile(mutant.apply(source), "mutant", "exec")
    assert mutation.sample(list(sites.values()), 3, seed=1) == mutation.sample(list(sites.values()), 3, seed=1)
    assert mutation.mutation_sites("ok = not False\n")[0].apply("ok = not False\n") == "ok = not True\n"
