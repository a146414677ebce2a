"""Plain helpers the tests import (``from helpers import ...``); fixtures live in conftest.py."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml

from baseres.config import TrainConfig
from baseres.data.cache import SplitArrays
from baseres.hooks import Hook
from tune.experiment import TrialRecord, journal_storage, read_rows
from tune.question.answer import PlaceRecord
from tune.study import StudyError, load_study

FIXTURE_ROOT = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "batvision_v2"
# How long a child process that trains or searches may run before a test calls it hung.
# Generous on purpose: with three suites at once on 2 cores, a 2-epoch smoke search ran
# past 10 minutes (its one trial's first result came 285 s after the trial started); the
# suite's own cap is 90 minutes.
RUN_LIMIT_S = 1800
# The learnability check trains the default model for 8 epochs: 60x its quiet time.
LEARNABILITY_LIMIT_S = 3600


def batch_metrics(pred, gt, max_depth: float) -> dict[str, float]:
    """The depth metrics of one batch as the trainer scores it: per image over gt > 0, then
    averaged over the images with a valid pixel (0 where none has one)."""
    from baseres.metrics import MetricAccumulator

    scores = MetricAccumulator(max_depth, lowpass_kernel=1)
    scores.update({"final": pred}, gt)
    return scores.compute()


def tiny_config(**changes) -> TrainConfig:
    """A model small enough to train in well under a second per epoch."""
    values = dict(base_channels=8, image_size=32, batch_size=8, epochs=2, progress=False,
                  image_every=1, num_threads=1)
    values.update(changes)
    return TrainConfig(**values)


def random_split(n: int, size: int, seed: int = 0) -> SplitArrays:
    """Learnable toy data: depth is a smooth function of the feature image, with holes."""
    rng = np.random.default_rng(seed)
    features = rng.random((n, 2, size, size), dtype=np.float32)
    level = features.mean(axis=(1, 2, 3), keepdims=True)[:, :1] * 10.0 + 1.0
    depth = np.broadcast_to(level, (n, 1, size, size)).astype(np.float32).copy()
    depth[:, :, : size // 8, : size // 8] = 0.0  # an invalid corner, as real sensors have
    return SplitArrays(features=features, depth=depth)


def make_v2_root(root: Path, per_split: int = 2, location: str = "Room_A",
                 rate: int = 44100, frames: int = 20000) -> Path:
    """A tiny data set in the released V2 layout: noise WAVs and random uint16 depth."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    header = ("index,time,left audio time,right audio time,audio path,audio file name,"
              "camera time,camera path,camera file name,depth time,depth path,depth file name")
    for sub in ("audio", "depth"):
        (root / location / sub).mkdir(parents=True, exist_ok=True)
    index = 0
    for split in ("train", "val", "test"):
        rows = [header]
        for _ in range(per_split):
            audio = (rng.standard_normal((frames, 2)) * 2**28).astype(np.int32)
            sf.write(root / location / "audio" / f"audio_{index}.wav", audio, rate,
                     subtype="PCM_32")
            depth = rng.integers(500, 9000, size=(18, 32)).astype(np.uint16)
            depth[:4, :4] = 0
            np.save(root / location / "depth" / f"depth_{index}.npy", depth)
            rows.append(f"{index},0,0,0,{location}/audio/,audio_{index}.wav,0,{location}/camera/,"
                        f"camera_{index}.jpeg,0,{location}/depth/,depth_{index}.npy")
            index += 1
        (root / location / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return root


def trials(experiment: Path) -> list[dict]:
    """Each trial folder's params, reported rows and resolved config, in creation order."""
    found = []
    for folder in experiment.glob("trial_*"):
        if not (folder / "result.json").is_file() or not (folder / "config.yaml").is_file():
            continue  # a trial still starting
        found.append({"folder": folder, "params": json.loads((folder / "params.json").read_text()),
                      "rows": read_rows(folder / "result.json"),
                      "config": yaml.safe_load((folder / "config.yaml").read_text())})
    return sorted(found, key=lambda t: t["folder"].stat().st_ctime)


def copy_experiment(experiment: Path, into: Path, name: str | None = None) -> Path:
    """A copy of an experiment folder in `into`, under its own name or `name`, to change or
    resume while the session's shared experiment stays as it is."""
    copy = into / (name or experiment.name)
    shutil.copytree(experiment, copy)
    return copy


def journal(experiment: Path, study: str = "smoke") -> list:
    """The trials of an experiment's Optuna journal."""
    import optuna

    return optuna.load_study(study_name=study, storage=journal_storage(experiment)).trials


def fake_trial(trial_id: str = "t", rows: list[dict] | None = None, status: str = "TERMINATED",
               error: str = "", **params) -> TrialRecord:
    """A trial record made by hand; without `rows`, one epoch of val RMSE 2.0 m."""
    rows = rows if rows is not None else [
        {"training_iteration": 1, "val_rmse": 2.0, "val_delta1": 0.3, "sparse": 0.25}]
    return TrialRecord(trial_id, Path(trial_id), params, rows, status, error)


def gap_records(arm, gaps_by_seed: dict[int, list[float]], seen: float = 1.0,
                train: float = 0.9) -> list[PlaceRecord]:
    """Per seed, the place gaps of places A..D (A and B in fold 0, C and D in fold 1):
    unseen RMSE = seen RMSE + gap."""
    return [PlaceRecord(place, arm, seed, fold, seen, seen + gap, train)
            for seed, gaps in gaps_by_seed.items()
            for place, fold, gap in zip("ABCD", (0, 0, 1, 1), gaps)]


def drawn_columns(figure) -> dict[str, dict[str, list[float]]]:
    """What the question's figure (tune.report.plots.question_figure) draws per column, keyed as
    summary.json names its arms (or "contrast"): its place points (sorted) and its interval."""
    drawn: dict[str, dict[str, list[float]]] = {}
    for ax in figure.axes:
        for artist in ax.get_children():
            kind, _, key = (artist.get_gid() or "").partition(":")
            if kind == "places":
                drawn.setdefault(key, {})["places"] = sorted(artist.get_offsets()[:, 1])
            elif kind == "interval":
                (segment,) = artist.get_segments()
                drawn.setdefault(key, {})["interval"] = [segment[0][1], segment[1][1]]
    return drawn


def expected_columns(question: dict) -> dict[str, dict[str, list[float]]]:
    """The same from summary.json's `question`: per arm and place the mean of the seeds' place
    gaps (per_place), the primary contrast's paired per place and seed, the intervals as
    stated (`arms`, `ci95_m`)."""
    gaps = {(str(r["arm"]), r["place"], r["seed"]): r["unseen_rmse"] - r["seen_rmse"]
            for r in question["per_place"]}
    first, second = (str(v) for v in question["values"])
    gaps.update({("contrast", place, seed): gap - gaps[second, place, seed]
                 for (arm, place, seed), gap in list(gaps.items()) if arm == first})

    def means(key):
        places = {p for a, p, _ in gaps if a == key}
        return sorted(float(np.mean([g for (a, p, _), g in gaps.items() if (a, p) == (key, place)]))
                      for place in places)

    columns = {arm: {"places": means(arm), "interval": facts["place_gap"]["ci95_m"]}
               for arm, facts in question["arms"].items()}
    return columns | {"contrast": {"places": means("contrast"), "interval": question["ci95_m"]}}


class CrashAfterEpoch2(Hook):
    """Stops a fit at the end of epoch 2, as Ctrl-C would; given `checkpoint`, it first saves
    the state after epoch 1 there (for a run without the Checkpoints hook)."""

    def __init__(self, checkpoint: Path | None = None):
        self.checkpoint = checkpoint

    def on_epoch_end(self, trainer, record):
        if record["epoch"] == 1 and self.checkpoint is not None:
            trainer.save_checkpoint(self.checkpoint)
        if record["epoch"] == 2:
            raise KeyboardInterrupt


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@contextlib.contextmanager
def reaped(process: subprocess.Popen):
    """Kill `process`'s group (started with `start_new_session`) if it is still running when
    the block ends, so a failed wait leaves no search behind."""
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)


