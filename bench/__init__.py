"""Benchmarks: each module's ``measure(quick)`` returns rows of ratios measured side by side;
``python -m bench`` runs them all and records the table in bench/RESULTS.md."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from baseres.cli import run_command

REPO = Path(__file__).resolve().parent.parent


def row(figure: str, value: float, unit: str, goal: str, ok: bool, note: str) -> dict:
    """One line of the results table."""
    return {"figure": figure, "value": value, "unit": unit, "goal": goal, "ok": ok, "note": note}


def run_alone(measure: Callable[[bool], list[dict]], prog: str, doc: str | None) -> None:
    """`python -m bench.<module> [--quick]`: one benchmark's rows, printed; exits with the
    status of the shell every command shares (baseres.cli.run_command)."""

    def build_parser() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=prog, description=doc)
        parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
        return parser

    def body(args: argparse.Namespace) -> int:
        for line in measure(args.quick):
            print(line)
        return 0

    sys.exit(run_command(build_parser, body))


def study(base: str = "generalization.yaml", **changes: Any) -> dict[str, Any]:
    """A shipped study file's mapping with top-level keys replaced (`train` and `data` are
    merged key by key), ready to be written out for ``python -m tune.run``. Its question is
    left out unless `changes` sets one: these benchmarks time the search."""
    spec = yaml.safe_load((REPO / "search_spaces" / base).read_text())
    spec.pop("question", None)
    for key, value in changes.items():
        spec[key] = {**spec.get(key, {}), **value} if key in ("train", "data") else value
    return spec


def write_study(spec: dict[str, Any], path: Path) -> None:
    """A study file as tune.run reads it: no YAML aliases (study files refuse them), which a
    plain safe_dump writes for a baseline point used twice."""
    from baseres.config import StrictSafeDumper

    path.write_text(yaml.dump(spec, Dumper=StrictSafeDumper, sort_keys=False))


def _peak_rss_mib(pid: int) -> float:
    """A live process's peak resident memory (VmHWM) in MiB; NaN once gone or off Linux."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return math.nan
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return math.nan


def in_new_process(module: str, function: str, *args: str,
                   env: dict[str, str] | None = None) -> str:
    """The last line `module.function(*args)` prints when run in a fresh Python process, whose
    first-use costs and caches are those a new trial process meets."""
    call = f"from {module} import {function}; {function}(*{args!r})"
    result = subprocess.run([sys.executable, "-c", call], capture_output=True, text=True,
                            cwd=REPO, env={**os.environ, **(env or {})}, check=True)
    return result.stdout.splitlines()[-1]


@dataclass
class Search:
    experiment: Path
    driver_peak_mib: float  # the tune.run process alone, not Ray's servers or trial workers
    trials: list  # tune.experiment.TrialRecord, best first


def run_search(spec: dict[str, Any], storage: Path) -> Search:
    """``python -m tune.run`` on `spec`, exactly as a user runs it, in its own process."""
    from tune.experiment import Experiment

    storage.mkdir(parents=True, exist_ok=True)
    name = spec["name"]
    study_file = storage / f"{name}.yaml"
    write_study(spec, study_file)
    command = [sys.executable, "-m", "tune.run", "--space", str(study_file),
               "--storage", str(storage), "--name", name]
    log = storage / f"{name}.log"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    peak = math.nan
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                   env=env)
        while process.poll() is None:  # VmHWM only grows: the last reading is the peak
            reading = _peak_rss_mib(process.pid)
            peak = reading if not math.isnan(reading) else peak
            time.sleep(0.25)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {process.returncode}; see {log}")
    experiment = storage / name
    trials = Experiment(experiment).trials()
    return Search(experiment, peak, trials)
