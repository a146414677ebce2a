"""report.html: the summary as one self-contained page that opens with no network.

The question's answer and the tables come from summary.md; beside them, the question's figure
(plot_question.png: its place gaps per arm and place), Optuna's interactive figures of the
journal (history with pruned trials, intermediate values, parallel coordinates, slice,
importance) and the last decomposition panel (truth | final | base | residual) of every
baseline and of the best searched trials, read from their TensorBoard runs. plotly.js is
inlined once.
"""

from __future__ import annotations

import base64
import html
import warnings
from pathlib import Path
from typing import NamedTuple

from baseres.atomic import write_text_atomic
from baseres.hooks import PANEL_TAG
from tune.experiment import Experiment, TrialEnd, TrialRecord
from tune.report.plots import BudgetCurve

REPORT_FILE = "report.html"
PANEL_TRIALS = 2  # best searched trials whose panel is shown besides every baseline's
PAGE_WIDTH = 1200  # px: the body's widest; a wider table scrolls inside it, a figure fits it
WIDE = "wide"  # the class of the horizontally scrolling box around every table


class Figure(NamedTuple):
    title: str
    html: str  # a plotly <div> with its data, or a sentence saying why there is none


class Panel(NamedTuple):
    label: str
    epoch: int  # the epoch the image is of
    png: bytes
    note: str = ""  # how that epoch stands to the trial's last, where it is not the full budget

    @property
    def heading(self) -> str:
        return f"{self.label}, epoch {self.epoch}{self.note}"


def panel_note(trial: TrialRecord, epoch: int) -> str:
    """Whether the panel's epoch is the trial's last, for a trial that did not complete: a
    trial stopped between two panels (drawn every image_every epochs) shows an earlier one."""
    ran = trial.epochs_run
    if trial.end is TrialEnd.COMPLETED and epoch == ran:
        return ""
    if epoch == ran:
        return f", its last ({trial.end_text})"
    return (f", its last panel of the {ran} epoch{'s' * (ran != 1)} it ran "
            f"({trial.end_text})")


def optuna_figures(experiment: Experiment, importance: dict[str, float] | str
                   ) -> list[Figure]:
    """Optuna's own figures of the journal study, each from comparable values: the curves
    per epoch of every trial, the rest from the trials that ran the full budget only (an
    early-stopped trial's value is of another budget); the importance chart only where the
    summary computes importance (`importance` is its reason where it does not). One that
    cannot be drawn says why."""
    import optuna
    from optuna import visualization

    study = experiment.optuna_study()
    full = full_budget_trials(study)
    importance_chart = (
        (lambda _: visualization.plot_param_importances(
            full, evaluator=optuna.importance.PedAnovaImportanceEvaluator()))
        if isinstance(importance, dict) else importance)  # the summary's reason
    drawers = (("Intermediate values: val RMSE per epoch, every trial",
                lambda _: visualization.plot_intermediate_values(study)),
               ("Optimization history: the trials that ran the full budget",
                visualization.plot_optimization_history),
               ("Parallel coordinates: the trials that ran the full budget",
                visualization.plot_parallel_coordinate),
               ("Slice: the trials that ran the full budget", visualization.plot_slice),
               ("Parameter importance (PED-ANOVA), searched trials at the full budget",
                importance_chart))
    figures = []
    for title, draw in drawers:
        if isinstance(draw, str):
            figures.append(Figure(title, f"<p>Not drawn: {html.escape(draw)}</p>"))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figure = draw(full)
            body = figure_html(figure)
        except Exception as err:  # a figure is advice: say why, draw the rest
            body = f"<p>Not drawn: {html.escape(f'{type(err).__name__}: {err}')}</p>"
        figures.append(Figure(title, body))
    return figures


def budget_figure(curve: BudgetCurve) -> Figure:
    """The search's best so far against the epochs spent, the baselines as lines."""
    import plotly.graph_objects as go

    title = "What the search found per unit of compute: best so far against epochs spent"
    if not curve.epochs:
        return Figure(title, "<p>Not drawn: no searched trial ran the full budget yet</p>")
    figure = go.Figure(go.Scatter(x=curve.epochs, y=curve.best, mode="lines+markers",
                                  line_shape="hv",
                                  name="best searched trial so far (full budget)"))
    for reference in curve.baselines:
        figure.add_hline(y=reference.val_rmse, line_dash="dash",
                         annotation_text=html.escape(reference.label))
    if curve.budget:
        figure.add_vline(x=curve.budget, annotation_text="budget")
    figure.update_layout(xaxis_title="epochs spent (every trial, baselines included)",
                         yaxis_title="best val RMSE (m)", height=420)
    return Figure(title, figure_html(figure))


