"""Shared fixtures: tiny Kaggle-layout arrays, a tiny built-in photo set, composed configs, release files,
a local download server. What they are built from lives in tests/helpers/."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from omegaconf import DictConfig

from tests.helpers.configs import TINY_SAMPLE, compose_config, tiny_overrides
from tests.helpers.datasets import write_kaggle_layout, write_photo_folder
from tests.helpers.http_server import Server
from tests.helpers.weights import RELEASE_NAMES, ZHANG_NETWORKS, random_release_state, save_release_style

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture
def kaggle_root(tmp_path: Path) -> Path:
    """Arrays split over three ab files of 6, 5 and 4 images (like Kaggle's 10k/10k/5k)."""
    return write_kaggle_layout(tmp_path / "kaggle", [6, 5, 4])


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


@pytest.fixture
def train_config(sample_root: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """compose `train.yaml` for the tiny photo set: ``train_config("model=model2", ...)``."""

    def make(*overrides: str, run_dir: Path | None = None) -> DictConfig:
        run = run_dir or tmp_path / "run"
        return compose_config("train", tiny_overrides(sample_root, run) + list(overrides))

    return make


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`write_photo_folder` once per session: 24 colour photos, a gray one and a corrupt one."""
    return write_photo_folder(tmp_path_factory.mktemp("photos") / "photos")


@pytest.fixture(scope="module")
def release_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files laid out and named like Zhang et al.'s releases, holding random weights: name -> path."""
    directory = tmp_path_factory.mktemp("release")
    return {
        name: save_release_style(random_release_state(name), directory, RELEASE_NAMES[name]) for name in ZHANG_NETWORKS
    }


@pytest.fixture
def server() -> Iterator[Server]:
    """A local HTTP server standing in for the hosts of release files (`tests.helpers.http_server.publish`)."""
    running = Server()
    yield running
    running.close()


@pytest.fixture(autouse=True)
def user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty user cache folder (cached reference rows, file lists), never the
    developer's: nothing one test caches changes what another measures."""
    from colorization.files import downloads

    directory = tmp_path / "user-cache"
    monkeypatch.setenv(downloads.CACHE_ENV, str(directory))
    return directory


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty weights cache, downloads allowed: where a release name's file is fetched to."""
    from colorization.files import downloads

    directory = tmp_path / "cache"
    monkeypatch.setenv(downloads.CACHE_ENV, str(directory))
    monkeypatch.delenv(downloads.OFFLINE_ENV, raising=False)
    return directory
