"""Adversarial losses of the conditional GANs, one small module each, plus WGAN-GP's penalty.

A loss judges generated and real critic inputs with the discriminator/critic it is handed; it
holds no network itself. Every loss gives the discriminator's loss (to minimise) with anything
worth logging, and the generator's adversarial term:

- `VanillaGANLoss` (pix2pix): D = 0.5 (BCE(D(real), 1) + BCE(D(fake), 0)) on logits per patch;
  G term = BCE(D(fake), 1).
- `LSGANLoss`: the same with squared errors instead of BCE.
- `WGANGPLoss` (Gulrajani et al.): critic loss = E[D(fake)] - E[D(real)] + lambda_gp * GP, where
  D(x) is the critic's mean over its patch map (`critic_scores`) and GP the `gradient_penalty`;
  G term = -E[D(fake)].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.errors import ConfigError


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
