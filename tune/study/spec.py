"""A study, once validated: the StudySpec that tune.run hands to Ray Tune and Optuna, the
names a study file may use, and the errors it raises. tune.study.load reads study files into it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from baseres.config import StrictSafeDumper, TrainConfig
from baseres.errors import UserError
from tune.numbers import finite

METRICS = ("val_rmse",)  # what a study may optimise; all are minimised
MAX_SAMPLES = 100_000  # more trials than this is a typo, not a study
# Ray's and Optuna's own defaults (one trial, or no end) make no sense for a study file.
DEFAULT_NUM_SAMPLES = 10
SAMPLERS = ("tpe", "random", "qmc")
# A study without `sampler.type` samples at random: on both recorded curve tables no policy
# beat random search with ASHA (bench/replay.py, docs/performance.md).
DEFAULT_SAMPLER = "random"
# TPE's keys a study may set, and their defaults: Optuna's n_startup_trials; multivariate and
# constant_liar off, as Optuna 4 had them (Optuna 5's TPESampler turns both on; the policy
# replay, docs/performance.md, measured them off as no worse). `constraints` makes the study's
# minimum targets constraints TPE prefers to meet (Optuna's constraints_func).
TPE_KEYS = {"n_startup_trials": 10, "multivariate": False, "constant_liar": False,
            "constraints": False}
SCHEDULERS = ("asha", "none")
TARGET_LEVELS = ("minimum", "ideal")
PARAM_TYPES = ("float", "int", "categorical")

TOP_KEYS = ("name", "metric", "mode", "budget", "num_samples", "max_concurrent_trials",
            "resources_per_trial", "data", "train", "search", "scientific", "baselines",
            "sampler", "scheduler", "recheck", "targets", "question")
REQUIRED = ("name", "search")
# study key under `data:` -> TrainConfig field
DATA_FIELDS = {"dataset": "dataset", "root": "data_root", "locations": "locations",
               "val_locations": "val_locations", "test_locations": "test_locations"}
# TrainConfig fields a study may neither fix in `train` nor search, and why
NOT_SETTABLE = {
    **{field: f"the data set is chosen under `data:`; set data.{key} instead"
       for key, field in DATA_FIELDS.items()},
    "out_dir": "each trial writes into its own trial folder; a study cannot set out_dir",
    # a trial's hooks have no W&B hook: the setting made every trial import wandb, log nothing
    "use_wandb": "a search logs to Weights & Biases with tune.run --wandb PROJECT; a study "
                 "cannot set use_wandb",
}
EPOCHS_FIXED = "every trial trains for train.epochs (the scheduler's max_t); fix it in train"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # the study name becomes a results folder
MAX_NAME_LENGTH = 100  # file systems allow 255 bytes; Ray and tune.run add to the name


BUDGET_KEYS = ("epochs", "time_s")


class Budget(NamedTuple):
    """What a search may spend: the epochs every trial reports, baselines and early-stopped
    trials included, and a wall-clock guard; trials keep coming until one is spent (None: no
    such limit)."""

    epochs: int | None
    time_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self._asdict().items() if v is not None}


class RecheckSpec(NamedTuple):
    """After the search: the `top` searched configs that ran the full budget, the best
    baseline and the U-Net re-trained with `seeds` fresh seeds (0: not re-checked)."""

    top: int = 2
    seeds: int = 3

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


BASELINE_KEY = "baseline"  # trial config key naming the baseline a trial evaluates
RUN_KEY = "run"  # trial config key holding a question or confirmation run's point


def run_label(config: Mapping[str, Any]) -> str | None:
    """The label of the run a trial config holds (a fold, confirmation or re-check run's
    point under RUN_KEY); None for a search trial."""
    point = config.get(RUN_KEY)
    return point.get("label") if isinstance(point, Mapping) else None

# the baselines the study files name the claimed fix's before- and after-model by
CLAIM_BASELINES = ("seed_before", "seed_after")


class StudyError(UserError):
    """A study file or a --set override is invalid; the message is one line.

    `key` is the key path (or flag) at fault."""


def experiment_name_rule(name: Any) -> str | None:
    """The rule a study or experiment name breaks, or None: it becomes one folder under the
    storage, so it must be a plain, short folder name that cannot climb out of it."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty folder name"
    if len(name) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters long (it names a folder)"
    if any(sep in name for sep in ("/", "\\", "\0")):
        return "must be one folder name, without '/', '\\' or NUL"
    if name.startswith("."):
        return "must not start with '.' (no '.', '..' or hidden folder)"
    if not NAME_PATTERN.fullmatch(name):
        return ("must start with a letter or digit and use only letters, digits, '.', '_' "
                "and '-' (it names a folder)")
    return None


def check_experiment_name(name: str, source: str) -> str:
    """`name` if it is a safe experiment folder name; else StudyError naming `source` (the
    key or flag it came from, e.g. "--name"), the rule and the value."""
    rule = experiment_name_rule(name)
    if rule is not None:
        raise StudyError(f"{source}: {rule}, but got {short_repr(name)}", key=source, rule=rule,
                         value=name)
    return name


