"""baseres.trainer on toy data: the same numbers for the same seed, each epoch's record, the frozen
base, BatchNorm recalibration, divergence, and checkpoints that resume exactly or are refused."""

import pickle

import numpy as np
import pytest
import torch
from helpers import CrashAfterEpoch2, batch_metrics, tiny_config

from baseres.config import ConfigError
from baseres.hooks import default_hooks
from baseres.trainer import CheckpointMismatch, Trainer, TrainingDiverged
from tune.experiment import read_rows


def run(cfg, data):
    trainer = Trainer(cfg, data=data)
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

    trainer = run(tiny_config(epochs=2), toy_data)
    train, val = toy_data["train"], toy_data["val"]
    # The mean-depth map by hand: every toy map is one level with the same invalid corner.
    levels = np.asarray(train.depth)[:, 0, -1, -1]
    mean_map = torch.full((1, 1, 32, 32), float(levels.mean()))
    gt = torch.from_numpy(np.asarray(val.depth))
    reference = batch_metrics(mean_map.expand_as(gt), gt, trainer.cfg.max_depth)["rmse"]
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
    first = Trainer(cfg, data=toy_data, hooks=[*default_hooks(cfg, tmp_path), CrashAfterEpoch2()])
    with pytest.raises(KeyboardInterrupt):
        first.fit(progress=False)
    resumed = Trainer(cfg, data=toy_data, hooks=default_hooks(cfg, tmp_path))
    resumed.load_checkpoint(tmp_path / "checkpoint.pt")  # loaded with weights_only=True
    assert resumed.epoch == 2 and resumed.model.base_frozen
    resumed.fit(progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    epochs = [r["epoch"] for r in read_rows(tmp_path / "metrics.jsonl")]
    assert epochs == [1, 2, 3]  # every epoch, once
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


def test_base_decoder_keeps_learning_after_warmup_without_the_freeze(toy_data):
    trainer = Trainer(tiny_config(epochs=3, use_adaptive_loss=True, warmup_epochs=1,
                                  freeze_base=False), data=toy_data)
    trainer.run_epoch(0, progress=False)
    trainer.run_epoch(1, progress=False)
    before = {k: v.clone() for k, v in trainer.model.base_decoder.state_dict().items()}
    trainer.run_epoch(2, progress=False)
    assert not trainer.model.base_frozen
    assert any(not torch.equal(before[k], v)
               for k, v in trainer.model.base_decoder.state_dict().items())


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
