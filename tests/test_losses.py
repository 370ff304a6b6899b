"""The losses of modules/losses.py against independent computations: WGAN-GP's gradient penalty, the
perceptual loss on a torchvision VGG16-BN file, the colourfulness loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from colorization.errors import DataError
from colorization.metrics.image import colorfulness_of_rgb
from colorization.modules.losses import PERCEPTUAL_LAYER_WEIGHTS, PerceptualLoss, colorfulness_loss, gradient_penalty
from tests.helpers.weights import torchvision_vgg16_bn_layout

# ---- WGAN-GP's gradient penalty ------------------------------------------------------------------


def reference_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's penalty computed independently: one sample at a time, float32, no autocast."""
    norms = []
    for i in range(real.shape[0]):  # the gradient of that sample's mean critic output
        x_hat = alpha[i] * real[i] + (1 - alpha[i]) * fake[i]
        grad = torch.func.grad(lambda x: critic(x[None]).mean())(x_hat)
        norms.append(grad.norm())
    return ((torch.stack(norms) - 1) ** 2).mean()


def test_gradient_penalty_equals_an_independent_autograd_computation():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3))
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    alpha = torch.rand(4, 1, 1, 1)
    gp = gradient_penalty(critic, real, fake, alpha)
    torch.testing.assert_close(gp, reference_penalty(critic, real, fake, alpha))
    gp.backward()  # the penalty trains the critic (its weights; no bias changes an input gradient)
    assert all(p.grad.abs().sum() > 0 for p in critic.parameters() if p.ndim > 1)


def test_gradient_penalty_of_a_linear_critic_is_analytic():
    # D(x) = mean over the h*w pixels of w . x  =>  grad = w / (h*w) at every pixel, norm ||w|| / sqrt(h*w)
    critic = nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([3.0, 4.0, 12.0]).view(1, 3, 1, 1))  # ||w|| = 13
    gp = gradient_penalty(critic, torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4))
    assert gp.item() == pytest.approx((13 / 4 - 1) ** 2)


def test_gradient_penalty_is_float32_under_bf16_autocast():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(3, 8, 3), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 3))
    real, fake, alpha = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16), torch.rand(4, 1, 1, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert critic(real).dtype == torch.bfloat16  # autocast is really on for the critic...
        mixed = gradient_penalty(critic, real, fake, alpha)
    assert mixed.dtype == torch.float32  # ...but not inside the penalty: bf16 would be off by ~1e-4 here
    torch.testing.assert_close(mixed, reference_penalty(critic, real, fake, alpha))


# ---- DDColor's perceptual and colourfulness losses -----------------------------------------------


def test_perceptual_loss_reads_a_torchvision_file_and_weights_the_layers(tmp_path):
    path = tmp_path / "vgg16_bn.pth"
    state = torchvision_vgg16_bn_layout()
    torch.save(state, path)
    loss = PerceptualLoss.from_file(path).train()  # train mode: its BatchNorm still uses the stored statistics
    torch.testing.assert_close(loss.vgg.features[0].weight, state["features.0.weight"])
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    target = torch.rand(2, 3, 32, 32)
    value = loss(pred, target)
    # reference: run the layers one by one and weight each named conv output's mean absolute difference
    mean, std = (
        torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
        torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
    )
    a, b, expected = (pred.detach() - mean) / std, (target - mean) / std, 0.0
    names = {i: n for n, i in loss.vgg.conv_index.items()}
    for index, layer in enumerate(loss.vgg.features.eval()):
        a, b = layer(a), layer(b)
        if names.get(index) in PERCEPTUAL_LAYER_WEIGHTS:
            expected += PERCEPTUAL_LAYER_WEIGHTS[names[index]] * (a - b).abs().mean()
    torch.testing.assert_close(value.detach(), expected)
    value.backward()
    assert pred.grad.abs().sum() > 0
    # frozen and not part of a trained model's checkpoint
    assert not list(loss.parameters()) and not loss.state_dict()
    assert loss(target, target).item() == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("features.34.weight"), "missing keys: features.34.weight"),
        (lambda s: s.update({"features.3.weight": torch.zeros(64, 64, 1, 1)}), "wrong shapes: features.3.weight"),
        (lambda s: s.update({"head.weight": torch.zeros(1)}), "unexpected keys: head.weight"),
    ],
)
def test_perceptual_weights_that_do_not_fit_stop_with_one_line(tmp_path, change, message):
    state = torchvision_vgg16_bn_layout()
    change(state)
    torch.save(state, tmp_path / "vgg.pth")
    with pytest.raises(DataError, match=message) as error:
        PerceptualLoss.from_file(tmp_path / "vgg.pth")
    assert "\n" not in str(error.value)


def test_colorfulness_loss_is_one_minus_colorfulness_summed_over_images():
    rgb = torch.rand(3, 3, 8, 8, dtype=torch.float64)
    r, g, b = rgb.unbind(1)
    rg, yb = (r - g).abs().flatten(1), ((r + g) / 2 - b).abs().flatten(1)
    cf = torch.sqrt(rg.var(1, correction=0) + yb.var(1, correction=0)) + 0.3 * torch.sqrt(
        rg.mean(1) ** 2 + yb.mean(1) ** 2
    )
    torch.testing.assert_close(colorfulness_loss(rgb), (1 - cf).sum(), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(colorfulness_of_rgb(rgb), cf)
    gray = torch.full((2, 3, 4, 4), 0.5, requires_grad=True)
    value = colorfulness_loss(gray)
    value.backward()
    assert value.item() == pytest.approx(2.0, abs=1e-3) and torch.isfinite(gray.grad).all()
