"""Search policies against their peers, replayed on the recorded curve table
(bench/data/curves.json.gz, ``python -m bench.curves --record``) by bench.simulate.

Every policy gets the same budget, random search's: ``BUDGET_TRIALS`` full trials of the
study's max_t epochs, run on the study's max_concurrent_trials workers; a policy that stops
trials early starts more of them. Reported as the multi-fidelity suites report it: the
normalised regret of the best val RMSE found so far,
``(best found - best in table) / (median config's best - best in table)`` (0: the table's
best; 1: a median config), at 10 / 25 / 50 / 100 % of that budget, its median and
interquartile range over seeds, and each policy's mean rank over seeds (1 = best; ties share).

Policies: the service's own code path (tune.searcher.StudySearcher on a journal with the
study's space and sampler, and tune.searcher.BaselinesRunFull, the service's ASHA) with
random or TPE samplers, and Optuna's own loop with its pruners (successive
halving, Hyperband with a random sampler = Hyperband, with TPE = BOHB-style, median).
Variants of the service's knobs (the study's ``sampler:`` keys, tune.study.TPE_KEYS:
n_startup_trials, multivariate, constant_liar, constraints; ASHA's grace period and
reduction factor) let the study's defaults be read off the table, each against the service's
policy by paired seeds. The study's baselines are left out: every policy would spend the
same epochs on them; so the constraints variant judges only the minimum targets the table
records (train_sparse's absolute bound): a bound relative to a baseline counts as met.

``python -m bench.replay [--quick]`` prints the table; ``python -m bench`` records its rows.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from baseres.cli import run_command
from bench import row
from bench.curves import TABLE, Table, load_table
from bench.simulate import METRIC, TIME_ATTR, Lookup, OptunaDriver, RayDriver, simulate
from tune.study import StudySpec

BUDGET_TRIALS = 30  # random search's trials: budget = 30 x max_t epochs
FRACTIONS = (0.10, 0.25, 0.50, 1.00)
HEADLINE = 0.25  # the fraction the study defaults are chosen at
SERVICE = "TPE + ASHA (service)"
# The journal fsyncs every write: in memory (tmpfs) that costs nothing, on disk it was 60 %
# of a replay's time.
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@dataclass(frozen=True)
class Setting:
    """What a policy is built from: the bench study (its space, max_t, workers) and the
    study's ASHA knobs."""

    spec: StudySpec
    grace_period: int
    reduction_factor: int

    @property
    def space(self) -> dict:
        return dict(self.spec.space)

    @property
    def max_t(self) -> int:
        return self.spec.max_t

    @property
    def workers(self) -> int:
        return self.spec.max_concurrent_trials


def _asha(setting: Setting, grace: int | None = None, factor: int | None = None):
    from tune.searcher import BaselinesRunFull

    return BaselinesRunFull(setting.spec.name, time_attr=TIME_ATTR, metric=METRIC, mode="min",
                            max_t=setting.max_t, grace_period=grace or setting.grace_period,
                            reduction_factor=factor or setting.reduction_factor)


def service_policy(kind: str, scheduler: Callable | None = None, **keys):
    """The service's searcher (tune.searcher.StudySearcher: Optuna ask and tell on an
    experiment's journal, its sampler made by tune.searcher.make_sampler from the study's
    ``sampler``) and scheduler (BaselinesRunFull, or none), on a throw-away experiment
    folder without baselines. `keys`: the study's ``sampler:`` keys this variant sets."""

    @contextmanager
    def build(setting: Setting, seed: int, lookup: Lookup):
        from tune.experiment import driving
        from tune.searcher import StudySearcher, create_study

        sampler = setting.spec.sampler._replace(**keys, type=kind, seed=seed)
        spec = replace(setting.spec, baselines={}, sampler=sampler)
        with tempfile.TemporaryDirectory(dir=SCRATCH) as folder, driving(Path(folder)):
            create_study(spec)
            yield RayDriver(StudySearcher(spec), scheduler(setting) if scheduler else None,
                            lookup)
    return build


