"""The hooks around training (baseres.hooks), as TensorBoard shows them: grouped scalars and one
HParams session per run, its metric columns led by best_val_rmse, also after a resume."""

import pytest
from helpers import CrashAfterEpoch2, tiny_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from baseres.hooks import PANEL_TAG, TensorBoard, scalar_tag
from baseres.trainer import Trainer


@pytest.mark.parametrize("key, tag", [
    ("val_rmse", "metrics/val_rmse"),
    ("val_delta1", "metrics/val_delta1"),
    ("train_rmse", "metrics/train_rmse"),
    ("mean_map_rmse", "metrics/mean_map_rmse"),
    ("best_val_rmse", "metrics/best_val_rmse"),
    ("train_loss", "losses/train_loss"),
    ("train_recon", "losses/train_recon"),
    ("train_base", "losses/train_base"),
    ("lambda_base", "curriculum/lambda_base"),
    ("base_frozen", "curriculum/base_frozen"),
    ("learning_rate", "curriculum/learning_rate"),
    ("train_sparse", "diagnostics/train_sparse"),
    ("sparse_ratio", "diagnostics/sparse_ratio"),
    ("base_rmse", "diagnostics/base_rmse"),
    ("samples_per_s", "perf/samples_per_s"),
    ("epoch_time_s", "perf/epoch_time_s"),
    ("peak_rss_mb", "perf/peak_rss_mb"),
])
def test_scalar_tags_are_grouped(key, tag):
    assert scalar_tag(key) == tag


HPARAMS = {"baseline": "seed_after", "model": "base_residual", "residual_range": 0.3,
           "base_channel_divisor": 4}


def train_logged(log_dir, data, cfg, hooks=(), checkpoint=None):
    trainer = Trainer(cfg, data=data, hooks=[TensorBoard(log_dir, HPARAMS), *hooks])
    if checkpoint is not None:
        trainer.load_checkpoint(checkpoint)
    trainer.fit(progress=False)
    return trainer


def test_scalars_in_groups_and_hparams_led_by_val_rmse(tmp_path, toy_data):
    train_logged(tmp_path, toy_data, tiny_config(epochs=2))
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0}).Reload()
    scalars = events.Tags()["scalars"]
    assert {tag.split("/")[0] for tag in scalars} == {
        "metrics", "losses", "curriculum", "diagnostics", "perf"}
    assert [e.step for e in events.Scalars("metrics/val_rmse")] == [1, 2]
    assert events.Images(PANEL_TAG)
    content = events.PluginTagToContent("hparams")
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    columns = [m.name.tag for m in experiment.metric_infos]
    assert columns[:3] == ["metrics/best_val_rmse", "metrics/val_rmse", "metrics/val_mae"]
    assert set(columns) <= set(scalars)  # every column has its values
    start = metadata.parse_session_start_info_plugin_data(
        content[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["baseline"].string_value == "seed_after"
    assert start.hparams["residual_range"].number_value == 0.3
    assert {h.name for h in experiment.hparam_infos} == set(HPARAMS)


def test_a_resumed_run_keeps_one_session_and_each_epoch_once(tmp_path, toy_data):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    cfg = tiny_config(epochs=3)
    saved = tmp_path / "checkpoint.pt"
    log_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_logged(log_dir, toy_data, cfg, hooks=[CrashAfterEpoch2(checkpoint=saved)])
    train_logged(log_dir, toy_data, cfg, checkpoint=saved)  # epoch 2 is trained again

    starts = [value for path in log_dir.glob("events.out.tfevents.*")
              for event in EventFileLoader(str(path)).Load()
              for value in event.summary.value if value.tag == metadata.SESSION_START_INFO_TAG]
    assert len(starts) == 1
    events = EventAccumulator(str(log_dir)).Reload()
    assert [e.step for e in events.Scalars("metrics/val_rmse")] == [1, 2, 3]


@pytest.mark.parametrize("panel_epochs, panels", [((), [1, 4]), ((2, 3), [1, 2, 3, 4])])
def test_a_panel_at_the_first_last_and_each_panel_epoch(tmp_path, toy_data, panel_epochs,
                                                        panels):
    """Every image_every (5) epochs, the first and the last, and the epochs a scheduler may stop
    the run at (tune's search trials pass ASHA's)."""
    trainer = Trainer(tiny_config(epochs=4, image_every=5), data=toy_data,
                      hooks=[TensorBoard(tmp_path, panel_epochs=panel_epochs)])
    trainer.fit(progress=False)
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0}).Reload()
    assert [image.step for image in events.Images(PANEL_TAG)] == panels
