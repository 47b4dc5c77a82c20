"""Rewrite the README's results table from results/cpu.json and results/gpu.json.

    python scripts/update_readme_results.py

tests/test_results.py fails when the README and the results files disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textclf_utils.results import readme_with_results  # noqa: E402

if __name__ == "__main__":
    readme = ROOT / "README.md"
    readme.write_text(readme_with_results(readme.read_text(), ROOT / "results"))
    print(f"{readme.name}: results table rewritten from results/*.json")
