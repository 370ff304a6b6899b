"""data=folder: image folders indexed once, decoded in workers, uint8 RGB batches, gray/corrupt files handled."""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from colorization.color.spaces import rgb_to_lab
from colorization.data.batches import to_lab_batch
from colorization.data.folder import ImageFolderDataModule, collate_readable
from colorization.data.image_index import INDEX_NAME, inspect_file, load_index, scan_folder
from colorization.data.images import mean_chroma, random_resized_box
from colorization.errors import ConfigError, DataError
from colorization.files.downloads import CACHE_ENV
from colorization.files.photos import read_rgb
from tests.helpers.datasets import write_photo_folder
from tests.helpers.entry_points import run_script, without_permission_override
from tests.helpers.marks import with_slow


def datamodule(root: Path, **kwargs) -> ImageFolderDataModule:
    settings = {"crop_size": 32, "batch_size": 4, "val_fraction": 0.1, "test_fraction": 0.1, "seed": 0}
    return ImageFolderDataModule(root=str(root), **{**settings, **kwargs})


def test_scan_is_recursive_and_takes_image_files_only(photo_folder: Path):
    paths = scan_folder(photo_folder)
    assert len(paths) == 26  # 24 photos + gray.jpg + broken.jpg; notes.txt and the cached index are not images
    assert "part1/img001.png" in paths and "notes.txt" not in paths and paths == sorted(paths)


def test_index_is_built_once_and_cached_with_sizes_and_chroma(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = write_photo_folder(tmp_path / "photos", count=6)
    records = load_index(folder)
    assert (folder / INDEX_NAME).is_file()
    by_path = {r.path: r for r in records}
    assert (by_path["part0/img000.jpg"].width, by_path["part0/img000.jpg"].height) == (64, 48)
    assert by_path["part0/img000.jpg"].bytes == (folder / "part0/img000.jpg").stat().st_size
    assert not by_path["broken.jpg"].readable and by_path["gray.jpg"].chroma < 1.0
    assert min(r.chroma for r in records if r.path.startswith("part")) > 5.0

    # a second start reads the cache: nothing is scanned or opened again
    import colorization.data.image_index as image_index

    def fail(*args, **kwargs):
        raise AssertionError("the folder was scanned again")

    monkeypatch.setattr(image_index, "build_index", fail)
    cached = load_index(folder)

    def sizes(rs):
        return [(r.path, r.bytes, r.width, r.height) for r in rs]

    assert sizes(cached) == sizes(records)
    np.testing.assert_allclose([r.chroma for r in cached], [r.chroma for r in records], atol=1e-3)
    monkeypatch.undo()
    (folder / "part0" / "new.png").write_bytes((folder / "part1" / "img001.png").read_bytes())
    assert len(load_index(folder, rescan=True)) == len(records) + 1


def test_index_goes_to_index_dir_when_asked(tmp_path: Path):
    folder = write_photo_folder(tmp_path / "photos", count=3)
    load_index(folder, index_dir=tmp_path / "cache")
    assert not (folder / INDEX_NAME).exists() and len(list((tmp_path / "cache").glob("photos-*.tsv"))) == 1


def test_batches_are_uint8_rgb_and_become_lab_on_conversion(photo_folder: Path):
    dm = datamodule(photo_folder)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"rgb_uint8", "index"}
    assert batch["rgb_uint8"].dtype == torch.uint8 and batch["rgb_uint8"].shape == (4, 3, 32, 32)
    lab = to_lab_batch(batch)
    assert lab["l"].shape == (4, 1, 32, 32) and lab["ab"].shape == (4, 2, 32, 32) and "rgb_uint8" not in lab
    expected = rgb_to_lab(batch["rgb_uint8"].float() / 255)
    torch.testing.assert_close(lab["ab"], expected[:, 1:])
    assert lab["l"].min() >= 0 and lab["l"].max() <= 100


