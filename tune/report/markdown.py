"""The words of the reports, in markdown: summary.md from the typed Summary, the table of
tune.evaluate's scores, and the confirmation's lines. Rendering only: every figure comes from
tune.report.data and tune.report.records."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from baseres.cli import command_line
from tune.compare import TargetCheck, band_text
from tune.numbers import finite
from tune.question.answer import answer_lines
from tune.recheck import better_than_baseline
from tune.report.data import BudgetFacts, QuestionStatus, Summary
from tune.report.quality import BOUNDARY_SHARE, SamplerFacts
from tune.report.records import Confirmation, Evaluation, read_evaluation
from tune.study import CLAIM_BASELINES

EVALUATION_TITLES = {"seen": "training places' test poses",
                     "unseen": "held-out places (other rooms)"}


# What markdown could read as markup, HTML or a link: backslash, code, emphasis, links, HTML,
# table cells, strike-through; `_` only at a word's edge (inside a word it is no emphasis).
MARKUP = re.compile(r"[\\`*\[\]<>&|~]|(?<!\w)_|_(?!\w)")
LINE_START = re.compile(r"^\s*(?:#|[=+-]|\d+[.)](?=\s|$))")  # a heading, rule or list item


def md_text(text: str, line_start: bool = False) -> str:
    """`text` (a study's claim, a name: data) as markdown that shows it literally and makes no
    markup or HTML, in summary.md and report.html alike: its special characters become
    character references; `line_start`: it opens a line, so a leading heading or list marker
    is escaped too."""
    text = MARKUP.sub(lambda m: f"&#{ord(m.group())};", text)
    if line_start:
        text = LINE_START.sub(lambda m: f"{m.group()[:-1]}&#{ord(m.group()[-1])};", text)
    return text


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else ("" if math.isnan(value) else str(value))
    return md_text(value) if isinstance(value, str) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(targets: dict[str, list[TargetCheck]]) -> list[str]:
    """Trials as rows, targets as columns (level, metric and the resolved band in the
    header), each cell the trial's value and pass / fail, or "not judged"."""
    if not targets:
        return []
    header = ["trial"]
    for c in next(iter(targets.values())):
        band = f" {band_text(tuple(c.band))}" if any(finite(b) for b in c.band) else ""
        scale = f" ({c.scale})" if c.scale != "absolute" else ""
        header.append(f"{c.level} {c.metric}{band}{scale}")
    rows = [[label, *(f"not judged ({c.note})" if c.passed is None else
                      f"{_fmt(c.value)} {'pass' if c.passed else 'FAIL'}" for c in checks)]
            for label, checks in targets.items()]
    return [_table(header, rows)]


def confirmation_lines(confirmation: Confirmation | None, problem: str) -> list[str]:
    """What tune.confirm added, in words (the question's answer above pools its seeds)."""
    if problem:
        return [f"Confirmation: {problem}."]
    if confirmation is None:
        return []
    lines = [f"tune.confirm added seeds {confirmation.seeds} ({confirmation.runs} runs); the "
             f"comparisons pool seeds {confirmation.pooled_seeds} ({confirmation.test}):", ""]
    for c in confirmation.comparisons:
        lo, hi = c.ci95_m
        lines.append(f"  - {c.comparison}: {c.effect_m:+.3f} m [{lo:+.3f}, {hi:+.3f}] "
                     f"over {c.n_places} places x {c.n_seeds} seeds, Holm p = {c.p_holm:.3g}: "
                     f"{c.outcome}.")
    return lines


def _confirmation(summary: Summary) -> list[str]:
    return confirmation_lines(summary.confirmation, summary.confirmation_problem)


def left_out_lines(question: QuestionStatus, resume: str) -> list[str]:
    """What the answer could not read: damaged places.json files (a resume scores them again
    from the run's checkpoint) and NaN or infinite place scores."""
    lines = [f"- {md_text(line)}; left out, scored again by: {resume}"
             for line in question.damaged]
    lines += [f"- {md_text(line)} (a diverged model): that place is left out of every "
              "comparison" for line in question.not_finite]
    return ["", *lines] if lines else []


def question_lines(question: QuestionStatus | None, experiment: str,
                   confirmation: list[str]) -> list[str]:
    """The question's section: the answer, or how far its runs got and how to go on."""
    if question is None:
        return []
    claim = md_text(question.claim, line_start=True)
    resume = command_line("python -m tune.run --resume", experiment)
    if question.answer is None:
        return ["## The question", "", claim, "",
                f"Not answered yet: {question.runs_finished} of {question.runs_planned} "
                "fold runs finished; resume with: " + resume,
                *left_out_lines(question, resume), ""]
    lines = answer_lines(question.answer, claim, question.plan, question.control_model)
    if question.runs_finished < question.runs_planned:
        lines.append(f"From {question.runs_finished} of {question.runs_planned} fold "
                     "runs (the rest have not finished).")
    return lines + left_out_lines(question, resume) + ["", *confirmation, ""]


def _question(summary: Summary) -> list[str]:
    return question_lines(summary.question, summary.experiment, _confirmation(summary))


def render_question_only(study: str, experiment: str, question: QuestionStatus,
                         confirmation: list[str], trials: int) -> str:
    """The summary before the search's first epoch (a stop between the question and the
    search): the question's answer is on disk and worth reading."""
    return "\n".join([
        f"# Summary of {study} ({experiment})", "",
        *question_lines(question, experiment, confirmation), "## The search", "",
        f"No trial has finished an epoch yet ({trials} trial folder(s)); resume with: "
        + command_line("python -m tune.run --resume", experiment)]) + "\n"


def budget_lines(budget: BudgetFacts, max_t: int) -> list[str]:
    """The budget, what the search spent, and the trials it bought."""
    limits = [f"{budget.epochs} epochs" if budget.epochs is not None else "",
              f"{budget.time_s:.0f} s" if budget.time_s is not None else "",
              f"at most {budget.num_samples} trials" if budget.num_samples is not None else ""]
    ended = f", and it ended: {budget.ended}" if budget.ended else " (not spent yet)"
    return [f"Budget: {', '.join(x for x in limits if x)}; spent {budget.epochs_spent} epochs "
            f"in {budget.seconds_spent / 60:.1f} min{ended}. It bought {budget.trials} trials: "
            f"{budget.searched} searched, {budget.searched_full_budget} of them to the full "
            f"budget ({max_t} epochs)."]


def recheck_lines(summary: Summary) -> list[str]:
    """The search's winners re-trained on fresh seeds: what the search's selection was
    worth, and which config is best once re-checked."""
    recheck, command = summary.recheck, command_line("python -m tune.confirm",
                                                     summary.experiment, "--seeds", 3)
    if recheck is None:
        why = ("the study re-checks with 0 seeds" if summary.recheck_seeds == 0
               else "not run yet")
        return ["**Not re-checked** (" + why + "): a searched config's value above is the best "
                "of several trained once each, optimistic until re-trained on fresh seeds: "
                + command + (" --search" if summary.question else "") + "."]
    baseline = recheck.best_baseline or "none"
    lines = [f"### Re-trained on fresh seeds {recheck.seeds}", "",
             f"The top searched configs that ran the full budget (selected from "
             f"{recheck.selected_from}), the best baseline and the U-Net, {recheck.runs} of "
             f"{recheck.planned} runs; the difference is paired by seed against the best "
             f"baseline ({md_text(baseline)}), Holm-corrected over the searched configs.", ""]
    lines += [f"| config | search value (one seed) | re-trained mean [95 %] | drop | minus "
              f"{md_text(baseline)} [95 %] |", "|---|---|---|---|---|"]
    for row in recheck.rows:
        versus, mean = row.versus_best_baseline, row.retrained
        lines.append(f"| {md_text(row.name)} | {row.search_value:.4f} | {mean.mean:.4f} "
                     f"[{mean.lo:.4f}, {mean.hi:.4f}] | {row.drop:+.4f} | "
                     + (f"{versus.text('')}, Holm p {row.p_holm:.3g}" if versus else "")
                     + " |")
    best = next((r for r in recheck.rows if r.name == recheck.best), None)
    if best is not None:
        better = better_than_baseline(best)
        mean = best.retrained
        lines += ["", f"Best searched config, re-checked: {md_text(best.name)}, val RMSE "
                      f"{mean.mean:.4f} m [{mean.lo:.4f}, {mean.hi:.4f}] over {mean.seeds} "
                      "fresh seeds "
                      f"(its search value {best.search_value:.4f} was selected from "
                      f"{recheck.selected_from}); "
                      + (f"better than {md_text(baseline)}" if better else
                         f"not shown better than {md_text(baseline)}") + "."]
    return lines


def sampler_lines(facts: SamplerFacts) -> list[str]:
    if facts.problem:
        return [f"- sampler: {facts.problem}"]
    if facts.proposed is None:
        return [f"- sampler: {facts.type}, {facts.searched} searched trial(s)"]
    lines = [f"- sampler: TPE proposed {facts.proposed} of {facts.searched} searched trial(s); "
             "the rest were drawn at random (TPE waits for n_startup_trials = "
             f"{facts.n_startup_trials} finished trials, baselines included)"]
    if facts.feasible is not None:
        lines.append(f"- minimum targets as TPE's constraints: {len(facts.feasible)} of "
                     f"{facts.judged} finished trial(s) met them: "
                     + (", ".join(facts.feasible) or "none"))
    return lines


def _search_quality(summary: Summary) -> list[str]:
    share = f"{BOUNDARY_SHARE * 100:.0f} %"
    out = [f"- {f.param} = {_fmt(f.value)} is within {share} of the {f.side} end of "
           f"[{_fmt(f.low)}, {_fmt(f.high)}]: widen the range" for f in summary.boundary_flags
           ] or ["- no best searched value sits near a boundary of its range"]
    problems = summary.problems
    out.append(f"- errored trials: {problems.errored}; diverged trials: {problems.diverged}")
    out += [f"  - {md_text(label)}: {md_text(reason)}"
            for label, reason in problems.reasons.items()]
    out += sampler_lines(summary.sampler)
    importance = summary.importance
    if isinstance(importance, dict):
        out.append("- parameter importance (Optuna, PED-ANOVA): " + ", ".join(
            f"{k} {v:.2f}" for k, v in importance.items()))
    else:
        out.append(f"- parameter importance: {importance}")
    return out


def render_markdown(summary: Summary) -> str:
    out = [f"# Summary of {summary.study} ({summary.experiment})", ""]
    out += _question(summary)
    out += ["## The search", ""]
    for line in summary.verdict:  # a paragraph each; a blank line before a list
        bullet = line.lstrip().startswith("- ")
        if out[-1] and not (bullet and out[-1].lstrip().startswith("- ")):
            out.append("")
        out.append(line)
    apart = summary.claim_baselines_apart
    if apart:
        before, after = CLAIM_BASELINES
        out += ["", f"{before} and {after} differ in {len(apart)} knobs "
                    f"({', '.join(apart)}): rows of the search, not a controlled contrast."]
    out += ["", f"Learned-nothing reference: the mean training depth map scores val RMSE "
                f"{_fmt(summary.mean_map_rmse)} m. Full budget: {summary.max_t} epochs.", ""]
    cut = (f"Top {summary.shown} of {summary.trials} trials"
           if summary.shown < summary.trials else f"All {summary.trials} trials")
    out += [*budget_lines(summary.budget, summary.max_t), ""]
    out += [*recheck_lines(summary), ""]
    if summary.question is None and summary.confirmation_problem:
        out += [*_confirmation(summary), ""]
    out += [f"{cut}, best first; metrics at each trial's best epoch (train_sparse: the "
            "training loss term, as the seed logs it).", ""]
    rows = [row.json_form() for row in summary.table]
    out.append(_table(list(rows[0]), [list(row.values()) for row in rows]))
    out += ["", "## Targets", ""]
    out += [f"- {metric}: {rule}" for metric, rule in summary.target_rules.items()]
    shown = {row.trial for row in summary.table}  # summary.json keeps every trial's
    out += ["", *targets_table({k: v for k, v in summary.targets.items() if k in shown})]
    out += ["", "## Search quality", "", *_search_quality(summary)]
    if summary.isolation:
        param = summary.scientific
        out += ["", f"## Isolation: {param} (best base + residual trial per value)", "",
                f"Only trials that ran the full budget ({summary.max_t} epochs) are "
                "compared; the trials ASHA stopped earlier are counted apart. One search's "
                "trials differ in every other knob too"
                + (": the question above is the controlled comparison." if summary.question
                   else ", so this is no controlled comparison."), ""]
        out.append(_table([param, "trial", "best val RMSE", "val delta1",
                           "full-budget trials", "stopped earlier (not compared)"],
                          [list(r) for r in summary.isolation]))
    out += ["", "## Pareto front: val RMSE against base-decoder parameters", "",
            f"Base + residual trials that ran all {summary.max_t} epochs (equal budgets) "
            "that no other beats on both: a smaller base for the same error is the seed's "
            "claim.", ""]
    out.append(_table(["trial", "base-decoder parameters", "best val RMSE",
                       summary.scientific or "scientific"], [list(p) for p in summary.pareto])
               if summary.pareto else "No base + residual trial ran the full budget yet.")
    return "\n".join(out) + "\n"


def evaluation_table(report: Evaluation, scientific: str | None) -> str:
    """tune.evaluate's scores as a table: per trial, each column's RMSE, its ratio to the mean
    training depth map's RMSE on the same samples, and delta1. With held-out test places the
    two columns score different rooms, so neither their difference nor that of their ratios
    measures memorisation (the question's place gap does, on the same poses)."""
    cols = report.columns
    measures = (("rmse", "RMSE"), ("rmse_ratio", "RMSE / its mean map"), ("delta1", "delta1"))
    header = ["trial", "model", *([scientific] if scientific else []), "checkpoint epoch",
              "val RMSE", *(f"{EVALUATION_TITLES.get(c, c)} {title}" for c in cols
                            for _, title in measures)]
    rows = [[row.label, row.model, *([row.params.get(scientific)] if scientific else []),
             row.checkpoint_epoch, row.val_rmse,
             *(row.scores[c].get(key, math.nan) for c in cols for key, _ in measures)]
            for row in report.trials]
    references = "; ".join(f"{EVALUATION_TITLES.get(c, c)}: "
                           f"{_fmt(report.trials[0].scores[c].get('mean_map_rmse'))} m"
                           for c in cols)
    return (f"Mean training depth map on the same samples: {references}.\n\n"
            + _table(header, rows))


def evaluations_markdown(folder: Path, scientific: str | None) -> list[str]:
    """The sections of every evaluation written so far (test, then val)."""
    out = []
    for split in ("test", "val"):
        report, problem = read_evaluation(folder, split)
        if problem:
            out += ["", f"## Evaluation on {split}: {problem}"]
        elif report is not None:
            out += ["", f"## Evaluation on the {split} split (tune.evaluate, "
                        f"{report.evaluated_at}, read once after the search)", "",
                    evaluation_table(report, scientific)]
    return out
