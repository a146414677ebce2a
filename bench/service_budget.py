"""Search policies replayed as the service spends a search budget in epochs (tune.budget), at
a quarter of the policy replay's budget: the regret of the best trial that ran the full
budget, which is what the service reports and evaluates.

bench.replay gives every policy the same epochs, cut off hard, and leaves the study's
baselines out. The service does neither. Its searcher (tune.searcher.StudySearcher) runs the
study's baselines first. BaselinesRunFull never stops a baseline, but the baselines' epochs
enter ASHA's rungs. The searcher answers FINISHED once the epochs every trial reported
(baselines included) reach ``budget.epochs``, and the trials then running finish; ASHA may
still stop them. Here bench.simulate drives those objects on each recorded table until the
search ends:

- the question's table (bench/data/curves-question.json.gz) with its baselines' recorded
  curves: budget.epochs = 25 % of 30 x max_t searched epochs (120) + the baselines' 3 x 16;
- search_efficiency's table (bench/data/curves.json.gz), which records no baseline curves,
  without baselines: budget.epochs = 25 % of 30 x 12 = 90.

The policies are random search with ASHA (grace 1 to 4 with factor 3, grace 1 with factor 4)
and without early stopping, on ``max_concurrent_trials`` (2) workers, over ``SEEDS`` seeds.
Per policy: the searched trials that ran max_t epochs (median and minimum over seeds); the
normalised regret (bench.replay.normalised_regret) of the best of them, at its best epoch,
where a seed with none counts as 1.0 (a median config); its IQM over seeds with a bootstrap
95 % interval (bench.stats); a paired Wilcoxon test against random without early stopping,
Holm-corrected over the other policies; and the policies within the best one's interval
(bench.replay.within_best), on each table and on both.

``python -m bench.service_budget [--quick] [--regime R]`` prints the tables as Markdown;
``python -m bench`` records the rows.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from baseres.cli import run_command
from bench import row
from bench.curves import REGIMES, Table, load_table
from bench.policies import Setting, _asha, service_policy
from bench.replay import BUDGET_TRIALS, HEADLINE, bench_setting, normalised_regret, replay
from bench.replay import within_best as replay_within_best
from bench.stats import iqm_band, wilcoxon_paired
from tune.question.intervals import holm

NO_EARLY_STOP = "random, no early stopping"  # the reference every other policy is tested against
# name -> ASHA's (grace period, reduction factor); None: no early stopping
POLICIES = {
    **{f"random + ASHA, grace {g}, factor 3": (g, 3) for g in (1, 2, 3, 4)},
    "random + ASHA, grace 1, factor 4": (1, 4),
    NO_EARLY_STOP: None,
}
SEEDS, QUICK_SEEDS = 30, 5


def builders() -> dict:
    """Name -> builder(setting, seed, lookup), the service's searcher and scheduler."""
    return {name: service_policy("random", partial(_asha, grace=knobs[0], factor=knobs[1])
                                 if knobs else None)
            for name, knobs in POLICIES.items()}


def full_budget(driver, trace: list[float]) -> tuple[int, float]:
    """From the service's journal: the searched trials that reported max_t epochs, and the
    best val RMSE any of them reported (inf: none did)."""
    from tune.budget import epochs_reported
    from tune.study import BASELINE_KEY

    spec = driver.searcher.spec
    full = [t for t in driver.searcher.study.get_trials(deepcopy=False)
            if not t.user_attrs.get(BASELINE_KEY) and epochs_reported(t) >= spec.max_t]
    return len(full), min((min(t.intermediate_values.values()) for t in full), default=math.inf)


def regret(found: np.ndarray, best: float, median: float) -> np.ndarray:
    """Normalised regret of each seed's best full-budget trial; a seed without one counts as
    a median config (1.0)."""
    return np.where(np.isfinite(found), normalised_regret(found, best, median), 1.0)


def service_setting(table: Table) -> tuple[Setting, int]:
    """The bench setting with the service's budget: `HEADLINE` of the replay's searched epochs
    after the epochs of the baselines the table records (each runs max_t). Also returns the
    searched part."""
    from tune.study import Budget

    setting = bench_setting(table)
    searched = round(HEADLINE * BUDGET_TRIALS * setting.max_t)
    epochs = searched + len(setting.spec.baselines) * setting.max_t
    return replace(setting, spec=replace(setting.spec, budget=Budget(epochs, None))), searched


