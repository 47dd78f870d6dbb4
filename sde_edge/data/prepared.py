"""Image folders prepared once: every image decoded, checked and resized to the training resolution
into one uint8 array (``images.npy``, memory-mapped), with a manifest of what it was made from.

EDM's ``dataset_tool.py`` makes users convert a folder by hand before training; here the first run
on a folder (``data.dataset = folder``, ``data.prepare = true``) does it, or ``sde-edge
prepare-data --config ...`` does it ahead of a cluster job, so the same config works either way.
The cache lives under ``$SDE_EDGE_CACHE/prepared/`` (default ``~/.cache/sde_edge``), keyed by the
folder and the resolution; it is used only while it matches the folder: the manifest lists every
source file with its size and modification time, and a file added, removed or modified makes the
next open prepare it again. The array's CRC-32 is checked when a process first opens it (again
only if the file's inode, size or times change), so a truncated or bit-flipped file is rebuilt and
never trained on, and the train and test splits of one run read it once. A lock makes a second
process wait for the first one's preparation instead of writing beside it. Images are stored with 8 bits per channel (a
16-bit source loses its low bits); unreadable images are errors or skipped as ``data.skip_bad_images`` says.
"""
import hashlib
import json
import logging
import multiprocessing
import os
import zlib
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from sde_edge.data.image_folder import BAD_IMAGE_ERRORS, IMAGE_SUFFIXES, load_image
from sde_edge.data.image_sets import ImageSet, gaussian_blur
from sde_edge.storage.workdir import cache_root, waiting_lock

VERSION = 1
log = logging.getLogger(__name__)
_VERIFIED = set()  # (path, inode, size, mtime, ctime, manifest) of arrays whose checksum this process checked


def image_files(root):
    """Every image file under ``root``, in the order ImageFolder uses (sorted paths)."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def prepared_dir(root, size, channels):
    key = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return cache_root() / "prepared" / f"{key}-{size}px-{channels}ch"


def _listing(root, paths):
    return [[str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]


def _checksum(path):
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc


def _decode(job):
    """(index, uint8 array (C, H, W) or None, the error's text or None): one file, in a worker process."""
    index, path, size, channels = job
    try:
        image = load_image(path, size, channels)
    except BAD_IMAGE_ERRORS as error:
        return index, None, f"{type(error).__name__}: {error}"
    return index, np.rint(image.numpy() * 255.0).astype(np.uint8), None


def _why_stale(folder, manifest_path, wanted):
    """Why the prepared files cannot be used (None if they can)."""
    if not manifest_path.exists():
        return "not prepared yet"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        return f"unreadable manifest ({error})"
    for key, value in wanted.items():
        if manifest.get(key) != value:
            return f"the folder changed ({key})" if key == "files" else f"{key} differs"
    images = folder / "images.npy"
    try:
        array = np.load(images, mmap_mode="r")
    except (OSError, ValueError) as error:
        return f"images.npy unreadable ({error})"
    if list(array.shape) != manifest["shape"]:
        return "images.npy is damaged (shape)"
    stat = images.stat()
    seen = (str(images), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, manifest["crc32"])
    if seen not in _VERIFIED:
        if _checksum(images) != manifest["crc32"]:
            return "images.npy is damaged (checksum)"
        _VERIFIED.add(seen)
    return None


def prepare(root, size, channels, *, skip_bad_images=False, workers=None, progress=True):
    """The prepared folder of ``root`` at ``size`` px: (uint8 array (N, C, size, size) memory-mapped,
    the N source paths kept), prepared now if it is missing, stale or damaged."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data.root: image folder {root} does not exist")
    paths = image_files(root)
    if not paths:
        raise ValueError(f"data.root: image folder {root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    folder = prepared_dir(root, size, channels)
    manifest_path = folder / "manifest.json"
    wanted = {"version": VERSION, "root": str(root.resolve()), "size": size, "channels": channels,
              "skip_bad_images": skip_bad_images, "files": _listing(root, paths)}
    with waiting_lock(folder / ".lock"):
        reason = _why_stale(folder, manifest_path, wanted)
        if reason is not None:
            log.info("preparing %s at %d px into %s: %s", root, size, folder, reason)
            _build(folder, paths, wanted, workers, progress)
        manifest = json.loads(manifest_path.read_text())
    kept = [root / wanted["files"][i][0] for i in manifest["kept"]]
    return np.load(folder / "images.npy", mmap_mode="r"), kept


def _build(folder, paths, wanted, workers, progress):
    size, channels = wanted["size"], wanted["channels"]
    jobs = [(i, p, size, channels) for i, p in enumerate(paths)]
    decoded, skipped = {}, []
    workers = workers or os.cpu_count() or 1
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        results = pool.imap_unordered(_decode, jobs, chunksize=16)
        for index, array, error in tqdm(results, total=len(jobs), desc=f"preparing {len(jobs)} images",
                                        disable=not progress):
            if error is None:
                decoded[index] = array
                continue
            if not wanted["skip_bad_images"]:
                raise ValueError(f"data.root: cannot read image {paths[index]} ({error}); "
                                 "set data.skip_bad_images=true to skip it")
            log.warning("skipping unreadable image %s (%s)", paths[index], error)
            skipped.append([wanted["files"][index][0], error])
    if not decoded:
        raise ValueError(f"data.root: no readable images in {wanted['root']} ({len(skipped)} skipped)")
    kept = sorted(decoded)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".images.{os.getpid()}.npy"
    array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(len(kept), channels, size, size))
    for row, index in enumerate(kept):
        array[row] = decoded[index]
    array.flush()
    del array
    crc = _checksum(partial)
    os.replace(partial, folder / "images.npy")
    manifest = {**wanted, "kept": kept, "skipped": skipped, "shape": [len(kept), channels, size, size], "crc32": crc}
    temporary = folder / f".manifest.{os.getpid()}.json"
    temporary.write_text(json.dumps(manifest))
    os.replace(temporary, folder / "manifest.json")


class PreparedImageSet(ImageSet):
    """A prepared folder (``prepare``) as images in [-1, 1]: rows of the uint8 array, read on demand,
    blurred like ImageFolder when ``blur_sigma > 0``."""

    def __init__(self, array, paths, blur_sigma=0.0, rows=None):
        self.array, self.blur_sigma = array, blur_sigma
        self.rows = np.arange(len(array)) if rows is None else np.asarray(rows)
        self.paths = [paths[i] for i in self.rows] if rows is not None else list(paths)
        self._all_paths = paths

    def __len__(self):
        return len(self.rows)

    def batch(self, indices):
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        order = np.argsort(rows)  # ascending reads from the memory map, then back to the asked order
        images = np.empty((len(rows),) + self.array.shape[1:], dtype=np.uint8)
        images[order] = self.array[rows[order]]
        x = torch.from_numpy(images).float() / 255.0
        return gaussian_blur(x, self.blur_sigma) * 2.0 - 1.0

    def __getitem__(self, index):
        return self.batch([index])[0]

    def subset(self, indices):
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        return PreparedImageSet(self.array, self._all_paths, self.blur_sigma, rows)