def optuna_policy(sampler: Callable, pruner: Callable):
    """Optuna's own loop (ask, report, should_prune, tell) with one of its pruners."""

    @contextmanager
    def build(setting: Setting, seed: int, lookup: Lookup):
        import optuna

        # Named: Optuna's HyperbandPruner draws a trial's bracket from the study's name.
        study = optuna.create_study(study_name=f"replay-{seed}", direction="minimize",
                                    sampler=sampler(seed), pruner=pruner(setting))
        yield OptunaDriver(study, setting.space, lookup)
    return build


def _tpe(seed: int):
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def _random(seed: int):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _hyperband(s: Setting):
    import optuna

    return optuna.pruners.HyperbandPruner(min_resource=s.grace_period, max_resource=s.max_t,
                                          reduction_factor=s.reduction_factor)


def _halving(s: Setting):
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(min_resource=s.grace_period,
                                                  reduction_factor=s.reduction_factor)


def _median(s: Setting):
    import optuna

    return optuna.pruners.MedianPruner(n_warmup_steps=s.grace_period)


def policies(setting: Setting, quick: bool) -> dict[str, Callable]:
    """Name -> builder(setting, seed, lookup). The study's grace period and reduction factor
    unless the name says otherwise."""
    g, f = setting.grace_period, setting.reduction_factor
    table = {
        "random": service_policy("random"),
        "random + ASHA": service_policy("random", _asha),
        "TPE": service_policy("tpe"),
        SERVICE: service_policy("tpe", _asha),
        "Hyperband (random + Optuna HyperbandPruner)": optuna_policy(_random, _hyperband),
        "BOHB-style (TPE + Optuna HyperbandPruner)": optuna_policy(_tpe, _hyperband),
        "TPE + Optuna SuccessiveHalvingPruner": optuna_policy(_tpe, _halving),
        "TPE + Optuna MedianPruner": optuna_policy(_tpe, _median),
    }
    if quick:
        return table
    variants = {f"TPE + ASHA, n_startup_trials {n}": service_policy("tpe", _asha,
                                                                    n_startup_trials=n)
                for n in (4, 20)}
    for keys in ({"constant_liar": True}, {"multivariate": True},
                 {"multivariate": True, "constant_liar": True}, {"constraints": True}):
        variants[f"TPE + ASHA, {' + '.join(keys)}"] = service_policy("tpe", _asha, **keys)
    for grace, factor in ((1, 3), (3, 3), (g, 2), (g, 4)):
        if (grace, factor) != (g, f):
            variants[f"TPE + ASHA, grace {grace}, factor {factor}"] = service_policy(
                "tpe", lambda s, grace=grace, factor=factor: _asha(s, grace, factor))
    return {**table, **variants}


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
    """The best value after each fraction of the budget's epochs."""
    return [trace[max(1, math.ceil(f * budget)) - 1] for f in FRACTIONS]


def replay(table: Table, setting: Setting, builders: dict[str, Callable], seeds: range,
           budget: int) -> dict[str, np.ndarray]:
    """Policy -> best val RMSE found at each fraction, shape (seeds, fractions)."""
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
            runs.append(at_fractions(trace, budget))
        found[name] = np.array(runs)
    return found


def bench_setting(table: Table) -> Setting:
    """The study's space and scheduler, loaded as tune.run loads it (bench setting applied)."""
    from bench.curves import bench_study

    spec = bench_study(table.epochs, root="unused")
    return Setting(spec, spec.scheduler.grace_period, spec.scheduler.reduction_factor)


