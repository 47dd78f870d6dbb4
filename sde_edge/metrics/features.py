"""Feature extractors for the distances: clean-fid's Inception-v3, or a dataset's classifier.

``--features`` picks one: ``inception`` (the field's FID: clean-fid's TorchScript Inception-v3,
``mode="clean"`` resizes with PIL bicubic to 299, ``legacy_tensorflow`` inside the network),
``classifier`` (the 128-d features of ``sde_edge.metrics.classifier``, for ``digits`` and
``shapes``), or ``auto`` (Inception when its weights are on disk or can be fetched, else the
classifier). Numbers from different extractors are never comparable, so every report names
its extractor.

The Inception weights are read from $SDE_EDGE_INCEPTION or ``--inception_path`` (default
/tmp/inception-2015-12-05.pt, where clean-fid keeps them). A missing file is fetched once (from
$SDE_EDGE_INCEPTION_URL if set, e.g. a mirror) with a timeout into a temp file and renamed into
place; offline, the error says in one line where to put the file, and nothing is left half-written.
"""
import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from sde_edge.metrics.classifier import LABELLED_EMBEDDED, classifier_path, load_classifier

INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_MODES = ("clean", "legacy_tensorflow", "legacy_pytorch")
FEATURES = ("auto", "inception", "classifier")
log = logging.getLogger(__name__)


class InceptionUnavailable(ValueError):
    """The Inception weights are neither on disk nor fetchable."""


def inception_path(path=None):
    return Path(path or os.environ.get("SDE_EDGE_INCEPTION") or Path(tempfile.gettempdir()) / INCEPTION_FILE)


def fetch_inception(path, timeout=20):
    """Download the weights to ``path`` (temp file + rename); InceptionUnavailable if that fails."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        url = os.environ.get("SDE_EDGE_INCEPTION_URL", INCEPTION_URL)
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as handle:
            shutil.copyfileobj(response, handle)
        os.replace(tmp, path)
    except (OSError, ValueError) as error:
        tmp.unlink(missing_ok=True)
        raise InceptionUnavailable(
            f"Inception weights not found at {path} and not fetchable ({getattr(error, 'reason', error)}): "
            f"download {INCEPTION_URL} there, or set SDE_EDGE_INCEPTION (or --inception_path) to a copy, "
            "or use --features classifier") from None
    return path


def _images_0_255(images):
    """[-1, 1] -> the 256 levels as floats in [0, 255], three channels (grey is repeated)."""
    pixels = torch.round((images.float().clamp(-1, 1) + 1) * 127.5)
    return pixels.expand(-1, 3, -1, -1) if pixels.shape[1] == 1 else pixels


class InceptionFeatures:
    """clean-fid's Inception-v3 pool features (2048-d) of images in [-1, 1]."""

    name = "inception"

    def __init__(self, mode="clean", path=None, device="cpu", fetch=True, batch_size=64):
        from cleanfid.inception_torchscript import InceptionV3W  # costly to import: only when used
        from cleanfid.resize import build_resizer

        if mode not in INCEPTION_MODES:
            raise ValueError(f"--inception_mode must be one of {INCEPTION_MODES}, got {mode!r}")
        path = inception_path(path)
        if not path.is_file():
            if not fetch:
                raise InceptionUnavailable(f"Inception weights not found at {path}")
            fetch_inception(path)
        folder = path.parent
        if path.name != INCEPTION_FILE:  # clean-fid's wrapper reads the file by its own name
            folder = Path(tempfile.mkdtemp())
            (folder / INCEPTION_FILE).symlink_to(path.resolve())
        self.model = (
            InceptionV3W(str(folder), download=False, resize_inside=mode == "legacy_tensorflow").to(device).eval()
        )
        self.resize = build_resizer(mode)
        self.mode, self.device, self.batch_size = mode, device, batch_size
        self.label = f"inception ({mode})"

    def _prepare(self, batch):
        if self.mode == "legacy_tensorflow":
            return batch
        resized = [self.resize(image.permute(1, 2, 0).numpy()) for image in batch]
        return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).float()

    @torch.no_grad()
    def __call__(self, images, progress=True, desc="inception features"):
        pixels = _images_0_255(images.cpu())
        chunks = []
        for start in tqdm(range(0, len(pixels), self.batch_size), desc=desc, disable=not progress, leave=False):
            batch = self._prepare(pixels[start:start + self.batch_size]).to(self.device)
            chunks.append(self.model(batch).double().cpu().numpy())
        return np.concatenate(chunks)


class ClassifierFeatures:
    """The 128-d penultimate features (and softmax) of a labelled dataset's classifier."""

    name = "classifier"

    def __init__(self, dataset, image_size, channels, progress=True):
        self.model, self.accuracy = load_classifier(dataset, image_size, channels, progress=progress)
        # the weights' digest names the feature space: a classifier retrained from the same seed on
        # another thread count or build has the same accuracy and other FDs
        weights = hashlib.sha256(classifier_path(dataset, image_size, channels).read_bytes()).hexdigest()[:12]
        self.label = (f"classifier ({dataset}, {image_size}px, held-out accuracy {self.accuracy:.4f}, "
                      f"weights {weights})")
        self.dataset = dataset

    @torch.no_grad()
    def __call__(self, images, progress=True, desc="classifier features"):
        return np.concatenate([self.model.features(chunk.float().cpu().clamp(-1, 1)).double().numpy()
                               for chunk in tqdm(images.split(512), desc=desc, disable=not progress, leave=False)])

    @torch.no_grad()
    def probabilities(self, images):
        return torch.cat([self.model(chunk.float().cpu().clamp(-1, 1)).softmax(1) for chunk in images.split(512)])


def build_features(name, data_config, *, inception_mode="clean", inception_weights=None, device="cpu", progress=True):
    """The extractor ``--features`` names; ``auto`` is Inception if available, else the classifier."""
    if name not in FEATURES:
        raise ValueError(f"--features must be one of {FEATURES}, got {name!r}")
    if name == "auto":
        try:
            return InceptionFeatures(inception_mode, inception_weights, device)
        except InceptionUnavailable as error:
            if data_config.dataset not in LABELLED_EMBEDDED:
                raise
            log.warning("%s; using the %s classifier's features instead", error, data_config.dataset)
            name = "classifier"
    if name == "inception":
        return InceptionFeatures(inception_mode, inception_weights, device)
    return ClassifierFeatures(data_config.dataset, data_config.image_size, data_config.num_channels, progress=progress)
