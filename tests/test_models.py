"""Every model config (conf/model/*.yaml) builds, colorizes and trains one step."""

from pathlib import Path

import pytest
import torch

from colorization.modules.build import build_module
from tests.helpers.configs import MODEL_CONFIGS, SMOKE_SIZE, compose_config
from tests.helpers.marks import with_slow

DEFAULT_SMOKE_SIZE = 32


def smoke_batch(size: int, batch: int = 2) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    l = torch.rand(batch, 1, size, size, generator=generator) * 100
    ab = (torch.rand(batch, 2, size, size, generator=generator) - 0.5) * 100
    return {"l": l, "ab": ab, "index": torch.arange(batch)}


@pytest.mark.parametrize("name", with_slow(MODEL_CONFIGS, ["ddcolor"]))
def test_every_model_config_colorizes_and_trains_a_step(name, tmp_path: Path):
    cfg = compose_config("train", [f"model={name}", f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path}"])
    model = build_module(cfg.model, cfg.colorspace.name)
    size = SMOKE_SIZE.get(name, DEFAULT_SMOKE_SIZE)
    batch = smoke_batch(size)
    lab = model.colorize(batch["l"])
    assert lab.shape == (2, 3, size, size)
    assert torch.equal(lab[:, :1], batch["l"]), "the prediction must carry the input L"
    full = model.colorize_full(torch.rand(1, 1, size + 7, size + 3) * 100)
    assert full.shape == (1, 3, size + 7, size + 3)
    import lightning as L

    trainer = L.Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
    )
    loader = torch.utils.data.DataLoader([{k: v[i] for k, v in batch.items()} for i in range(2)], batch_size=2)
    before = [p.detach().clone() for p in model.parameters()]
    trainer.fit(model, train_dataloaders=loader)
    changed = any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))
    assert changed, "one training step must update the weights"
