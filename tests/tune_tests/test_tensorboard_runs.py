"""What `tensorboard --logdir <experiment>` shows for the smoke search: one run per trial named
by its baseline (or trial id), the trainer's grouped scalars and no copy from Ray's logger, and
HParams columns led by best_val_rmse with the baseline and model beside the searched values."""

from helpers import trials
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

GROUPS = {"metrics", "losses", "curriculum", "diagnostics", "perf"}


def test_each_trial_is_one_run_named_by_its_label(smoke_experiment, smoke_spec):
    found = trials(smoke_experiment)
    assert len(found) == smoke_spec.num_samples
    for trial in found:
        assert not list(trial["folder"].glob("events.out.tfevents.*"))  # none from Ray's logger
        runs = {p.parent for p in trial["folder"].rglob("events.out.tfevents.*")}
        trial_id = trial["folder"].name.removeprefix("trial_")
        assert runs == {trial["folder"] / (trial["params"].get("baseline") or trial_id)}


def test_runs_hold_grouped_scalars_the_panel_and_one_hparams_session(smoke_experiment, smoke_spec):
    sessions = {}
    for trial in trials(smoke_experiment):
        (run,) = {p.parent for p in trial["folder"].rglob("events.out.tfevents.*")}
        events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
        scalars = events.Tags()["scalars"]
        unet = trial["config"]["model"] == "unet"  # no decomposition, no diagnostics
        assert {tag.split("/")[0] for tag in scalars} == GROUPS - ({"diagnostics"} if unet
                                                                   else set()), run
        assert not [tag for tag in scalars if tag.startswith("ray/")]
        epochs = [e.step for e in events.Scalars("metrics/val_rmse")]
        assert epochs == [row["training_iteration"] for row in trial["rows"]]
        assert events.Tags()["images"] == ["decomposition/truth|final|base|residual"]
        sessions[run.name] = events.PluginTagToContent("hparams")
    assert set(smoke_spec.baselines) <= set(sessions)
    for name, content in sessions.items():
        start = metadata.parse_session_start_info_plugin_data(
            content[metadata.SESSION_START_INFO_TAG])
        baseline = name if name in smoke_spec.baselines else "sampled"
        assert start.hparams["baseline"].string_value == baseline
        assert start.hparams["model"].string_value == smoke_spec.baselines.get(name, {}).get(
            "model", "base_residual")
    # The U-Net sets no searched value, so it leaves the column list to the others.
    assert metadata.EXPERIMENT_TAG not in sessions["unet"]
    experiment = metadata.parse_experiment_plugin_data(
        sessions["seed_after"][metadata.EXPERIMENT_TAG])
    # the best epoch's value leads, as the summary and the journal rank trials
    assert experiment.metric_infos[0].name.tag == "metrics/best_val_rmse"
    assert {"baseline", "model", *smoke_spec.space} <= {h.name for h in experiment.hparam_infos}
