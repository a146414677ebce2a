"""The searcher and scheduler on a real journal, driven as Ray's controller drives them,
including Ray's saved state being older than the journal when a driver is killed."""

import json
import shutil

import optuna
import pytest
import ray.cloudpickle as pickle  # as Ray pickles its state
from helpers import journal

from tune.experiment import driving, journal_storage
from tune.searcher import BaselinesRunFull, StudySearcher, StudySearchGenerator, create_study

State = optuna.trial.TrialState


def epochs(searcher, trial_id, values):
    """Report epochs as Ray does: every result but the last to on_trial_result; the last is
    the one on_trial_complete gets (returned)."""
    for step, value in enumerate(values[:-1], 1):
        searcher.on_trial_result(trial_id, {"val_rmse": value, "training_iteration": step})
    return {"val_rmse": values[-1], "training_iteration": len(values)}


def ray_saves(searcher, folder, known):
    """What Ray writes at a save: the searcher's file and, beside it, its trial list (the
    trials it knows, in its experiment state's format); returns the searcher's file."""
    saved = folder / "searcher-state-x.pkl"
    searcher.save(str(saved))
    trial_data = [[json.dumps({"trial_id": t, "status": "RUNNING"}), "{}"] for t in known]
    (folder / "experiment_state-x.json").write_text(json.dumps({"trial_data": trial_data}))
    return saved


@pytest.fixture
def searcher(tmp_path, smoke_spec):
    with driving(tmp_path) as folder:
        create_study(smoke_spec, folder)
        yield StudySearcher(smoke_spec, folder)


def test_baselines_come_first_with_their_names_and_keys(searcher, tmp_path, smoke_spec):
    before, after, unet, sampled = (searcher.suggest(t) for t in "abcd")
    assert before == {**smoke_spec.baselines["seed_before"], "baseline": "seed_before"}
    assert after == {**smoke_spec.baselines["seed_after"], "baseline": "seed_after"}
    assert unet == {"model": "unet", "baseline": "unet"}
    assert "baseline" not in sampled and sampled["model"] == "base_residual"
    assert set(sampled) - {"model"} == set(smoke_spec.space)
    trials = journal(tmp_path)
    assert [t.user_attrs.get("baseline") for t in trials] == ["seed_before", "seed_after",
                                                              "unet", None]
    assert [t.user_attrs["ray_trial_id"] for t in trials] == list("abcd")
    assert trials[2].params == {}  # the U-Net is no point of the searched space
    assert trials[0].params == {k: v for k, v in smoke_spec.baselines["seed_before"].items()
                                if k in smoke_spec.space}
    study = optuna.load_study(study_name=smoke_spec.name, storage=journal_storage(tmp_path))
    assert study.metric_names == ["val_rmse"]


def test_completed_pruned_and_diverged_trials_reach_the_journal_as_such(searcher, tmp_path,
                                                                         smoke_spec):
    max_t = smoke_spec.max_t
    for trial_id in "abc":
        searcher.suggest(trial_id)
    searcher.on_trial_complete("a", epochs(searcher, "a", [3.0, 2.0, 2.5][:max_t]
                                           + [2.4] * (max_t - 3)))
    searcher.on_trial_complete("b", epochs(searcher, "b", [3.5]))  # stopped by ASHA at 1
    searcher.on_trial_complete("c", {"val_rmse": float("nan"), "training_iteration": 1,
                                     "diverged": 1.0, "stop_reason": "diverged: loss nan"})
    a, b, c = journal(tmp_path)
    assert (a.state, a.value) == (State.COMPLETE, 2.0)  # its best epoch, as the summary ranks
    assert len(a.intermediate_values) == max_t and a.user_attrs["stop_reason"] == "completed"
    assert (b.state, b.value, b.intermediate_values) == (State.PRUNED, 3.5, {1: 3.5})
    assert b.user_attrs["stop_reason"] == "early stop"
    assert c.state == State.FAIL and c.user_attrs["stop_reason"] == "diverged: loss nan"


def test_a_resume_closes_trials_ray_never_saved_and_requeues_their_baseline(searcher,
                                                                            tmp_path, smoke_spec):
    searcher.suggest("a")
    saved = ray_saves(searcher, tmp_path, "a")  # Ray saves every few seconds, not per event
    searcher.suggest("b")  # seed_after started; then the driver is killed

    resumed = StudySearcher(smoke_spec, tmp_path)
    resumed.restore(str(saved))
    lost = journal(tmp_path)[1]
    assert lost.state == State.FAIL and lost.user_attrs["lost"] is True
    # seed_after runs again, with its values, after the baseline that was waiting already
    assert resumed.suggest("c") == {"model": "unet", "baseline": "unet"}
    assert resumed.suggest("d") == {**smoke_spec.baselines["seed_after"], "baseline": "seed_after"}
    assert "baseline" not in resumed.suggest("e")  # then the sampler
    running = [t for t in journal(tmp_path) if t.state == State.RUNNING]
    assert [t.user_attrs["ray_trial_id"] for t in running] == ["a", "c", "d", "e"]