def test_gray_and_corrupt_files_are_left_out_and_reported_once(photo_folder: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    dm = datamodule(photo_folder, val_fraction=0.0, test_fraction=0.0)
    dm.setup("fit")
    train_paths = [r.path for r in dm.datasets["train"].records]
    assert len(train_paths) == 24 and "gray.jpg" not in train_paths and "broken.jpg" not in train_paths
    skipped = [r for r in caplog.records if "broken.jpg" in r.getMessage()]
    assert len(skipped) == 1 and skipped[0].levelno == logging.WARNING
    gray = [r for r in caplog.records if "gray-looking" in r.getMessage()]
    assert len(gray) == 1 and "left out 1 of 25" in gray[0].getMessage()
    keep_all = datamodule(photo_folder, val_fraction=0.0, test_fraction=0.0, min_chroma=0)
    keep_all.setup("fit")
    assert len(keep_all.datasets["train"]) == 25


def test_a_file_that_breaks_after_indexing_is_skipped_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    folder = write_photo_folder(tmp_path / "photos", count=4)
    dm = datamodule(folder, val_fraction=0.0, test_fraction=0.0, batch_size=8)
    dm.setup("fit")
    (folder / dm.datasets["train"].records[0].path).write_bytes(b"truncated")
    batch = next(iter(dm.train_dataloader()))
    assert batch["rgb_uint8"].shape[0] == len(dm.datasets["train"]) - 1
    assert any("not a readable image" in r.getMessage() for r in caplog.records)


def test_split_is_seeded_disjoint_and_complete(photo_folder: Path):
    a, b, c = datamodule(photo_folder, seed=1), datamodule(photo_folder, seed=1), datamodule(photo_folder, seed=2)
    for dm in (a, b, c):
        dm.setup("fit")
    paths = {split: [r.path for r in a.datasets[split].records] for split in ("train", "val", "test")}
    assert (len(paths["val"]), len(paths["test"])) == (2, 2)  # 10% of 25 readable images, rounded
    assert len(set(paths["train"]) | set(paths["val"]) | set(paths["test"])) == 24  # gray.jpg left out of train
    assert paths["test"] == [r.path for r in b.datasets["test"].records]
    assert paths["test"] != [r.path for r in c.datasets["test"].records]


def test_explicit_split_folders(tmp_path: Path):
    train = write_photo_folder(tmp_path / "train", count=6)
    test = write_photo_folder(tmp_path / "test", count=3)
    dm = ImageFolderDataModule(train_dir=str(train), test_dir=str(test), crop_size=16, batch_size=2)
    dm.setup("fit")
    assert (len(dm.datasets["train"]), len(dm.datasets["val"]), len(dm.datasets["test"])) == (6, 0, 4)


def test_evaluation_resizes_the_shorter_side_then_takes_the_centre(tmp_path: Path):
    folder = tmp_path / "one"
    folder.mkdir()
    # 60 x 30: left half red, right half blue, a green column in the middle
    pixels = np.zeros((30, 60, 3), np.uint8)
    pixels[:, :30, 0] = 255
    pixels[:, 30:, 2] = 255
    pixels[:, 28:32] = (0, 255, 0)
    Image.fromarray(pixels).save(folder / "a.png")
    dm = ImageFolderDataModule(test_dir=str(folder), crop_size=10, eval_resize=20, eval_crop_size=10)
    dm.setup("test")
    crop = dm.datasets["test"][0]["rgb_uint8"]
    # shorter side 30 -> 20 (40 x 20), centre 10 x 10 = original columns 15..45: red | green | blue
    assert crop.shape == (3, 10, 10)
    assert crop[0, 5, 0] > 200 and crop[2, 5, -1] > 200 and crop[1, 5, 4:6].min() > 100


def test_exif_orientation_is_applied(tmp_path: Path):
    folder = tmp_path / "exif"
    folder.mkdir()
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise: portrait
    image.save(folder / "rotated.jpg", exif=exif, quality=95)
    assert read_rgb(folder / "rotated.jpg").size == (20, 40)
    record = load_index(folder)[0]
    assert (record.width, record.height) == (20, 40)


def test_random_resized_boxes_stay_inside_and_vary():
    rng = random.Random(0)
    boxes = {random_resized_box(500, 375, (0.25, 1.0), (3 / 4, 4 / 3), rng) for _ in range(50)}
    assert len(boxes) > 40
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= 500 and 0 <= top < bottom <= 375
        assert 0.2 * 500 * 375 <= (right - left) * (bottom - top) <= 500 * 375


def test_mean_chroma_tells_gray_from_colour():
    gray = Image.new("RGB", (50, 50), (120, 120, 120))
    red = Image.new("RGB", (50, 50), (200, 30, 30))
    assert mean_chroma(gray) < 0.5 and mean_chroma(red) > 50


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, ConfigError, "data.root is not set"),
        ({"root": "x", "train_dir": "y"}, ConfigError, "are both set"),
        ({"root": "x", "min_chroma": -1}, ConfigError, "data.min_chroma=-1"),
        ({"root": "x", "crop_scale": [0.5, 2.0]}, ConfigError, "data.crop_scale"),
        ({"root": "x", "protocol": "nope"}, ConfigError, "data.protocol='nope' is unknown"),
    ],
)
def test_bad_settings_fail_in_one_line(kwargs, error, message):
    with pytest.raises(error, match=message):
        ImageFolderDataModule(**kwargs)


def test_missing_and_empty_folders_are_one_line_errors(tmp_path: Path):
    with pytest.raises(DataError, match="image folder not found"):
        datamodule(tmp_path / "absent").setup("fit")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "broken.png").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"empty: no readable image found \(1 file"):
        datamodule(empty).setup("fit")


