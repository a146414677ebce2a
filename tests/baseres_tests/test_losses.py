import math

import pytest
import torch
from helpers import tiny_config

from baseres.losses import BaseResidualLoss, curriculum, lowpass_depth

GT = torch.tensor([[[[1.0, 4.0], [0.0, 3.0]]]])  # one invalid pixel (0)
FINAL = torch.tensor([[[[2.0, 4.0], [9.0, 6.0]]]])
RESIDUAL = torch.tensor([[[[0.5, -0.5], [10.0, 1.0]]]])
BASE = torch.full((1, 1, 2, 2), 2.0)
ONES = {"lambda_recon": 1.0, "lambda_base": 1.0, "lambda_sparse": 1.0}


def losses(recon_loss="l1", weights=ONES):
    fn = BaseResidualLoss(tiny_config(recon_loss=recon_loss, lowpass_kernel=2))
    return fn({"final": FINAL, "base": BASE, "residual": RESIDUAL}, GT, weights)


def test_terms_match_hand_values_over_valid_pixels():
    out = losses()
    assert float(out["recon"]) == pytest.approx(4 / 3)  # |1| + |0| + |3| over 3 valid
    assert float(out["sparse"]) == pytest.approx(2 / 3)  # 0.5 + 0.5 + 1
    assert float(out["base"]) == pytest.approx(2 / 3)  # lowpass = mean of valid = 8/3
    assert float(out["loss"]) == pytest.approx(4 / 3 + 2 / 3 + 2 / 3)


def test_silog_matches_hand_value():
    # d = (ln 2, 0, ln 2): sqrt(mean d^2 - 0.5 mean(d)^2) = ln2 * sqrt(2/3 - 2/9)
    assert float(losses("silog")["recon"]) == pytest.approx(math.log(2) * 2 / 3, rel=1e-4)


def test_weights_scale_their_terms():
    out = losses(weights={"lambda_recon": 2.0, "lambda_base": 0.0, "lambda_sparse": 0.5})
    assert float(out["loss"]) == pytest.approx(2 * 4 / 3 + 0.5 * 2 / 3)


def test_lowpass_ignores_holes_and_keeps_size():
    gt = torch.full((1, 1, 8, 8), 5.0)
    gt[..., :4, :4] = 0.0
    low = lowpass_depth(gt, 4)
    assert low.shape == gt.shape and torch.isfinite(low).all()
    valid = gt > 0
    assert torch.allclose(low[valid], gt[valid])


def test_no_valid_pixel_gives_zero_not_nan():
    fn = BaseResidualLoss(tiny_config())
    zeros = torch.zeros(2, 1, 32, 32)
    out = fn({"final": zeros + 1, "base": zeros + 1, "residual": zeros + 0.5}, zeros, ONES)
    assert {k: float(v) for k, v in out.items()} == {
        "loss": 0.0, "recon": 0.0, "base": 0.0, "sparse": 0.0, "sparse_ratio": 0.0}


# The seed's two curricula over a 20-epoch run, worked out by hand.
# before: recon 0.5 -> 1.0, base 1.5 -> 0.3, sparse 0.3, warmup 10 % = 2 epochs
#   epoch 0: 0.5, 1.5; epoch 1: 0.5 + 0.5/2 = 0.75, 1.5 - 1.2/2 = 0.9; from epoch 2: 1.0, 0.3
# after: recon 0.3 -> 1.0, base 2.0 -> 0.3, sparse 0.05, warmup 25 % = 5 epochs
#   per epoch recon +0.14, base -0.34
SEED_BEFORE = dict(base_channel_divisor=1, residual_range=0.2, lambda_sparse=0.3,
                   lambda_recon_init=0.5, lambda_base_init=1.5, warmup_fraction=0.10)
SEED_AFTER = dict(base_channel_divisor=4, residual_range=0.3, lambda_sparse=0.05,
                  lambda_recon_init=0.3, lambda_base_init=2.0, warmup_fraction=0.25)
BEFORE_TABLE = [(0, 0.5, 1.5, 0.0), (1, 0.75, 0.9, 0.0), (2, 1.0, 0.3, 1.0),
                (3, 1.0, 0.3, 1.0), (19, 1.0, 0.3, 1.0)]
AFTER_TABLE = [(0, 0.3, 2.0, 0.0), (1, 0.44, 1.66, 0.0), (2, 0.58, 1.32, 0.0),
               (3, 0.72, 0.98, 0.0), (4, 0.86, 0.64, 0.0), (5, 1.0, 0.3, 1.0),
               (19, 1.0, 0.3, 1.0)]


