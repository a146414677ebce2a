"""Study strings (a claim, a baseline's name) are data in summary.md and report.html: they show
as written and make no markup, HTML or link."""

import html
from html.parser import HTMLParser
from pathlib import Path

import markdown
import pytest

from tune.report.data import BudgetFacts, Problems, QuestionStatus, Summary, TableRow
from tune.report.html import render
from tune.report.markdown import md_text, render_markdown
from tune.report.quality import SamplerFacts

CLAIM = ("<script>alert('claim')</script> <img src=x onerror=alert(1)> "
         "[a link](javascript:alert(2)) ![i](x.png) <http://example.com> *em* _em_ `code` "
         "| cell | a_b_c & more")
BASELINE = "<img src=y onerror=alert(3)> | *x*"


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self, page: str):
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def summary(claim: str) -> Summary:
    """A summary of one baseline trial that errored, its question not yet answered."""
    row = TableRow(BASELINE, "base_residual", {}, {"val_rmse": 1.0}, 1, 1, "error")
    return Summary(
        question=QuestionStatus(claim, 0, 4, None, None, "the plain U-Net"),
        experiment="/runs/x", study="x", trials=1, shown=1,
        budget=BudgetFacts(None, None, 1, 1, 5.0, 1, 0, 0, "all 1 trials finished"), max_t=1,
        space=[], verdict=[], confirmation=None, recheck=None, recheck_seeds=0,
        confirmation_problem="", mean_map_rmse=1.0, table=[row], targets={}, target_rules={},
        baselines={}, best_searched=None, boundary_flags=[],
        problems=Problems(1, 0, {BASELINE: "error: <b>boom</b>"}), importance="none",
        sampler=SamplerFacts("random", 0, None, None, None, 0), scientific=None,
        claim_baselines_apart=[], isolation=[], pareto=[], plots=None)


def test_study_strings_make_no_markup_in_summary_md():
    text = render_markdown(summary(CLAIM))
    page = markdown.markdown(text, extensions=["tables"])  # raw HTML passes, as in viewers
    made = [tag for tag, _ in Tags(page).found]
    # what the summary itself makes: headings, paragraphs, bold, lists, tables; nothing of a
    # claim's
    assert set(made) <= {"h1", "h2", "h3", "p", "strong", "ul", "li", "table", "thead",
                         "tbody", "tr", "th", "td"}, made
    assert "alert" in page and "a_b_c" in text  # shown, and a name inside a word kept as is
    assert made.count("td") == made.count("th")  # the baseline's row: its cells, unsplit


def test_a_claim_opening_with_a_heading_or_list_marker_stays_a_sentence():
    for claim in ("# not a heading", "- not a list", "1. not a list", "+ not a list"):
        html = markdown.markdown(md_text(claim, line_start=True))
        assert html.startswith("<p>") and claim[2:] in html, html


def test_report_html_shows_raw_html_and_links_of_summary_md_escaped():
    """Whatever summary.md holds (here a claim written into it raw), report.html makes no
    script, image or link of it: only plotly.js's one script."""
    page = render(f"# Summary\n\n{CLAIM}\n\n<div onclick=alert(4)>x</div>\n\n"
                  "[ref]: javascript:alert(5)\n\nsee [ref]\n", [], [], "x")
    tags = Tags(page).found
    assert [tag for tag, _ in tags if tag in ("script", "img", "a", "div")] == ["script"]
    assert not any(key.startswith("on") or key in ("href", "src") for _, attrs in tags
                   for key in attrs)
    assert "&lt;script&gt;alert('claim')&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_resume_command_in_summary_md_pastes_a_folder_with_a_space():
    text = render_markdown(summary("claim")._replace(experiment="/runs/my runs/x"))
    line = next(line for line in text.splitlines() if "resume with: " in line)
    assert line.endswith("resume with: python -m tune.run --resume '/runs/my runs/x'")


def test_optuna_figures_draw_full_budget_values_and_no_importance_the_summary_refuses(
        tmp_path, smoke_spec):
    import optuna

    from tune.experiment import STUDY_FILE, Experiment, journal_storage
    from tune.report.html import optuna_figures

    (tmp_path / STUDY_FILE).write_text(smoke_spec.to_yaml())
    study = optuna.create_study(study_name=smoke_spec.name, storage=journal_storage(tmp_path))
    space = dict(smoke_spec.space)
    for number, state in enumerate([optuna.trial.TrialState.COMPLETE,
                                    optuna.trial.TrialState.PRUNED,
                                    optuna.trial.TrialState.PRUNED]):
        trial = study.ask(space)
        trial.report(1.0 + number, 1)
        study.tell(trial, 1.0 if state == optuna.trial.TrialState.COMPLETE else None,
                   state=state)
    figures = {f.title: f.html for f in optuna_figures(Experiment(tmp_path), "needs >= 3 ...")}
    importance = next(html for title, html in figures.items() if "importance" in title)
    assert importance == "<p>Not drawn: needs &gt;= 3 ...</p>"
    history = next(html for title, html in figures.items() if "history" in title)
    # one trial ran the full budget: the history's points are its value alone
    assert '"y":[1.0]' in history.replace(" ", "")


