"""The summary's plots: their data (named tuples, built from the trials and tested on their
own) apart from the drawing, which turns them into PNGs in the experiment folder."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import fmean
from typing import Any, NamedTuple

from tune.compare import IsolationRow, ParetoPoint
from tune.experiment import TrialEnd, TrialRecord, diverged
from tune.question.answer import Answer, arm_name, paired_gaps, place_gaps
from tune.question.intervals import Interval
from tune.study import StudySpec, arm_key

QUESTION_PLOT = "plot_question.png"


class ParamPoint(NamedTuple):
    value: Any
    val_rmse: float
    stopped: bool  # stopped early (ASHA) rather than trained to the end
    trial_id: str


class Curve(NamedTuple):
    label: str
    epochs: list[int]
    val_rmse: list[float]


class Reference(NamedTuple):
    """A horizontal line on the isolation plot: a baseline of another model, or the
    mean-depth map's RMSE ("learned nothing")."""

    label: str
    val_rmse: float


class BudgetCurve(NamedTuple):
    """The search's best so far against the epochs it had spent: one step each time a
    searched trial finished the full budget (values of other budgets are not comparable)."""

    epochs: list[int]  # epochs every trial had reported when that trial finished
    best: list[float]  # the best full-budget searched val RMSE so far
    baselines: list[Reference]
    budget: int | None  # the study's budget in epochs


class GapColumn(NamedTuple):
    """One column of the question's figure: per (place, seed) an arm's place gap, or the
    primary contrast's paired difference, with the answer's mean and raw 95 % interval."""

    label: str
    key: str  # the arm as summary.json's `arms` names it, or "contrast"
    cells: dict[tuple[str, int], float]
    interval: Interval

    def by_place(self) -> dict[str, float]:
        """Per place, its mean over the seeds it has: one point each."""
        places = sorted({place for place, _ in self.cells})
        return {place: fmean(v for (p, _), v in self.cells.items() if p == place)
                for place in places}


class QuestionPlot(NamedTuple):
    arms: list[GapColumn]  # every arm, the positive control included
    contrast: GapColumn  # values[0]'s place gap - values[1]'s, paired per place and seed
    p_holm: float  # the primary contrast's, as the verdict reads it
    places: int
    seeds: int
    budget_epochs: int


class PlotData(NamedTuple):
    """What the PNGs draw, in draw_plots' order."""

    points: dict[str, list[ParamPoint]]
    isolation: list[IsolationRow]
    references: list[Reference]
    curves: list[Curve]
    pareto: tuple[list[ParetoPoint], list[ParetoPoint]]  # (full-budget points, the front)
    budget: BudgetCurve
    question: QuestionPlot | None = None  # None: no question, or not answered yet


def param_plot_data(trials: list[TrialRecord], spec: StudySpec) -> dict[str, list[ParamPoint]]:
    """Per searched parameter, one point per trial that has it (a U-Net baseline has none)."""
    return {name: [ParamPoint(t.params[name], t.best_val_rmse, t.end is not TrialEnd.COMPLETED,
                              t.trial_id)
                   for t in trials if t.best and name in t.params]
            for name in spec.space}


def budget_curve_data(trials: list[TrialRecord], spec: StudySpec) -> BudgetCurve:
    """Every reported epoch in the order Ray timed it; a step where a searched trial
    reported its last epoch of the full budget."""
    epochs = sorted((row.get("timestamp", 0), order, step, trial)
                    for order, trial in enumerate(trials)
                    for step, row in enumerate(r for r in trial.rows if not diverged(r)))
    spent, best, xs, ys = 0, math.inf, [], []
    for _, _, step, trial in epochs:
        spent += 1
        if not trial.baseline and trial.best and step + 1 == spec.max_t:
            best = min(best, trial.best_val_rmse)
            xs.append(spent)
            ys.append(best)
    baselines = [Reference(t.baseline, t.best_val_rmse) for t in trials
                 if t.baseline and t.best and t.epochs_run >= spec.max_t]
    return BudgetCurve(xs, ys, baselines, spec.budget.epochs)


def curve_data(trials: list[TrialRecord], top: int) -> list[Curve]:
    """The `top` best trials and every baseline, best first."""
    ranked = [t for t in trials if t.best]
    shown = [t for i, t in enumerate(ranked) if i < top or t.baseline]
    return [Curve(t.label, [int(r["training_iteration"]) for r in t.rows],
                  [r.get("val_rmse", math.nan) for r in t.rows]) for t in shown]


