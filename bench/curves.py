"""The recorded learning-curve table that bench.replay drives search policies on.

``python -m bench.curves --record`` samples configs from generalization.yaml's search space
with Optuna's seeded RandomSampler, loads the study through the service's own loader
(tune.space.load_study, the bench setting applied as ``--set`` overrides) and trains each
trial config over the whole epoch budget with one thread, recording per epoch the val RMSE
and train_sparse (a success target), and per config the base decoder's parameter count (the
Pareto view's other axis). The table is rewritten after every config, so an interrupted
recording keeps what it finished. ``python -m bench.curves`` prints what the table holds.

The bench setting is search_efficiency's (C=8, 32 px, 400 train / 200 val samples), trained
for the study's own 12 epochs so that its scheduler (ASHA on max_t 12) replays
unchanged. The committed table (120 configs, 17 KB) took 11-70 s a config on one niced thread
of a shared 2-core machine, 51 minutes in all (``meta.seconds``); about 12 s alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("data") / "curves.json.gz"
STUDY = "generalization"
EPOCHS = 12
SETTING = {"train.image_size": 32, "train.base_channels": 8, "train.batch_size": 16}
DATA = {"num_train": 400, "num_val": 200, "num_test": 0}  # search_efficiency's SynthParams


@dataclass(frozen=True)
class Curve:
    """One recorded config: its searched values and its per-epoch record."""

    params: dict[str, Any]
    val_rmse: tuple[float, ...]  # one per epoch; shorter than the budget if it diverged
    train_sparse: tuple[float, ...]
    base_decoder_params: int

    @property
    def best(self) -> float:
        return min(self.val_rmse, default=math.inf)


@dataclass(frozen=True)
class Table:
    study: str
    epochs: int
    curves: tuple[Curve, ...]
    meta: dict[str, Any]  # command, setting, seeds, timings: how to record it again


def load_table(path: Path = TABLE) -> Table:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        raw = json.load(handle)
    curves = tuple(Curve(c["params"], tuple(c["val_rmse"]), tuple(c["train_sparse"]),
                         c["base_decoder_params"]) for c in raw["curves"])
    return Table(raw["study"], raw["epochs"], curves, raw["meta"])


def save_table(table: Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = {"study": table.study, "epochs": table.epochs, "meta": table.meta,
           "curves": [{"params": c.params, "val_rmse": [round(v, 5) for v in c.val_rmse],
                       "train_sparse": [round(v, 5) for v in c.train_sparse],
                       "base_decoder_params": c.base_decoder_params} for c in table.curves]}
    partial = path.with_suffix(".partial")
    with gzip.open(partial, "wt", encoding="utf-8") as handle:
        json.dump(raw, handle, separators=(",", ":"))
    partial.replace(path)


def bench_study(epochs: int, root: Path):
    """generalization.yaml with the bench setting, loaded as tune.run loads a study."""
    from tune.space import load_study

    overrides = [f"{key}={value}" for key, value in SETTING.items()]
    return load_study(STUDY, [*overrides, f"train.epochs={epochs}", f"data.root={root}"])


def sample_configs(space: dict, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` points of the space from Optuna's RandomSampler, seeded."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [study.ask(dict(space)).params for _ in range(count)]


def train_curve(spec, params: dict[str, Any]) -> Curve:
    """One config over the whole budget on one thread, in memory (no files, no hooks)."""
    from baseres.trainer import Trainer, TrainingDiverged

    cfg = spec.trial_config(params).replace(num_threads=1, progress=False)
    trainer = Trainer(cfg, None, hooks=[])
    try:
        trainer.fit(progress=False)
    except TrainingDiverged:
        pass  # the curve ends where it diverged; a replayed trial ends there too
    history = trainer.history
    return Curve(params, tuple(r["val_rmse"] for r in history),
                 tuple(r["train_sparse"] for r in history),
                 trainer.model.param_counts()["base_decoder"])


def record(count: int, seed: int, epochs: int, out: Path) -> Table:
    from baseres.data.synth import SynthParams, ensure_synthetic

    root = ensure_synthetic(SynthParams(**DATA), progress=False)
    spec = bench_study(epochs, root)
    meta = {"command": f"python -m bench.curves --record --configs {count} --seed {seed} "
                       f"--epochs {epochs}",
            "sampler": f"optuna RandomSampler(seed={seed}) over {STUDY}.yaml's search space",
            "setting": {**SETTING, **{f"synthetic.{k}": v for k, v in DATA.items()},
                        "train.seed": spec.fixed.get("seed", 0), "num_threads": 1},
            "seconds": []}
    curves: list[Curve] = []
    for number, params in enumerate(sample_configs(spec.space, count, seed), start=1):
        start = time.perf_counter()
        curves.append(train_curve(spec, params))
        meta["seconds"].append(round(time.perf_counter() - start, 1))
        save_table(Table(STUDY, epochs, tuple(curves), meta), out)
        print(f"[{number}/{count}] best val RMSE {curves[-1].best:.4f} m in "
              f"{meta['seconds'][-1]} s", file=sys.stderr, flush=True)
    return Table(STUDY, epochs, tuple(curves), meta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.curves", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help="train and write the table")
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="the RandomSampler's seed")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--out", type=Path, default=TABLE)
    args = parser.parse_args(argv)
    table = (record(args.configs, args.seed, args.epochs, args.out) if args.record
             else load_table(args.out))
    best = sorted(c.best for c in table.curves)
    print(f"{args.out}: {len(table.curves)} configs of {table.epochs} epochs; best val RMSE "
          f"{best[0]:.4f}, median {best[len(best) // 2]:.4f}, worst {best[-1]:.4f} m; "
          f"recorded by {table.meta['command']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
