"""Evaluation protocols: which images of a folder, at which size, as the papers prepare them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import colorization.data.protocols as protocols
from colorization.data.folder import ImageFolderDataModule
from colorization.errors import ConfigError, DataError
from tests.helpers.configs import compose_config


def write_striped(folder: Path, names: list[str], size=(120, 60)) -> Path:
    """Images whose left quarter is red, right quarter blue and middle green (width x height `size`)."""
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 4, 0] = 255
    pixels[:, width // 4 : 3 * width // 4, 1] = 255
    pixels[:, 3 * width // 4 :, 2] = 255
    for name in names:
        Image.fromarray(pixels).save(folder / name)
    return folder


def protocol_batch(root: Path, name: str) -> dict[str, torch.Tensor]:
    cfg = compose_config("evaluate", [f"data={name}", f"data.root={root}", "data.num_workers=0"])
    from colorization.instantiate import instantiate

    datamodule: ImageFolderDataModule = instantiate(cfg.data)
    return next(iter(datamodule.eval_dataloader("test", pin_memory=False)))


def test_imagenet_val5k_takes_the_first_5000_by_name_resized_and_centre_cropped_to_256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    names = [f"ILSVRC2012_val_{k:08d}.JPEG" for k in (3, 1, 4, 2)]
    root = write_striped(tmp_path / "val", names)
    # the real protocol needs 5,000 images and says so
    with pytest.raises(DataError, match="first 5000 images by name but only 4 are readable"):
        protocol_batch(root, "imagenet_val5k")
    # the same protocol taking the first 3, to check the selection and geometry on a small folder
    small = dataclasses.replace(protocols.PROTOCOLS["imagenet_val5k"], select=protocols.first_by_name(3))
    monkeypatch.setitem(protocols.PROTOCOLS, "imagenet_val5k", small)
    batch = protocol_batch(root, "imagenet_val5k")
    assert batch["rgb_uint8"].shape == (3, 3, 256, 256)
    # 120x60 -> 512x256, centre 256 = the middle half of the width: all green, no red or blue
    # (the outermost columns blend with the neighbouring stripes under bilinear upscaling and JPEG)
    rgb = batch["rgb_uint8"][0, :, :, 8:-8].float()
    assert rgb[1].min() > 200 and rgb[0].max() < 60 and rgb[2].max() < 60


def test_resize256_resizes_every_image_whole_to_256(tmp_path: Path):
    root = write_striped(tmp_path / "coco", ["a.jpg", "b.png", "c.png"], size=(90, 40))
    batch = protocol_batch(root, "resize256")
    assert batch["rgb_uint8"].shape == (3, 3, 256, 256)
    rgb = batch["rgb_uint8"][1].float()  # b.png, lossless
    # the aspect ratio is not kept: red still fills the left quarter, blue the right quarter
    assert rgb[0, :, :60].min() > 200 and rgb[2, :, -60:].min() > 200


def test_protocols_are_for_evaluation_only(tmp_path: Path):
    root = write_striped(tmp_path / "coco", ["a.png"])
    dm = ImageFolderDataModule(root=str(root), protocol="resize256")
    with pytest.raises(ConfigError, match="evaluation protocol"):
        dm.setup("fit")
    with pytest.raises(ConfigError, match="contradicts data.protocol='resize256'"):
        dm.eval_dataloader("test", crop_size=128)


def test_every_protocol_has_a_config_and_documents_its_source():
    for name, protocol in protocols.PROTOCOLS.items():
        cfg = compose_config("evaluate", [f"data={name}", "data.root=/somewhere"])
        assert cfg.data.protocol == name
        assert str(protocol.size) in protocol.description and len(protocol.source) > 40


def test_the_results_table_states_the_protocol(tmp_path: Path):
    from colorization.jobs.evaluate import evaluate

    root = write_striped(tmp_path / "ade", ["a.png", "b.png"])
    out = tmp_path / "eval"
    overrides = [f"paths.root_dir={tmp_path}", f"paths.output_dir={out}", "device=cpu", "~logger"]
    rows = evaluate(
        compose_config("evaluate", [*overrides, "data=resize256", f"data.root={root}", "data.num_workers=0"])
    )
    assert rows[0]["image_size"] == "256x256" and rows[0]["protocol"].startswith("resize256: plain resize to 256x256")
    markdown = (out / "results.md").read_text()
    assert "2 images (256x256 px, protocol resize256: plain resize to 256x256; every image resized" in markdown