# ------------------------------------------------------------------------ the page's width
def wide_page(tmp_path, spec) -> str:
    """report.html of a summary whose trial table has 12 long-named parameters (wider than the
    page) and Optuna's figures of a journal with the smoke study's 5 parameters (its slice plot
    asks 5 x 300 px)."""
    import optuna

    from tune.experiment import STUDY_FILE, Experiment, journal_storage
    from tune.report.html import budget_figure, optuna_figures
    from tune.report.plots import BudgetCurve

    (tmp_path / STUDY_FILE).write_text(spec.to_yaml())
    study = optuna.create_study(study_name=spec.name, storage=journal_storage(tmp_path))
    for number in range(3):
        trial = study.ask(dict(spec.space))
        trial.report(1.0 + number, spec.max_t)
        study.tell(trial, 1.0 + number)
    names = [f"a_rather_long_parameter_name_{i}" for i in range(12)]
    row = TableRow("t1", "base_residual", dict.fromkeys(names, 0.123456), {"val_rmse": 1.0}, 1,
                   1, "completed")
    text = render_markdown(summary("claim")._replace(space=names, table=[row]))
    figures = [budget_figure(BudgetCurve([4, 8], [1.2, 1.0], [], 8)),
               *optuna_figures(Experiment(tmp_path), "not computed")]
    return render(text, figures, [], "x")


def plotly_layouts(page: str) -> list[dict]:
    """The layout of every Plotly.newPlot(id, data, layout, config) call of the page."""
    import json

    decoder = json.JSONDecoder()
    layouts = []
    for call in page.split("Plotly.newPlot(")[1:]:
        rest = call.lstrip()
        for _ in range(2):  # the id, the data
            _, end = decoder.raw_decode(rest)
            rest = rest[end:].lstrip().removeprefix(",").lstrip()
        layouts.append(decoder.raw_decode(rest)[0])
    return layouts


class Boxes(HTMLParser):
    """Each <table> with the classes of the elements it sits in."""

    def __init__(self, page: str):
        super().__init__()
        self.open: list[str] = []
        self.tables: list[list[str]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append(list(self.open))
        self.open.append(dict(attrs).get("class") or "")

    def handle_endtag(self, tag):
        self.open.pop()


def test_every_table_scrolls_inside_the_page_and_no_figure_is_wider(tmp_path, smoke_spec):
    from tune.report.html import PAGE_WIDTH, WIDE

    page = wide_page(tmp_path, smoke_spec)
    tables = Boxes(page).tables
    assert tables and all(classes[-1] == WIDE for classes in tables), tables  # its parent
    assert f".{WIDE}{{overflow-x:auto;max-width:100%}}" in page
    assert f"max-width:{PAGE_WIDTH}px" in page
    layouts = plotly_layouts(page)
    assert len(layouts) == 5, len(layouts)  # the budget curve and Optuna's four (no importance)
    assert all(layout.get("width", 0) <= PAGE_WIDTH for layout in layouts), [
        layout.get("width") for layout in layouts]
    assert page.count('"responsive": true') == len(layouts)


MEASURE = """<script>window.addEventListener('load', () => setTimeout(() => {
  document.title = JSON.stringify({inner: window.innerWidth,
    scroll: document.documentElement.scrollWidth,
    table: document.querySelector('table').getBoundingClientRect().width,
    plots: [...document.querySelectorAll('.js-plotly-plot')].map(
      p => p.getBoundingClientRect().right)});
}, 500));</script>"""


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium")
def test_the_page_is_no_wider_than_a_1280_px_window_in_chromium(tmp_path, smoke_spec):
    """Headless Chromium lays the page out at 1280 px: nothing reaches past the window, while
    the trial table inside its box is wider than the page."""
    import json
    import re
    import subprocess

    from tune.report.html import PAGE_WIDTH

    page = tmp_path / "report.html"
    page.write_text(wide_page(tmp_path, smoke_spec).replace("</body>", MEASURE + "</body>"))
    dom = subprocess.run(
        ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=300).stdout
    measured = json.loads(html.unescape(re.search(r"<title>(.*?)</title>", dom, re.S)[1]))
    assert measured["inner"] == 1280
    assert measured["scroll"] <= measured["inner"], measured
    assert measured["table"] > PAGE_WIDTH, measured  # the table is wide, and scrolls in its box
    assert len(measured["plots"]) == 5 and max(measured["plots"]) <= measured["inner"], measured


# ------------------------------------------------------------------------ decomposition panels
@pytest.mark.parametrize("panels, stop, reason, heading", [
    ([1], "EARLY", "ASHA stop", "t, epoch 1, its last panel of the 3 epochs it ran (ASHA stop)"),
    ([1, 3], "EARLY", "ASHA stop", "t, epoch 3, its last (ASHA stop)"),
    ([1, 3], "COMPLETED", "completed", "t, epoch 3"),
])
def test_a_panel_names_its_epoch_and_whether_it_is_the_trials_last(tmp_path, panels, stop,
                                                                   reason, heading):
    """A trial that ran 3 epochs with panels at `panels`: the heading names the epoch of the
    image shown, and for a trial that did not complete whether that is its last epoch."""
    import numpy as np
    from helpers import fake_trial
    from torch.utils.tensorboard import SummaryWriter

    from baseres.hooks import PANEL_TAG
    from tune.experiment import TrialEnd
    from tune.report.html import last_panel

    trial = fake_trial("t", [{"training_iteration": e, "val_rmse": 1.0} for e in (1, 2, 3)])
    trial.folder, trial.end, trial.end_text = tmp_path, TrialEnd[stop], reason
    with SummaryWriter(str(tmp_path / "t")) as writer:
        for epoch in panels:
            writer.add_image(PANEL_TAG, np.zeros((4, 4, 3), np.uint8), epoch, dataformats="HWC")
    page = render("", [], [last_panel(trial)], "x")
    assert f"<h3>{heading}</h3>" in page
