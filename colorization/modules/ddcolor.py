"""DDColor as a LightningModule: the authors' inference, their training recipe, and their release files.

Inference (`colorize`, `colorize_full`) as the authors run it: the gray sRGB of L (a = b = 0) is
the input, ImageNet normalisation happens inside the network, and the predicted a*, b* (Lab units)
are joined to the input L. `colorize_full` runs the network at `input_size` x `input_size` (512,
the authors' inference default; the models were trained at 256), upsamples ab to the photo's size
and keeps its full-resolution L. The authors upsample ab with `F.interpolate`'s default, nearest;
this project upsamples bilinearly (as for every family), which avoids blocky colour edges on photos
larger than `input_size` and changes nothing else. They resize the RGB photo (OpenCV bilinear) and
take its L; here L itself is resized with antialiasing. Both differ from their output only near
edges.

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

from colorization.color.spaces import gray_rgb, lab_to_rgb
from colorization.errors import ConfigError, DataError, check_choice
from colorization.files.downloads import ReleaseFile, register_release_file
from colorization.files.weights import load_strict, read_state_dict
from colorization.inference.releases import ReleaseFormat, register_release
from colorization.instantiate import instantiate
from colorization.modules.base import ColorizerModule, OptimizerFactory, SchedulerFactory, check_optimizer
from colorization.modules.losses import (
    PERCEPTUAL_LAYER_WEIGHTS,
    GANLoss,
    PerceptualLoss,
    VanillaGANLoss,
    colorfulness_loss,
)
from colorization.networks.ddcolor import SIZES, STRIDE, DDColorColorizer
from colorization.networks.unet_discriminator import UNetDiscriminator

log = logging.getLogger(__name__)

INFERENCE_SIZE = 512
"""The authors' inference resolution (their models were trained on 256-px crops)."""
LUMA = (0.2989, 0.587, 0.114)
"""ITU-R 601 luma weights of the gray image the saturation boost blends away from."""
NORMALISATION_BUFFERS = ("mean", "std")
"""The network's ImageNet statistics: constants, so a release file may leave them out."""
WIDTH_OF_SIZE = {"tiny": 96, "large": 192}
"""Channels of the ConvNeXt stem per size: how a state dict tells its size."""
NETWORK_PREFIX = "net."
"""The network's entries in a checkpoint's state dict (``weights`` may name one of our checkpoints)."""
STEM_KEY = "encoder.arch.downsample_layers.0.0.weight"
QUERY_KEY = "decoder.color_decoder.query_feat.weight"
GENERATOR_ADAMW = partial(torch.optim.AdamW, lr=1e-4, weight_decay=0.01, betas=(0.9, 0.99))
DISCRIMINATOR_ADAM = partial(torch.optim.Adam, lr=1e-4, betas=(0.9, 0.99))
HALVINGS = partial(torch.optim.lr_scheduler.MultiStepLR, milestones=[80_000 + 40_000 * i for i in range(8)], gamma=0.5)
"""The authors' optimizers and schedule (400k iterations, halving every 40k from 80k)."""


def enhance_saturation(rgb: Tensor, factor: float) -> Tensor:
    """(B, 3, H, W) sRGB in [0, 1] pushed away from its gray by `factor` (1 = unchanged), clipped to [0, 1]."""
    gray = sum(w * c for w, c in zip(LUMA, rgb.unbind(1), strict=True)).unsqueeze(1)
    return (gray + factor * (rgb - gray)).clamp(0.0, 1.0)


