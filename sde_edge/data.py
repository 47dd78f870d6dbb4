"""Datasets by config name, all as an ``ImageSet`` of images in [-1, 1].

``config.data.dataset``:

* ``digits``  - sklearn's 1797 8x8 digits, resized to ``data.image_size`` (embedded, offline, labelled)
* ``shapes``  - procedural shapes with sharp edges, 20,000 train / 2,000 test (``sde_edge.shapes``, labelled)
* ``lfw``     - skimage's ``lfw_subset``: 200 25x25 faces (embedded, offline)
* ``patches`` - random RGB crops of the photos shipped in ``skimage.data`` (embedded, offline)
* ``folder``  - every image under ``data.root`` (recursive), resized and centre-cropped
* ``mnist`` / ``cifar10`` - torchvision; downloads only if ``data.download`` is true

Embedded sets and folders are split into train and test by one fixed permutation (seed 0,
15% test): ``split_indices``. ``data.blur_sigma > 0`` blurs every image with a Gaussian of
that standard deviation in pixels (the frequency study's low-passed datasets).
"""
import copy
import logging
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

DATASETS = ("digits", "shapes", "lfw", "patches", "folder", "mnist", "cifar10")
LABELLED = ("digits", "shapes", "mnist", "cifar10")
SPLITS = ("train", "val", "test")  # val: carved out of train by data.validation_fraction
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
_TEST_FRACTION = 0.15
_PATCH_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
_PATCHES_PER_PHOTO = 512

log = logging.getLogger(__name__)


def split_indices(n, split):
    """The fixed train/test split of n items (seed 0, 15% test), as sorted index lists."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    n_test = int(round(_TEST_FRACTION * n))
    chosen = order[n_test:] if split == "train" else order[:n_test]
    return chosen


def gaussian_blur(images, sigma):
    """Blur (B, C, H, W) images with a Gaussian of ``sigma`` pixels (reflecting borders)."""
    if sigma <= 0:
        return images
    radius = max(1, int(np.ceil(3 * sigma)))
    axis = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (axis / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect" if radius < min(images.shape[-2:]) else "replicate")
    horizontal = F.conv2d(padded, kernel.reshape(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(horizontal, kernel.reshape(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


class ImageSet(torch.utils.data.Dataset):
    """Images in [-1, 1] by index; ``batch(indices)`` stacks them into (N, C, H, W) and
    ``labels`` holds the class labels of labelled sets (else None)."""

    labels = None

    def batch(self, indices):
        return torch.stack([self[int(i)] for i in indices])

    def first(self, n):
        """The first n images (all if fewer), in the set's fixed order."""
        return self.batch(range(min(n, len(self))))

    def subset(self, indices):
        """The set restricted to ``indices`` (sorted), labels included."""
        raise NotImplementedError


class TensorImageSet(ImageSet):
    """An in-memory set: ``images`` (N, C, H, W) in [-1, 1] and optional ``labels`` (N,)."""

    def __init__(self, images, labels=None):
        self.images, self.labels = images.contiguous(), labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index]

    def batch(self, indices):
        return self.images[torch.as_tensor(indices, dtype=torch.long)]

    def to(self, device):
        return TensorImageSet(self.images.to(device), self.labels)

    def subset(self, indices):
        indices = torch.as_tensor(indices, dtype=torch.long)
        return TensorImageSet(self.images[indices], None if self.labels is None else self.labels[indices])


def validation_indices(n, fraction, split):
    """The fixed validation carve-out of a train split of n items (seed 1): the 'val' indices, or
    the rest ('train'), sorted. Tuning reads 'val' and never the test split."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    n_val = int(round(fraction * n))
    chosen = order[:n_val] if split == "val" else order[n_val:]
    return chosen.sort().values


def _resize(images, size):
    if images.shape[-2:] == (size, size):
        return images
    resized = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.clamp(0.0, 1.0)  # the antialiasing filter can overshoot by an ulp


def _digits(size):
    from sklearn.datasets import load_digits

    digits = load_digits()
    return _resize(torch.from_numpy(digits.images).float()[:, None] / 16.0, size), torch.from_numpy(digits.target)


def _lfw(size):
    from skimage.data import lfw_subset

    return _resize(torch.from_numpy(lfw_subset()).float()[:, None], size), None


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
    return torch.stack(crops), None


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
    return _resize(data, size), torch.as_tensor(np.asarray(dataset.targets))


@lru_cache(maxsize=8)
def _embedded(name, size, channels, split):
    """(images in [0, 1], labels or None) of an embedded set's split."""
    if name == "shapes":
        from sde_edge.shapes import shapes

        return shapes(split, size, channels)
    images, labels = {"digits": _digits, "lfw": _lfw, "patches": _patches}[name](size)
    chosen = split_indices(len(images), split)
    return images[chosen], None if labels is None else labels[chosen]


