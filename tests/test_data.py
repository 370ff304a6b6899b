"""LabArraysDataModule on small Kaggle-layout arrays written by the tests, uint8 Lab batches, the built-in photos."""

from pathlib import Path

import numpy as np
import pytest
import torch

from colorization.data import LabArrays, LabArraysDataModule, SamplePhotosDataModule, make_split
from colorization.data.batches import AB_CV_OFFSET, L_CV_TO_L, lab_to_uint8, lab_uint8_to_float, to_lab_batch
from colorization.data.sample import write_sample_dataset
from colorization.errors import ConfigError, DataError
from tests.helpers.datasets import write_kaggle_layout


def test_arrays_are_memory_mapped_and_never_loaded_whole(kaggle_root: Path):
    arrays = LabArrays(kaggle_root)
    l, ab = arrays._arrays()
    assert isinstance(l, np.memmap)
    assert all(isinstance(a, np.memmap) for a in ab)
    assert len(arrays) == 15 and arrays.ab_counts == [6, 5, 4] and arrays.image_size == (24, 24)


def test_l_pairs_with_the_right_ab_file_across_the_file_boundaries(kaggle_root: Path):
    arrays = LabArrays(kaggle_root)
    assert [arrays.locate(i) for i in (0, 5, 6, 10, 11, 14)] == [(0, 0), (0, 5), (1, 0), (1, 4), (2, 0), (2, 3)]
    for index in range(len(arrays)):
        l_cv, ab_cv = arrays.read(index)
        # the writer stores image i as L_cv = a_cv = i, b_cv = 255 - i (pixel (0, 0) is noise-free)
        assert l_cv[0, 0] == index and ab_cv[0, 0, 0] == index and ab_cv[0, 0, 1] == 255 - index


def test_batches_carry_float_lab_in_standard_units(kaggle_root: Path):
    dm = LabArraysDataModule(str(kaggle_root), crop_size=16, batch_size=4, val_fraction=0.2, seed=1)
    dm.setup("fit")
    raw = next(iter(dm.test_dataloader()))
    assert set(raw) == {"lab_uint8", "index"} and raw["lab_uint8"].dtype == torch.uint8, "uint8 until the device"
    batch = to_lab_batch(raw)
    assert batch["l"].shape == (4, 1, 16, 16) and batch["ab"].shape == (4, 2, 16, 16)
    assert batch["l"].dtype == torch.float32 and batch["ab"].dtype == torch.float32
    index = batch["index"]
    assert index.tolist() == [11, 12, 13, 14], "the test split is the last ab file"
    # centre crop of 16 from 24 starts at pixel 4: away from the noise-free corner, L >= i
    expected_a = index.float() - AB_CV_OFFSET
    torch.testing.assert_close(batch["ab"][:, 0, 0, 0], expected_a)
    torch.testing.assert_close(batch["ab"][:, 1, 0, 0], (255 - index).float() - AB_CV_OFFSET)
    assert torch.all(batch["l"][:, 0] >= (index.float() * L_CV_TO_L)[:, None, None] - 1e-4)


def test_lab_uint8_encoding_round_trips_within_half_a_step():
    lab = torch.cat([torch.rand(2, 1, 8, 8) * 100, torch.rand(2, 2, 8, 8) * 200 - 100], dim=1)
    l, ab = lab_uint8_to_float(lab_to_uint8(lab))
    assert (l - lab[:, :1]).abs().max() <= 0.5 * 100 / 255 + 1e-4
    assert (ab - lab[:, 1:]).abs().max() <= 0.5 + 1e-4


def test_split_sizes_follow_the_study(kaggle_root: Path):
    dm = LabArraysDataModule(str(kaggle_root), crop_size=8, batch_size=4, val_fraction=0.2, seed=3)
    dm.setup("fit")
    # pool = images 0..10 (ab1 + ab2), test = 11..14 (ab3); 20% of 11 -> 2 validation images
    assert len(dm.train_set) == 9 and len(dm.val_set) == 2 and len(dm.test_set) == 4
    together = np.concatenate([dm.split.train, dm.split.val])
    assert sorted(together.tolist()) == list(range(11))


