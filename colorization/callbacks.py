"""Lightning callbacks of the project."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from colorization.visualize import gray_lab, sample_sheet, save_png


class SampleSheet(L.Callback):
    """After each validation epoch, colorize fixed validation images and save a PNG sheet.

    Columns: gray input | prediction | ground truth; one row per image. The same images are used
    at every epoch (the first `num_samples` of the validation set), so sheets can be compared.
    """

    def __init__(self, dirpath: str, num_samples: int = 8) -> None:
        self.dirpath = Path(dirpath)
        self.num_samples = num_samples
        self.last_path: Path | None = None

    def fixed_batch(self, trainer: L.Trainer) -> dict[str, torch.Tensor] | None:
        """The first `num_samples` validation items stacked into a batch (None without any)."""
        dataset = getattr(trainer.datamodule, "val_set", None)
        if dataset is None or len(dataset) == 0:
            return None
        items = [dataset[i] for i in range(min(self.num_samples, len(dataset)))]
        return {key: torch.stack([torch.as_tensor(item[key]) for item in items]) for key in ("l", "ab")}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        batch = self.fixed_batch(trainer)
        if batch is None:
            return
        l = batch["l"].to(pl_module.device)
        with torch.no_grad():
            prediction = pl_module.colorize(l)
        truth = torch.cat([l, batch["ab"].to(pl_module.device)], dim=1)
        sheet = sample_sheet([gray_lab(l), prediction, truth])
        self.last_path = save_png(sheet, self.dirpath / f"epoch_{trainer.current_epoch:03d}.png")
