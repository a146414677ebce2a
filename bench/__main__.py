"""``python -m bench [--quick]``: every benchmark, one table, appended to bench/RESULTS.md.

Each figure is a ratio measured side by side in one run (absolute times on shared machines are
noise); the table records the date, the machine and the commit it was measured on.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from baseres.cli import run_command
from bench import (
    cache_sharing,
    chaos,
    fixed_cost,
    replay,
    search_efficiency,
    service_budget,
    soak,
    synth,
    train_step,
    tune_service,
)

BENCHMARKS = (synth, train_step, cache_sharing, tune_service, search_efficiency, replay,
              service_budget, fixed_cost, soak, chaos)
NAMES = [m.__name__.removeprefix("bench.") for m in BENCHMARKS]
RESULTS = Path(__file__).with_name("RESULTS.md")


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(rows: list[dict]) -> str:
    lines = ["| figure | value | goal | ok | how |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['figure']} | {r['value']} {r['unit']} | {r['goal']} | "
                     f"{'yes' if r['ok'] else 'NO'} | {r['note']} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="smaller runs: under 5 minutes on 2 cores instead of under 30")
    parser.add_argument("--only", action="append", choices=NAMES, metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(NAMES)}")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    quick = args.quick
    chosen = [m for m, n in zip(BENCHMARKS, NAMES) if not args.only or n in args.only]
    rows = []
    for number, module in enumerate(chosen, start=1):
        name = module.__name__.removeprefix("bench.")
        print(f"[{number}/{len(chosen)}] {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        rows.extend(module.measure(quick))
        print(f"    done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    header = (f"## {datetime.datetime.now():%Y-%m-%d %H:%M} · {platform.processor() or 'cpu'}, "
              f"{os.cpu_count()} cores, torch {torch.__version__} · commit {_commit()}"
              f"{' · quick' if quick else ''}"
              f"{' · only ' + ', '.join(args.only) if args.only else ''}")
    text = f"{header}\n\n{table(rows)}\n"
    print(text)
    with RESULTS.open("a") as handle:
        handle.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
