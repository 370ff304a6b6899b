"""Training throughput of the GAN configs (pix2pix, pix2pix + WGAN-GP, cwgan), through Lightning.

Runs the real `GANColorizer.training_step` (both optimizers, toggling, gradient penalty) on
random in-memory batches, so data loading is not measured. On a CUDA GPU it uses ``trainer=gpu``'s
settings (one device, bf16-mixed), otherwise the CPU in float32. ``python -m benchmarks gan``.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir

from benchmarks.loops import bare_trainer
from benchmarks.timing import interleave, table
from colorization.jobs.devices import now
from colorization.modules.build import build_module

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
CONFIGS = {
    "pix2pix": ["model=pix2pix"],
    "pix2pix, gan_loss=wgangp": ["model=pix2pix", "model/gan_loss=wgangp"],
    "cwgan": ["model=cwgan"],
}
WARMUP_BATCHES = 2  # allocators, cuDNN autotuning, first-call overheads


class _BatchTimer(L.Callback):
    """Wall time from the start of batch `WARMUP_BATCHES` to the end of the last batch."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.end: float | None = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if batch_idx == WARMUP_BATCHES:
            self.start = now(pl_module.device)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        self.end = now(pl_module.device)


def images_per_second(overrides: list[str], batch: int, size: int, batches: int) -> tuple[float, str]:
    """Training images per second of one model config; also the device it ran on."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    model = build_module(cfg.model, cfg.colorspace.name)
    cuda = torch.cuda.is_available()
    timer = _BatchTimer()
    trainer = bare_trainer([timer], "gpu" if cuda else "cpu", "bf16-mixed" if cuda else "32-true")
    data = [
        {"l": torch.rand(batch, 1, size, size) * 100, "ab": (torch.rand(batch, 2, size, size) - 0.5) * 60}
        for _ in range(batches)
    ]
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None))
    device = torch.cuda.get_device_name() + ", bf16-mixed" if cuda else f"CPU, {torch.get_num_threads()} threads"
    return batch * (batches - WARMUP_BATCHES) / (timer.end - timer.start), device


def run(batch: int | None = None, size: int | None = None, batches: int | None = None) -> str:
    """A markdown table of training throughput. On a GPU: batch 16 at 128 px (``data=sample``), 40 timed
    batches; on a CPU batch 4 at 64 px and 5 timed batches, so that rounds can repeat."""
    cuda = torch.cuda.is_available()
    batch, size = batch or (16 if cuda else 4), size or (128 if cuda else 64)
    # timed batches: a multiple of 5, so WGAN-GP's 1-in-5 generator steps are counted in proportion
    batches = batches or WARMUP_BATCHES + (40 if cuda else 5)
    device = torch.cuda.get_device_name() + ", bf16-mixed" if cuda else f"CPU, {torch.get_num_threads()} threads"
    calls = {
        name: (lambda o=overrides: images_per_second(o, batch, size, batches)[0]) for name, overrides in CONFIGS.items()
    }
    measured = interleave(calls, "gan", warmup=0, min_rounds=2 if not cuda else 3, budget_s=30, max_rounds=6)
    rows = [
        [name, measured.rates[name].cell("{:.1f}"), measured.ratios[name].cell(suffix="x")] for name in measured.names
    ]
    return (
        f"## GAN training step, batch {batch}, {size}x{size}, {device}\n\n"
        f"`GANColorizer.training_step` through Lightning on random in-memory batches ({batches - WARMUP_BATCHES} timed "
        "after the warm-up); median (min-max) over interleaved rounds.\n\n"
        + table(["config", "img/s", "vs pix2pix"], rows)
    )
