import json
import shutil
from types import SimpleNamespace

import pytest
from helpers import copy_experiment, fake_trial

from tune.report.data import build_summary
from tune.report.plots import curve_data, param_plot_data
from tune.report.quality import boundary_flags
from tune.study import load_study
from tune.summary import main


@pytest.mark.parametrize("params, flagged", [
    ({"residual_range": 0.1 + 0.4 * 0.09}, {("residual_range", "low")}),
    ({"residual_range": 0.1 + 0.4 * 0.11}, set()),
    ({"residual_range": 0.5 - 0.4 * 0.05}, {("residual_range", "high")}),
    # log range 0.5..4: 10 % in log space is a factor 8**0.1 = 1.23 from an end
    ({"lambda_base_init": 0.5 * 1.2}, {("lambda_base_init", "low")}),
    ({"lambda_base_init": 0.5 * 1.3}, set()),
    ({"lambda_base_init": 4.0 / 1.2}, {("lambda_base_init", "high")}),
    ({"warmup_fraction": 0.5}, {("warmup_fraction", "high")}),
    ({"base_channel_divisor": 8}, set()),  # categorical: no range to widen
])
def test_boundary_flags(params, flagged, smoke_spec):
    flags = boundary_flags(fake_trial(**params), smoke_spec)
    assert {(f.param, f.side) for f in flags} == flagged


def test_summary_of_the_smoke_search(smoke_experiment, tmp_path, smoke_spec):
    experiment = copy_experiment(smoke_experiment, tmp_path)
    assert main([str(experiment)]) == 0
    summary = json.loads((experiment / "summary.json").read_text())
    assert len(summary["table"]) == smoke_spec.num_samples
    assert list(summary["baselines"]) == list(smoke_spec.baselines)
    assert summary["best_searched"] is not None and "(" not in summary["best_searched"]
    assert {row["model"] for row in summary["table"]} == {"base_residual", "unet"}
    unet = next(row for row in summary["table"] if row["model"] == "unet")
    assert unet["base_channel_divisor"] is None  # never a point on the divisor axis
    assert all(row["epochs"] >= 1 for row in summary["table"])
    assert summary["verdict"][0].startswith("Best at the full budget (3 epochs): ")
    # figures, not markdown: TPE's counts, and no confirmation where the study has no question
    sampler = summary["sampler"]
    assert sampler["type"] == "tpe" and sampler["n_startup_trials"] == 10
    assert 0 <= sampler["proposed"] <= sampler["searched"] == smoke_spec.num_samples - len(
        smoke_spec.baselines)
    assert summary["question"] is None and summary["confirmation"] is None
    # without a question: the search's heading all the same, and no "question above"
    text = (experiment / "summary.md").read_text()
    assert "## The search" in text and "## The question" not in text
    assert "question above" not in text and "no controlled comparison" in text
    # smoke's one searched trial is stopped at epoch 1 (ASHA): none is called best
    assert summary["verdict"][1].startswith("No searched trial ran the full budget")
    assert summary["budget"]["searched_full_budget"] == 0 and summary["recheck"] is None
    assert 1.0 < summary["mean_map_rmse"] < 5.0
    for row in summary["baselines"].values():
        assert row["common_epoch"] is not None and row["common_epoch"] >= 1
    ranked = [row["val_rmse"] for row in summary["table"]]
    assert ranked == sorted(ranked)  # best first
    assert {row["stopped"] for row in summary["table"]} <= {"completed", "ASHA stop"}
    assert "ASHA stop" in {row["stopped"] for row in summary["table"]}
    # every trial is judged on six targets; the relative RMSE ones resolved to metres
    before = summary["baselines"]["seed_before"]["val_rmse"]
    for checks in summary["targets"].values():
        assert len(checks) == 6
        rmse = [c for c in checks if c["metric"] == "val_rmse"]
        assert sorted(c["band"][1] for c in rmse) == pytest.approx(
            [0.70 * before, 0.85 * before])
    text = (experiment / "summary.md").read_text()
    assert text.splitlines()[4].startswith("Best at the full budget (3 epochs): ")
    assert "not judged (a unet reports no train_sparse)" in text
    # the targets: one table, trials as rows, each target's resolved band in its header
    assert "| trial | minimum train_sparse >= 0.06 | minimum val_rmse <= " in text
    assert "(0.85 x seed_before (" in text
    assert "learned-nothing reference" in text.lower()
    for name in ("summary.md", "plot_params.png", "plot_isolation.png", "plot_curves.png",
                 "plot_pareto.png"):  # the two baselines ran the full budget: a front
        assert (experiment / name).stat().st_size > 0, name
    front = summary["pareto"]
    assert {p["trial"] for p in front} <= {t for t in (row["trial"] for row in summary["table"])}
    assert [p["base_params"] for p in front] == sorted(p["base_params"] for p in front)
    assert "## Pareto front: val RMSE against base-decoder parameters" in text
    assert "## Isolation: base_channel_divisor" in (experiment / "summary.md").read_text()
    assert main([str(experiment), "--top", "2"]) == 0
    cut = (experiment / "summary.md").read_text()
    assert f"Top 2 of {smoke_spec.num_samples} trials" in cut
    assert len(json.loads((experiment / "summary.json").read_text())["table"]) == 2


