"""The embedded default must carry signal: a briefly trained default model beats the
mean-depth predictor (the per-pixel mean of the valid training depth maps) by >= 30 %."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import LEARNABILITY_LIMIT_S, batch_metrics

from baseres.config import TrainConfig
from baseres.data.cache import load_split
from tune.experiment import read_rows

EPOCHS = 8


def mean_map_rmse(cfg: TrainConfig) -> float:
    train, val = load_split(cfg, "train", progress=False), load_split(cfg, "val", progress=False)
    depth = np.asarray(train.depth)
    valid = depth > 0
    mean_map = torch.from_numpy((depth * valid).sum(0) / np.maximum(valid.sum(0), 1))
    truth = torch.from_numpy(np.array(val.depth))  # a writable copy of the read-only map
    return batch_metrics(mean_map[None].expand_as(truth), truth, cfg.max_depth)["rmse"]


@pytest.mark.slow
def test_default_model_beats_the_mean_depth_map_by_30_percent(tmp_path):
    # The CLI with no data flags: generates the default synthetic set on first use.
    proc = subprocess.run([sys.executable, "-m", "baseres.train", "--epochs", str(EPOCHS),
                           "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=LEARNABILITY_LIMIT_S)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = read_rows(tmp_path / "run" / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    best = min(r["val_rmse"] for r in rows)
    baseline = mean_map_rmse(TrainConfig())
    print(f"default model best val RMSE {best:.3f} m vs mean depth map {baseline:.3f} m "
          f"(ratio {best / baseline:.3f})")
    assert best <= 0.70 * baseline
