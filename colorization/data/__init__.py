"""Data: Kaggle-layout Lab arrays and the built-in sample photos."""

from colorization.data.datamodule import LabArraysDataModule
from colorization.data.lab_arrays import LabArrays, LabCropDataset, make_split
from colorization.data.sample import SamplePhotosDataModule

__all__ = ["LabArrays", "LabArraysDataModule", "LabCropDataset", "SamplePhotosDataModule", "make_split"]
