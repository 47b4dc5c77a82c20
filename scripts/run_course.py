"""Execute the course's notebooks headless in one profile, as a teacher does before a term.

    python scripts/run_course.py --profile cpu                 # all notebooks -> build/executed/cpu/
    python scripts/run_course.py --profile cpu 03 04           # only notebooks whose names start so
    python scripts/run_course.py --profile cpu --solutions     # the exercise solutions too
    python scripts/run_course.py --profile cpu --in-place      # maintainers: refresh committed outputs

Each notebook runs in a fresh kernel, top to bottom; the script prints the minutes each took and
exits non-zero if any cell failed (the failing notebook is still written, with its error).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def drop_widget_outputs(notebook) -> int:
    """Remove the outputs that are live progress bars (tqdm's widgets, the Trainer's HTML table): a saved
    notebook can only show a state they were in, often "0%", never the finished bar. Returns how many."""
    removed = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})
                and "<progress" not in str(o.get("data", {}).get("text/html", ""))]  # Trainer's HTML bar
        removed += len(cell.outputs) - len(kept)
        cell.outputs = kept
    notebook.metadata.pop("widgets", None)
    return removed


def run_notebook(path: Path, output: Path, timeout: int) -> tuple[bool, float]:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    ok = True
    try:
        client.execute()
    except CellExecutionError as err:
        ok = False
        print(f"  FAILED: {str(err).splitlines()[0] if str(err) else err}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    drop_widget_outputs(notebook)
    output.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, output)
    return ok, elapsed


PROFILE_CHOICES = ["smoke", "cpu", "gpu", "gpu-cpu"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prefixes", nargs="*", help="run only notebooks whose file names start with these")
    parser.add_argument("--profile", default=os.environ.get("TEXTCLF_PROFILE") or "cpu",
                        choices=PROFILE_CHOICES, help="default: $TEXTCLF_PROFILE, else cpu")
    parser.add_argument("--output-dir", type=Path, help="default: build/executed/<profile>/")
    parser.add_argument("--in-place", action="store_true", help="overwrite the notebooks in notebooks/")
    parser.add_argument("--solutions", action="store_true", help="also run notebooks/solutions/ (after the lessons)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed for one cell")
    args = parser.parse_args(argv)
    if args.profile not in PROFILE_CHOICES:  # argparse does not check a default taken from $TEXTCLF_PROFILE
        parser.error(f"TEXTCLF_PROFILE={args.profile!r} is not a profile; use one of {', '.join(PROFILE_CHOICES)}.")

    os.environ["TEXTCLF_PROFILE"] = args.profile  # the kernels inherit it
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.solutions:
        paths += sorted((NOTEBOOKS / "solutions").glob("*.ipynb"))
    if args.prefixes:
        paths = [p for p in paths if p.name.startswith(tuple(args.prefixes))]
    if not paths:
        print(f"No notebook in {NOTEBOOKS} matches {args.prefixes}.", file=sys.stderr)
        return 2
    out_dir = NOTEBOOKS if args.in_place else (args.output_dir or ROOT / "build" / "executed" / args.profile)
    results = []
    for path in paths:
        print(f"{path.name} ({args.profile}) ...", flush=True)
        output = out_dir / path.relative_to(NOTEBOOKS)
        ok, elapsed = run_notebook(path, output, args.timeout)
        results.append((str(path.relative_to(NOTEBOOKS)), ok, elapsed))
        print(f"  {'ok' if ok else 'FAILED'} in {elapsed / 60:.1f} min -> {output}", flush=True)
    print(f"\n{'notebook':<50} {'result':<7} minutes")
    for name, ok, elapsed in results:
        print(f"{name:<50} {'ok' if ok else 'FAILED':<7} {elapsed / 60:.1f}")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
