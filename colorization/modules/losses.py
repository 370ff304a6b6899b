"""Losses of the model families, one small module or function each.

Adversarial losses (the conditional GANs and DDColor), plus WGAN-GP's penalty. A loss judges
generated and real critic inputs with the discriminator/critic it is handed; it holds no network
itself. Every loss gives the discriminator's loss (to minimise) with anything
worth logging, and the generator's adversarial term:

- `VanillaGANLoss` (pix2pix): D = 0.5 (BCE(D(real), 1) + BCE(D(fake), 0)) on logits per patch;
  G term = BCE(D(fake), 1).
- `LSGANLoss`: the same with squared errors instead of BCE.
- `WGANGPLoss` (Gulrajani et al.): critic loss = E[D(fake)] - E[D(real)] + lambda_gp * GP, where
  D(x) is the critic's mean over its patch map (`critic_scores`) and GP the `gradient_penalty`;
  G term = -E[D(fake)].

Generator losses of DDColor's recipe (on sRGB in [0, 1]):

- `PerceptualLoss`: sum_k w_k mean|phi_k(pred) - phi_k(target)| over VGG16-BN's conv1_1 ..
  conv5_1 outputs (before BatchNorm) with weights 1/16, 1/8, 1/4, 1/2, 1; the VGG is frozen, its
  BatchNorm uses ImageNet statistics, and it reads ImageNet-normalised input (BasicSR's
  ``PerceptualLoss``, criterion L1).
- `colorfulness_loss`: sum over the batch of (1 - CF) with CF Hasler & Suesstrunk's colorfulness
  on [0, 1] sRGB, so more colourful predictions lower it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.color.spaces import IMAGENET_MEAN, IMAGENET_STD
from colorization.errors import ConfigError
from colorization.files.weights import load_strict, read_state_dict
from colorization.metrics.image import colorfulness_of_rgb
from colorization.networks.vgg import VGG16BNFeatures


def critic_scores(output: Tensor) -> Tensor:
    """(B, 1, h, w) patch map -> (B,) one critic value per sample (the mean over its patches), float32."""
    return output.float().flatten(1).mean(1)


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, alpha: Tensor | None = None) -> Tensor:
    """WGAN-GP's penalty E[(||grad_x D(x_hat)||_2 - 1)^2], x_hat = alpha real + (1 - alpha) fake.

    `real`, `fake`: (B, C, H, W) critic inputs; `alpha`: (B, 1, 1, 1) per-sample mixing weights
    (uniform in [0, 1] when None). D(x) is `critic_scores`; the gradient norm is taken per sample
    over all of (C, H, W). Autocast is switched off, so the penalty and its gradient are float32
    under bf16/fp16 mixed precision too. Differentiable w.r.t. the critic's parameters.
    """
    with torch.autocast(device_type=real.device.type, enabled=False):
        real, fake = real.detach().float(), fake.detach().float()
        if alpha is None:
            alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic_scores(critic(x_hat)).sum(), x_hat, create_graph=True)
        return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()


class GANLoss(nn.Module):
    """Base of the adversarial losses: the patch-label loss of pix2pix's ``GANLoss``.

    Subclasses set `criterion` (logits or scores vs. an all-real/all-fake label map) or override
    both methods. `per_sample_critic` says whether the loss needs a critic that treats every sample
    on its own (no BatchNorm).
    """

    per_sample_critic = False

    def criterion(self, output: Tensor, label: Tensor) -> Tensor:
        raise NotImplementedError

    def label_loss(self, output: Tensor, is_real: bool) -> Tensor:
        """The loss of a (B, 1, h, w) patch map against the all-real (1) or all-fake (0) label."""
        output = output.float()
        return self.criterion(output, torch.full_like(output, 1.0 if is_real else 0.0))

    def discriminator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """``d_loss`` of the critic on (B, C, H, W) real and (detached) generated critic inputs."""
        return {"d_loss": 0.5 * (self.label_loss(critic(real), True) + self.label_loss(critic(fake), False))}

    def generator_loss(self, critic: nn.Module, fake: Tensor) -> Tensor:
        """The generator's adversarial term for generated critic inputs (the gradient flows into `fake`)."""
        return self.label_loss(critic(fake), True)


