"""Search policies against their peers, replayed by bench.simulate on a recorded curve table
(bench.curves: bench/data/curves.json.gz, and the question's regime's
bench/data/curves-question.json.gz once it holds 300 configs).

Every policy gets the same budget, random search's: ``BUDGET_TRIALS`` full trials of the
study's max_t epochs, run on the study's max_concurrent_trials workers; a policy that stops
trials early starts more of them. Measured as the multi-fidelity suites measure it: the
normalised regret of the best val RMSE found so far,
``(best found - best in table) / (median config's best - best in table)`` (0: the table's
best; 1: a median config), after every 5 % of the budget, over ``SEEDS`` seeds. Reported
as a reviewer asks (bench.stats): the interquartile mean over seeds with a bootstrap 95 %
interval (a curve per policy, bench/replay-<regime>.png), the speed-up to reach random +
ASHA's final IQM, and a paired Wilcoxon test against random + ASHA at 25 % of the budget,
Holm-corrected over the policies; beside them the median [IQR], the mean rank and the
paired count against TPE + ASHA at 10 / 25 / 50 / 100 %.

The policies are bench.policies'; SMAC3's row only where the optional extra ``smac`` is
installed (``pip install -c constraints.txt -e '.[smac]'``), else a row says it was skipped.
The study's baselines are left out: every policy would spend the same epochs on them; so the
constraints variant judges only the minimum targets the table records (train_sparse's
absolute bound): a bound relative to a baseline counts as met.

``python -m bench.replay [--quick] [--regime R]`` prints one table; ``python -m bench``
records the rows of every table recorded far enough.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from baseres.cli import run_command
from bench import row
from bench.curves import REGIMES, TABLE, Table, load_table
from bench.policies import (
    REFERENCE,
    SMAC,
    SMAC_INSTALL,
    TPE_ASHA,
    VARIANTS,
    Setting,
    policies,
)
from bench.simulate import Lookup, simulate
from bench.stats import iqm_band, speed_up, wilcoxon_paired
from tune.question.intervals import holm

BUDGET_TRIALS = 30  # random search's trials: budget = 30 x max_t epochs
GRID = tuple(round(0.05 * k, 2) for k in range(1, 21))  # budget fractions each replay records
FRACTIONS = (0.10, 0.25, 0.50, 1.00)  # the ones the tables show
HEADLINE = 0.25  # the fraction the study defaults are chosen at
SEEDS = 30
# configs a table holds before it is replayed (the question's is recorded over days)
MIN_CONFIGS = {"search-efficiency": 100, "question": 300}
PLOTS = Path(__file__).parent  # bench/replay-<regime>.png
# random + ASHA's grace period and reduction factor: the study's until it chose random search
# without early stopping (generalization.yaml)
ASHA_KNOBS = (1, 3)


def normalised_regret(found: float, best: float, reference: float) -> float:
    """0 at the table's best config, 1 at the reference (its median config)."""
    return (found - best) / (reference - best)


def mean_ranks(scores: np.ndarray) -> np.ndarray:
    """scores[policy, seed], lower is better -> each policy's rank averaged over seeds
    (1 = best; tied policies share the mean of their ranks)."""
    below = (scores[:, None, :] > scores[None, :, :]).sum(axis=1)
    ties = (scores[:, None, :] == scores[None, :, :]).sum(axis=1)
    return (below + (ties + 1) / 2).mean(axis=1)


