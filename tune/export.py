"""``python -m tune.export``: one trial of an experiment -> a TrainConfig YAML and its weights.

Trials are ranked by their best finite val_rmse over epochs (a diverged trial is never
ranked), except that after a re-check (tune.recheck) the re-trained configs come first, by
their mean over fresh seeds: rank 1 is the re-checked best. The YAML is the trial's own
resolved config (the config.yaml its Trainer wrote) with a fresh output folder, so
``python -m baseres.train --config best.yaml`` retrains it over the study's full budget and
repeats the trial's numbers epoch for epoch; the weights of the trial's best epoch go next to
it (best.pt) as a plain state dict of its model (baseres.model.build_model).
"""

from __future__ import annotations

import argparse
import math
import pickle
import sys
import textwrap
from pathlib import Path
from typing import Any

import torch

from baseres.atomic import write_atomic
from baseres.cli import DefaultsHelpFormatter, OneLineParser, command_line, run_command
from baseres.config import TrainConfig
from baseres.hooks import CHECKPOINT_FILE
from tune.errors import UsageError
from tune.experiment import Experiment, TrialRecord
from tune.numbers import finite
from tune.recheck import rank_key, retrained_means
from tune.study import StudySpec


def pick_trial(experiment: Experiment, rank: int) -> tuple[TrialRecord, int]:
    """The trial at `rank` (1 = best: the re-checked best where the search's winners were
    re-trained, else the best by val RMSE) and how many were ranked."""
    metric = experiment.spec.metric
    ranked = sorted((trial for trial in experiment.trials() if trial.best),
                    key=rank_key(retrained_means(experiment.folder, experiment.spec)))
    if not ranked:
        raise UsageError(f"{experiment.folder}: no finished trial; none reported a finite "
                         f"{metric}")
    if not 1 <= rank <= len(ranked):
        raise UsageError(f"--rank: `1 <= rank <= {len(ranked)}` must hold ({len(ranked)} trials "
                         f"have a finite {metric}), but got rank={rank}")
    return ranked[rank - 1], len(ranked)


def _load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        message = " ".join(str(err).split())[:200]
        raise UsageError(f"{path}: cannot read the checkpoint: {message}") from None


def best_epoch(trial: TrialRecord) -> int:
    return int(trial.best["epoch"])


def pick_checkpoint(trial: TrialRecord, metric: str) -> tuple[Path, dict[str, Any]]:
    """The trial's checkpoint of its best epoch; else (not kept) its lowest-`metric` one."""
    saved = [(path, _load_checkpoint(path))
             for path in sorted(trial.folder.glob(f"checkpoint_*/{CHECKPOINT_FILE}"))]
    if not saved:
        raise UsageError(f"{trial.folder}: no checkpoint_*/{CHECKPOINT_FILE} to take the "
                         "weights from")
    for path, state in saved:
        if state["epoch"] == best_epoch(trial):
            return path, state

    def value(state: dict[str, Any]) -> float:
        """The metric of the checkpoint's own (last) epoch; NaN must never win a min()."""
        last = state["history"][-1] if state["history"] else {}
        number = last.get(metric, math.nan)
        return number if math.isfinite(number) else math.inf

    return min(saved, key=lambda saved_one: value(saved_one[1]))


def weights_path(out: Path) -> Path:
    return out.with_suffix(".pt") if out.suffix in (".yaml", ".yml") else Path(f"{out}.pt")


