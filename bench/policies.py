"""The search policies the replay compares, each a builder(setting, seed, lookup) -> driver
(bench.simulate): the service's own code path (tune.searcher.StudySearcher on a journal with
the study's space and sampler, and tune.searcher.BaselinesRunFull, the service's ASHA) with
random, TPE or GP samplers and ASHA, PASHA or a learning-curve stopper (bench.schedulers),
and Optuna's own loop with its pruners (successive halving, Hyperband with a random sampler =
Hyperband, with TPE = BOHB-style, median), and SMAC3's multi-fidelity facade where the
optional extra ``smac`` is installed. Variants of the study's knobs (ASHA's grace period
and reduction factor under random + ASHA, the shipped default, and under TPE + ASHA; TPE's
``sampler:`` keys, tune.study.TPE_KEYS) let the study's defaults be read off a table, each
against its policy by paired seeds."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from bench.simulate import METRIC, TIME_ATTR, Lookup, OptunaDriver, RayDriver, SmacDriver
from tune.study import StudySpec

REFERENCE = "random + ASHA"  # what a policy must beat to become the default; the default
TPE_ASHA = "TPE + ASHA"  # the service's default until the question's table was replayed
# Names of the variants of a policy's knobs (the plots leave them off): TPE + ASHA's
# sampler keys and ASHA's, and random + ASHA's ASHA keys.
VARIANTS = (f"{TPE_ASHA}, ", f"{REFERENCE}, ")
SMAC = "SMAC3 multi-fidelity (Hyperband)"
# How a replay gets the SMAC row; make's set-up leaves it out.
SMAC_INSTALL = "pip install -c constraints.txt -e '.[smac]'"
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


def _pasha(setting: Setting):
    from bench.schedulers import Pasha

    return Pasha(setting.grace_period, setting.reduction_factor, setting.max_t)


def _curve_stopper(setting: Setting):
    from bench.schedulers import CurveStopper

    return CurveStopper(setting.grace_period, setting.max_t)


def _asha(setting: Setting, grace: int | None = None, factor: int | None = None):
    from tune.searcher import BaselinesRunFull

    return BaselinesRunFull(setting.spec.name, time_attr=TIME_ATTR, metric=METRIC, mode="min",
                            max_t=setting.max_t, grace_period=grace or setting.grace_period,
                            reduction_factor=factor or setting.reduction_factor)


def service_policy(kind: str, scheduler: Callable | None = None,
                   unnamed_sampler: Callable | None = None, **keys):
    """The service's searcher (tune.searcher.StudySearcher: Optuna ask and tell on an
    experiment's journal, its sampler made by tune.searcher.make_sampler from the study's
    ``sampler``) and scheduler (BaselinesRunFull, or none), on a throw-away experiment
    folder with the setting's baselines (bench.replay's has none). `keys`: the study's
    ``sampler:`` keys this variant sets; `unnamed_sampler(seed)`: an Optuna sampler the
    study file cannot name yet, in make_sampler's place."""

    @contextmanager
    def build(setting: Setting, seed: int, lookup: Lookup):
        from tune.experiment import HoldsFolder, driving
        from tune.searcher import StudySearcher, create_study

        spec = replace(setting.spec, sampler=setting.spec.sampler._replace(**keys, type=kind,
                                                                           seed=seed))
        with (tempfile.TemporaryDirectory(dir=SCRATCH) as scratch,
              driving(Path(scratch)) as folder):
            create_study(spec, folder)
            searcher = StudySearcher(spec, folder)
            if unnamed_sampler is not None:
                searcher.study.sampler = unnamed_sampler(seed)
            chosen = scheduler(setting) if scheduler else None
            if isinstance(chosen, HoldsFolder):  # the service's ASHA reads the journal too
                chosen.hold(folder)
            yield RayDriver(searcher, chosen, lookup)
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


def smac_installed() -> bool:
    return importlib.util.find_spec("smac") is not None


