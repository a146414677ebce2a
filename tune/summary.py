"""``python -m tune.summary EXPERIMENT_DIR``: what a search found, judged against the study's
success targets, with the checks that say whether the search itself can be trusted.

Reads the experiment folder only (works after the cluster is gone, and on a search still
running). Writes summary.md, summary.json and PNG plots into the folder and prints the tables.
Plot data is built as plain named tuples (tested); drawing is separate.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from baseres.cli import OneLineParser
from tune.errors import UsageError
from tune.run import JOURNAL_FILE, STUDY_FILE
from tune.space import BASELINE_KEY, StudySpec, load_study

SCIENTIFIC = "base_channel_divisor"  # the isolation table's parameter; the others are nuisance
BOUNDARY_SHARE = 0.10  # a best value this close to an end of its range asks for a wider range
REPORTED = ("val_rmse", "val_delta1", "sparse", "base_rmse")


@dataclass
class TrialSummary:
    trial_id: str
    folder: Path
    params: dict[str, Any]
    rows: list[dict[str, Any]]
    status: str  # Ray's: TERMINATED, ERROR, RUNNING, PENDING, PAUSED, or unknown
    error: str = ""
    fixed_model: str = "base_residual"  # the study's model where a trial does not set one
    stop_reason: str = ""
    best: dict[str, Any] | None = field(default=None)  # the row of the best finite val_rmse

    @property
    def baseline(self) -> str | None:
        return self.params.get(BASELINE_KEY)

    @property
    def model(self) -> str:
        return self.params.get("model", self.fixed_model)

    @property
    def epochs_run(self) -> int:
        return sum(not r.get("diverged") for r in self.rows)  # the divergence report is no epoch

    @property
    def best_val_rmse(self) -> float:
        return self.best["val_rmse"] if self.best else math.inf

    @property
    def label(self) -> str:
        return f"{self.trial_id} ({self.baseline})" if self.baseline else self.trial_id


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a crash mid-write
                continue
    return rows


def _ray_statuses(experiment: Path) -> dict[str, str]:
    """trial id -> status from Ray's newest experiment state (best effort: Ray's format)."""
    states = sorted(experiment.glob("experiment_state-*.json"))
    if not states:
        return {}
    try:
        data = json.loads(states[-1].read_text())
        trials = [json.loads(entry[0]) for entry in data["trial_data"]]
        return {t["trial_id"]: t["status"] for t in trials}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return {}


def _last_error_line(folder: Path) -> str:
    path = folder / "error.txt"
    if not path.is_file():
        return ""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()
             if line.strip()]
    return lines[-1][:300] if lines else "unknown error"


def stop_reason(trial: TrialSummary, max_t: int, scheduler: str) -> str:
    diverged = [r for r in trial.rows if r.get("diverged")]
    if diverged:
        return diverged[-1].get("stop_reason", "diverged")
    if trial.status == "ERROR":
        return f"error: {trial.error or 'see error.txt'}"
    if trial.epochs_run >= max_t:
        return "completed"
    if trial.status == "TERMINATED":
        return "ASHA stop" if scheduler == "asha" else "stopped early"
    return trial.status.lower() if trial.status != "unknown" else "unknown"


def load_trials(experiment: Path, spec: StudySpec) -> list[TrialSummary]:
    statuses = _ray_statuses(experiment)
    trials = []
    for folder in sorted(experiment.glob("trial_*")):
        params_file = folder / "params.json"
        if not params_file.is_file():
            continue
        rows = _read_rows(folder / "result.json")
        trial_id = rows[0]["trial_id"] if rows else folder.name.removeprefix("trial_")
        trial = TrialSummary(trial_id=trial_id, folder=folder,
                             params=json.loads(params_file.read_text()), rows=rows,
                             status=statuses.get(trial_id, "unknown"),
                             error=_last_error_line(folder),
                             fixed_model=spec.fixed.get("model", "base_residual"))
        finite = [r for r in rows if _finite(r.get("val_rmse"))]
        trial.best = min(finite, key=lambda r: r["val_rmse"]) if finite else None
        trial.stop_reason = stop_reason(trial, spec.scheduler.get("max_t", spec.fixed["epochs"]),
                                        spec.scheduler["type"])
        trials.append(trial)
    return sorted(trials, key=lambda t: (t.best_val_rmse, t.trial_id))


# ----------------------------------------------------------------------------- judgements
def in_band(value: float, band: tuple[float | None, float | None]) -> bool:
    """Bands are inclusive at both edges; None is an open side."""
    low, high = band
    return _finite(value) and (low is None or value >= low) and (high is None or value <= high)


def band_text(band: tuple[float | None, float | None]) -> str:
    low, high = band
    if low is None:
        return f"<= {high:g}"
    if high is None:
        return f">= {low:g}"
    return f"in [{low:g}, {high:g}]"


class TargetCheck(NamedTuple):
    level: str
    metric: str
    value: float
    band: tuple[float | None, float | None]
    passed: bool

    def __str__(self) -> str:
        verdict = "pass" if self.passed else "fail"
        return f"{self.metric} {self.value:.3g} {band_text(self.band)} {self.level}: {verdict}"


def judge_targets(trial: TrialSummary, targets: dict) -> list[TargetCheck]:
    checks = []
    for level, metrics in targets.items():
        for metric, band in metrics.items():
            value = trial.best.get(metric, math.nan) if trial.best else math.nan
            checks.append(TargetCheck(level, metric, value, tuple(band), in_band(value, band)))
    return checks


class BoundaryFlag(NamedTuple):
    param: str
    value: float
    low: float
    high: float
    side: str  # "low" or "high"


def boundary_flags(best: TrialSummary, spec: StudySpec) -> list[BoundaryFlag]:
    """Numeric parameters whose best value sits within 10 % of an end of its range
    (measured in log space for log ranges): the optimum may lie outside the range."""
    flags = []
    for name, dist in spec.space.items():
        if not hasattr(dist, "low") or name not in best.params:
            continue
        value, low, high = best.params[name], dist.low, dist.high
        if high == low:
            continue
        scale = math.log if dist.log else float
        position = (scale(value) - scale(low)) / (scale(high) - scale(low))
        if position <= BOUNDARY_SHARE:
            flags.append(BoundaryFlag(name, value, low, high, "low"))
        elif position >= 1 - BOUNDARY_SHARE:
            flags.append(BoundaryFlag(name, value, low, high, "high"))
    return flags


class IsolationRow(NamedTuple):
    value: Any
    trial_id: str | None
    val_rmse: float
    val_delta1: float
    trials: int


def isolation_table(trials: list[TrialSummary], spec: StudySpec,
                    param: str = SCIENTIFIC) -> list[IsolationRow]:
    """Per value of the scientific parameter, the best base + residual trial over the rest."""
    if param not in spec.space:
        return []
    dist = spec.space[param]
    values = list(dist.choices) if hasattr(dist, "choices") else sorted(
        {t.params[param] for t in trials if param in t.params})
    rows = []
    for value in values:
        group = [t for t in trials if t.params.get(param) == value
                 and t.model == "base_residual" and t.best]
        best = min(group, key=lambda t: t.best_val_rmse) if group else None
        rows.append(IsolationRow(value, best.trial_id if best else None,
                                 best.best_val_rmse if best else math.nan,
                                 best.best["val_delta1"] if best else math.nan, len(group)))
    return rows


def param_importance(experiment: Path, spec: StudySpec) -> dict[str, float] | str:
    """Optuna's importance over the journal study; a reason string when it cannot be computed."""
    journal = experiment / JOURNAL_FILE
    if not journal.is_file():
        return "no Optuna journal in the experiment folder"
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=spec.name,
                                  storage=JournalStorage(JournalFileBackend(str(journal))))
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) < 3:
            return f"needs >= 3 finished trials, has {len(complete)}"
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))
    except Exception as err:  # importance is advice: never let it break the summary
        return f"not computable: {type(err).__name__}: {err}"


