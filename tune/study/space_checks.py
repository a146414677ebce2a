"""The study file's search space (``search:``) and the trials it makes: every end of each
parameter, and each baseline, built as a TrainConfig before Ray starts, so a value TrainConfig
refuses fails now, naming the study key that set it."""

from __future__ import annotations

import math
import warnings
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from baseres.config import TrainConfig, field_types
from tune.private_api import in_distribution
from tune.study.rules import Rules, is_int, is_number
from tune.study.spec import DATA_FIELDS, EPOCHS_FIXED, PARAM_TYPES, low_end, short_form

MAX_INT_VALUES_CHECKED = 1024  # an int range this short has each value built as a trial


def check_search(checker: Rules, raw: Any, train: dict[str, Any]) -> dict[str, BaseDistribution]:
    raw = checker.mapping(raw, "search")
    if not raw:
        checker.fail("search", "must name at least one parameter to search")
    space = {}
    for name, form in raw.items():
        key = f"search.{name}"
        checker.train_key(name, key)
        if name == "epochs":
            checker.fail(key, EPOCHS_FIXED)
        if name in train:
            checker.fail(key, f"is also fixed in train.{name}; a parameter is either fixed "
                              "or searched", also=(f"train.{name}",))
        space[name] = _distribution(checker, form, key, name)
    return space


def _distribution(checker: Rules, form: Any, key: str, name: str) -> BaseDistribution:
    if not isinstance(form, dict):
        checker.fail(key, "must be a mapping like {type: float, low: 0.1, high: 0.5}, "
                          f"but got {form!r}")
    kind = checker.choice(form.get("type"), f"{key}.type", PARAM_TYPES)
    if kind == "categorical":
        checker.known_keys(form, ("type", "choices"), key)
        return _categorical(checker, form, key)
    checker.known_keys(form, ("type", "low", "high", "log", "step"), key)
    admitted = field_types(checker.fields[name])
    if float not in admitted and (kind == "float" or int not in admitted):
        hint = "use `type: int`" if int in admitted else "use `type: categorical`"
        field_type = getattr(checker.fields[name], "__name__", checker.fields[name])
        checker.fail(f"{key}.type", f"`type: {kind}` cannot set {name}, a TrainConfig field "
                                    f"of type {field_type}; {hint}")
    bounds = {}
    for bound in ("low", "high", "step"):
        if bound not in form:
            if bound != "step":
                checker.fail(f"{key}.{bound}", f"is required for `type: {kind}`")
            continue
        value = checker.number(form[bound], f"{key}.{bound}")
        if kind == "int" and not is_int(value):
            checker.fail(f"{key}.{bound}",
                         f"must be an integer for `type: int`, but got {value!r}")
        bounds[bound] = value
    log = form.get("log", False)
    if not isinstance(log, bool):
        checker.fail(f"{key}.log", f"must be true or false, but got {log!r}")
    if log and "step" in bounds:
        checker.fail(key, "`step` and `log: true` cannot be combined, but got "
                          f"(step={bounds['step']}, log=True)")
    build = FloatDistribution if kind == "float" else IntDistribution
    try:
        # Optuna warns and shrinks `high` when the range is not a multiple of the step;
        # checked below as an error instead.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dist = build(**bounds, log=log)
    except ValueError as err:
        checker.fail(key, str(err).rstrip("."))
    if dist.high != bounds["high"]:
        checker.fail(f"{key}.step", "`high - low` must be a multiple of `step`, but got "
                                    f"(low={bounds['low']}, high={bounds['high']}, "
                                    f"step={bounds['step']})")
    return dist


