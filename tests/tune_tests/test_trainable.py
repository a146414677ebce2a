"""The trial's Ray callbacks (tune.trainable), run without a search: the result loggers keep the
driver's rows, and no row twice, when a trial starts again, and its checkpoint list stays true
to storage."""

import json
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest


def row(epoch: int) -> str:
    return json.dumps({"training_iteration": epoch,
                       "checkpoint_dir_name": f"checkpoint_{epoch - 1:06d}"}) + "\n"


def a_trial(driver: Path, storage: Path, checkpoint: str | None):
    import pyarrow.fs

    return SimpleNamespace(
        checkpoint=SimpleNamespace(path=str(storage / checkpoint)) if checkpoint else None,
        local_path=str(driver), storage=SimpleNamespace(
            trial_fs_path=str(storage), storage_filesystem=pyarrow.fs.LocalFileSystem()))


def test_a_retried_trial_keeps_the_drivers_newer_rows(tmp_path):
    from tune.trainable import ResultJson

    driver, storage = tmp_path / "staging", tmp_path / "storage"
    driver.mkdir()
    storage.mkdir()
    (storage / "result.json").write_text(row(1))  # synced a while ago
    ResultJson()._restore_from_remote("result.json", a_trial(driver, storage, "checkpoint_000000"))
    assert (driver / "result.json").read_text() == row(1)  # a resumed driver: restored
    (driver / "result.json").write_text(row(1) + row(2))  # reported just before a node loss
    retry = a_trial(driver, storage, "checkpoint_000001")  # its checkpoint reached the driver
    ResultJson()._restore_from_remote("result.json", retry)
    assert (driver / "result.json").read_text() == row(1) + row(2)


@pytest.mark.parametrize("checkpoint, kept", [
    ("checkpoint_000001", 2),  # the rows after the checkpoint come again
    ("checkpoint_000003", 3),  # the checkpoint's row is not logged yet: nothing comes again
    (None, 0),  # no checkpoint: every epoch comes again
])
@pytest.mark.parametrize("logger", ["ResultJson", "ProgressCsv"])
def test_a_trial_going_on_from_a_checkpoint_loses_the_rows_after_it(tmp_path, logger,
                                                                     checkpoint, kept):
    import tune.trainable

    driver = tmp_path / "staging"
    driver.mkdir()
    if logger == "ResultJson":
        name, lines = "result.json", [row(e) for e in (1, 2, 3)]
        expected = "".join(lines[:kept])
    else:  # as Ray's CSV logger writes it
        name, lines = "progress.csv", ["training_iteration,checkpoint_dir_name\r\n"] + [
            f"{e},checkpoint_{e - 1:06d}\r\n" for e in (1, 2, 3)]
        expected = "".join(lines[:kept + 1])
    (driver / name).write_bytes("".join(lines).encode())
    callback = getattr(tune.trainable, logger)()
    callback._restore_from_remote(name, a_trial(driver, tmp_path / "storage", checkpoint))
    assert (driver / name).read_bytes() == expected.encode()


def test_a_resumed_trial_forgets_a_checkpoint_deleted_after_rays_last_saved_state(tmp_path):
    from ray.train import CheckpointConfig
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.train._internal.session import _TrainingResult
    from ray.tune import Checkpoint

    from tune.trainable import ForgetDeletedCheckpoints

    def checkpoint(index: int, val_rmse: float) -> _TrainingResult:
        folder = tmp_path / f"checkpoint_{index:06d}"
        folder.mkdir(exist_ok=True)
        return _TrainingResult(Checkpoint.from_directory(str(folder)), {"val_rmse": val_rmse})

    def kept(manager) -> list[str]:
        return [Path(r.checkpoint.path).name for r in manager._checkpoint_results]

    # tune.run's policy: the best 2 by val_rmse (and the latest) stay
    manager = _CheckpointManager(CheckpointConfig(
        num_to_keep=2, checkpoint_score_attribute="val_rmse", checkpoint_score_order="min"))
    manager.register_checkpoint(checkpoint(0, 3.0))
    manager.register_checkpoint(checkpoint(1, 2.0))
    saved = pickle.dumps(manager)  # Ray's last saved state before the kill
    manager.register_checkpoint(checkpoint(2, 1.0))  # deletes checkpoint_000000
    assert not (tmp_path / "checkpoint_000000").exists()

    # resumed from that state, the trial goes on from checkpoint_000001 and saves _000002 again
    without = pickle.loads(saved)
    with pytest.raises(FileNotFoundError):  # what Ray logged with a traceback
        without.register_checkpoint(checkpoint(2, 1.0))
    resumed = pickle.loads(saved)
    ForgetDeletedCheckpoints().on_trial_start(0, [], SimpleNamespace(
        run_metadata=SimpleNamespace(checkpoint_manager=resumed)))
    assert kept(resumed) == ["checkpoint_000001"]
    resumed.register_checkpoint(checkpoint(2, 1.0))
    resumed.register_checkpoint(checkpoint(3, 0.5))  # deletes checkpoint_000001 as usual
    assert kept(resumed) == ["checkpoint_000002", "checkpoint_000003"]
    assert sorted(p.name for p in tmp_path.iterdir()) == kept(resumed)


