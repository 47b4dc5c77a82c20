"""The repository's own promises: pinned requirements, conda and pip agree, one repository URL."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _requirements() -> dict[str, str]:
    lines = [l.strip() for l in (REPO / "requirements.txt").read_text().splitlines()]
    pins = {}
    for line in lines:
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"requirements.txt: {line!r} is not pinned with =="
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_environment_yml_pins_the_same_packages():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_pins = {}
    for line in pip_section:
        if line.startswith("-"):  # a pip option, such as the CPU index of PyTorch
            continue
        name, _, version = line.partition("==")
        conda_pins[name.lower().replace("_", "-")] = version
    assert conda_pins == _requirements()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip_section  # no CUDA build on a laptop
    assert any(str(d).startswith("python=") for d in env["dependencies"])


def test_torch_is_pinned_for_the_setup_script():
    assert re.fullmatch(r"\d+\.\d+\.\d+", _requirements()["torch"])


def test_one_repository_url_everywhere():
    url = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    texts = {"README.md": (REPO / "README.md").read_text()}
    for nb in sorted((REPO / "notebooks").rglob("*.ipynb")):
        texts[str(nb.relative_to(REPO))] = "".join(
            "".join(c["source"]) for c in json.loads(nb.read_text())["cells"])
    assert url in texts["README.md"]
    for name, text in texts.items():
        for found in re.findall(r"https://(?:github\.com|colab\.research\.google\.com/github)/[\w.-]+/[\w.-]+", text):
            repo = found.replace("colab.research.google.com/github", "github.com")
            assert repo == url, f"{name} names {found}, but pyproject.toml's repository is {url}"


def test_every_notebook_starts_with_the_environment_report():
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        code = [("".join(c["source"])) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        assert any("setup_notebook(" in c for c in code[:3]), f"{nb.name} does not call setup_notebook() first"


COMMITTED_NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb")) + sorted((REPO / "notebooks" / "solutions").glob("*.ipynb"))
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home|tmp|Users|content)/\S+")
UNFINISHED_BAR = re.compile(r"(?<!\d)0%\|")


def _output_text(output: dict) -> str:
    text = output.get("text", "")
    plain = output.get("data", {}).get("text/plain", "")
    return ("".join(text) if isinstance(text, list) else text) + ("".join(plain) if isinstance(plain, list) else plain)


def test_committed_notebooks_show_a_real_run_a_learner_can_read():
    """Outputs of one top-to-bottom run: every code cell executed in order, no errors, no machine paths,
    no progress bar left at 0 %, no table whose text form is an object's address."""
    problems = []
    for path in COMMITTED_NOTEBOOKS:
        name = path.relative_to(REPO)
        counts = []
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] != "code":
                continue
            counts.append(cell.get("execution_count"))
            for output in cell.get("outputs", []):
                text = _output_text(output)
                if output.get("output_type") == "error":
                    problems.append(f"{name} cell {index}: an error output ({output.get('ename')})")
                if MACHINE_PATH.search(text):
                    problems.append(f"{name} cell {index}: a machine path {MACHINE_PATH.search(text)[0]!r}")
                if UNFINISHED_BAR.search(text):
                    problems.append(f"{name} cell {index}: a progress bar left at 0 %")
                if re.search(r"object at 0x[0-9a-f]+>", text):
                    problems.append(f"{name} cell {index}: an object's repr instead of a readable table")
        if None in counts or counts != sorted(counts) or len(set(counts)) != len(counts):
            problems.append(f"{name}: execution counts not one run in order ({counts})")
    assert not problems, "\n".join(problems)


def test_notebooks_open_clean_in_the_kernel_the_setup_installs():
    """JupyterLab rewrites (and marks modified) a notebook whose kernelspec differs from the kernel it finds."""
    setup = (REPO / "scripts" / "setup_env.sh").read_text()
    installed = re.search(r'ipykernel install --sys-prefix --name (\S+) --display-name "([^"]+)"', setup)
    assert installed, "setup_env.sh installs no named kernel"
    expected = {"name": installed.group(1), "display_name": installed.group(2), "language": "python"}
    for path in sorted((REPO / "notebooks").rglob("*.ipynb")):
        assert json.loads(path.read_text())["metadata"]["kernelspec"] == expected, path.name
