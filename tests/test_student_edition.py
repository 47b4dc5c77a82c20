"""The do-along cells of the lessons, and the student edition generated from them."""

import importlib.util
import json
from pathlib import Path

import pytest

from textclf_utils import exercises

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted(ROOT.glob("notebooks/[0-9][0-9]_*.ipynb"))
spec = importlib.util.spec_from_file_location("make_student", ROOT / "scripts" / "make_student.py")
make_student = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_student)


def _cells(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))["cells"]


def _source(cell):
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "edition"
    written = make_student.make_student_edition(out)
    return out, written


def test_every_lesson_01_to_06_has_do_along_cells_each_followed_by_its_check():
    names = []
    for path in LESSONS:
        cells = _cells(path)
        for index, cell in enumerate(cells):
            if "exercise" in cell["metadata"].get("tags", []):
                name = cell["metadata"]["nbgrader"]["grade_id"]
                names.append((path.name[:2], name))
                assert make_student.BEGIN in _source(cell) and f"def {name}(" in _source(cell), (path.name, name)
                assert f'exercises.check("{name}", {name})' in _source(cells[index + 1]), (path.name, name)
    assert len(names) >= 9 and {number for number, _ in names} == {"01", "02", "03", "04", "05", "06"}
    assert sorted(name for _, name in names) == sorted(exercises.EXERCISES)


def test_the_teachers_reference_solutions_pass_every_check():
    for path in LESSONS:
        for outcome in exercises.grade_notebook(path):
            assert outcome.passed, (path.name, outcome)


def test_the_student_edition_has_stubs_that_report_not_done_yet(edition):
    out, written = edition
    assert [p.name for p in written] == [p.name for p in LESSONS]
    graded = [outcome for path in written for outcome in exercises.grade_notebook(path)]
    assert len(graded) == len(exercises.EXERCISES)
    assert all(outcome.status == exercises.NOT_DONE for outcome in graded)


def test_no_line_of_any_solution_block_is_in_the_student_notebooks(edition):
    out, written = edition
    solution_lines = {line.strip() for path in LESSONS for cell in _cells(path)
                      for block in make_student.solution_blocks(_source(cell)) for line in block if line.strip()}
    assert len(solution_lines) > 30
    student_lines = {line.strip() for path in written for cell in _cells(path) for line in _source(cell).splitlines()}
    assert not solution_lines & student_lines, sorted(solution_lines & student_lines)
    assert not (out / "notebooks" / "solutions").exists()


def test_the_student_notebooks_have_no_outputs_and_keep_signatures_and_docstrings(edition):
    _, written = edition
    for path in written:
        for cell in _cells(path):
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None
            if "exercise" in cell["metadata"].get("tags", []):
                source = _source(cell)
                assert '"""' in source and "# YOUR CODE HERE\n    raise NotImplementedError()" in source


def test_the_student_notebooks_carry_no_test_markers_and_no_path_to_the_missing_solutions(edition):
    _, written = edition
    for path in written:
        text = "".join(_source(cell) for cell in _cells(path))
        assert "NBVAL_" not in text and "_solutions.ipynb" not in text, path.name


def test_the_edition_can_be_installed_and_run_by_itself(edition):
    out, _ = edition
    for name in ("textclf_utils/exercises.py", "textclf_utils/stored_runs/recipe_tuning_cpu.json", "pyproject.toml",
                 "requirements.txt", "scripts/setup_env.sh", "LICENSE", "README.md", "Makefile"):
        assert (out / name).is_file(), name
    assert not (out / "tests").exists()
    assert make_student.missing_named_paths(out) == []  # every file its lessons, README and Makefile name
    makefile = (out / "Makefile").read_text()
    for target in ("setup:", "lab:", "test:"):
        assert f"\n{target}" in makefile, target
    assert "make_student" not in makefile and "run_course" not in makefile and "tests" not in makefile.split("test:")[1]
    assert "Python 3.11" in (out / "README.md").read_text()


