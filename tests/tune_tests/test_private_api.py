"""tune.private_api on the real Ray and Optuna objects: an upgrade that moves or changes one
of the private attributes tune relies on fails here, naming it, before a search misbehaves."""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
import ray

from tune import private_api


@contextmanager
def relied_on(attribute: str):
    """Turn any failure inside into one message naming the private attribute."""
    try:
        yield
    except Exception as err:  # whatever the upgrade broke: AttributeError, TypeError, ...
        pytest.fail(f"{attribute} no longer works as tune/private_api.py expects (written "
                    f"against Ray 2.60.0 and Optuna 5.0.0; installed: Ray {ray.__version__}, "
                    f"Optuna {optuna.__version__}): {type(err).__name__}: {err}",
                    pytrace=False)


def check(holds: bool, attribute: str, what: str) -> None:
    if not holds:
        pytest.fail(f"{attribute} changed meaning (Ray {ray.__version__}, Optuna "
                    f"{optuna.__version__}; tune/private_api.py was written against Ray 2.60.0 "
                    f"and Optuna 5.0.0): {what}", pytrace=False)


# ---------------------------------------------------------------------------------- Optuna


def test_storage_id_reaches_the_trial_for_writing():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    study.ask()
    (frozen,) = study.get_trials(deepcopy=False)
    with relied_on("optuna FrozenTrial._trial_id"):
        optuna.trial.Trial(study, private_api.storage_id(frozen)).set_user_attr("seen", 1)
    check(study.get_trials()[0].user_attrs == {"seen": 1}, "optuna FrozenTrial._trial_id",
          "a Trial built from it did not write to that trial")


@pytest.mark.parametrize("dist, value, inside", [
    (optuna.distributions.FloatDistribution(0.0, 1.0, step=0.25), 0.5, True),
    (optuna.distributions.FloatDistribution(0.0, 1.0, step=0.25), 0.3, False),
    (optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True), 1e-1, False),
    (optuna.distributions.IntDistribution(1, 8, log=True), 4, True),
    (optuna.distributions.IntDistribution(2, 8, step=2), 5, False),
])
def test_in_distribution_is_optunas_own_check(dist, value, inside):
    with relied_on(f"optuna {type(dist).__name__}._contains"):
        found = private_api.in_distribution(dist, value)
    check(found is inside, f"optuna {type(dist).__name__}._contains",
          f"{value!r} in {dist}: {found}, expected {inside}")


# ------------------------------------------------------------------------------- Ray Tune


def asha():
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", metric="val_rmse", mode="min",
                         max_t=4, grace_period=1, reduction_factor=2)


class Trial:
    def __init__(self, trial_id: str):
        self.trial_id, self.config = trial_id, {}


def test_asha_record_fills_the_rungs_asha_decides_on():
    attribute = "ray AsyncHyperBandScheduler._trial_info / _brackets / _metric_op"
    scheduler = asha()
    scheduler.on_trial_add(None, Trial("a"))  # "a" is in a bracket, "b" is not yet
    with relied_on(attribute):
        private_api.asha_record(scheduler, "a", 1, 1.0)
        private_api.asha_record(scheduler, "b", 1, 2.0)
    scheduler.on_trial_add(None, Trial("c"))
    result = {"val_rmse": 3.0, "training_iteration": 1}  # worse than both recorded
    check(scheduler.on_trial_result(None, Trial("c"), result) == "STOP", attribute,
          "a trial worse than every recorded result of its rung was not stopped (mode min)")
    fresh = asha()
    fresh.on_trial_add(None, Trial("c"))
    check(fresh.on_trial_result(None, Trial("c"), result) == "CONTINUE", attribute,
          "with nothing recorded, ASHA stopped the first trial of a rung")


def test_asha_time_attr_and_max_t_are_the_constructors():
    scheduler = asha()
    with relied_on("ray AsyncHyperBandScheduler._time_attr"):
        time_attr = private_api.asha_time_attr(scheduler)
    with relied_on("ray AsyncHyperBandScheduler._max_t"):
        max_t = private_api.asha_max_t(scheduler)
    check(time_attr == "training_iteration", "ray AsyncHyperBandScheduler._time_attr",
          f"got {time_attr!r}")
    check(max_t == 4, "ray AsyncHyperBandScheduler._max_t", f"got {max_t!r}")


