"""Stopping a search at any point and resuming it: SIGTERM, Ctrl-C twice, SIGKILL, a moved
folder, a second driver, a kill before Ray saved anything."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import optuna
import yaml
from helpers import RUN_LIMIT_S, copy_experiment, journal, reaped, trials, wait_for

from tune.confirm import main as confirm_main
from tune.evaluate import main as evaluate_main
from tune.experiment import JOURNAL_FILE, STUDY_FILE, driving, read_rows
from tune.run import main
from tune.searcher import create_study

ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
EPOCHS = 4


def driver(*args):
    return subprocess.Popen([sys.executable, "-m", "tune.run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV,
                            start_new_session=True)


def no_worker_lines(printed: str) -> bool:
    """Whether nothing Ray's workers print reached the console, as without --verbose (Ray
    forwards it as "(train_trial pid=...) ..." or "(fold_trial pid=...) ...", coloured, up
    to the driver's exit)."""
    return "\x1b[" not in printed and not re.search(r"\(\w+ pid=\d+", printed)


def checkpoints(experiment):
    return len(list(experiment.glob("trial_*/checkpoint_*")))


def stop(process, signals, experiment, more: int) -> str:
    """Wait for `more` new checkpoints, send the signals half a second apart, return what
    the driver printed by its exit."""
    seen = checkpoints(experiment)
    with reaped(process):
        wait_for(lambda: checkpoints(experiment) >= seen + more, RUN_LIMIT_S, "checkpoints")
        for number in signals:
            os.killpg(process.pid, number) if number == signal.SIGKILL else process.send_signal(
                number)
            time.sleep(0.5)
        output, _ = process.communicate(timeout=RUN_LIMIT_S)
    return output or ""


def test_a_search_stopped_every_way_then_moved_finishes_as_one_search(ray_session, tmp_path,
                                                                       smoke_spec):
    experiment = tmp_path / "stopped"
    first = driver("--space", "smoke.yaml", "--storage", str(tmp_path), "--name", "stopped",
                   "--max-concurrent", "1", "--set", f"train.epochs={EPOCHS}")
    printed = stop(first, [signal.SIGTERM], experiment, 2)
    # the resume command is the last line (whole, on a line of its own when the line would
    # pass 120 columns), no summary scrolls it away
    assert printed.strip().splitlines()[-1].endswith(
        f"python -m tune.run --resume {experiment}"), printed[-3000:]
    assert " ".join(printed.split()).endswith(
        f"resume with: python -m tune.run --resume {experiment}"), printed[-3000:]
    assert "Traceback" not in printed and "Tuner.restore" not in printed
    assert "Configuration for experiment" not in printed  # Ray's own box: off without --verbose

    second = driver("--resume", str(experiment))
    printed = stop(second, [signal.SIGINT, signal.SIGINT], experiment, 1)  # Ctrl-C twice
    assert second.returncode != 0 and "Traceback" not in printed, printed[-3000:]
    assert printed.strip().splitlines()[-1].endswith(
        f"resume with: python -m tune.run --resume {experiment}"), printed[-3000:]
    assert no_worker_lines(printed), printed[-3000:]  # its restored trials said nothing

    third = driver("--resume", str(experiment))
    stop(third, [signal.SIGKILL], experiment, 1)  # the driver and its Ray, no clean-up
    before = {t["folder"].name: t["rows"] for t in trials(experiment)}
    original_journal = (experiment / JOURNAL_FILE).read_bytes()
    original_trials = sorted(p.name for p in experiment.glob("trial_*"))

    moved = copy_experiment(experiment, tmp_path / "elsewhere")
    last = driver("--resume", str(moved))
    printed = stop(last, [], moved, 0)  # no signal: to its end
    assert last.returncode == 0, printed[-3000:]
    assert "# Summary of smoke" in printed
    assert no_worker_lines(printed), printed[-3000:]
    assert (experiment / JOURNAL_FILE).read_bytes() == original_journal  # the copy's own
    assert sorted(p.name for p in experiment.glob("trial_*")) == original_trials  # and trials

    done = trials(moved)
    assert len(done) == smoke_spec.num_samples
    for t in done:
        iterations = [r["training_iteration"] for r in t["rows"]]
        assert iterations == list(range(1, len(iterations) + 1)), t["folder"]  # no row twice
        metrics = [r["epoch"] for r in read_rows(t["folder"] / "metrics.jsonl")]
        assert metrics == iterations, t["folder"]  # the trainer's own file lost nothing
        earlier = before.get(t["folder"].name, [])
        if earlier and list((experiment / t["folder"].name).glob("checkpoint_*")):
            assert t["rows"][:len(earlier) - 1] == earlier[:len(earlier) - 1]  # continued
        name = t["params"].get("baseline")
        if name:  # a baseline's trial runs the baseline's values, nothing sampled
            assert {k: t["config"][k] for k in smoke_spec.baselines[name]} == \
                smoke_spec.baselines[name], t["folder"]
    assert sorted(t["params"].get("baseline") or "" for t in done) == sorted(
        [*smoke_spec.baselines, ""])

    finished = [t for t in journal(moved) if t.state.is_finished() and not
                t.user_attrs.get("lost")]
    assert len(finished) == smoke_spec.num_samples
    assert all(t.state == optuna.trial.TrialState.FAIL for t in journal(moved)
               if t.user_attrs.get("lost"))
    assert not [t for t in journal(moved) if not t.state.is_finished()]
    ray_ids = {t.user_attrs["ray_trial_id"] for t in finished}
    assert ray_ids == {t["rows"][0]["trial_id"] for t in done}


