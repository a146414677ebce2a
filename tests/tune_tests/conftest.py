"""Ray is started once for the whole test session; the smoke search and the question's smoke
run once each, and several tests read their experiment folders."""

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


@pytest.fixture(scope="session")
def question_study(tmp_path_factory):
    """smoke.yaml with the seed's question at CI size: three arms x two folds x one seed."""
    from helpers import QUESTION

    from tune.space import SEARCH_SPACES

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
