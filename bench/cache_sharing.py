"""Whether trials share the data cache: the data set-up of a second trial against the first
on a cold cache (an empty XDG_CACHE_HOME), each in its own process as Ray's trial workers are.

The first set-up generates the synthetic set and computes its features; the second only maps
the cached arrays. ``python -m bench.cache_sharing [--quick]`` prints the rows.
"""

from __future__ import annotations

import json
import tempfile
import time

from bench import in_new_process, row, run_alone

GOAL = 0.05


def time_setup() -> None:
    """Run in a fresh process: print the seconds Trainer.setup_data takes, split into finding
    (or generating) the data set and loading (or computing) its features."""
    from baseres.config import TrainConfig
    from baseres.data.cache import resolve_data_root
    from baseres.trainer import Trainer

    cfg = TrainConfig(num_threads=1, progress=False)
    trainer = Trainer(cfg)  # model and optimiser first: they are no part of the data set-up
    start = time.perf_counter()
    resolve_data_root(cfg, progress=False)
    found = time.perf_counter()
    trainer.setup_data(progress=False)
    done = time.perf_counter()
    print(json.dumps({"data_set_s": found - start, "features_s": done - found}))


def _setup_in_new_process(cache: str) -> dict[str, float]:
    return json.loads(in_new_process("bench.cache_sharing", "time_setup",
                                     env={"XDG_CACHE_HOME": cache}))


def measure(quick: bool) -> list[dict]:
    with tempfile.TemporaryDirectory() as cache:
        first = _setup_in_new_process(cache)
        second = _setup_in_new_process(cache)
    cold, warm = sum(first.values()), sum(second.values())
    ratio = warm / cold
    features_only = warm / first["features_s"]
    return [
        row("cache sharing", round(ratio, 4), "ratio", f"<= {GOAL}", ratio <= GOAL,
            f"second trial's data set-up {warm:.2f} s vs the first's {cold:.1f} s on an empty "
            f"cache (generating the synthetic set {first['data_set_s']:.1f} s, features "
            f"{first['features_s']:.1f} s; against the features alone {features_only:.4f}); "
            f"default config, separate processes"),
    ]


if __name__ == "__main__":
    run_alone(measure, "python -m bench.cache_sharing", __doc__)