def test_a_budget_in_epochs_buys_trials_and_a_resume_spends_only_what_is_left(ray_session,
                                                                            tmp_path):
    experiment = tmp_path / "budget"
    budget = 21  # the 3 baselines' 3 x 3 epochs, then 12 for searched trials
    first = driver("--space", "smoke.yaml", "--storage", str(tmp_path), "--name", "budget",
                   "--set", "num_samples=null", "--budget-epochs", str(budget))
    stop(first, [signal.SIGKILL], experiment, 4)  # the driver and its Ray, mid-search
    assert main(["--resume", str(experiment)]) == 0
    found = journal(experiment)
    spent = sum(max(t.intermediate_values, default=0) for t in found)
    # no new trial once the budget is spent; the ones running then finish (2 at a time, at
    # most 3 epochs each), whatever the kill made the resume run again
    assert budget <= spent <= budget + 2 * 3, spent
    searched = [t for t in found if t.state.is_finished() and not t.user_attrs.get("baseline")
                and not t.user_attrs.get("lost")]
    assert len(searched) >= 4  # 12 epochs: 4 full trials, more where ASHA stopped some
    summary = yaml.safe_load((experiment / "summary.json").read_text())
    assert (summary["budget"]["epochs"], summary["budget"]["epochs_spent"]) == (budget, spent)
    assert summary["budget"]["ended"].startswith("epoch budget spent")


def test_a_search_stopped_before_ray_saved_its_state_starts_over(ray_session, tmp_path, smoke_spec):
    experiment = tmp_path / "early"
    experiment.mkdir()
    study = {**yaml.safe_load(smoke_spec.to_yaml()), "num_samples": 2, "baselines": {},
             "targets": {}, "scheduler": {"type": "none"}}
    study["train"]["epochs"] = 1
    (experiment / STUDY_FILE).write_text(yaml.safe_dump(study))
    (experiment / "tuner.pkl").write_bytes(b"")  # Ray's first file, and nothing after it
    assert main(["--resume", str(experiment)]) == 0
    assert len(trials(experiment)) == 2
    assert sum(t.state.is_finished() for t in journal(experiment)) == 2


