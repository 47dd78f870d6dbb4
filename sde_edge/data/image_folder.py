"""Image folders: every image file under a root, decoded with its real range, resized and
centre-cropped; unreadable files and decompression bombs are errors that name them, or are
skipped and counted."""
import copy
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from sde_edge.data.image_sets import ImageSet, gaussian_blur, split_indices

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
log = logging.getLogger(__name__)


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
            image = image.resize(
                (max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.BICUBIC
            )
            left, top = (image.width - size) // 2, (image.height - size) // 2
            array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
            tensor = torch.from_numpy(array)
            return tensor[None] if channels == 1 else tensor.permute(2, 0, 1)
    # one channel of 16/32-bit or float data: resized in float, so no level is lost
    tensor = torch.from_numpy(np.array(wide, dtype=np.float32))[None, None]  # a writable copy (PIL's is read-only)
    scale = size / min(tensor.shape[-2:])
    height, width = max(size, round(tensor.shape[-2] * scale)), max(size, round(tensor.shape[-1] * scale))
    tensor = F.interpolate(tensor, size=(height, width), mode="bicubic", antialias=True, align_corners=False)[0]
    top, left = (height - size) // 2, (width - size) // 2
    tensor = tensor[:, top:top + size, left:left + size].clamp(0, 1)
    return tensor if channels == 1 else tensor.expand(3, -1, -1).clone()


BAD_IMAGE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
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
            except BAD_IMAGE_ERRORS as error:
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