def test_a_path_the_edition_names_but_lacks_is_found(edition, tmp_path):
    out, _ = edition
    (tmp_path / "notebooks").mkdir()
    for name in ("README.md", "Makefile"):
        (tmp_path / name).write_text((out / name).read_text())
    (tmp_path / "README.md").write_text("Run `scripts/finetune.py`; see results/cpu.json.\n")
    assert make_student.missing_named_paths(tmp_path) == ["scripts/finetune.py", "scripts/setup_env.sh"]


def test_the_edition_runs_on_the_package_it_ships_and_a_missing_file_stops_it(edition, tmp_path):
    """What `make student-tests` relies on: from the edition's folder, with PYTHONPATH on it, Python imports
    the edition's own textclf_utils (not the checkout's editable install); a file it ships and a lesson reads
    (lesson 03's stored recipe runs), once removed, stops the lesson's cell with an error naming it."""
    import os
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "edition"
    shutil.copytree(out := edition[0], copy)
    stored = copy / "textclf_utils" / "stored_runs" / "recipe_tuning_cpu.json"
    code = ("import sys, pathlib, textclf_utils as t; from textclf_utils import recipes; print(t.__file__); "
            "recipes.stored_recipe_runs('recipe_tuning_cpu'); print('read'); pathlib.Path(sys.argv[1]).unlink(); "
            "recipes.stored_recipe_runs('recipe_tuning_cpu')")
    env = {**os.environ, "PYTHONPATH": str(copy)}
    ran = subprocess.run([sys.executable, "-c", code, str(stored)], cwd=copy, env=env, capture_output=True, text=True)
    assert ran.stdout.startswith(str(copy)) and "read" in ran.stdout, (ran.stdout, ran.stderr[-500:])
    assert ran.returncode != 0 and "recipe runs recipe_tuning_cpu.json are missing" in ran.stderr
    assert out != copy


def test_stubs_keep_the_indentation_and_unpaired_markers_are_refused():
    source = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    assert make_student.stub_solutions(source) == "def f(x):\n    '''doc'''\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    for broken in ("### BEGIN SOLUTION\nx = 1\n", "x = 1\n### END SOLUTION\n",
                   "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n"):
        with pytest.raises(ValueError, match="SOLUTION"):
            make_student.stub_solutions(broken)
    notebook = {"cells": [{"cell_type": "code", "source": "### BEGIN SOLUTION\n", "outputs": [], "metadata": {}}]}
    with pytest.raises(ValueError, match="lesson.ipynb, cell 0"):
        make_student.student_notebook(notebook, "lesson.ipynb")


def test_an_existing_folder_is_kept_without_force_and_the_course_itself_is_refused(tmp_path):
    (tmp_path / "work.txt").write_text("a student's work")
    with pytest.raises(SystemExit, match="--force"):
        make_student.make_student_edition(tmp_path)
    assert (tmp_path / "work.txt").read_text() == "a student's work"
    with pytest.raises(SystemExit, match="the course itself"):
        make_student.make_student_edition(ROOT, force=True)


def test_the_grading_script_writes_one_row_per_student_and_exercise(edition, tmp_path, capsys):
    import csv
    import shutil

    spec = importlib.util.spec_from_file_location("grade", ROOT / "scripts" / "grade.py")
    grade = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(grade)
    _, written = edition
    for student, source in (("alice", LESSONS[-1]), ("bob", written[-1])):
        (tmp_path / student).mkdir()
        shutil.copy(source, tmp_path / student / source.name)
    out = tmp_path / "grades.csv"
    assert grade.main([str(p) for p in sorted(tmp_path.glob("*/*.ipynb"))] + ["--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["student"], r["exercise"], r["status"], r["points"]) for r in rows] == [
        ("alice", "distillation_loss", "passed", "1"), ("bob", "distillation_loss", "not done yet", "0")]
    with pytest.raises(SystemExit):
        grade.main([str(tmp_path / "missing.ipynb")])
