"""The driver's own Ray callbacks, run without a search: handing freed memory back, and the
result loggers keeping the driver's rows, and no row twice, when a trial starts again."""

import ctypes
import json
import pickle
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tune.callbacks import ReturnFreedMemory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_memory_is_handed_back_after_a_trial_and_survives_ray_saving_it():
    # Ray pickles callbacks into its experiment state and restores them on --resume.
    callback = pickle.loads(pickle.dumps(ReturnFreedMemory()))
    assert isinstance(callback.trim, ctypes._CFuncPtr)
    callback.on_trial_complete(0, [], None)  # calls malloc_trim(0) without a search


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
