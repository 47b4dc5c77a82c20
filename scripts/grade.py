"""Grade students' notebooks: run each do-along cell's check, write one row per student and exercise.

    python scripts/grade.py submissions/*.ipynb                 # a table on screen
    python scripts/grade.py submitted/*/*/*.ipynb --csv grades.csv     # nbgrader's submitted/<student>/<assignment>/

Only the do-along cells are run (each on its own, see ``textclf_utils.exercises.grade_notebook``), so
grading takes seconds per notebook and a notebook that breaks elsewhere is still graded. The student's name
is the submission's parent folder, or the ``<student>`` of nbgrader's ``submitted/<student>/<assignment>/``
layout; pass ``--name-from file`` to use the file name instead.
Student code is executed: grade in a container or a throw-away account, as any autograder does.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from textclf_utils.exercises import grade_notebook


def student_name(path: Path, name_from: str) -> str:
    if name_from == "file":
        return path.stem
    parts = path.resolve().parts
    return parts[-3] if len(parts) >= 3 and parts[-4:-3] == ("submitted",) else path.parent.name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path, help="submitted .ipynb files")
    parser.add_argument("--csv", type=Path, help="also write the rows to this CSV file")
    parser.add_argument("--name-from", choices=("folder", "file"), default="folder",
                        help="where the student's name comes from (default: the parent folder)")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"not a file: {', '.join(missing)}")
    rows = []
    for path in args.notebooks:
        try:
            outcomes = grade_notebook(path)
        except ValueError as error:
            print(f"skipped {path}: {error}", file=sys.stderr)
            continue
        for outcome in outcomes:
            rows.append({"student": student_name(path, args.name_from), "notebook": path.name,
                         "exercise": outcome.exercise, "status": outcome.status, "points": int(outcome.passed),
                         "message": outcome.message})
    for row in rows:
        print(f"{row['student']:<16} {row['notebook']:<34} {row['exercise']:<30} {row['status']:<13} {row['message'][:80]}")
    if args.csv:
        with args.csv.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["student", "notebook", "exercise", "status", "points", "message"])
            writer.writeheader()
            writer.writerows(rows)
        print(f"{len(rows)} rows written to {args.csv}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
