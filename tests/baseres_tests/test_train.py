"""baseres.train, the training command: its flags and config files, --help, one-line errors,
--seeds, --resume and --overwrite, on the real BatVision V2 sample."""

import json
import math
import subprocess
import sys

import pytest
import yaml
from helpers import RUN_LIMIT_S, tiny_config

from baseres.hooks import PANEL_TAG
from baseres.train import build_parser, config_from_args, main
from tune.experiment import read_rows

SEED_COMMAND = ("--dataset batvisionv2 --batch_size 64 --learning_rate 0.001 --use_adaptive_loss "
                "--warmup_epochs 50 --lambda_base 2.0 --lambda_sparse 0.05 "
                "--experiment_name generalized_adaptive").split()


def test_seed_command_is_accepted_verbatim():
    cfg = config_from_args(build_parser().parse_args(
        SEED_COMMAND + ["--data-root", "/data/BatvisionV2", "--use_silog", "--lr", "0.002",
                        "--base_channels", "32", "--lowpass_kernel", "8", "--optimizer", "adam",
                        "--lambda_recon", "0.9", "--epochs", "7"]))
    assert cfg.dataset == "batvisionv2" and cfg.use_adaptive_loss and cfg.batch_size == 64
    assert (cfg.lambda_base, cfg.warmup_epochs, cfg.recon_loss) == (2.0, 50, "silog")
    assert (cfg.learning_rate, cfg.base_channels, cfg.image_size) == (0.002, 32, 256)
    assert cfg.experiment_name == "generalized_adaptive" and cfg.data_root == "/data/BatvisionV2"


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "c.yaml"
    tiny_config(epochs=9, lambda_base=0.4).to_yaml(path)
    cfg = config_from_args(build_parser().parse_args(["--config", str(path), "--epochs", "2"]))
    assert (cfg.epochs, cfg.lambda_base, cfg.base_channels) == (2, 0.4, 8)


@pytest.mark.parametrize("argv, message", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--epochs", "ten"], "argument --epochs: invalid int value: 'ten'"),
    (["--use_adaptive_loss", "maybe"], "expected true or false"),
    (["--dataset", "batvisionv2"], "needs a data root"),
    (["--base_channel_divisor", "3"], "base_channel_divisor must be one of"),
    (["--config", "/nonexistent.yaml"], "/nonexistent.yaml: cannot read config"),
    (["--data-root", "/nonexistent", "--dataset", "batvisionv2"], "data root does not exist"),
    (["--use_wandb"], "use_wandb needs the wandb package"),
])
def test_bad_command_lines_exit_2_with_one_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(SystemExit) as info:
        sys.exit(main([*argv, "--out", str(tmp_path / "run")]))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err