def test_a_searcher_file_cut_by_a_kill_restores_from_the_journal(searcher, tmp_path, smoke_spec):
    # A kill while Ray copies its state into storage cut this file; Ray had restarted the
    # whole search when reading it failed. What Ray knew is its trial list.
    for trial_id in "ab":
        searcher.suggest(trial_id)
    saved = ray_saves(searcher, tmp_path, "ab")
    saved.write_bytes(b"\x80\x04\x95")  # the start of a pickle
    resumed = StudySearcher(smoke_spec, tmp_path)
    resumed.restore(str(saved))
    assert resumed.live == {"a": 0, "b": 1}
    resumed.on_trial_complete("b", epochs(resumed, "b", [2.0] * smoke_spec.max_t))
    assert [t.state for t in journal(tmp_path)][:2] == [State.RUNNING, State.COMPLETE]


def test_a_moved_experiment_creates_its_new_trials_in_its_own_folder(tmp_path, smoke_spec):
    from ray.tune.experiment import Experiment

    # Ray saves the experiment the generator creates trials for, folder included: a search
    # resumed from a copy had put its new trials into the original folder.
    original, moved = tmp_path / "runs" / "smoke", tmp_path / "elsewhere" / "smoke"
    with driving(original):
        create_study(smoke_spec, original)
        generator = StudySearchGenerator(smoke_spec, original)
        at_start = pickle.dumps(generator)  # what Ray's tuner.pkl holds and a resume restores
        generator.add_configurations([Experiment("smoke", run=lambda config: None,
                                                 storage_path=str(original.parent))])
        saved = generator.get_state()
    shutil.copytree(original, moved)
    restored = pickle.loads(at_start)  # with no folder: a path in Ray's state is never used
    with pytest.raises(RuntimeError, match="no experiment folder handed"):
        restored.set_state(saved)
    with driving(moved):
        restored.hold(moved)  # what tune.run's resume hands it
        restored.set_state(saved)
        assert restored.next_trial().storage.experiment_fs_path == str(moved)
    with driving(original):  # resumed where it was, it stays there
        resumed = StudySearchGenerator(smoke_spec, original)
        resumed.set_state(saved)
        assert resumed.next_trial().storage.experiment_fs_path == str(original)


def test_a_trial_the_journal_finished_keeps_its_value_when_ray_runs_it_again(searcher,
                                                                             tmp_path, smoke_spec):
    searcher.suggest("a")
    saved = ray_saves(searcher, tmp_path, "a")
    searcher.on_trial_complete("a", epochs(searcher, "a", [2.0] * smoke_spec.max_t))

    resumed = StudySearcher(smoke_spec, tmp_path)
    resumed.restore(str(saved))  # "a" still running in this state: Ray re-runs it
    resumed.on_trial_complete("a", epochs(resumed, "a", [9.0] * smoke_spec.max_t))
    trial = journal(tmp_path)[0]
    assert (trial.state, trial.value) == (State.COMPLETE, 2.0)
    assert set(trial.intermediate_values.values()) == {2.0}


def test_a_moved_experiment_resumes_on_its_own_journal(tmp_path, smoke_spec):
    original, moved = tmp_path / "original", tmp_path / "moved"
    with driving(original):
        create_study(smoke_spec, original)
        searcher = StudySearcher(smoke_spec, original)
        searcher.suggest("a")
        saved = ray_saves(searcher, original, "a")
    shutil.copytree(original, moved)
    with driving(moved):
        resumed = pickle.loads(pickle.dumps(searcher))  # the journal's path is not kept
        resumed.hold(moved)
        resumed.restore(str(moved / saved.name))
        resumed.on_trial_complete("a", epochs(resumed, "a", [2.0] * smoke_spec.max_t))
    assert journal(moved)[0].state == State.COMPLETE
    assert journal(original)[0].state == State.RUNNING  # untouched


class FakeTrial:
    def __init__(self, trial_id, baseline=None):
        self.trial_id, self.config = trial_id, ({"baseline": baseline} if baseline else {})


def test_asha_remembers_its_rungs_after_a_resume(searcher, tmp_path, smoke_spec):
    # grace 1, factor 2: at epoch 1 a trial must be in the better half of the rung to go on
    def scheduler(folder):
        return BaselinesRunFull(smoke_spec.name, folder, time_attr="training_iteration",
                                metric="val_rmse", mode="min", max_t=4, grace_period=1,
                                reduction_factor=2)

    first = scheduler(tmp_path)
    for trial_id, value in (("a", 1.0), ("b", 2.0)):
        searcher.suggest(trial_id)
        first.on_trial_add(None, FakeTrial(trial_id))
        searcher.on_trial_result(trial_id, {"val_rmse": value, "training_iteration": 1})
        first.on_trial_result(None, FakeTrial(trial_id),
                              {"val_rmse": value, "training_iteration": 1})

    resumed = pickle.loads(pickle.dumps(scheduler(tmp_path)))  # as pickled at the start
    resumed.hold(tmp_path)
    searcher.suggest("c")
    resumed.on_trial_add(None, FakeTrial("c"))
    result = {"val_rmse": 3.0, "training_iteration": 1}  # worse than the rung's 1.0 and 2.0
    assert resumed.on_trial_result(None, FakeTrial("c"), result) == "STOP"
    fresh = scheduler(tmp_path / "empty")  # without the journal's rungs it would go on
    fresh.on_trial_add(None, FakeTrial("c"))
    assert fresh.on_trial_result(None, FakeTrial("c"), result) == "CONTINUE"


