"""Study strings (a claim, a baseline's name) are data in summary.md and report.html: they show
as written and make no markup, HTML or link."""

from html.parser import HTMLParser

import markdown

from tune.markdown import md_text, render_markdown
from tune.quality import SamplerFacts
from tune.report import render
from tune.summary_data import BudgetFacts, Problems, QuestionStatus, Summary, TableRow

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
        seed_baselines_apart=[], isolation=[], pareto=[], plots=None)


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
    from tune.report import optuna_figures

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
