"""DDColor as a LightningModule: the authors' training recipe around `colorization.inference.ddcolor`.

Inference is the colorizer's (as the authors run it, see `colorization.inference.ddcolor`).

Training (manual optimization, generator step then discriminator step on every batch, as theirs):

    G loss = lambda_l1 L1(ab, ab_target) + lambda_perceptual Perceptual(rgb, rgb_target)
           + lambda_adv GAN(D(rgb)) + lambda_colorfulness sum_images (1 - CF(rgb))
    D loss = the GAN loss of D(rgb_target) against D(rgb) (DDColor: vanilla, BCE on logits)

with rgb the sRGB of the prediction joined to L and rgb_target the target's, its saturation raised
by `color_enhance` (1.2: their "color_enhance"). Each term is logged as ``train/g_<term>``; a
weight of 0 switches a term off (``lambda_adv=0`` also stops training D). The perceptual term needs
torchvision's ImageNet VGG16-BN file (``model.perceptual.weights=PATH``); without one it is off
and says so once in the log. The colourfulness term is summed over the batch, as the authors do
(their batch: 4 images per GPU). Optimizers: AdamW for G, Adam for D, MultiStepLR on both, stepped
per batch (milestones in iterations).

Weights: ``weights=PATH`` starts from a released ``pytorch_model.pt`` (or a checkpoint of this
module) for fine-tuning or inference, ``encoder_weights=PATH`` from an ImageNet ConvNeXt file for
training from scratch. Both load strictly; anything that does not fit is one line naming the keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from colorization.color.spaces import lab_to_rgb
from colorization.errors import ConfigError, DataError
from colorization.files.weights import load_strict, read_state_dict
from colorization.inference.ddcolor import INFERENCE_SIZE, DDColorColorizer
from colorization.inference.loading import resolve
from colorization.instantiate import target_of
from colorization.modules.base import ColorizerModule, OptimizerFactory, SchedulerFactory, check_optimizer
from colorization.modules.losses import (
    PERCEPTUAL_LAYER_WEIGHTS,
    GANLoss,
    PerceptualLoss,
    VanillaGANLoss,
    colorfulness_loss,
)
from colorization.networks.unet_discriminator import UNetDiscriminator

log = logging.getLogger(__name__)

LUMA = (0.2989, 0.587, 0.114)
"""ITU-R 601 luma weights of the gray image the saturation boost blends away from."""
NETWORK_PREFIX = "net."
"""The network's entries in a checkpoint's state dict (``weights`` may name one of our checkpoints)."""
GENERATOR_ADAMW = partial(torch.optim.AdamW, lr=1e-4, weight_decay=0.01, betas=(0.9, 0.99))
DISCRIMINATOR_ADAM = partial(torch.optim.Adam, lr=1e-4, betas=(0.9, 0.99))
HALVINGS = partial(torch.optim.lr_scheduler.MultiStepLR, milestones=[80_000 + 40_000 * i for i in range(8)], gamma=0.5)
"""The authors' optimizers and schedule (400k iterations, halving every 40k from 80k)."""


def enhance_saturation(rgb: Tensor, factor: float) -> Tensor:
    """(B, 3, H, W) sRGB in [0, 1] pushed away from its gray by `factor` (1 = unchanged), clipped to [0, 1]."""
    gray = sum(w * c for w, c in zip(LUMA, rgb.unbind(1), strict=True)).unsqueeze(1)
    return (gray + factor * (rgb - gray)).clamp(0.0, 1.0)


