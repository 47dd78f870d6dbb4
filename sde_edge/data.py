"""Datasets by config name, as (N, C, H, W) tensors or lazily loaded images, all in [-1, 1].

``config.data.dataset``:

* ``digits``  - sklearn's 1797 8x8 digits, resized to ``data.image_size`` (embedded, offline)
* ``lfw``     - skimage's ``lfw_subset``: 200 25x25 faces (embedded, offline)
* ``patches`` - random RGB crops of the photos shipped in ``skimage.data`` (embedded, offline)
* ``folder``  - every image under ``data.root`` (recursive), resized and centre-cropped
* ``mnist`` / ``cifar10`` - torchvision; downloads only if ``data.download`` is true

Embedded sets are split into train and test by a fixed permutation (seed 0, 15% test).
"""
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

DATASETS = ("digits", "lfw", "patches", "folder", "mnist", "cifar10")
SPLITS = ("train", "test")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
_TEST_FRACTION = 0.15
_PATCH_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
_PATCHES_PER_PHOTO = 512

log = logging.getLogger(__name__)


def _fixed_split(images, split):
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    n_test = int(round(_TEST_FRACTION * len(images)))
    return images[order[n_test:]] if split == "train" else images[order[:n_test]]


def _resize(images, size):
    if images.shape[-2:] == (size, size):
        return images
    resized = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.clamp(0.0, 1.0)  # the antialiasing filter can overshoot by an ulp


def _to_unit_range(images_01):
    return images_01 * 2.0 - 1.0


def _digits(size):
    from sklearn.datasets import load_digits

    images = torch.from_numpy(load_digits().images).float()[:, None] / 16.0
    return _resize(images, size)


def digit_labels(split):
    """The class labels of the ``digits`` split, in the order ``load_dataset`` returns its images."""
    from sklearn.datasets import load_digits

    return _fixed_split(torch.from_numpy(load_digits().target), split)


def _lfw(size):
    from skimage.data import lfw_subset

    return _resize(torch.from_numpy(lfw_subset()).float()[:, None], size)


def _patches(size):
    import skimage.data

    generator = torch.Generator().manual_seed(0)
    crops = []
    for name in _PATCH_PHOTOS:
        photo = torch.from_numpy(np.asarray(getattr(skimage.data, name)())).float() / 255.0
        photo = photo.permute(2, 0, 1)[:3] if photo.dim() == 3 else photo[None].expand(3, -1, -1)
        rows = torch.randint(0, photo.shape[1] - size + 1, (_PATCHES_PER_PHOTO,), generator=generator)
        cols = torch.randint(0, photo.shape[2] - size + 1, (_PATCHES_PER_PHOTO,), generator=generator)
        crops += [photo[:, r : r + size, c : c + size] for r, c in zip(rows.tolist(), cols.tolist())]
    return torch.stack(crops)


def _torchvision(name, root, split, size, download):
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[name]
    try:
        dataset = cls(root, train=split == "train", download=download)
    except RuntimeError as error:
        raise FileNotFoundError(
            f"{name} not found under data.root={root!r}; set --config.data.download=true to fetch it ({error})"
        ) from error
    data = torch.as_tensor(np.asarray(dataset.data)).float() / 255.0
    data = data[:, None] if data.dim() == 3 else data.permute(0, 3, 1, 2)
    return _resize(data, size)


def load_image(path, size, channels):
    """One file as a (channels, size, size) tensor in [0, 1]: shorter side resized, centre-cropped."""
    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        scale = size / min(image.size)
        image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.BICUBIC)
        left, top = (image.width - size) // 2, (image.height - size) // 2
        array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array)
    return tensor[None] if channels == 1 else tensor.permute(2, 0, 1)


class ImageFolder(torch.utils.data.Dataset):
    """Every image file under ``root`` (recursive), scaled to [-1, 1]. Sorted paths; a fixed
    15% test split. Unreadable files raise an error naming them, or are skipped and counted
    with ``skip_bad_images`` (checked when the folder is opened, so nothing fails mid-run)."""

    def __init__(self, root, size, channels, split="train", skip_bad_images=False):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"data.root: image folder {root} does not exist")
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not paths:
            raise ValueError(f"data.root: image folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        good, self.num_skipped = [], 0
        for path in paths:
            try:
                with Image.open(path) as image:
                    image.verify()
                good.append(path)
            except (UnidentifiedImageError, OSError, SyntaxError) as error:
                if not skip_bad_images:
                    raise ValueError(f"data.root: cannot read image {path} ({error}); set data.skip_bad_images=true to skip it") from error
                self.num_skipped += 1
                log.warning("skipping unreadable image %s", path)
        if not good:
            raise ValueError(f"data.root: no readable images in {root} ({self.num_skipped} skipped)")
        order = torch.randperm(len(good), generator=torch.Generator().manual_seed(0)).tolist()
        n_test = int(round(_TEST_FRACTION * len(good)))
        chosen = order[n_test:] if split == "train" else order[:n_test]
        self.paths = [good[i] for i in sorted(chosen)]
        self.size, self.channels = size, channels

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return _to_unit_range(load_image(self.paths[index], self.size, self.channels))


def load_dataset(data_config, split="train"):
    """The dataset of ``config.data``: a tensor (N, C, H, W) for in-memory sets, else a Dataset."""
    name, size = data_config.dataset, data_config.image_size
    if name not in DATASETS:
        raise ValueError(f"data.dataset must be one of {DATASETS}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if name == "folder":
        return ImageFolder(data_config.root, size, data_config.num_channels, split, data_config.skip_bad_images)
    if name in ("mnist", "cifar10"):
        images = _torchvision(name, data_config.root, split, size, data_config.download)
    else:
        images = _fixed_split({"digits": _digits, "lfw": _lfw, "patches": _patches}[name](size), split)
    if images.shape[1] != data_config.num_channels:
        raise ValueError(f"data.num_channels is {data_config.num_channels} but {name} images have {images.shape[1]} channels")
    return _to_unit_range(images).contiguous()
