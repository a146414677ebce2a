import json
import os
import shlex
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
import yaml
from helpers import free_port, get_json, trials

from baseres.hooks import PANEL_TAG
from tune.experiment import JOURNAL_FILE, STUDY_FILE, new_location, placed_line, read_rows
from tune.experiment.location import free_name
from tune.run import main


def test_smoke_search_end_to_end(smoke_experiment, smoke_spec):
    found = trials(smoke_experiment)
    assert len(found) == smoke_spec.num_samples
    by_baseline = {t["params"].get("baseline"): t for t in found}
    assert set(smoke_spec.baselines) <= set(by_baseline)
    # baselines carry their non-searched keys into the trial (Optuna's enqueue would drop them)
    assert by_baseline["unet"]["config"]["model"] == "unet"
    assert by_baseline["seed_before"]["config"]["lambda_base_init"] == 1.5
    assert by_baseline["seed_after"]["config"]["model"] == "base_residual"
    # Ray reused trial workers (bench.fixed_cost), and each trial's own files are in its own
    # folder: its resolved config names it, its metrics.jsonl has the epochs Ray recorded.
    assert len({t["rows"][0]["pid"] for t in found}) < len(found)
    for t in found:
        assert t["config"]["extra"]["trial"] == t["folder"].name
        metrics = read_rows(t["folder"] / "metrics.jsonl")
        assert [m["val_rmse"] for m in metrics] == [r["val_rmse"] for r in t["rows"]]
        assert list(t["folder"].glob("checkpoint_*")), t["folder"]
        iterations = [r["training_iteration"] for r in t["rows"]]
        assert iterations == list(range(1, len(iterations) + 1))  # one row per epoch
        for row in t["rows"]:  # train_rmse in every epoch; decomposition if any
            assert row["train_rmse"] > 0 and "gap" not in row
            assert ("sparse" in row) == (t["config"]["model"] == "base_residual")
    epochs_run = [len(t["rows"]) for t in found]
    assert min(epochs_run) < smoke_spec.scheduler.max_t == max(epochs_run)  # ASHA stopped one
    # ... never a baseline: they are the reference points, at the full budget every time
    assert all(len(t["rows"]) == smoke_spec.scheduler.max_t for t in by_baseline.values()
               if t["params"].get("baseline"))


def test_baselines_ran_first_and_the_journal_agrees(smoke_experiment, smoke_spec):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(smoke_experiment / JOURNAL_FILE)))
    study = optuna.load_study(study_name="smoke", storage=storage)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    done = sorted(study.trials, key=lambda t: t.number)
    assert len(done) == smoke_spec.num_samples
    in_space = [(name, point) for name, point in smoke_spec.baselines.items()
                if "model" not in point]
    for trial, (name, point) in zip(done, in_space):
        assert trial.params == {k: v for k, v in point.items() if k in smoke_spec.space}
        assert trial.user_attrs["baseline"] == name
    # the U-Net is its own model: in the journal without parameters, labelled
    (unet,) = [t for t in done if t.user_attrs.get("baseline") == "unet"]
    assert unet.params == {} and unet.user_attrs["model"] == "unet"
    assert unet.value is not None and unet.intermediate_values
    # baselines and the U-Net ran the full budget; ASHA stopped the sampled trial: PRUNED,
    # every epoch it ran in the journal, its last as its value
    for t in done:
        folder = smoke_experiment / f"trial_{t.user_attrs['ray_trial_id']}"
        values = [r["val_rmse"] for r in read_rows(folder / "result.json")]
        assert t.intermediate_values == dict(enumerate(values, 1))
        if t.user_attrs.get("baseline"):
            assert t.state == optuna.trial.TrialState.COMPLETE and t.value == min(values)
            assert t.user_attrs["stop_reason"] == "completed"
        else:
            assert t.state == optuna.trial.TrialState.PRUNED and t.value == values[-1]
            assert len(values) < smoke_spec.max_t and t.user_attrs["stop_reason"] == "early stop"
    assert study.metric_names == ["val_rmse"]
    ray_ids = {t.user_attrs["ray_trial_id"] for t in done}
    assert ray_ids == {f.name.removeprefix("trial_") for f in smoke_experiment.glob("trial_*")}