def release_size(state_dict: Mapping[str, Any]) -> str | None:
    """'tiny' or 'large' if `state_dict` is a DDColor network's (release layout, maybe under "params"), else None."""
    if isinstance(state_dict.get("params"), Mapping):
        state_dict = state_dict["params"]
    if QUERY_KEY not in state_dict or STEM_KEY not in state_dict:
        return None
    width = state_dict[STEM_KEY].shape[0]
    return next((size for size, w in WIDTH_OF_SIZE.items() if w == width), None)


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
        super().__init__(colorspace)
        if self.colorspace.name != "lab":
            raise ConfigError(f"colorspace.name={self.colorspace.name!r}: DDColor predicts ab; use lab")
        check_choice("model.size", size, SIZES)
        if not (isinstance(input_size, int) and input_size >= STRIDE and input_size % STRIDE == 0):
            raise ConfigError(f"model.input_size={input_size!r}: expected a multiple of {STRIDE}")
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
        self.native_size = input_size
        self.size_multiple = STRIDE
        self.color_enhance = float(color_enhance)
        self.automatic_optimization = False

        self.net = DDColorColorizer(size, num_queries, num_layers)
        if weights:
            self.load_network(read_state_dict(weights, NETWORK_PREFIX), weights)
        if encoder_weights:
            self._load_encoder(encoder_weights)
        self.discriminator = (discriminator or UNetDiscriminator)()
        self.perceptual_missing = False
        self.perceptual = self._perceptual_loss(dict(perceptual or {}))

    @property
    def display_name(self) -> str:
        return f"DDColor-{self.net.size[0].upper()}"

    @classmethod
    def checkpoint_config(cls, model_config: dict[str, Any], path: Path) -> dict[str, Any]:
        """Our checkpoint holds the trained network: rebuilding it reads none of the start-up files."""
        config = {**model_config, "weights": None, "encoder_weights": None}
        if model_config.get("perceptual"):
            config["perceptual"] = {**model_config["perceptual"], "weights": None}
        return config

    # ---- weights -------------------------------------------------------------------------

    def load_network(self, state_dict: Mapping[str, Tensor], source: str | Path) -> None:
        """Load a DDColor state dict (release layout) strictly into the network; `source` names it in errors."""
        found, size = release_size(state_dict), self.net.size
        if found is not None and found != size:
            raise ConfigError(f"{source}: a DDColor-{found} file, but model.size={size!r}; set model.size={found}")
        load_strict(self.net, dict(state_dict), source, optional=lambda key: key in NORMALISATION_BUFFERS)

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

    def forward(self, l: Tensor) -> Tensor:
        """(B, 1, H, W) L in [0, 100], sides multiples of 32 -> (B, 2, H, W) predicted ab in Lab units."""
        return self.net(gray_rgb(l))

    def colorize(self, l: Tensor) -> Tensor:
        return torch.cat([l, self(l).float()], dim=1)

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


def build_release(size: str, path: Path) -> DDColorModule:
    """The authors' release file at `path` (DDColor-`size`), run as their inference runs it (eval mode)."""
    config = {"_target_": f"{__name__}.DDColorModule", "size": size}
    model = instantiate(config)
    model.load_network(read_state_dict(path), path)
    model.model_config = {**config, "weights": str(path)}  # what a checkpoint of it stores to rebuild it
    return model.eval()


for _size in SIZES:
    register_release(
        ReleaseFormat(
            name=f"ddcolor_{_size}",
            identify=partial(lambda size, state_dict: release_size(state_dict) == size, _size),
            build=partial(build_release, _size),
        )
    )


HUB_FILE = "https://huggingface.co/piddnad/{repo}/resolve/main/pytorch_model.pt"
RELEASE_NAMES = {
    "ddcolor": "ddcolor_modelscope",  # the authors' default for photos outside ImageNet
    "ddcolor_modelscope": "ddcolor_modelscope",
    "ddcolor_paper": "ddcolor_paper",
    "ddcolor_artistic": "ddcolor_artistic",
    "ddcolor_tiny": "ddcolor_paper_tiny",
    "ddcolor_paper_tiny": "ddcolor_paper_tiny",
}
"""Release names -> the authors' model-hub repository (their MODEL_ZOO.md lists the four models)."""
for _name, _repo in RELEASE_NAMES.items():
    # the hub's file names carry no digest and no size is published with them, so neither is
    # checked after a download (an empty prefix); strict loading then checks every key and shape
    register_release_file(
        ReleaseFile(_name, HUB_FILE.format(repo=_repo), f"{_repo}.pt", "", description=f"DDColor {_repo}")
    )
