"""The Colab path, simulated: a fake ``google.colab``, the first cells of a notebook run in a fresh kernel,
and the package installed by the notebook's own install cell from a local ``git+file://`` clone pinned
to a commit (the way a fork is set up: one command, ``scripts/set_repository.py``)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent


def _set_repository_module(root: Path):
    spec = importlib.util.spec_from_file_location(f"set_repository_{abs(hash(root))}", root / "scripts" / "set_repository.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_copy_of_the_install_cell_agrees_with_pyproject():
    sync = _set_repository_module(REPO)
    url, ref = sync.read_source()
    assert url == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    for path in sorted((REPO / "notebooks").rglob("*.ipynb")):
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert first.source == sync.install_cell(url, ref), f"{path.name}: run scripts/set_repository.py"
        assert "%pip install" in first.source and "KAGGLE_KERNEL_RUN_TYPE" in first.source
    readme = (REPO / "README.md").read_text()
    assert sync.PIP_LINE.format(url=url, ref=ref) in readme
    assert f"/blob/{ref}/notebooks/" in readme and "/blob/main/notebooks/" not in readme


def test_training_notebooks_ask_colab_for_a_gpu():
    for path in sorted((REPO / "notebooks").rglob("*.ipynb")):
        metadata = nbformat.read(path, as_version=4).metadata
        trains = path.name.startswith(("03_", "04_", "05_", "06_"))
        assert (metadata.get("accelerator") == "GPU") == trains, path.name


@pytest.mark.skipif(subprocess.run(["git", "--version"], capture_output=True).returncode != 0, reason="no git")
def test_colab_install_cell_installs_a_fork_at_its_pinned_commit(tmp_path):
    from nbclient import NotebookClient

    clone = tmp_path / "fork"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    commit = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    # A fork points every copy at itself with one command.
    subprocess.run([sys.executable, "scripts/set_repository.py", "--url", f"file://localhost{clone}", "--ref", commit],
                   cwd=clone, check=True, capture_output=True)
    lesson = nbformat.read(clone / "notebooks" / "06_knowledge_distillation.ipynb", as_version=4)
    first_cells = [c for c in lesson.cells if c.cell_type == "code"][:2]
    assert f"file://localhost{clone}" in first_cells[0].source and "setup_notebook(" in first_cells[1].source

    fake = tmp_path / "fake_modules"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text('"""A stand-in for Colab\'s own module."""\n')
    target = tmp_path / "site"  # stands for Colab's site-packages, which exists before the install
    target.mkdir()
    prelude = nbformat.v4.new_code_cell(
        f"import sys\nsys.path[:0] = [{str(target)!r}, {str(fake)!r}]\nimport google.colab")
    check = nbformat.v4.new_code_cell(
        "import textclf_utils, textclf_utils.config as c\n"
        f"assert textclf_utils.__file__.startswith({str(target)!r}), textclf_utils.__file__\n"
        "assert c.hosted_runtime() == 'colab'\nprint('installed from the fork')")
    notebook = nbformat.v4.new_notebook(cells=[prelude, *first_cells, check])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PIP_TARGET=str(target), PIP_NO_DEPS="1", PIP_NO_BUILD_ISOLATION="0", PIP_NO_INDEX="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", HF_HUB_OFFLINE="1", TEXTCLF_PROFILE="smoke")
    previous = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits it
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(previous)
    outputs = "".join(o.get("text", "") + "".join(o.get("traceback", [])) for c in notebook.cells
                      for o in c.get("outputs", []))
    assert "installed from the fork" in outputs
    assert "gpu profile on a T4" in outputs and "runtime" in outputs and "colab" in outputs
    assert (target / "textclf_utils" / "gpu_plan.py").is_file()