def short_repr(value: Any, limit: int = 60) -> str:
    """repr of `value`, cut in the middle when long, so an error stays one readable line."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[:limit // 2]}...{text[-limit // 2:]}{size}"


class Relative(NamedTuple):
    """A target bound relative to a baseline of the same study: `times` x that baseline's
    value of the same metric (the claim states its RMSE targets against its before-model)."""

    times: float
    of: str  # a baseline's name

    def __str__(self) -> str:
        return f"{self.times:g} x {self.of}"

    def reference(self, bests: Mapping[str, Mapping[str, Any] | None], metric: str
                  ) -> float | None:
        """The baseline's value of `metric` at its best epoch (`bests`: baseline name -> the
        values of its best epoch); None while it has no finite one."""
        value = (bests.get(self.of) or {}).get(metric)
        return value if finite(value) else None

    def resolve(self, bests: Mapping[str, Mapping[str, Any] | None], metric: str
                ) -> float | None:
        """The bound's value, `times` x the baseline's (None while that is unknown)."""
        reference = self.reference(bests, metric)
        return None if reference is None else self.times * reference


Bound = float | Relative | None


class Band(NamedTuple):
    """A target's accepted range of one metric: None leaves that side open."""

    low: Bound
    high: Bound


Targets = dict[str, dict[str, Band]]  # level ("minimum", "ideal") -> metric -> band


class SamplerSpec(NamedTuple):
    """The study's `sampler:`. TPE's keys keep Optuna's defaults for the other samplers,
    which do not read them (the validator refuses them there)."""

    type: str  # one of SAMPLERS
    seed: int
    n_startup_trials: int = TPE_KEYS["n_startup_trials"]
    multivariate: bool = TPE_KEYS["multivariate"]
    constant_liar: bool = TPE_KEYS["constant_liar"]
    constraints: bool = TPE_KEYS["constraints"]  # the minimum targets as TPE's constraints

    def to_dict(self) -> dict[str, Any]:
        """The study file's form: TPE's keys only where the sampler is TPE."""
        out = self._asdict()
        return out if self.type == "tpe" else {"type": self.type, "seed": self.seed}


class AshaSpec(NamedTuple):
    """The study's `scheduler: {type: asha}`, max_t resolved (the trials' epochs by default)."""

    grace_period: int
    reduction_factor: float
    max_t: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": "asha", **self._asdict()}

    @property
    def rungs(self) -> int:
        """Ray's ASHA count of rungs: milestones grace * factor**k up to max_t."""
        return int(math.log(self.max_t / self.grace_period) / math.log(self.reduction_factor)
                   + 1)

    def stop_epochs(self) -> tuple[int, ...]:
        """The epochs at which ASHA can stop a trial early: at each rung, the first epoch at
        or past its milestone (Ray compares an epoch >= the milestone)."""
        return tuple(sorted({math.ceil(self.grace_period * self.reduction_factor ** k)
                             for k in range(self.rungs)}))


# ------------------------------------------------------------------------------------ spec
QUESTION_KEYS = ("claim", "parameter", "values", "held", "control", "extra_arms", "folds",
                 "seeds", "half_width")
LOCATION_FIELDS = ("locations", "val_locations", "test_locations")  # set per fold instead
Arm = bool | int | float | str | None  # a value of the parameter, an extra arm's name, "control"


def arm_key(arm: Arm) -> str:
    """An arm as text: a JSON key (summary.json, plan.json) and a figure's column."""
    return str(arm)


@dataclass(frozen=True)
class QuestionSpec:
    """The study's question, posed with room folds (tune.question): two values of
    one parameter with every other knob held equal, a positive control, and the seeds."""

    claim: str  # the claim in words, as summary.md opens with it
    parameter: str
    values: tuple[Arm, Arm]  # the claim predicts a larger place gap for values[0]
    held: dict[str, Any]  # TrainConfig values both arms share, beyond the study's train:
    control: dict[str, Any] | None  # the positive control's TrainConfig values (a U-Net)
    extra_arms: dict[str, dict[str, Any]]  # name -> changes to the values[0] arm
    folds: tuple[tuple[str, ...], ...] | int  # places per fold, or a count to deal them into
    seeds: tuple[int, ...]
    half_width: float = 0.02  # metres: the planner's target half-width of the contrast

    def arms(self) -> dict[Arm, dict[str, Any]]:
        """Arm -> its TrainConfig values (on top of the study's fixed ones): the two values,
        the extra arms, the control."""
        first, second = self.values
        arms: dict[Arm, dict[str, Any]] = {
            first: {**self.held, self.parameter: first},
            second: {**self.held, self.parameter: second}}
        for name, changes in self.extra_arms.items():
            arms[name] = {**arms[first], **changes}
        if self.control is not None:
            arms["control"] = dict(self.control)
        return arms

    def to_dict(self) -> dict[str, Any]:
        out = {"claim": self.claim, "parameter": self.parameter, "values": list(self.values),
               "held": dict(self.held), "extra_arms": {k: dict(v) for k, v in
                                                       self.extra_arms.items()},
               "folds": self.folds if isinstance(self.folds, int) else
               [list(f) for f in self.folds], "seeds": list(self.seeds),
               "half_width": self.half_width}
        if self.control is not None:
            out["control"] = dict(self.control)
        return out


