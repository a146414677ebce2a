"""The recorded learning-curve table that bench.replay drives search policies on.

``python -m bench.curves --record`` samples configs from generalization.yaml's search space
with Optuna's seeded RandomSampler, loads the study through the service's own loader
(tune.study.load_study, the bench setting applied as ``--set`` overrides) and trains each
trial config over the whole epoch budget with one thread, recording per epoch the val RMSE
and train_sparse (a success target), and per config the base decoder's parameter count (the
Pareto view's other axis). The table is rewritten after every config, so an interrupted
recording keeps what it finished. ``python -m bench.curves`` prints what the table holds.

Two regimes (``--regime``), each its own table:

- ``search-efficiency`` (bench/data/curves.json.gz): search_efficiency's setting (C=8, 32 px,
  400 train / 200 val samples), 12 epochs. The committed table (120 configs, 17 KB) took
  11-70 s a config on one niced thread of a shared 2-core machine, 51 minutes in all
  (``meta.seconds``); about 12 s alone.
- ``question`` (bench/data/curves-question.json.gz): generalization.yaml as the question runs
  it (C=16, 32 px, 16 epochs, its own synthetic set), every baseline first, then the sampled
  configs. Long: ``--resume`` goes on from the last config the table holds, so it can be
  recorded a config at a time over days.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baseres.atomic import write_atomic
from baseres.cli import bounded_int, run_command
from baseres.errors import UserError

TABLE = Path(__file__).with_name("data") / "curves.json.gz"
STUDY = "generalization"
EPOCHS = 12
SETTING = {"train.image_size": 32, "train.base_channels": 8, "train.batch_size": 16}
DATA = {"num_train": 400, "num_val": 200, "num_test": 0}  # search_efficiency's SynthParams


@dataclass(frozen=True)
class Regime:
    setting: dict[str, Any]  # study overrides
    data: dict[str, int] | None  # SynthParams of its own synthetic set; None: the study's
    epochs: int | None  # None: the study's
    baselines: bool  # record the study's baselines first
    out: Path


REGIMES = {
    "search-efficiency": Regime(SETTING, DATA, EPOCHS, False, TABLE),
    "question": Regime({}, None, None, True, TABLE.with_name("curves-question.json.gz")),
}


@dataclass(frozen=True)
class Curve:
    """One recorded config: its searched values and its per-epoch record."""

    params: dict[str, Any]
    val_rmse: tuple[float, ...]  # one per epoch; shorter than the budget if it diverged
    train_sparse: tuple[float, ...]
    base_decoder_params: int  # 0 for a model without a base (the U-Net)
    baseline: str | None = None  # the study's baseline this curve is

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
                         c["base_decoder_params"], c.get("baseline")) for c in raw["curves"])
    return Table(raw["study"], raw["epochs"], curves, raw["meta"])


def save_table(table: Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = {"study": table.study, "epochs": table.epochs, "meta": table.meta,
           "curves": [{"params": c.params, "val_rmse": [round(v, 5) for v in c.val_rmse],
                       "train_sparse": [round(v, 5) for v in c.train_sparse],
                       "base_decoder_params": c.base_decoder_params,
                       **({"baseline": c.baseline} if c.baseline else {})}
                      for c in table.curves]}

    def write(tmp: Path) -> None:
        with gzip.open(tmp, "wt", encoding="utf-8") as handle:
            json.dump(raw, handle, separators=(",", ":"))

    write_atomic(path, write)


def bench_study(epochs: int | None, root: Path | None, setting: dict[str, Any] = SETTING):
    """generalization.yaml with a regime's setting, loaded as tune.run loads a study."""
    from tune.study import load_study

    overrides = [f"{key}={value}" for key, value in setting.items()]
    overrides += [f"train.epochs={epochs}"] if epochs is not None else []
    overrides += [f"data.root={root}"] if root is not None else []
    return load_study(STUDY, overrides)


