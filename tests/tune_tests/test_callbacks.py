"""The driver's own Ray callbacks, run without a search: handing freed memory back, and the
result loggers keeping the driver's rows when a trial is retried."""

import ctypes
import pickle
import sys

import pytest

from tune.callbacks import ReturnFreedMemory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_memory_is_handed_back_after_a_trial_and_survives_ray_saving_it():
    # Ray pickles callbacks into its experiment state and restores them on --resume.
    callback = pickle.loads(pickle.dumps(ReturnFreedMemory()))
    assert isinstance(callback.trim, ctypes._CFuncPtr)
    callback.on_trial_complete(0, [], None)  # calls malloc_trim(0) without a search


def test_a_retried_trial_keeps_the_drivers_newer_rows(tmp_path):
    from types import SimpleNamespace

    import pyarrow.fs

    from tune.trainable import ResultJson

    driver, storage = tmp_path / "staging", tmp_path / "storage"
    driver.mkdir()
    storage.mkdir()
    (storage / "result.json").write_text('{"training_iteration": 1}\n')  # synced a while ago
    trial = SimpleNamespace(checkpoint=object(), local_path=str(driver), storage=SimpleNamespace(
        trial_fs_path=str(storage), storage_filesystem=pyarrow.fs.LocalFileSystem()))
    ResultJson()._restore_from_remote("result.json", trial)  # a resumed driver: restored
    assert (driver / "result.json").read_text() == '{"training_iteration": 1}\n'
    newer = '{"training_iteration": 1}\n{"training_iteration": 2}\n'
    (driver / "result.json").write_text(newer)  # the row reported just before a node loss
    ResultJson()._restore_from_remote("result.json", trial)  # the retry on this driver
    assert (driver / "result.json").read_text() == newer