def test_one_experiment_has_one_driver(tmp_path, capsys, smoke_spec):
    held = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from tune.experiment import driving\n"
         f"with driving('{tmp_path}'):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert held.stdout.readline().strip() == "held"
        (tmp_path / STUDY_FILE).write_text(smoke_spec.to_yaml())
        (tmp_path / "tuner.pkl").write_bytes(b"")
        (tmp_path / "experiment_state-x.json").write_text("{}")
        assert main(["--resume", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path}: another command is working on this experiment (tune.run, pid " \
               f"{held.pid}" in err and "\n" not in err.strip()
        # the test split is read once, after the search: never while it runs
        assert evaluate_main([str(tmp_path), "--split", "test"]) == 2
        assert f"(tune.run, pid {held.pid}" in capsys.readouterr().err
        assert not (tmp_path / "evaluation-test.json").exists()
        assert confirm_main([str(tmp_path), "--seeds", "2"]) == 2
        assert f"(tune.run, pid {held.pid}" in capsys.readouterr().err
    finally:
        held.kill()
        held.wait()
    with driving(tmp_path):  # the kernel dropped the lock with its process
        pass


def test_a_resume_beside_a_driver_in_its_question_deletes_nothing(tmp_path, capsys,
                                                                  smoke_spec):
    """A driver in the question's runs (its journal made, no experiment_state yet, the shape
    a resume starts the search over from): a second driver is refused before it deletes
    anything."""
    (tmp_path / STUDY_FILE).write_text(smoke_spec.to_yaml())
    with driving(tmp_path):  # the running driver
        create_study(smoke_spec, tmp_path)
        (tmp_path / "tuner.pkl").write_bytes(b"Ray's first file")
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        assert main(["--resume", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path}: another command is working on this experiment (tune.run, pid " \
               f"{os.getpid()}" in err and "\n" not in err.strip()
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_study_edited_during_the_question_is_refused_on_resume(question_study, tmp_path,
                                                                capsys, monkeypatch):
    """The launch up to the question's runs, no data or Ray (the folds as listed), stopped
    there; then study.yaml edited."""
    def stopped_in_the_question(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("tune.run.question_plan", lambda spec: spec.question.folds)
    monkeypatch.setattr("tune.run.prepare_data", lambda spec, folds=(): None)
    monkeypatch.setattr("tune.run.start_ray", lambda *args: None)
    monkeypatch.setattr("tune.question.runs.answer_question", stopped_in_the_question)
    experiment = tmp_path / "q"
    assert main(["--space", str(question_study), "--storage", str(tmp_path), "--name",
                 "q"]) == 130
    study = experiment / STUDY_FILE
    study.write_text(study.read_text().replace("epochs: 3", "epochs: 5"))
    before = {p.name: p.read_bytes() for p in experiment.iterdir()}
    capsys.readouterr()
    assert main(["--resume", str(experiment)]) == 2
    err = capsys.readouterr().err
    assert f"{study}: edited since the search began (train: " in err, err
    assert "\n" not in err.strip()
    assert {p.name: p.read_bytes() for p in experiment.iterdir()} == before


def test_an_interrupt_before_the_search_starts_leaves_nothing(tmp_path, capsys, monkeypatch):
    def interrupted(spec, folds=()):
        raise KeyboardInterrupt

    monkeypatch.setattr("tune.run.prepare_data", interrupted)
    assert main(["--space", "smoke.yaml", "--storage", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert "interrupted; the search had not started: nothing was kept" in err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


def test_a_disk_running_full_stops_the_search_cleanly_and_it_resumes(ray_session, tmp_path,
                                                                     capsys, monkeypatch):
    from types import SimpleNamespace

    real = shutil.disk_usage
    experiment = tmp_path / "full"

    def filling(path):  # plenty until the first checkpoint is written, then 10 MiB
        free = 10 * 2**20 if list(experiment.glob("trial_*/checkpoint_*")) else 2**40
        return SimpleNamespace(total=2**41, used=2**41 - free, free=free)

    monkeypatch.setattr("shutil.disk_usage", filling)
    argv = ["--space", "smoke.yaml", "--storage", str(tmp_path), "--name", "full",
            "--num-samples", "2", "--max-concurrent", "1", "--set", "baselines={}",
            "--set", "targets={}", "--set", "scheduler.type=none",
            "--set", f"train.epochs={EPOCHS}"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert (f"error: {experiment}: 10 MiB free space is left, below the 200 MiB a search "
            "needs: stopping it; free space, then resume") in err and "Traceback" not in err
    assert len(trials(experiment)) < 2 or min(len(t["rows"]) for t in trials(experiment)) \
        < EPOCHS

    monkeypatch.setattr("shutil.disk_usage", real)  # space freed
    assert main(["--resume", str(experiment)]) == 0
    done = trials(experiment)
    assert [len(t["rows"]) for t in done] == [EPOCHS, EPOCHS]
    for t in done:
        assert [r["training_iteration"] for r in t["rows"]] == list(range(1, EPOCHS + 1))


def test_a_copy_without_rays_state_is_refused_and_kept_whole(smoke_experiment, tmp_path, capsys):
    copy = copy_experiment(smoke_experiment, tmp_path, "copy")
    for state in copy.glob("experiment_state-*.json"):
        state.unlink()
    journal_before = (copy / JOURNAL_FILE).read_bytes()
    folders_before = sorted(p.name for p in copy.glob("trial_*"))
    assert main(["--resume", str(copy)]) == 2
    err = capsys.readouterr().err
    assert "trials with results are here but not Ray's state" in err
    assert "\n" not in err.strip()
    assert (copy / JOURNAL_FILE).read_bytes() == journal_before  # the journal is untouched
    assert sorted(p.name for p in copy.glob("trial_*")) == folders_before


def test_an_edited_study_file_is_refused_on_resume(smoke_experiment, tmp_path, capsys, smoke_spec):
    copy = copy_experiment(smoke_experiment, tmp_path, "copy")
    study = copy / STUDY_FILE
    study.write_text(study.read_text().replace(f"num_samples: {smoke_spec.num_samples}",
                                               f"num_samples: {smoke_spec.num_samples + 2}"))
    before = sorted(p.name for p in copy.iterdir())
    assert main(["--resume", str(copy)]) == 2
    err = capsys.readouterr().err
    assert f"edited since the search began (num_samples: {smoke_spec.num_samples} -> " \
           f"{smoke_spec.num_samples + 2})" in err and "\n" not in err.strip()
    assert sorted(p.name for p in copy.iterdir()) == before