def provenance(experiment: Path, spec: StudySpec, trial: TrialRecord, rank: int, ranked: int,
               checkpoint: Path, state: dict[str, Any], cfg: TrainConfig, out: Path) -> str:
    best, metric = trial.best, spec.metric
    lines = [
        f"Exported by `python -m tune.export` from experiment {experiment}",
        f"trial {trial.trial_id}: {trial.folder}",
        (f"baseline {trial.baseline}" if trial.baseline else "sampled by the search")
        + f"; rank {rank} of {ranked} trials by best {metric}, the re-checked configs first by "
        "their mean over fresh seeds (baselines rank too; --rank N exports another)",
        f"best epoch {best_epoch(trial)} of the {trial.epochs_run} it ran ({trial.end_text}): "
        # a figure the model does not report (a U-Net's sparse term) is left out, not nan
        + ", ".join(f"{name} {best[name]:.6g}" for name in dict.fromkeys(
            (metric, "val_delta1", "sparse")) if finite(best.get(name))),
    ]
    if state["epoch"] == best_epoch(trial):
        lines.append(f"weights of epoch {state['epoch']}: {weights_path(out).name} "
                     f"(from {checkpoint.relative_to(experiment)})")
    else:
        lines.append(f"the best epoch's checkpoint was not kept: {weights_path(out).name} holds "
                     f"the lowest-{metric} one kept, epoch {state['epoch']} "
                     f"(from {checkpoint.relative_to(experiment)})")
    lines += [
        f"retrain: {command_line('python -m baseres.train --config', out)}",
        f"epochs {cfg.epochs}: the study's full budget (the search's max_t is "
        f"{spec.max_t}).",
    ]
    determinism = (
        "The retrain repeats the trial's numbers only with: the same seed "
        f"({cfg.seed}); the same data set ({cfg.dataset}"
        + (f" at {cfg.data_root}" if cfg.data_root else ", as generated by this version of "
           "baseres.data.synth")
        + ") and its feature cache; the same torch thread count "
        f"(num_threads {cfg.num_threads}); the same epochs (the cosine learning-rate schedule "
        f"spans them); and the same device and precision (device {cfg.device}, precision "
        f"{cfg.precision}; other kernels round differently)."
    )
    # Only the prose is wrapped: paths and the command stay whole, to be copied.
    lines += textwrap.wrap(determinism, 96, break_long_words=False, break_on_hyphens=False)
    return "".join(f"# {line}\n" for line in lines)


def export(folder: str | Path, rank: int = 1, out: str | Path = "best.yaml") -> tuple[Path, Path]:
    """Write the trial at `rank` as a TrainConfig YAML at `out` and its weights beside it."""
    out = Path(out)
    pt = weights_path(out)
    found = Experiment(folder)
    experiment, spec = found.folder, found.spec
    trial, ranked = pick_trial(found, rank)
    checkpoint, state = pick_checkpoint(trial, spec.metric)
    trained = TrainConfig.from_yaml(trial.folder / "config.yaml")
    # The trial's own config already spans the study's full budget (train.epochs, which the
    # cosine schedule depends on); only where it writes, its name and the progress bar (off
    # under Ray) change, none of which touches the numbers.
    cfg = trained.replace(out_dir=None, experiment_name=f"{experiment.name}-{trial.trial_id}",
                          progress=True,
                          extra={**trained.extra, "exported_from": str(trial.folder)})
    header = provenance(experiment, spec, trial, rank, ranked, checkpoint, state, cfg, out)
    for target in (out, pt):
        if target.is_dir():
            raise UsageError(f"--out {out}: {target} is a folder")
        if target.resolve().is_relative_to(experiment):
            raise UsageError(f"--out {out}: must not be inside the experiment folder "
                             f"{experiment} (it would replace the experiment's own files), "
                             f"but {target} is")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist")
    inert = cfg.inert_keys()
    header += (f"# left out, as they change nothing for this model: {', '.join(inert)}\n"
               if inert else "")

    def config_and_weights(tmp: Path) -> None:  # neither replaced unless both are written
        cfg.to_yaml(tmp, header=header, without=inert)
        write_atomic(pt, lambda weights: torch.save(state["model"], weights))

    try:
        write_atomic(out, config_and_weights)
    except OSError as err:
        raise UsageError(f"--out {out}: cannot write there: {err.strerror}") from None
    return out, pt


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m tune.export",
        description="Export one trial of a tune.run experiment for retraining: trials are ranked "
        "by their best finite val_rmse over epochs (diverged trials never rank); the trial at "
        "--rank becomes a complete TrainConfig YAML (its resolved config, full epoch budget, "
        "provenance in # comments) and its best epoch's weights a plain state dict beside it "
        "(<out without .yaml>.pt). Retrain with: python -m baseres.train --config <out>.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("experiment", metavar="EXPERIMENT_DIR",
                        help="experiment folder of tune.run (holds study.yaml and trial_*/)")
    parser.add_argument("--rank", type=int, default=1, help="which trial: 1 = the best")
    parser.add_argument("--out", default="best.yaml",
                        help="YAML file to write (replaced if present); weights go to <out>.pt")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    out, pt = export(args.experiment, args.rank, args.out)
    print(f"exported {out} and {pt}; retrain with: "
          + command_line("python -m baseres.train --config", out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