def reference_lines(trials: list[TrialRecord], reference: float) -> list[Reference]:
    """Baselines of another model and the mean-depth map, drawn beside the divisor axis."""
    lines = [Reference(t.baseline if t.baseline == t.model else f"{t.baseline} ({t.model})",
                       t.best_val_rmse)
             for t in trials if t.baseline and t.model != "base_residual" and t.best]
    return lines + [Reference("mean-depth map", reference)]


def question_plot_data(answer: Answer | None, control_model: str) -> QuestionPlot | None:
    """The answer's place gaps per arm and its primary contrast, each with the interval the
    answer computed (summary.json's `arms` and `ci95_m`)."""
    if answer is None:
        return None
    first, second = answer.values
    arms = [GapColumn(arm_name(row.arm, answer.parameter, control_model), arm_key(row.arm),
                      place_gaps(answer.records, row.arm), row.place_gap)
            for row in answer.arms]
    contrast = GapColumn(f"{answer.parameter} {first} - {second}", "contrast",
                         paired_gaps(answer.records, first, second), answer.primary.interval)
    return QuestionPlot(arms, contrast, answer.primary.p_holm, answer.n_places,
                        len(answer.seeds), answer.budget_epochs)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def draw_plots(experiment: Path, spec: StudySpec, points: dict[str, list[ParamPoint]],
               isolation: list[IsolationRow], references: list[Reference],
               curves: list[Curve], pareto: tuple[list, list] = ((), ()),
               budget: BudgetCurve | None = None,
               question: QuestionPlot | None = None) -> list[Path]:
    import matplotlib.ticker

    plt = _pyplot()
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
            low, high = spec.space[name].low, spec.space[name].high
            ax.set_xscale("log")
            ax.set_xlim(low / 1.2, high * 1.2)  # the searched range, so its ends are labelled
            # 1-2-5 steps across several decades; finer steps within less than one
            subs = (1.0, 2.0, 5.0) if high / low >= 10 else (1.0, 2.0, 3.0, 5.0)
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=subs))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.tick_params(labelsize=7)
        ax.set_xlabel(name)
        ax.set_ylabel("best val RMSE (m)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle("Best val RMSE of each trial against each searched parameter", fontsize=10)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.93), ncol=2,
               fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.86))  # the title and shared legend above the panels
    written.append(_save(fig, experiment / "plot_params.png"))
    present = [r for r in isolation if r.trial_id]
    if present:
        fig, ax = plt.subplots(figsize=(4.5, 3.4))
        ax.plot([str(r.value) for r in present], [r.val_rmse for r in present], "o",
                label=f"best base + residual trial at the full budget ({spec.max_t} epochs)")
        for row in present:  # how many full-budget trials each point is the best of
            ax.annotate(f"of {row.trials}", (str(row.value), row.val_rmse), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
        for reference, style in zip(references, ("--", ":", "-.")):
            if math.isfinite(reference.val_rmse):
                ax.axhline(reference.val_rmse, linestyle=style, color="grey",
                           label=reference.label)
        ax.margins(x=0.15)  # room for the notes beside the outer points
        ax.set_xlabel(spec.scientific)
        ax.set_ylabel("best val RMSE (m)")
        ax.set_title(f"Best full-budget trial per {spec.scientific}\n(the search; the "
                     "question's folds are the controlled comparison)", fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
                  frameon=False)
        fig.tight_layout()
        written.append(_save(fig, experiment / "plot_isolation.png"))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for curve in curves:
        ax.plot(curve.epochs, curve.val_rmse, marker=".", label=curve.label)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("val RMSE (m)")
    ax.set_title("Val RMSE per epoch: the best trials and every baseline", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False,
              title="trial (baseline)", title_fontsize=7)  # beside the curves, never on them
    fig.tight_layout()
    written.append(_save(fig, experiment / "plot_curves.png"))
    points, front = pareto
    if points:
        written.append(_pareto_plot(plt, experiment, spec, points, front))
    if budget is not None and budget.epochs:
        written.append(_budget_plot(plt, experiment, budget))
    if question is not None:
        written.append(_save(question_figure(question), experiment / QUESTION_PLOT))
    return written


def question_figure(data: QuestionPlot):
    """Left, each arm's place gaps; right, the primary contrast paired per place: a point per
    place (its mean over seeds), the seeds lighter, and beside them the answer's mean and raw
    95 % interval. The matplotlib figure, unsaved."""
    plt = _pyplot()
    fig, (arms_ax, contrast_ax) = plt.subplots(
        1, 2, figsize=(1.9 * len(data.arms) + 2.6, 4.4),
        gridspec_kw={"width_ratios": [len(data.arms), 1.2]}, layout="constrained")
    for ax, columns in ((arms_ax, data.arms), (contrast_ax, [data.contrast])):
        for x, column in enumerate(columns):
            _gap_column(ax, x, column)
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xticks(range(len(columns)), [
            f"{c.label}\n{c.interval.places} places x {_count(c.interval.seeds, 'seed')}\n"
            f"{c.interval.text()}" for c in columns], fontsize=7)
        ax.set_xlim(-0.6, len(columns) - 0.4)
        ax.tick_params(axis="y", labelsize=7)
    arms_ax.set_ylabel("place gap: unseen - seen RMSE (m)", fontsize=8)
    arms_ax.set_title("Each arm's place gap (the positive control should be above 0)",
                      fontsize=8)
    contrast_ax.set_ylabel("difference of place gaps (m)", fontsize=8)
    contrast_ax.set_title(f"The answer, paired per place and seed\n"
                          f"(Holm-adjusted p = {data.p_holm:.3g})", fontsize=8)
    fig.suptitle(
        f"The question: place gaps at {data.places} places, {_count(data.seeds, 'seed')}, "
        f"models of {data.budget_epochs} epochs\nA blue point is one place, its mean over the "
        "seeds (light: each seed); black: the mean and raw 95 % interval\n"
        f"({data.contrast.interval.method})", fontsize=8)
    return fig


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def _gap_column(ax, x: int, column: GapColumn) -> None:
    """One column: places spread across its left part in name order, the interval right."""
    places = column.by_place()
    spread = {place: x - 0.3 + 0.35 * i / max(len(places) - 1, 1)
              for i, place in enumerate(places)}
    ax.scatter([spread[place] for place, _ in column.cells], list(column.cells.values()),
               s=8, color="tab:blue", alpha=0.25, linewidths=0, gid=f"seeds:{column.key}")
    ax.scatter([spread[place] for place in places], list(places.values()), s=16,
               color="tab:blue", gid=f"places:{column.key}")
    effect = column.interval
    if effect.defined:
        ax.vlines(x + 0.25, effect.lo, effect.hi, color="black", linewidth=2,
                  gid=f"interval:{column.key}")
    ax.plot([x + 0.25], [effect.mean], marker="D", markersize=5, color="black")


def _budget_plot(plt, experiment: Path, budget: BudgetCurve) -> Path:
    """Best full-budget searched val RMSE so far against the epochs spent, the baselines as
    horizontal lines, the budget as a vertical one."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.step(budget.epochs, budget.best, where="post", marker="o", color="tab:blue",
            label="best searched trial so far (full budget)")
    for reference, style in zip(budget.baselines, ("--", ":", "-.", (0, (1, 3)))):
        ax.axhline(reference.val_rmse, linestyle=style, color="grey", label=reference.label)
    if budget.budget:
        ax.axvline(budget.budget, color="black", linewidth=0.8, label="budget")
    ax.set_xlabel("epochs spent (every trial, baselines included)")
    ax.set_ylabel("best val RMSE (m)")
    ax.set_title("What the search found per unit of compute", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
              frameon=False)
    fig.tight_layout()
    return _save(fig, experiment / "plot_budget.png")


def _pareto_plot(plt, experiment: Path, spec: StudySpec, points, front) -> Path:
    """Best val RMSE against base-decoder parameters (log) for the full-budget trials, the
    Pareto front joined and labelled with the scientific parameter's value."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.scatter([p.base_params for p in points], [p.val_rmse for p in points], color="grey",
               alpha=0.6, label=f"trials at the full budget ({spec.max_t} epochs)")
    ax.plot([p.base_params for p in front], [p.val_rmse for p in front], "o-",
            color="tab:red", label="Pareto front")
    on_front = set(front)
    for p in points:  # every point says what it is; the front's in its colour
        ax.annotate(f"{spec.scientific} {p.scientific}" if spec.scientific else p.trial,
                    (p.base_params, p.val_rmse), fontsize=7, textcoords="offset points",
                    xytext=(4, 4), color="tab:red" if p in on_front else "dimgrey")
    ax.set_xscale("log")
    ax.margins(x=0.25)  # room for the labels beside the outer points
    ax.set_title("Val RMSE against base-decoder size (full-budget trials)", fontsize=9)
    ax.set_xlabel("base-decoder parameters")
    ax.set_ylabel("best val RMSE (m)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
              frameon=False)
    fig.tight_layout()
    return _save(fig, experiment / "plot_pareto.png")


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")  # legends outside the axes included
    _pyplot().close(fig)
    return path