def test_plot_data_is_plain_and_complete(smoke_experiment, smoke_spec):
    from tune.experiment import Experiment

    trials = Experiment(smoke_experiment).trials()
    points = param_plot_data(trials, smoke_spec)
    assert set(points) == set(smoke_spec.space)
    # the U-Net baseline is no point of any searched parameter
    assert all(len(p) == smoke_spec.num_samples - 1 for p in points.values())
    assert any(p.stopped for p in points["residual_range"])
    curves = curve_data(trials, 2)  # the two best, and every baseline however it ranks
    assert [c.label for c in curves] == [t.label for i, t in enumerate(trials)
                                         if i < 2 or t.baseline]
    assert {c.label for c in curves} >= {t.label for t in trials if t.baseline}
    assert curves[0].epochs == list(range(1, len(curves[0].epochs) + 1))


def test_zero_finished_trials_is_a_clear_error(smoke_experiment, tmp_path, capsys):
    experiment = tmp_path / "empty"
    trial = experiment / "trial_00000"
    trial.mkdir(parents=True)
    shutil.copy(smoke_experiment / "study.yaml", experiment)
    (trial / "params.json").write_text("{}")
    (trial / "result.json").write_text("")
    assert main([str(experiment)]) == 2
    err = capsys.readouterr().err
    assert "no trial has finished an epoch" in err and "\n" not in err.strip()
    assert main([str(tmp_path / "nothing-here")]) == 2
    assert "not an experiment folder" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2  # a storage folder: its experiments are named
    assert "it holds these experiments, newest last: empty" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([str(experiment), "--top", "0"])
    assert info.value.code == 2 and "`top >= 1` must hold" in capsys.readouterr().err


def test_build_summary_on_a_running_search_tolerates_partial_rows(smoke_experiment, tmp_path,
                                                                  smoke_spec):
    experiment = copy_experiment(smoke_experiment, tmp_path, "partial")
    first = sorted(experiment.glob("trial_*"))[0] / "result.json"
    first.write_text(first.read_text() + '{"training_iteration": 9, "val_r')  # cut mid-write
    assert build_summary(experiment).trials == smoke_spec.num_samples


def test_plots_label_log_axes_integer_epochs_and_keep_the_legend_off_the_curves(
        tmp_path, monkeypatch, smoke_spec):
    from tune.report import plots

    figures = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.setdefault(path.name, fig))
    points = {name: [plots.ParamPoint(value, 1.2, False, "a")] for name, value in (
        ("base_channel_divisor", 2), ("residual_range", 0.3), ("lambda_base_init", 1.5),
        ("lambda_sparse", 0.05), ("warmup_fraction", 0.2))}
    curves = [plots.Curve("a (seed_after)", [1, 2, 3], [1.5, 1.3, 1.2]),
              plots.Curve("b", [1], [1.6])]
    plots.draw_plots(tmp_path, smoke_spec, points, [], [], curves)

    axes = {ax.get_xlabel(): ax for ax in figures["plot_params.png"].axes}
    for name, labels in (("lambda_base_init", {"0.5", "1", "2", "3"}),
                         ("lambda_sparse", {"0.005", "0.01", "0.1", "0.5"})):
        ax = axes[name]
        ax.figure.canvas.draw()
        shown = {t.get_text() for t in ax.get_xticklabels()
                 if ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]}
        assert ax.get_xscale() == "log" and labels <= shown, (name, shown)
    (ax,) = figures["plot_curves.png"].axes
    ax.figure.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["a (seed_after)", "b"]
    assert ax.get_title() and figures["plot_params.png"].get_suptitle()  # titled
    assert legend.get_window_extent().x0 >= ax.get_window_extent().x1  # beside, not on top