def _pixel_range(image, path):
    """A PIL image as a float array in [0, 1] with its real range: 8-bit /255, 16-bit /65535,
    float images as they are (they must lie in [0, 1])."""
    mode = image.mode
    if mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535.0
    if mode in ("I", "I;32", "I;32S"):
        array = np.asarray(image, dtype=np.float64)
        if array.min() < 0 or array.max() > 65535:
            raise ValueError(f"32-bit integer image {path} holds values in [{array.min():g}, {array.max():g}]; "
                             "only 8- and 16-bit ranges are understood: convert it to 8- or 16-bit")
        return (array / 65535.0).astype(np.float32)  # a 16-bit image that the decoder widened to 32 bits
    if mode == "F":
        array = np.asarray(image, dtype=np.float32)
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ValueError(f"float image {path} holds values in [{np.nanmin(array):g}, {np.nanmax(array):g}]; "
                             "float images must lie in [0, 1]")
        return array
    return None


def _open(path):
    """PIL's open with a decompression bomb (too many pixels) raised as an error, not a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def check_image(path):
    """Raise if ``path`` is not an image we can load: unreadable, a decompression bomb, or a
    16/32-bit or float image whose values lie outside the range it declares."""
    with _open(path) as image:
        if image.mode.startswith(("I", "F")):
            image.load()
            _pixel_range(image, path)
        else:
            image.verify()


def load_image(path, size, channels):
    """One file as a (channels, size, size) tensor in [0, 1]: shorter side resized, centre-cropped."""
    with _open(path) as image:
        image.load()
        wide = _pixel_range(image, path)
        if wide is None:
            image = image.convert("L" if channels == 1 else "RGB")
            scale = size / min(image.size)
            image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.BICUBIC)
            left, top = (image.width - size) // 2, (image.height - size) // 2
            array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
            tensor = torch.from_numpy(array)
            return tensor[None] if channels == 1 else tensor.permute(2, 0, 1)
    # one channel of 16/32-bit or float data: resized in float, so no level is lost
    tensor = torch.from_numpy(np.ascontiguousarray(wide))[None, None].float()
    scale = size / min(tensor.shape[-2:])
    height, width = max(size, round(tensor.shape[-2] * scale)), max(size, round(tensor.shape[-1] * scale))
    tensor = F.interpolate(tensor, size=(height, width), mode="bicubic", antialias=True, align_corners=False)[0]
    top, left = (height - size) // 2, (width - size) // 2
    tensor = tensor[:, top:top + size, left:left + size].clamp(0, 1)
    return tensor if channels == 1 else tensor.expand(3, -1, -1).clone()


_BAD_IMAGE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
              Image.DecompressionBombWarning)


class ImageFolder(ImageSet):
    """Every image file under ``root`` (recursive), scaled to [-1, 1]. Sorted paths; the fixed
    test split. Unreadable files (including decompression bombs and images whose range is not
    understood) raise an error naming them, or are skipped and counted with ``skip_bad_images``;
    all of it is checked when the folder is opened, so nothing fails mid-run."""

    def __init__(self, root, size, channels, split="train", skip_bad_images=False, blur_sigma=0.0):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"data.root: image folder {root} does not exist")
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not paths:
            raise ValueError(f"data.root: image folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.size, self.channels, self.blur_sigma = size, channels, blur_sigma
        good, self.num_skipped = [], 0
        for path in paths:
            try:
                check_image(path)
                good.append(path)
            except _BAD_IMAGE as error:
                if not skip_bad_images:
                    raise ValueError(f"data.root: cannot read image {path} ({error}); "
                                     "set data.skip_bad_images=true to skip it") from error
                self.num_skipped += 1
                log.warning("skipping unreadable image %s (%s)", path, error)
        if not good:
            raise ValueError(f"data.root: no readable images in {root} ({self.num_skipped} skipped)")
        self.paths = [good[i] for i in sorted(split_indices(len(good), split).tolist())]

    def __len__(self):
        return len(self.paths)

    def subset(self, indices):
        chosen = copy.copy(self)
        chosen.paths = [self.paths[int(i)] for i in indices]
        return chosen

    def __getitem__(self, index):
        image = load_image(self.paths[index], self.size, self.channels)
        return gaussian_blur(image[None], self.blur_sigma)[0] * 2.0 - 1.0


def load_dataset(data_config, split="train"):
    """The ``ImageSet`` of ``config.data`` and ``split``: in memory, or a lazy ``ImageFolder``. With
    ``data.validation_fraction > 0`` 'train' loses a fixed share of its images to 'val'."""
    name, size, channels = data_config.dataset, data_config.image_size, data_config.num_channels
    if name not in DATASETS:
        raise ValueError(f"data.dataset must be one of {DATASETS}, got {name!r}")
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
    if name == "folder":
        return ImageFolder(data_config.root, size, channels, split, data_config.skip_bad_images, blur)
    if name in ("mnist", "cifar10"):
        images, labels = _torchvision(name, data_config.root, split, size, data_config.download)
    else:
        images, labels = _embedded(name, size, channels, split)
    if images.shape[1] != channels:
        raise ValueError(f"data.num_channels is {channels} but {name} images have {images.shape[1]} channels")
    return TensorImageSet(gaussian_blur(images, blur) * 2.0 - 1.0, labels)
