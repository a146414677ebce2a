"""``python -m baseres.train``: train one config (or one config with several seeds) from the
command line; the seed code's own flags work as written."""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

from baseres.cli import (
    DefaultsHelpFormatter,
    Interrupted,
    OneLineParser,
    command_line,
    run_command,
)
from baseres.config import ConfigError, TrainConfig, config_fields, field_types
from baseres.hooks import BEST_FILE, CHECKPOINT_FILE, METRICS_FILE, default_hooks, import_wandb
from baseres.trainer import Trainer, TrainingDiverged

# The seed code's own flag spellings, mapped onto TrainConfig keys.
_ALIASES = {"lr": "learning_rate", "data-root": "data_root", "out": "out_dir"}


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, but got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m baseres.train",
        description="Train a base + residual echo-depth model. Every TrainConfig key is a flag "
        "(--key or --key-with-dashes); precedence: defaults < --config FILE < flags. Writes "
        "<out>/config.yaml, metrics.jsonl, checkpoint.pt, best.pt and TensorBoard events.",
        formatter_class=DefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", help="YAML file of TrainConfig values (e.g. from tune.export)")
    parser.add_argument("--use_silog", action="store_true",
                        help="seed flag: SI-log reconstruction loss (= --recon_loss silog)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier run in --out instead of refusing")
    parser.add_argument("--seeds", type=int, metavar="N",
                        help="train N full runs, seeds seed .. seed+N-1, into <out>/seed-<s>/ and "
                        "write <out>/seeds.json (best val_rmse and val_delta1 per seed, mean and "
                        "sample std), to confirm a result before believing it; with --resume, "
                        "seeds that never checkpointed start afresh")
    aliases = {v: k for k, v in _ALIASES.items()}
    hints = config_fields()
    for spec in dataclasses.fields(TrainConfig):
        name, hint, doc = spec.name, hints[spec.name], spec.metadata["help"]
        if name == "extra":
            continue
        if spec.default not in (None, False):  # flags default to "not given" (see --config)
            doc += f" (default: {spec.default})"
        # The seed code's spelling first (it is the one usage shows), each spelling once.
        flags = list(dict.fromkeys([*([f"--{aliases[name]}"] if name in aliases else []),
                                    f"--{name}", f"--{name.replace('_', '-')}"]))
        kind = _flag_type(hint)
        if kind is bool:
            parser.add_argument(*flags, dest=name, nargs="?", const=True, type=_parse_bool,
                                help=doc)
        elif kind is list:
            parser.add_argument(*flags, dest=name, nargs="+", help=doc)
        else:
            parser.add_argument(*flags, dest=name, type=kind, help=doc)
    return parser


def _flag_type(hint) -> type:
    base = next(t for t in field_types(hint) if t is not type(None))
    return base if base in (bool, int, float, list) else str


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = vars(args).copy()
    for flag in ("resume", "overwrite", "seeds"):
        values.pop(flag, None)
    base = TrainConfig.from_yaml(values.pop("config")).to_dict() if "config" in values else {}
    if values.pop("use_silog", False):
        values["recon_loss"] = "silog"
    return TrainConfig.from_dict({**base, **values}, source="command line")


def prepare_out_dir(out_dir: Path, resume: bool, overwrite: bool, fresh_ok: bool = False) -> bool:
    """Apply --resume / --overwrite to `out_dir`; True when the run continues from its checkpoint.

    `fresh_ok`: --resume may start a run that never checkpointed (a seed --seeds had not reached).
    """
    if (out_dir / "config.yaml").exists() and not (resume or overwrite):
        raise ConfigError(f"{out_dir}: holds an earlier run; pass --resume to continue it, "
                          "--overwrite to replace it, or choose another --out")
    checkpointed = (out_dir / CHECKPOINT_FILE).exists()
    if resume and not checkpointed and not fresh_ok:
        raise ConfigError(f"{out_dir}: --resume needs {CHECKPOINT_FILE} there, but none exists")
    if overwrite or (resume and not checkpointed):
        for path in [out_dir / n for n in (METRICS_FILE, CHECKPOINT_FILE, BEST_FILE)] + list(
                out_dir.glob("events.out.tfevents.*")):
            path.unlink(missing_ok=True)
    return resume and checkpointed


