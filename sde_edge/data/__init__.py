"""Datasets by config name, all as an ``ImageSet`` of images in [-1, 1] (``datasets``): the embedded
sets (``shapes`` among them), image folders read lazily (``image_folder``) or decoded once into a
checked cache (``prepared``), and the fixed train / val / test splits (``image_sets``)."""
from sde_edge.data.datasets import (
    DATASETS,
    SPLITS,
    ImageFolder,
    ImageSet,
    TensorImageSet,
    check_image,
    gaussian_blur,
    load_dataset,
    load_image,
    split_indices,
    validation_indices,
)

__all__ = ["DATASETS", "SPLITS", "ImageFolder", "ImageSet", "TensorImageSet", "check_image", "gaussian_blur",
           "load_dataset", "load_image", "split_indices", "validation_indices"]