def configspace(space: dict, seed: int):
    """The study's Optuna distributions as a ConfigSpace space. A ``step`` is left out: the
    replay's lookup takes the nearest recorded config anyway."""
    from ConfigSpace import Categorical, ConfigurationSpace, Float, Integer
    from optuna.distributions import CategoricalDistribution, IntDistribution

    def convert(name, dist):
        if isinstance(dist, CategoricalDistribution):
            return Categorical(name, list(dist.choices))
        kind = Integer if isinstance(dist, IntDistribution) else Float
        return kind(name, (dist.low, dist.high), log=dist.log)

    configs = ConfigurationSpace(seed=seed)
    configs.add([convert(name, dist) for name, dist in space.items()])
    return configs


@contextmanager
def smac_policy(setting: Setting, seed: int, lookup: Lookup):
    """SMAC3's MultiFidelityFacade as it comes (random forest, random initial design, its
    scenario's 100 trials sizing that design), its Hyperband on the study's grace period,
    max_t and reduction factor as budgets in epochs; ask and tell only, no target function."""
    from smac import MultiFidelityFacade, Scenario

    with tempfile.TemporaryDirectory(dir=SCRATCH) as folder:
        scenario = Scenario(configspace(setting.space, seed), deterministic=True, seed=seed,
                            min_budget=setting.grace_period, max_budget=setting.max_t,
                            output_directory=Path(folder))
        intensifier = MultiFidelityFacade.get_intensifier(scenario,
                                                          eta=setting.reduction_factor)
        # logging_level False: any other level makes SMAC configure the process's root logger
        smac = MultiFidelityFacade(scenario, None, intensifier=intensifier,
                                   logging_level=False, overwrite=True)
        yield SmacDriver(smac, lookup)


def _tpe(seed: int):
    """Optuna 5's TPE as it comes: multivariate, with the constant liar (a study's TPE
    sets both off unless asked, as Optuna 4's defaults were)."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def _gp(seed: int):
    import warnings

    import optuna

    with warnings.catch_warnings():  # experimental
        warnings.simplefilter("ignore")
        return optuna.samplers.GPSampler(seed=seed)


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
        REFERENCE: service_policy("random", _asha),
        "TPE": service_policy("tpe"),
        TPE_ASHA: service_policy("tpe", _asha),
        "TPE as Optuna 5 ships it (multivariate, constant liar) + ASHA":
            service_policy("tpe", _asha, multivariate=True, constant_liar=True),
        "TPE + PASHA": service_policy("tpe", _pasha),
        "TPE + learning-curve stopper": service_policy("tpe", _curve_stopper),
        "Hyperband (random + Optuna HyperbandPruner)": optuna_policy(_random, _hyperband),
        "BOHB-style (TPE + Optuna HyperbandPruner)": optuna_policy(_tpe, _hyperband),
        "TPE + Optuna SuccessiveHalvingPruner": optuna_policy(_tpe, _halving),
        "TPE + Optuna MedianPruner": optuna_policy(_tpe, _median),
    }
    if smac_installed():
        table[SMAC] = smac_policy
    if quick:
        return table
    table["GP + ASHA"] = service_policy("tpe", _asha, unnamed_sampler=_gp)
    tpe, rand = VARIANTS
    variants = {f"{tpe}n_startup_trials {n}": service_policy("tpe", _asha, n_startup_trials=n)
                for n in (4, 20)}
    for keys in ({"constant_liar": True}, {"multivariate": True}, {"constraints": True}):
        variants[f"{tpe}{' + '.join(keys)}"] = service_policy("tpe", _asha, **keys)
    asha_knobs = {"tpe": (tpe, ((1, 3), (3, 3), (g, 2), (g, 4))),
                  "random": (rand, ((2, 3), (3, 3), (4, 3), (g, 4)))}
    for kind, (prefix, knobs) in asha_knobs.items():
        for grace, factor in knobs:
            if (grace, factor) != (g, f):
                variants[f"{prefix}grace {grace}, factor {factor}"] = service_policy(
                    kind, lambda s, grace=grace, factor=factor: _asha(s, grace, factor))
    return {**table, **variants}
