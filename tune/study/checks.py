"""The study-file validator: every key, range and trial corner checked before Ray starts,
each failure one line naming the file, the key path, the rule and the value (tune.study.rules).
"""

from __future__ import annotations

import math
import os
import re
import types
import typing
import warnings
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from baseres.config import DATASETS
from tune.private_api import in_distribution
from tune.study.question_checks import check_question
from tune.study.rules import Rules, is_int, is_number
from tune.study.spec import (
    BUDGET_KEYS,
    DATA_FIELDS,
    DEFAULT_NUM_SAMPLES,
    DEFAULT_SAMPLER,
    EPOCHS_FIXED,
    MAX_SAMPLES,
    METRICS,
    PARAM_TYPES,
    REQUIRED,
    SAMPLERS,
    SCHEDULERS,
    TARGET_LEVELS,
    TOP_KEYS,
    TPE_KEYS,
    AshaSpec,
    Band,
    Bound,
    Budget,
    RecheckSpec,
    Relative,
    SamplerSpec,
    StudySpec,
    Targets,
    experiment_name_rule,
    low_end,
    short_form,
    short_repr,
)

MAX_INT_VALUES_CHECKED = 1024  # an int range this short has each value built as a trial


def _field_types(hint: Any) -> set[Any]:
    """The types a TrainConfig annotation admits: ``int | None`` -> {int, NoneType}."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return {typing.get_origin(arg) or arg for arg in typing.get_args(hint)}
    return {typing.get_origin(hint) or hint}


class Checker(Rules):
    """Validates one raw study, section by section, into a StudySpec."""

    # ---------------------------------------------------------------- the study
    def study(self, raw: dict[str, Any]) -> StudySpec:
        raw = self.mapping(raw, "study")
        self.known_keys(raw, TOP_KEYS, "")
        for key in REQUIRED:
            if key not in raw:
                self.fail(key, "is required")
        study_name = raw["name"]
        name_rule = experiment_name_rule(study_name)
        if name_rule is not None:
            self.fail("name", f"{name_rule}, but got {short_repr(study_name)}", value=study_name)
        metric = self.choice(raw.get("metric", METRICS[0]), "metric", METRICS)
        self.choice(raw.get("mode", "min"), "mode", ("min",))  # StudySpec.mode says why
        budget = self.budget(raw.get("budget"))
        num_samples = raw.get("num_samples")
        if num_samples is not None or budget == Budget(None, None):
            num_samples = self.integer(DEFAULT_NUM_SAMPLES if num_samples is None
                                       else num_samples, "num_samples", 1, MAX_SAMPLES)
        max_concurrent = self.integer(raw.get("max_concurrent_trials", 1),
                                      "max_concurrent_trials", 1)
        resources = self.resources(raw.get("resources_per_trial", {}))
        data = self.data(raw.get("data", {}))
        train = self.train(raw.get("train"))
        space = self.search(raw["search"], train)
        fixed = {**train, **data}
        # Every trial starts from here: the fixed values with each parameter at its low end.
        low = {name: low_end(dist) for name, dist in space.items()}
        owners = {**_owners(fixed),
                  **{name: f"search.{name}.{_low_key(dist)}" for name, dist in space.items()}}
        config = self.build({**fixed, **low}, "", owners)
        self.corners(fixed, low, space)
        baselines = self.baselines(raw.get("baselines"), fixed, space)
        if num_samples is not None and num_samples < len(baselines):
            self.fail("num_samples", "`num_samples >= len(baselines)` must hold (the baselines "
                      f"run first), but got (num_samples={num_samples}, "
                      f"baselines={len(baselines)})", also=("baselines",))
        scheduler = self.scheduler(raw.get("scheduler", {}), config.epochs)
        max_t = scheduler.max_t if scheduler is not None else config.epochs
        if budget.epochs is not None and budget.epochs < len(baselines) * max_t:
            self.fail("budget.epochs", f"`epochs >= baselines x max_t` must hold (the "
                      f"baselines run first, each to its full budget), but got (epochs="
                      f"{budget.epochs}, baselines={len(baselines)}, max_t={max_t})",
                      also=("baselines",))
        targets, rules = self.targets(raw.get("targets"), baselines)
        return StudySpec(
            name=study_name,
            path=self.path,
            metric=metric,
            budget=budget,
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent,
            resources=resources,
            fixed=fixed,
            space=space,
            baselines=baselines,
            sampler=self.sampler(raw.get("sampler", {}), targets),
            scheduler=scheduler,
            recheck=self.recheck(raw.get("recheck", {})),
            targets=targets,
            target_rules=rules,
            scientific=self.scientific(raw.get("scientific"), space),
            question=check_question(self, raw.get("question"), fixed),
        )

    def recheck(self, raw: Any) -> RecheckSpec:
        """`recheck:` top (>= 1) and seeds (0: none, else >= 2: a paired interval needs two)."""
        raw = self.mapping(raw, "recheck", empty_ok=True)
        self.known_keys(raw, RecheckSpec._fields, "recheck")
        top = self.integer(raw.get("top", RecheckSpec().top), "recheck.top", 1)
        seeds = self.integer(raw.get("seeds", RecheckSpec().seeds), "recheck.seeds", 0, 100)
        if seeds == 1:
            self.fail("recheck.seeds", "must be 0 (no re-check) or >= 2 (a paired interval "
                      "over seeds needs two), but got seeds=1")
        return RecheckSpec(top, seeds)

    def budget(self, raw: Any) -> Budget:
        """`budget:` epochs (>= 1) and time_s (> 0), each optional."""
        if raw is None:
            return Budget(None, None)
        raw = self.mapping(raw, "budget")
        self.known_keys(raw, BUDGET_KEYS, "budget")
        epochs = raw.get("epochs")
        if epochs is not None:
            epochs = self.integer(epochs, "budget.epochs", 1)
        time_s = raw.get("time_s")
        if time_s is not None:
            time_s = self.number(time_s, "budget.time_s")
            if time_s <= 0:
                self.fail("budget.time_s", f"`time_s > 0` must hold, but got time_s={time_s}")
        if epochs is None and time_s is None:
            self.fail("budget", "must set epochs or time_s (or leave budget out and set "
                      "num_samples)")
        return Budget(epochs, time_s)

    def resources(self, raw: Any) -> dict[str, float]:
        raw = self.mapping(raw, "resources_per_trial")
        self.known_keys(raw, ("cpu", "gpu"), "resources_per_trial")
        cpu = self.number(raw.get("cpu", 1), "resources_per_trial.cpu")
        gpu = self.number(raw.get("gpu", 0), "resources_per_trial.gpu")
        if cpu <= 0:
            self.fail("resources_per_trial.cpu", f"`cpu > 0` must hold, but got cpu={cpu}")
        if gpu < 0:
            self.fail("resources_per_trial.gpu", f"`gpu >= 0` must hold, but got gpu={gpu}")
        return {"cpu": cpu, "gpu": gpu}

    def data(self, raw: Any) -> dict[str, Any]:
        """`data:` as TrainConfig values; a relative root is taken from the working directory."""
        raw = self.mapping(raw, "data")
        self.known_keys(raw, tuple(DATA_FIELDS), "data")
        dataset = self.choice(raw.get("dataset", "synthetic"), "data.dataset", DATASETS)
        values: dict[str, Any] = {"dataset": dataset}
        root = raw.get("root")
        if root is None and dataset != "synthetic":
            self.fail("data.root", f"is required for dataset {dataset}")
        if root is not None:
            if not isinstance(root, str) or not root.strip():
                self.fail("data.root", f"must be a folder path, but got {root!r}")
            # Trials run inside their own folders: resolve now, while "here" means something.
            values["data_root"] = os.path.abspath(os.path.expanduser(root))
        for key in ("locations", "val_locations", "test_locations"):
            if key not in raw:
                continue
            locations = raw[key]
            if dataset == "batvisionv1":
                self.fail(f"data.{key}", "only the BatVision V2 layout (batvisionv2, "
                                         "synthetic) has locations")
            if not isinstance(locations, list) or not locations:
                self.fail(f"data.{key}", f"must be a non-empty list, but got {locations!r}")
            for i, location in enumerate(locations):
                if not isinstance(location, str) or not location:
                    self.fail(f"data.{key}[{i}]",
                              f"must be a folder name, but got {location!r}")
                if location in locations[:i]:
                    self.fail(f"data.{key}[{i}]", "each location must be named once (twice "
                              f"counts its samples twice), but got {location!r} again",
                              value=location)
            values[key] = list(locations)
        return values

    def train(self, raw: Any) -> dict[str, Any]:
        raw = self.mapping(raw, "train", empty_ok=True)
        for name in raw:
            self.train_key(name, f"train.{name}")
        return dict(raw)

    # ---------------------------------------------------------------- search space
    def search(self, raw: Any, train: dict[str, Any]) -> dict[str, BaseDistribution]:
        raw = self.mapping(raw, "search")
        if not raw:
            self.fail("search", "must name at least one parameter to search")
        space = {}
        for name, form in raw.items():
            key = f"search.{name}"
            self.train_key(name, key)
            if name == "epochs":
                self.fail(key, EPOCHS_FIXED)
            if name in train:
                self.fail(key, f"is also fixed in train.{name}; a parameter is either fixed "
                               "or searched", also=(f"train.{name}",))
            space[name] = self.distribution(form, key, name)
        return space

    def distribution(self, form: Any, key: str, name: str) -> BaseDistribution:
        if not isinstance(form, dict):
            self.fail(key, "must be a mapping like {type: float, low: 0.1, high: 0.5}, "
                           f"but got {form!r}")
        kind = self.choice(form.get("type"), f"{key}.type", PARAM_TYPES)
        if kind == "categorical":
            self.known_keys(form, ("type", "choices"), key)
            return self.categorical(form, key)
        self.known_keys(form, ("type", "low", "high", "log", "step"), key)
        admitted = _field_types(self.fields[name])
        if float not in admitted and (kind == "float" or int not in admitted):
            hint = "use `type: int`" if int in admitted else "use `type: categorical`"
            field_type = getattr(self.fields[name], "__name__", self.fields[name])
            self.fail(f"{key}.type", f"`type: {kind}` cannot set {name}, a TrainConfig field "
                                     f"of type {field_type}; {hint}")
        bounds = {}
        for bound in ("low", "high", "step"):
            if bound not in form:
                if bound != "step":
                    self.fail(f"{key}.{bound}", f"is required for `type: {kind}`")
                continue
            value = self.number(form[bound], f"{key}.{bound}")
            if kind == "int" and not is_int(value):
                self.fail(f"{key}.{bound}",
                          f"must be an integer for `type: int`, but got {value!r}")
            bounds[bound] = value
        log = form.get("log", False)
        if not isinstance(log, bool):
            self.fail(f"{key}.log", f"must be true or false, but got {log!r}")
        if log and "step" in bounds:
            self.fail(key, "`step` and `log: true` cannot be combined, but got "
                           f"(step={bounds['step']}, log=True)")
        build = FloatDistribution if kind == "float" else IntDistribution
        try:
            # Optuna warns and shrinks `high` when the range is not a multiple of the step;
            # checked below as an error instead.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dist = build(**bounds, log=log)
        except ValueError as err:
            self.fail(key, str(err).rstrip("."))
        if dist.high != bounds["high"]:
            self.fail(f"{key}.step", "`high - low` must be a multiple of `step`, but got "
                                     f"(low={bounds['low']}, high={bounds['high']}, "
                                     f"step={bounds['step']})")
        return dist

    def categorical(self, form: dict[str, Any], key: str) -> CategoricalDistribution:
        if "choices" not in form:
            self.fail(f"{key}.choices", "is required for `type: categorical`")
        choices = form["choices"]
        if not isinstance(choices, list):
            self.fail(f"{key}.choices", f"must be a list, but got {choices!r}")
        for i, choice in enumerate(choices):
            where = f"{key}.choices[{i}]"
            # What Optuna's storages keep; the journal file of tune.run is one.
            if choice is not None and not isinstance(choice, (bool, int, float, str)):
                self.fail(where, f"must be null, true/false, a number or a string, but got "
                                 f"{choice!r}")
            if isinstance(choice, float) and not math.isfinite(choice):
                self.fail(where, f"must be finite, but got {choice!r}")
            for j, earlier in enumerate(choices[:i]):
                if earlier == choice:
                    self.fail(where, f"choices must be distinct, but got {choice!r} again "
                                     f"(choices[{j}]={earlier!r})")
        try:
            return CategoricalDistribution(choices)
        except ValueError as err:
            self.fail(f"{key}.choices", str(err).rstrip("."))

    # ---------------------------------------------------------------- whole trials
    def corners(self, fixed: dict[str, Any], low: dict[str, Any],
                space: dict[str, BaseDistribution]) -> None:
        """Build the trial at every other end of each parameter (the others at their low end)."""
        owners = _owners(fixed)
        for name, dist in space.items():
            if isinstance(dist, CategoricalDistribution):
                ends = [(f"choices[{i}]", c) for i, c in enumerate(dist.choices)][1:]
            elif isinstance(dist, IntDistribution) and not dist.log and \
                    (dist.high - dist.low) // dist.step <= MAX_INT_VALUES_CHECKED:
                # every value the range can draw: a rule may refuse one inside (a divisor of 3)
                ends = [(f"value {v}", v) for v in range(dist.low + dist.step, dist.high + 1,
                                                         dist.step)]
            else:
                ends = [("high", dist.high)] if dist.high != dist.low else []
            for label, value in ends:
                self.build({**fixed, **low, name: value}, f"search.{name}.{label}", owners)

    def baselines(self, raw: Any, fixed: dict[str, Any],
                  space: dict[str, BaseDistribution]) -> dict[str, dict[str, Any]]:
        raw = self.mapping(raw, "baselines", empty_ok=True)
        baselines = {}
        for name, point in raw.items():
            where = f"baselines.{name}"
            point = self.mapping(point, where)
            for key, value in point.items():
                self.train_key(key, f"{where}.{key}")
                if key == "epochs":
                    self.fail(f"{where}.epochs", EPOCHS_FIXED)
                if key in space:
                    self.inside(value, space[key], f"{where}.{key}")
            if point.get("model", fixed.get("model")) == "unet":
                # Its own model, never a point of the searched space: Optuna does not see it.
                searched = [p for p in space if p in point]
                if searched:
                    self.fail(f"{where}.{searched[0]}", "a unet baseline is its own model and "
                              f"takes no searched parameter, but got {searched[0]}="
                              f"{point[searched[0]]!r}")
                owners = {**_owners(fixed), **{k: f"{where}.{k}" for k in point}}
                self.build({**fixed, **point}, where, owners)
                baselines[name] = dict(point)
                continue
            missing = [p for p in space if p not in point]
            if missing:
                self.fail(where, "a baseline must set every searched parameter, but misses "
                                 f"{', '.join(missing)}")
            owners = {**_owners(fixed), **{k: f"{where}.{k}" for k in point}}
            self.build({**fixed, **point}, where, owners)
            baselines[name] = dict(point)
        return baselines

    def inside(self, value: Any, dist: BaseDistribution, key: str) -> None:
        if isinstance(dist, CategoricalDistribution):
            # 1 == True in Python, but a baseline of `true` is not the choice 1.
            if not any(value == c and isinstance(value, bool) == isinstance(c, bool)
                       for c in dist.choices):
                self.fail(key, f"must be one of the searched choices {list(dist.choices)}, "
                               f"but got {value!r}")
            return
        if not is_number(value):
            self.fail(key, f"must be a number, but got {value!r}")
        if not in_distribution(dist, value):  # as Optuna itself checks (bounds, step)
            self.fail(key, f"must lie in the search space {short_form(dist)}, but got {value!r}")

    # ---------------------------------------------------------------- search algorithm
    def sampler(self, raw: Any, targets: Targets) -> SamplerSpec:
        raw = self.mapping(raw, "sampler")
        self.known_keys(raw, ("type", "seed", *TPE_KEYS), "sampler")
        kind = self.choice(raw.get("type", DEFAULT_SAMPLER), "sampler.type", SAMPLERS)
        # numpy's RandomState, under every Optuna sampler, takes seeds in [0, 2**32 - 1].
        seed = self.integer(raw.get("seed", 0), "sampler.seed", 0, 2**32 - 1)
        if kind != "tpe":
            for key in TPE_KEYS:
                if key in raw:
                    said = "" if "type" in raw else " (the default)"
                    self.fail(f"sampler.{key}", f"is a key of TPE's, but sampler.type is "
                              f"{kind!r}{said}", value=raw[key])
            return SamplerSpec(kind, seed)
        startup = self.integer(raw.get("n_startup_trials", TPE_KEYS["n_startup_trials"]),
                               "sampler.n_startup_trials", 0)
        flags = {key: self.boolean(raw.get(key, TPE_KEYS[key]), f"sampler.{key}")
                 for key in ("multivariate", "constant_liar", "constraints")}
        if flags["constraints"] and not targets.get("minimum"):
            self.fail("sampler.constraints", "needs targets.minimum (the constraints are its "
                      "bounds), but the study has none", also=("targets",), value=True)
        return SamplerSpec(kind, seed, startup, **flags)

    def scheduler(self, raw: Any, epochs: int) -> AshaSpec | None:
        raw = self.mapping(raw, "scheduler")
        # ASHA's keys are allowed (and dropped) under `type: none`, so that
        # `--set scheduler.type=none` works on an ASHA study.
        self.known_keys(raw, ("type", "grace_period", "reduction_factor", "max_t"), "scheduler")
        kind = self.choice(raw.get("type", "asha"), "scheduler.type", SCHEDULERS)
        if kind == "none":
            return None
        # Ray's ASHAScheduler defaults, except max_t: the trial length.
        grace = self.integer(raw.get("grace_period", 1), "scheduler.grace_period", 1)
        factor = self.number(raw.get("reduction_factor", 4), "scheduler.reduction_factor")
        if factor <= 1:
            self.fail("scheduler.reduction_factor", "`reduction_factor > 1` must hold, but got "
                                                    f"reduction_factor={factor}")
        max_t = self.integer(raw.get("max_t", epochs), "scheduler.max_t", 1)
        if max_t > epochs:
            self.fail("scheduler.max_t", "`max_t <= train.epochs` must hold, but got "
                                         f"(max_t={max_t}, epochs={epochs})",
                      also=("train.epochs",))
        if grace > max_t:
            self.fail("scheduler.grace_period", "`grace_period <= max_t` must hold, but got "
                                                f"(grace_period={grace}, max_t={max_t})",
                      also=("scheduler.max_t", "train.epochs"))
        # Ray's ASHA count of rungs (milestones grace * factor**k up to max_t); a factor near 1
        # made 10,986,124 of them (1.9 GB). More than one per epoch is never meaningful.
        rungs = AshaSpec(grace, factor, max_t).rungs
        if rungs > max_t - grace + 1:
            self.fail("scheduler.reduction_factor",
                      "`rungs <= max_t - grace_period + 1` must hold (ASHA's rungs, "
                      "floor(log(max_t / grace_period) / log(reduction_factor)) + 1, at most one "
                      f"per epoch), but got (rungs={rungs}, reduction_factor={factor}, "
                      f"grace_period={grace}, max_t={max_t})",
                      also=("scheduler.grace_period", "scheduler.max_t", "train.epochs"),
                      value=factor)
        return AshaSpec(grace, factor, max_t)

    def targets(self, raw: Any, baselines: dict[str, Any]
                ) -> tuple[Targets, dict[str, str]]:
        raw = self.mapping(raw, "targets", empty_ok=True)
        self.known_keys(raw, (*TARGET_LEVELS, "rules"), "targets")
        rules = self.mapping(raw.get("rules", {}), "targets.rules", empty_ok=True)
        for metric, rule in rules.items():
            if not isinstance(rule, str) or not rule.strip():
                self.fail(f"targets.rules.{metric}", f"must be a sentence, but got {rule!r}")
        targets = {}
        for level, metrics in raw.items():
            if level == "rules":
                continue
            metrics = self.mapping(metrics, f"targets.{level}")
            targets[level] = {}
            for metric, bounds in metrics.items():
                key = f"targets.{level}.{metric}"
                if not re.fullmatch(r"[A-Za-z_]\w*", metric):
                    self.fail(key, f"must name a metric, but got {metric!r}")
                if not isinstance(bounds, list) or len(bounds) != 2:
                    self.fail(key, f"must be [low, high] (null for no bound), but got {bounds!r}")
                lo, hi = (self.bound(b, f"{key}[{i}]", baselines) for i, b in enumerate(bounds))
                if lo is None and hi is None:
                    self.fail(key, "needs at least one bound, but got [null, null]")
                if is_number(lo) and is_number(hi) and lo > hi:
                    self.fail(key, f"`low <= high` must hold, but got (low={lo}, high={hi})")
                targets[level][metric] = Band(lo, hi)
        return targets, dict(rules)

    def bound(self, value: Any, key: str, baselines: dict[str, Any]) -> Bound:
        """null, a number, or {times: k, of: BASELINE} (k x that baseline's value)."""
        if value is None:
            return None
        if not isinstance(value, dict):
            return self.number(value, key)
        self.known_keys(value, ("times", "of"), key)
        for part in ("times", "of"):
            if part not in value:
                self.fail(f"{key}.{part}", "is required in a relative bound {times: k, of: "
                                           "BASELINE}")
        times = self.number(value["times"], f"{key}.times")
        if times <= 0:
            self.fail(f"{key}.times", f"`times > 0` must hold, but got times={times}")
        if value["of"] not in baselines:
            self.fail(f"{key}.of", f"must name a baseline of this study "
                                   f"({', '.join(baselines) or 'none'}), but got {value['of']!r}")
        return Relative(float(times), value["of"])

    def scientific(self, raw: Any, space: dict[str, BaseDistribution]) -> str | None:
        if raw is None:
            return None
        if raw not in space:
            self.fail("scientific", f"must name a searched parameter ({', '.join(space)}), "
                                    f"but got {raw!r}")
        return raw


def _owners(fixed: dict[str, Any]) -> dict[str, str]:
    """TrainConfig field -> the study key that fixes it."""
    data = {field: f"data.{key}" for key, field in DATA_FIELDS.items()}
    return {k: data.get(k, f"train.{k}") for k in fixed}


def _low_key(dist: BaseDistribution) -> str:
    return "choices[0]" if isinstance(dist, CategoricalDistribution) else "low"
