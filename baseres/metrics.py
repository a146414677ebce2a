"""Depth metrics (official BatVision protocol: per image over gt > 0, then averaged over images)
and the diagnostics that tell whether the base/residual decomposition does what it should."""

from __future__ import annotations

import math

import torch

from baseres.losses import detail_depth, lowpass_depth

METRIC_NAMES = ("rmse", "mae", "abs_rel", "log10", "delta1", "delta2", "delta3")
_MIN_PRED = 1e-3


def _valid_mask(gt: torch.Tensor) -> torch.Tensor:
    return (gt > 0) & torch.isfinite(gt)


def per_image_metrics(pred: torch.Tensor, gt: torch.Tensor, max_depth: float
                      ) -> dict[str, torch.Tensor]:
    """Each metric per image (B x 1 x H x W in, B values out) for the images with a valid pixel."""
    pred = torch.nan_to_num(pred.detach().float(), nan=_MIN_PRED).clamp(_MIN_PRED, max_depth)
    gt = gt.detach().float()
    valid = _valid_mask(gt).flatten(1)
    pred, gt = pred.flatten(1), torch.where(valid, gt.flatten(1), torch.ones_like(pred.flatten(1)))
    keep = valid.any(dim=1)
    pred, gt, valid = pred[keep], gt[keep], valid[keep]
    count = valid.sum(dim=1).float()

    def mean(values: torch.Tensor) -> torch.Tensor:
        return (values * valid).sum(dim=1) / count

    ratio = torch.maximum(gt / pred, pred / gt)
    metrics = {
        "rmse": mean((pred - gt) ** 2).sqrt(),
        "mae": mean((pred - gt).abs()),
        "abs_rel": mean((pred - gt).abs() / gt),
        "log10": mean((torch.log10(pred) - torch.log10(gt)).abs()),
    }
    for i in (1, 2, 3):
        metrics[f"delta{i}"] = mean((ratio < 1.25**i).float())
    return metrics


def gradient_magnitude(depth: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Sum of |finite differences| over neighbour pairs where both pixels are valid, and count."""
    dx = (depth[..., :, 1:] - depth[..., :, :-1]).abs()
    dy = (depth[..., 1:, :] - depth[..., :-1, :]).abs()
    mx = valid[..., :, 1:] & valid[..., :, :-1]
    my = valid[..., 1:, :] & valid[..., :-1, :]
    return (dx * mx).sum() + (dy * my).sum(), mx.sum() + my.sum()


class MetricAccumulator:
    """Accumulates metrics and decomposition diagnostics over a validation set, batch by batch.

    sparse_ratio = mean |residual| / mean |gt - lowpass(gt)| over the set (1: the residual is
    as large as the detail a perfect base leaves; the seed code's "sparse" in metres depends on the
    data's depth scale, this does not).
    base_smoothness = mean |grad base| / mean |grad gt| (below 1: the base is smoother than the
    scene); base_consistency = per-pixel std of base over the set / that of gt (near 0: the base
    predicts the same room for every input, i.e. it ignores the echoes).
    """

    def __init__(self, max_depth: float, lowpass_kernel: int):
        self.max_depth = max_depth
        self.lowpass_kernel = lowpass_kernel
        self.sums: dict[str, float] = {}
        self.images = 0
        self.grad = torch.zeros(3, dtype=torch.float64)  # base sum, gt sum, pair count
        self.moments: dict[str, torch.Tensor] | None = None

    def update(self, outputs: dict[str, torch.Tensor], gt: torch.Tensor) -> None:
        gt = gt.detach().float()
        valid = _valid_mask(gt)
        keep = valid.flatten(1).any(dim=1)
        self.images += int(keep.sum())
        per_image = per_image_metrics(outputs["final"], gt, self.max_depth)
        if "base" in outputs:
            per_image.update(self._decomposition(outputs, gt, valid, keep))
        for key, values in per_image.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(values.double().sum())

    def _decomposition(self, outputs, gt, valid, keep) -> dict[str, torch.Tensor]:
        """Per-image base and residual figures; accumulates the set-wide ones on the way."""
        base = outputs["base"].detach().float()
        residual = outputs["residual"].detach().float()
        count = valid.flatten(1).sum(dim=1).clamp(min=1)[keep]

        def mean(values: torch.Tensor) -> torch.Tensor:
            return (values * valid).flatten(1).sum(dim=1)[keep] / count

        base_grad, pairs = gradient_magnitude(base, valid)
        gt_grad, _ = gradient_magnitude(gt, valid)
        self.grad += torch.tensor([float(base_grad), float(gt_grad), float(pairs)],
                                  dtype=torch.float64)
        self._update_moments(base.double(), gt.double(), valid)
        return {"base_rmse": per_image_metrics(base, gt, self.max_depth)["rmse"],
                "sparse": mean(residual.abs()),
                "gt_detail": mean(detail_depth(gt, self.lowpass_kernel)),
                "base_loss": mean((base - lowpass_depth(gt, self.lowpass_kernel)).abs())}

    def _update_moments(self, base, gt, valid) -> None:
        v = valid.double()
        batch = {"m": v.sum(0), "g": (gt * v).sum(0), "gg": (gt**2 * v).sum(0),
                 "mb": (base * v).sum(0), "mbb": (base**2 * v).sum(0)}
        if self.moments is None:
            self.moments = batch
        else:
            for key, value in batch.items():
                self.moments[key] += value

    def compute(self) -> dict[str, float]:
        out = {k: (v / self.images if self.images else 0.0) for k, v in self.sums.items()}
        for key in METRIC_NAMES:
            out.setdefault(key, 0.0)
        if "sparse" in out:
            detail = out.pop("gt_detail")
            out["sparse_ratio"] = out["sparse"] / detail if detail > 0 else 0.0
            base_grad, gt_grad, pairs = self.grad.tolist()
            out["base_smoothness"] = base_grad / gt_grad if gt_grad > 0 and pairs else 0.0
            out["base_consistency"] = self._consistency()
        return {k: (v if math.isfinite(v) else 0.0) for k, v in out.items()}

    def _consistency(self) -> float:
        m = self.moments
        if m is None:
            return 0.0
        # Compare like with like: both stds over the samples where that pixel's gt is valid.
        usable = m["m"] >= 2
        if not usable.any():
            return 0.0
        count = m["m"][usable]
        gt_var = m["gg"][usable] / count - (m["g"][usable] / count) ** 2
        base_var = m["mbb"][usable] / count - (m["mb"][usable] / count) ** 2
        gt_std = gt_var.clamp(min=0).sqrt().mean()
        base_std = base_var.clamp(min=0).sqrt().mean()
        return float(base_std / gt_std) if gt_std > 0 else 0.0
