"""Lightning callbacks of the project."""

from __future__ import annotations

import math
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import WandbLogger
from torch.utils.data import default_collate

from colorization.data.batches import to_lab_batch
from colorization.jobs.devices import now
from colorization.jobs.loggers import log_image
from colorization.jobs.sheets import labelled_sheet, save_image, to_uint8_rgb
from colorization.metrics.image import delta_e_cie76, gray_lab, mse_rgb

SAMPLE_SHEET_COLUMNS = ("gray input", "prediction", "ground truth")
SAMPLE_SHEET_CAPTION = " | ".join(SAMPLE_SHEET_COLUMNS)


class SampleSheet(L.Callback):
    """After each validation epoch, colorize fixed validation images and save a PNG sheet.

    Columns, named in a strip above them: gray input | prediction | ground truth; one row per
    image. The same images are used at every epoch (the first `num_samples` of the validation
    set), so sheets can be compared.
    The sheet also goes, as ``val/samples``, to every logger that shows images (W&B, TensorBoard).
    """

    def __init__(self, dirpath: str, num_samples: int = 8) -> None:
        self.dirpath = Path(dirpath)
        self.num_samples = num_samples
        self.last_path: Path | None = None

    def fixed_batch(self, trainer: L.Trainer, device: torch.device) -> dict[str, torch.Tensor] | None:
        """The first `num_samples` validation items as an ``l``/``ab`` batch on `device` (None without any)."""
        dataset = getattr(trainer.datamodule, "val_set", None)
        if dataset is None or len(dataset) == 0:
            return None
        # an image folder's dataset gives None for a file that became unreadable
        items = [item for i in range(min(self.num_samples, len(dataset))) if (item := dataset[i]) is not None]
        if not items:
            return None
        batch = default_collate(items)
        return to_lab_batch({key: value.to(device) for key, value in batch.items()})

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        batch = self.fixed_batch(trainer, pl_module.device)
        if batch is None:
            return
        l = batch["l"]
        with torch.no_grad():
            prediction = pl_module.colorize(l)
        truth = torch.cat([l, batch["ab"]], dim=1)
        sheet = labelled_sheet([gray_lab(l), prediction, truth], list(SAMPLE_SHEET_COLUMNS))
        self.last_path = save_image(sheet, self.dirpath / f"epoch_{trainer.current_epoch:03d}.png")
        log_image(trainer.loggers, "val/samples", sheet, step=trainer.global_step, caption=SAMPLE_SHEET_CAPTION)


class PerImageTestTable(L.Callback):
    """At test end, a W&B table with one row per test image: thumbnails and per-image metrics.

    Columns: index, gray, prediction, truth, ``mse`` (`colorization.metrics.image.mse_rgb`) and ``cie76``
    (mean of `colorization.metrics.image.delta_e_cie76` over the image). The first `max_rows` test images
    (with DDP: of rank 0's share) are colorized a second time at the end of their test batch, and
    only when a W&B logger is present, so without W&B the table costs nothing.
    """

    def __init__(self, max_rows: int = 64, key: str = "test/images") -> None:
        self.max_rows = max_rows
        self.key = key
        self.columns = ["index", "gray", "prediction", "truth", "mse", "cie76"]
        self.rows: list[list] = []

    def on_test_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        wandb_loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if not wandb_loggers or not trainer.is_global_zero or len(self.rows) >= self.max_rows:
            return
        import wandb

        take = self.max_rows - len(self.rows)
        l, ab = batch["l"][:take], batch["ab"][:take]
        with torch.no_grad():
            prediction = pl_module.colorize(l)
        truth = torch.cat([l, ab], dim=1)
        mse = mse_rgb(prediction, truth).tolist()
        cie76 = delta_e_cie76(prediction, truth).flatten(1).mean(1).tolist()
        pictures = [to_uint8_rgb(lab) for lab in (gray_lab(l), prediction, truth)]
        indices = batch["index"][:take].tolist() if "index" in batch else range(len(l))
        for i, index in enumerate(indices):
            self.rows.append([int(index), *(wandb.Image(p[i]) for p in pictures), mse[i], cie76[i]])

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.rows:
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_table(key=self.key, columns=self.columns, data=self.rows)
        self.rows = []


class Throughput(L.Callback):
    """Logs ``train/images_per_sec``: training images per second over each epoch, all devices together.

    Timed from the end of the first `warmup_batches` batches of an epoch (start-up, compilation)
    to the end of its last training batch, so data loading, forward, backward and optimizer step
    count, validation does not.
    """

    def __init__(self, warmup_batches: int = 1) -> None:
        self.warmup_batches = warmup_batches
        self._start: float | None = None
        self._end = 0.0
        self._images = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = now(pl_module.device) if self.warmup_batches == 0 else None
        self._images = 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        if batch_idx + 1 == self.warmup_batches:
            self._start = now(pl_module.device)
        elif self._start is not None:
            self._images += len(batch["l"])
            # synchronising every batch would slow training down; the last one is enough
            self._end = now(pl_module.device) if trainer.is_last_batch else time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._start is None or self._images == 0:
            return  # an epoch of warm-up batches only has nothing to time
        # every rank sees a shard of the same size (DistributedSampler), so the global rate is world_size x local
        rate = self._images * trainer.world_size / (self._end - self._start)
        # every rank estimates the same global rate from its own timing: sync_dist averages the estimates
        pl_module.log("train/images_per_sec", rate, on_epoch=True, sync_dist=True)


class TimedProgressBar(RichProgressBar):
    """Lightning's (rich) progress bar showing the training losses, read at most every `min_interval_s` seconds.

    Reading a value on the host makes the CPU wait for a GPU to finish the step before it can queue
    the next one. Lightning reads every ``prog_bar=True`` value after every batch, so the modules log
    none; this bar reads the latest ``train/*loss`` values itself, at most every `min_interval_s`:
    at every batch of a slow CPU run, a couple of times a second in a fast GPU run. `build_trainer`
    uses it whenever the trainer shows a progress bar and none is configured.
    """

    def __init__(self, min_interval_s: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.min_interval_s = min_interval_s
        self._last_read = -math.inf
        self._losses: dict[str, str] = {}

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, int | str | float | dict]:
        clock = time.monotonic()
        if clock - self._last_read >= self.min_interval_s:
            self._last_read = clock
            self._losses = {
                key.removeprefix("train/"): f"{float(value):.4g}"
                for key, value in trainer.callback_metrics.items()
                if key.startswith("train/") and key.endswith("loss") and torch.as_tensor(value).numel() == 1
            }
        return {**super().get_metrics(trainer, pl_module), **self._losses}
