"""The data of a latent run: the dataset encoded once by its first stage, kept in a checked cache.

``data.latent.autoencoder`` makes any training config a latent one. Its split is encoded by the first
stage (the scaled posterior means: ``FirstStage.encode``) once, into ``$SDE_EDGE_CACHE/latents/``,
written atomically with a checksum like the shapes and prepared caches. The file's name is a digest
of the first stage's weights and of the data it encodes (the data section, and for an image folder
the size and modification time of every file), so a changed autoencoder or changed data is a new
cache, encoded afresh, and a damaged file is encoded again, never trained on.
"""
import hashlib
import json

import torch
from tqdm.auto import tqdm

from sde_edge.data import TensorImageSet, load_dataset
from sde_edge.data.prepared import image_files
from sde_edge.latent.first_stage import FIELD, AutoencoderError, check_fits, load_first_stage
from sde_edge.storage.checkpoint import cached_state
from sde_edge.storage.workdir import cache_root

_VERSION = 1
_NOT_DATA = ("latent", "num_workers", "prepare", "download", "random_flip")  # fields that leave the images alone


def latent_autoencoder(data_config):
    """The first stage a ``config.data`` section names, or None for a pixel-space run."""
    latent = data_config.get("latent")
    return latent.get("autoencoder") if latent is not None else None


def _data_identity(data_config):
    identity = {k: v for k, v in data_config.to_dict().items() if k not in _NOT_DATA}
    if data_config.dataset == "folder" and data_config.get("root"):
        identity["files"] = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in image_files(data_config.root)]
    return identity


def cache_path(data_config, split, digest):
    key = json.dumps({"autoencoder": digest, "data": _data_identity(data_config), "split": split, "v": _VERSION},
                     sort_keys=True, default=str)
    return cache_root() / "latents" / f"{split}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.pt"


@torch.no_grad()
def _encode(data_config, split, device, batch_size, progress):
    d = data_config
    stage = load_first_stage(latent_autoencoder(d), device, d.num_channels, d.image_size)
    images = load_dataset(d, split)
    starts = range(0, len(images), batch_size)
    chunks = [stage.encode(images.batch(range(s, min(s + batch_size, len(images)))), batch_size).cpu()
              for s in tqdm(starts, desc=f"encoding the {split} split", disable=not progress)]
    labels = images.labels if images.labels is not None else torch.zeros(0, dtype=torch.long)
    return {"latents": torch.cat(chunks), "labels": torch.as_tensor(labels), "autoencoder": stage.digest}


def training_images(data_config, split="train", device="cpu", batch_size=256, progress=True):
    """What a score model trains on: ``load_dataset``'s images, or their latents (see the module)."""
    path = latent_autoencoder(data_config)
    if path is None:
        return load_dataset(data_config, split)
    digest = check_fits(path, data_config.num_channels, data_config.image_size)["digest"]

    def use(state):
        if state["autoencoder"] != digest:
            raise KeyError("it was encoded by another autoencoder")
        labels = state["labels"] if len(state["labels"]) else None
        return TensorImageSet(state["latents"], labels)

    return cached_state(cache_path(data_config, split, digest),
                        lambda: _encode(data_config, split, device, batch_size, progress), use, "latent")


def first_stage_digest(data_config):
    """The SHA-256 of the weights of the run's first stage (None for a pixel-space run)."""
    path = latent_autoencoder(data_config)
    return None if path is None else check_fits(path, data_config.num_channels, data_config.image_size)["digest"]


def check_same_first_stage(saved, current, data_config, checkpoint):
    """A resumed latent run must see the first stage it was trained on: one line naming the field if not."""
    if saved is not None and saved != current:
        raise AutoencoderError(f"{FIELD}: the autoencoder at {latent_autoencoder(data_config)} is not the one "
                               f"{checkpoint} was trained on (weights sha256 {saved[:12]}... then, "
                               f"{(current or 'none')[:12]}... now); restore it, or start a new --workdir")


def first_stage_of(data_config, device="cpu"):
    """The run's loaded first stage, or None for a pixel-space run."""
    path = latent_autoencoder(data_config)
    return None if path is None else load_first_stage(path, device, data_config.num_channels, data_config.image_size)


def decoder_of(data_config, device="cpu"):
    """Samples -> images: the first stage's batched decoder, or the identity for a pixel-space run."""
    stage = first_stage_of(data_config, device)
    return (lambda samples: samples) if stage is None else stage.decode
