"""Test-session set-up: hermetic caches, no Ray telemetry; the shared fixtures: data, the smoke
study, and the session's Ray with the searches several test folders read."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Before anything imports ray or baseres: keep the generated data and feature caches of the
# test session away from the user's ~/.cache, and Ray's usage reporting off. The cache (about
# 500 MB after the whole suite) goes when the session ends.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="baseres-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)

import pytest  # noqa: E402
from helpers import FIXTURE_ROOT, QUESTION, random_split  # noqa: E402

from tune.study import load_study  # noqa: E402


@pytest.fixture
def fixture_root() -> Path:
    if not (FIXTURE_ROOT / "Sample_Location" / "train.csv").is_file():
        pytest.skip(f"real BatVision V2 sample not present at {FIXTURE_ROOT}")
    return FIXTURE_ROOT


@pytest.fixture
def toy_data():
    return {"train": random_split(24, 32, seed=1), "val": random_split(10, 32, seed=2)}


@pytest.fixture(scope="session")
def smoke_spec():
    """smoke.yaml, loaded once: baselines seed_before, seed_after (in the space) and unet."""
    return load_study("smoke.yaml")


# Ray is started once for the whole test session; the smoke search and the question's smoke run
# once each, and several tests (tune_tests/, scenarios/) read their experiment folders.
@pytest.fixture(scope="session")
def ray_session():
    import ray

    # address="local": a Ray of the session's own, never a cluster /tmp/ray names
    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False,
             log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def smoke_experiment(ray_session, tmp_path_factory):
    from tune.run import main

    storage = tmp_path_factory.mktemp("results")
    assert main(["--space", "smoke.yaml", "--storage", str(storage)]) == 0
    return storage / "smoke"


@pytest.fixture(scope="session")
def question_study(tmp_path_factory):
    """smoke.yaml with the seed's question at CI size: three arms x two folds x one seed."""
    from tune.study import SEARCH_SPACES

    folder = tmp_path_factory.mktemp("study")
    path = folder / "question_smoke.yaml"
    path.write_text((SEARCH_SPACES / "smoke.yaml").read_text() + QUESTION)
    return path


@pytest.fixture(scope="session")
def question_experiment(ray_session, question_study, tmp_path_factory):
    """The question's fold runs, then a search of the baselines alone."""
    from tune.run import main

    storage = tmp_path_factory.mktemp("results")
    assert main(["--space", str(question_study), "--storage", str(storage), "--name", "q",
                 "--num-samples", "3"]) == 0
    return storage / "q"


# Everything that runs a search (a Ray of its own, or the shared smoke search) or trains for
# minutes: `make test-fast` leaves these out, `make test` runs them.
SEARCH_FIXTURES = {"smoke_experiment", "ray_session"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SEARCH_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
