import math

import pytest
import torch
from helpers import batch_metrics

from baseres.metrics import METRIC_NAMES, MetricAccumulator


def batch():
    pred = torch.stack([torch.tensor([[2.0, 4.0], [1.0, 6.0]]), torch.full((2, 2), 5.0),
                        torch.full((2, 2), 3.0)])[:, None]
    gt = torch.stack([torch.tensor([[1.0, 4.0], [0.0, 3.0]]), torch.full((2, 2), 5.0),
                      torch.zeros(2, 2)])[:, None]  # third image has no valid pixel
    return pred, gt


def test_metrics_match_hand_values_per_image_then_averaged():
    m = batch_metrics(*batch(), max_depth=10.0)
    # image 1: errors (1, 0, 3) over gt (1, 4, 3); image 2 exact; image 3 skipped
    assert m["rmse"] == pytest.approx(math.sqrt(10 / 3) / 2)
    assert m["mae"] == pytest.approx((4 / 3) / 2)
    assert m["abs_rel"] == pytest.approx((2 / 3) / 2)
    assert m["log10"] == pytest.approx((2 * math.log10(2) / 3) / 2)
    for i in (1, 2, 3):  # ratios 2, 1, 2: only the exact pixel is within 1.25^3 = 1.95
        assert m[f"delta{i}"] == pytest.approx((1 / 3 + 1) / 2)


def test_prediction_is_clamped_before_scoring():
    gt = torch.full((1, 1, 2, 2), 2.0)
    m = batch_metrics(torch.full((1, 1, 2, 2), 50.0), gt, max_depth=4.0)
    assert m["rmse"] == pytest.approx(2.0)  # 50 is clamped to max_depth 4
    m = batch_metrics(torch.full((1, 1, 2, 2), -1.0), gt, max_depth=4.0)
    assert m["abs_rel"] == pytest.approx((2 - 1e-3) / 2)


# One valid pixel (gt 2 m) in three images: NaN reads as the smallest depth (1 mm), inf as
# max_depth 10 m, and the two images without a valid pixel do not count.
@pytest.mark.parametrize("pred_fill, rmse, abs_rel, log10", [
    (float("nan"), 2 - 1e-3, (2 - 1e-3) / 2, math.log10(2 / 1e-3)),
    (float("inf"), 8.0, 4.0, math.log10(10 / 2)),
    (0.0, 2 - 1e-3, (2 - 1e-3) / 2, math.log10(2 / 1e-3)),
])
def test_never_nan(pred_fill, rmse, abs_rel, log10):
    gt = torch.zeros(3, 1, 4, 4)
    assert all(v == 0.0 for v in batch_metrics(torch.ones(3, 1, 4, 4), gt, 10.0).values())
    gt[0, 0, 0, 0] = 2.0
    m = batch_metrics(torch.full((3, 1, 4, 4), pred_fill), gt, 10.0)
    assert (m["rmse"], m["mae"], m["abs_rel"], m["log10"]) == pytest.approx(
        (rmse, rmse, abs_rel, log10), rel=1e-5)
    assert m["delta1"] == m["delta2"] == m["delta3"] == 0.0


def accumulate(bases, gts):
    acc = MetricAccumulator(max_depth=10.0, lowpass_kernel=2)
    for base, gt in zip(bases, gts):
        acc.update({"base": base, "residual": torch.zeros_like(base), "final": base}, gt)
    return acc.compute()


GTS = [torch.tensor([[[[2.0, 4.0], [2.0, 4.0]]]]), torch.tensor([[[[4.0, 2.0], [4.0, 2.0]]]])]


@pytest.mark.parametrize("scale, expected", [(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)])
def test_smoothness_and_consistency_are_ratios_to_the_ground_truth(scale, expected):
    bases = [torch.full_like(g, 3.0) + scale * (g - 3.0) for g in GTS]
    out = accumulate(bases, GTS)
    # horizontal steps of 2 in gt, scale * 2 in base; per-pixel std 1 in gt, scale in base
    assert out["base_smoothness"] == pytest.approx(expected)
    assert out["base_consistency"] == pytest.approx(expected)


def test_accumulator_over_batches_equals_one_batch():
    pred, gt = batch()
    whole = MetricAccumulator(10.0, 2)
    whole.update({"base": pred, "residual": pred - 1, "final": pred}, gt)
    split = MetricAccumulator(10.0, 2)
    for i in range(3):
        split.update({"base": pred[i:i + 1], "residual": pred[i:i + 1] - 1,
                      "final": pred[i:i + 1]}, gt[i:i + 1])
    a, b = whole.compute(), split.compute()
    assert set(a) >= {*METRIC_NAMES, "sparse", "sparse_ratio", "base_loss", "base_rmse",
                      "base_smoothness", "base_consistency"}
    assert a == pytest.approx(b)
    assert a["rmse"] == pytest.approx(batch_metrics(pred, gt, 10.0)["rmse"])
    # residual = pred - 1: image 1 has |1|, |3|, |5| on its valid pixels, image 2 has 4
    assert a["sparse"] == pytest.approx((9 / 3 + 4) / 2)