@pytest.mark.parametrize(
    "model",
    with_slow(["cnn", "pix2pix", "cwgan", "eccv16", "siggraph17"], ["pix2pix", "cwgan", "eccv16", "siggraph17"]),
)
def test_every_model_family_trains_on_a_photo_folder(model: str, photo_folder: Path, tmp_path: Path):
    from colorization.jobs.train import train
    from tests.helpers.configs import compose_config, tiny_overrides

    run = tmp_path / "run"
    overrides = [
        *tiny_overrides(None, run),
        f"model={model}",
        "data=folder",
        f"data.root={photo_folder}",
        "data.crop_size=32",
        "data.batch_size=4",
        "data.val_fraction=0.2",
        "data.test_fraction=0.2",
        "data.num_workers=0",
        "data.pin_memory=false",
        "data.persistent_workers=false",
        "++trainer.limit_train_batches=2",
        "++trainer.limit_val_batches=1",
        "++trainer.limit_test_batches=1",
    ]
    metrics = train(compose_config("train", overrides))
    assert np.isfinite(metrics["val/cie76"]) and np.isfinite(metrics["test/cie76"])
    assert (run / "samples" / "epoch_000.png").is_file(), "the sample sheet reads the folder's validation images"


# --- a folder that links to itself, changes, or cannot be written (issue 23) ------------------------------


def test_symlink_loops_and_second_names_list_each_real_folder_and_photo_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    folder = write_photo_folder(tmp_path / "photos", count=6)
    real = sorted(scan_folder(folder))
    (tmp_path / "elsewhere.png").write_bytes((folder / "part1" / "img001.png").read_bytes())
    (folder / "up").symlink_to("..")  # a loop: the parent holds the folder itself
    (folder / "part0" / "again").symlink_to("../part1")  # a second name for a folder that is listed anyway
    (folder / "part2" / "same.png").symlink_to("../part1/img001.png")  # a second name for a photo
    (folder / "outside.png").symlink_to(tmp_path / "elsewhere.png")  # a photo only a link reaches
    caplog.set_level(logging.INFO)

    records = load_index(folder)
    paths = [r.path for r in records]
    assert paths == sorted([*real, "outside.png"]), "each real photo once, under its own name, not a link's"
    skipped = [r.getMessage() for r in caplog.records if "link(s)" in r.getMessage()]
    assert len(skipped) == 1 and "skipped 3 link(s)" in skipped[0], skipped
    # pack lists the folder the same way
    assert scan_folder(folder) == paths


def test_a_changed_folder_is_checked_at_start_up_and_only_what_changed_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import colorization.data.image_index as image_index

    folder = write_photo_folder(tmp_path / "photos", count=6)
    first = {r.path: r for r in load_index(folder)}
    (folder / "part0" / "img000.jpg").unlink()
    (folder / "part1" / "img001.png").unlink()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(folder / "part2" / "img002.jpg")  # same name, new photo
    Image.new("RGB", (20, 10), (30, 200, 30)).save(folder / "part0" / "new.png")
    inspected = []

    def counted(root: Path, relative: str):
        inspected.append(relative)
        return inspect_file(root, relative)

    monkeypatch.setattr(image_index, "inspect_file", counted)
    records = {r.path: r for r in load_index(folder)}
    assert set(records) == set(first) - {"part0/img000.jpg", "part1/img001.png"} | {"part0/new.png"}
    assert sorted(inspected) == ["part0/new.png", "part2/img002.jpg"], "the unchanged files are not opened again"
    assert (records["part2/img002.jpg"].width, records["part0/new.png"].width) == (40, 20)
    inspected.clear()
    assert [r.path for r in load_index(folder)] == sorted(records) and inspected == [], "the update was cached"


def test_a_batch_of_vanished_photos_says_how_to_list_the_folder_again():
    with pytest.raises(DataError, match=r"none of the 2 images of a batch could be read .*data\.rescan=true"):
        collate_readable([None, None])


@pytest.mark.slow
def test_a_read_only_folder_is_listed_once_per_run_and_cached_in_the_user_cache(photo_folder: Path, tmp_path: Path):
    folder = tmp_path / "photos"
    shutil.copytree(photo_folder, folder, ignore=shutil.ignore_patterns(".*"))
    for directory in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        directory.chmod(0o555)
    cache = tmp_path / "cache"
    args = [
        "data=folder",
        f"data.root={folder}",
        "data.crop_size=32",
        "data.batch_size=4",
        "data.val_fraction=0.2",
        "data.test_fraction=0.2",
        "data.num_workers=0",
        "data.persistent_workers=false",
        "data.pin_memory=false",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "++trainer.limit_train_batches=1",
        "++trainer.limit_val_batches=1",
        "++trainer.limit_test_batches=1",
        "trainer.enable_progress_bar=false",
        "logger=csv",
        f"paths.root_dir={tmp_path}",
    ]
    try:
        for attempt, indexing in ((1, 1), (2, 0)):
            result = run_script(
                "train.py",
                [*args, f"hydra.run.dir={tmp_path / f'run{attempt}'}"],
                cwd=tmp_path,
                env={CACHE_ENV: str(cache)},
                preexec_fn=without_permission_override,
            )
            output = result.stdout + result.stderr
            assert result.returncode == 0, output[-3000:]
            assert output.count("indexing ") == indexing, output[-3000:]
            assert "could not cache" not in output
        assert len(list((cache / "indexes").glob("photos-*.tsv"))) == 1 and not (folder / INDEX_NAME).exists()
    finally:
        for directory in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
            directory.chmod(0o755)
