"""python -m colorization.pack: a folder into the Kaggle layout, resumable, never overwriting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import colorization.data.packing as pack_module
from colorization.data import LabArrays, LabArraysDataModule
from colorization.data.batches import L_CV_TO_L, to_lab_batch
from colorization.data.folder import ImageFolderDataModule
from colorization.data.packing import pack
from colorization.errors import DataError
from colorization.files.atomic import RESUMABLE_TAG, temp_path
from colorization.pack import main
from tests.helpers.datasets import write_photo_folder


def test_packed_arrays_give_the_crops_of_data_folder_within_uint8_rounding(photo_folder: Path, tmp_path: Path):
    dst = pack(photo_folder, tmp_path / "packed", size=32, chunk=10, workers=0)
    arrays = LabArrays(dst)
    assert len(arrays) == 25 and arrays.ab_counts == [10, 10, 5] and arrays.image_size == (32, 32)
    names = (dst / "names.txt").read_text().split()
    assert len(names) == 25 and "broken.jpg" not in names and names == sorted(names)

    # data=kaggle on the result: its test split is the last ab file, images 20..24
    kaggle = LabArraysDataModule(str(dst), crop_size=32, batch_size=5, val_fraction=0.1)
    kaggle.setup("test")
    packed = to_lab_batch(next(iter(kaggle.test_dataloader())))
    # data=folder on the same images, evaluated at the same size
    folder = ImageFolderDataModule(test_dir=str(photo_folder), crop_size=32, batch_size=25)
    folder.setup("test")
    assert [r.path for r in folder.datasets["test"].records] == names
    direct = to_lab_batch(next(iter(folder.test_dataloader())))
    assert (packed["l"] - direct["l"][20:]).abs().max() <= 0.5 * L_CV_TO_L + 1e-3
    assert (packed["ab"] - direct["ab"][20:]).abs().max() <= 0.5 + 1e-3


def test_an_interrupted_pack_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src = write_photo_folder(tmp_path / "photos", count=10)
    monkeypatch.setattr(pack_module, "BATCH", 4)
    complete = pack(src, tmp_path / "complete", size=16, workers=0)

    calls = {"n": 0}
    convert = pack_module.rgb_uint8_to_lab

    def interrupted(rgb):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return convert(rgb)

    monkeypatch.setattr(pack_module, "rgb_uint8_to_lab", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pack(src, tmp_path / "resumed", size=16, workers=0)
    partial = temp_path(tmp_path / "resumed", RESUMABLE_TAG)
    assert not (tmp_path / "resumed").exists() and (partial / "progress.txt").read_text() == "4"

    calls["n"] = 10  # no more interruptions; count how many batches the second run converts
    monkeypatch.setattr(pack_module, "rgb_uint8_to_lab", interrupted)
    resumed = pack(src, tmp_path / "resumed", size=16, workers=0)
    assert calls["n"] == 10 + 2, "11 readable images, 7 left after the first 4: two batches of 4"
    assert not partial.exists()
    for name in ("l/gray_scale.npy", "ab/ab/ab1.npy"):
        np.testing.assert_array_equal(np.load(resumed / name), np.load(complete / name))


def test_a_second_pack_into_the_same_destination_waits_its_turn_and_a_dead_ones_remains_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    src = write_photo_folder(tmp_path / "photos", count=4)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = temp_path(tmp_path / "other", str(dead.pid))  # a killed writer's, beside the destination
    leftover.write_bytes(b"half")
    convert, refusals = pack_module.rgb_uint8_to_lab, []

    def meanwhile_a_second_run(rgb):
        with pytest.raises(DataError, match=r"partial-resumable: another process is writing it now") as refusal:
            pack(src, tmp_path / "packed", size=16, workers=0)
        refusals.append(refusal)
        return convert(rgb)

    monkeypatch.setattr(pack_module, "rgb_uint8_to_lab", meanwhile_a_second_run)
    dst = pack(src, tmp_path / "packed", size=16, workers=0)
    assert len(refusals) == 1 and len(LabArrays(dst)) == 5, "the first run finished all 5 readable photos"
    assert not leftover.exists()


def test_an_existing_destination_is_refused_in_one_line(photo_folder: Path, tmp_path: Path, capsys):
    dst = tmp_path / "taken"
    dst.mkdir()
    (dst / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main([str(photo_folder), str(dst), "--size", "16", "--workers", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {dst}: already exists; refusing to overwrite it (choose a new destination)"
    assert (dst / "keep.txt").read_text() == "mine" and sorted(p.name for p in dst.iterdir()) == ["keep.txt"]


def test_a_folder_without_images_is_one_line(tmp_path: Path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        main([str(tmp_path / "empty"), str(tmp_path / "out"), "--workers", "0"])
    assert "no readable image found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_packed_l_is_the_luminance_of_the_photo(tmp_path: Path):
    from PIL import Image

    src = tmp_path / "flat"
    src.mkdir()
    Image.new("RGB", (20, 20), (255, 255, 255)).save(src / "white.png")
    Image.new("RGB", (20, 20), (0, 0, 0)).save(src / "black.png")
    dst = pack(src, tmp_path / "out", size=8, workers=0)
    l = torch.from_numpy(np.load(dst / "l/gray_scale.npy"))
    assert l[0].unique().tolist() == [0] and l[1].unique().tolist() == [255]  # black.png sorts first


def test_a_symlink_loop_packs_each_photo_once(tmp_path: Path):
    src = write_photo_folder(tmp_path / "photos", count=4)
    (src / "up").symlink_to("..")  # a loop: the parent holds the folder itself
    (src / "part0" / "again").symlink_to("../part1")
    dst = pack(src, tmp_path / "packed", size=16, chunk=10, workers=0)
    names = (dst / "names.txt").read_text().split()
    assert names == sorted(set(names)) and len(names) == 5  # 4 photos and gray.jpg; broken.jpg is unreadable
