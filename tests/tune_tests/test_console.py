"""The console a person reads while trials run: one line per end or resumption, named by the
baseline or the fold run, the best epoch's val RMSE, and a periodic line of running trials."""

import io
from types import SimpleNamespace

from tune.console import ConsoleProgress, trial_name


def trial(trial_id, config, last=None):
    return SimpleNamespace(trial_id=trial_id, config=config, last_result=last or {},
                           path=f"/x/trial_{trial_id}")


def test_trials_are_named_by_baseline_fold_run_or_id():
    assert trial_name(trial("a1", {"baseline": "seed_before"})) == "seed_before"
    assert trial_name(trial("a2", {"run": {"label": "arm-1_fold-0_seed-1"}})) == \
        "arm-1_fold-0_seed-1"
    assert trial_name(trial("a3", {"residual_range": 0.2})) == "a3"


def test_start_end_and_the_best_epoch_in_one_line_each():
    out = io.StringIO()
    console = ConsoleProgress(budget=3, total=2, every_s=1e9, out=out)
    full, stopped = trial("f", {"baseline": "unet"}), trial("s", {})
    for t in (full, stopped):
        console.on_trial_start(0, [full, stopped], t)
    for epoch, value in enumerate([1.2, 0.9, 1.0], 1):
        console.on_trial_result(0, [full, stopped], full,
                                {"training_iteration": epoch, "val_rmse": value})
    console.on_trial_result(0, [full, stopped], stopped,
                            {"training_iteration": 1, "val_rmse": 1.5})
    full.last_result = {"training_iteration": 3, "val_rmse": 1.0}
    stopped.last_result = {"training_iteration": 1, "val_rmse": 1.5}
    console.on_trial_complete(0, [full, stopped], full)
    console.on_trial_complete(0, [full, stopped], stopped)
    assert out.getvalue().splitlines() == [
        "unet: completed, best val RMSE 0.9000 m at epoch 2",  # the best epoch, not the last
        "s: stopped early at epoch 1 (ASHA), best val RMSE 1.5000 m at epoch 1",
    ]
    retried = trial("r", {}, last={"training_iteration": 2})  # from its checkpoint
    console.on_trial_start(0, [retried], retried)
    assert out.getvalue().splitlines()[-1] == "r: goes on from epoch 2"


def test_a_periodic_line_names_each_running_trial_and_its_epoch():
    out = io.StringIO()
    console = ConsoleProgress(budget=16, total=5, every_s=0.0, out=out)
    a, b = trial("a", {"run": {"label": "arm-1_fold-0_seed-1"}}), trial("b", {})
    console.on_trial_start(0, [a, b], a)
    console.on_trial_start(0, [a, b], b)
    console.on_trial_result(0, [a, b], a, {"training_iteration": 5, "val_rmse": 1.0})
    assert out.getvalue().splitlines()[-1] == \
        "  0 of 5 done; running: arm-1_fold-0_seed-1 epoch 5/16 (best 1.000 m); b epoch 0/16"
    console.on_trial_error(0, [a, b], b)
    assert out.getvalue().splitlines()[-1] == "b: error after its retries; see /x/trial_b/error.txt"


def test_the_periodic_line_only_fills_a_silence(monkeypatch):
    out = io.StringIO()
    now = [1000.0]
    monkeypatch.setattr("tune.console.time.monotonic", lambda: now[0])
    console = ConsoleProgress(budget=4, total=2, every_s=60.0, out=out)
    a, b = trial("a", {}), trial("b", {})
    console.on_trial_start(0, [a, b], a)
    console.on_trial_start(0, [a, b], b)
    now[0] += 61  # a minute of silence: one line
    console.on_trial_result(0, [a, b], a, {"training_iteration": 1, "val_rmse": 1.0})
    now[0] += 30
    b.last_result = {"training_iteration": 4, "val_rmse": 1.0}
    console.on_trial_complete(0, [a, b], b)  # an end line
    now[0] += 40  # 70 s after the periodic line, but 40 s after the end line: nothing
    console.on_trial_result(0, [a, b], a, {"training_iteration": 2, "val_rmse": 0.9})
    assert [line.split(";")[0] for line in out.getvalue().splitlines()] == [
        "  0 of 2 done", "b: completed, no result"]

