"""Ray is started once for the whole test session; the smoke search runs once and several
tests read its experiment folder."""

import pytest


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
