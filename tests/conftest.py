"""Test-session set-up: hermetic caches, no Ray telemetry, small shared fixtures."""

import os
import tempfile
from pathlib import Path

# Before anything imports ray or baseres: keep the generated data and feature caches of the
# test session away from the user's ~/.cache, and Ray's usage reporting off.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="baseres-test-cache-")

import pytest  # noqa: E402
from helpers import FIXTURE_ROOT, random_split  # noqa: E402


@pytest.fixture
def fixture_root() -> Path:
    if not (FIXTURE_ROOT / "Sample_Location" / "train.csv").is_file():
        pytest.skip(f"real BatVision V2 sample not present at {FIXTURE_ROOT}")
    return FIXTURE_ROOT


@pytest.fixture
def toy_data():
    return {"train": random_split(24, 32, seed=1), "val": random_split(10, 32, seed=2)}


# Everything that runs a search (a Ray of its own, or the shared smoke search) or trains for
# minutes: `make test-fast` leaves these out, `make test` runs them.
SEARCH_FIXTURES = {"smoke_experiment", "ray_session"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SEARCH_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
