import json
import math
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from helpers import tiny_config

from baseres.config import ConfigError
from baseres.hooks import PANEL_TAG, Hook, default_hooks
from baseres.train import build_parser, config_from_args, main
from baseres.trainer import CheckpointMismatch, Trainer, TrainingDiverged


def run(cfg, data, out_dir=None):
    trainer = Trainer(cfg, out_dir, data=data)
    trainer.fit(progress=False)
    return trainer


def test_same_seed_same_numbers_and_other_seed_differs(toy_data):
    a = run(tiny_config(), toy_data).history
    b = run(tiny_config(), toy_data).history
    c = run(tiny_config(seed=1), toy_data).history
    keys = [k for k in a[0] if k not in ("epoch_time_s", "samples_per_s", "peak_rss_mb")]
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]
    assert a[-1]["val_rmse"] != c[-1]["val_rmse"]


def test_records_carry_the_peak_memory_in_mib(toy_data):
    peaks = [r["peak_rss_mb"] for r in run(tiny_config(epochs=2), toy_data).history]
    # torch alone takes more than 50 MiB; KiB or bytes read as MiB would leave this range
    assert 50 < peaks[0] <= peaks[1] < 24 * 1024


def test_every_epoch_reports_train_rmse_and_the_learned_nothing_reference(toy_data):
    import numpy as np

    from baseres.metrics import depth_metrics

    trainer = run(tiny_config(epochs=2), toy_data)
    train, val = toy_data["train"], toy_data["val"]
    # The mean-depth map by hand: every toy map is one level with the same invalid corner.
    levels = np.asarray(train.depth)[:, 0, -1, -1]
    mean_map = torch.full((1, 1, 32, 32), float(levels.mean()))
    gt = torch.from_numpy(np.asarray(val.depth))
    reference = depth_metrics(mean_map.expand_as(gt), gt, trainer.cfg.max_depth)["rmse"]
    for record in trainer.history:
        assert "gap" not in record  # val and train are different rooms: no difference
        assert record["mean_map_rmse"] == pytest.approx(reference, rel=1e-5)
        assert 0 < record["train_rmse"] < 20 and 0 <= record["sparse_ratio"]
        assert {"train_sparse", "sparse", "train_sparse_ratio"} <= set(record)
    # train_rmse is the model scored on training samples: the same weights on the same
    # samples give the same figure.
    probe, _ = trainer.evaluate(trainer.data["train_probe"])
    assert probe["rmse"] == pytest.approx(trainer.history[-1]["train_rmse"])


def test_the_train_probe_is_a_fixed_seeded_subset_of_at_most_256():
    from helpers import random_split

    from baseres.trainer import train_probe

    big = random_split(300, 8, seed=3)
    a, b, c = train_probe(big, 0), train_probe(big, 0), train_probe(big, 1)
    assert len(a) == 256 and np.array_equal(a.features, b.features)
    assert not np.array_equal(a.features, c.features)
    small = random_split(20, 8)
    assert len(train_probe(small, 0)) == 20


def test_unet_records_no_decomposition(toy_data):
    record = run(tiny_config(model="unet", epochs=1), toy_data).history[-1]
    assert "val_rmse" in record and "train_rmse" in record
    assert not {"sparse", "base_rmse", "train_sparse", "train_base"} & set(record)
    assert record["train_loss"] == pytest.approx(record["train_recon"])  # lambda_recon 1.0