def train_run(cfg: TrainConfig, out_dir: Path, from_checkpoint: bool) -> Trainer:
    # Built before the Trainer: a missing wandb (use_wandb) is refused before the data is.
    trainer = Trainer(cfg, hooks=default_hooks(cfg, out_dir))
    if from_checkpoint:
        trainer.load_checkpoint(out_dir / CHECKPOINT_FILE)
    trainer.setup_data()  # a data error is said before the banner, not after it
    shape = f", divisor {cfg.base_channel_divisor}" if cfg.model == "base_residual" else ""
    print(f"training {cfg.model} (C={cfg.base_channels}{shape}, {cfg.image_size}x"
          f"{cfg.image_size}) on {cfg.dataset} from {trainer.data_root}; "
          f"parameters {trainer.model.param_counts()}; output {out_dir}", flush=True)
    if "warmup_epochs" not in cfg.inert_keys() and cfg.warmup_epochs >= cfg.epochs:
        print(f"warning: warmup_epochs {cfg.warmup_epochs} >= epochs {cfg.epochs}: the "
              "curriculum never ends and the base is never fixed (the seed's 50 are of 200 "
              "epochs: --epochs 200, or --warmup_fraction 0.25 for its share)", flush=True)
    trainer.fit()
    return trainer


def seed_summary(trainers: list[Trainer]) -> dict:
    """Each seed's best epoch (lowest val_rmse), and mean and sample std over the seeds."""
    seeds = []
    for trainer in trainers:
        best = next(r for r in trainer.history if r["epoch"] == trainer.best["epoch"])
        seeds.append({"seed": trainer.cfg.seed, "best_epoch": int(best["epoch"]),
                      "val_rmse": best["val_rmse"], "val_delta1": best["val_delta1"],
                      "out_dir": str(trainer.cfg.resolved_out_dir)})
    summary: dict = {"seeds": seeds}
    for key in ("val_rmse", "val_delta1"):
        values = [seed[key] for seed in seeds]
        summary[key] = {"mean": statistics.mean(values), "std": statistics.stdev(values)}
    return summary


def train_seeds(cfg: TrainConfig, out_dir: Path, count: int, resume: bool,
                overwrite: bool) -> dict:
    """Full runs of `cfg` at seeds seed .. seed+count-1; writes and returns <out>/seeds.json."""
    if count < 2:
        raise ConfigError(f"--seeds must be >= 2 (one seed is a plain run), but got {count}")
    runs = [cfg.replace(seed=cfg.seed + i, out_dir=str(out_dir / f"seed-{cfg.seed + i}"))
            for i in range(count)]
    # Every folder is checked before the first run starts, not after hours of training.
    continues = [prepare_out_dir(run.resolved_out_dir, resume, overwrite, fresh_ok=True)
                 for run in runs]
    trainers = [train_run(run, run.resolved_out_dir, from_checkpoint)
                for run, from_checkpoint in zip(runs, continues)]
    summary = seed_summary(trainers)
    (out_dir / "seeds.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def print_seed_summary(summary: dict, out_dir: Path) -> None:
    for seed in summary["seeds"]:
        print(f"seed {seed['seed']}: best val_rmse {seed['val_rmse']:.4f} "
              f"(val_delta1 {seed['val_delta1']:.4f}) at epoch {seed['best_epoch']}")
    rmse, delta1 = summary["val_rmse"], summary["val_delta1"]
    print(f"over {len(summary['seeds'])} seeds (mean +- sample std): val_rmse {rmse['mean']:.4f} "
          f"+- {rmse['std']:.4f}, val_delta1 {delta1['mean']:.4f} +- {delta1['std']:.4f}; "
          f"written to {out_dir / 'seeds.json'}")


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    seeds = getattr(args, "seeds", None)
    cfg = config_from_args(args)
    out_dir = cfg.resolved_out_dir
    try:
        resume, overwrite = getattr(args, "resume", False), getattr(args, "overwrite", False)
        saved = out_dir / "config.yaml"
        if resume and seeds is None and "config" not in vars(args) and saved.is_file():
            # Continue the run as it was configured; flags given now still override.
            args.config = str(saved)
            cfg = config_from_args(args)
        if cfg.use_wandb:
            import_wandb()  # refused before --overwrite deletes the earlier run's files
        if seeds is None:
            trainer = train_run(cfg, out_dir, prepare_out_dir(out_dir, resume, overwrite))
        else:
            summary = train_seeds(cfg, out_dir, seeds, resume, overwrite)
    except TrainingDiverged as err:
        print(f"error: training diverged: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        again = (command_line("python -m baseres.train --out", out_dir, "--resume")
                 if seeds is None else "the same command with --resume")
        raise Interrupted(f"continue with: {again}") from None
    if seeds is not None:
        print_seed_summary(summary, out_dir)
        return 0
    print(f"done: best val_rmse {trainer.best['val_rmse']:.4f} at epoch {trainer.best['epoch']}; "
          f"results in {out_dir} ({command_line('tensorboard --logdir', out_dir)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
