"""Datasets by config name, all as an ``ImageSet`` of images in [-1, 1].

``config.data.dataset``:

* ``digits``  - sklearn's 1797 8x8 digits, resized to ``data.image_size`` (embedded, offline, labelled)
* ``shapes``  - procedural shapes with sharp edges, 20,000 train / 2,000 test (``sde_edge.data.shapes``, labelled)
* ``lfw``     - skimage's ``lfw_subset``: 200 25x25 faces (embedded, offline)
* ``patches`` - random RGB crops of the photos shipped in ``skimage.data`` (embedded, offline)
* ``folder``  - every image under ``data.root`` (recursive), resized and centre-cropped
* ``mnist`` / ``cifar10`` - torchvision; downloads only if ``data.download`` is true

Embedded sets and folders are split into train and test by one fixed permutation (seed 0,
15% test): ``split_indices``. ``data.blur_sigma > 0`` blurs every image with a Gaussian of
that standard deviation in pixels (the frequency study's low-passed datasets).
"""
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from sde_edge.data.image_folder import ImageFolder, check_image, load_image
from sde_edge.data.image_sets import ImageSet, TensorImageSet, gaussian_blur, split_indices, validation_indices
from sde_edge.data.prepared import PreparedImageSet, prepare
from sde_edge.data.shapes import shapes

__all__ = ["DATASETS", "SPLITS", "ImageFolder", "ImageSet", "TensorImageSet", "check_image", "gaussian_blur",
           "load_dataset", "load_image", "split_indices", "validation_indices"]

DATASETS = ("digits", "shapes", "lfw", "patches", "folder", "mnist", "cifar10")
LABELLED = ("digits", "shapes", "mnist", "cifar10")
SPLITS = ("train", "val", "test")  # val: carved out of train by data.validation_fraction
_PATCH_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
_PATCHES_PER_PHOTO = 512


def _resize(images, size):
    if images.shape[-2:] == (size, size):
        return images
    resized = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.clamp(0.0, 1.0)  # the antialiasing filter can overshoot by an ulp


def _digits(size):
    from sklearn.datasets import load_digits  # costly to import: only when used

    digits = load_digits()
    return _resize(torch.from_numpy(digits.images).float()[:, None] / 16.0, size), torch.from_numpy(digits.target)


def _lfw(size):
    from skimage.data import lfw_subset  # costly to import: only when used

    return _resize(torch.from_numpy(lfw_subset()).float()[:, None], size), None


def _patches(size):
    import skimage.data  # costly to import: only when used

    generator = torch.Generator().manual_seed(0)
    crops = []
    for name in _PATCH_PHOTOS:
        photo = torch.from_numpy(np.asarray(getattr(skimage.data, name)())).float() / 255.0
        photo = photo.permute(2, 0, 1)[:3] if photo.dim() == 3 else photo[None].expand(3, -1, -1)
        rows = torch.randint(0, photo.shape[1] - size + 1, (_PATCHES_PER_PHOTO,), generator=generator)
        cols = torch.randint(0, photo.shape[2] - size + 1, (_PATCHES_PER_PHOTO,), generator=generator)
        crops += [photo[:, r : r + size, c : c + size] for r, c in zip(rows.tolist(), cols.tolist())]
    return torch.stack(crops), None


def _torchvision(name, root, split, size, download):
    import torchvision  # costly to import: only when used

    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[name]
    try:
        dataset = cls(root, train=split == "train", download=download)
    except RuntimeError as error:
        raise FileNotFoundError(
            f"{name} not found under data.root={root!r}; set --config.data.download=true to fetch it ({error})"
        ) from error
    data = torch.as_tensor(np.asarray(dataset.data)).float() / 255.0
    data = data[:, None] if data.dim() == 3 else data.permute(0, 3, 1, 2)
    return _resize(data, size), torch.as_tensor(np.asarray(dataset.targets))


@lru_cache(maxsize=8)
def _embedded(name, size, channels, split):
    """(images in [0, 1], labels or None) of an embedded set's split."""
    if name == "shapes":
        return shapes(split, size, channels)
    images, labels = {"digits": _digits, "lfw": _lfw, "patches": _patches}[name](size)
    chosen = split_indices(len(images), split)
    return images[chosen], None if labels is None else labels[chosen]


def load_dataset(data_config, split="train"):
    """The ``ImageSet`` of ``config.data`` and ``split``: in memory, or a lazy ``ImageFolder``. With
    ``data.validation_fraction > 0`` 'train' loses a fixed share of its images to 'val'."""
    if data_config.dataset not in DATASETS:
        raise ValueError(f"data.dataset must be one of {DATASETS}, got {data_config.dataset!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    fraction = float(data_config.get("validation_fraction", 0.0))
    if split == "val" and fraction <= 0:
        raise ValueError("split 'val' needs data.validation_fraction > 0 (the share of the train split held out)")
    if split != "test" and fraction > 0:
        train = _load_split(data_config, "train")
        return train.subset(validation_indices(len(train), fraction, split))
    return _load_split(data_config, split)


def _load_split(data_config, split):
    name, size, channels = data_config.dataset, data_config.image_size, data_config.num_channels
    blur = float(data_config.get("blur_sigma", 0.0))
    if name == "folder" and data_config.get("prepare", False):
        array, paths = prepare(data_config.root, size, channels, skip_bad_images=data_config.skip_bad_images)
        every = PreparedImageSet(array, paths, blur)
        return every.subset(sorted(split_indices(len(every), split).tolist()))
    if name == "folder":
        return ImageFolder(data_config.root, size, channels, split, data_config.skip_bad_images, blur)
    if name in ("mnist", "cifar10"):
        images, labels = _torchvision(name, data_config.root, split, size, data_config.download)
    else:
        images, labels = _embedded(name, size, channels, split)
    if images.shape[1] != channels:
        raise ValueError(f"data.num_channels is {channels} but {name} images have {images.shape[1]} channels")
    return TensorImageSet(gaussian_blur(images, blur) * 2.0 - 1.0, labels)