def test_channels_last_changes_the_layout_not_the_numbers(toy_data):
    from baseres.losses import curriculum

    nhwc = Trainer(tiny_config(precision="fp32"), data=toy_data)
    nchw = Trainer(tiny_config(precision="fp32", channels_last=False), data=toy_data)
    assert next(nhwc.model.parameters()).is_contiguous(memory_format=torch.channels_last)
    assert not next(nchw.model.parameters()).is_contiguous(memory_format=torch.channels_last)
    batch = (torch.from_numpy(toy_data["train"].features[:4]),
             torch.from_numpy(toy_data["train"].depth[:4]))
    results = []
    for trainer in (nhwc, nchw):  # same seed, same initial weights
        outputs, losses = trainer.process_batch(batch, curriculum(trainer.cfg, 0))
        losses["loss"].backward()
        grads = torch.cat([p.grad.flatten() for p in trainer.model.parameters()])
        results.append((outputs, float(losses["loss"].detach()), grads))
    (out_a, loss_a, grad_a), (out_b, loss_b, grad_b) = results
    for key in out_a:
        torch.testing.assert_close(out_b[key], out_a[key], rtol=1e-4, atol=1e-3, msg=key)
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    # Summation order differs between layouts; L1 and BatchNorm gradients amplify it a little.
    assert float((grad_b - grad_a).norm() / grad_a.norm()) < 0.05


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_reduces_the_error(toy_data, precision):
    history = run(tiny_config(epochs=6, learning_rate=3e-3, precision=precision),
                  toy_data).history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in history)


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path, toy_data):
    cfg = tiny_config(epochs=3, use_adaptive_loss=True, warmup_epochs=1)
    straight = run(cfg, toy_data).history
    class CrashAfterEpoch2(Hook):
        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 2:
                raise KeyboardInterrupt

    first = Trainer(cfg, tmp_path, data=toy_data,
                    hooks=[*default_hooks(cfg, tmp_path), CrashAfterEpoch2()])
    with pytest.raises(KeyboardInterrupt):
        first.fit(progress=False)
    resumed = Trainer(cfg, tmp_path, data=toy_data)
    resumed.load_checkpoint(tmp_path / "checkpoint.pt")  # loaded with weights_only=True
    assert resumed.epoch == 2 and resumed.model.base_frozen
    resumed.fit(progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]  # every epoch, once
    assert resumed.history[-1]["val_rmse"] == pytest.approx(straight[-1]["val_rmse"], rel=1e-6)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["config"]["epochs"] == 3 and saved["epoch"] == 3


def test_base_decoder_unchanged_once_frozen(toy_data):
    trainer = Trainer(tiny_config(epochs=2, use_adaptive_loss=True, warmup_epochs=1),
                      data=toy_data)
    trainer.run_epoch(0, progress=False)
    trainer.run_epoch(1, progress=False)  # epoch index 1 = warmup: the base is fixed now
    frozen = {k: v.clone() for k, v in trainer.model.base_decoder.state_dict().items()}
    encoder = {k: v.clone() for k, v in trainer.model.encoder.state_dict().items()}
    trainer.run_epoch(2, progress=False)
    after = trainer.model.base_decoder.state_dict()
    assert all(torch.equal(frozen[k], after[k]) for k in frozen)
    assert any(not torch.equal(encoder[k], v)
               for k, v in trainer.model.encoder.state_dict().items())


def batchnorm_buffers(module):
    return {k: v.clone() for k, v in module.state_dict().items() if "running" in k}


def test_batchnorm_recalibration_measures_the_current_statistics(toy_data):
    trainer = Trainer(tiny_config(precision="fp32", bn_recalibration_samples=16), data=toy_data)
    trainer.run_epoch(0, progress=False)
    first = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    hook = first.register_forward_hook(lambda m, inputs, out: seen.append(inputs[0].detach()))
    with torch.no_grad():
        first.running_mean.fill_(100.0)  # a stale estimate must not leak into the new one
    trainer.recalibrate_batchnorm(0)
    hook.remove()
    assert sum(x.shape[0] for x in seen) == 16  # two batches of 8
    expected = torch.stack([x.mean(dim=(0, 2, 3)) for x in seen]).mean(dim=0)
    torch.testing.assert_close(first.running_mean, expected, rtol=1e-4, atol=1e-5)
    assert first.momentum == 0.1  # restored for training


def test_batchnorm_recalibration_leaves_a_frozen_base_alone(toy_data):
    trainer = Trainer(tiny_config(use_adaptive_loss=True, warmup_epochs=1), data=toy_data)
    trainer.run_epoch(0, progress=False)
    trainer.model.freeze_base()
    base, encoder = (batchnorm_buffers(trainer.model.base_decoder),
                     batchnorm_buffers(trainer.model.encoder))
    trainer.recalibrate_batchnorm(1)
    assert all(torch.equal(v, trainer.model.base_decoder.state_dict()[k]) for k, v in base.items())
    assert any(not torch.equal(v, trainer.model.encoder.state_dict()[k])
               for k, v in encoder.items())


def test_no_batchnorm_recalibration_when_switched_off(toy_data):
    trainer = Trainer(tiny_config(bn_recalibration_samples=0), data=toy_data)
    trainer.run_epoch(0, progress=False)
    before = batchnorm_buffers(trainer.model)
    trainer.recalibrate_batchnorm(0)
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())


