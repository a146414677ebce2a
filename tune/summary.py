"""``python -m tune.summary EXPERIMENT_DIR``: the study's question and its answer first, then
what the search found, judged against the study's success targets, compared at equal
budgets, with the checks that say whether the search itself can be trusted.

Reads the experiment folder only (works after the cluster is gone, and on a search still
running). Writes summary.md, summary.json, report.html and PNG plots into the folder and
prints the report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from baseres.cli import DefaultsHelpFormatter, OneLineParser, bounded_int, run_command
from tune.console_text import say
from tune.experiment import Experiment
from tune.json_files import write_json
from tune.report.data import TOP_ROWS, build_summary, question_status
from tune.report.html import write_report
from tune.report.markdown import (
    confirmation_lines,
    evaluations_markdown,
    render_markdown,
    render_question_only,
)
from tune.report.plots import QUESTION_PLOT, draw_plots
from tune.report.records import read_confirmation


def write_summary(folder: Path, top: int = TOP_ROWS) -> tuple[str, list[Path], str | None]:
    """The summary's text, the files written, and why nothing was written (a read-only
    folder, a full disk) or None: the text is worth reading either way."""
    experiment = Experiment(folder)
    trials = experiment.trials()
    summary = None
    if experiment.spec.question is not None and not any(t.best for t in trials):
        # stopped between the question and the search's first epoch: the answer alone
        question = question_status(experiment)
        data: object = {"question": question, "search": None}
        text = render_question_only(experiment.spec.name, str(experiment.folder), question,
                                    confirmation_lines(*read_confirmation(experiment.folder)),
                                    len(trials))
    else:
        data = summary = build_summary(experiment, trials, top)
        text = render_markdown(summary) + "\n".join(
            evaluations_markdown(experiment.folder, experiment.spec.scientific)) + "\n"
    try:
        write_json(experiment.folder / "summary.json", data)
        (experiment.folder / "summary.md").write_text(text)
        if summary is None:
            return text, [], None
        plots = draw_plots(experiment.folder, experiment.spec, *summary.plots)
        plots.append(write_report(experiment, trials, text, summary.importance,
                                  summary.plots.budget,
                                  next((p for p in plots if p.name == QUESTION_PLOT), None)))
    except OSError as err:
        return text, [], f"{err.filename or experiment.folder}: {err.strerror}"
    return text, plots, None


def print_summary(folder: Path, top: int = TOP_ROWS) -> None:
    text, plots, unwritten = write_summary(folder, top)
    say(text)  # a terminal's width; summary.md keeps the whole text and tables
    if unwritten:
        say(f"not written (summary.md, summary.json, plots): {unwritten}")
    else:
        say(", ".join([f"written: {folder / 'summary.md'}", "summary.json",
                         *(p.name for p in plots)]))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m tune.summary", description=__doc__,
                           formatter_class=DefaultsHelpFormatter)
    parser.add_argument("experiment", help="the experiment folder (e.g. results/generalization)")
    parser.add_argument("--top", type=bounded_int("top", 1), default=TOP_ROWS,
                        help="rows in the trial table")
    return parser


def _main(args: argparse.Namespace) -> int:
    print_summary(Path(args.experiment).expanduser().resolve(), args.top)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