class DDColorModule(ColorizerModule):
    """DDColor-T/L colorizer with the authors' GAN training (see the module docstring).

    `size`: 'tiny' or 'large'. `input_size`: the side `colorize_full` runs the network at (a
    multiple of 32). `perceptual`: ``{"weights": PATH or None, "layers": {conv name: weight}}``.
    `discriminator`: a partial building it (default: `UNetDiscriminator`, nf 64); `gan_loss`: a
    `GANLoss` (default vanilla). `optimizer`, `d_optimizer`, `scheduler`: partials for G, D and
    both schedules (defaults: the authors' AdamW, Adam and MultiStepLR).
    """

    training_only_networks = ("discriminator",)

    def __init__(
        self,
        colorspace: str = "lab",
        size: str = "tiny",
        input_size: int = INFERENCE_SIZE,
        weights: str | None = None,
        encoder_weights: str | None = None,
        num_queries: int = 100,
        num_layers: int = 9,
        lambda_l1: float = 0.1,
        lambda_perceptual: float = 5.0,
        lambda_adv: float = 1.0,
        lambda_colorfulness: float = 0.5,
        color_enhance: float = 1.2,
        perceptual: Mapping[str, Any] | None = None,
        discriminator: Callable[..., nn.Module] | None = None,
        gan_loss: GANLoss | None = None,
        optimizer: OptimizerFactory | None = None,
        d_optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
    ) -> None:
        super().__init__()
        self.lambdas = {
            "l1": float(lambda_l1),
            "perceptual": float(lambda_perceptual),
            "adv": float(lambda_adv),
            "colorfulness": float(lambda_colorfulness),
        }
        for term, value in self.lambdas.items():
            if value < 0:
                raise ConfigError(f"model.lambda_{term}={value!r}: expected a weight >= 0 (0 switches the term off)")
        if weights and encoder_weights:
            raise ConfigError(
                "model.weights and model.encoder_weights are both set; the weights file holds the encoder"
            )
        if not color_enhance > 0:
            raise ConfigError(f"model.color_enhance={color_enhance!r}: expected > 0 (1 = targets unchanged)")
        self.adversarial = VanillaGANLoss() if gan_loss is None else gan_loss
        if not isinstance(self.adversarial, GANLoss):
            raise ConfigError(f"model.gan_loss={self.adversarial!r} is not a colorization.modules.losses.GANLoss")
        self.use_optimizer(optimizer or GENERATOR_ADAMW, scheduler or HALVINGS)
        self.d_optimizer_factory = d_optimizer or DISCRIMINATOR_ADAM
        check_optimizer("model.d_optimizer", self.d_optimizer_factory)
        self.save_hyperparameters(
            ignore=["discriminator", "gan_loss", "optimizer", "d_optimizer", "scheduler"], logger=True
        )
        self.color_enhance = float(color_enhance)
        self.automatic_optimization = False

        colorizer = DDColorColorizer(colorspace, size, input_size, num_queries, num_layers)
        if weights:
            colorizer.load_network(read_state_dict(resolve(weights, kind="weights file"), NETWORK_PREFIX), weights)
        self.use_colorizer(colorizer)
        if encoder_weights:
            self._load_encoder(encoder_weights)
        self.discriminator = (discriminator or UNetDiscriminator)()
        self.perceptual_missing = False
        self.perceptual = self._perceptual_loss(dict(perceptual or {}))

    # ---- weights -------------------------------------------------------------------------

    def _load_encoder(self, path: str) -> None:
        """ImageNet ConvNeXt weights (``convnext_tiny_22k_224.pth`` ...): its classifier is skipped,
        DDColor's extra ``norm0..3`` start fresh."""
        encoder = self.net.encoder["arch"]

        def new_in_ddcolor(key: str) -> bool:
            return key.split(".")[0] in {f"norm{i}" for i in range(4)}

        load_strict(
            encoder,
            read_state_dict(path),
            path,
            optional=new_in_ddcolor,
            unused=lambda key: key.startswith("head."),
        )

    def _perceptual_loss(self, settings: dict[str, Any]) -> PerceptualLoss | None:
        unknown = set(settings) - {"weights", "layers"}
        if unknown:
            raise ConfigError(f"model.perceptual has unknown keys {sorted(unknown)}; expected weights, layers")
        if self.lambdas["perceptual"] == 0:
            return None
        path = settings.get("weights")
        if not path:
            self.lambdas["perceptual"] = 0.0  # said once in the log when training starts
            self.perceptual_missing = True
            return None
        if not Path(path).is_file():
            raise DataError(f"model.perceptual.weights={path}: file not found")
        layers = dict(settings.get("layers") or PERCEPTUAL_LAYER_WEIGHTS)
        try:
            return PerceptualLoss.from_file(path, layers)
        except ValueError as error:
            raise ConfigError(f"model.perceptual.layers: {error}") from None

    # ---- inference -----------------------------------------------------------------------

    def colorizer_config(self) -> dict[str, Any]:
        colorizer = self.colorizer
        return {
            "_target_": target_of(DDColorColorizer),
            "colorspace": self.colorspace.name,
            "size": colorizer.net.size,
            "input_size": colorizer.native_size,
            "num_queries": colorizer.num_queries,
            "num_layers": colorizer.num_layers,
        }

    def forward(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100], sides multiples of 32 -> (B, 2, H, W) predicted ab in Lab units."""
        return self.colorizer.predict(l)

    # ---- training ------------------------------------------------------------------------

    def generator_losses(self, l: Tensor, ab: Tensor, target_rgb: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """The generator's weighted terms and total (``g_loss``), and the prediction's sRGB."""
        fake_ab = self(l).float()
        fake_rgb = lab_to_rgb(torch.cat([l, fake_ab], dim=1))
        terms: dict[str, Tensor] = {}
        if self.lambdas["l1"] > 0:
            terms["l1"] = F.l1_loss(fake_ab, ab)
        if self.perceptual is not None:
            terms["perceptual"] = self.perceptual(fake_rgb, target_rgb)
        if self.lambdas["adv"] > 0:
            terms["adv"] = self.adversarial.generator_loss(self.discriminator, fake_rgb)
        if self.lambdas["colorfulness"] > 0:
            terms["colorfulness"] = colorfulness_loss(fake_rgb)
        if not terms:
            raise ConfigError("every generator loss weight is 0 (model.lambda_l1, lambda_perceptual, ...)")
        losses = {f"g_{name}": value for name, value in terms.items()}
        losses["g_loss"] = sum(self.lambdas[name] * value for name, value in terms.items())
        return losses, fake_rgb

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        l, ab = batch["l"], batch["ab"]
        target_rgb = lab_to_rgb(torch.cat([l, ab], dim=1))
        if self.color_enhance != 1.0:
            target_rgb = enhance_saturation(target_rgb, self.color_enhance)

        self.toggle_optimizer(opt_g)  # D's parameters get no gradient from the generator's step
        losses, fake_rgb = self.generator_losses(l, ab, target_rgb)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(losses["g_loss"])
        opt_g.step()
        self.untoggle_optimizer(opt_g)

        if self.lambdas["adv"] > 0:
            self.toggle_optimizer(opt_d)
            losses |= self.adversarial.discriminator_loss(self.discriminator, target_rgb, fake_rgb.detach())
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(losses["d_loss"])
            opt_d.step()
            self.untoggle_optimizer(opt_d)

        scheduler_g, scheduler_d = self.lr_schedulers()  # per batch: the milestones count iterations
        scheduler_g.step()
        if self.lambdas["adv"] > 0:  # the discriminator's rate follows its own steps
            scheduler_d.step()
        self.log_dict(
            {f"train/{name}": value.detach() for name, value in losses.items()},
            on_step=True,
            on_epoch=True,
            batch_size=l.shape[0],
        )

    def optimizer_targets(self) -> list[tuple[OptimizerFactory | None, list[nn.Parameter]]]:
        # the generator's first: training_step unpacks them in this order
        return [
            (self.optimizer_factory, list(self.net.parameters())),
            (self.d_optimizer_factory, list(self.discriminator.parameters())),
        ]

    def on_fit_start(self) -> None:
        if self.perceptual_missing:
            log.warning(
                "perceptual loss off: model.perceptual.weights is not set (torchvision's ImageNet "
                "vgg16_bn-6c64b313.pth); training with the other terms"
            )
