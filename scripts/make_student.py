"""Write the student edition of the course: the lessons with their do-along solutions replaced by stubs.

    python scripts/make_student.py                 # writes build/student/
    python scripts/make_student.py --out DIR --force

Each lesson's code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's markers) becomes
``# YOUR CODE HERE`` + ``raise NotImplementedError()`` at the same indentation, so the function keeps its
signature and docstring; every output and execution count is cleared. The folder also gets what a student
needs to install and run the course (the package, requirements, set-up script, licence, data card), but
not ``notebooks/solutions/``. nbval's ``# NBVAL_...`` markers are dropped, and mentions of the solutions notebooks now point to the teacher.
The lessons run top to bottom with the stubs in place: each check reports
"not done yet" and the lesson goes on with the package's reference version.

Teachers on nbgrader can instead put the teacher's notebooks in ``source/<assignment>/``:
``nbgrader generate_assignment`` recognises the same markers and the cells' nbgrader metadata.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
TEST_MARKERS = re.compile(r"^# NBVAL_\w+\n?", re.MULTILINE)  # nbval's cell markers: test machinery, not lesson
SOLUTIONS_PATH = re.compile(r"`(?:notebooks/)?solutions/[^`]+_solutions\.ipynb`")
LESSONS = "notebooks/[0-9][0-9]_*.ipynb"
# What the student edition ships besides its lessons: the package (with its stored runs), what installs it,
# and the command-line scripts that the lessons point to.
COPIED = ["textclf_utils", "pyproject.toml", "requirements.txt", "environment.yml", "scripts/setup_env.sh",
          "scripts/finetune.py", "scripts/tune_recipe.py", "scripts/benchmark_finetuning.py", "data/README.md",
          "LICENSE", "NOTICE", ".gitignore"]
# Paths of the edition that its lessons, README and Makefile may name (checked by tests/test_student_edition.py).
RECORDED_RESULTS = re.compile(r"results/(?:cpu|gpu)\.json")
NAMED_PATH = re.compile(r"(?<![\w/.])(?:scripts|textclf_utils|notebooks|data|results)/[A-Za-z0-9_./-]*[A-Za-z0-9_]")
STUDENT_README = """# Transformer text classification: student edition