def sample_configs(space: dict, count: int, seed: int) -> list[dict[str, Any]]:
    """`count` points of the space from Optuna's RandomSampler, seeded."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [study.ask(dict(space)).params for _ in range(count)]


def train_curve(spec, params: dict[str, Any], baseline: str | None = None) -> Curve:
    """One config over the whole budget on one thread, in memory (no files, no hooks)."""
    from baseres.trainer import Trainer, TrainingDiverged

    cfg = spec.trial_config(params).replace(num_threads=1, progress=False)
    trainer = Trainer(cfg)
    try:
        trainer.fit(progress=False)
    except TrainingDiverged:
        pass  # the curve ends where it diverged; a replayed trial ends there too
    history = trainer.history
    return Curve(params, tuple(r["val_rmse"] for r in history),
                 tuple(r.get("train_sparse", math.nan) for r in history),  # none: a U-Net
                 trainer.model.param_counts().get("base_decoder", 0), baseline)


def regime_study(chosen: Regime):
    """The regime's study, its data generated (before the first config's timing)."""
    from baseres.data.cache import resolve_data_root
    from baseres.data.synth import SynthParams, ensure_synthetic

    root = (ensure_synthetic(SynthParams(**chosen.data), progress=False)
            if chosen.data is not None else None)
    spec = bench_study(chosen.epochs, root, chosen.setting)
    if root is None:
        resolve_data_root(spec.trial_config(spec.low_corner()))
    return spec


_worker_spec = None  # a worker process's study (regime_study, once per process)


def _start_worker(chosen: Regime) -> None:
    global _worker_spec
    _worker_spec = regime_study(chosen)


def _timed_curve(item: tuple[dict[str, Any], str | None], spec=None) -> tuple[Curve, float]:
    """One config's curve and its seconds, on `spec` or the worker process's study."""
    start = time.perf_counter()
    curve = train_curve(spec or _worker_spec, *item)
    return curve, round(time.perf_counter() - start, 1)


def record(regime: str, count: int, seed: int, out: Path, resume: bool = False,
           workers: int = 1) -> Table:
    """Train the regime's baselines (if it records them), then `count` sampled configs, on
    `workers` processes of one thread each (a config's curve does not depend on which); the
    table is rewritten after each config, in order. `resume`: go on after the configs `out`
    holds, which must come from the same command."""
    import multiprocessing

    chosen = REGIMES[regime]
    spec = regime_study(chosen)
    epochs = spec.epochs
    command = f"python -m bench.curves --record --regime {regime} --configs {count} --seed {seed}"
    meta = {"command": command,
            "sampler": f"optuna RandomSampler(seed={seed}) over {STUDY}.yaml's search space",
            "setting": {**chosen.setting, "train.epochs": epochs,
                        **{f"synthetic.{k}": v for k, v in (chosen.data or {}).items()},
                        "train.seed": spec.fixed.get("seed", 0), "num_threads": 1},
            "seconds": []}
    curves: list[Curve] = []
    if resume and out.is_file():
        held = load_table(out)
        if held.meta.get("command") != command:
            raise UserError(f"{out}: recorded by {held.meta.get('command')!r}, not by "
                            f"{command!r}; --resume goes on with the same command only")
        curves, meta = list(held.curves), held.meta
    baselines = list(spec.baselines.items()) if chosen.baselines else []
    plan = ([(point, name) for name, point in baselines]
            + [(params, None) for params in sample_configs(spec.space, count, seed)])
    todo = plan[len(curves):]
    with ExitStack() as stack:  # the pool's processes end with the recording, or its error
        if workers > 1:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(
                workers, _start_worker, (chosen,)))
            results = pool.imap(_timed_curve, todo)
        else:
            results = (_timed_curve(item, spec) for item in todo)
        for (curve, seconds), (_, baseline) in zip(results, todo):
            curves.append(curve)
            meta["seconds"].append(seconds)
            save_table(Table(STUDY, epochs, tuple(curves), meta), out)
            print(f"[{len(curves)}/{len(plan)}] {baseline or 'sampled'}: best val RMSE "
                  f"{curve.best:.4f} m in {seconds} s", file=sys.stderr, flush=True)
    return Table(STUDY, epochs, tuple(curves), meta)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.curves", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help="train and write the table")
    parser.add_argument("--regime", choices=REGIMES, default="search-efficiency",
                        help="the setting the configs train in, and so the table")
    parser.add_argument("--configs", type=bounded_int("configs", 1), default=100,
                        help="sampled configs (after the baselines, where the regime has them)")
    parser.add_argument("--seed", type=bounded_int("seed", 0), default=0,
                        help="the RandomSampler's seed")
    parser.add_argument("--resume", action="store_true",
                        help="go on after the configs the table holds (same command)")
    parser.add_argument("--workers", type=bounded_int("workers", 1), default=1,
                        help="configs trained at once, one thread each (not in the command "
                        "--resume matches: the curves do not depend on it)")
    parser.add_argument("--out", type=Path, help="the table (default: the regime's)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    out = args.out or REGIMES[args.regime].out
    table = (record(args.regime, args.configs, args.seed, out, args.resume, args.workers)
             if args.record else load_table(out))
    best = sorted(c.best for c in table.curves)
    print(f"{out}: {len(table.curves)} configs of {table.epochs} epochs; best val RMSE "
          f"{best[0]:.4f}, median {best[len(best) // 2]:.4f}, worst {best[-1]:.4f} m; "
          f"recorded by {table.meta['command']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
