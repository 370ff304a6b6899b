"""`GANColorizer`: conditional GANs for colorization (pix2pix, WGAN-GP), trained with manual optimization.

The generator maps normalised L to the colour space's target; the discriminator (a critic for
WGAN-GP) judges L concatenated with a target-space colouring, real or generated. Losses:

- ``vanilla`` (pix2pix): D = 0.5 (BCE(D(real), 1) + BCE(D(fake), 0)) on logits per patch;
  G adversarial term = BCE(D(fake), 1).
- ``lsgan``: the same with squared errors instead of BCE.
- ``wgangp`` (Gulrajani et al.): critic loss = E[D(fake)] - E[D(real)] + lambda_gp * GP, where
  D(x) is the critic's mean over its patch map and GP = E[(||grad D(x_hat)||_2 - 1)^2] on
  per-sample interpolates x_hat, computed in float32 even under mixed precision;
  G adversarial term = -E[D(fake)].

The generator loss is ``lambda_adv * adversarial + lambda_l1 * L1(fake, target)`` for every loss.

Step counting: every training batch makes one critic (discriminator) optimizer step; every
`n_critic`-th critic step is followed by one generator step on the same batch. Lightning counts
*every* ``optimizer.step()`` call of either optimizer in ``trainer.global_step`` (and therefore in
``trainer.max_steps`` and checkpoint step numbers), so one generator step costs ``n_critic + 1``
global steps: 2 for pix2pix, 6 for WGAN-GP with ``n_critic=5``. The loggers' step axis and
``log_every_n_steps`` count training batches instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.colorspaces import normalize_l
from colorization.errors import ConfigError, check_choice
from colorization.models.layers import NORMS, init_normal_
from colorization.modules.base import ColorizerModule

INIT_STD = 0.02  # pix2pix's Normal(0, 0.02) initialisation of both networks


@dataclass(frozen=True)
class LossDefaults:
    """What a setting left at null means for a given `gan_loss`."""

    lr: float
    betas: tuple[float, float]
    n_critic: int
    critic_norm: str


LOSS_DEFAULTS: dict[str, LossDefaults] = {
    # pix2pix: Adam 2e-4, betas (0.5, 0.999), one D step per G step, BatchNorm in D
    "vanilla": LossDefaults(2e-4, (0.5, 0.999), 1, "batch"),
    "lsgan": LossDefaults(2e-4, (0.5, 0.999), 1, "batch"),
    # Gulrajani et al.: Adam 1e-4, betas (0, 0.9), 5 critic steps, layer norm instead of BatchNorm
    "wgangp": LossDefaults(1e-4, (0.0, 0.9), 5, "layer"),
}


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


class GANColorizer(ColorizerModule):
    """A generator and a discriminator/critic trained adversarially plus an L1 term.

    `generator` is called with ``out_channels``/``out_range`` from the colour space and
    `discriminator` with ``in_channels = 1 + channels`` and ``norm``. Settings left at None take
    the `gan_loss`'s default (`LOSS_DEFAULTS`): `lr`, `betas` (Adam, both networks), `n_critic`,
    `critic_norm` (BatchNorm is refused for ``wgangp``: it couples the samples the gradient
    penalty treats one by one). The learning rate of both optimizers stays constant and then
    decays linearly over the last `lr_decay_epochs` epochs of ``trainer.max_epochs`` (None: the
    second half, pix2pix's 100 + 100 epochs; 0: constant). `grad_clip` clips each network's
    gradient norm. See the module docstring for the losses and what ``global_step`` counts.
    """

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        colorspace: str = "lab",
        gan_loss: str = "vanilla",
        lambda_l1: float = 100.0,
        lambda_adv: float = 1.0,
        lambda_gp: float = 10.0,
        n_critic: int | None = None,
        critic_norm: str | None = None,
        lr: float | None = None,
        betas: tuple[float, float] | None = None,
        lr_decay_epochs: int | None = None,
        grad_clip: float | None = None,
    ) -> None:
        super().__init__(colorspace)
        check_choice("model.gan_loss", gan_loss, LOSS_DEFAULTS)
        defaults = LOSS_DEFAULTS[gan_loss]
        self.gan_loss = gan_loss
        self.n_critic = defaults.n_critic if n_critic is None else n_critic
        self.critic_norm = defaults.critic_norm if critic_norm is None else critic_norm
        self.lr = defaults.lr if lr is None else float(lr)
        self.betas = defaults.betas if betas is None else tuple(float(b) for b in betas)
        self.lambda_l1, self.lambda_adv, self.lambda_gp = float(lambda_l1), float(lambda_adv), float(lambda_gp)
        self.lr_decay_epochs, self.grad_clip = lr_decay_epochs, grad_clip
        self._validate()
        self.save_hyperparameters(ignore=["generator", "discriminator"], logger=True)
        self.automatic_optimization = False

        self.generator = generator(out_channels=self.colorspace.channels, out_range=self.colorspace.output_range)
        self.discriminator = discriminator(in_channels=1 + self.colorspace.channels, norm=self.critic_norm)
        init_normal_(self.generator, INIT_STD)
        init_normal_(self.discriminator, INIT_STD)
        self.size_multiple = getattr(self.generator, "size_multiple", 1)
        # critic steps taken so far; decides which batches also train the generator (checkpointed)
        self.critic_steps = 0

    def _validate(self) -> None:
        if not (isinstance(self.n_critic, int) and self.n_critic >= 1):
            raise ConfigError(f"model.n_critic={self.n_critic!r} must be a positive integer")
        check_choice("model.critic_norm", self.critic_norm, NORMS)
        if self.gan_loss == "wgangp" and self.critic_norm == "batch":
            raise ConfigError(
                "model.critic_norm='batch' breaks the per-sample gradient penalty of model.gan_loss=wgangp; "
                "use layer, instance or none"
            )
        if not self.lr > 0:
            raise ConfigError(f"model.lr={self.lr!r} must be positive")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"model.betas={list(self.betas)!r} must be two numbers in [0, 1)")
        for key in ("lambda_l1", "lambda_adv", "lambda_gp"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key}={getattr(self, key)!r} must be >= 0")
        decay = self.lr_decay_epochs
        if decay is not None and not (isinstance(decay, int) and decay >= 0):
            raise ConfigError(f"model.lr_decay_epochs={decay!r} must be null or an integer >= 0")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"model.grad_clip={self.grad_clip!r} must be null or positive")

    # ---- inference -------------------------------------------------------------------------

    def forward(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100] -> (B, channels, H, W) generated target-space prediction."""
        return self.generator(normalize_l(l))

    def colorize(self, l: Tensor) -> Tensor:
        return self.colorspace.decode_lab(l, self(l).float())

    # ---- losses ----------------------------------------------------------------------------

    def _judge(self, l_norm: Tensor, colours: Tensor) -> Tensor:
        """The discriminator's patch map for L paired with a target-space colouring."""
        return self.discriminator(torch.cat([l_norm, colours], dim=1))

    def _adversarial(self, output: Tensor, is_real: bool) -> Tensor:
        """Vanilla/LSGAN loss of a patch map against the all-real or all-fake label."""
        output = output.float()
        label = torch.full_like(output, 1.0 if is_real else 0.0)
        if self.gan_loss == "vanilla":
            return F.binary_cross_entropy_with_logits(output, label)
        return F.mse_loss(output, label)

    def critic_loss(self, l_norm: Tensor, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """Discriminator/critic losses for target-space `real` and generated `fake` (detached here).

        Returns ``d_loss`` (to minimise) and, for ``wgangp``, ``gp`` and ``wasserstein``
        (E[D(real)] - E[D(fake)], the critic's estimate of the distance).
        """
        fake = fake.detach()
        real_out, fake_out = self._judge(l_norm, real), self._judge(l_norm, fake)
        if self.gan_loss != "wgangp":
            return {"d_loss": 0.5 * (self._adversarial(real_out, True) + self._adversarial(fake_out, False))}
        wasserstein = critic_scores(real_out).mean() - critic_scores(fake_out).mean()
        gp = gradient_penalty(self.discriminator, torch.cat([l_norm, real], dim=1), torch.cat([l_norm, fake], dim=1))
        return {"d_loss": -wasserstein + self.lambda_gp * gp, "gp": gp, "wasserstein": wasserstein}

    def generator_loss(self, l_norm: Tensor, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """``g_loss = lambda_adv * g_adv + lambda_l1 * g_l1``; the critic's gradient flows into `fake`."""
        fake_out = self._judge(l_norm, fake)
        if self.gan_loss == "wgangp":
            adversarial = -critic_scores(fake_out).mean()
        else:
            adversarial = self._adversarial(fake_out, True)
        l1 = F.l1_loss(fake.float(), real.float())
        return {"g_loss": self.lambda_adv * adversarial + self.lambda_l1 * l1, "g_adv": adversarial, "g_l1": l1}

    # ---- training --------------------------------------------------------------------------

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        l = batch["l"]
        l_norm, real = normalize_l(l), self.colorspace.encode(l, batch["ab"])
        generator_turn = (self.critic_steps + 1) % self.n_critic == 0
        # one generator pass serves both steps: detached for the critic, differentiated for G
        with torch.set_grad_enabled(generator_turn):
            fake = self.generator(l_norm)

        self.toggle_optimizer(opt_d)
        losses = self.critic_loss(l_norm, real, fake)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(losses["d_loss"])
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        self.critic_steps += 1

        if generator_turn:
            self.toggle_optimizer(opt_g)
            losses |= self.generator_loss(l_norm, real, fake)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(losses["g_loss"])
            opt_g.step()
            self.untoggle_optimizer(opt_g)

        self.log_dict(
            {f"train/{name}": value.detach() for name, value in losses.items()},
            on_step=True,
            on_epoch=True,
            batch_size=l.shape[0],
        )

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Lightning calls this inside optimizer.step(), after any AMP unscaling: the true gradients
        network = "g" if optimizer is self.trainer.optimizers[0] else "d"
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        self.log(f"train/grad_norm_{network}", norm, on_step=True, on_epoch=False)
        if self.grad_clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")

    def lr_factor(self, epoch: int) -> float:
        """Learning-rate multiplier during `epoch` (0-based): 1, then linear decay towards 0 (pix2pix)."""
        max_epochs = self.trainer.max_epochs
        if max_epochs is None or max_epochs < 1:  # unbounded (max_steps) training: no schedule to follow
            return 1.0
        decay = max_epochs // 2 if self.lr_decay_epochs is None else min(self.lr_decay_epochs, max_epochs)
        constant = max_epochs - decay
        return 1.0 - max(0, epoch + 1 - constant) / (decay + 1)

    def configure_optimizers(self) -> Any:
        optimizers = [
            torch.optim.Adam(net.parameters(), lr=self.lr, betas=self.betas)
            for net in (self.generator, self.discriminator)
        ]
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, self.lr_factor) for opt in optimizers]
        return optimizers, schedulers

    def on_train_epoch_start(self) -> None:
        # Stepped by hand (manual optimization) and caught up to the epoch, so the schedule survives a
        # resume from a checkpoint written before the last epoch's end. That catch-up precedes this
        # process's first optimizer step, which PyTorch's step-order warning would wrongly flag.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            for scheduler in self.lr_schedulers():
                while scheduler.last_epoch < self.current_epoch:
                    scheduler.step()

    def setup(self, stage: str) -> None:
        """Check the datamodule's crop sizes against both networks before any training."""
        datamodule = self.trainer.datamodule
        if datamodule is None:
            return
        generator_multiple = getattr(self.generator, "size_multiple", 1)
        generator_min = getattr(self.generator, "min_size", 1)
        for key in ("crop_size", "eval_crop_size"):
            size = getattr(datamodule, key, None)
            if size is None:
                continue
            if size % generator_multiple or size < generator_min:
                depth = getattr(self.generator, "num_downs", "?")
                need = f"a multiple of {generator_multiple}" if generator_multiple > 1 else f">= {generator_min}"
                raise ConfigError(
                    f"data.{key}={size} does not fit the generator: model.generator.num_downs={depth} needs {need} "
                    f"pixels; change data.{key} or model.generator.num_downs"
                )
        crop = getattr(datamodule, "crop_size", None)
        critic_min = getattr(self.discriminator, "min_size", 1)
        if stage == "fit" and crop is not None and crop < critic_min:
            raise ConfigError(
                f"data.crop_size={crop} is below the discriminator's {critic_min}-pixel minimum "
                f"(model.discriminator.n_layers={getattr(self.discriminator, 'n_layers', '?')})"
            )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["gan"] = {"critic_steps": self.critic_steps}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.critic_steps = checkpoint.get("gan", {}).get("critic_steps", 0)
