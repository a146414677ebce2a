"""Weights & Biases without an API key: both the search (--wandb) and baseres.train
(--use_wandb) log offline, and the offline run holds every epoch's metrics."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import RUN_LIMIT_S

from tune.experiment import read_rows
from tune.study import load_study

pytest.importorskip("wandb")
pytestmark = pytest.mark.slow  # a training run and a search, each in its own process

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 2


def offline_history(run_folder: Path) -> list[dict]:
    """The rows logged to an offline run, read from its run-<id>.wandb record log (wandb ships
    no reader for it any more): a 7-byte file header, then LevelDB log chunks (crc 4 bytes,
    length 2, type 1: full 1, first 2, middle 3, last 4) in 32 KiB blocks, each record a
    wandb_internal_pb2.Record."""
    from wandb.proto import wandb_internal_pb2

    (log,) = run_folder.glob("run-*.wandb")
    data, block = log.read_bytes(), 32768
    position, pending, rows = 7, b"", []
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header: padding
            position += block - position % block
            continue
        length, kind = struct.unpack_from("<HB", data, position + 4)
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record.FromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({"/".join(item.nested_key) or item.key: json.loads(item.value_json)
                             for item in record.history.item})
    return rows


def offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    # HOME: no `wandb login` of the user's (~/.netrc) reaches the run
    return {**env, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}


def assert_logged(run_folder: Path, metrics_file: Path, step_key: str) -> None:
    epochs = read_rows(metrics_file)
    logged = offline_history(run_folder)
    assert [row[step_key] for row in logged] == [e["epoch"] for e in epochs] == [1, 2]
    for row, epoch in zip(logged, epochs):  # the whole record, not only the search's keys
        assert {k: row[k] for k in ("val_rmse", "val_mae", "lambda_recon")} == pytest.approx(
            {k: epoch[k] for k in ("val_rmse", "val_mae", "lambda_recon")})


def test_baseres_train_logs_offline_without_a_key(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "baseres.train", "--epochs", str(EPOCHS), "--image_size", "32",
         "--base_channels", "8", "--batch_size", "16", "--use_wandb", "--out", str(out)],
        capture_output=True, text=True, timeout=RUN_LIMIT_S, cwd=tmp_path,
        env=offline_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_folder,) = (out / "wandb").glob("offline-run-*")
    assert_logged(run_folder, out / "metrics.jsonl", "epoch")


def test_a_search_logs_offline_without_a_key(tmp_path):
    study = yaml.safe_load((REPO / "search_spaces" / "smoke.yaml").read_text())
    baseline = "seed_before"  # the smoke study's targets refer to it
    study.update(name="wandb", num_samples=1, baselines={baseline: study["baselines"][baseline]},
                 scheduler={"type": "none"})
    study["train"]["epochs"] = EPOCHS
    (tmp_path / "wandb.yaml").write_text(yaml.safe_dump(study))
    load_study(tmp_path / "wandb.yaml")  # a valid study, or the test would test nothing
    proc = subprocess.run(
        [sys.executable, "-m", "tune.run", "--space", str(tmp_path / "wandb.yaml"), "--storage",
         str(tmp_path / "results"), "--wandb", "offline-test"],
        capture_output=True, text=True, timeout=RUN_LIMIT_S, cwd=REPO, env=offline_env(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "No WandB API key" not in proc.stderr
    (trial,) = (tmp_path / "results" / "wandb").glob("trial_*")
    (run_folder,) = (trial / "wandb").glob("offline-run-*")
    assert_logged(run_folder, trial / "metrics.jsonl", "training_iteration")