The lessons are in `notebooks/`, in order. Some cells ask you to write a function yourself: replace the
`raise NotImplementedError()` line, run the cell, then run the check below it. The check tells you whether
your function is right and, if not, what is wrong. Whatever it says, the lesson goes on (with your function
if it passes, otherwise with the course's version in `textclf_utils`), so you can always read on and come
back.

Set up once and open JupyterLab (Python 3.11 or newer; no internet needed after the packages are installed):

    make lab

The datasets: ask your teacher for the course's data folder and point the course at it before `make lab`
or `make test`:

    export TEXTCLF_DATA_DIR=/path/to/data

`make test` runs every lesson top to bottom in the quick `smoke` profile (tiny data), to check that your
set-up works: about 5 to 10 minutes on a 2-core laptop. The course's helper package is `textclf_utils/`; the
command-line scripts the lessons mention are in `scripts/` (`python scripts/finetune.py --help` shows how
to fine-tune from the command line, on one GPU or several with `torchrun`).

On Google Colab or Kaggle, upload a lesson and run it: its first cell installs the course's package there.
"""
STUDENT_MAKEFILE = """# The student edition's commands (see README.md):
#   make lab     set up (once) and open JupyterLab on notebooks/   (NO_BROWSER=1 on a headless server)
#   make test    set up (once), then run every lesson top to bottom in the smoke profile, offline
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8888

.PHONY: setup lab test
setup: $(VENV)/.textclf-installed

$(VENV)/.textclf-installed: requirements.txt pyproject.toml scripts/setup_env.sh
\tVENV=$(VENV) bash scripts/setup_env.sh

lab: setup
\t$(PY) -m jupyterlab --notebook-dir=notebooks --port=$(PORT) $(if $(NO_BROWSER),--no-browser) \\
\t    $(if $(filter 0,$(shell id -u)),--allow-root)

test: setup
\tHF_HUB_OFFLINE=1 TEXTCLF_PROFILE=smoke $(PY) -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \\
\t    --nbval-cell-timeout=900 notebooks
"""


def _source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def solution_blocks(source: str) -> list[list[str]]:
    """The lines between each BEGIN/END SOLUTION pair of a cell's source (markers excluded)."""
    blocks, current = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        if line.strip() == BEGIN:
            if current is not None:
                raise ValueError(f"line {number}: {BEGIN} inside another solution block")
            current = []
        elif line.strip() == END:
            if current is None:
                raise ValueError(f"line {number}: {END} without {BEGIN}")
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    if current is not None:
        raise ValueError(f"{BEGIN} without {END}")
    return blocks


def stub_solutions(source: str) -> str:
    """``source`` with each solution block replaced by the stub, indented like its BEGIN marker."""
    solution_blocks(source)  # the markers pair up, or a clear error
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() == BEGIN:
            indent = re.match(r"\s*", line).group(0)
            lines.extend(indent + stub for stub in STUB)
            inside = True
        elif line.strip() == END:
            inside = False
        elif not inside:
            lines.append(line)
    return "\n".join(lines)


def student_notebook(notebook: dict, name: str = "notebook") -> dict:
    """A copy of ``notebook`` with stubbed solutions, no outputs, no nbval markers, and the solutions
    notebooks (not shipped) named as the teacher's."""
    notebook = json.loads(json.dumps(notebook))
    for index, cell in enumerate(notebook["cells"]):
        source = TEST_MARKERS.sub("", _source(cell))
        if cell["cell_type"] == "markdown":
            source = SOLUTIONS_PATH.sub("your teacher's solutions notebook", source)
        cell["source"] = source
        if BEGIN in source or END in source:
            try:
                cell["source"] = stub_solutions(source)
            except ValueError as error:
                raise ValueError(f"{name}, cell {index}: {error}. Fix the markers in the teacher's notebook.") from None
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return notebook


def make_student_edition(out: Path, force: bool = False) -> list[Path]:
    """Write the student edition into ``out``; returns the notebooks written."""
    out = out.resolve()
    if out == ROOT or ROOT.is_relative_to(out):
        raise SystemExit(f"--out {out} would hold the course itself: choose a new folder, e.g. build/student.")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise SystemExit(f"{out} already exists and is not empty: pass --force to replace it.")
        shutil.rmtree(out)
    lessons = sorted(ROOT.glob(LESSONS))
    if not lessons:
        raise SystemExit(f"No lessons found under {ROOT / 'notebooks'}.")
    (out / "notebooks").mkdir(parents=True)
    written = []
    for path in lessons:
        notebook = student_notebook(json.loads(path.read_text(encoding="utf-8")), path.name)
        target = out / "notebooks" / path.name
        target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(target)
    for name in COPIED:
        source, target = ROOT / name, out / name
        if not source.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, target)
    (out / "README.md").write_text(STUDENT_README, encoding="utf-8")
    (out / "Makefile").write_text(STUDENT_MAKEFILE, encoding="utf-8")
    return written


def missing_named_paths(out: Path) -> list[str]:
    """The paths that the edition's lessons, README or Makefile name but the edition does not hold
    (except ``results/cpu.json`` and ``results/gpu.json``, which the lessons write themselves)."""
    texts = [(out / name).read_text(encoding="utf-8") for name in ("README.md", "Makefile")]
    texts += [_source(cell) for path in sorted((out / "notebooks").glob("*.ipynb"))
              for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]]
    named = {match.rstrip(".") for text in texts for match in NAMED_PATH.findall(text)}
    return sorted(path for path in named if not RECORDED_RESULTS.fullmatch(path) and not (out / path).exists())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "student", help="folder to write (build/student)")
    parser.add_argument("--force", action="store_true", help="replace the folder if it exists")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    written = make_student_edition(args.out, args.force)
    stubs = sum(_source(c).count(STUB[1]) for p in written for c in json.loads(p.read_text())["cells"]
                if c["cell_type"] == "code")
    print(f"Student edition in {args.out}: {len(written)} lessons, {stubs} cells to complete, "
          f"{time.perf_counter() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
