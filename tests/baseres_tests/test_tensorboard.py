"""What a researcher sees in TensorBoard: grouped scalars, one HParams session per run (its
metric columns led by best_val_rmse, also after a resume) and the titled decomposition panel."""

import numpy as np
import pytest
import torch
from helpers import tiny_config
from matplotlib import colormaps
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from baseres.hooks import PANEL_TAG, Hook, TensorBoard, scalar_tag
from baseres.trainer import Trainer
from baseres.viz import DEPTH_CMAP, RESIDUAL_CMAP, TILE_PX, decomposition_panel


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
    trainer = Trainer(cfg, None, data=data, hooks=[TensorBoard(log_dir, HPARAMS), *hooks])
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

    class CrashAfterEpoch2(Hook):
        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 1:
                trainer.save_checkpoint(saved)
            if record["epoch"] == 2:
                raise KeyboardInterrupt

    log_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_logged(log_dir, toy_data, cfg, hooks=[CrashAfterEpoch2()])
    train_logged(log_dir, toy_data, cfg, checkpoint=saved)  # epoch 2 is trained again

    starts = [value for path in log_dir.glob("events.out.tfevents.*")
              for event in EventFileLoader(str(path)).Load()
              for value in event.summary.value if value.tag == metadata.SESSION_START_INFO_TAG]
    assert len(starts) == 1
    events = EventAccumulator(str(log_dir)).Reload()
    assert [e.step for e in events.Scalars("metrics/val_rmse")] == [1, 2, 3]


def near(image: np.ndarray, rgb: np.ndarray, tolerance: int = 6) -> np.ndarray:
    return (np.abs(image.astype(int) - rgb).max(axis=-1) <= tolerance)


def colour(cmap: str, at: float) -> np.ndarray:
    return (np.array(colormaps[cmap](at)[:3]) * 255).round().astype(int)


def panel_inputs(with_base: bool = True):
    """Depth 6 m everywhere (half of 12); residual -0.5 | 0 | +0.5 m in vertical thirds."""
    size = 33
    depth = torch.full((2, 1, size, size), 6.0)
    outputs = {"final": depth.clone()}
    if with_base:
        residual = torch.zeros_like(depth)
        residual[..., :11], residual[..., 22:] = -0.5, 0.5
        outputs.update(base=depth.clone(), residual=residual)
    return outputs, depth


def test_panel_tiles_are_large_and_residual_zero_is_white():
    outputs, gt = panel_inputs()
    image = decomposition_panel(outputs, gt, max_depth=12.0, residual_limit=3.6)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    blue, red = near(image, colour(RESIDUAL_CMAP, 0.0)), near(image, colour(RESIDUAL_CMAP, 1.0))
    rows = np.flatnonzero(blue.any(axis=1))
    row = int(rows[rows.size // 2])  # mid-figure: through a residual tile, not the bar's end
    blue_x, red_x = np.flatnonzero(blue[row]), np.flatnonzero(red[row])
    third = blue_x.size
    assert 3 * third >= 0.95 * TILE_PX  # 33 px tiles drawn about TILE_PX wide
    middle = image[row, (blue_x.max() + red_x.min()) // 2]
    assert middle.min() >= 235  # 0 m of residual is (near) white on the diverging map
    assert abs(red_x.size - third) <= 2 and red_x.min() > blue_x.max()
    # Four depth tiles' worth of 6 m: truth, final and base on one scale.
    assert near(image, colour(DEPTH_CMAP, 0.5), 3).sum() >= 3 * 2 * (0.95 * TILE_PX) ** 2


@pytest.mark.parametrize("cmap, with_base", [(DEPTH_CMAP, True), (RESIDUAL_CMAP, True),
                                             (DEPTH_CMAP, False)])
def test_panel_has_a_colour_bar_per_scale(cmap, with_base):
    outputs, gt = panel_inputs(with_base)
    image = decomposition_panel(outputs, gt, max_depth=12.0, residual_limit=3.6)
    # The tiles hold three values only; shades between them are drawn by a colour bar alone.
    for at in (0.2, 0.8):
        assert near(image, colour(cmap, at), 3).sum() >= 20, (cmap, at)


def test_a_unet_panel_has_no_residual():
    outputs, gt = panel_inputs(with_base=False)
    image = decomposition_panel(outputs, gt, max_depth=12.0, residual_limit=3.6)
    assert not near(image, colour(RESIDUAL_CMAP, 0.0)).any()
    assert not near(image, colour(RESIDUAL_CMAP, 0.8), 3).any()