def test_a_validation_split_without_valid_depth_is_an_error(toy_data):
    from baseres.data.batvision import DataError
    from baseres.data.cache import SplitArrays

    val = toy_data["val"]
    blank = SplitArrays(features=val.features, depth=val.depth * 0)
    trainer = Trainer(tiny_config(), data={"train": toy_data["train"], "val": blank})
    with pytest.raises(DataError, match="has no image with a valid depth pixel"):
        trainer.fit(progress=False)  # an error of 0 would otherwise rank as the best trial


def test_nan_loss_stops_with_diverged(toy_data, monkeypatch):
    trainer = Trainer(tiny_config(), data=toy_data)
    real = trainer.compute_losses

    def poisoned(*args):
        losses = real(*args)
        losses["loss"] = losses["loss"] * float("nan")
        return losses

    monkeypatch.setattr(trainer, "compute_losses", poisoned)
    with pytest.raises(TrainingDiverged, match="loss became nan at epoch 1, step 1"):
        trainer.fit(progress=False)


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
        timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2/2" in proc.stdout
    # the default warmup (the seed's 50, of its 200 epochs) outlasts these 2: said once
    assert proc.stdout.count("warning: warmup_epochs 50 >= epochs 2: the curriculum never "
                             "ends and the base is never fixed") == 1
    for name in ("config.yaml", "metrics.jsonl", "checkpoint.pt", "best.pt"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("train_loss", "train_recon", "train_base", "train_sparse", "lambda_base",
                "val_rmse", "val_delta1", "val_abs_rel", "sparse", "base_rmse",
                "base_smoothness", "base_consistency"):
        assert key in rows[0], key
    events = EventAccumulator(str(out), size_guidance={"images": 0}).Reload()
    assert len(events.Scalars("metrics/val_rmse")) == 2
    assert events.Images(PANEL_TAG)


def metrics_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


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
        (row,) = metrics_rows(run / "metrics.jsonl")  # a full run of the config: its one epoch
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
    assert len(metrics_rows(out / "seed-6" / "metrics.jsonl")) == 1


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
    assert [r["epoch"] for r in metrics_rows(out / "metrics.jsonl")] == [1, 2]
    assert main([*first, "--overwrite"]) == 0  # replaces the run, curves included
    assert not (out / "events.out.tfevents.stale").exists()
    assert [r["epoch"] for r in metrics_rows(out / "metrics.jsonl")] == [1]


class Payload:
    """Stands for code a tampered checkpoint would run when unpickled."""


def test_checkpoints_load_with_weights_only(tmp_path, toy_data):
    trainer = Trainer(tiny_config(), data=toy_data)
    path = tmp_path / "tampered.pt"
    torch.save({**trainer.state(), "payload": Payload()}, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        trainer.load_checkpoint(path)


@pytest.mark.parametrize(("key", "saved", "value"), [
    ("base_channel_divisor", 4, 2),
    ("model", "base_residual", "unet"),
    ("max_depth", 12.0, 8.0),
    ("image_size", 32, 64),
    ("optimizer", "adamw", "sgd"),
])
def test_resuming_a_checkpoint_of_another_shape_is_refused(tmp_path, toy_data, key, saved, value):
    path = tmp_path / "checkpoint.pt"
    Trainer(tiny_config(), data=toy_data).save_checkpoint(path)
    other = Trainer(tiny_config(**{key: value}), data=toy_data)
    with pytest.raises(CheckpointMismatch) as info:
        other.load_checkpoint(path)
    error = info.value
    assert isinstance(error, ConfigError)
    assert (error.key, error.saved, error.value) == (key, saved, value)
    assert str(error) == (f"{path}: cannot resume: {key} must equal the checkpoint's (it shapes "
                          f"the model or its data), but the checkpoint has {key}={saved!r} and "
                          f"this run {key}={value!r}")
    assert other.epoch == 0 and not other.history  # nothing of the checkpoint was taken


def test_resuming_with_a_longer_budget_is_allowed(tmp_path, toy_data):
    path = tmp_path / "checkpoint.pt"
    Trainer(tiny_config(epochs=2), data=toy_data).save_checkpoint(path)
    Trainer(tiny_config(epochs=5), data=toy_data).load_checkpoint(path)


def test_a_cut_checkpoint_is_one_line(tmp_path, toy_data):
    path = tmp_path / "checkpoint.pt"
    trainer = Trainer(tiny_config(), data=toy_data)
    trainer.save_checkpoint(path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ConfigError, match=f"^{path}: unreadable checkpoint: .*zip archive"):
        trainer.load_checkpoint(path)


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
    assert [r["epoch"] for r in metrics_rows(out / "metrics.jsonl")] == [1]  # the run is intact
