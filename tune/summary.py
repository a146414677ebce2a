"""``python -m tune.summary EXPERIMENT_DIR``: the study's question and its answer first, then
what the search found, judged against the study's success targets, compared at equal
budgets, with the checks that say whether the search itself can be trusted.

Reads the experiment folder only (works after the cluster is gone, and on a search still
running). Writes summary.md, summary.json and PNG plots into the folder and prints the report.
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any, NamedTuple

from baseres.cli import DefaultsHelpFormatter, OneLineParser
from baseres.errors import UserError
from tune.compare import (
    band_text,
    compare,
    full_budget_points,
    isolation_table,
    judge_targets,
    pareto_front,
    verdict,
)
from tune.errors import UsageError
from tune.experiment import (
    BASELINE,
    LOST,
    RAY_ID,
    Experiment,
    TrialSummary,
    evaluation_file,
    finite,
    read_confirmation,
    write_json,
)
from tune.folds import question_result
from tune.plots import Curve, ParamPoint, Reference, draw_plots
from tune.question import answer_json, answer_lines
from tune.report import write_report
from tune.space import StudySpec

EVEN_IMPORTANCE = 0.02  # importances this close to each other say nothing about the parameters
BOUNDARY_SHARE = 0.10  # a best value this close to an end of its range asks for a wider range
# Per trial, at its best epoch: the error, the train/val gap, the seed's sparse figure (its
# training loss term) beside the validation one and the scale-free ratio, the base alone.
REPORTED = ("val_rmse", "val_delta1", "train_rmse", "train_sparse", "sparse", "sparse_ratio",
            "base_rmse")


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


def param_importance(experiment: Experiment) -> dict[str, float] | str:
    """Optuna's importance over the journal study; a reason string when it cannot be computed."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = experiment.optuna_study()
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
                    and t.params and not t.user_attrs.get(BASELINE)]
        if len(complete) < 3:
            return (f"needs >= 3 searched trials that ran the full budget, has "
                    f"{len(complete)} (baselines not counted)")
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
        searched = optuna.create_study(direction=study.direction)  # in memory: no baseline
        searched.add_trials(complete)
        with warnings.catch_warnings():  # its few-trials warning: the count is stated above
            warnings.simplefilter("ignore")
            found = dict(optuna.importance.get_param_importances(searched, evaluator=evaluator))
        if found and max(found.values()) - min(found.values()) < EVEN_IMPORTANCE:
            return (f"cannot tell the parameters apart from {len(complete)} searched trials "
                    f"(PED-ANOVA gave each about {1 / len(found):.2f})")
        return found
    except Exception as err:  # importance is advice: never let it break the summary
        return f"not computable: {type(err).__name__}: {err}"


# ----------------------------------------------------------------------------- plot data
def sampler_facts(experiment: Experiment) -> list[str]:
    """How the sampler worked, from the journal: how many searched trials TPE proposed (it
    samples at random until n_startup_trials trials have finished), and which trials met the
    minimum targets when they were constraints."""
    import optuna

    sampler = experiment.spec.sampler
    try:
        trials = experiment.optuna_study().trials
    except UsageError as err:
        return [f"- sampler: {err}"]
    done = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE,
                                             optuna.trial.TrialState.PRUNED)]
    searched = [t for t in trials if t.params and not t.user_attrs.get(BASELINE)
                and not t.user_attrs.get(LOST) and t.datetime_start]
    if sampler["type"] != "tpe":
        return [f"- sampler: {sampler['type']}, {len(searched)} searched trial(s)"]
    startup = sampler["n_startup_trials"]
    proposed = sum(sum(d.datetime_complete < t.datetime_start for d in done) >= startup
                   for t in searched)
    lines = [f"- sampler: TPE proposed {proposed} of {len(searched)} searched trial(s); the "
             f"rest were drawn at random (TPE waits for n_startup_trials = {startup} finished "
             "trials, baselines included)"]
    if sampler["constraints"]:
        judged = [t for t in done if t.constraints]
        feasible = [t for t in judged if all(v <= 0 for v in t.constraints.values())]
        lines.append(f"- minimum targets as TPE's constraints: {len(feasible)} of "
                     f"{len(judged)} finished trial(s) met them: " + (", ".join(
                         t.user_attrs.get(RAY_ID, str(t.number)) for t in feasible) or "none"))
    return lines


