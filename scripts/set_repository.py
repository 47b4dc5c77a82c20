"""Write the course's repository address and pinned release into every copy, from pyproject.toml.

    python scripts/set_repository.py                                   # re-sync every copy
    python scripts/set_repository.py --url https://github.com/<you>/<fork> --ref main   # a fork: one command

The one source is pyproject.toml: ``[project.urls] Repository`` and ``[tool.textclf-course] ref`` (a tag
or a commit). This rewrites, idempotently:

- every notebook's first code cell (the Colab/Kaggle install cell), from ``INSTALL_CELL``;
- the lessons' ``setup_notebook(...)`` call, which names the notebook (for its T4 estimate);
- the size and threshold look-ups ``[profile.name]`` and tests ``profile.name == "smoke"`` -> ``profile.scale``
  (so that the gpu-cpu rehearsal runs the gpu branches at smoke sizes and thresholds);
- ``accelerator: GPU`` metadata in the notebooks that fine-tune a model;
- the README's Colab badges and its ``%pip`` line.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
NOTEBOOKS = ROOT / "notebooks"
README = ROOT / "README.md"
INSTALL_MARK = "install the course's helper package"
TRAINING_NOTEBOOKS = ("03_", "04_", "05_", "06_")  # their prefixes: these fine-tune a transformer

INSTALL_CELL = '''\
# On Google Colab or Kaggle, install the course's helper package first (elsewhere, `make lab` has done it).
import os, sys
REPOSITORY = "{url}"  # the course's repository and the release these notebooks go with
REF = "{ref}"
if "google.colab" in sys.modules or os.environ.get("KAGGLE_KERNEL_RUN_TYPE"):
    %pip install -q "textclf_utils[offline-model] @ git+{{REPOSITORY}}@{{REF}}"
# Colab: to keep trained models across notebooks and sessions on your Google Drive, run this line once a session:
# from google.colab import drive; drive.mount("/content/drive"); os.environ["TEXTCLF_ARTIFACTS_DIR"] = "/content/drive/MyDrive/textclf-artifacts"'''

PIP_LINE = '%pip install -q "textclf_utils[offline-model] @ git+{url}@{ref}"'


def read_source() -> tuple[str, str]:
    """``(repository URL, ref)`` from pyproject.toml."""
    project = tomllib.loads(PYPROJECT.read_text())
    return project["project"]["urls"]["Repository"], project["tool"]["textclf-course"]["ref"]


def write_source(url: str, ref: str) -> None:
    text = PYPROJECT.read_text()
    text = re.sub(r'(?m)^Repository = ".*"$', f'Repository = "{url}"', text)
    text = re.sub(r'(?m)^ref = ".*"$', f'ref = "{ref}"', text)
    PYPROJECT.write_text(text)


def install_cell(url: str, ref: str) -> str:
    return INSTALL_CELL.format(url=url, ref=ref)


def sync_notebook(path: Path, url: str, ref: str) -> bool:
    """Rewrite one notebook's copies; True if anything changed."""
    before = path.read_text()
    notebook = nbformat.reads(before, as_version=4)
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    install = next((c for c in code[:2] if INSTALL_MARK in "".join(c["source"])), None)
    if install is None:
        raise SystemExit(f"{path}: no install cell among the first code cells (it holds {INSTALL_MARK!r}).")
    install["source"] = install_cell(url, ref)
    lesson = path.parent == NOTEBOOKS
    for cell in code:
        source = "".join(cell["source"])
        new = re.sub(r"profile\.name( [!=]= \"smoke\")", r"profile.scale\1", source)
        new = new.replace("[profile.name]", "[profile.scale]").replace(".get(profile.name", ".get(profile.scale")
        if lesson and path.name.startswith(TRAINING_NOTEBOOKS):
            new = re.sub(r"setup_notebook\((?:notebook=\"[\w-]+\")?\)", f'setup_notebook(notebook="{path.stem}")', new)
        if new != source:
            cell["source"] = new
    metadata = notebook.setdefault("metadata", {})
    if path.name.startswith(TRAINING_NOTEBOOKS):
        metadata["accelerator"] = "GPU"
        metadata.setdefault("colab", {})["gpuType"] = "T4"
    after = nbformat.writes(notebook) + "\n"
    if after != before:
        path.write_text(after)
    return after != before


def sync_readme(url: str, ref: str) -> bool:
    before = README.read_text()
    slug = url.removeprefix("https://github.com/")
    text = re.sub(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w./-]+?/notebooks/",
                  f"https://colab.research.google.com/github/{slug}/blob/{ref}/notebooks/", before)
    text = re.sub(r'%pip install -q "textclf_utils\[offline-model\] @ git\+[^"]*"', PIP_LINE.format(url=url, ref=ref),
                  text)
    if text != before:
        README.write_text(text)
    return text != before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="the repository, e.g. https://github.com/you/fork (default: pyproject's)")
    parser.add_argument("--ref", help="the tag or commit the notebooks install (default: pyproject's)")
    args = parser.parse_args()
    url, ref = read_source()
    if args.url or args.ref:
        url, ref = (args.url or url).rstrip("/"), args.ref or ref
        write_source(url, ref)
    changed = [p for p in sorted(NOTEBOOKS.rglob("*.ipynb")) if sync_notebook(p, url, ref)]
    if sync_readme(url, ref):
        changed.append(README)
    for path in changed:
        print(f"rewrote {path.relative_to(ROOT)}")
    print(f"repository {url} at {ref}: {len(changed)} file(s) changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