def ctrl_c_when(command: list[str], ready, what: str, sigterm: bool = False) -> tuple[int, str]:
    """Run `command` in its own session; once `ready()` holds, Ctrl-C it (SIGINT to its
    process group, as a terminal sends), or with `sigterm` send SIGTERM to it alone (as
    `kill` does), and return its exit status and output."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env, start_new_session=True)

    def ready_while_running() -> bool:
        if ready():
            return True
        assert process.poll() is None, process.stdout.read()[-2000:]
        return False

    with reaped(process):
        wait_for(ready_while_running, RUN_LIMIT_S, what)
        if sigterm:
            process.send_signal(signal.SIGTERM)
        else:
            os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=RUN_LIMIT_S)
    return process.returncode, output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


# The seed's question at CI size, appended to smoke.yaml (conftest.py)
QUESTION = """
question:
  parameter: base_channel_divisor
  values: [1, 4]
  held: {residual_range: 0.3, lambda_recon_init: 0.3, lambda_base_init: 2.0,
         lambda_sparse: 0.05, warmup_fraction: 0.34}
  control: {model: unet}
  folds:
    - [Office_1, Office_2, Corridor_1, Corridor_2, Hall_1, Hall_2, Storage_1, Storage_2]
    - [Office_3, Office_4, Corridor_3, Corridor_4, Hall_3, Hall_4, Storage_3, Storage_4]
  seeds: [1]
"""

# Study files: the smallest valid one, and fragments the bad-study tables build on.
HEAD = "name: t\n"
SEARCH = "search:\n  lambda_base: {type: float, low: 0.3, high: 3.0, log: true}\n"
VALID = HEAD + SEARCH
DIVISOR = "search:\n  base_channel_divisor: {type: categorical, choices: [1, 2, 4]}\n"
POINT = "baselines:\n  b: {lambda_base: 1.0, %s}\n"  # a baseline with one extra entry


def write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def refused(path: Path, match: str, overrides: tuple[str, ...] = ()) -> str:
    """Load, expecting a refusal that matches and is one line naming the file."""
    with pytest.raises(StudyError, match=match) as info:
        load_study(path, overrides)
    message = str(info.value)
    assert "\n" not in message
    assert str(path.resolve()) in message
    return message
