"""A sampled mutation score of the unit tests of one ``textclf_utils`` module (run by hand, not in CI).

    python scripts/mutation_sample.py metrics --sample 20 --seed 0

Parses the module with ``ast``, lists every mutation site (comparisons ``<``/``<=``, ``>``/``>=``, ``==``/``!=``;
arithmetic ``+``/``-``, ``*``/``/``; a number ``c`` to ``c + 1``; ``and``/``or``; ``True``/``False``; a ``raise``
replaced by ``pass``; a returned value replaced by ``None``), draws ``--sample`` of them with ``--seed``, and
for each writes the mutant into a temporary copy of the package (the real files are never touched) and runs
the module's test files there with ``pytest -x -q``. A mutant is *killed* when the tests fail, *survived*
when they pass, *timeout* when they run past ``--timeout`` twice (the second time with three times as long;
counted as killed: the change was noticed). Mutants listed in ``EQUIVALENT`` (no behaviour change) are shown but left out of the score.

Not mutated: docstrings and other strings, f-strings (message text), annotations, and parameter defaults
(a default is a choice the tests would only restate). The sample depends on the module's text: edit the
module and the same seed draws other sites.
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "textclf_utils"
# Copied next to the package, so that it finds its repository as the real one does (data/, artifacts/).
REPO_FILES = ("pyproject.toml", "data/README.md")

TESTS: dict[str, list[str]] = {
    "attention": ["tests/test_attention.py"],
    "checks": ["tests/test_checks.py", "tests/test_faults.py"],
    "compression": ["tests/test_compression.py", "tests/test_faults.py"],
    "config": ["tests/test_config.py"],
    "data": ["tests/test_data.py"],
    "distill": ["tests/test_distill.py", "tests/test_gpu_path.py"],  # the latter: mixed precision on the CPU
    "encoder": ["tests/test_encoder.py"],
    "exercises": ["tests/test_exercises.py", "tests/test_student_edition.py"],
    "gpu_plan": ["tests/test_gpu_plan.py", "tests/test_gpu_path.py"],
    "imbalance": ["tests/test_imbalance.py", "tests/test_faults.py"],
    "learning_curve": ["tests/test_learning_curve.py"],
    "metrics": ["tests/test_metrics.py", "tests/test_faults.py"],
    "model_card": ["tests/test_saved_models.py"],
    "model_cache": ["tests/test_training.py", "tests/test_distill.py", "tests/test_gpu_path.py"],
    "models": ["tests/test_models.py", "tests/test_pooling.py", "tests/test_saved_models.py"],
    "notebook": ["tests/test_config.py"],
    "plots": ["tests/test_plots.py", "tests/test_plots_evaluation.py"],
    "pooling": ["tests/test_pooling.py"],
    "recipes": ["tests/test_training.py", "tests/test_gpu_path.py", "tests/test_gpu_plan.py"],
    "results": ["tests/test_results.py"],
    "trainer_recipe": ["tests/test_training.py", "tests/test_gpu_path.py"],
    "training": ["tests/test_training.py", "tests/test_gpu_path.py"],
}

# Mutants checked by hand to change no behaviour, by module and ``Mutant.key``, with the reason.
EQUIVALENT: dict[str, dict[str, str]] = {
    "data": {"L384:80 True -> False": "tqdm(unit_scale=False): the download bar shows bytes, not kB/MB, display only"},
    "distill": {"L211:95 False -> True": "tqdm(leave=True): the finished progress bar stays on screen, display only",
                "L401:42 True -> False": "load_state_dict(strict=False): the state holds every key of the new model "
                                         "(built from the same config), so both load the same",
                "L332:108 2 -> 3": "`model_num_labels(student) or 2`: train_student's students are Hugging Face "
                                   "classifiers, which always say their num_labels, so the fallback never runs"},
    "imbalance": {"L48:14 1.0 -> 2.0": "raw = 2 / counts: the weights are divided by their mean, which cancels the 2"},
    "training": {
        "L317:41 True -> False": "non_blocking=False: the same values, copied synchronously (only CUDA's overlap changes)",
        "L214:41 True -> False": "non_blocking=False: the same values, copied synchronously (only CUDA's overlap changes)",
        "L409:65 False -> True": "field(repr=True) for final_eval: only how a TrainingResult prints",
        "L601:96 2 -> 3": "a larger evaluation batch: the same logits up to float rounding (batches are length-sorted)",
        "L607:79 0.0 -> 1.0": "the value when no token was padded or real: unreachable, empty data is refused first",
    },
    # Appearance only: figure and font sizes, margins, tick length, line width (judged by looking at the plot).
    "model_cache": {
        "L60:69 2 -> 3": "json.dumps(indent=3) of training.json: the same record, indented differently",
        "L121:64 True -> False": "no fallback when loading the recipe's model: finetune_recipe has just resolved it to "
                                 "one that loads (the packaged model when the Hub is unreachable)",
    },
    "plots": {key: "display only: a size, margin or width of the figure" for key in (
        "L34:45 1.5 -> 2.5", "L88:107 0.3 -> 1.3", "L93:76 0.08 -> 1.08", "L103:34 0 -> 1", "L109:24 1 -> 2",
        "L124:61 3.8 -> 4.8", "L155:53 2 -> 3", "L158:23 8 -> 9", "L169:45 2 -> 3", "L186:59 4.5 -> 5.5")},
    "learning_curve": {"L150:71 1.0 -> 2.0": "clamp(min=2) of the real-token count: a BERT tokenizer always gives "
                                             "[CLS] and [SEP], so the count is never below 2"},
    "trainer_recipe": {"L24:31 True -> False": "dataset.map(batched=False): the same tokenised rows, one at a time"},
    # Mutants of the checks' own inputs: the check runs on other numbers, and still tells the reference from
    # every written-out mistake on them (the tests feed both), so what it accepts does not change.
    "exercises": {key: "a check's input, not what the check accepts" for key in (
        "L280:26 2 -> 3", "L351:33 0.5 -> 1.5", "L360:35 5 -> 6", "L468:62 6 -> 7", "L551:36 7 -> 8",
        "L635:77 0.5 -> 1.5")},
}

SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.And: ast.Or, ast.Or: ast.And,
}


@dataclass(frozen=True)
class Mutant:
    """One change: the source span ``(line, col)``..``(end_line, end_col)`` (1-based lines, 0-based
    columns, as ``ast`` gives them) becomes ``replacement``."""

    line: int
    col: int
    end_line: int
    end_col: int
    replacement: str
    description: str

    @property
    def key(self) -> str:
        return f"L{self.line}:{self.col} {self.description}"

    def apply(self, source: str) -> str:
        """``source`` with the span replaced."""
        lines = source.splitlines(keepends=True)
        start = sum(len(l) for l in lines[:self.line - 1]) + len(lines[self.line - 1].encode()[:self.col].decode())
        end = sum(len(l) for l in lines[:self.end_line - 1]) + len(
            lines[self.end_line - 1].encode()[:self.end_col].decode())
        return source[:start] + self.replacement + source[end:]


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """Ids of the nodes not to mutate: inside f-strings, annotations and parameter defaults."""
    skipped: set[int] = set()

    def skip(node: ast.AST | None) -> None:
        if node is not None:
            skipped.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for default in node.args.defaults + node.args.kw_defaults:
                skip(default)
            if not isinstance(node, ast.Lambda):
                skip(node.returns)
        elif isinstance(node, ast.arg):
            skip(node.annotation)
        elif isinstance(node, ast.AnnAssign):
            skip(node.annotation)
    return skipped


def _span(node: ast.AST, replacement: str, description: str) -> Mutant:
    return Mutant(node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, replacement, description)


def _changed(node: ast.expr, change) -> str:
    """``node`` unparsed after ``change(copy)`` mutates a copy of it, in parentheses."""
    mutated = copy.deepcopy(node)
    change(mutated)
    return f"({ast.unparse(mutated)})"


def mutation_sites(source: str) -> list[Mutant]:
    """Every mutant of ``source`` (see the module's docstring), in source order."""
    tree = ast.parse(source)
    skipped = _skipped_nodes(tree)
    sites: list[Mutant] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in SWAPS:
                    new = SWAPS[type(op)]()

                    def swap(n: ast.Compare, i: int = i, new: ast.cmpop = new) -> None:
                        n.ops[i] = new

                    sites.append(_span(node, _changed(node, swap),
                                       f"{_symbol(op)} -> {_symbol(new)}"))
        elif isinstance(node, (ast.BinOp, ast.BoolOp)) and type(node.op) in SWAPS:
            new = SWAPS[type(node.op)]()
            sites.append(_span(node, _changed(node, lambda n, new=new: setattr(n, "op", new)),
                               f"{_symbol(node.op)} -> {_symbol(new)}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            sites.append(_span(node, str(not node.value), f"{node.value} -> {not node.value}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(
                node.value, complex):
            sites.append(_span(node, repr(node.value + 1), f"{node.value!r} -> {node.value + 1!r}"))
        elif isinstance(node, ast.Raise):
            sites.append(_span(node, "pass", "raise -> pass"))
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            sites.append(_span(node, "return None", "return value -> return None"))
    return sorted(sites, key=lambda m: (m.line, m.col, m.description))


def _symbol(op: ast.AST) -> str:
    return {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=", ast.Add: "+",
            ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.And: "and", ast.Or: "or"}[type(op)]


def sample(sites: list[Mutant], size: int, seed: int) -> list[Mutant]:
    """``size`` of ``sites`` drawn without replacement with ``seed``, in source order."""
    chosen = random.Random(seed).sample(sites, min(size, len(sites)))
    return sorted(chosen, key=lambda m: (m.line, m.col, m.description))


def _python(copy_root: Path) -> tuple[list[str], dict[str, str]]:
    """The interpreter's command and environment importing the package from ``copy_root``: ``-P`` keeps the
    working directory (the real repository) off ``sys.path``."""
    env = {**os.environ, "PYTHONPATH": str(copy_root), "PYTHONDONTWRITEBYTECODE": "1"}
    return [sys.executable, "-P"], env


def _run_tests(copy_root: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    """``("passed" | "failed" | "timeout", seconds)`` of the tests run against the package in ``copy_root``."""
    python, env = _python(copy_root)
    command = [*python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    started = time.monotonic()
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True) as process:
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: data loader workers go too
            process.wait()
            return "timeout", time.monotonic() - started
    return ("passed" if code == 0 else "failed"), time.monotonic() - started


def _copy_package(copy_root: Path) -> None:
    """The package and ``REPO_FILES`` copied to ``copy_root``; stop unless the tests would import that copy."""
    shutil.copytree(REPO / PACKAGE, copy_root / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    for name in REPO_FILES:
        (copy_root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, copy_root / name)
    python, env = _python(copy_root)
    found = subprocess.run([*python, "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)"], env=env, cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(copy_root.resolve()):
        sys.exit(f"The tests would import {found}, not the mutated copy in {copy_root}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", choices=sorted(TESTS), help="a module of textclf_utils with unit tests")
    parser.add_argument("--sample", type=int, default=20, help="how many mutants to draw (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of the draw (default 0)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per mutant (default: 5 times the unmutated run, plus 60)")
    parser.add_argument("--list", action="store_true", help="print the drawn mutants and run nothing")
    parser.add_argument("--only", nargs="+", metavar="KEY", default=None,
                        help="run only these of the drawn mutants, by key as printed, e.g. 'L227:4 return value -> "
                             "return None' (to re-check survivors after adding tests)")
    parser.add_argument("--tests", nargs="+", metavar="TEST", default=None,
                        help="run these pytest ids instead of the module's test files, e.g. "
                             "'tests/test_training.py::test_x' (with --only: a quick re-check against the tests "
                             "written for those survivors; a full run uses the module's files)")
    args = parser.parse_args(argv)
    if args.sample < 1:
        parser.error(f"--sample must be a positive integer, got {args.sample}.")

    path = REPO / PACKAGE / f"{args.module}.py"
    source = path.read_text()
    sites = mutation_sites(source)
    chosen = sample(sites, args.sample, args.seed)
    if args.only is not None:
        unknown = sorted(set(args.only) - {m.key for m in chosen})
        if unknown:
            parser.error(f"--only: {unknown} are not among the drawn mutants; see --list.")
        chosen = [m for m in chosen if m.key in args.only]
    equivalent = EQUIVALENT.get(args.module, {})
    print(f"{args.module}: {len(sites)} mutation sites, {len(chosen)} drawn (seed {args.seed})")
    if args.list:
        for m in chosen:
            print(f"  {m.key}: {source.splitlines()[m.line - 1].strip()}")
        return 0

    tests = args.tests or TESTS[args.module]
    counts = {"killed": 0, "survived": 0, "timeout": 0, "equivalent": 0}
    with tempfile.TemporaryDirectory(prefix="mutants-") as folder:
        copy_root = Path(folder)
        _copy_package(copy_root)
        outcome, seconds = _run_tests(copy_root, tests, timeout=3600)
        if outcome != "passed":
            sys.exit(f"The unmutated tests {tests} do not pass ({outcome}): fix them first.")
        timeout = args.timeout or 5 * seconds + 60
        print(f"unmutated tests pass in {seconds:.0f} s; timeout per mutant {timeout:.0f} s")
        target = copy_root / PACKAGE / f"{args.module}.py"
        for m in chosen:
            if m.key in equivalent:
                counts["equivalent"] += 1
                print(f"  equivalent {m.key}: {equivalent[m.key]}")
                continue
            target.write_text(m.apply(source))
            try:
                outcome, seconds = _run_tests(copy_root, tests, timeout)
                if outcome == "timeout":  # on a shared machine, often a slow moment: once more, with more time
                    outcome, seconds = _run_tests(copy_root, tests, 3 * timeout)
            finally:
                target.write_text(source)
            status = {"failed": "killed", "passed": "survived", "timeout": "timeout"}[outcome]
            counts[status] += 1
            line = source.splitlines()[m.line - 1].strip()
            print(f"  {status:8s} {m.key} ({seconds:.0f} s)" + (f"\n           {line}" if status == "survived" else ""),
                  flush=True)
    scored = counts["killed"] + counts["timeout"] + counts["survived"]
    killed = counts["killed"] + counts["timeout"]
    print(f"{args.module}: {killed}/{scored} killed ({100 * killed / max(scored, 1):.0f} %); "
          f"{counts['timeout']} by timeout, {counts['equivalent']} equivalent left out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