def test_asha_never_stops_a_baseline_early(searcher, tmp_path, smoke_spec):
    made = BaselinesRunFull(smoke_spec.name, tmp_path, time_attr="training_iteration",
                            metric="val_rmse", mode="min", max_t=4, grace_period=1,
                            reduction_factor=2)
    for trial_id, value in (("a", 1.0), ("b", 1.5)):
        made.on_trial_add(None, FakeTrial(trial_id))
        made.on_trial_result(None, FakeTrial(trial_id), {"val_rmse": value,
                                                          "training_iteration": 1})
    made.on_trial_add(None, FakeTrial("c", baseline="seed_before"))
    worst = {"val_rmse": 9.0, "training_iteration": 1}
    assert made.on_trial_result(None, FakeTrial("c", baseline="seed_before"), worst) == "CONTINUE"
    made.on_trial_add(None, FakeTrial("d"))
    assert made.on_trial_result(None, FakeTrial("d"), worst) == "STOP"


def test_targets_reach_tpe_as_constraints(tmp_path, smoke_spec):
    import dataclasses

    spec = dataclasses.replace(smoke_spec, sampler=smoke_spec.sampler._replace(constraints=True))
    with driving(tmp_path):
        create_study(spec, tmp_path)
        searcher = StudySearcher(spec, tmp_path)
        for trial_id in "abcd":
            searcher.suggest(trial_id)

        def finish(trial_id, rmse, sparse, delta1):
            rows = [{"train_sparse": sparse, "val_delta1": delta1, "training_iteration": step,
                     "val_rmse": rmse + (smoke_spec.max_t - step)}
                    for step in range(1, smoke_spec.max_t + 1)]
            for row in rows[:-1]:
                searcher.on_trial_result(trial_id, row)
            searcher.on_trial_complete(trial_id, rows[-1])  # as Ray: the last result here

        # minimum: train_sparse >= 0.06, val_rmse <= 0.85 x seed_before, val_delta1 >= 0.45
        finish("b", 2.0, 0.05, 0.5)  # seed_after, before seed_before has finished
        finish("a", 1.0, 0.10, 0.5)  # seed_before: its best val_rmse 1.0, in its last epoch
        finish("d", 1.0, 0.10, 0.3)
    trials = journal(tmp_path)
    a, b, d = trials[0], trials[1], trials[3]
    names = ["train_sparse >= 0.06", "val_rmse <= 0.85 x seed_before", "val_delta1 >= 0.45"]
    assert list(b.constraints) == names
    # seed_after finished before seed_before: its relative bound was not judged (met)
    assert list(b.constraints.values()) == pytest.approx([0.01, 0.0, -0.05])
    assert list(a.constraints.values()) == pytest.approx([-0.04, 1.0 - 0.85, -0.05])
    assert list(d.constraints.values()) == pytest.approx([-0.04, 1.0 - 0.85, 0.15])


@pytest.mark.parametrize("grace, factor, max_t", [(1, 4, 3), (3, 2, 16), (10, 3, 100),
                                                  (2, 2.5, 20)])
def test_asha_stops_a_trial_only_at_the_epochs_its_spec_draws_a_panel_at(grace, factor, max_t):
    """Ray's ASHA, given a trial that turns worse than the rung's leader at each epoch in turn:
    the epochs it stops it at are AshaSpec.stop_epochs (where a search trial draws a panel)."""
    from ray.tune.schedulers import ASHAScheduler

    from tune.study.spec import AshaSpec

    stops = set()
    for worse_from in range(1, max_t):
        asha = ASHAScheduler(time_attr="training_iteration", metric="val_rmse", mode="min",
                             max_t=max_t, grace_period=grace, reduction_factor=factor)
        for trial_id, good, bad in (("leader", 1.0, 1.0), ("t", 0.5, 2.0)):
            asha.on_trial_add(None, FakeTrial(trial_id))
            for epoch in range(1, max_t):  # at max_t every trial ends: no early stop
                row = {"val_rmse": bad if epoch >= worse_from else good,
                       "training_iteration": epoch}
                if asha.on_trial_result(None, FakeTrial(trial_id), row) == "STOP":
                    stops.add(epoch)
                    break
    planned = AshaSpec(grace, factor, max_t).stop_epochs()
    assert stops and stops == {epoch for epoch in planned if epoch < max_t}, (stops, planned)
