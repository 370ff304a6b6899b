"""`GANColorizer`: conditional GANs for colorization (pix2pix, WGAN-GP), trained with manual optimization.

The generator maps normalised L to the colour space's target; the discriminator (a critic for
WGAN-GP) judges L concatenated with a target-space colouring, real or generated. The adversarial
loss is a module of `colorization.modules.losses` (``model.gan_loss``: vanilla, lsgan or wgangp, chosen
with ``model/gan_loss=...``, whose presets also set the optimizer, critic steps and critic norm).
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
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.color.spaces import normalize_l
from colorization.errors import ConfigError, check_choice
from colorization.inference.direct import DirectColorizer, direct_config
from colorization.modules.base import ColorizerModule, OptimizerFactory
from colorization.modules.losses import GANLoss, VanillaGANLoss
from colorization.networks.layers import NORMS, init_normal_

INIT_STD = 0.02  # pix2pix's Normal(0, 0.02) initialisation of both networks
PIX2PIX_ADAM = partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))
"""pix2pix's optimizer for both networks (the default; conf/model/gan_loss/wgangp.yaml changes it)."""


class GANColorizer(ColorizerModule):
    """A generator and a discriminator/critic trained adversarially plus an L1 term.

    `generator` is called with ``out_channels``/``out_range`` from the colour space and
    `discriminator` with ``in_channels = 1 + channels`` and ``norm=critic_norm`` (BatchNorm is
    refused for a loss that needs a per-sample critic, WGAN-GP: it couples the samples the gradient
    penalty treats one by one). The defaults are pix2pix's: `VanillaGANLoss`, one discriminator
    step per generator step, Adam 2e-4 with betas (0.5, 0.999) for each network (`optimizer`, a
    partial called once per network). The learning rate of both optimizers stays constant and then
    decays linearly over the last `lr_decay_epochs` epochs of ``trainer.max_epochs`` (None: the
    second half, pix2pix's 100 + 100 epochs; 0: constant). `grad_clip` clips each network's
    gradient norm. See the module docstring for what ``global_step`` counts.
    """

    training_only_networks = ("discriminator",)

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        discriminator: Callable[..., nn.Module],
        colorspace: str = "lab",
        gan_loss: GANLoss | None = None,
        optimizer: OptimizerFactory | None = None,
        n_critic: int = 1,
        critic_norm: str = "batch",
        lambda_l1: float = 100.0,
        lambda_adv: float = 1.0,
        lr_decay_epochs: int | None = None,
        grad_clip: float | None = None,
    ) -> None:
        super().__init__()
        self.use_colorizer(DirectColorizer(generator, colorspace), net="generator")
        self.adversarial = VanillaGANLoss() if gan_loss is None else gan_loss
        self.n_critic, self.critic_norm = n_critic, critic_norm
        self.lambda_l1, self.lambda_adv = float(lambda_l1), float(lambda_adv)
        self.lr_decay_epochs, self.grad_clip = lr_decay_epochs, grad_clip
        self._validate()
        self.use_optimizer(PIX2PIX_ADAM if optimizer is None else optimizer)
        self.save_hyperparameters(ignore=["generator", "discriminator", "gan_loss", "optimizer"], logger=True)
        self.automatic_optimization = False

        self.discriminator = discriminator(in_channels=1 + self.colorspace.channels, norm=self.critic_norm)
        init_normal_(self.generator, INIT_STD)
        init_normal_(self.discriminator, INIT_STD)
        # critic steps taken so far; decides which batches also train the generator (checkpointed)
        self.critic_steps = 0

    def _validate(self) -> None:
        if not isinstance(self.adversarial, GANLoss):
            raise ConfigError(f"model.gan_loss={self.adversarial!r} is not a colorization.modules.losses.GANLoss")
        if not (isinstance(self.n_critic, int) and self.n_critic >= 1):
            raise ConfigError(f"model.n_critic={self.n_critic!r} must be a positive integer")
        check_choice("model.critic_norm", self.critic_norm, NORMS)
        if self.adversarial.per_sample_critic and self.critic_norm == "batch":
            raise ConfigError(
                f"model.critic_norm='batch' breaks the per-sample gradient penalty of model.gan_loss="
                f"{type(self.adversarial).__name__}; use layer, instance or none"
            )
        for key in ("lambda_l1", "lambda_adv"):
            if getattr(self, key) < 0:
                raise ConfigError(f"model.{key}={getattr(self, key)!r} must be >= 0")
        decay = self.lr_decay_epochs
        if decay is not None and not (isinstance(decay, int) and decay >= 0):
            raise ConfigError(f"model.lr_decay_epochs={decay!r} must be null or an integer >= 0")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"model.grad_clip={self.grad_clip!r} must be null or positive")

    # ---- inference -------------------------------------------------------------------------

    def colorizer_config(self) -> dict[str, Any] | None:
        if self.model_config is None:  # built by hand, not from a config: nothing to rebuild it from
            return None
        return direct_config(self.model_config["generator"], self.colorspace.name)

    def forward(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100] -> (B, channels, H, W) generated target-space prediction."""
        return self.colorizer.predict(l)

    # ---- losses ----------------------------------------------------------------------------

    def _judge(self, l_norm: Tensor, colours: Tensor) -> Tensor:
        """The discriminator's patch map for L paired with a target-space colouring."""
        return self.discriminator(torch.cat([l_norm, colours], dim=1))

    def critic_loss(self, l_norm: Tensor, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """Discriminator/critic losses for target-space `real` and generated `fake` (detached here).

        Returns ``d_loss`` (to minimise) and whatever else the loss reports (WGAN-GP: ``gp``, ``wasserstein``).
        """
        real_in, fake_in = torch.cat([l_norm, real], dim=1), torch.cat([l_norm, fake.detach()], dim=1)
        return self.adversarial.discriminator_loss(self.discriminator, real_in, fake_in)

    def generator_loss(self, l_norm: Tensor, real: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """``g_loss = lambda_adv * g_adv + lambda_l1 * g_l1``; the critic's gradient flows into `fake`."""
        adversarial = self.adversarial.generator_loss(self.discriminator, torch.cat([l_norm, fake], dim=1))
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

        # sync_dist: under DDP the epoch values average every process, not rank 0 alone
        self.log_dict(
            {f"train/{name}": value.detach() for name, value in losses.items()},
            on_step=True,
            on_epoch=True,
            batch_size=l.shape[0],
            sync_dist=True,
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

    def optimizer_targets(self) -> list[tuple[OptimizerFactory | None, list[nn.Parameter]]]:
        # the generator's optimizer comes first: on_before_optimizer_step and the checkpoints rely on it
        return [(self.optimizer_factory, list(net.parameters())) for net in (self.generator, self.discriminator)]

    def make_scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_factor)

    def on_train_epoch_start(self) -> None:
        # Stepped by hand (manual optimization) and caught up to the epoch, so the schedule survives a
        # resume from a checkpoint written before the last epoch's end. That catch-up precedes this
        # process's first optimizer step, which PyTorch's step-order warning would wrongly flag.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
            for scheduler in self.lr_schedulers():
                while scheduler.last_epoch < self.current_epoch:
                    scheduler.step()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["gan"] = {"critic_steps": self.critic_steps}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.critic_steps = checkpoint.get("gan", {}).get("critic_steps", 0)