def param_plot_data(trials: list[TrialSummary], spec: StudySpec) -> dict[str, list[ParamPoint]]:
    """Per searched parameter, one point per trial that has it (a U-Net baseline has none)."""
    return {name: [ParamPoint(t.params[name], t.best_val_rmse, t.stop_reason != "completed",
                              t.trial_id)
                   for t in trials if t.best and name in t.params]
            for name in spec.space}


def curve_data(trials: list[TrialSummary], top: int) -> list[Curve]:
    """The `top` best trials and every baseline, best first."""
    ranked = [t for t in trials if t.best]
    shown = [t for i, t in enumerate(ranked) if i < top or t.baseline]
    return [Curve(t.label, [int(r["training_iteration"]) for r in t.rows],
                  [r.get("val_rmse", math.nan) for r in t.rows]) for t in shown]


def reference_lines(trials: list[TrialSummary], reference: float) -> list[Reference]:
    """Baselines of another model and the mean-depth map, drawn beside the divisor axis."""
    lines = [Reference(t.baseline if t.baseline == t.model else f"{t.baseline} ({t.model})",
                       t.best_val_rmse)
             for t in trials if t.baseline and t.model != "base_residual" and t.best]
    return lines + [Reference("mean-depth map", reference)]


# ----------------------------------------------------------------------------- the report
def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else ("" if math.isnan(value) else str(value))
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _reference_rmse(trials: list[TrialSummary]) -> float:
    """The val RMSE of the mean training depth map, as every trial records it."""
    return next((r["mean_map_rmse"] for t in trials for r in t.rows
                 if finite(r.get("mean_map_rmse"))), math.nan)


def build_summary(folder: Path, top: int = 10) -> dict[str, Any]:
    """Everything the report shows, as plain data (summary.json)."""
    experiment = Experiment(folder)
    spec = experiment.spec
    trials = experiment.trials()
    ranked = [t for t in trials if t.best]
    if not ranked:
        raise UsageError(f"{experiment.folder}: no trial has finished an epoch with a finite "
                         f"val_rmse yet ({len(trials)} trial folder(s)); nothing to summarise")
    found = {t.baseline: t for t in trials if t.baseline}
    baselines = {name: found[name] for name in spec.baselines if name in found}  # study order
    checks = {t.label: judge_targets(t, spec, baselines) for t in ranked}
    searched = [t for t in ranked if not t.baseline]
    isolation = isolation_table(trials, spec)
    full_budget = full_budget_points(trials, spec)
    front = pareto_front(full_budget)
    problems = [t for t in trials if t.stop_reason.startswith(("error", "diverged"))]
    reference = _reference_rmse(trials)
    shown = trials[:top]
    return {
        "question": question_summary(experiment),
        "experiment": str(experiment.folder),
        "study": spec.name,
        "trials": len(trials),
        "shown": len(shown),
        "num_samples": spec.num_samples,
        "max_t": experiment.spec.max_t,
        "space": list(spec.space),
        "verdict": verdict(ranked, baselines, checks, spec.num_samples),
        "confirmation": confirmation_lines(experiment.folder, spec.question is not None),
        "mean_map_rmse": reference,
        "table": [{"trial": t.label, "model": t.model,
                   **{k: t.params.get(k) for k in spec.space},
                   **{k: (t.best or {}).get(k, math.nan) for k in REPORTED},
                   "best epoch": (t.best or {}).get("training_iteration"),
                   "epochs": t.epochs_run, "stopped": t.stop_reason} for t in shown],
        "targets": {label: [c._asdict() for c in trial_checks]
                    for label, trial_checks in checks.items()},
        "target_rules": dict(spec.target_rules),
        "baselines": {name: _baseline_row(t, searched[0] if searched else None)
                      for name, t in baselines.items()},
        "best_searched": searched[0].label if searched else None,
        "boundary_flags": [f._asdict() for f in boundary_flags(searched[0], spec)]
        if searched else [],
        "problems": {"errored": sum(t.stop_reason.startswith("error") for t in trials),
                     "diverged": sum(t.stop_reason.startswith("diverged") for t in trials),
                     "reasons": {t.label: t.stop_reason for t in problems}},
        "importance": param_importance(experiment),
        "sampler": sampler_facts(experiment),
        "scientific": spec.scientific,
        "seed_baselines_apart": knobs_apart(spec.baselines["seed_before"],
                                            spec.baselines["seed_after"])
        if {"seed_before", "seed_after"} <= set(spec.baselines) else [],
        "isolation": [r._asdict() for r in isolation],
        "pareto": [p._asdict() for p in front],
        "_plot": (spec, param_plot_data(trials, spec), isolation,
                  reference_lines(trials, reference), curve_data(trials, 5),
                  (full_budget, front)),
    }