def test_kaggle_sized_split_is_20k_train_pool_and_5k_test():
    split = make_split([10000, 10000, 5000], test_start=None, val_fraction=0.05, limit=None, seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (19000, 1000, 5000)
    assert split.test[0] == 20000 and split.test[-1] == 24999
    assert set(split.train).isdisjoint(split.val) and max(split.val) < 20000


def test_validation_split_is_seeded():
    a = make_split([100, 50], None, 0.1, None, seed=7)
    b = make_split([100, 50], None, 0.1, None, seed=7)
    c = make_split([100, 50], None, 0.1, None, seed=8)
    assert np.array_equal(a.val, b.val) and not np.array_equal(a.val, c.val)


def test_limit_keeps_the_first_images_of_pool_and_test():
    split = make_split([10000, 10000, 5000], None, 0.2, limit=4000, seed=0)
    assert len(split.train) + len(split.val) == 4000 and len(split.val) == 800
    assert split.test.tolist() == list(range(20000, 24000))


def test_training_crops_are_random_and_flipped_evaluation_crops_are_centred(kaggle_root: Path):
    dm = LabArraysDataModule(str(kaggle_root), crop_size=10, batch_size=4, val_fraction=0.2)
    dm.setup("fit")
    torch.manual_seed(0)
    train_crops = {tuple(dm.train_set[0]["lab_uint8"].flatten().tolist()) for _ in range(20)}
    assert len(train_crops) > 1
    first = dm.test_set[0]["lab_uint8"]
    assert torch.equal(first, dm.test_set[0]["lab_uint8"])
    l_cv, ab_cv = dm.arrays.read(int(dm.test_set.indices[0]), top=7, left=7, size=(10, 10))
    assert torch.equal(first[0], torch.from_numpy(l_cv)) and torch.equal(
        first[1:], torch.from_numpy(ab_cv).permute(2, 0, 1)
    )


def test_loaders_work_with_worker_processes(kaggle_root: Path):
    dm = LabArraysDataModule(
        str(kaggle_root), crop_size=8, batch_size=3, num_workers=2, persistent_workers=True, val_fraction=0.2
    )
    dm.setup("fit")
    seen = torch.cat([batch["index"] for batch in dm.train_dataloader()])
    assert sorted(seen.tolist()) == sorted(dm.split.train.tolist())


# --- bad input: one line naming the file/key and what was expected ---------------------------------


def test_missing_root(tmp_path: Path):
    with pytest.raises(DataError, match=r"nowhere: data directory not found"):
        LabArrays(tmp_path / "nowhere")


def test_missing_l_file(kaggle_root: Path):
    (kaggle_root / "l" / "gray_scale.npy").unlink()
    with pytest.raises(DataError, match=r"gray_scale.npy: file not found"):
        LabArrays(kaggle_root)


def test_missing_ab_files(kaggle_root: Path):
    for path in (kaggle_root / "ab" / "ab").glob("*.npy"):
        path.unlink()
    with pytest.raises(DataError, match=r"ab/ab: no ab1.npy, ab2.npy, ... files found"):
        LabArrays(kaggle_root)


def test_gap_in_ab_numbering(kaggle_root: Path):
    (kaggle_root / "ab" / "ab" / "ab2.npy").unlink()
    with pytest.raises(DataError, match=r"numbered ab1..ab2 without gaps, found \['ab1.npy', 'ab3.npy'\]"):
        LabArrays(kaggle_root)


def test_wrong_dtype(kaggle_root: Path):
    np.save(kaggle_root / "l" / "gray_scale.npy", np.zeros((15, 24, 24), np.float32))
    with pytest.raises(DataError, match=r"gray_scale.npy: expected uint8 \(N, H, W\), got float32 \(15, 24, 24\)"):
        LabArrays(kaggle_root)


def test_wrong_ab_shape(kaggle_root: Path):
    np.save(kaggle_root / "ab" / "ab" / "ab2.npy", np.zeros((5, 24, 24, 3), np.uint8))
    with pytest.raises(DataError, match=r"ab2.npy: expected uint8 \(n, 24, 24, 2\) .* got uint8 \(5, 24, 24, 3\)"):
        LabArrays(kaggle_root)


def test_count_mismatch(tmp_path: Path):
    root = write_kaggle_layout(tmp_path / "k", [6, 5, 4])
    np.save(root / "l" / "gray_scale.npy", np.zeros((14, 24, 24), np.uint8))
    with pytest.raises(DataError, match=r"gray_scale.npy holds 14 images but the ab files hold 15 \(6 \+ 5 \+ 4\)"):
        LabArrays(root)


def test_not_an_npy_file(kaggle_root: Path):
    (kaggle_root / "l" / "gray_scale.npy").write_text("not numpy")
    with pytest.raises(DataError, match=r"gray_scale.npy: not a readable .npy array"):
        LabArrays(kaggle_root)


def test_crop_larger_than_images(kaggle_root: Path):
    dm = LabArraysDataModule(str(kaggle_root), crop_size=32)
    with pytest.raises(ConfigError, match=r"data.crop_size=32 does not fit the 24x24 images .*expected 1..24"):
        dm.setup("fit")


def test_unset_root():
    with pytest.raises(ConfigError, match=r"data.root is not set"):
        LabArraysDataModule(None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_start": 0}, r"data.test_start=0 is out of range; expected 1..15"),
        ({"val_fraction": 1.0}, r"data.val_fraction=1.0 is out of range"),
        ({"limit": 0}, r"data.limit=0 must be a positive number"),
    ],
)
def test_split_settings_out_of_range(kaggle_root: Path, kwargs, message):
    dm = LabArraysDataModule(str(kaggle_root), crop_size=8, **kwargs)
    with pytest.raises(ConfigError, match=message):
        dm.setup("fit")


