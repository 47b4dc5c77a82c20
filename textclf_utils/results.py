"""The course's headline figures: each notebook run in the ``cpu`` or ``gpu`` profile records them in
``results/<profile>.json`` (one key per notebook), and the README's results table is written from there.

``smoke`` runs (and any other profile) record nothing, so a quick check never overwrites real results.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

RESULTS_ENV = "TEXTCLF_RESULTS_DIR"
RECORDED_PROFILES = ("cpu", "gpu")
README_BEGIN = "<!-- results table: written by scripts/update_readme_results.py from results/*.json -->"
README_END = "<!-- end of results table -->"


def results_dir() -> Path:
    """``$TEXTCLF_RESULTS_DIR``, else the repository's ``results/`` folder, else ``./results``."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV]).expanduser()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file():
        return repo / "results"
    return Path.cwd() / "results"


def _check_value(key: str, value: Any) -> None:
    """A figure is a finite number, a short string, or a list/dict of those (e.g. a learning curve)."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"results[{key!r}] = {value!r}: record numbers or short strings, not {type(value).__name__}.")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"results[{key!r}] = {value!r} is not a finite number; fix the computation first.")
    elif isinstance(value, str):
        if len(value) > 200:
            raise ValueError(f"results[{key!r}] is a {len(value)}-character string; keep figures short (<= 200).")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_value(key, item)
    elif isinstance(value, Mapping):
        for name, item in value.items():
            _check_value(f"{key}.{name}", item)
    else:
        raise TypeError(f"results[{key!r}] is a {type(value).__name__}; convert it to float, int or str "
                        "(e.g. float(x) for a NumPy number).")


def _plain(value: Any, key: str = "") -> Any:
    """NumPy scalars to Python numbers, tuples to lists, recursively (``key``: where ``value`` is, for errors)."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        if getattr(value, "ndim", 0):  # an array or tensor, not a scalar
            raise TypeError(f"results[{key!r}] is an array of shape {tuple(value.shape)}; a figure is one number "
                            "or a short string: record a summary (e.g. float(x.mean())) or x.tolist().")
        value = value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v, key) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    return value


def load_results(profile: str, folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """``results/<profile>.json`` as a dict (empty when the file does not exist yet)."""
    path = (folder or results_dir()) / f"{profile}.json"
    if not path.is_file():
        return {}
    try:
        results = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path.name} in the results folder is not valid JSON ({err}). Restore it "
                         f"(git checkout results/{path.name}) or delete it and run the notebooks in the "
                         f"{profile} profile again.") from None
    if not isinstance(results, dict):
        raise ValueError(f"{path.name} in the results folder should hold an object of notebooks, got "
                         f"{type(results).__name__}. Restore it (git checkout results/{path.name}) or delete it.")
    return results


def record_results(notebook: str, figures: Mapping[str, Any], profile, folder: Path | None = None) -> Path | None:
    """Write ``figures`` under the key ``notebook`` (a notebook's file stem, e.g. ``"03_finetune_bert"``) in
    ``results/<profile>.json``, replacing what that notebook recorded before; the other notebooks' figures
    stay. Only the ``cpu`` and ``gpu`` profiles record (not the gpu-cpu rehearsal); others return ``None``. The file is replaced
    atomically, so an interrupted write never leaves half a file."""
    name = getattr(profile, "name", profile)
    rehearsal = bool(getattr(profile, "rehearsal", False))  # gpu-cpu: the gpu code path at smoke scale
    if not notebook or "/" in notebook or notebook.endswith(".ipynb"):
        raise ValueError(f"notebook must be a notebook's file stem such as '03_finetune_bert', got {notebook!r}.")
    if not figures:
        raise ValueError(f"No figures to record for {notebook!r}.")
    plain = _plain(dict(figures))
    for key, value in plain.items():
        _check_value(key, value)
    if name not in RECORDED_PROFILES or rehearsal:
        print(f"{getattr(profile, 'scale', name)}-scale {name} profile: nothing recorded (only the {' and '.join(RECORDED_PROFILES)} profiles "
              "write results/<profile>.json)")
        return None
    folder = folder or results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    results = load_results(name, folder)
    results[notebook] = plain
    path = folder / f"{name}.json"
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".json")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(dict(sorted(results.items())), out, indent=2, sort_keys=False)
            out.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f"recorded {len(plain)} figures under {notebook!r} in results/{name}.json")
    return path


def _format_figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        return "(see the notebook)"
    return str(value)


def readme_results_table(results_by_profile: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """The README's results section (Markdown): one row per notebook and profile, every recorded figure."""
    lines = [README_BEGIN, "", "| notebook | profile | figures |", "|---|---|---|"]
    rows = sorted((notebook, profile) for profile, by_notebook in results_by_profile.items() for notebook in by_notebook)
    for notebook, profile in rows:
        figures = results_by_profile[profile][notebook]
        text = "; ".join(f"`{key}` {_format_figure(value)}" for key, value in figures.items())
        lines.append(f"| {notebook} | {profile} | {text} |")
    if not rows:
        lines.append("| – | – | no results recorded yet |")
    lines += ["", README_END]
    return "\n".join(lines)


def readme_with_results(readme: str, folder: Path | None = None) -> str:
    """``readme`` with the text between the results markers replaced by the table of ``results/*.json``."""
    if README_BEGIN not in readme or README_END not in readme:
        raise ValueError(f"The README has no results markers: add {README_BEGIN!r} and {README_END!r}.")
    table = readme_results_table({p: load_results(p, folder) for p in RECORDED_PROFILES})
    head, rest = readme.split(README_BEGIN, 1)
    return head + table + rest.split(README_END, 1)[1]
