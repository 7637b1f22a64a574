#!/usr/bin/env python3
"""Prints the in-process comparison as Markdown: criterion's medians for the
`common` pipeline around an echo and for the echo alone, beside the Python
Powertools handler and its echo alone (from bench/powertools/inprocess.py).

Usage: bench_inprocess.py <criterion-home> <python-results-file>
"""

import json
import sys
from pathlib import Path


def criterion_median_us(home: Path, name: str) -> float:
    estimates = json.loads((home / name / "new" / "estimates.json").read_text())
    return estimates["median"]["point_estimate"] / 1000


def main() -> None:
    home, python_file = Path(sys.argv[1]), Path(sys.argv[2])
    rust_total = criterion_median_us(home, "pipeline_echo through common")
    rust_alone = criterion_median_us(home, "pipeline_echo alone")
    python = dict(
        (label, float(value))
        for label, value in (line.split("\t") for line in python_file.read_text().splitlines() if "\t" in line)
    )
    py_total = python["handler with Powertools Logger"]
    py_alone = python["echo alone"]
    rust_cost, py_cost = rust_total - rust_alone, py_total - py_alone
    print("| what | per invocation, µs (median) |")
    print("|---|---:|")
    print(f"| `common` pipeline around an echo (criterion) | {rust_total:.2f} |")
    print(f"| the echo alone (criterion) | {rust_alone:.2f} |")
    print(f"| **`common`'s own cost** | **{rust_cost:.2f}** |")
    print(f"| Powertools handler: context injection, correlation ID, two lines | {py_total:.2f} |")
    print(f"| the echo alone (Python) | {py_alone:.2f} |")
    print(f"| **Powertools' own cost** | **{py_cost:.2f}** |")
    print()
    ratio = rust_cost / py_cost if py_cost > 0 else float("nan")
    verdict = "met" if ratio <= 0.1 else f"missed by {ratio / 0.1:.1f}×"
    print(f"`common` costs {ratio:.3f} of Powertools' per invocation; goal at most 0.1: {verdict}.")


if __name__ == "__main__":
    main()