# --- built-in photos ------------------------------------------------------------------------------


def test_sample_set_uses_the_kaggle_layout_with_held_out_test_photos(sample_root: Path):
    arrays = LabArrays(sample_root)
    # 6 training photos x 6 crops, 2 test photos x 4 crops (conftest's tiny settings)
    assert arrays.ab_counts == [36, 8] and arrays.image_size == (48, 48)
    dm = SamplePhotosDataModule(
        str(sample_root), image_size=48, train_crops_per_photo=6, test_crops_per_photo=4, crop_size=32, val_fraction=0.2
    )
    dm.prepare_data()  # up to date: must not rewrite
    dm.setup("fit")
    assert len(dm.test_set) == 8 and len(dm.train_set) + len(dm.val_set) == 36
    l_cv, ab_cv = arrays.read(0)
    assert l_cv.dtype == np.uint8 and ab_cv.dtype == np.uint8
    assert ab_cv.astype(int).std() > 1, "photos must carry colour"


def test_sample_set_is_reproducible_and_rewritten_when_settings_change(tmp_path: Path, sample_root: Path):
    root = tmp_path / "sample"
    write_sample_dataset(root, 48, 6, 4, seed=0)
    assert (root / "l" / "gray_scale.npy").read_bytes() == (sample_root / "l" / "gray_scale.npy").read_bytes()
    write_sample_dataset(root, 48, 5, 4, seed=0)
    assert LabArrays(root).ab_counts == [30, 8]


def test_sample_set_never_overwrites_a_foreign_directory(tmp_path: Path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match=r"mine: exists but holds no sample.json; refusing to overwrite it"):
        write_sample_dataset(root, 48, 2, 2, seed=0)
    assert (root / "notes.txt").read_text() == "keep me"
