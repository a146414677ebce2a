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
    out = fn({"final": zeros + 1, "base": zeros + 1, "residual": zeros}, zeros, ONES)
    assert all(torch.isfinite(v) for v in out.values())


@pytest.mark.parametrize("epoch, recon, base, frozen", [
    (0, 0.3, 2.0, 0.0), (2, 0.65, 1.6, 0.0), (3, 0.825, 1.4, 0.0),
    (4, 1.0, 1.2, 1.0), (10, 1.0, 1.2, 1.0),
])
def test_curriculum_ramps_then_freezes(epoch, recon, base, frozen):
    cfg = tiny_config(use_adaptive_loss=True, warmup_epochs=4)
    weights = curriculum(cfg, epoch)
    assert weights["lambda_recon"] == pytest.approx(recon)
    assert weights["lambda_base"] == pytest.approx(base)
    assert weights["lambda_sparse"] == cfg.lambda_sparse
    assert weights["base_frozen"] == frozen


@pytest.mark.parametrize("changes", [{"use_adaptive_loss": False},
                                     {"use_adaptive_loss": True, "warmup_epochs": 0}])
@pytest.mark.parametrize("epoch", [0, 7, 100])
def test_fixed_weight_mode(changes, epoch):
    cfg = tiny_config(**changes)
    assert curriculum(cfg, epoch) == {"lambda_recon": 1.0, "lambda_base": 1.2,
                                      "lambda_sparse": 0.05, "base_frozen": 0.0}
