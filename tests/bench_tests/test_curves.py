"""bench.curves: a recording goes on after the configs its table holds (--resume), with the
same configs a recording from the start would train, and refuses a table of another command."""

from dataclasses import replace

import pytest

import bench.curves as curves
from baseres.errors import UserError
from bench.curves import Curve, Regime, load_table, record, save_table


@pytest.fixture
def trained(monkeypatch, tmp_path):
    """A tiny regime whose configs "train" instantly; the list of what was trained."""
    done = []

    def train(spec, params, baseline=None):
        done.append((baseline, dict(params)))
        return Curve(params, (2.0, 1.5), (0.1, 0.1), 10, baseline)

    monkeypatch.setattr(curves, "train_curve", train)
    monkeypatch.setitem(curves.REGIMES, "tiny", Regime(
        {}, {"num_train": 8, "num_val": 4, "num_test": 0}, 2, True, tmp_path / "t.json.gz"))
    return done


def test_the_baselines_come_first_then_the_sampled_configs(trained, tmp_path):
    table = record("tiny", 2, seed=0, out=tmp_path / "t.json.gz")
    assert [c.baseline for c in table.curves] == ["seed_before", "seed_after", "unet", None, None]
    assert load_table(tmp_path / "t.json.gz") == table and table.epochs == 2
    assert table.meta["command"] == ("python -m bench.curves --record --regime tiny --configs 2 "
                                     "--seed 0")


def test_a_resumed_recording_trains_only_what_is_missing(trained, tmp_path):
    whole = record("tiny", 2, seed=0, out=tmp_path / "whole.json.gz")
    out = tmp_path / "cut.json.gz"
    save_table(replace(whole, curves=whole.curves[:4]), out)  # cut after the first sampled
    trained.clear()
    resumed = record("tiny", 2, seed=0, out=out, resume=True)
    assert [b for b, _ in trained] == [None]  # the last sampled config alone
    assert resumed.curves == whole.curves


def test_a_table_of_another_command_is_not_resumed(trained, tmp_path):
    out = tmp_path / "t.json.gz"
    record("tiny", 1, seed=0, out=out)
    with pytest.raises(UserError, match="--resume goes on with the same command only"):
        record("tiny", 2, seed=0, out=out, resume=True)


def test_two_workers_record_the_very_curves_one_records(monkeypatch, tmp_path):
    monkeypatch.setitem(curves.REGIMES, "tiny", Regime(
        {"train.base_channels": 8}, {"num_train": 32, "num_val": 16, "num_test": 16}, 2, False,
        tmp_path / "t.json.gz"))
    alone = record("tiny", 3, seed=0, out=tmp_path / "alone.json.gz")
    pair = record("tiny", 3, seed=0, out=tmp_path / "pair.json.gz", workers=2)
    assert pair.curves == alone.curves and len(pair.meta["seconds"]) == 3