def test_ray_keeps_the_search_keys_and_the_loggers_the_whole_record(smoke_experiment, smoke_spec):
    # What Ray holds of each trial (saved in its experiment state) is what the searcher and
    # the scheduler read; result.json, written before, has the trainer's whole record.
    (state,) = sorted(smoke_experiment.glob("experiment_state-*.json"))[-1:]
    saved = {json.loads(trial)["trial_id"]: json.loads(meta)
             for trial, meta in json.loads(state.read_text())["trial_data"]}
    assert len(saved) == smoke_spec.num_samples
    searched = {"epoch", "val_rmse", "train_sparse", "val_delta1"}  # smoke's metric, targets
    for t in trials(smoke_experiment):
        record = set().union(*map(set, read_rows(t["folder"] / "metrics.jsonl")))
        assert {"val_mae", "lambda_recon", "epoch_time_s"} <= record
        assert all(record | {"training_iteration"} <= set(row) for row in t["rows"])
        meta = saved[t["rows"][0]["trial_id"]]
        told = searched & record  # a U-Net has no train_sparse
        assert set(meta["metric_analysis"]) & record == told <= set(meta["last_result"])
        assert not set(meta["last_result"]) & (record - told)


def test_tensorboard_serves_the_smoke_study(smoke_experiment, smoke_spec):
    port = free_port()
    board = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(smoke_experiment),
         "--host", "127.0.0.1", "--port", str(port), "--load_fast", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/data/plugin"
    try:
        deadline = time.time() + 90
        while True:
            try:
                scalar_tags = get_json(f"{base}/scalars/tags")
                image_tags = get_json(f"{base}/images/tags")
                if len(scalar_tags) >= smoke_spec.num_samples and image_tags:
                    break
            except OSError:
                pass
            assert time.time() < deadline, "TensorBoard did not serve the runs in time"
            time.sleep(1)
        run = next(r for r, tags in scalar_tags.items() if "metrics/val_rmse" in tags)
        query = urllib.parse.urlencode({"run": run, "tag": "metrics/val_rmse"})
        points = get_json(f"{base}/scalars/scalars?{query}")
        assert points and all(len(p) == 3 for p in points)  # wall time, step, value
        assert any(PANEL_TAG in tags
                   for tags in image_tags.values())
    finally:
        board.terminate()
        board.wait(timeout=30)