@pytest.mark.parametrize("policy, val_rmse, goes_on_from", [
    ({"num_to_keep": 1}, (3.0, 2.0, 1.0), None),  # a fold run's one: gone, it starts over
    ({"num_to_keep": 2, "checkpoint_score_attribute": "val_rmse",  # the search's: the best
      "checkpoint_score_order": "min"}, (1.0, 3.0, 2.0), "checkpoint_000000"),  # is left
], ids=["fold-run", "search"])
def test_a_resumed_trial_whose_latest_checkpoint_was_deleted_goes_on_from_one_left(
        tmp_path, policy, val_rmse, goes_on_from):
    from ray.train import CheckpointConfig
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.train._internal.session import _TrainingResult
    from ray.tune import Checkpoint

    from tune.trainable import ForgetDeletedCheckpoints

    def checkpoint(index: int) -> _TrainingResult:
        folder = tmp_path / f"checkpoint_{index:06d}"
        folder.mkdir(exist_ok=True)
        return _TrainingResult(Checkpoint.from_directory(str(folder)),
                               {"training_iteration": index + 1, "val_rmse": val_rmse[index]})

    manager = _CheckpointManager(CheckpointConfig(**policy))
    manager.register_checkpoint(checkpoint(0))
    manager.register_checkpoint(checkpoint(1))
    saved = pickle.dumps(manager)  # Ray's last saved state: checkpoint_000001 the latest
    manager.register_checkpoint(checkpoint(2))  # deletes checkpoint_000001, then the kill
    assert not (tmp_path / "checkpoint_000001").exists()

    resumed = pickle.loads(saved)
    ForgetDeletedCheckpoints().on_trial_start(0, [], SimpleNamespace(
        run_metadata=SimpleNamespace(checkpoint_manager=resumed)))
    latest = resumed.latest_checkpoint_result
    assert (Path(latest.checkpoint.path).name if latest else None) == goes_on_from


def test_a_search_trial_stopped_between_panels_has_one_of_its_last_epoch(ray_session, tmp_path):
    """smoke.yaml with ASHA's grace at 2: panels every 5 epochs fall at 1 and 3 (the last);
    a search trial stopped after epoch 2 (as ASHA stops it there) has a panel of epoch 2."""
    from ray.tune import RunConfig, SyncConfig, TuneConfig, Tuner
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from baseres.hooks import PANEL_TAG
    from tune.study import load_study
    from tune.trainable import build_trainable, trial_dirname

    spec = load_study("smoke.yaml", ["scheduler.grace_period=2"])
    assert spec.scheduler.stop_epochs() == (2,) and spec.fixed["epochs"] == 3
    tuner = Tuner(build_trainable(spec, spec.fixed),
                  param_space=dict(spec.baselines["seed_after"]),
                  tune_config=TuneConfig(trial_dirname_creator=trial_dirname),
                  run_config=RunConfig(name="x", storage_path=str(tmp_path), verbose=0,
                                       stop={"training_iteration": 2},
                                       sync_config=SyncConfig(sync_artifacts=True)))
    assert not tuner.fit().errors
    (run,) = [p for p in (tmp_path / "x").glob("trial_*/*") if any(p.glob("events.out.*"))]
    events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    assert [image.step for image in events.Images(PANEL_TAG)] == [1, 2]


def test_a_restored_search_works_in_the_folder_its_driver_holds(tmp_path, smoke_spec):
    """Ray's tuner.pkl keeps the searcher, the scheduler and the callbacks without a folder:
    a resume hands each the folder it holds, the moved one for a moved experiment."""
    from ray.tune import RunConfig, TuneConfig, Tuner

    from tune.callbacks import DiskGuard
    from tune.private_api import restored_parts
    from tune.searcher import BaselinesRunFull, StudySearchGenerator
    from tune.trainable import restored_tuner

    def train(config):
        pass

    original, moved = tmp_path / "runs" / "smoke", tmp_path / "moved" / "smoke"
    Tuner(train, tune_config=TuneConfig(
        search_alg=StudySearchGenerator(smoke_spec, original),
        scheduler=BaselinesRunFull(smoke_spec.name, original, metric="val_rmse", mode="min")),
        run_config=RunConfig(name="smoke", storage_path=str(original.parent),
                             callbacks=[DiskGuard(1, original)]))
    generator, scheduler, guard = restored_parts(restored_tuner(str(original), train, moved))
    assert [generator.folder, generator.study_searcher.folder, scheduler.folder,
            guard.folder] == [moved] * 4
