"""``python -m tune.run``: an Optuna search (random or TPE) on Ray Tune with ASHA early stopping.

The study file is validated completely before Ray starts; the experiment folder holds Ray's
state, every trial (metrics, checkpoints, TensorBoard events), the resolved study
(study.yaml) and the Optuna journal, so a search can be resumed, summarised and exported from
the folder alone.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from baseres.cli import (
    CommandLineError,
    DefaultsHelpFormatter,
    Interrupted,
    OneLineParser,
    command_line,
    run_command,
)
from tune.budget import budget_text, exhausted, spent
from tune.cluster import (
    check_trial_folders,
    prepare_ray,
    sigterm_as_ctrl_c,
    start_ray,
    stop_ray,
)
from tune.console_text import say
from tune.errors import UsageError
from tune.experiment import (
    JOURNAL_FILE,
    LOST,
    MIN_FREE_BYTES,
    STUDY_FILE,
    Experiment,
    Location,
    driving,
    new_location,
    placed_line,
    read_rows,
    repair_after_kill,
)
from tune.private_api import RAY_TUNER_FILE, has_saved_state
from tune.question.plan import QuestionPlan, question_plan
from tune.study import StudySpec, check_experiment_name, load_study

RESUME = "python -m tune.run --resume"  # finishes the search whose folder follows


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m tune.run",
        description="Search base + residual hyperparameters: Optuna's samplers (random by "
        "default, TPE on request) on Ray Tune with ASHA early stopping on val RMSE. Results, "
        "TensorBoard logs and the Optuna journal go to <storage>/<name>; --resume finishes an "
        "interrupted search.",
        formatter_class=DefaultsHelpFormatter,
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--space", help="study file: a path, or a name looked up in the working "
                      "directory, then in search_spaces/ (e.g. generalization.yaml)")
    what.add_argument("--resume", metavar="EXPERIMENT_DIR",
                      help="finish an interrupted search (only resume folders you trust: Ray's "
                      "state is unpickled)")
    parser.add_argument("--name", help="experiment name (default: the study's name, or name-2, "
                        "name-3 ... when that folder is taken)")
    parser.add_argument("--storage", default="results",
                        help="where experiments go: a local folder (made absolute) or a URI "
                        "such as s3://bucket/runs")
    parser.add_argument("--budget-epochs", type=int, metavar="EPOCHS",
                        help="the search's budget: trials keep coming until the epochs every "
                        "trial reported (baselines and early-stopped ones too) reach it "
                        "(overrides budget.epochs)")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="a wall-clock guard: no new trial after this many seconds of "
                        "search, counted across resumes (overrides budget.time_s)")
    parser.add_argument("--num-samples", type=int,
                        help="a cap on the trials (overrides the study's num_samples)")
    parser.add_argument("--max-concurrent", type=int, help="trials at once (overrides the study)")
    parser.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (overrides)")
    parser.add_argument("--gpus-per-trial", type=float,
                        help="GPUs per trial, fractions allowed (overrides)")
    parser.add_argument("--address", help="join a running Ray cluster: auto or ray://host:port "
                        "(default: start a local Ray bound to localhost)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a study key, e.g. train.epochs=5 or "
                        "search.residual_range.high=0.4 (repeatable, validated like the file)")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate and print the resolved study; start nothing")
    parser.add_argument("--verbose", action="store_true",
                        help="also print Ray's own status tables, per-trial results and what "
                        "its workers print")
    parser.add_argument("--wandb", metavar="PROJECT",
                        help="also log to Weights & Biases (offline without WANDB_API_KEY)")
    return parser


def study_overrides(args: argparse.Namespace) -> list[str]:
    """Command-line flags as study overrides, validated together with the file."""
    flags = {"budget.epochs": args.budget_epochs, "budget.time_s": args.time_budget,
             "num_samples": args.num_samples, "max_concurrent_trials": args.max_concurrent,
             "resources_per_trial.cpu": args.cpus_per_trial,
             "resources_per_trial.gpu": args.gpus_per_trial}
    return [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)


def build_scheduler(spec: StudySpec, folder: Path):
    if spec.scheduler is None:
        return None
    from tune.searcher import BaselinesRunFull

    return BaselinesRunFull(spec.name, folder, time_attr="training_iteration",
                            **spec.scheduler._asdict())


def search_run_config(spec: StudySpec, location: Location, folder: Path,
                      wandb_project: str | None, verbose: bool = False):
    from ray.tune import CheckpointConfig

    from tune.callbacks import DiskGuard, KeepSearchKeys, ReturnFreedMemory
    from tune.console import ConsoleProgress
    from tune.trainable import run_config

    callbacks = [DiskGuard(MIN_FREE_BYTES, folder), ReturnFreedMemory(),
                 ConsoleProgress(spec.max_t, spec.num_samples)]  # None: no count known
    if wandb_project:
        from tune.integrations import wandb_callback

        callbacks.append(wandb_callback(wandb_project))
    callbacks.append(KeepSearchKeys(spec))  # after every logger of the whole record
    return run_config(location, callbacks, verbose,
                      CheckpointConfig(num_to_keep=2, checkpoint_score_attribute=spec.metric,
                                       checkpoint_score_order=spec.mode))


def search_ended(location: Location, spec: StudySpec) -> bool:
    """Whether the journal says the budget is spent and every trial closed (Ray's counts
    call a trial it stopped for an interrupt finished)."""
    import optuna

    study = Experiment(location.state_folder).optuna_study()
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,
                                                       optuna.trial.TrialState.WAITING))
    return not running and exhausted(spec, spent(study, LOST)) is not None


def recheck_winners(spec: StudySpec, location: Location, verbose: bool) -> bool:
    """The search's winners re-trained on the study's fresh seeds (tune.recheck), the same
    seeds when a resume goes on with it; whether every run finished."""
    from tune.question.plan import fresh_seeds, stored_plan
    from tune.recheck import RECHECK_DIR, run_recheck, search_seed

    if spec.recheck.seeds == 0 or location.local is None:
        return True
    planned = stored_plan(location.state_folder / RECHECK_DIR).get("seeds")
    seeds = planned or fresh_seeds({search_seed(spec)}, spec.recheck.seeds)
    return run_recheck(spec, location, seeds, RECHECK_DIR, verbose)


def print_outcome(location: Location, spec: StudySpec, rechecked: bool) -> bool:
    """A complete search's summary, once; an incomplete one's resume command, last, where a
    summary would scroll it away. Whether the search and its re-check are complete."""
    folder, experiment, local = location.state_folder, location.uri, location.local
    resume = command_line(RESUME, experiment)
    if not search_ended(location, spec):
        used = spent(Experiment(folder).optuna_study(), LOST)
        if local is not None:
            say(f"\nthe results so far: {command_line('python -m tune.summary', experiment)}")
        say(f"search incomplete ({used.finished} trials finished, {used.epochs} epochs of "
            f"{budget_text(spec)}); resume with: {resume}")
        return False
    if not rechecked:
        say(f"the re-check of the search's winners is incomplete; resume with: {resume}")
        return False
    if local is None:
        say(f"\nto summarise, copy {experiment} to this machine with {STUDY_FILE} and "
            f"{JOURNAL_FILE} from {folder}, then run python -m tune.summary on the copy")
        return True
    from tune.summary import print_summary

    print()
    print_summary(local)
    say(command_line("tensorboard --logdir", experiment))
    return True


def prepare_data(spec: StudySpec, question: QuestionPlan | None = None) -> None:
    """Generate the synthetic set and build the feature cache once, before any trial starts
    (the `question`'s places too): progress shows here, trials only map the cache, and a bad
    data root fails before Ray."""
    from baseres.data.batvision import DataError
    from baseres.data.cache import load_split, resolve_data_root
    from tune.question.places import prepare_places

    first = next(iter(spec.baselines.values()), {})
    cfg = spec.trial_config({k: v for k, v in first.items() if k in spec.space}
                            or spec.low_corner())
    try:
        root = resolve_data_root(cfg)
        for split in ("train", "val"):
            load_split(cfg, split, root)
        if question is not None:
            prepare_places(question, root)
    except DataError as err:
        raise UsageError(str(err)) from None
    say(f"data ready: {root} (features cached for every trial)")


def fit(tuner, spec: StudySpec, location: Location, verbose: bool = False) -> bool:
    """Run the search, then re-check its winners on fresh seeds; SIGTERM stops either as
    Ctrl-C does (state saved, resume hint). Whether both completed."""
    try:
        with sigterm_as_ctrl_c():
            tuner.fit()
            rechecked = search_ended(location, spec) and recheck_winners(spec, location,
                                                                          verbose)
    finally:
        stop_ray()  # nothing Ray's workers print comes after the outcome
    return print_outcome(location, spec, rechecked)


def launch(spec: StudySpec, location: Location, address: str | None,
           wandb_project: str | None, verbose: bool = False) -> bool:
    """A search in the new folder `location` (new_location made it): one that does not get as
    far as starting (writing its study.yaml) leaves nothing behind."""
    folder = location.state_folder
    try:
        with driving(folder) as held:
            return drive(spec, location, held, address, wandb_project, verbose)
    except BaseException:
        if not (folder / STUDY_FILE).is_file():
            shutil.rmtree(folder, ignore_errors=True)
        raise


def drive(spec: StudySpec, location: Location, folder: Path, address: str | None,
          wandb_project: str | None, verbose: bool = False) -> bool:
    """The question's fold runs, then the search, at `location`, whose driver lock this
    process holds on `folder` (its state folder). Whether the search completed."""
    from ray.tune import TuneConfig, Tuner

    from tune.question.runs import answer_question
    from tune.searcher import StudySearchGenerator, create_study
    from tune.trainable import build_trainable, trial_dirname

    # --wandb needs wandb
    config = search_run_config(spec, location, folder, wandb_project, verbose)
    question = question_plan(spec) if spec.question is not None else None
    if address is None:
        prepare_data(spec, question)
    # refuses head-local storage on a cluster, and a trial no node can hold
    start_ray(address, location.storage, spec.resources, verbose)
    (location.state_folder / STUDY_FILE).write_text(spec.to_yaml())
    create_study(spec, folder)  # before the question: it stores the study a resume compares with
    if question is not None and not answer_question(spec, location, question, verbose):
        raise Interrupted("resume with: " + command_line(RESUME, location),
                          what="the question's runs are incomplete")
    tuner = Tuner(
        build_trainable(spec, spec.fixed),
        tune_config=TuneConfig(metric=spec.metric, mode=spec.mode,
                               search_alg=StudySearchGenerator(spec, folder),
                               scheduler=build_scheduler(spec, folder),
                               # -1: trials come until the budget is spent
                               num_samples=spec.num_samples or -1,
                               trial_dirname_creator=trial_dirname,
                               # the next trial in a worker that imported torch and
                               # Ray already (bench.fixed_cost)
                               reuse_actors=True),
        run_config=config,
    )
    return fit(tuner, spec, location, verbose)


def resume(experiment: str, address: str | None, verbose: bool = False) -> bool:
    from ray.tune import Tuner

    from tune.trainable import build_trainable, restored_tuner

    location = Location.of(experiment)
    experiment, folder, local = location.uri, location.state_folder, location.local
    study_file = folder / STUDY_FILE
    if not study_file.is_file():
        raise UsageError(f"--resume {experiment}: not an experiment folder of tune.run "
                         f"(needs {study_file} and Ray's tuner state)")
    # the lock first: nothing a running driver holds is read as left over, or deleted
    with driving(folder) as held:
        ray_saved = local is not None and has_saved_state(local)
        if not ray_saved and local is not None and any(
                read_rows(trial / "result.json") for trial in local.glob("trial_*")):
            raise UsageError(f"--resume {experiment}: trials with results are here but not "
                             "Ray's state (experiment_state-*.json), which a resume needs; "
                             "nothing was changed (python -m tune.summary still reads it)")
        repair_after_kill(folder)
        found = Experiment(folder)
        found.check_unchanged()  # in the question's runs too: the journal is made before them
        if found.spec.question is not None and local is not None:
            from tune.question.runs import rescore_designs

            rescore_designs(local)  # a finished run's damaged places.json: Ray won't rerun it
        if not ray_saved and local is not None:
            # Stopped before the search's first result (in the question's runs, or before Ray
            # saved its first state): the question resumes, and the search starts over (Ray's
            # restore would count the trials of a run it never saw).
            for leftover in (RAY_TUNER_FILE, JOURNAL_FILE):
                (local / leftover).unlink(missing_ok=True)
            return drive(found.spec, location, held, address, None, verbose)
        if not Tuner.can_restore(experiment):
            raise UsageError(f"--resume {experiment}: not an experiment folder of tune.run "
                             f"(needs {study_file} and Ray's tuner state)")
        start_ray(address, location.storage, found.spec.resources, verbose)
        trainable = build_trainable(found.spec, found.spec.fixed)
        tuner = restored_tuner(experiment, trainable, held)
        return fit(tuner, found.spec, location, verbose)


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    if args.resume:
        ignored = [flag for flag, value in (
            ("--set", args.overrides), ("--dry-run", args.dry_run), ("--name", args.name),
            ("--budget-epochs", args.budget_epochs), ("--time-budget", args.time_budget),
            ("--num-samples", args.num_samples), ("--max-concurrent", args.max_concurrent),
            ("--cpus-per-trial", args.cpus_per_trial), ("--gpus-per-trial", args.gpus_per_trial),
            ("--wandb", args.wandb), ("--storage", args.storage != "results")) if value]
        if ignored:
            raise CommandLineError(f"--resume continues a search exactly as it was saved; it "
                                   f"cannot be combined with {', '.join(ignored)}")
    prepare_ray(args.address, args.verbose)
    experiment = args.resume
    try:
        check_trial_folders()
        if args.resume:
            return 0 if resume(args.resume, args.address, args.verbose) else 1
        spec = load_study(args.space, study_overrides(args))
        if args.name is not None:
            check_experiment_name(args.name, "--name")
        if args.dry_run:
            print(spec.to_yaml(), end="")
            return 0
        location = new_location(args.storage, args.name or spec.name,
                                chosen=args.name is not None)
        experiment = location.uri
        print(placed_line(location, args.name or spec.name), flush=True)
        complete = launch(spec, location, args.address, args.wandb, verbose=args.verbose)
    except KeyboardInterrupt as interrupt:
        stop_ray()  # before the command's line: nothing Ray's workers print comes after it
        if isinstance(interrupt, Interrupted):
            raise  # with its own line
        started = experiment and (Location.of(experiment).state_folder / STUDY_FILE).is_file()
        raise Interrupted(f"resume with: {command_line(RESUME, experiment)}" if started
                          else "the search had not started: nothing was kept") from None
    return 0 if complete else 1  # stopped early: the resume hint is printed


if __name__ == "__main__":
    sys.exit(main())
