"""``python -m tune.evaluate EXPERIMENT_DIR [--split test] [--top K]``: every baseline and the
top-K searched trials, from the checkpoint of their best validation epoch, scored once on a
split the search never read.

With held-out test locations (``test_locations``), each trial is scored twice: on the test rows
of the places it trained on ("seen") and on the places it never saw ("unseen"); the seed's
hypothesis (a narrow base memorises less and transfers better) is the difference between those
columns across base_channel_divisor. Writes ``<experiment>/evaluation-<split>.json``; the
summary shows it as a table. The test split is read once: a second evaluation of it is refused
unless ``--again`` says that this is deliberate.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from baseres.cli import DefaultsHelpFormatter, Interrupted, OneLineParser, bounded_int, run_command
from baseres.config import TrainConfig
from baseres.data.cache import load_split, resolve_data_root
from baseres.trainer import Trainer
from tune.console_text import say
from tune.errors import UsageError
from tune.experiment import Experiment, TrialRecord, driving
from tune.json_files import write_json
from tune.recheck import baselines_and_top, rank_key, retrained_means
from tune.report.markdown import evaluation_table
from tune.report.records import EvaluatedTrial, Evaluation, evaluation_file
from tune.study import BASELINE_KEY
from tune.summary import write_summary

SPLITS = ("test", "val")
METRICS = ("rmse", "delta1", "abs_rel", "mae")


def columns(cfg: TrainConfig, split: str) -> dict[str, str]:
    """Column name -> data split: seen and unseen places when the test split holds out places."""
    if split == "test" and cfg.test_locations:
        return {"seen": "test_seen", "unseen": "test"}
    return {split: split}


def score_trial(trial: TrialRecord, split: str) -> EvaluatedTrial:
    from tune.export import pick_checkpoint

    cfg = TrainConfig.from_yaml(trial.folder / "config.yaml").replace(
        device="cpu", progress=False, out_dir=None)
    checkpoint, state = pick_checkpoint(trial, "val_rmse")
    root = resolve_data_root(cfg, progress=False)
    data = {name: load_split(cfg, data_split, root, progress=False)
            for name, data_split in columns(cfg, split).items()}
    # The training split gives each column its "learned nothing" reference: places differ
    # in difficulty, so an RMSE means most next to the mean training depth map's.
    trainer = Trainer(cfg, data={"train": load_split(cfg, "train", root, progress=False),
                                 **data})
    trainer.setup_data(progress=False)
    trainer.model.load_state_dict(state["model"])
    scores = {}
    for name, arrays in data.items():
        values, _ = trainer.evaluate(arrays)
        reference = trainer.reference_rmse[name]
        scores[name] = {**{k: values[k] for k in METRICS}, "samples": len(arrays),
                        "mean_map_rmse": reference, "rmse_ratio": values["rmse"] / reference}
    return EvaluatedTrial(trial.trial_id, trial.label, trial.baseline, trial.model,
                          {k: v for k, v in trial.params.items() if k != BASELINE_KEY},
                          int(state["epoch"]), str(checkpoint), trial.best_val_rmse, scores)


def evaluate(folder: str | Path, split: str = "test", top: int = 2,
             again: bool = False) -> Evaluation:
    experiment = Experiment(folder)
    with driving(experiment.folder, "tune.evaluate"):  # a running search is not finished
        return _evaluate(experiment, split, top, again)


def _evaluate(experiment: Experiment, split: str, top: int, again: bool) -> Evaluation:
    out = evaluation_file(experiment.folder, split)
    if out.exists() and not again:
        raise UsageError(f"{out}: the {split} split of this experiment was already evaluated; "
                         "reading it again after seeing its numbers is how test sets stop "
                         "being tests (pass --again if that is what you mean)")
    # the searched configs the re-check kept first, by their mean over fresh seeds
    baselines, searched = baselines_and_top(
        experiment.trials(), experiment.spec.max_t, top,
        rank_key(retrained_means(experiment.folder, experiment.spec)))
    trials = baselines + searched
    if not trials:
        raise UsageError(f"{experiment.folder}: no trial has a finite val_rmse to evaluate")
    results = []
    for number, trial in enumerate(trials, 1):
        print(f"[{number}/{len(trials)}] {trial.label}: scoring on {split}", flush=True)
        results.append(score_trial(trial, split))
    report = Evaluation(str(experiment.folder), split, top, time.strftime("%Y-%m-%d %H:%M:%S"),
                        list(results[0].scores), results)
    write_json(out, report)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m tune.evaluate", description=__doc__,
                           formatter_class=DefaultsHelpFormatter)
    parser.add_argument("experiment", metavar="EXPERIMENT_DIR", help="experiment folder")
    parser.add_argument("--split", choices=SPLITS, default="test", help="split to score")
    parser.add_argument("--top", type=bounded_int("top", 0), default=2,
                        help="searched trials to score besides every baseline")
    parser.add_argument("--again", action="store_true",
                        help="score a split that was already scored (the test split should be "
                        "read once)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    try:
        report = evaluate(args.experiment, args.split, args.top, args.again)
        experiment = Experiment(args.experiment)
        say(evaluation_table(report, experiment.spec.scientific))
        write_summary(experiment.folder)
    except KeyboardInterrupt:  # the report is written whole at the end, or not at all
        raise Interrupted(f"nothing was written (run it again to score the {args.split} "
                          "split)") from None
    say(f"written: {evaluation_file(experiment.folder, args.split)} and the table in "
          f"{experiment.folder / 'summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
