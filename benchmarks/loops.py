"""The training loops a benchmark times a training module with: plain PyTorch, and Lightning with nothing configured.

`plain_step` does what Lightning does for one batch of a family (forward, loss, backward,
optimizer step; for the GANs the critic step and then the generator step with the critic frozen),
without the Trainer: no hooks, no logging, no loaders. Loss code is the family's own
(`training_step` for single-optimizer families; `critic_loss`/`generator_loss` for GANs), so any
difference to the Trainer is the framework's. `lightning_rate` fits a module with `bare_trainer`
on batches in memory: Lightning's own loop, the way to time a family `plain_step` does not cover
(DDColor's manual optimization).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from colorization.color.spaces import normalize_l
from colorization.jobs.callbacks import Throughput
from colorization.modules.base import ColorizerModule
from colorization.modules.gan import GANColorizer

Batch = dict[str, Tensor]


def optimizers_of(module: ColorizerModule) -> list[torch.optim.Optimizer]:
    """The optimizers `configure_optimizers` makes (its schedulers need a Trainer; a few steps need none)."""
    return [factory(params=params) for factory, params in module.optimizer_targets()]


def plain_step(module: ColorizerModule, precision: str = "fp32") -> Callable[[Batch], None]:
    """One training step of `module` on a float ``l``/``ab`` batch, in plain PyTorch (`precision` fp32 or bf16)."""
    optimizers = optimizers_of(module)
    device = next(module.parameters()).device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    module.train()
    # training_step's self.log() has no trainer to log to here: it warns once and returns
    warnings.filterwarnings("ignore", message=r".*self\.log\(\).*")
    if isinstance(module, GANColorizer):
        return _gan_step(module, optimizers, autocast)
    (optimizer,) = optimizers
    counter = iter(range(1 << 62))

    def step(batch: Batch) -> None:
        with autocast:
            loss = module.training_step(batch, next(counter))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _gan_step(
    module: GANColorizer, optimizers: list[torch.optim.Optimizer], autocast: torch.autocast
) -> Callable[[Batch], None]:
    opt_g, opt_d = optimizers
    state = {"critic_steps": 0}

    def step(batch: Batch) -> None:
        l = batch["l"]
        with autocast:
            l_norm, real = normalize_l(l), module.colorspace.encode(l, batch["ab"])
            generator_turn = (state["critic_steps"] + 1) % module.n_critic == 0
            with torch.set_grad_enabled(generator_turn):
                fake = module.generator(l_norm)
            d_loss = module.critic_loss(l_norm, real, fake)["d_loss"]
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        state["critic_steps"] += 1
        if generator_turn:
            module.discriminator.requires_grad_(False)  # what Lightning's toggle_optimizer does
            with autocast:
                g_loss = module.generator_loss(l_norm, real, fake)["g_loss"]
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            module.discriminator.requires_grad_(True)

    return step


def bare_trainer(callbacks: list[L.Callback], accelerator: str = "cpu", precision: str = "32-true") -> L.Trainer:
    """A Lightning Trainer with nothing of the project's configured (no logger, checkpoint, progress bar,
    validation): one epoch over whatever loader `fit` gets; `callbacks` time it."""
    return L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )


def fit_rate(trainer: L.Trainer, module: ColorizerModule, **fit_kwargs) -> float:
    """Training images/s of one `fit`, read from the trainer's `Throughput` callback (`train/images_per_sec`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few batches, no validation: Lightning says so at length
        trainer.fit(module, **fit_kwargs)
    return float(trainer.callback_metrics["train/images_per_sec"])


def lightning_rate(module: ColorizerModule, batches: list[Batch], accelerator: str = "cpu") -> float:
    """Training images/s of Lightning's own loop over `batches` (in memory), the first batch a warm-up.

    On ``gpu`` it trains in bf16-mixed, as ``trainer=gpu`` does.
    """
    precision = "bf16-mixed" if accelerator == "gpu" else "32-true"
    trainer = bare_trainer([Throughput(warmup_batches=1)], accelerator, precision)
    return fit_rate(trainer, module, train_dataloaders=DataLoader(batches, batch_size=None))
