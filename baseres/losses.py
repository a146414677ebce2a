"""The three-part loss (reconstruction, base vs low-passed ground truth, residual sparsity) and
the curriculum that ramps its weights, as pure functions of the epoch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baseres.config import TrainConfig

_EPS = 1e-6


def curriculum(cfg: TrainConfig, epoch: int) -> dict[str, float]:
    """Loss weights and whether the base decoder is fixed at `epoch` (0-based).

    Without ``use_adaptive_loss`` the weights are the constant ``lambda_recon`` /
    ``lambda_base`` / ``lambda_sparse``. With it, as in the seed code: the recon and base weights
    move linearly from their ``_init`` to their ``_end`` values over ``warmup_epochs`` and stay
    at the end values after it, and from epoch ``warmup_epochs`` on the base decoder is fixed
    (unless ``freeze_base`` is false: the ramp alone, which isolates the freeze).
    ``warmup_epochs: 0`` means no ramp and no freezing (a base that never trained would be
    useless). ``lambda_sparse`` never changes. The plain U-Net trains on the reconstruction
    loss alone, like the official BatVision U-Net: no base or sparse term, no curriculum.
    """
    if cfg.model == "unet":
        return {"lambda_recon": cfg.lambda_recon, "lambda_base": 0.0, "lambda_sparse": 0.0,
                "base_frozen": 0.0}
    weights = {"lambda_recon": cfg.lambda_recon, "lambda_base": cfg.lambda_base,
               "lambda_sparse": cfg.lambda_sparse, "base_frozen": 0.0}
    if not cfg.use_adaptive_loss or cfg.warmup_epochs == 0:
        return weights
    progress = min(epoch / cfg.warmup_epochs, 1.0)
    for name in ("lambda_recon", "lambda_base"):
        start, end = getattr(cfg, f"{name}_init"), getattr(cfg, f"{name}_end")
        weights[name] = start + progress * (end - start)
    weights["base_frozen"] = float(cfg.freeze_base and epoch >= cfg.warmup_epochs)
    return weights


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the pixels where mask is true; 0 (not NaN) when there are none."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def lowpass_depth(gt: torch.Tensor, kernel: int) -> torch.Tensor:
    """Average of the *valid* depth in a kernel x kernel window (stride 1), resized back to S.

    Averaging only valid pixels keeps holes (depth 0) from dragging the coarse target toward 0.
    """
    kernel = min(kernel, gt.shape[-2], gt.shape[-1])
    valid = (gt > 0).to(gt.dtype)
    size = gt.shape[-2:]
    # Resize sums and counts separately, so windows without any valid pixel never dilute the
    # result near a hole.
    total = F.interpolate(F.avg_pool2d(gt * valid, kernel, stride=1), size=size,
                          mode="bilinear", align_corners=False)
    count = F.interpolate(F.avg_pool2d(valid, kernel, stride=1), size=size,
                          mode="bilinear", align_corners=False)
    return torch.where(count > _EPS, total / count.clamp(min=_EPS), torch.zeros_like(total))


def silog_loss(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor, lam: float):
    diff = torch.log(pred.clamp(min=1e-3)) - torch.log(gt.clamp(min=1e-3))
    mean_sq = masked_mean(diff**2, valid)
    mean = masked_mean(diff, valid)
    # The epsilon keeps sqrt's gradient finite when the prediction is exact.
    return torch.sqrt((mean_sq - lam * mean**2).clamp(min=0.0) + _EPS)


def detail_depth(gt: torch.Tensor, kernel: int) -> torch.Tensor:
    """|gt - lowpass(gt)|: what a perfect base leaves for the residual to add."""
    return (gt - lowpass_depth(gt, kernel)).abs()


class BaseResidualLoss(nn.Module):
    """recon (+ base + sparse when the model has a base): each a mean over valid pixels.

    A model without a base (the plain U-Net) is trained on ``lambda_recon * recon`` alone.
    ``sparse_ratio`` (mean |residual| / mean |gt - lowpass(gt)|, same pixels) is logged, never
    optimised: it puts the sparse term on a scale-free footing across data sets.
    """

    def __init__(self, cfg: TrainConfig):
        super().__init__()
        self.recon_loss = cfg.recon_loss
        self.silog_lambda = cfg.silog_lambda
        self.lowpass_kernel = cfg.lowpass_kernel

    def forward(self, outputs: dict[str, torch.Tensor], gt: torch.Tensor,
                weights: dict[str, float]) -> dict[str, torch.Tensor]:
        valid = gt > 0
        final = outputs["final"]
        if self.recon_loss == "silog":
            recon = silog_loss(final, gt, valid, self.silog_lambda)
        else:
            recon = masked_mean((final - gt).abs(), valid)
        if "base" not in outputs:
            return {"loss": weights["lambda_recon"] * recon, "recon": recon}
        with torch.no_grad():
            target = lowpass_depth(gt, self.lowpass_kernel)
            detail = masked_mean((gt - target).abs(), valid)
        base_term = masked_mean((outputs["base"] - target).abs(), valid)
        sparse = masked_mean(outputs["residual"].abs(), valid)
        loss = (weights["lambda_recon"] * recon + weights["lambda_base"] * base_term
                + weights["lambda_sparse"] * sparse)
        return {"loss": loss, "recon": recon, "base": base_term, "sparse": sparse,
                "sparse_ratio": sparse.detach() / detail.clamp(min=_EPS)}