def summarise(table: Table, found: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per policy, over seeds: the full-budget trials' median and minimum and the seeds with
    none; the IQM regret with its bootstrap 95 % band; the paired test against
    `NO_EARLY_STOP`, Holm-corrected over the other policies."""
    bests = np.array([c.best for c in table.curves if c.baseline is None])
    regrets = {n: regret(f[:, 1], bests.min(), np.median(bests)) for n, f in found.items()}
    tests = {n: wilcoxon_paired(r, regrets[NO_EARLY_STOP]) for n, r in regrets.items()
             if n != NO_EARLY_STOP}
    adjusted = dict(zip(tests, holm([t.p_value for t in tests.values()])))
    return {n: {"full median": float(np.median(found[n][:, 0])),
                "full min": int(found[n][:, 0].min()),
                "none": int((found[n][:, 0] == 0).sum()),
                "iqm": iqm_band(r[:, None]),
                "vs reference": tests.get(n), "p holm": adjusted.get(n)}
            for n, r in regrets.items()}


def within_best(stats: dict[str, dict]) -> set[str]:
    return replay_within_best(stats, 0)  # the bands hold the one budget measured


class Measured(NamedTuple):
    regime: str
    path: Path
    table: Table
    setting: Setting
    searched: int  # budget.epochs less the baselines'
    seeds: int
    policies: dict[str, dict]  # summarise's


def run(quick: bool, regime: str) -> Measured:
    path = REGIMES[regime].out
    table = load_table(path)
    setting, searched = service_setting(table)
    seeds = range(QUICK_SEEDS if quick else SEEDS)
    found = replay(table, setting, builders(), seeds, None, read=full_budget)
    return Measured(regime, path, table, setting, searched, len(seeds), summarise(table, found))


def setup(m: Measured) -> str:
    spec = m.setting.spec
    epochs, baselines = spec.budget.epochs, len(spec.baselines)
    spent = (f"{m.searched} searched + {epochs - m.searched} for the {baselines} baselines run "
             f"first" if baselines else f"{m.searched} searched (no baseline curves recorded)")
    sampled = sum(c.baseline is None for c in m.table.curves)
    return (f"{sampled} recorded configs of {m.table.epochs} epochs ({m.path.name}), budget "
            f"{epochs} epochs = {spent} = {HEADLINE:.0%} of {BUDGET_TRIALS} x max_t, "
            f"{m.setting.workers} workers, {m.seeds} seeds")


def full_cell(s: dict) -> str:
    none = f", {s['none']} seeds none" if s["none"] else ""
    return f"{s['full median']:g} ({s['full min']}{none})"


def iqm_cell(s: dict) -> str:
    band = s["iqm"]
    return f"{band.value[0]:.3f} [{band.lo[0]:.3f}, {band.hi[0]:.3f}]"


def versus(s: dict) -> str:
    test = s["vs reference"]
    if test is None:
        return "the reference"
    return f"{test.better}/{test.ties}/{test.worse}, Holm p {s['p holm']:.3g}"


def measure(quick: bool) -> list[dict]:
    rows, candidates = [], []
    for regime in REGIMES:
        m = run(quick, regime)
        inside = within_best(m.policies)
        candidates.append(inside)
        for name, s in m.policies.items():
            rows.append(row(
                f"service budget ({regime}): {name}", round(float(s["iqm"].value[0]), 3),
                "IQM regret of the best full-budget trial", "within the best policy's 95 % "
                "interval", name in inside,
                f"IQM [95 % bootstrap] {iqm_cell(s)}; full-budget searched trials median "
                f"(min) {full_cell(s)}; "
                + (f"the reference; {setup(m)}" if name == NO_EARLY_STOP else
                   f"vs {NO_EARLY_STOP} better/tie/worse {versus(s)}")))
    common = sorted(set.intersection(*candidates))
    rows.append(row("service budget: within the best's interval on every table", len(common),
                    "policies", "at least one", bool(common),
                    f"on each of {', '.join(REGIMES)}: " + ("; ".join(common) or "none")))
    return rows


def markdown(m: Measured) -> list[str]:
    lines = [f"**{m.regime}**: {setup(m)}; a seed with no full-budget searched trial counts "
             "as regret 1.0.", "",
             f"| policy | full-budget searched trials median (min) | regret IQM [95 %] | vs "
             f"{NO_EARLY_STOP}: better/tie/worse seeds, Holm p |", "|---|---|---|---|"]
    lines += [f"| {name} | {full_cell(s)} | {iqm_cell(s)} | {versus(s)} |"
              for name, s in m.policies.items()]
    return [*lines, "", f"Within the best's 95 % interval: "
            f"{'; '.join(sorted(within_best(m.policies)))}.", ""]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.service_budget", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SEEDS} seeds")
    parser.add_argument("--regime", choices=REGIMES, action="append",
                        help="whose recorded table (bench.curves --regime); repeatable; "
                             "default: every one")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    measured = [run(args.quick, regime) for regime in args.regime or REGIMES]
    for m in measured:
        print("\n".join(markdown(m)))
    if len(measured) > 1:
        common = set.intersection(*(within_best(m.policies) for m in measured))
        print(f"Within the best's 95 % interval on every table: "
              f"{'; '.join(sorted(common)) or 'none'}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