@pytest.mark.parametrize("seed_config, sparse, row", [
    *[(SEED_BEFORE, 0.3, row) for row in BEFORE_TABLE],
    *[(SEED_AFTER, 0.05, row) for row in AFTER_TABLE],
])
def test_the_seeds_curricula_epoch_by_epoch(seed_config, sparse, row):
    epoch, recon, base, frozen = row
    cfg = tiny_config(epochs=20, use_adaptive_loss=True, **seed_config)
    weights = curriculum(cfg, epoch)
    assert weights["lambda_recon"] == pytest.approx(recon)
    assert weights["lambda_base"] == pytest.approx(base)
    assert weights["lambda_sparse"] == sparse
    assert weights["base_frozen"] == frozen


@pytest.mark.parametrize("row", AFTER_TABLE)
def test_freeze_base_false_keeps_the_ramp_and_never_fixes_the_base(row):
    epoch, recon, base, _ = row
    cfg = tiny_config(epochs=20, use_adaptive_loss=True, freeze_base=False, **SEED_AFTER)
    weights = curriculum(cfg, epoch)
    assert (weights["lambda_recon"], weights["lambda_base"]) == (pytest.approx(recon),
                                                                 pytest.approx(base))
    assert weights["base_frozen"] == 0.0


@pytest.mark.parametrize("epochs, fraction, warmup", [
    (200, 0.10, 20), (200, 0.25, 50), (12, 0.10, 1), (12, 0.25, 3), (3, 0.10, 1),
    (3, 0.25, 1), (10, 0.25, 3), (10, 0.0, 0), (7, 1.0, 7),
])
def test_warmup_fraction_rounds_half_up_and_keeps_one_epoch(epochs, fraction, warmup):
    cfg = tiny_config(epochs=epochs, warmup_fraction=fraction, warmup_epochs=99)
    assert cfg.warmup_epochs == warmup
    assert cfg.replace(epochs=epochs).warmup_epochs == warmup  # a saved config reads back


@pytest.mark.parametrize("changes", [{"use_adaptive_loss": False},
                                     {"use_adaptive_loss": True, "warmup_epochs": 0}])
@pytest.mark.parametrize("epoch", [0, 7, 100])
def test_fixed_weight_mode(changes, epoch):
    cfg = tiny_config(**changes)
    assert curriculum(cfg, epoch) == {"lambda_recon": 1.0, "lambda_base": 1.2,
                                      "lambda_sparse": 0.05, "base_frozen": 0.0}


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("epoch", [0, 3, 50])
def test_unet_trains_on_recon_alone(adaptive, epoch):
    cfg = tiny_config(model="unet", use_adaptive_loss=adaptive, warmup_epochs=4,
                      lambda_recon=0.7)
    weights = curriculum(cfg, epoch)
    assert weights == {"lambda_recon": 0.7, "lambda_base": 0.0, "lambda_sparse": 0.0,
                       "base_frozen": 0.0}
    out = BaseResidualLoss(cfg)({"final": FINAL}, GT, weights)
    assert set(out) == {"loss", "recon"}
    assert torch.equal(out["loss"], 0.7 * out["recon"])  # exactly, no other term
    assert float(out["recon"]) == pytest.approx(4 / 3)


def test_sparse_ratio_is_residual_over_the_detail_a_perfect_base_leaves():
    # 4 x 4 depth, kernel 2: left half 2 m, right half 6 m; the low-pass of the valid pixels
    # blurs the edge, so the detail is nonzero only in the two columns at the edge.
    gt = torch.tensor([[2.0, 2.0, 6.0, 6.0]] * 4).reshape(1, 1, 4, 4)
    low = lowpass_depth(gt, 2)
    detail = (gt - low).abs().mean()
    assert float(detail) > 0
    residual = torch.full_like(gt, 0.5)
    fn = BaseResidualLoss(tiny_config(lowpass_kernel=2))
    out = fn({"final": gt, "base": low, "residual": residual}, gt, ONES)
    assert float(out["sparse"]) == pytest.approx(0.5)
    assert float(out["sparse_ratio"]) == pytest.approx(0.5 / float(detail), rel=1e-5)
    assert float(out["base"]) == pytest.approx(0.0, abs=1e-6)  # the base hit its target


@pytest.mark.parametrize("size, kernel", [(32, 2), (64, 4), (128, 8), (256, 16)])
def test_lowpass_kernel_follows_the_image_size(size, kernel):
    assert tiny_config(image_size=size).lowpass_kernel == kernel
    assert tiny_config(image_size=size, lowpass_kernel=5).lowpass_kernel == 5