class VanillaGANLoss(GANLoss):
    """pix2pix's loss: binary cross-entropy on the discriminator's logits."""

    def criterion(self, output: Tensor, label: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(output, label)


class LSGANLoss(GANLoss):
    """Least-squares GAN: squared error of the discriminator's outputs against the labels."""

    def criterion(self, output: Tensor, label: Tensor) -> Tensor:
        return F.mse_loss(output, label)


class WGANGPLoss(GANLoss):
    """Wasserstein loss with gradient penalty (weight `lambda_gp`); the critic gives scores, not logits."""

    per_sample_critic = True  # the penalty takes one gradient norm per sample: BatchNorm would mix them

    def __init__(self, lambda_gp: float = 10.0) -> None:
        super().__init__()
        if not lambda_gp >= 0:
            raise ConfigError(f"model.gan_loss.lambda_gp={lambda_gp!r} must be >= 0")
        self.lambda_gp = float(lambda_gp)

    def discriminator_loss(self, critic: nn.Module, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """``d_loss`` plus ``gp`` and ``wasserstein`` (E[D(real)] - E[D(fake)], the critic's distance estimate)."""
        wasserstein = critic_scores(critic(real)).mean() - critic_scores(critic(fake)).mean()
        gp = gradient_penalty(critic, real, fake)
        return {"d_loss": -wasserstein + self.lambda_gp * gp, "gp": gp, "wasserstein": wasserstein}

    def generator_loss(self, critic: nn.Module, fake: Tensor) -> Tensor:
        return -critic_scores(critic(fake)).mean()

    def extra_repr(self) -> str:
        return f"lambda_gp={self.lambda_gp}"


PERCEPTUAL_LAYER_WEIGHTS: dict[str, float] = {
    "conv1_1": 1 / 16,
    "conv2_1": 1 / 8,
    "conv3_1": 1 / 4,
    "conv4_1": 1 / 2,
    "conv5_1": 1.0,
}
"""DDColor's layer weights: deeper, more semantic features count more."""
COLORFULNESS_EPS = 1e-8
"""Keeps the colorfulness gradient finite when a prediction is exactly gray."""


class PerceptualLoss(nn.Module):
    """Weighted L1 distance between VGG16-BN features of prediction and target (see the module docstring)."""

    def __init__(self, vgg: VGG16BNFeatures, layer_weights: dict[str, float] | None = None) -> None:
        super().__init__()
        self.layer_weights = dict(PERCEPTUAL_LAYER_WEIGHTS if layer_weights is None else layer_weights)
        unknown = set(self.layer_weights) - set(vgg.conv_index)
        if unknown:
            raise ValueError(f"perceptual layers {sorted(unknown)} are not VGG16-BN conv layers {list(vgg.conv_index)}")
        self.vgg = _frozen_out_of_state_dict(vgg)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_file(cls, path: str | Path, layer_weights: dict[str, float] | None = None) -> PerceptualLoss:
        """The loss with torchvision's ImageNet VGG16-BN weights from `path` (``vgg16_bn-6c64b313.pth``).

        The file must hold every entry of the layers up to conv5_1 with its shape; the deeper
        layers and the classifier are not used and skipped. `DataError` otherwise.
        """
        vgg = VGG16BNFeatures()
        depth = len(vgg.features)

        def beyond_conv5_1(key: str) -> bool:
            parts = key.split(".")
            return parts[0] == "classifier" or (
                parts[0] == "features" and parts[1].isdigit() and int(parts[1]) >= depth
            )

        load_strict(vgg, read_state_dict(path), path, unused=beyond_conv5_1)
        return cls(vgg, layer_weights)

    def forward(self, pred_rgb: Tensor, target_rgb: Tensor) -> Tensor:
        """(B, 3, H, W) sRGB in [0, 1], prediction and target -> scalar loss (differentiable w.r.t. `pred_rgb`)."""
        layers = list(self.layer_weights)
        pred = self.vgg((pred_rgb - self.mean) / self.std, layers)
        with torch.no_grad():
            target = self.vgg((target_rgb - self.mean) / self.std, layers)
        return sum(w * F.l1_loss(pred[name], target[name]) for name, w in self.layer_weights.items())


def _frozen_out_of_state_dict(net: nn.Module) -> nn.Module:
    """`net` with every parameter and buffer turned into a non-persistent buffer.

    A frozen loss network then follows the module across devices but stays out of its state dict
    and optimizers: checkpoints of the model it trains do not carry a copy of the weights file.
    """
    for module in net.modules():
        tensors = {**module._parameters, **module._buffers}
        module._parameters.clear()
        for name, tensor in tensors.items():
            if name in module._buffers:
                del module._buffers[name]
            if tensor is not None:
                module.register_buffer(name, tensor.detach(), persistent=False)
    return net


def colorfulness_loss(rgb: Tensor) -> Tensor:
    """sum over the (B, 3, H, W) batch of sRGB in [0, 1] of (1 - colorfulness): DDColor's colourfulness loss."""
    return (1.0 - colorfulness_of_rgb(rgb, eps=COLORFULNESS_EPS)).sum()
