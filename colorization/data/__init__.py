"""Data: Kaggle-layout Lab arrays, the built-in sample photos, and folders of photo files."""

from colorization.data.datamodule import LabArraysDataModule
from colorization.data.folder import ImageFolderDataModule
from colorization.data.lab_arrays import LabArrays, LabCropDataset, make_split
from colorization.data.sample import SamplePhotosDataModule

__all__ = [
    "ImageFolderDataModule",
    "LabArrays",
    "LabArraysDataModule",
    "LabCropDataset",
    "SamplePhotosDataModule",
    "make_split",
]