@pytest.mark.parametrize("name, content, said", [
    ("confirm.json", {"version": 99}, "confirm.json is not a confirmation this version writes"),
    ("confirm.json", [1, 2], "confirm.json is not a confirmation this version writes"),
    ("confirm.json", "{cut", "confirm.json is unreadable"),
    ("evaluation-test.json", {"split": "test"}, "evaluation-test.json is not an evaluation"),
    ("evaluation-test.json", [], "evaluation-test.json is not an evaluation"),
])
def test_a_report_of_another_layout_is_one_line_not_a_traceback(smoke_experiment, tmp_path,
                                                                 capsys, name, content, said):
    experiment = copy_experiment(smoke_experiment, tmp_path)
    text = content if isinstance(content, str) else json.dumps(content)
    (experiment / name).write_text(text)
    assert main([str(experiment)]) == 0
    assert said in " ".join(capsys.readouterr().out.split())  # wrapped to the console
    assert said in (experiment / "summary.md").read_text()


def test_report_html_is_self_contained_with_every_figure_and_the_baselines_panels(
        question_experiment, tmp_path):
    from html.parser import HTMLParser

    experiment = copy_experiment(question_experiment, tmp_path)
    assert main([str(experiment)]) == 0
    page = (experiment / "report.html").read_text()

    class Collect(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.headings, self.remote, self.images = [], [], [], []
            self._heading = False

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            self.tags.append(tag)
            self._heading = tag == "h3"
            if tag in ("script", "link", "img") and (attrs.get("src") or attrs.get("href") or
                                                     "").startswith(("http", "//")):
                self.remote.append(attrs)
            if tag == "img":
                self.images.append(attrs["alt"])

        def handle_data(self, data):
            if self._heading:
                self.headings.append(data)
                self._heading = False

    parsed = Collect()
    parsed.feed(page)
    assert not parsed.remote  # opens with no network: plotly.js is inlined
    assert page.count("<script") >= 1 and "Plotly.newPlot" in page
    titles = [h for h in parsed.headings if not h.endswith(tuple(f"epoch {e}" for e in
                                                                 range(1, 100)))]
    for title in ("What the search found per unit of compute", "Intermediate values",
                  "Optimization history: the trials that ran the full budget",
                  "Parallel coordinates", "Slice", "Parameter importance"):
        assert any(t.startswith(title) for t in titles), (title, titles)
    # each figure holds its data: the trials' values are in the page
    values = json.loads((experiment / "summary.json").read_text())["table"]
    assert all(f"{row['val_rmse']:.6g}"[:5] in page for row in values if row.get("val_rmse"))
    # the answer first, and every baseline's decomposition panel
    assert page.index("The question") < page.index("Figures of the search")
    baselines = load_study(experiment / "study.yaml").baselines
    assert {alt.split(" (")[-1].rstrip(")") for alt in parsed.images} >= set(baselines)


def test_importance_counts_searched_trials_and_says_when_it_cannot_tell(monkeypatch):
    import optuna
    from optuna.distributions import FloatDistribution

    from tune.report.quality import param_importance

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    space = {"a": FloatDistribution(0, 1), "b": FloatDistribution(0, 1)}
    study.add_trial(optuna.trial.create_trial(  # a baseline: never counted as searched
        params={"a": 0.9, "b": 0.9}, distributions=space, value=0.1,
        user_attrs={"baseline": "seed_before"}))
    for i in range(2):
        study.add_trial(optuna.trial.create_trial(
            params={"a": 0.1 * i + 0.1, "b": 0.5 - 0.05 * i}, distributions=space, value=1.0))
    experiment = SimpleNamespace(optuna_study=lambda: study)
    assert param_importance(experiment) == (
        "needs >= 3 searched trials that ran the full budget, has 2 (baselines not counted)")
    for i in range(2, 6):  # every searched trial scores the same: nothing to tell apart
        study.add_trial(optuna.trial.create_trial(
            params={"a": 0.1 * i + 0.1, "b": 0.5 - 0.05 * i}, distributions=space, value=1.0))
    assert param_importance(experiment) == (
        "cannot tell the parameters apart from 6 searched trials (PED-ANOVA gave each "
        "about 0.50)")