# ----------------------------------------------------------------------------- plot data
class ParamPoint(NamedTuple):
    value: Any
    val_rmse: float
    stopped: bool  # stopped early (ASHA) rather than trained to the end
    trial_id: str


class Curve(NamedTuple):
    label: str
    epochs: list[int]
    val_rmse: list[float]


def param_plot_data(trials: list[TrialSummary], spec: StudySpec) -> dict[str, list[ParamPoint]]:
    return {name: [ParamPoint(t.params[name], t.best_val_rmse, t.stop_reason != "completed",
                              t.trial_id)
                   for t in trials if t.best and name in t.params]
            for name in spec.space}


def curve_data(trials: list[TrialSummary], top: int) -> list[Curve]:
    ranked = [t for t in trials if t.best][:top]
    return [Curve(t.label, [int(r["training_iteration"]) for r in t.rows],
                  [r.get("val_rmse", math.nan) for r in t.rows]) for t in ranked]


def draw_plots(experiment: Path, spec: StudySpec, points: dict[str, list[ParamPoint]],
               isolation: list[IsolationRow], curves: list[Curve]) -> list[Path]:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    written = []
    names = list(points)
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(3.2 * max(len(names), 1), 3.2),
                             squeeze=False)
    for ax, name in zip(axes[0], names):
        choices = list(getattr(spec.space[name], "choices", []))
        for stopped, marker, label in ((False, "o", "completed"), (True, "x", "stopped early")):
            chosen = [p for p in points[name] if p.stopped == stopped]
            # categorical values sit at their choice's position, in the study's order
            xs = [choices.index(p.value) if choices else p.value for p in chosen]
            ax.scatter(xs, [p.val_rmse for p in chosen], marker=marker, label=label)
        if choices:
            ax.set_xticks(range(len(choices)), [str(c) for c in choices])
        elif getattr(spec.space[name], "log", False):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.tick_params(labelsize=7)
        ax.set_xlabel(name)
        ax.set_ylabel("best val RMSE (m)")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    written.append(_save(fig, experiment / "plot_params.png"))
    if isolation:
        fig, ax = plt.subplots(figsize=(4, 3.2))
        present = [r for r in isolation if r.trial_id]
        ax.plot([str(r.value) for r in present], [r.val_rmse for r in present], "o-")
        ax.set_xlabel(SCIENTIFIC)
        ax.set_ylabel("best val RMSE over the others (m)")
        fig.tight_layout()
        written.append(_save(fig, experiment / "plot_isolation.png"))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for curve in curves:
        ax.plot(curve.epochs, curve.val_rmse, marker=".", label=curve.label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("val RMSE (m)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    written.append(_save(fig, experiment / "plot_curves.png"))
    return written


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- the report
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def build_summary(experiment: Path, top: int = 10) -> dict[str, Any]:
    """Everything the report shows, as plain data (summary.json)."""
    study_file = experiment / STUDY_FILE
    if not study_file.is_file():
        raise UsageError(f"{experiment}: not an experiment folder of tune.run "
                         f"(no {STUDY_FILE})")
    spec = load_study(study_file)
    trials = load_trials(experiment, spec)
    ranked = [t for t in trials if t.best]
    if not ranked:
        raise UsageError(f"{experiment}: no trial has finished an epoch with a finite val_rmse "
                         f"yet ({len(trials)} trial folder(s)); nothing to summarise")
    best = ranked[0]
    baselines = {t.baseline: t for t in trials if t.baseline}
    searched = [t for t in ranked if not t.baseline]
    best_found = searched[0] if searched else best
    problems = [t for t in trials if t.stop_reason.startswith(("error", "diverged"))]
    return {
        "experiment": str(experiment),
        "study": spec.name,
        "trials": len(trials),
        "num_samples": spec.num_samples,
        "space": list(spec.space),
        "table": [{"trial": t.label, **{k: t.params.get(k) for k in spec.space},
                   **{k: (t.best or {}).get(k, math.nan) for k in REPORTED},
                   "best epoch": (t.best or {}).get("training_iteration"),
                   "epochs": t.epochs_run, "stopped": t.stop_reason} for t in trials[:top]],
        "best": {"trial": best.label, "val_rmse": best.best_val_rmse,
                 "targets": [c._asdict() for c in judge_targets(best, spec.targets)]},
        "targets": {t.label: [str(c) for c in judge_targets(t, spec.targets)] for t in ranked},
        "baselines": {name: {"trial": t.trial_id, "val_rmse": t.best_val_rmse,
                             "best_found_ratio": best_found.best_val_rmse / t.best_val_rmse
                             if t.best else math.nan}
                      for name, t in baselines.items()},
        "best_found": best_found.label,
        "boundary_flags": [f._asdict() for f in boundary_flags(best_found, spec)],
        "problems": {"errored": sum(t.stop_reason.startswith("error") for t in trials),
                     "diverged": sum(t.stop_reason.startswith("diverged") for t in trials),
                     "reasons": {t.label: t.stop_reason for t in problems}},
        "importance": param_importance(experiment, spec),
        "isolation": [r._asdict() for r in isolation_table(trials, spec)],
        "_plot": (spec, param_plot_data(trials, spec), isolation_table(trials, spec),
                  curve_data(trials, 5)),
    }


def render_markdown(summary: dict[str, Any]) -> str:
    out = [f"# Summary of {summary['study']} ({summary['experiment']})", "",
           f"{summary['trials']} of {summary['num_samples']} trials; best first.", ""]
    header = list(summary["table"][0])
    out.append(_table(header, [list(row.values()) for row in summary["table"]]))
    best = summary["best"]
    out += ["", f"## Best trial {best['trial']} against the targets", ""]
    out += [f"- {TargetCheck(**c)}" for c in best["targets"]]
    out += ["", "## Every trial against the targets", ""]
    out += [f"- {label}: " + "; ".join(checks) for label, checks in summary["targets"].items()]
    out += ["", f"## Baselines (best searched trial: {summary['best_found']})", ""]
    out.append(_table(["baseline", "trial", "best val RMSE", "best found / baseline"],
                      [[n, b["trial"], b["val_rmse"], b["best_found_ratio"]]
                       for n, b in summary["baselines"].items()]))
    out += ["", "## Search quality", ""]
    flags = summary["boundary_flags"]
    out += [f"- {f['param']} = {_fmt(f['value'])} is within 10 % of the {f['side']} end of "
            f"[{_fmt(f['low'])}, {_fmt(f['high'])}]: widen the range" for f in flags] or [
        "- no best value sits near a boundary of its range"]
    problems = summary["problems"]
    out.append(f"- errored trials: {problems['errored']}; diverged trials: "
               f"{problems['diverged']}")
    out += [f"  - {label}: {reason}" for label, reason in problems["reasons"].items()]
    importance = summary["importance"]
    if isinstance(importance, dict):
        out.append("- parameter importance (Optuna, PED-ANOVA): " + ", ".join(
            f"{k} {v:.2f}" for k, v in importance.items()))
    else:
        out.append(f"- parameter importance: {importance}")
    if summary["isolation"]:
        out += ["", f"## Isolation: {SCIENTIFIC} (best base + residual trial per value)", ""]
        out.append(_table([SCIENTIFIC, "trial", "best val RMSE", "val delta1", "trials"],
                          [list(r.values()) for r in summary["isolation"]]))
    return "\n".join(out) + "\n"


def write_summary(experiment: Path, top: int = 10) -> tuple[str, list[Path]]:
    summary = build_summary(experiment, top)
    spec, points, isolation, curves = summary.pop("_plot")
    text = render_markdown(summary)
    (experiment / "summary.md").write_text(text)
    (experiment / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    plots = draw_plots(experiment, spec, points, isolation, curves)
    return text, plots


def print_summary(experiment: Path, top: int = 10) -> None:
    text, plots = write_summary(experiment, top)
    print(text)
    print(f"written: {experiment / 'summary.md'}, summary.json, "
          + ", ".join(p.name for p in plots))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m tune.summary", description=__doc__)
    parser.add_argument("experiment", help="the experiment folder (e.g. results/generalization)")
    parser.add_argument("--top", type=int, default=10, help="rows in the trial table")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"argument --top: `top >= 1` must hold, but got top={args.top}")
    try:
        print_summary(Path(args.experiment).expanduser().resolve(), args.top)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
