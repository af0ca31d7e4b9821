"""Datasets for landscape: readers for the standard image sets, a decode cache, splits, device tensors
and batch augmentation.

    dataset = load_dataset("mnist")                                 # files under data_root()
    train, val, test = device_splits(dataset, 5000, split_seed=0, device="cuda")
    batch = augment_batch(train.x[idx], "crop-flip", generator)
"""
from .augment import AUGMENT_KINDS, augment_batch, random_crop, random_flip
from .dataset import Dataset, channel_stats
from .device import DeviceData, device_splits
from .registry import data_root, dataset_catalog, dataset_names, dataset_source, load_dataset
from .splits import split_train_val
from .synthetic import make_synthetic

__all__ = [
    "AUGMENT_KINDS", "Dataset", "DeviceData", "augment_batch", "channel_stats", "data_root",
    "dataset_catalog", "dataset_names", "dataset_source", "device_splits", "load_dataset", "make_synthetic", "random_crop", "random_flip",
    "split_train_val",
]