def test_generator_experiment_is_saved_with_the_state_and_gives_new_trials_storage(tmp_path):
    from ray.tune.experiment import Experiment
    from ray.tune.search import ConcurrencyLimiter, SearchGenerator
    from ray.tune.search.searcher import Searcher

    class Fixed(Searcher):
        def suggest(self, trial_id):
            return {}

        def on_trial_complete(self, trial_id, result=None, error=False):
            pass

    attribute = "ray SearchGenerator._experiment"
    generator = SearchGenerator(ConcurrencyLimiter(Fixed(), max_concurrent=1))
    generator.add_configurations([Experiment("x", run=lambda config: None,
                                             storage_path=str(tmp_path / "runs"))])
    restored = SearchGenerator(ConcurrencyLimiter(Fixed(), max_concurrent=1))
    with relied_on(attribute):
        restored.set_state(generator.get_state())
        experiment = private_api.generator_experiment(restored)
    placing = "ray StorageContext.storage_fs_path / experiment_dir_name"
    with relied_on(placing):  # as StudySearchGenerator places it in the folder its driver holds
        saved = experiment.spec["storage"]
        experiment.spec["storage"] = private_api.storage_placed(saved, tmp_path / "elsewhere" / "y")
        check(private_api.storage_placed(saved, tmp_path / "runs" / "x") is saved, placing,
              "a storage already in the folder was copied")
    check(restored.next_trial().storage.experiment_fs_path == str(tmp_path / "elsewhere" / "y"),
          f"{attribute}, {placing}", "a new trial did not get the experiment's placed storage")
    check(saved.experiment_fs_path == str(tmp_path / "runs" / "x"), placing,
          "placing it changed the storage Ray saved")


def test_restored_parts_are_the_ones_tuner_restore_unpickled(tmp_path):
    from ray.tune import Callback, RunConfig, TuneConfig, Tuner
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.basic_variant import BasicVariantGenerator

    class Mark(Callback):
        pass

    def train(config):
        pass

    attribute = "ray Tuner._local_tuner._tune_config / get_run_config()"
    tune_config = TuneConfig(search_alg=BasicVariantGenerator(), scheduler=asha())
    Tuner(train, tune_config=tune_config,  # writes tuner.pkl, as every search does
          run_config=RunConfig(name="x", storage_path=str(tmp_path), callbacks=[Mark()]))
    with relied_on(attribute):
        parts = private_api.restored_parts(Tuner.restore(str(tmp_path / "x"), trainable=train))
    kinds = [type(part).__name__ for part in parts]
    check(kinds == ["BasicVariantGenerator", "AsyncHyperBandScheduler", "Mark"], attribute,
          f"got {kinds}, not the search algorithm, the scheduler and the callback given")
    check(parts[1] is not tune_config.scheduler and not isinstance(parts[0], ConcurrencyLimiter),
          attribute, "not the objects unpickled from tuner.pkl")


def test_saved_trial_statuses_reads_rays_experiment_state(tmp_path):
    import json

    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial as RayTrial
    from ray.tune.utils.serialization import TuneFunctionEncoder

    attribute = "ray experiment_state-*.json (TuneController.save_to_dir, Trial.get_json_state)"
    with relied_on(attribute):
        trial = RayTrial("trainable", stub=True, storage=None, trial_id="t1")
        trial.set_status(RayTrial.TERMINATED)
        check(TuneController.CKPT_FILE_TMPL == "experiment_state-{}.json"
              and '"trial_data": list(self._get_trial_checkpoints().values())'
              in inspect.getsource(TuneController.save_to_dir)
              and "get_json_state()" in inspect.getsource(TuneController._get_trial_checkpoints),
              attribute, "Ray no longer saves each trial's JSON state under trial_data")
        state = {"trial_data": [trial.get_json_state()], "runner_data": {}}
        (tmp_path / "experiment_state-x.json").write_text(json.dumps(state,
                                                                     cls=TuneFunctionEncoder))
        found = private_api.saved_trial_statuses(tmp_path)
    check(found == {"t1": "TERMINATED"}, attribute, f"read {found}")
    check(private_api.has_saved_state(tmp_path) and not private_api.has_saved_state(
        tmp_path / "none"), attribute, "a saved state not found, or one found in an empty folder")
    check(private_api.saved_trial_statuses(tmp_path / "none") == {}, attribute,
          "statuses read from no state")


def test_ray_tuner_file_is_the_one_tuner_restore_reads():
    from ray.tune.impl import tuner_internal

    with relied_on("ray.tune.impl.tuner_internal._TUNER_PKL"):
        check(tuner_internal._TUNER_PKL == private_api.RAY_TUNER_FILE,
              "ray.tune.impl.tuner_internal._TUNER_PKL", f"now {tuner_internal._TUNER_PKL!r}")


