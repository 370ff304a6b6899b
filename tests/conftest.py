"""Shared fixtures: tiny Kaggle-layout arrays, a tiny built-in photo set, composed configs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"


def write_kaggle_layout(root: Path, counts: list[int], size: int = 24, *, rng_seed: int = 0) -> Path:
    """Kaggle-layout arrays whose image i has L_cv = i everywhere and a_cv = i, b_cv = 255 - i,
    plus a little noise on the rest of the picture so crops differ. Pairing is checkable from values."""
    rng = np.random.default_rng(rng_seed)
    total = sum(counts)
    l = np.empty((total, size, size), np.uint8)
    ab = np.empty((total, size, size, 2), np.uint8)
    for i in range(total):
        l[i] = i % 256
        ab[i, ..., 0] = i % 256
        ab[i, ..., 1] = 255 - i % 256
    l[:, 1:, 1:] = np.maximum(l[:, 1:, 1:], rng.integers(0, 3, l[:, 1:, 1:].shape, dtype=np.uint8))
    (root / "l").mkdir(parents=True, exist_ok=True)
    (root / "ab" / "ab").mkdir(parents=True, exist_ok=True)
    np.save(root / "l" / "gray_scale.npy", l)
    start = 0
    for k, count in enumerate(counts, start=1):
        np.save(root / "ab" / "ab" / f"ab{k}.npy", ab[start : start + count])
        start += count
    return root


@pytest.fixture
def kaggle_root(tmp_path: Path) -> Path:
    """Arrays split over three ab files of 6, 5 and 4 images (like Kaggle's 10k/10k/5k)."""
    return write_kaggle_layout(tmp_path / "kaggle", [6, 5, 4])


# small enough to train in seconds, big enough for every model's smallest input
TINY_SAMPLE = {
    "data.image_size": 48,
    "data.train_crops_per_photo": 6,
    "data.test_crops_per_photo": 4,
    "data.crop_size": 32,
    "data.batch_size": 8,
    "data.val_fraction": 0.2,
}


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in photo set at 48 px, written once per test session."""
    from colorization.data.sample import write_sample_dataset

    root = tmp_path_factory.mktemp("data") / "sample"
    write_sample_dataset(
        root,
        TINY_SAMPLE["data.image_size"],
        TINY_SAMPLE["data.train_crops_per_photo"],
        TINY_SAMPLE["data.test_crops_per_photo"],
        seed=0,
    )
    return root


def tiny_overrides(sample_root: Path | None, run_dir: Path) -> list[str]:
    """Overrides that make `conf/train.yaml` train for seconds on the tiny photo set
    (`sample_root=None`: leave the data group alone, e.g. for ``data=kaggle``)."""
    data = (
        [f"paths.data_dir={sample_root.parent}", *(f"{k}={v}" for k, v in TINY_SAMPLE.items())] if sample_root else []
    )
    return [
        f"paths.root_dir={run_dir.parent}",
        f"paths.output_dir={run_dir}",
        *data,
        "trainer=cpu",
        "trainer.max_epochs=1",
        # the default adds W&B; tests that need it ask for it (starting wandb costs seconds per run)
        "logger=csv",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]


def compose_config(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose a real config from conf/ with Hydra's compose API."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


@pytest.fixture
def train_config(sample_root: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """compose `train.yaml` for the tiny photo set: ``train_config("model=model2", ...)``."""

    def make(*overrides: str, run_dir: Path | None = None) -> DictConfig:
        run = run_dir or tmp_path / "run"
        return compose_config("train", tiny_overrides(sample_root, run) + list(overrides))

    return make


def write_photo_folder(root: Path, count: int = 24, size: tuple[int, int] = (64, 48)) -> Path:
    """A folder of small photo files as users have them: JPEGs and PNGs in nested folders, cut from
    scikit-image's colour photos (width x height `size`), plus one gray photo saved as RGB
    (``gray.jpg``) and one corrupt file (``broken.jpg``)."""
    from PIL import Image

    from colorization.files.builtin_photos import load_photo

    rng = np.random.default_rng(0)
    photos = [load_photo(name) for name in ("astronaut", "coffee", "motorcycle_left", "immunohistochemistry")]
    width, height = size
    for k in range(count):
        photo = photos[k % len(photos)]
        top = int(rng.integers(0, photo.shape[0] - 4 * height))
        left = int(rng.integers(0, photo.shape[1] - 4 * width))
        window = Image.fromarray(photo[top : top + 4 * height, left : left + 4 * width]).resize(size)
        folder = root / f"part{k % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        if k % 2:
            window.save(folder / f"img{k:03d}.png")
        else:
            window.save(folder / f"img{k:03d}.jpg", quality=95)
    gray = Image.fromarray(photos[0][:height, :width]).convert("L").convert("RGB")
    gray.save(root / "gray.jpg", quality=95)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`write_photo_folder` once per session: 24 colour photos, a gray one and a corrupt one."""
    return write_photo_folder(tmp_path_factory.mktemp("photos") / "photos")


@pytest.fixture(scope="module")
def release_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files laid out and named like Zhang et al.'s releases, holding random weights: name -> path."""
    from tests.test_zhang import NETWORKS, RELEASE_NAMES, random_release_state, save_release_style

    directory = tmp_path_factory.mktemp("release")
    return {name: save_release_style(random_release_state(name), directory, RELEASE_NAMES[name]) for name in NETWORKS}