def paired(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """scores[seed, fraction] against the reference's on the same seeds (lower is better) ->
    [fraction, (better, tie, worse)]: on how many seeds each."""
    return np.stack([(scores < reference).sum(axis=0), (scores == reference).sum(axis=0),
                     (scores > reference).sum(axis=0)], axis=1)


def at_fractions(trace: list[float], budget: int) -> list[float]:
    """The best value after each fraction of the budget's epochs (GRID)."""
    return [trace[max(1, math.ceil(f * budget)) - 1] for f in GRID]


def replay(table: Table, setting: Setting, builders: dict[str, Callable], seeds: range,
           budget: int | None, read: Callable | None = None) -> dict[str, np.ndarray]:
    """Policy -> what `read(driver, trace)` takes of each seed's search while its journal is
    open, by default the best val RMSE found at each fraction: shape (seeds, ...). `budget`
    as bench.simulate.simulate's."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lookup = Lookup(table.curves, setting.space)
    found = {}
    for name, build in builders.items():
        runs = []
        for seed in seeds:
            np.random.seed(seed)  # ASHA draws its bracket from numpy's global generator
            with build(setting, seed, lookup) as driver:
                trace = simulate(driver, table.curves, setting.workers, budget, setting.max_t)
                runs.append(read(driver, trace) if read else at_fractions(trace, budget))
        found[name] = np.array(runs)
    return found


def bench_setting(table: Table) -> Setting:
    """The study's space and scheduler, loaded as tune.run loads it (bench setting applied),
    with those of its baselines whose curves the table records (none in a `sampled` table)
    and no budget of its own (a replay sets the epochs); ASHA's knobs are the study's, or
    ASHA_KNOBS where the study stops no trial early."""
    from bench.curves import bench_study
    from tune.study import Budget

    spec = bench_study(table.epochs, root="unused")
    recorded = {c.baseline for c in table.curves}
    spec = replace(spec, baselines={k: v for k, v in spec.baselines.items() if k in recorded},
                   budget=Budget(None, None), num_samples=None)
    knobs = ((spec.scheduler.grace_period, spec.scheduler.reduction_factor) if spec.scheduler
             else ASHA_KNOBS)
    return Setting(spec, *knobs)


def summarise(table: Table, found: dict[str, np.ndarray]) -> dict[str, dict]:
    """Per policy: at FRACTIONS the median, IQR, mean, sd and mean rank of normalised regret
    and the paired count against TPE + ASHA; over the GRID the IQM with its bootstrap 95 %
    interval; the speed-up to reach the reference's final IQM; and at the headline the
    paired Wilcoxon test against the reference, Holm-corrected over the policies."""
    bests = np.array([c.best for c in table.curves])
    best, median = bests.min(), np.median(bests)
    names = list(found)
    regret = np.array([normalised_regret(found[n], best, median) for n in names])
    shown = [GRID.index(f) for f in FRACTIONS]
    ranks = np.stack([mean_ranks(regret[:, :, i]) for i in shown], axis=1)
    bands = {name: iqm_band(regret[k]) for k, name in enumerate(names)}
    head = GRID.index(HEADLINE)
    reference = regret[names.index(REFERENCE)]
    budgets = np.array(GRID)
    tests = {name: wilcoxon_paired(regret[k][:, head], reference[:, head])
             for k, name in enumerate(names) if name != REFERENCE}
    adjusted = dict(zip(tests, holm([t.p_value for t in tests.values()])))
    return {name: {"median": np.median(regret[k][:, shown], axis=0),
                   "q1": np.percentile(regret[k][:, shown], 25, axis=0),
                   "q3": np.percentile(regret[k][:, shown], 75, axis=0),
                   "mean": regret[k][:, shown].mean(axis=0),
                   "sd": regret[k][:, shown].std(axis=0, ddof=1),
                   "rank": ranks[k],
                   "paired": paired(regret[k][:, shown],
                                    regret[names.index(TPE_ASHA)][:, shown]),
                   "iqm": bands[name],
                   "speed-up": speed_up(bands[name].value, bands[REFERENCE].value, budgets),
                   "vs reference": tests.get(name), "p holm": adjusted.get(name)}
            for k, name in enumerate(names)}


def _cell(stats: dict, i: int) -> str:
    return f"{stats['median'][i]:.2f} [{stats['q1'][i]:.2f}-{stats['q3'][i]:.2f}]"


def _iqm_cell(stats: dict) -> str:
    band, i = stats["iqm"], GRID.index(HEADLINE)
    return f"{band.value[i]:.3f} [{band.lo[i]:.3f}, {band.hi[i]:.3f}]"


def _versus(stats: dict) -> str:
    """Against the reference at the headline: seeds better/tie/worse, Holm p, speed-up."""
    test, speed = stats["vs reference"], stats["speed-up"]
    times = f"{speed.ratio:.2f}x" if speed.ratio else "never"
    if test is None:
        return f"the reference (final IQM {speed.target:.3f})"
    return (f"{test.better}/{test.ties}/{test.worse}, Holm p {stats['p holm']:.3g}, "
            f"speed-up {times}")


def beats_reference(stats: dict) -> bool:
    """The issue's bar for a new default: better than random + ASHA at the headline with
    Holm p < 0.05, and at least twice as fast to its final IQM regret."""
    test = stats["vs reference"]
    return (test is not None and test.better > test.worse and stats["p holm"] < 0.05
            and stats["speed-up"].ratio >= 2.0)


def draw(stats: dict[str, dict], names: list[str], title: str, path: Path) -> Path:
    """The IQM curves with their bootstrap bands, one per policy, over the budget."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5))
    percent = np.array(GRID) * 100
    colours = plt.get_cmap("tab20").colors
    for number, name in enumerate(names):
        band, colour = stats[name]["iqm"], colours[2 * number % 20 + number // 10]
        ax.plot(percent, band.value, label=name, color=colour,
                linewidth=2.4 if name == REFERENCE else 1.2,
                linestyle=("-", "--", ":", "-.")[number % 4] if name != REFERENCE else "-")
        ax.fill_between(percent, band.lo, band.hi, color=colour, alpha=0.08)
    ax.set_xlabel("% of the budget (random search's 30 full trials)")
    ax.set_ylabel("normalised regret, IQM over seeds\n(band: bootstrap 95 %)")
    ax.set_title(title, fontsize=9, wrap=True)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def sampled(path: Path) -> Table:
    """The table's sampled configs: its baselines' curves (the question's table records them)
    are no draws of the space, and every policy would spend the same epochs on them."""
    table = load_table(path)
    return replace(table, curves=tuple(c for c in table.curves if c.baseline is None))


class Replayed(NamedTuple):
    path: Path
    table: Table
    setting: Setting
    policies: dict[str, dict]  # summarise's
    seeds: int
    budget: int


def run(quick: bool, path=TABLE) -> Replayed:
    table = sampled(path)
    setting = bench_setting(table)
    seeds = range(5 if quick else SEEDS)
    budget = BUDGET_TRIALS * setting.max_t
    found = replay(table, setting, policies(setting, quick), seeds, budget)
    return Replayed(path, table, setting, summarise(table, found), len(seeds), budget)


def skipped(regime: str, stats: dict[str, dict]) -> list[dict]:
    """The row saying SMAC3's policy was not replayed, where its optional extra is missing."""
    if SMAC in stats:
        return []
    return [row(f"replay ({regime}): {SMAC}: skipped", 0, "seeds", "the optional extra smac",
                False, f"smac is not installed, so this row was not replayed: {SMAC_INSTALL}")]


def within_best(stats: dict[str, dict], i: int = GRID.index(HEADLINE)) -> set[str]:
    """The policies whose IQM regret at the headline (point `i` of their bands) lies within
    the bootstrap 95 % interval of the best one's (the lowest IQM): where none beats the
    reference, the issue's rule makes the cheapest of those, on every table, the default."""
    best = min(stats.values(), key=lambda s: s["iqm"].value[i])
    return {name for name, s in stats.items() if s["iqm"].value[i] <= best["iqm"].hi[i]}


def measure(quick: bool) -> list[dict]:
    rows, candidates = [], []
    for regime, chosen in REGIMES.items():
        held = len(sampled(chosen.out).curves) if chosen.out.is_file() else 0
        if held < MIN_CONFIGS[regime]:
            rows.append(row(f"replay ({regime}): not replayed", held, "configs",
                            f">= {MIN_CONFIGS[regime]} recorded", False,
                            f"python -m bench.curves --record --regime {regime} --resume"))
            continue
        replayed = run(quick, chosen.out)
        rows += _rows(regime, replayed)
        candidates.append(within_best(replayed.policies))
    if len(candidates) == len(REGIMES):
        common = sorted(set.intersection(*candidates))
        rows.append(row("replay: within the best's interval on every table", len(common),
                        "policies", f"{REFERENCE} among them keeps it the default",
                        REFERENCE in common,
                        f"IQM regret at {HEADLINE:.0%} <= the upper bound of the best policy's "
                        f"95 % interval, on each of {', '.join(REGIMES)}: "
                        + "; ".join(common)))
    return rows


def _rows(regime: str, replayed: Replayed) -> list[dict]:
    path, table, setting, stats, seeds, budget = replayed
    head = FRACTIONS.index(HEADLINE)
    setup = (f"{len(table.curves)} recorded configs of {table.epochs} epochs ({path.name}), "
             f"budget {budget} epochs = {BUDGET_TRIALS} random trials, {setting.workers} "
             f"workers, ASHA grace {setting.grace_period} factor {setting.reduction_factor} "
             f"unless named, {seeds} seeds")
    plot = draw(stats, [n for n in stats if not n.startswith(VARIANTS)],
                f"The {regime} table ({len(table.curves)} configs of {table.epochs} epochs), "
                f"{seeds} seeds, budget {budget} epochs", PLOTS / f"replay-{regime}.png")
    rows = []
    for name, s in stats.items():
        cells = ", ".join(_cell(s, i) for i in range(len(FRACTIONS)))
        reference = name == REFERENCE
        rows.append(row(
            f"replay ({regime}): {name}", round(float(s["iqm"].value[GRID.index(HEADLINE)]), 3),
            f"IQM regret@{HEADLINE:.0%}",
            "the reference a new default must beat" if reference else
            "beats random + ASHA (Holm p < 0.05, >= 2x faster)",
            reference or beats_reference(s),
            f"IQM [95 % bootstrap] at {HEADLINE:.0%}: {_iqm_cell(s)}; vs {REFERENCE} "
            f"better/tie/worse {_versus(s)}; median [IQR] at 10/25/50/100 %: {cells}; "
            f"mean rank {'/'.join(f'{r:.1f}' for r in s['rank'])}; vs {TPE_ASHA} "
            f"{'/'.join(str(n) for n in s['paired'][head])}"
            + (f"; {setup}; curves: bench/{plot.name}" if name == REFERENCE else "")))
    return rows + skipped(regime, stats)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 seeds, no variants")
    parser.add_argument("--regime", choices=REGIMES, default="search-efficiency",
                        help="whose recorded table (bench.curves --regime)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    path, table, setting, stats, seeds, budget = run(args.quick, REGIMES[args.regime].out)
    print(f"normalised regret over {seeds} seeds, budget {budget} epochs, "
          f"{len(table.curves)} recorded configs ({path.name})\n")
    print(f"| policy | IQM [95 %] at {HEADLINE:.0%} | vs {REFERENCE}: better/tie/worse, Holm "
          f"p, speed-up | {' | '.join(f'median {f:.0%}' for f in FRACTIONS)} |\n"
          f"|---|---|---|{'---|' * len(FRACTIONS)}")
    for name, s in stats.items():
        cells = " | ".join(_cell(s, i) for i in range(len(FRACTIONS)))
        print(f"| {name} | {_iqm_cell(s)} | {_versus(s)} | {cells} |")
    for line in skipped(args.regime, stats):
        print(f"\n{line['figure']}: {line['note']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