def test_keep_checkpoint_results_drops_entries_from_rays_list(tmp_path):
    from ray.train import CheckpointConfig
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.train._internal.session import _TrainingResult
    from ray.tune import Checkpoint

    manager = _CheckpointManager(CheckpointConfig(num_to_keep=3))
    for index in range(2):
        (tmp_path / str(index)).mkdir()
        manager.register_checkpoint(_TrainingResult(
            Checkpoint.from_directory(str(tmp_path / str(index))), {"epoch": index}))
    with relied_on("ray _CheckpointManager._checkpoint_results"):
        private_api.keep_checkpoint_results(manager, lambda r: r.metrics["epoch"] == 1)
    kept = [r.metrics["epoch"] for r in manager.best_checkpoint_results]
    check(kept == [1], "ray _CheckpointManager._checkpoint_results",
          f"the manager still keeps epochs {kept}")


def test_set_latest_checkpoint_result_is_what_a_trial_goes_on_from(tmp_path):
    from ray.train import CheckpointConfig
    from ray.train._internal.session import _TrainingResult
    from ray.tune import Checkpoint
    from ray.tune.experiment import Trial as RayTrial

    attribute = "ray _CheckpointManager._latest_checkpoint_result"
    trial = RayTrial("trainable", stub=True, storage=None,
                  checkpoint_config=CheckpointConfig(num_to_keep=3))
    with relied_on("ray Trial.run_metadata.checkpoint_manager"):
        manager = private_api.checkpoint_manager(trial)
    for index in range(2):
        (tmp_path / str(index)).mkdir()
        manager.register_checkpoint(_TrainingResult(
            Checkpoint.from_directory(str(tmp_path / str(index))), {"epoch": index}))
    first = manager.best_checkpoint_results[0]
    with relied_on(attribute):
        private_api.set_latest_checkpoint_result(manager, first)
    check(trial.checkpoint.path == str(tmp_path / "0"), attribute,
          f"the trial goes on from {trial.checkpoint.path}, not the one set")
    with relied_on(attribute):
        private_api.set_latest_checkpoint_result(manager, None)
    check(trial.checkpoint is None, attribute, "the trial still goes on from a checkpoint")


def test_checkpoint_logger_is_the_one_ray_logs_checkpoints_with():
    import ray.train._internal.storage as storage

    with relied_on("ray.train._internal.storage.logger"):
        check(storage.logger is private_api.checkpoint_logger(), "ray.train._internal.storage",
              "its module logger is another one now")
        check("Checkpoint successfully created" in inspect.getsource(storage),
              "ray.train._internal.storage", "no longer logs the line for every checkpoint")


def test_token_auth_notice_logger_is_the_one_ray_says_it_with(caplog, monkeypatch):
    import logging

    import ray._private.authentication.authentication_token_setup as setup

    from tune.cluster import quiet_ray_console

    name = "ray._private.authentication.authentication_token_setup.logger"
    with relied_on(name):
        check(setup.logger is private_api.token_auth_notice_logger(), name,
              "its module logger is another one now")
    monkeypatch.delenv("RAY_AIR_NEW_OUTPUT", raising=False)  # restored after the test
    quiet_ray_console(verbose=False)  # the filter tune.run and tune.confirm install
    with caplog.at_level(logging.WARNING, logger=setup.logger.name):
        setup._warn_token_auth_enabled()  # the notice: hidden
        setup._warn_token_auth_disabled()  # the security warning: kept
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and messages[0].startswith("Token authentication is disabled")


# ------------------------------------------------ Ray hooks overridden under private names


class FakeTrial:
    """What Ray's JSON and CSV loggers read of a trial at its start."""

    def __init__(self, folder: Path):
        self.config, self.local_path, self.checkpoint = {}, str(folder), None
        self.init_local_path()  # as Ray's Trial has it, before any logger writes there

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)


@pytest.mark.parametrize("logger, start, file_name", [
    ("JsonLoggerCallback", "log_trial_start", "result.json"),
    ("CSVLoggerCallback", "log_trial_result", "progress.csv"),
])
def test_rays_result_loggers_restore_through_the_hook_keeps_driver_copy_overrides(
        tmp_path, logger, start, file_name):
    import ray.tune.logger as loggers

    calls = []

    class Recording(getattr(loggers, logger)):
        def _restore_from_remote(self, name, trial):
            calls.append(name)

    trial = FakeTrial(tmp_path / "trial")
    with relied_on(f"ray {logger}._restore_from_remote"):
        callback = Recording()
        args = (trial,) if start == "log_trial_start" else (1, trial, {"epoch": 1})
        getattr(callback, start)(*args)
        callback.log_trial_end(trial)
    check(calls == [file_name], f"ray {logger}._restore_from_remote",
          f"Ray restored {calls} through it, expected [{file_name!r}] (tune.trainable)")


