import pytest
import torch
from helpers import tiny_config

from baseres.config import TrainConfig
from baseres.losses import BaseResidualLoss, curriculum
from baseres.model import BaseResidualNet


def double_conv(i, o, mid):
    return 9 * i * mid + 2 * mid + 9 * mid * o + 2 * o  # two bias-free 3x3 convs + BN


def expected_base_decoder(c, d):
    skips = [8 * c, 4 * c, 2 * c, c]
    total = 8 * c * (8 * c // d) + sum(s * (s // d) for s in skips)  # 1x1 projections
    prev = 8 * c // d
    for skip, out in zip(skips, [8 * c // d, 4 * c // d, 2 * c // d, c // d]):
        total += double_conv(prev + skip // d, out, out)
        prev = out
    return total + prev + 1  # 1x1 head with bias


@pytest.mark.parametrize("divisor", [1, 2, 4, 8, 16])
def test_base_decoder_counts_follow_the_formula(divisor):
    counts = BaseResidualNet(TrainConfig(dataset="batvisionv2",
                                         base_channel_divisor=divisor)).param_counts()
    assert counts["base_decoder"] == expected_base_decoder(64, divisor)
    assert counts["total"] == counts["encoder"] + counts["base_decoder"] + counts[
        "residual_decoder"]


@pytest.mark.parametrize("divisor, millions", [(1, 10.8), (2, 2.9), (4, 0.8), (8, 0.24)])
def test_counts_match_the_design_sketch_at_c64(divisor, millions):
    counts = BaseResidualNet(TrainConfig(dataset="batvisionv2",
                                         base_channel_divisor=divisor)).param_counts()
    assert counts["base_decoder"] / 1e6 == pytest.approx(millions, rel=0.05)
    assert counts["residual_decoder"] / 1e6 == pytest.approx(7.9, rel=0.02)


def test_divisor_shrinks_the_base_about_quadratically():
    def base(d):
        return BaseResidualNet(TrainConfig(dataset="batvisionv2",
                                           base_channel_divisor=d)).param_counts()["base_decoder"]
    assert base(4) <= base(1) / 8
    assert base(2) <= base(1) / 3 and base(8) <= base(4) / 3


@pytest.mark.parametrize("model", ["base_residual", "unet"])
@pytest.mark.parametrize("size, batch", [(32, 1), (48, 3), (64, 2), (256, 1)])
def test_outputs_are_named_metres_maps(model, size, batch):
    cfg = tiny_config(model=model, image_size=size)
    net = BaseResidualNet(cfg).eval()
    out = net(torch.randn(batch, 2, size, size))
    assert set(out) == {"base", "residual", "final"}
    for value in out.values():
        assert value.shape == (batch, 1, size, size)
    assert out["final"].min() >= 0 and out["final"].max() <= cfg.max_depth
    assert out["residual"].abs().max() <= cfg.max_depth * cfg.residual_range + 1e-4
    if model == "unet":
        assert torch.equal(out["base"], out["final"])
        assert not out["residual"].any()


@pytest.mark.parametrize("fill", [0.0, 1e30, -1e30, float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("train", [True, False])
def test_no_nan_for_any_input(fill, train):
    net = BaseResidualNet(tiny_config()).train(train)
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
    grads = one_step(BaseResidualNet(cfg).train(), weights)
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