@dataclass(frozen=True)
class StudySpec:
    """A validated study: what tune.run hands to Ray Tune and Optuna."""

    name: str
    path: Path  # the study file, absolute
    metric: str
    budget: Budget  # epochs or time; with neither, num_samples trials
    num_samples: int | None  # a cap on the trials (None: the budget alone decides)
    max_concurrent_trials: int
    resources: dict[str, float]  # {"cpu": ..., "gpu": ...} per trial
    fixed: dict[str, Any]  # TrainConfig values shared by every trial, data keys included
    space: dict[str, BaseDistribution]  # searched TrainConfig field -> Optuna distribution
    baselines: dict[str, dict[str, Any]]  # name -> point (searched values + extra fields)
    sampler: SamplerSpec
    scheduler: AshaSpec | None  # None: every trial runs its full budget
    recheck: RecheckSpec
    targets: Targets
    target_rules: dict[str, str]  # metric -> how its bounds were set for this data
    scientific: str | None  # the parameter the study isolates (its isolation table)
    question: QuestionSpec | None = None  # the claim the study answers with room folds

    @property
    def model(self) -> str:
        """The model of a searched trial (a baseline may set another)."""
        return self.fixed.get("model", "base_residual")

    @property
    def mode(self) -> str:
        """Ray's and Optuna's direction: every metric a study may optimise is minimised."""
        return "min"

    @property
    def epochs(self) -> int:
        """The epochs every trial is configured for (train.epochs; a study cannot search it)."""
        return self.trial_config(self.low_corner()).epochs

    @property
    def max_t(self) -> int:
        """Epochs of a trial that runs its full budget: ASHA's max_t, else every epoch."""
        return self.scheduler.max_t if self.scheduler is not None else self.epochs

    def low_corner(self) -> dict[str, Any]:
        """Every searched parameter at the low end of its range (its first choice)."""
        return {name: low_end(dist) for name, dist in self.space.items()}

    def trial_config(self, sample: dict[str, Any]) -> TrainConfig:
        """The TrainConfig of one trial: the fixed values, then the sample (or a baseline)."""
        return TrainConfig.from_dict({**self.fixed, **sample}, source=f"{self.path}: trial")

    def to_yaml(self) -> str:
        """The resolved study as a study file (defaults filled in); load_study reads it back."""
        data = {key: self.fixed[field] for key, field in DATA_FIELDS.items() if field in self.fixed}
        train = {k: v for k, v in self.fixed.items() if k not in DATA_FIELDS.values()}
        study = {
            "name": self.name,
            "metric": self.metric,
            "mode": self.mode,
            **({"budget": self.budget.to_dict()} if self.budget.to_dict() else {}),
            **({"num_samples": self.num_samples} if self.num_samples is not None else {}),
            "max_concurrent_trials": self.max_concurrent_trials,
            "resources_per_trial": dict(self.resources),
            "data": data,
            "train": train,
            "search": {name: short_form(dist) for name, dist in self.space.items()},
            "baselines": {name: dict(point) for name, point in self.baselines.items()},
            "sampler": self.sampler.to_dict(),
            "scheduler": self.scheduler.to_dict() if self.scheduler else {"type": "none"},
            "recheck": self.recheck.to_dict(),
            "targets": {**{level: {metric: [_bound_form(b) for b in bounds]
                                   for metric, bounds in metrics.items()}
                           for level, metrics in self.targets.items()},
                        **({"rules": dict(self.target_rules)} if self.target_rules else {})},
        }
        if self.scientific is not None:
            study["scientific"] = self.scientific
        if self.question is not None:
            study["question"] = self.question.to_dict()
        # Flow style for leaf collections keeps `choices: [1, 2, 4, 8]` on one line.
        # StrictSafeDumper quotes a string such as "1e5" that load_study would read as a number.
        text = yaml.dump(study, Dumper=StrictSafeDumper, sort_keys=False, default_flow_style=None)
        return f"# study {self.name}, resolved from {self.path}\n{text}"


def _bound_form(bound: Bound) -> Any:
    return {"times": bound.times, "of": bound.of} if isinstance(bound, Relative) else bound


def short_form(dist: BaseDistribution) -> dict[str, Any]:
    """Optuna's short form of a distribution, as a study file writes it."""
    if isinstance(dist, CategoricalDistribution):
        return {"type": "categorical", "choices": list(dist.choices)}
    kind = "int" if isinstance(dist, IntDistribution) else "float"
    form = {"type": kind, "low": dist.low, "high": dist.high}
    if dist.log:
        form["log"] = True
    if dist.step is not None and not (kind == "int" and dist.step == 1):
        form["step"] = dist.step
    return form


def low_end(dist: BaseDistribution) -> Any:
    return dist.choices[0] if isinstance(dist, CategoricalDistribution) else dist.low