def question_summary(experiment: Experiment) -> dict[str, Any] | None:
    """summary.json's ``question`` (tune.question.answer_json), with the runs' count; None
    for a study without a question."""
    spec = experiment.spec
    if spec.question is None:
        return None
    result, finished, planned = question_result(experiment.folder, spec)
    out = answer_json(result) if result is not None else {"verdict": None}
    return {**out, "claim": spec.question.claim, "runs_finished": finished,
            "runs_planned": planned,
            "lines": answer_lines(result, spec.question.claim) if result is not None else []}


def knobs_apart(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The TrainConfig keys whose values differ between two points."""
    return [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]


def _question_markdown(summary: dict[str, Any], folder: str) -> list[str]:
    question = summary["question"]
    if question is None:
        return []
    if question["verdict"] is None:
        return ["## The question", "", question["claim"], "",
                f"Not answered yet: {question['runs_finished']} of {question['runs_planned']} "
                f"fold runs finished; resume with: python -m tune.run --resume {folder}", ""]
    lines = list(question["lines"])
    if question["runs_finished"] < question["runs_planned"]:
        lines.append(f"From {question['runs_finished']} of {question['runs_planned']} fold "
                     "runs (the rest have not finished).")
    return lines + ["", *summary["confirmation"], ""]


def _baseline_row(baseline: TrialSummary, best_searched: TrialSummary | None) -> dict:
    result = compare(best_searched, baseline) if best_searched and baseline.best else None
    return {"trial": baseline.trial_id, "model": baseline.model,
            "epochs": baseline.epochs_run, "val_rmse": baseline.best_val_rmse,
            "common_epoch": result.epoch if result else None,
            "searched_at_common": result.a_rmse if result else math.nan,
            "baseline_at_common": result.b_rmse if result else math.nan,
            "ratio_at_common": result.ratio if result else math.nan}


def targets_table(targets: dict[str, list[dict]]) -> list[str]:
    """Trials as rows, targets as columns (level, metric and the resolved band in the
    header), each cell the trial's value and pass / fail, or "not judged"."""
    if not targets:
        return []
    first = next(iter(targets.values()))
    header = ["trial"]
    for c in first:
        band = f" {band_text(tuple(c['band']))}" if any(finite(b) for b in c["band"]) else ""
        scale = f" ({c['scale']})" if c["scale"] != "absolute" else ""
        header.append(f"{c['level']} {c['metric']}{band}{scale}")
    rows = []
    for label, checks in targets.items():
        cells = [label]
        for c in checks:
            if c["passed"] is None:
                cells.append(f"not judged ({c['note']})")
            else:
                cells.append(f"{_fmt(c['value'])} {'pass' if c['passed'] else 'FAIL'}")
        rows.append(cells)
    return [_table(header, rows)]


def render_markdown(summary: dict[str, Any]) -> str:
    out = [f"# Summary of {summary['study']} ({summary['experiment']})", ""]
    out += _question_markdown(summary, summary["experiment"])
    if summary["question"] is not None:
        out += ["## The search", ""]
    elif summary["confirmation"]:  # a confirm.json where no question could have made one
        out += [*summary["confirmation"], ""]
    for line in summary["verdict"]:  # a paragraph each; a blank line before a list
        bullet = line.lstrip().startswith("- ")
        if out[-1] and not (bullet and out[-1].lstrip().startswith("- ")):
            out.append("")
        out.append(line)
    apart = summary.get("seed_baselines_apart")
    if apart:
        out += ["", f"seed_before and seed_after differ in {len(apart)} knobs "
                    f"({', '.join(apart)}): rows of the search, not a controlled contrast."]
    out += ["", f"Learned-nothing reference: the mean training depth map scores val RMSE "
                f"{_fmt(summary['mean_map_rmse'])} m. Full budget: {summary['max_t']} epochs.",
            ""]
    cut = (f"Top {summary['shown']} of {summary['trials']} trials"
           if summary["shown"] < summary["trials"] else f"All {summary['trials']} trials")
    out += [f"{cut} ({summary['num_samples']} planned), best first; metrics at each trial's "
            "best epoch (train_sparse: the training loss term, as the seed logs it).", ""]
    header = list(summary["table"][0])
    out.append(_table(header, [list(row.values()) for row in summary["table"]]))
    out += ["", "## Targets", ""]
    out += [f"- {metric}: {rule}" for metric, rule in summary["target_rules"].items()]
    shown = {row["trial"] for row in summary["table"]}  # summary.json keeps every trial's
    out += ["", *targets_table({k: v for k, v in summary["targets"].items() if k in shown})]
    out += ["", "## Search quality", ""]
    flags = summary["boundary_flags"]
    out += [f"- {f['param']} = {_fmt(f['value'])} is within 10 % of the {f['side']} end of "
            f"[{_fmt(f['low'])}, {_fmt(f['high'])}]: widen the range" for f in flags] or [
        "- no best searched value sits near a boundary of its range"]
    problems = summary["problems"]
    out.append(f"- errored trials: {problems['errored']}; diverged trials: "
               f"{problems['diverged']}")
    out += [f"  - {label}: {reason}" for label, reason in problems["reasons"].items()]
    out += summary["sampler"]
    importance = summary["importance"]
    if isinstance(importance, dict):
        out.append("- parameter importance (Optuna, PED-ANOVA): " + ", ".join(
            f"{k} {v:.2f}" for k, v in importance.items()))
    else:
        out.append(f"- parameter importance: {importance}")
    if summary["isolation"]:
        param = summary["scientific"]
        out += ["", f"## Isolation: {param} (best base + residual trial per value)", "",
                f"Only trials that ran the full budget ({summary['max_t']} epochs) are "
                "compared; the trials ASHA stopped earlier are counted apart. One search's "
                "trials differ in every other knob too: the question above is the controlled "
                "comparison.", ""]
        out.append(_table([param, "trial", "best val RMSE", "val delta1",
                           "full-budget trials", "stopped earlier (not compared)"],
                          [list(r.values()) for r in summary["isolation"]]))
    out += ["", "## Pareto front: val RMSE against base-decoder parameters", "",
            f"Base + residual trials that ran all {summary['max_t']} epochs (equal budgets) "
            "that no other beats on both: a smaller base for the same error is the seed's "
            "claim.", ""]
    out.append(_table(["trial", "base-decoder parameters", "best val RMSE",
                       summary["scientific"] or "scientific"],
                      [list(p.values()) for p in summary["pareto"]])
               if summary["pareto"] else "No base + residual trial ran the full budget yet.")
    return "\n".join(out) + "\n"


EVALUATION_TITLES = {"seen": "training places' test poses",
                     "unseen": "held-out places (other rooms)"}


def evaluation_table(report: dict[str, Any], scientific: str | None) -> str:
    """tune.evaluate's scores as a table: per trial, each column's RMSE, its ratio to the mean
    training depth map's RMSE on the same samples, and delta1. With held-out test places the
    two columns score different rooms, so neither their difference nor that of their ratios
    measures memorisation (the question's place gap does, on the same poses)."""
    cols = report["columns"]
    measures = (("rmse", "RMSE"), ("rmse_ratio", "RMSE / its mean map"), ("delta1", "delta1"))
    header = ["trial", "model", *([scientific] if scientific else []), "checkpoint epoch",
              "val RMSE", *(f"{EVALUATION_TITLES.get(c, c)} {title}" for c in cols
                            for _, title in measures)]
    rows = [[row["label"], row["model"],
             *([row["params"].get(scientific)] if scientific else []),
             row["checkpoint_epoch"], row["val_rmse"],
             *(row[c].get(key, math.nan) for c in cols for key, _ in measures)]
            for row in report["trials"]]
    references = "; ".join(f"{EVALUATION_TITLES.get(c, c)}: "
                           f"{_fmt(report['trials'][0][c].get('mean_map_rmse'))} m" for c in cols)
    return (f"Mean training depth map on the same samples: {references}.\n\n"
            + _table(header, rows))


def confirmation_lines(folder: Path, has_question: bool) -> list[str]:
    """What tune.confirm found, in words, one line per comparison."""
    report, problem = read_confirmation(folder)
    if problem:
        return [f"Confirmation: {problem}."]
    if report is None:
        return ["Not yet confirmed with fresh seeds: python -m tune.confirm "
                f"{folder} --seeds 2 repeats the question's folds with two new seeds."
                ] if has_question else []
    lines = [f"Confirmed with fresh seeds {report['seeds']} ({report['test']}):", ""]
    for c in report["comparisons"]:
        lo, hi = c["ci95_m"]
        lines.append(f"  - {c['comparison']}: {c['effect_m']:+.3f} m [{lo:+.3f}, {hi:+.3f}] "
                     f"over {c['n_places']} places, Holm p = {c['p_holm']:.3g}: "
                     f"{c['outcome']}.")
    return lines


def _evaluations(folder: Path, scientific: str | None) -> list[str]:
    out = []
    for split in ("test", "val"):
        path = evaluation_file(folder, split)
        if not path.is_file():
            continue
        try:
            report = json.loads(path.read_text())
            table = evaluation_table(report, scientific)
            when = report["evaluated_at"]
        except (OSError, ValueError) as err:
            out += ["", f"## Evaluation on {split}: {path.name} is unreadable ({err})"]
            continue
        except (KeyError, TypeError, IndexError, AttributeError) as err:
            out += ["", f"## Evaluation on {split}: {path.name} is not an evaluation this "
                        f"version writes ({type(err).__name__}: {err})"]
            continue
        out += ["", f"## Evaluation on the {split} split (tune.evaluate, {when}, read once "
                    "after the search)", "", table]
    return out


def write_summary(folder: Path, top: int = 10) -> tuple[str, list[Path], str | None]:
    """The summary's text, the plots written, and why nothing was written (a read-only
    folder, a full disk) or None: the text is worth reading either way."""
    summary = build_summary(folder, top)
    spec, points, isolation, references, curves, pareto = summary.pop("_plot")
    text = render_markdown(summary)
    extra = _evaluations(folder, spec.scientific)
    text += "\n".join(extra) + "\n"
    try:
        write_json(folder / "summary.json", summary)
        (folder / "summary.md").write_text(text)
        plots = draw_plots(folder, spec, points, isolation, references, curves, pareto)
        plots.append(write_report(folder, text))
    except OSError as err:
        return text, [], f"{err.filename or folder}: {err.strerror}"
    return text, plots, None


def print_summary(folder: Path, top: int = 10) -> None:
    text, plots, unwritten = write_summary(folder, top)
    print(text)
    if unwritten:
        print(f"not written (summary.md, summary.json, plots): {unwritten}")
    else:
        print(f"written: {folder / 'summary.md'}, summary.json, "
              + ", ".join(p.name for p in plots))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m tune.summary", description=__doc__,
                           formatter_class=DefaultsHelpFormatter)
    parser.add_argument("experiment", help="the experiment folder (e.g. results/generalization)")
    parser.add_argument("--top", type=int, default=10, help="rows in the trial table")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error(f"argument --top: `top >= 1` must hold, but got top={args.top}")
    try:
        print_summary(Path(args.experiment).expanduser().resolve(), args.top)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