def _categorical(checker: Rules, form: dict[str, Any], key: str) -> CategoricalDistribution:
    if "choices" not in form:
        checker.fail(f"{key}.choices", "is required for `type: categorical`")
    choices = form["choices"]
    if not isinstance(choices, list):
        checker.fail(f"{key}.choices", f"must be a list, but got {choices!r}")
    for i, choice in enumerate(choices):
        where = f"{key}.choices[{i}]"
        # What Optuna's storages keep; the journal file of tune.run is one.
        if choice is not None and not isinstance(choice, (bool, int, float, str)):
            checker.fail(where, f"must be null, true/false, a number or a string, but got "
                                f"{choice!r}")
        if isinstance(choice, float) and not math.isfinite(choice):
            checker.fail(where, f"must be finite, but got {choice!r}")
        for j, earlier in enumerate(choices[:i]):
            if earlier == choice:
                checker.fail(where, f"choices must be distinct, but got {choice!r} again "
                                    f"(choices[{j}]={earlier!r})")
    try:
        return CategoricalDistribution(choices)
    except ValueError as err:
        checker.fail(f"{key}.choices", str(err).rstrip("."))


def check_corners(checker: Rules, fixed: dict[str, Any],
                  space: dict[str, BaseDistribution]) -> TrainConfig:
    """Build the trial every trial starts from (the fixed values with each parameter at its
    low end), which is returned, and the one at every other end of each parameter (the others
    at their low end)."""
    low = {name: low_end(dist) for name, dist in space.items()}
    owners = _owners(fixed)
    config = checker.build({**fixed, **low}, "", {
        **owners, **{name: f"search.{name}.{_low_key(dist)}" for name, dist in space.items()}})
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
            checker.build({**fixed, **low, name: value}, f"search.{name}.{label}", owners)
    return config


def check_baselines(checker: Rules, raw: Any, fixed: dict[str, Any],
                    space: dict[str, BaseDistribution]) -> dict[str, dict[str, Any]]:
    raw = checker.mapping(raw, "baselines", empty_ok=True)
    baselines = {}
    for name, point in raw.items():
        where = f"baselines.{name}"
        point = checker.mapping(point, where)
        for key, value in point.items():
            checker.train_key(key, f"{where}.{key}")
            if key == "epochs":
                checker.fail(f"{where}.epochs", EPOCHS_FIXED)
            if key in space:
                _inside(checker, value, space[key], f"{where}.{key}")
        if point.get("model", fixed.get("model")) == "unet":
            # Its own model, never a point of the searched space: Optuna does not see it.
            searched = [p for p in space if p in point]
            if searched:
                checker.fail(f"{where}.{searched[0]}", "a unet baseline is its own model and "
                             f"takes no searched parameter, but got {searched[0]}="
                             f"{point[searched[0]]!r}")
            owners = {**_owners(fixed), **{k: f"{where}.{k}" for k in point}}
            checker.build({**fixed, **point}, where, owners)
            baselines[name] = dict(point)
            continue
        missing = [p for p in space if p not in point]
        if missing:
            checker.fail(where, "a baseline must set every searched parameter, but misses "
                                f"{', '.join(missing)}")
        owners = {**_owners(fixed), **{k: f"{where}.{k}" for k in point}}
        checker.build({**fixed, **point}, where, owners)
        baselines[name] = dict(point)
    return baselines


def _inside(checker: Rules, value: Any, dist: BaseDistribution, key: str) -> None:
    if isinstance(dist, CategoricalDistribution):
        # 1 == True in Python, but a baseline of `true` is not the choice 1.
        if not any(value == c and isinstance(value, bool) == isinstance(c, bool)
                   for c in dist.choices):
            checker.fail(key, f"must be one of the searched choices {list(dist.choices)}, "
                              f"but got {value!r}")
        return
    if not is_number(value):
        checker.fail(key, f"must be a number, but got {value!r}")
    if not in_distribution(dist, value):  # as Optuna itself checks (bounds, step)
        checker.fail(key, f"must lie in the search space {short_form(dist)}, but got {value!r}")


def _owners(fixed: dict[str, Any]) -> dict[str, str]:
    """TrainConfig field -> the study key that fixes it."""
    data = {field: f"data.{key}" for key, field in DATA_FIELDS.items()}
    return {k: data.get(k, f"train.{k}") for k in fixed}


def _low_key(dist: BaseDistribution) -> str:
    return "choices[0]" if isinstance(dist, CategoricalDistribution) else "low"
