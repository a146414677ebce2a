"""Study files (search_spaces/*.yaml) -> a validated StudySpec, entirely before Ray starts.

A study names the TrainConfig values every trial shares (``data``, ``train``), the searched
parameters in Optuna's short form (``search``), the points evaluated first (``baselines``),
and how to search (``sampler``, ``scheduler``, resources). Every mistake is refused with one
line naming the file, the key path, the rule and the value, in Optuna's style::

    generalization.yaml: search.lambda_base: `low <= high` must hold, but got (low=3.0, high=0.3)

Every trial the study can produce is built as a TrainConfig once here, so a value that
TrainConfig refuses fails now rather than hours into a search.
"""


from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from baseres.config import StrictSafeLoader, one_line
from tune.study.checks import Checker
from tune.study.spec import StudyError, StudySpec

SEARCH_SPACES = Path(__file__).resolve().parents[2] / "search_spaces"
# The shipped studies are 2-5 KiB; a file 100 times that is a mistake, and YAML parses a
# 50 MB one for minutes (its lists are then bounded by this too).
MAX_STUDY_BYTES = 512 * 1024


# ------------------------------------------------------------------------------------ YAML
def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=StrictSafeLoader)  # safe_load's guarantees, stricter
    except yaml.MarkedYAMLError as err:
        problem = " ".join(part for part in (err.context, err.problem) if part)
        mark = err.problem_mark or err.context_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise StudyError(one_line(f"{where}: not valid YAML: {problem}{at}")) from None
    except yaml.YAMLError as err:
        raise StudyError(one_line(f"{where}: not valid YAML: {err}")) from None



# ------------------------------------------------------------------------------------ API
def resolve_study_path(name_or_path: str | os.PathLike) -> Path:
    """The study file for ``--space``: the working directory first, then search_spaces/.

    ``.yaml`` may be left off. Returns an absolute path, since trials run elsewhere.
    """
    text = os.fspath(name_or_path)
    if not text.strip():
        raise StudyError("--space: a study name or path is required, but got ''")
    given = Path(text).expanduser()
    names = [given] if given.suffix in (".yaml", ".yml") else [given, Path(f"{given}.yaml")]
    candidates = list(dict.fromkeys([*names, *(SEARCH_SPACES / name for name in names)]))
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    looked = ", ".join(str(c) for c in candidates)
    shipped = sorted(p.name for p in SEARCH_SPACES.glob("*.yaml"))
    close = difflib.get_close_matches(given.name if given.suffix else f"{given.name}.yaml",
                                      shipped, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise StudyError(f"{text}: no such study file{hint}; looked for {looked}")


def load_study(name_or_path: str | os.PathLike, overrides: Iterable[str] = ()) -> StudySpec:
    """Read, override (``--set key=value``, dotted keys) and validate a study file."""
    path = resolve_study_path(name_or_path)
    try:
        size = path.stat().st_size
        if size > MAX_STUDY_BYTES:
            raise StudyError(f"{path}: a study file must be at most {MAX_STUDY_BYTES // 1024} "
                             f"KiB, but it is {size // 1024} KiB", key=str(path),
                             rule=f"at most {MAX_STUDY_BYTES} bytes", value=size)
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise StudyError(f"{path}: cannot read the study file: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise StudyError(f"{path}: cannot read the study file: not UTF-8 ({err.reason})") from None
    raw = _parse_yaml(text, str(path))
    if raw is None:
        raise StudyError(f"{path}: the study file is empty; a study needs at least name and search")
    if not isinstance(raw, dict):
        raise StudyError(
            one_line(f"{path}: a study must be a mapping at the top level, but got {raw!r}")
        )
    raw, overridden = _apply_overrides(raw, list(overrides), path)
    return Checker(path, overridden).study(raw)


def _apply_overrides(
    raw: dict[str, Any], overrides: list[str], path: Path
) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """Set each dotted key to its YAML-parsed value, creating missing mappings on the way.

    Returns the overrides as (key, scope): scope is the outermost mapping the override
    created (else the key), so an error anywhere inside it is blamed on the override.
    """
    raw = copy.deepcopy(raw)
    keys = []
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        parts = key.split(".")
        if not sep or not all(parts):
            raise StudyError(
                f"{path}: --set {item}: expected key=value with a dotted key, e.g. train.epochs=3"
            )
        value = _parse_yaml(text, f"{path}: --set {key}")
        node, scope = raw, key
        for depth, part in enumerate(parts[:-1]):
            if node.get(part) is None:
                if scope == key:
                    scope = ".".join(parts[: depth + 1])
                node[part] = {}
            elif not isinstance(node[part], dict):
                above = ".".join(parts[: depth + 1])
                raise StudyError(one_line(
                    f"{path}: --set {key}: {above} must be a mapping to set {key}, "
                    f"but got {node[part]!r}"
                ))
            node = node[part]
        node[parts[-1]] = value
        keys.append((key, scope))
    return raw, tuple(keys)


