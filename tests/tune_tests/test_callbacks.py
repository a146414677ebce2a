"""The driver's own Ray callbacks (tune.callbacks), run without a search: handing freed memory
back."""

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
