"""tune.export: a trial of the smoke search -> a YAML that retrains to the trial's numbers, plus
the weights of its best epoch; and ``baseres.train --seeds``, which confirms such a winner."""

import errno
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers import RUN_LIMIT_S, copy_experiment

from baseres.config import TrainConfig
from baseres.model import BaseResidualNet
from tune.experiment import STUDY_FILE, read_rows
from tune.export import main


def ranking(experiment: Path) -> list[tuple[float, int, Path]]:
    """(best finite val_rmse, its epoch, trial folder), best first: the test's own oracle."""
    found = []
    for folder in experiment.glob("trial_*"):
        finite = [r for r in read_rows(folder / "result.json") if math.isfinite(r["val_rmse"])]
        if finite:
            best = min(finite, key=lambda r: r["val_rmse"])
            found.append((best["val_rmse"], best["epoch"], folder))
    return sorted(found)


def export(experiment: Path, out: Path, *flags: str) -> str:
    assert main([str(experiment), "--out", str(out), *flags]) == 0
    return out.read_text()


def test_rank_1_retrains_to_the_trials_val_rmse(smoke_experiment, tmp_path):
    value, epoch, folder = ranking(smoke_experiment)[0]
    out = tmp_path / "best.yaml"
    export(smoke_experiment, out)
    # The documented command, in a fresh process; XDG_CACHE_HOME (tests/conftest.py) is
    # inherited, so it reads the data set and feature cache the trials used.
    proc = subprocess.run([sys.executable, "-m", "baseres.train", "--config", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=RUN_LIMIT_S)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    cfg = TrainConfig.from_yaml(out)
    retrained = read_rows(tmp_path / cfg.resolved_out_dir / "metrics.jsonl")
    assert [r["epoch"] for r in retrained] == list(range(1, cfg.epochs + 1))  # the full budget
    assert retrained[epoch - 1]["val_rmse"] == pytest.approx(value, rel=0.01)
    # every epoch the trial ran repeats, not only the best one
    trial = {r["epoch"]: r["val_rmse"] for r in read_rows(folder / "result.json")}
    assert [r["val_rmse"] for r in retrained[:len(trial)]] == pytest.approx(
        [trial[e] for e in sorted(trial)], rel=0.01)


def test_export_is_the_trials_config_with_provenance_and_its_best_weights(smoke_experiment,
                                                                         tmp_path):
    value, epoch, folder = ranking(smoke_experiment)[1]
    out = tmp_path / "second.yaml"
    text = export(smoke_experiment, out, "--rank", "2")
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    params = json.loads((folder / "params.json").read_text())
    for needle in (str(smoke_experiment), folder.name, f"best epoch {epoch}", f"{value:.6g}",
                   "val_delta1", "sparse", f"python -m baseres.train --config {out}",
                   "same seed (0)", "num_threads 1", "cosine", "device cpu",
                   params.get("baseline") or "sampled by the search"):
        assert needle in header, needle

    cfg = TrainConfig.from_yaml(out)
    trained = yaml.safe_load((folder / "config.yaml").read_text())
    written = yaml.safe_load(out.read_text())
    changed = {"out_dir", "experiment_name", "progress", "extra"}
    # every key that matters, as the trial had it; the ones that change nothing left out
    assert {k: v for k, v in written.items() if k not in changed} == {
        k: v for k, v in trained.items() if k not in changed and k in written}
    inert = TrainConfig.from_yaml(folder / "config.yaml").inert_keys()
    assert set(trained) - set(written) == set(inert)
    assert f"# left out, as they change nothing for this model: {', '.join(inert)}" in text
    assert cfg.out_dir is None
    assert cfg.experiment_name == f"smoke-{folder.name.removeprefix('trial_')}"
    assert cfg.resolved_out_dir == Path("results", "train", cfg.experiment_name)
    assert cfg.epochs == 3  # smoke.yaml's train.epochs, whether or not ASHA stopped the trial

    state = torch.load(tmp_path / "second.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())  # a plain state dict
    BaseResidualNet(cfg).load_state_dict(state)  # strict: every key, every shape
    kept = [torch.load(p, weights_only=True) for p in folder.glob("checkpoint_*/checkpoint.pt")]
    source = next(k for k in kept if k["epoch"] == epoch)
    assert all(torch.equal(state[k], v) for k, v in source["model"].items())


def test_a_unet_is_exported_without_the_base_and_curriculum_keys(smoke_experiment, tmp_path):
    folders = [f for _, _, f in ranking(smoke_experiment)]
    unet = next(i for i, f in enumerate(folders, 1)
                if json.loads((f / "params.json").read_text()).get("baseline") == "unet")
    text = export(smoke_experiment, tmp_path / "u.yaml", "--rank", str(unet))
    written = yaml.safe_load(text)
    assert written["model"] == "unet"
    # its provenance names the figures a U-Net reports, none as nan
    assert "nan" not in text and "sparse" not in text.split("best epoch")[1].split("\n")[0]
    for key in ("base_channel_divisor", "residual_range", "use_adaptive_loss", "warmup_epochs",
                "warmup_fraction", "lambda_base_init", "lambda_sparse"):
        assert key not in written, key
    assert TrainConfig.from_yaml(tmp_path / "u.yaml").model == "unet"  # it still loads


def test_when_the_best_checkpoint_is_gone_the_lowest_kept_one_is_used(smoke_experiment, tmp_path):
    # a trial that ran every epoch keeps two checkpoints; drop the best epoch's
    folder = next(f for _, _, f in ranking(smoke_experiment)
                  if len(list(f.glob("checkpoint_*"))) == 2)
    experiment = tmp_path / "copy"
    experiment.mkdir()
    shutil.copy(smoke_experiment / STUDY_FILE, experiment)
    shutil.copytree(folder, experiment / folder.name)
    best_epoch = ranking(experiment)[0][1]
    saved = {torch.load(p, weights_only=True)["epoch"]: p
             for p in experiment.glob("trial_*/checkpoint_*/checkpoint.pt")}
    shutil.rmtree(saved.pop(best_epoch).parent)
    (left_epoch, left), = saved.items()

    text = export(experiment, tmp_path / "best.yaml")
    assert "best epoch's checkpoint was not kept" in text
    assert f"epoch {left_epoch}" in text
    state = torch.load(tmp_path / "best.pt", weights_only=True)
    expected = torch.load(left, weights_only=True)["model"]
    assert all(torch.equal(state[k], v) for k, v in expected.items())


def no_finished_trial(tmp_path: Path, smoke_experiment: Path) -> Path:
    """An experiment whose only trials reported nothing, or only NaN (diverged)."""
    experiment = tmp_path / "unfinished"
    (experiment / "trial_empty").mkdir(parents=True)
    (experiment / "trial_nan").mkdir()
    shutil.copy(smoke_experiment / STUDY_FILE, experiment)
    for name in ("trial_empty", "trial_nan"):
        (experiment / name / "params.json").write_text("{}")
    (experiment / "trial_empty" / "result.json").write_text("")
    (experiment / "trial_nan" / "result.json").write_text(
        '{"epoch": 1, "training_iteration": 1, "trial_id": "nan", "val_rmse": NaN, '
        '"diverged": 1}\n')
    return experiment


@pytest.mark.parametrize("case, message", [
    ("rank too high", "`1 <= rank <= 4` must hold (4 trials have a finite val_rmse), "
                      "but got rank=5"),
    ("rank zero", "but got rank=0"),
    ("not an experiment", "not an experiment folder of tune.run (no study.yaml)"),
    ("no finished trial", "no finished trial; none reported a finite val_rmse"),
    ("missing --out folder", "does not exist"),
    ("--out is a folder", "is a folder"),
    ("--out in the experiment", "must not be inside the experiment folder"),
    ("--out read-only", "cannot write there: Read-only file system"),
    ("bad flag", "unrecognized arguments: --bogus"),
])
def test_bad_use_is_one_line_exit_2_and_writes_nothing(smoke_experiment, tmp_path, capsys,
                                                        monkeypatch, case, message):
    work = tmp_path / "work"
    work.mkdir()
    experiment, out, flags = smoke_experiment, work / "best.yaml", []
    if case == "rank too high":
        flags = ["--rank", "5"]
    elif case == "rank zero":
        flags = ["--rank", "0"]
    elif case == "not an experiment":
        experiment = work
    elif case == "no finished trial":
        experiment = no_finished_trial(tmp_path, smoke_experiment)
    elif case == "missing --out folder":
        out = work / "missing" / "best.yaml"
    elif case == "--out is a folder":
        out = work
    elif case == "--out in the experiment":
        experiment = copy_experiment(smoke_experiment, tmp_path, "copy")
        before = (experiment / "study.yaml").read_bytes()
        out = experiment / "study.yaml"
    elif case == "--out read-only":  # as a read-only mount answers, the clean-up included
        def read_only(*args, **kwargs):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))

        monkeypatch.setattr(TrainConfig, "to_yaml", read_only)
        monkeypatch.setattr(Path, "unlink", read_only)
    else:
        flags = ["--bogus"]
    with pytest.raises(SystemExit) as info:
        sys.exit(main([str(experiment), "--out", str(out), *flags]))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    if case == "--out in the experiment":
        assert (experiment / "study.yaml").read_bytes() == before
    else:
        assert not list(work.iterdir())


def test_help_explains_the_ranking_and_the_retrain(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "best finite val_rmse" in text and "python -m baseres.train --config" in text
