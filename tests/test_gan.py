"""The GAN family (pix2pix, CWGAN): its settings, critic and generator steps, and proof that it trains adversarially.

Its networks are tested in test_networks.py, the gradient penalty in test_losses.py."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf
from torch import nn

from colorization.errors import ConfigError
from colorization.inference.direct import DirectColorizer
from colorization.inference.loading import load_colorizer
from colorization.jobs.train import train
from colorization.modules import GANColorizer
from colorization.modules.losses import critic_scores
from colorization.networks import PatchDiscriminator, UNetGenerator
from tests.helpers.configs import CONF_DIR, compose_config
from tests.helpers.marks import with_slow
from tests.helpers.trainers import cpu_trainer

SIZE = 32  # test images: the smallest the narrow U-Net (num_downs=5) and the 3-layer PatchGAN take


def loss_preset(gan_loss: str) -> dict:
    """The settings of conf/model/gan_loss/<gan_loss>.yaml, instantiated (the loss module, the optimizer partial)."""
    return instantiate(OmegaConf.load(CONF_DIR / "model" / "gan_loss" / f"{gan_loss}.yaml"), _convert_="all")


def tiny_gan(preset: str = "wgangp", **kwargs) -> GANColorizer:
    """A GANColorizer with narrow networks (ngf = ndf = 8) for 32-px tests, with a gan_loss `preset`."""
    return GANColorizer(
        generator=partial(UNetGenerator, num_downs=5, ngf=8),
        discriminator=partial(PatchDiscriminator, ndf=8),
        **(loss_preset(preset) | kwargs),
    )


def adam_settings(model: GANColorizer) -> list[tuple[float, tuple[float, float]]]:
    """(lr, betas) of the generator's and the discriminator's optimizer, as training builds them."""
    optimizers = [factory(params=params) for factory, params in model.optimizer_targets()]
    return [(opt.defaults["lr"], tuple(opt.defaults["betas"])) for opt in optimizers]


def random_batches(count: int, batch: int = 2, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """`count` batches of random (L, ab) images, as the datamodule yields them."""
    generator = torch.Generator().manual_seed(seed)
    return [
        {
            "l": torch.rand(batch, 1, SIZE, SIZE, generator=generator) * 100,
            "ab": (torch.rand(batch, 2, SIZE, SIZE, generator=generator) - 0.5) * 100,
            "index": torch.arange(batch),
        }
        for _ in range(count)
    ]


class StepRecorder(L.Callback):
    """Records every real optimizer step in order: 'G' (generator) or 'D' (critic), plus the learning rates."""

    def __init__(self) -> None:
        self.steps: list[str] = []
        self.lrs: list[tuple[float, float]] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        opt_g, opt_d = trainer.optimizers
        opt_g.register_step_post_hook(lambda *_: self.steps.append("G"))
        opt_d.register_step_post_hook(lambda *_: self.steps.append("D"))

    def on_train_batch_start(self, trainer: L.Trainer, *args) -> None:
        self.lrs.append(tuple(opt.param_groups[0]["lr"] for opt in trainer.optimizers))


# ---- settings -------------------------------------------------------------------------------


def test_crop_size_the_unet_cannot_divide_stops_the_run_before_training(train_config, tmp_path):
    cfg = train_config(
        "model=pix2pix", "model.generator.num_downs=6", "++model.generator.ngf=8", "++model.discriminator.ndf=8"
    )
    with pytest.raises(
        ConfigError,
        match=r"data.crop_size=32 does not fit the generator: model.generator.num_downs=6 needs a multiple of 64",
    ):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_crop_size_below_the_critics_minimum_stops_the_run_before_training(train_config, tmp_path):
    cfg = train_config("model=cwgan", "++model.generator.ngf=8", "++model.discriminator.n_layers=4")
    with pytest.raises(
        ConfigError,
        match=r"data.crop_size=32 does not fit the discriminator: model.discriminator.n_layers=4 needs >= 48",
    ):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_gan_loss_presets_are_config_options():
    with pytest.raises(Exception, match=r"hinge"):  # Hydra lists the options of model/gan_loss
        compose_config("train", ["model=pix2pix", "model/gan_loss=hinge"])
    cfg = compose_config("train", ["model=pix2pix", "model/gan_loss=lsgan"])
    assert cfg.model.gan_loss._target_ == "colorization.modules.losses.LSGANLoss"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gan_loss": "hinge"}, r"model.gan_loss='hinge' is not a colorization.modules.losses.GANLoss"),
        ({"critic_norm": "batch"}, r"model.critic_norm='batch' breaks the per-sample gradient penalty"),
        ({"n_critic": 0}, r"model.n_critic=0 must be a positive integer"),
        ({"optimizer": partial(torch.optim.Adam, betas=[0.5])}, r"model.optimizer.betas=\[0.5\] must be two numbers"),
    ],
)
def test_gan_rejects_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        tiny_gan("wgangp", **kwargs)


@pytest.mark.parametrize("data", ["sample", "kaggle"])
def test_default_pix2pix_depth_fits_the_default_crops(data):
    cfg = compose_config("train", ["model=pix2pix", f"data={data}", "data.root=/unused"])
    for size in (cfg.data.crop_size, cfg.data.eval_crop_size or cfg.data.crop_size):
        assert size % 2**cfg.model.generator.num_downs == 0


def test_settings_follow_the_gan_loss_preset():
    vanilla, wgangp = tiny_gan("vanilla"), tiny_gan("wgangp")
    assert adam_settings(vanilla) == [(2e-4, (0.5, 0.999))] * 2 and vanilla.n_critic == 1
    assert adam_settings(wgangp) == [(1e-4, (0.0, 0.9))] * 2 and wgangp.n_critic == 5
    assert any(isinstance(m, nn.BatchNorm2d) for m in vanilla.discriminator.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in wgangp.discriminator.modules())
    custom = tiny_gan("wgangp", optimizer=partial(torch.optim.Adam, lr=3e-4, betas=(0.0, 0.9)), n_critic=2)
    assert adam_settings(custom)[0][0] == 3e-4 and custom.n_critic == 2


# ---- critic and generator steps -------------------------------------------------------------


@pytest.mark.parametrize("gan_loss", with_slow(["wgangp", "vanilla", "lsgan"], ["wgangp"]))
def test_critic_steps_on_separable_batches_rank_real_above_fake(gan_loss):
    torch.manual_seed(0)
    model = tiny_gan(gan_loss)
    l_norm = torch.rand(8, 1, SIZE, SIZE) * 2 - 1
    real, fake = 0.5 * l_norm.expand(-1, 2, -1, -1), -0.5 * l_norm.expand(-1, 2, -1, -1)

    def scores() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            return critic_scores(model._judge(l_norm, real)), critic_scores(model._judge(l_norm, fake))

    before_real, before_fake = scores()
    assert before_real.min() < before_fake.max(), "the untrained critic must not separate them already"
    optimizer = model.optimizer_factory(params=model.discriminator.parameters())
    for _ in range(25):
        loss = model.critic_loss(l_norm, real, fake)["d_loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after_real, after_fake = scores()
    assert after_real.min() > after_fake.max(), "every real sample must score above every fake one"


@pytest.mark.parametrize("gan_loss", ["wgangp", "vanilla"])
def test_generator_gradients_depend_on_the_critic(gan_loss):
    torch.manual_seed(0)
    with_critic = tiny_gan(gan_loss, lambda_adv=1.0).eval()  # eval: no dropout noise between the passes
    l1_only = tiny_gan(gan_loss, lambda_adv=0.0).eval()
    l1_only.load_state_dict(with_critic.state_dict())
    batch = random_batches(1, batch=4)[0]
    l_norm = batch["l"] / 50 - 1
    real = with_critic.colorspace.encode(batch["l"], batch["ab"])

    def generator_grads(model: GANColorizer, key: str = "g_loss") -> list[torch.Tensor]:
        loss = model.generator_loss(l_norm, real, model.generator(l_norm))[key]
        return torch.autograd.grad(loss, list(model.generator.parameters()))

    adversarial, plain = generator_grads(with_critic), generator_grads(l1_only)
    assert any(not torch.allclose(a, b) for a, b in zip(adversarial, plain, strict=True))
    l1 = generator_grads(l1_only, "g_l1")
    for a, b in zip(plain, l1, strict=True):  # lambda_adv = 0 leaves exactly lambda_l1 * L1
        torch.testing.assert_close(a, 100.0 * b)


# ---- training loop --------------------------------------------------------------------------


@pytest.mark.parametrize(("gan_loss", "n_critic", "batches"), [("wgangp", 5, 12), ("vanilla", 1, 3), ("lsgan", 2, 4)])
def test_n_critic_steps_per_generator_step_and_global_step_counts_both(gan_loss, n_critic, batches, tmp_path):
    model = tiny_gan(gan_loss, n_critic=n_critic)
    recorder = StepRecorder()
    logger = CSVLogger(tmp_path, name="csv", version="")
    trainer = cpu_trainer(max_epochs=1, callbacks=[recorder], logger=logger, log_every_n_steps=1)
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(random_batches(batches), batch_size=None))
    generator_steps = batches // n_critic
    assert recorder.steps == (["D"] * n_critic + ["G"]) * generator_steps + ["D"] * (batches % n_critic)
    assert model.critic_steps == batches
    assert trainer.global_step == batches + generator_steps  # every optimizer.step() of both optimizers
    # ...while the loggers' step axis (and log_every_n_steps) counts training batches
    with open(Path(logger.log_dir) / "metrics.csv") as file:
        logged_steps = [int(row["step"]) for row in csv.DictReader(file) if row["train/d_loss_step"]]
    assert logged_steps == list(range(batches))


def test_max_steps_counts_critic_and_generator_steps():
    recorder = StepRecorder()
    trainer = cpu_trainer(max_steps=7, callbacks=[recorder])
    trainer.fit(tiny_gan("wgangp"), train_dataloaders=torch.utils.data.DataLoader(random_batches(20), batch_size=None))
    assert "".join(recorder.steps) == "DDDDDGD"
    assert trainer.global_step == 7


def test_learning_rates_stay_constant_then_decay_linearly():
    recorder = StepRecorder()
    model = tiny_gan("vanilla")
    trainer = cpu_trainer(max_epochs=4, callbacks=[recorder])
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(random_batches(1), batch_size=None))
    # 4 epochs: 2 constant, then the last 2 decay: 1, 1, 2/3, 1/3 of 2e-4, for both networks
    for lrs, factor in zip(recorder.lrs, (1, 1, 2 / 3, 1 / 3), strict=True):
        assert lrs == pytest.approx((2e-4 * factor, 2e-4 * factor))


def test_bf16_mixed_precision_trains_and_validates():
    model = tiny_gan("wgangp", n_critic=1)
    trainer = cpu_trainer(max_epochs=1, precision="bf16-mixed", limit_val_batches=None)
    loader = torch.utils.data.DataLoader(random_batches(2), batch_size=None)
    trainer.fit(model, train_dataloaders=loader, val_dataloaders=loader)
    metrics = trainer.callback_metrics
    for key in ("train/g_loss", "train/d_loss", "train/gp", "train/wasserstein", "val/cie76"):
        assert torch.isfinite(metrics[key]), key
    assert metrics["train/gp"].dtype == torch.float32


GAN_CONFIGS = {
    "pix2pix": ["model=pix2pix"],
    "pix2pix-wgangp": ["model=pix2pix", "model/gan_loss=wgangp"],
    "cwgan": ["model=cwgan"],
}


@pytest.mark.filterwarnings("ignore:The dirpath has changed")  # the resumed run writes to a new directory
@pytest.mark.parametrize("name", list(GAN_CONFIGS))
def test_every_gan_config_fits_writes_checkpoints_and_resumes(name, train_config, tmp_path: Path):
    narrow = ["++model.generator.ngf=8", "++model.discriminator.ndf=8"]
    first = tmp_path / "first"
    metrics = train(train_config(*GAN_CONFIGS[name], *narrow, run_dir=first))
    assert {"train/d_loss_epoch", "val/cie76", "test/cie76"} <= metrics.keys()
    last = first / "checkpoints" / "last.ckpt"
    assert last.is_file() and list((first / "checkpoints").glob("best_epoch*.ckpt"))
    checkpoint = torch.load(last, weights_only=False)
    assert len(checkpoint["optimizer_states"]) == 2 and len(checkpoint["lr_schedulers"]) == 2
    prefixes = {key.split(".")[0] for key in checkpoint["state_dict"]}
    assert {"generator", "discriminator"} <= prefixes
    batches = checkpoint["gan"]["critic_steps"]
    n_critic = checkpoint["hyper_parameters"]["n_critic"]
    assert checkpoint["global_step"] == batches + batches // n_critic

    second = tmp_path / "second"
    metrics = train(
        train_config(*GAN_CONFIGS[name], *narrow, f"ckpt_path={last}", "trainer.max_epochs=2", run_dir=second)
    )
    assert {"train/g_loss_epoch", "train/g_adv_epoch", "train/g_l1_epoch", "val/cie76"} <= metrics.keys()
    resumed = torch.load(second / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["epoch"] == 1
    assert resumed["gan"]["critic_steps"] == 2 * batches
    # the same count as one uninterrupted 2-epoch run: the n_critic phase carries over the resume
    assert resumed["global_step"] == 2 * batches + (2 * batches) // n_critic
    critic_adam = resumed["optimizer_states"][1]["state"][0]["step"]
    assert int(critic_adam) == 2 * batches, "the critic's Adam state must continue, not restart"
    colorizer = load_colorizer(second / "checkpoints" / "last.ckpt")
    assert isinstance(colorizer, DirectColorizer) and not colorizer.training
    assert colorizer.colorize(torch.full((1, 1, SIZE, SIZE), 50.0)).shape == (1, 3, SIZE, SIZE)