def figure_html(figure) -> str:
    """A plotly figure as a <div> as wide as the page, resizing with the window: a fixed width
    (Optuna's slice plot asks 300 px per parameter) had run past the page's right edge."""
    figure.update_layout(width=None, autosize=True)
    return figure.to_html(full_html=False, include_plotlyjs=False, config={"responsive": True})


def full_budget_trials(study):
    """An in-memory copy of the journal study with its COMPLETE trials alone: the searcher
    closes a trial COMPLETE only when it ran the full budget (an early stop is PRUNED)."""
    import optuna
    from optuna.trial import TrialState

    copy = optuna.create_study(direction=study.direction)
    copy.add_trials([t for t in study.trials if t.state == TrialState.COMPLETE])
    return copy


def last_panel(trial: TrialRecord) -> Panel | None:
    """The trial's last decomposition panel in its TensorBoard run, or None."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for run in sorted(p for p in trial.folder.iterdir() if p.is_dir()):
        if not any(run.glob("events.out.tfevents.*")):
            continue
        events = EventAccumulator(str(run), size_guidance={"images": 1})
        events.Reload()
        if PANEL_TAG in events.Tags().get("images", []):
            image = events.Images(PANEL_TAG)[-1]
            return Panel(trial.label, image.step, image.encoded_image_string,
                         panel_note(trial, image.step))
    return None


def panels(trials: list[TrialRecord]) -> list[Panel]:
    """The last panel of every baseline and of the best searched trials."""
    ranked = [t for t in trials if t.best]
    chosen = [t for t in ranked if t.baseline] + [t for t in ranked if not t.baseline][
        :PANEL_TRIALS]
    return [p for p in (last_panel(t) for t in chosen) if p is not None]


# Markdown's ways to pass HTML or a URL through (summary.md uses none): raw HTML, links, images
URL_PATTERNS = ("html", "link", "image_link", "reference", "image_reference", "short_reference",
                "short_image_ref", "autolink", "automail")


def markdown_as_html(text: str) -> str:
    """summary.md as HTML that holds no markup of its text's own: tune.report.markdown writes study
    strings as character references, and here any raw HTML (a `<script>`, an
    `<img onerror=...>`) is shown escaped, and no link or image is made."""
    import markdown

    converter = markdown.Markdown(extensions=["tables"])
    converter.preprocessors.deregister("html_block")
    converter.parser.blockprocessors.deregister("reference")  # link definitions
    for name in URL_PATTERNS:
        converter.inlinePatterns.deregister(name)
    # every table in a box that scrolls sideways: the trial table has a column per searched
    # parameter and metric, wider than the page (raw HTML is escaped above: these are all)
    page = converter.convert(text)
    return page.replace("<table>", f'<div class="{WIDE}"><table>').replace(
        "</table>", "</table></div>")


def png_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render(summary_markdown: str, figures: list[Figure], shown: list[Panel],
           title: str, question_png: bytes | None = None) -> str:
    """The page: summary.md as HTML, the question's figure, the search's figures, the panels;
    plotly.js inlined once."""
    from plotly.offline import get_plotlyjs

    parts = [markdown_as_html(summary_markdown)]
    if question_png is not None:
        parts.append("<h2>The question's figure: place gaps per arm and place</h2>"
                     + png_tag(question_png, "the question: place gaps per arm and place"))
    parts.append("<h2>Figures of the search (Optuna)</h2>")
    for figure in figures:
        parts.append(f"<h3>{html.escape(figure.title)}</h3>{figure.html}")
    parts.append("<h2>Decomposition panels: truth | final | base | residual</h2>")
    for panel in shown:
        parts.append(f"<h3>{html.escape(panel.heading)}</h3>{png_tag(panel.png, panel.label)}")
    style = (f"body{{font-family:sans-serif;max-width:{PAGE_WIDTH}px;margin:auto;padding:1em}}"
             f".{WIDE}{{overflow-x:auto;max-width:100%}}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
             "padding:2px 6px}img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>{style}</style><script>{get_plotlyjs()}</script></head><body>"
            + "\n".join(parts) + "</body></html>\n")


def write_report(experiment: Experiment, trials: list[TrialRecord], summary_markdown: str,
                 importance: dict[str, float] | str, budget: BudgetCurve,
                 question_plot: Path | None = None) -> Path:
    """report.html beside summary.md, whose text it shows (written whole, or not at all),
    with the question's PNG where there is one."""
    figures = [budget_figure(budget), *optuna_figures(experiment, importance)]
    page = render(summary_markdown, figures, panels(trials),
                  f"{experiment.spec.name}: {experiment.folder.name}",
                  question_plot.read_bytes() if question_plot is not None else None)
    path = experiment.folder / REPORT_FILE
    write_text_atomic(path, page)
    return path