def test_dry_run_prints_the_resolved_study_and_starts_nothing(capsys, tmp_path):
    assert main(["--space", "smoke.yaml", "--dry-run", "--num-samples", "7",
                 "--set", "train.epochs=5", "--storage", str(tmp_path)]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["num_samples"] == 7 and resolved["train"]["epochs"] == 5
    assert resolved["scheduler"]["max_t"] == 5
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv, message", [
    (["--space", "nonexistent_study"], "nonexistent_study"),
    (["--space", "smoke.yaml", "--set", "train.epochs=zero"], "train.epochs"),
    (["--space", "smoke.yaml", "--num-samples", "0"], "num_samples"),
    (["--space", "smoke.yaml", "--gpus-per-trial", "-1"], "gpu"),
    (["--resume", "/"], "not an experiment folder"),
    (["--space", "smoke.yaml", "--bogus"], "unrecognized arguments: --bogus"),
    (["--num-samples", "3"], "one of the arguments --space --resume is required"),
    (["--space", "smoke.yaml", "--name", "../escaped"], "--name"),
    (["--resume", "results/x", "--dry-run", "--num-samples", "9"],
     "cannot be combined with --dry-run, --num-samples"),
    (["--space", "smoke.yaml", "--set", "data.dataset=batvisionv2", "--set",
      "data.root=/nonexistent"], "/nonexistent: data root does not exist"),
])
def test_bad_usage_is_one_line_and_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        sys.exit(main(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["run", "confirm"])
def test_trials_without_their_own_folders_are_refused(capsys, monkeypatch, tmp_path, command):
    from tune.confirm import main as confirm_main

    monkeypatch.setenv("RAY_CHDIR_TO_TRIAL_DIR", "0")
    if command == "run":
        code = main(["--space", "smoke.yaml", "--storage", str(tmp_path)])
    else:
        code = confirm_main([str(tmp_path), "--seeds", "2"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "RAY_CHDIR_TO_TRIAL_DIR=0" in err and "\n" not in err
    assert not list(tmp_path.iterdir())


def test_wandb_without_the_package_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    assert main(["--space", "smoke.yaml", "--wandb", "proj", "--storage", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: --wandb needs the wandb package, but it is not installed "
                   "(pip install wandb)")
    assert list(tmp_path.iterdir()) == []  # the folder it had made is gone


def test_refuses_to_start_over_an_existing_search(smoke_experiment, capsys):
    before = sorted(p.name for p in smoke_experiment.iterdir())
    assert main(["--space", "smoke.yaml", "--storage", str(smoke_experiment.parent),
                 "--name", "smoke"]) == 2
    assert f"{smoke_experiment} already exists" in capsys.readouterr().err
    assert sorted(p.name for p in smoke_experiment.iterdir()) == before
    # without --name the next free name is chosen instead
    assert free_name(str(smoke_experiment.parent), "smoke") == "smoke-2"


@pytest.mark.parametrize("kind", ["file", "folder without study.yaml"])
def test_a_name_taken_by_no_search_is_refused_without_resume_advice(tmp_path, capsys, kind):
    taken = tmp_path / "smoke"
    if kind == "file":
        taken.write_text("notes")
    else:
        taken.mkdir()
    assert main(["--space", "smoke.yaml", "--storage", str(tmp_path), "--name", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: --name smoke: {taken} already exists and holds no search to resume "
                   "(no study.yaml); choose another --name\n")
    assert [p.name for p in tmp_path.iterdir()] == ["smoke"]


def test_an_interrupted_search_in_a_folder_with_a_space_says_a_resume_to_paste(
        tmp_path, capsys, monkeypatch):
    def interrupted(spec, location, *args, **kwargs):
        (location.local / STUDY_FILE).write_text(spec.to_yaml())  # as launch does once started
        raise KeyboardInterrupt

    monkeypatch.setattr("tune.run.launch", interrupted)
    storage = tmp_path / "my runs"
    assert main(["--space", "smoke.yaml", "--storage", str(storage)]) == 130
    hint = capsys.readouterr().err.strip().splitlines()[-1]
    assert shlex.split(hint.split("resume with: ")[1]) == [
        "python", "-m", "tune.run", "--resume", str(storage / "smoke")]


def test_two_searches_started_at_once_never_share_a_folder(tmp_path):
    assert new_location(str(tmp_path), "smoke", chosen=False).name == "smoke"
    assert new_location(str(tmp_path), "smoke", chosen=False).name == "smoke-2"
    with pytest.raises(ValueError, match="smoke already exists"):
        new_location(str(tmp_path), "smoke", chosen=True)


def test_the_first_line_says_where_the_experiment_goes_and_what_took_the_studys_name(tmp_path):
    own = new_location(str(tmp_path), "generalization", chosen=False)
    assert placed_line(own, "generalization") == f"experiment: {tmp_path / 'generalization'}"
    (tmp_path / "generalization").rename(tmp_path / "generalization-20261206-0400")
    (tmp_path / "generalization").symlink_to("generalization-20261206-0400")  # make run's link
    copied = new_location(str(tmp_path), "generalization", chosen=False)
    assert copied.name == "generalization-2"
    assert placed_line(copied, "generalization") == (
        f"experiment: {tmp_path / 'generalization-2'}\n  (the study is named 'generalization'; "
        f"{tmp_path / 'generalization'} is taken: a link to generalization-20261206-0400; "
        "--name chooses another)")


def test_unwritable_storage_fails_before_trials(tmp_path, capsys):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    assert main(["--space", "smoke.yaml", "--storage", str(blocked / "sub")]) == 2
    assert "cannot write there" in capsys.readouterr().err


def test_full_disk_fails_before_trials(tmp_path, capsys, monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setattr("tune.run.shutil.disk_usage",
                        lambda path: SimpleNamespace(total=2**30, used=2**30, free=10 * 2**20))
    assert main(["--space", "smoke.yaml", "--storage", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "MiB free space is needed, but 10 MiB is left" in err
    assert not list(tmp_path.glob("smoke*"))



@pytest.mark.slow
def test_a_local_ray_listens_on_localhost_only(tmp_path):
    script = ("from tune.cluster import keep_ray_on_localhost, start_ray\n"
              "keep_ray_on_localhost()\n"
              "start_ray(None, '.', {'cpu': 1})\n"
              "import ray, psutil  # Ray vendors psutil and puts it on the path\n"
              "print(sorted({n['NodeManagerAddress'] for n in ray.nodes()}))\n"
              "raylets = [p for p in psutil.Process().children(recursive=True)\n"
              "           if p.name() in ('raylet', 'gcs_server')]  # this Ray's, no other\n"
              "assert raylets\n"
              "hosts = {c.laddr.ip.removeprefix('::ffff:') for p in raylets\n"
              "         for c in p.net_connections('tcp') if c.status == 'LISTEN'}\n"
              "print(sorted(hosts))\n")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path, env={**env, "RAY_USAGE_STATS_ENABLED": "0"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    nodes, listening = proc.stdout.strip().splitlines()[-2:]
    assert nodes == "['127.0.0.1']"
    assert listening == "['127.0.0.1']"  # no server of Ray's on a routable address


@pytest.mark.slow
@pytest.mark.parametrize("flag, value, needs", [
    ("--cpus-per-trial", "100000", "cpu=100000, gpu=0"),
    pytest.param("--gpus-per-trial", "0.5", "cpu=1, gpu=0.5", marks=pytest.mark.skipif(
        __import__("torch").cuda.is_available(), reason="this machine has a GPU")),
])
def test_a_trial_no_node_can_hold_is_refused_before_trials(tmp_path, capsys, flag, value,
                                                            needs):
    import ray

    # Ray itself would keep every trial PENDING for ever (seen: --gpus-per-trial 0.5 here)
    ray_before = ray.is_initialized()  # the session's Ray, when an earlier test started it
    assert main(["--space", "smoke.yaml", "--storage", str(tmp_path), flag, value]) == 2
    err = capsys.readouterr().err.strip()  # after the data preparation's progress lines
    assert err.splitlines()[-1].startswith(
        f"error: resources_per_trial: a trial needs {needs} on one node, but no node of this "
        "machine has that")
    assert "Traceback" not in err
    assert not list(tmp_path.iterdir())
    assert ray.is_initialized() == ray_before  # a Ray it started itself is stopped again


@pytest.mark.slow
def test_with_verbose_a_workers_line_reaches_a_pipe_uncoloured(tmp_path):
    """--verbose forwards what Ray's workers print (without it, nothing: test_resume.py), and
    Ray colours its "(worker pid=...)" prefix unless told not to: never into a file or pipe."""
    script = ("import select, sys, ray\n"
              "from tune.cluster import quiet_ray_console, start_ray, stop_ray\n"
              "quiet_ray_console(verbose=True)\n"
              "start_ray(None, '.', {'cpu': 1}, verbose=True)\n"
              "@ray.remote\n"
              "def worker():\n"
              "    print('a line of a worker', flush=True)\n"
              "ray.get(worker.remote())\n"
              "select.select([sys.stdin], [], [], 300)  # until the test has read the line\n"
              "stop_ray()\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        printed = []
        for line in proc.stdout:  # Ray forwards the line within seconds
            printed.append(line)
            if "a line of a worker" in line:
                break
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0, "".join(printed)[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
    assert printed[-1].rstrip("\n").endswith(") a line of a worker"), printed[-5:]
    assert printed[-1].startswith("(worker pid=") and "\x1b[" not in "".join(printed)