def test_a_refused_wandb_leaves_the_run_it_would_overwrite(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    out = tmp_path / "run"
    out.mkdir()
    kept = {name: f"{name} of the earlier run\n" for name in ("config.yaml", "metrics.jsonl",
                                                               "checkpoint.pt")}
    for name, text in kept.items():
        (out / name).write_text(text)
    assert main(["--use_wandb", "--overwrite", "--out", str(out)]) == 2
    assert "use_wandb needs the wandb package" in capsys.readouterr().err
    assert {p.name: p.read_text() for p in out.iterdir()} == kept

def help_entries(capsys) -> tuple[str, list[str]]:
    """--help as its usage block and one entry per option (flags and help, joined)."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    usage, _, options = capsys.readouterr().out.partition("\noptions:\n")
    entries = []
    for line in options.splitlines():
        if line.startswith("  -"):
            entries.append(line.strip())  # flags, then two spaces and the help's first line
        elif entries:
            entries[-1] += "  " + line.strip()
    return usage, entries


def test_help_names_each_flag_once_and_shows_out_in_usage(capsys):
    usage, entries = help_entries(capsys)
    assert "[--out OUT_DIR]" in usage and "[--data-root DATA_ROOT]" in usage
    for entry in entries:
        flags = [f.split()[0] for f in entry.split("  ")[0].split(", ")]  # before the help
        assert len(flags) == len(set(flags)), entry
        assert entry.count("(default") <= 1, entry
    assert any(e.startswith("--data-root DATA_ROOT, --data_root DATA_ROOT  data set folder")
               for e in entries)


def test_help_text_comes_from_the_field_metadata(capsys):
    import dataclasses

    from baseres.config import TrainConfig

    _, entries = help_entries(capsys)
    residual = next(f for f in dataclasses.fields(TrainConfig) if f.name == "residual_range")
    assert residual.metadata["help"] == "residual = tanh(.) * max_depth * residual_range"
    assert ("--residual_range RESIDUAL_RANGE, --residual-range RESIDUAL_RANGE "
            "residual = tanh(.) * max_depth * residual_range (default: 0.3)") in [
                " ".join(e.split()) for e in entries]
    assert not [e for e in entries if "(default: None)" in e or "(default: False)" in e]


def test_cli_refuses_to_overwrite_an_earlier_run(tmp_path, capsys, fixture_root):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("epochs: 1\n")
    args = ["--dataset", "batvisionv2", "--data-root", str(fixture_root), "--out", str(out)]
    assert main(args) == 2
    assert "holds an earlier run" in capsys.readouterr().err
    assert (out / "config.yaml").read_text() == "epochs: 1\n"


def test_cli_trains_on_the_real_sample_and_writes_every_file(tmp_path, fixture_root):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "x"
    proc = subprocess.run(
        [sys.executable, "-m", "baseres.train", "--dataset", "batvisionv2", "--data-root",
         str(fixture_root), "--epochs", "2", "--out", str(out), "--image_size", "64",
         "--base_channels", "8", "--use_adaptive_loss"], capture_output=True, text=True,
        timeout=RUN_LIMIT_S)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2/2" in proc.stdout
    # the default warmup (the seed's 50, of its 200 epochs) outlasts these 2: said once
    assert proc.stdout.count("warning: warmup_epochs 50 >= epochs 2: the curriculum never "
                             "ends and the base is never fixed") == 1
    for name in ("config.yaml", "metrics.jsonl", "checkpoint.pt", "best.pt"):
        assert (out / name).is_file(), name
    rows = read_rows(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("train_loss", "train_recon", "train_base", "train_sparse", "lambda_base",
                "val_rmse", "val_delta1", "val_abs_rel", "sparse", "base_rmse",
                "base_smoothness", "base_consistency"):
        assert key in rows[0], key
    events = EventAccumulator(str(out), size_guidance={"images": 0}).Reload()
    assert len(events.Scalars("metrics/val_rmse")) == 2
    assert events.Images(PANEL_TAG)


def test_seeds_reruns_a_config_and_reports_mean_and_std(tmp_path, fixture_root, capsys):
    out = tmp_path / "confirm"
    argv = ["--dataset", "batvisionv2", "--data-root", str(fixture_root), "--image_size", "32",
            "--base_channels", "8", "--batch_size", "4", "--epochs", "1", "--num_threads", "1",
            "--image_every", "0", "--seed", "5", "--seeds", "2", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "seeds.json").read_text())
    assert [s["seed"] for s in summary["seeds"]] == [5, 6]
    for seed in summary["seeds"]:
        run = out / f"seed-{seed['seed']}"
        assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == seed["seed"]
        (row,) = read_rows(run / "metrics.jsonl")  # a full run of the config: its one epoch
        assert (seed["best_epoch"], seed["val_rmse"], seed["val_delta1"]) == (
            1, row["val_rmse"], row["val_delta1"])
    rmse = [s["val_rmse"] for s in summary["seeds"]]
    assert rmse[0] != rmse[1]  # the seed reached the model
    assert summary["val_rmse"]["mean"] == pytest.approx(sum(rmse) / 2)
    assert summary["val_rmse"]["std"] == pytest.approx(abs(rmse[0] - rmse[1]) / math.sqrt(2))
    assert f"val_rmse {summary['val_rmse']['mean']:.4f} +- {summary['val_rmse']['std']:.4f}" \
        in printed

    # the folders are protected like a single run's, and --resume finishes without retraining
    assert main(argv) == 2
    assert "seed-5: holds an earlier run" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    assert json.loads((out / "seeds.json").read_text()) == summary
    assert len(read_rows(out / "seed-6" / "metrics.jsonl")) == 1


def test_one_seed_is_refused(tmp_path, capsys):
    assert main(["--seeds", "1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --seeds must be >= 2 (one seed is a plain run), but got 1"
    assert not (tmp_path / "x").exists()


def test_resume_continues_with_the_saved_config(tmp_path, fixture_root, capsys):
    out = tmp_path / "run"
    first = ["--dataset", "batvisionv2", "--data-root", str(fixture_root), "--image_size", "32",
             "--base_channels", "8", "--epochs", "1", "--lambda_base", "0.7", "--out", str(out)]
    assert main(first) == 0
    (out / "events.out.tfevents.stale").write_text("old curves")
    # only --out, --resume and a longer budget: the saved lambda_base and sizes carry on
    assert main(["--out", str(out), "--resume", "--epochs", "2"]) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["lambda_base"], saved["image_size"], saved["epochs"]) == (0.7, 32, 2)
    assert [r["epoch"] for r in read_rows(out / "metrics.jsonl")] == [1, 2]
    assert main([*first, "--overwrite"]) == 0  # replaces the run, curves included
    assert not (out / "events.out.tfevents.stale").exists()
    assert [r["epoch"] for r in read_rows(out / "metrics.jsonl")] == [1]


def test_cli_resume_with_another_divisor_exits_2_naming_the_key(tmp_path, fixture_root, capsys):
    out = tmp_path / "run"
    assert main(["--dataset", "batvisionv2", "--data-root", str(fixture_root), "--image_size",
                 "32", "--base_channels", "8", "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["--out", str(out), "--resume", "--epochs", "2",
                 "--base_channel_divisor", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {out / 'checkpoint.pt'}: cannot resume: base_channel_divisor must "
                   "equal the checkpoint's (it shapes the model or its data), but the checkpoint "
                   "has base_channel_divisor=4 and this run base_channel_divisor=2")
    assert [r["epoch"] for r in read_rows(out / "metrics.jsonl")] == [1]  # the run is intact
