import json
import math
import shutil
from pathlib import Path

import pytest

from tune.space import load_study
from tune.summary import (
    TrialSummary,
    boundary_flags,
    build_summary,
    curve_data,
    in_band,
    isolation_table,
    judge_targets,
    main,
    param_plot_data,
    stop_reason,
)

SMOKE = load_study("smoke.yaml")


def fake(trial_id="t", status="TERMINATED", rows=None, error="", **params) -> TrialSummary:
    rows = rows if rows is not None else [
        {"training_iteration": 1, "val_rmse": 2.0, "val_delta1": 0.3, "sparse": 0.25}]
    trial = TrialSummary(trial_id, Path(trial_id), params, rows, status, error)
    finite = [r for r in rows if math.isfinite(r.get("val_rmse", math.nan))]
    trial.best = min(finite, key=lambda r: r["val_rmse"]) if finite else None
    return trial


@pytest.mark.parametrize("value, band, expected", [
    (0.2, (0.2, 0.3), True), (0.3, (0.2, 0.3), True), (0.25, (0.2, 0.3), True),
    (0.1999, (0.2, 0.3), False), (0.3001, (0.2, 0.3), False),
    (2.2, (None, 2.2), True), (2.2001, (None, 2.2), False),
    (0.45, (0.45, None), True), (0.4499, (0.45, None), False),
    (math.nan, (None, 2.2), False), (math.inf, (0.1, None), False),
])
def test_target_bands_are_inclusive_at_their_edges(value, band, expected):
    assert in_band(value, band) is expected


def test_targets_judged_metric_by_metric():
    trial = fake(rows=[{"training_iteration": 1, "val_rmse": 1.8, "val_delta1": 0.5,
                        "sparse": 0.15}])
    verdicts = {(c.level, c.metric): c.passed for c in judge_targets(trial, SMOKE.targets)}
    assert verdicts == {("minimum", "sparse"): True, ("minimum", "val_rmse"): True,
                        ("minimum", "val_delta1"): True, ("ideal", "sparse"): False,
                        ("ideal", "val_rmse"): True, ("ideal", "val_delta1"): False}
    text = [str(c) for c in judge_targets(trial, SMOKE.targets)]
    assert "sparse 0.15 in [0.2, 0.3] ideal: fail" in text


@pytest.mark.parametrize("params, flagged", [
    ({"residual_range": 0.1 + 0.4 * 0.09}, {("residual_range", "low")}),
    ({"residual_range": 0.1 + 0.4 * 0.11}, set()),
    ({"residual_range": 0.5 - 0.4 * 0.05}, {("residual_range", "high")}),
    # log range 0.3..3: 10 % in log space is a factor 10**0.1 = 1.26 from an end
    ({"lambda_base": 0.3 * 1.2}, {("lambda_base", "low")}),
    ({"lambda_base": 0.3 * 1.3}, set()),
    ({"lambda_base": 3.0 / 1.2}, {("lambda_base", "high")}),
    ({"warmup_epochs": 10}, {("warmup_epochs", "high")}),
    ({"base_channel_divisor": 8}, set()),  # categorical: no range to widen
])
def test_boundary_flags(params, flagged):
    flags = boundary_flags(fake(**params), SMOKE)
    assert {(f.param, f.side) for f in flags} == flagged


def test_isolation_table_takes_the_best_base_residual_trial_per_divisor():
    def row(v):
        return [{"training_iteration": 1, "val_rmse": v, "val_delta1": 0.4, "sparse": 0.2}]

    trials = [fake("a", rows=row(1.5), base_channel_divisor=4),
              fake("b", rows=row(1.2), base_channel_divisor=4),
              fake("c", rows=row(0.9), base_channel_divisor=4, model="unet"),  # other model
              fake("d", rows=row(1.7), base_channel_divisor=1)]
    table = {r.value: r for r in isolation_table(trials, SMOKE)}
    assert (table[4].trial_id, table[4].val_rmse, table[4].trials) == ("b", 1.2, 2)
    assert table[1].trial_id == "d"
    assert table[2].trial_id is None and math.isnan(table[2].val_rmse)


@pytest.mark.parametrize("trial, reason", [
    (fake(rows=[{"val_rmse": 2.0}] * 3), "completed"),
    (fake(rows=[{"val_rmse": 2.0}]), "ASHA stop"),
    (fake(status="RUNNING", rows=[{"val_rmse": 2.0}]), "running"),
    (fake(status="ERROR", error="OSError: disk full", rows=[{"val_rmse": 2.0}]),
     "error: OSError: disk full"),
    (fake(rows=[{"val_rmse": 2.0}, {"val_rmse": math.nan, "diverged": 1.0,
                                    "stop_reason": "diverged: loss became nan"}]),
     "diverged: loss became nan"),
])
def test_stop_reasons(trial, reason):
    assert stop_reason(trial, max_t=3, scheduler="asha") == reason


def test_summary_of_the_smoke_search(smoke_experiment, tmp_path):
    experiment = tmp_path / "smoke"
    shutil.copytree(smoke_experiment, experiment)
    assert main([str(experiment)]) == 0
    summary = json.loads((experiment / "summary.json").read_text())
    assert len(summary["table"]) == SMOKE.num_samples
    assert set(summary["baselines"]) == set(SMOKE.baselines)
    ranked = [row["val_rmse"] for row in summary["table"]]
    assert ranked == sorted(ranked)  # best first
    assert {row["stopped"] for row in summary["table"]} <= {"completed", "ASHA stop"}
    assert "ASHA stop" in {row["stopped"] for row in summary["table"]}
    assert len(summary["best"]["targets"]) == 6
    for name in ("summary.md", "plot_params.png", "plot_isolation.png", "plot_curves.png"):
        assert (experiment / name).stat().st_size > 0, name
    assert "## Isolation: base_channel_divisor" in (experiment / "summary.md").read_text()


def test_plot_data_is_plain_and_complete(smoke_experiment):
    from tune.summary import load_trials

    trials = load_trials(smoke_experiment, SMOKE)
    points = param_plot_data(trials, SMOKE)
    assert set(points) == set(SMOKE.space)
    assert all(len(p) == SMOKE.num_samples for p in points.values())
    assert any(p.stopped for p in points["residual_range"] + points["lambda_base"])
    curves = curve_data(trials, 2)
    assert len(curves) == 2 and curves[0].val_rmse[-1] >= min(curves[0].val_rmse)


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
    with pytest.raises(SystemExit) as info:
        main([str(experiment), "--top", "0"])
    assert info.value.code == 2 and "`top >= 1` must hold" in capsys.readouterr().err


def test_build_summary_on_a_running_search_tolerates_partial_rows(smoke_experiment, tmp_path):
    experiment = tmp_path / "partial"
    shutil.copytree(smoke_experiment, experiment)
    first = sorted(experiment.glob("trial_*"))[0] / "result.json"
    first.write_text(first.read_text() + '{"training_iteration": 9, "val_r')  # cut mid-write
    assert build_summary(experiment)["trials"] == SMOKE.num_samples
