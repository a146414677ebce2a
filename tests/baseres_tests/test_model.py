import pytest
import torch
from helpers import tiny_config

from baseres.config import TrainConfig
from baseres.losses import BaseResidualLoss, curriculum
from baseres.model import BaseResidualNet, build_model


def double_conv(i, o, mid):
    return 9 * i * mid + 2 * mid + 9 * mid * o + 2 * o  # two bias-free 3x3 convs + BN


def expected_decoder(c, d):
    """Output widths 4C, 2C, C, C over d; d = 1 is the classic decoder (mid = in / 2, no
    projection), d > 1 projects the bottleneck and skips to width / d (mid = out)."""
    skips, outs = [8 * c, 4 * c, 2 * c, c], [w // d for w in (4 * c, 2 * c, c, c)]
    total = 0 if d == 1 else 8 * c * (8 * c // d) + sum(s * (s // d) for s in skips)
    prev = 8 * c // d
    for skip, out in zip(skips, outs):
        width = prev + skip // d
        total += double_conv(width, out, width // 2 if d == 1 else out)
        prev = out
    return total + prev + 1  # 1x1 head with bias


def counts_at_c64(divisor: int, model: str = "base_residual") -> dict[str, int]:
    # The meta device builds the seed-size model without allocating its weights.
    with torch.device("meta"):
        return build_model(TrainConfig(dataset="batvisionv2", model=model,
                                       base_channel_divisor=divisor)).param_counts()


@pytest.mark.parametrize("divisor", [1, 2, 4, 8, 16])
def test_base_decoder_counts_follow_the_formula(divisor):
    counts = counts_at_c64(divisor)
    assert counts["base_decoder"] == expected_decoder(64, divisor)
    assert counts["residual_decoder"] == expected_decoder(64, 1) == 7_855_041
    assert counts["total"] == counts["encoder"] + counts["base_decoder"] + counts[
        "residual_decoder"]


def test_divisor_1_has_the_residual_decoders_capacity_and_no_projection():
    counts = counts_at_c64(1)
    assert abs(counts["base_decoder"] / counts["residual_decoder"] - 1) <= 0.10
    net = BaseResidualNet(tiny_config(base_channel_divisor=1))
    assert net.base_decoder.projections is None
    assert [type(m) for m in net.base_decoder.modules()] == [
        type(m) for m in net.residual_decoder.modules()]


def test_divisor_4_is_about_the_seeds_seventeenth():
    # The seed: about 0.4 M against 6.8 M (1/17); here 0.40 M against 7.86 M (1/19.5).
    counts = counts_at_c64(4)
    assert counts["base_decoder"] / 1e6 == pytest.approx(0.4, rel=0.05)
    assert 15 <= counts["residual_decoder"] / counts["base_decoder"] <= 20


def test_divisor_shrinks_the_base_about_quadratically():
    base = {d: counts_at_c64(d)["base_decoder"] for d in (1, 2, 4, 8)}
    assert base[2] <= base[1] / 4 and base[4] <= base[2] / 3 and base[8] <= base[4] / 2.5


def test_unet_is_the_encoder_and_the_residual_decoder():
    unet, pair = counts_at_c64(4, "unet"), counts_at_c64(4)
    assert unet == {"encoder": pair["encoder"], "decoder": pair["residual_decoder"],
                    "total": pair["encoder"] + pair["residual_decoder"]}


@pytest.mark.parametrize("model", ["base_residual", "unet"])
@pytest.mark.parametrize("size, batch", [(32, 1), (48, 3), (64, 2), (256, 1)])
def test_outputs_are_named_metres_maps(model, size, batch):
    cfg = tiny_config(model=model, image_size=size)
    net = build_model(cfg).eval()
    out = net(torch.randn(batch, 2, size, size))
    assert set(out) == ({"final"} if model == "unet" else {"base", "residual", "final"})
    for value in out.values():
        assert value.shape == (batch, 1, size, size)
    assert out["final"].min() >= 0 and out["final"].max() <= cfg.max_depth
    if model == "base_residual":
        assert out["residual"].abs().max() <= cfg.max_depth * cfg.residual_range + 1e-4
        assert out["base"].min() >= 0 and out["base"].max() <= cfg.max_depth


@pytest.mark.parametrize("fill", [0.0, 1e30, -1e30, float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("model", ["base_residual", "unet"])
def test_no_nan_for_any_input(fill, train, model):
    net = build_model(tiny_config(model=model)).train(train)
    x = torch.randn(2, 2, 32, 32)
    x[:, :, :8] = fill
    for value in net(x).values():
        assert torch.isfinite(value).all()


def one_step(net, weights):
    cfg = tiny_config()
    loss_fn = BaseResidualLoss(cfg)
    gt = torch.rand(4, 1, 32, 32) * 10 + 0.5
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    out = net(torch.randn(4, 2, 32, 32))
    opt.zero_grad(set_to_none=True)
    loss_fn(out, gt, weights)["loss"].backward()
    grads = {name: p.grad for name, p in net.named_parameters()}
    opt.step()
    return grads


@pytest.mark.parametrize("model", ["base_residual", "unet"])
def test_every_parameter_gets_a_gradient_before_warmup(model):
    cfg = tiny_config(model=model, use_adaptive_loss=True, warmup_epochs=5)
    weights = curriculum(cfg, 0)
    assert not weights["base_frozen"]
    grads = one_step(build_model(cfg).train(), weights)
    missing = [n for n, g in grads.items() if g is None or not g.abs().sum() > 0]
    assert not missing


def test_base_decoder_is_fixed_after_warmup():
    cfg = tiny_config(use_adaptive_loss=True, warmup_epochs=2)
    weights = curriculum(cfg, 2)
    assert weights["base_frozen"]
    net = BaseResidualNet(cfg).train()
    net.freeze_base()
    net.train()  # train() must not wake the frozen base's BatchNorm statistics
    before = {k: v.clone() for k, v in net.state_dict().items()}
    grads = one_step(net, weights)
    after = net.state_dict()
    base_keys = [k for k in before if k.startswith("base_decoder.")]
    assert base_keys and all(torch.equal(before[k], after[k]) for k in base_keys)
    assert all(grads[n] is None for n in grads if n.startswith("base_decoder."))
    for part in ("encoder.", "residual_decoder."):
        changed = [k for k in before if k.startswith(part) and k.endswith("weight")
                   and not torch.equal(before[k], after[k])]
        assert changed, f"{part} stopped learning"