def summarise(table: Table, found: dict[str, np.ndarray]) -> dict[str, dict]:
    bests = np.array([c.best for c in table.curves])
    best, median = bests.min(), np.median(bests)
    names = list(found)
    regret = np.array([normalised_regret(found[n], best, median) for n in names])
    ranks = np.stack([mean_ranks(regret[:, :, i]) for i in range(len(FRACTIONS))], axis=1)
    return {name: {"median": np.median(regret[k], axis=0),
                   "q1": np.percentile(regret[k], 25, axis=0),
                   "q3": np.percentile(regret[k], 75, axis=0),
                   "mean": regret[k].mean(axis=0), "sd": regret[k].std(axis=0, ddof=1),
                   "rank": ranks[k],
                   "vs service": paired(regret[k], regret[names.index(SERVICE)])}
            for k, name in enumerate(names)}


def _cell(stats: dict, i: int) -> str:
    return f"{stats['median'][i]:.2f} [{stats['q1'][i]:.2f}-{stats['q3'][i]:.2f}]"


def _headline(stats: dict) -> tuple[str, str]:
    """Mean +- sd and the paired better/tie/worse against the service at the headline."""
    i = FRACTIONS.index(HEADLINE)
    return (f"{stats['mean'][i]:.3f} +- {stats['sd'][i]:.3f}",
            "/".join(str(n) for n in stats["vs service"][i]))


def run(quick: bool, path=TABLE) -> tuple[Table, Setting, dict[str, dict], int, int]:
    table = load_table(path)
    setting = bench_setting(table)
    seeds = range(5 if quick else 20)
    budget = BUDGET_TRIALS * setting.max_t
    found = replay(table, setting, policies(setting, quick), seeds, budget)
    return table, setting, summarise(table, found), len(seeds), budget


def measure(quick: bool) -> list[dict]:
    table, setting, stats, seeds, budget = run(quick)
    head = FRACTIONS.index(HEADLINE)
    service = stats[SERVICE]["median"][head]
    setup = (f"{len(table.curves)} recorded configs of {table.epochs} epochs "
             f"(bench/data/curves.json.gz), budget {budget} epochs = {BUDGET_TRIALS} random "
             f"trials, {setting.workers} workers, ASHA grace {setting.grace_period} factor "
             f"{setting.reduction_factor} unless named, {seeds} seeds")
    rows = []
    for name, s in stats.items():
        cells = ", ".join(_cell(s, i) for i in range(len(FRACTIONS)))
        ranks = "/".join(f"{r:.1f}" for r in s["rank"])
        mine = name == SERVICE
        rows.append(row(
            f"replay: {name}", round(float(s["median"][head]), 3), f"regret@{HEADLINE:.0%}",
            "lowest median of all policies" if mine else f"{SERVICE} <= this",
            service <= min(v["median"][head] for v in stats.values()) if mine
            else service <= s["median"][head],
            f"normalised regret median [IQR] at 10/25/50/100 % of the budget: {cells}; mean "
            f"rank {ranks}; at {HEADLINE:.0%} mean +- sd {_headline(s)[0]}"
            + (f"; {setup}" if mine else
               f", better/tie/worse than {SERVICE} on {_headline(s)[1]} seeds")))
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 seeds, no variants")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    table, setting, stats, seeds, budget = run(args.quick)
    heads = " | ".join(f"{f:.0%}" for f in FRACTIONS)
    print(f"normalised regret, median [IQR] over {seeds} seeds; mean rank at each fraction; "
          f"budget {budget} epochs; {len(table.curves)} recorded configs\n")
    print(f"| policy | {heads} | mean rank |\n|---|{'---|' * len(FRACTIONS)}---|")
    for name, s in stats.items():
        cells = " | ".join(_cell(s, i) for i in range(len(FRACTIONS)))
        print(f"| {name} | {cells} | {'/'.join(f'{r:.1f}' for r in s['rank'])} |")
    head = FRACTIONS.index(HEADLINE)
    print(f"\nat {HEADLINE:.0%} of the budget; paired: seeds better/tie/worse than {SERVICE}\n")
    print("| policy | median [IQR] | mean +- sd | paired | mean rank |\n|---|---|---|---|---|")
    for name, s in stats.items():
        mean, pair = _headline(s)
        print(f"| {name} | {_cell(s, head)} | {mean} | {pair} | {s['rank'][head]:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