# ------------------------------------------------------------ Ray's Weights & Biases logger


def test_wandb_logging_actor_is_the_class_rays_callback_builds_actors_from():
    integration = pytest.importorskip("ray.air.integrations.wandb")
    attribute = "ray.air.integrations.wandb._WandbLoggingActor"
    with relied_on(attribute):
        actor = private_api.wandb_logging_actor()
    check(integration.WandbLoggerCallback._logger_actor_cls is actor, attribute,
          "Ray's callback builds its logging actors from another class")


def test_wandb_of_is_the_module_the_logging_actor_uses(tmp_path, monkeypatch):
    pytest.importorskip("ray.air.integrations.wandb")
    wandb = pytest.importorskip("wandb")
    monkeypatch.chdir(tmp_path)  # the actor changes into its log folder; undone after
    with relied_on("ray _WandbLoggingActor._wandb"):
        actor = private_api.wandb_logging_actor()(str(tmp_path), None, [], [])
        check(private_api.wandb_of(actor) is wandb, "ray _WandbLoggingActor._wandb",
              "it is no longer the wandb module")


def test_set_wandb_logging_actor_is_the_class_each_trials_actor_is_built_from():
    integration = pytest.importorskip("ray.air.integrations.wandb")
    attribute = "ray WandbLoggerCallback._logger_actor_cls"

    class Callback(integration.WandbLoggerCallback):
        pass

    class Actor(private_api.wandb_logging_actor()):
        pass

    with relied_on(attribute):
        private_api.set_wandb_logging_actor(Callback, Actor)
    check(Callback._logger_actor_cls is Actor
          and "self._logger_actor_cls" in inspect.getsource(
              integration.WandbLoggerCallback._start_logging_actor), attribute,
          "Ray no longer builds its logging actor from _logger_actor_cls")
    check(integration.WandbLoggerCallback._logger_actor_cls is not Actor, attribute,
          "setting it on a subclass changed Ray's own callback")


def test_before_wandb_actor_starts_changes_the_keywords_each_trials_actor_starts_with(
        tmp_path):
    integration = pytest.importorskip("ray.air.integrations.wandb")
    attribute = "ray WandbLoggerCallback._start_logging_actor"
    started = []

    class Recording(integration.WandbLoggerCallback):  # starts no actor: records the call
        def _start_logging_actor(self, trial, exclude_results, **wandb_init_kwargs):
            started.append((trial, wandb_init_kwargs))

    class Prepared(Recording):
        pass

    def prepare(trial, wandb_init_kwargs):
        wandb_init_kwargs["dir"] = f"{trial.local_path}/here"

    trial = FakeTrial(tmp_path)
    trial.trial_id, trial.experiment_dir_name = "t1", "x"
    with relied_on(attribute):
        private_api.before_wandb_actor_starts(Prepared, prepare)
        Prepared(project="p").log_trial_start(trial)
    check(len(started) == 1 and started[0][0] is trial, attribute,
          f"Ray's log_trial_start did not start the trial's actor through it: {started}")
    kwargs = started[0][1]
    check(kwargs.get("project") == "p" and kwargs.get("dir") == f"{tmp_path}/here", attribute,
          f"the actor started with {kwargs}, not the project and the prepared dir")


@pytest.mark.parametrize("local", [True, False])
def test_tunes_wandb_callback_starts_its_actor_in_the_trial_folder_on_this_machine(
        tmp_path, local):
    pytest.importorskip("ray.air.integrations.wandb")
    import pyarrow.fs

    from tune.integrations import _into_the_trial_folder, _LoggingActor, _Wandb

    assert _Wandb._logger_actor_cls is _LoggingActor
    assert issubclass(_LoggingActor, private_api.wandb_logging_actor())
    filesystem = pyarrow.fs.LocalFileSystem()
    trial = FakeTrial(tmp_path / "staging")
    trial.path = str(tmp_path / "storage" / "t1")
    trial.storage = type("Storage", (), {"storage_filesystem": filesystem if local else
                                         pyarrow.fs.SubTreeFileSystem(str(tmp_path), filesystem)})
    kwargs = {"project": "p"}
    _into_the_trial_folder(trial, kwargs)
    assert kwargs == ({"project": "p", "dir": trial.path} if local else {"project": "p"})
    assert Path(trial.path).is_dir() is local
