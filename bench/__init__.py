"""Benchmarks: each module's ``measure(quick)`` returns rows of ratios measured side by side;
``python -m bench`` runs them all and records the table in bench/RESULTS.md."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def row(figure: str, value: float, unit: str, goal: str, ok: bool, note: str) -> dict:
    """One line of the results table."""
    return {"figure": figure, "value": value, "unit": unit, "goal": goal, "ok": ok, "note": note}


def run_alone(measure: Callable[[bool], list[dict]], prog: str, doc: str | None) -> None:
    """`python -m bench.<module> [--quick]`: one benchmark's rows, printed."""
    parser = argparse.ArgumentParser(prog=prog, description=doc)
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    for line in measure(parser.parse_args().quick):
        print(line)
