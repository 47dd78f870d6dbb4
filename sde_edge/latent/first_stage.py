"""The first stage of latent diffusion (Rombach et al. 2022): a KL-regularised autoencoder.

The network is diffusers' ``AutoencoderKL`` (the class Stable Diffusion's VAE is published in), so a
first stage is either a ``sde-edge train-autoencoder`` workdir (its ``first_stage/`` folder) or any
diffusers ``AutoencoderKL`` folder on disk (``from_pretrained(local_path)``, e.g. the ``vae/`` folder
of a Stable Diffusion download). ``data.latent.autoencoder`` names one; every error about it is one
line that names that field and what was expected.

A trained first stage keeps, beside diffusers' ``config.json`` and weights, ``sde_edge.json``: the
resolution and channels it was trained for, the SHA-256 of its weights, and the **scaling factor**
(1 / std of the posterior means of the train split, LDM's ``scale_factor``). Latents are
``z = scale * mean(q(z | x))`` (the posterior mean: see ``encode``). Decoded images are in [-1, 1].
"""
import hashlib
import json
import os
import shutil
from functools import lru_cache
from pathlib import Path

import torch

FIELD = "data.latent.autoencoder"
FIRST_STAGE = "first_stage"  # the folder inside a train-autoencoder workdir
MANIFEST = "sde_edge.json"
WEIGHTS = "diffusion_pytorch_model.safetensors"


class AutoencoderError(ValueError):
    """A first stage that is missing, unreadable or does not fit the data (one line, exit 2)."""


def build_autoencoder(ae_config, channels, image_size):
    """A fresh ``AutoencoderKL`` of ``config.autoencoder``: len(block_out_channels) levels, so the
    downsampling factor is f = 2 ** (levels - 1)."""
    from diffusers import AutoencoderKL  # about 5 s to import: only where a first stage is used

    levels = len(ae_config.block_out_channels)
    return AutoencoderKL(
        in_channels=channels, out_channels=channels, latent_channels=ae_config.latent_channels,
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(ae_config.block_out_channels), layers_per_block=ae_config.layers_per_block,
        norm_num_groups=ae_config.num_groups, sample_size=image_size, mid_block_add_attention=ae_config.attention,
    )


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_first_stage(vae, folder, *, scale_factor, image_size, channels, step, data):
    """Write the weights, diffusers' config and our manifest into ``folder`` (replaced atomically:
    written beside it, then renamed, so a crash leaves the previous first stage whole)."""
    folder = Path(folder)
    temp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(temp, ignore_errors=True)
    vae.save_pretrained(temp, safe_serialization=True)
    manifest = dict(scale_factor=float(scale_factor), image_size=int(image_size), channels=int(channels),
                    factor=downsampling(vae), latent_channels=int(vae.config.latent_channels), step=int(step),
                    data=data, weights_sha256=file_digest(temp / WEIGHTS))
    (temp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    old = folder.with_name(f".{folder.name}.old{os.getpid()}")
    if folder.exists():
        folder.rename(old)
    temp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
    return folder


def downsampling(vae):
    return 2 ** (len(vae.config.block_out_channels) - 1)


def first_stage_folder(path):
    """The diffusers folder ``path`` names: a train-autoencoder workdir's ``first_stage/`` or itself."""
    path = Path(path).expanduser()
    if (path / FIRST_STAGE / "config.json").is_file():
        return path / FIRST_STAGE
    if (path / "config.json").is_file():
        return path
    raise AutoencoderError(f"{FIELD}={str(path)!r} names no autoencoder: expected a `sde-edge train-autoencoder` "
                           f"workdir (with {FIRST_STAGE}/) or a diffusers AutoencoderKL folder (config.json + weights)")


def describe(path):
    """What the first stage at ``path`` is, from its files alone (no weights loaded): a dict with
    channels, factor, latent_channels, image_size (None for a pretrained one), scale_factor, digest."""
    folder = first_stage_folder(path)
    return dict(_described(str(folder), *_stamps(folder)))


def _stamps(folder):
    """What ``describe`` caches on: every file's size and modification time (a rewrite is a new entry)."""
    return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))


@lru_cache(maxsize=16)
def _described(folder, *stamps):
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
        manifest = json.loads((folder / MANIFEST).read_text()) if (folder / MANIFEST).is_file() else {}
        described = dict(channels=int(config["in_channels"]), latent_channels=int(config["latent_channels"]),
                         factor=2 ** (len(config["block_out_channels"]) - 1),
                         image_size=manifest.get("image_size"),
                         scale_factor=float(manifest.get("scale_factor", config.get("scaling_factor", 1.0))),
                         digest=manifest.get("weights_sha256"))
    except (ValueError, KeyError, TypeError) as error:
        raise AutoencoderError(f"{FIELD}: {folder} has an unreadable config.json or {MANIFEST} ({error})") from None
    weights = sorted(p for p in folder.iterdir() if p.name.startswith("diffusion_pytorch_model"))
    if not weights:
        raise AutoencoderError(f"{FIELD}: {folder} holds no weights (diffusion_pytorch_model.safetensors)")
    if described["digest"] is None:  # a pretrained folder: its weights' digest is its identity
        described["digest"] = hashlib.sha256("".join(file_digest(p) for p in weights).encode()).hexdigest()
    elif not (folder / WEIGHTS).is_file() or file_digest(folder / WEIGHTS) != described["digest"]:
        raise AutoencoderError(f"{FIELD}: the weights in {folder} changed after they were written (their SHA-256 no "
                               f"longer matches {MANIFEST}); train the autoencoder again or restore its files")
    return described


def check_fits(path, channels, image_size):
    """``describe(path)``, or one line saying why this first stage cannot encode these images."""
    d = describe(path)
    if d["channels"] != channels:
        raise AutoencoderError(f"{FIELD}: the autoencoder at {path} encodes {d['channels']}-channel images but "
                               f"data.num_channels is {channels}")
    if d["image_size"] is not None and d["image_size"] != image_size:
        raise AutoencoderError(f"{FIELD}: the autoencoder at {path} was trained (and its scaling factor measured) at "
                               f"{d['image_size']} px but data.image_size is {image_size}")
    if image_size % d["factor"]:
        raise AutoencoderError(f"{FIELD}: data.image_size={image_size} must be divisible by the autoencoder's "
                               f"downsampling factor {d['factor']}")
    return d


def model_space(data_config):
    """(channels, size) of what the score model sees: the images, or the latents of
    ``data.latent.autoencoder`` (read from the first stage's files, no weights loaded)."""
    latent = data_config.get("latent")
    path = latent.get("autoencoder") if latent is not None else None
    if path is None:
        return data_config.num_channels, data_config.image_size
    d = check_fits(path, data_config.num_channels, data_config.image_size)
    return d["latent_channels"], data_config.image_size // d["factor"]


class FirstStage:
    """A loaded first stage: ``encode`` images in [-1, 1] to scaled latents, ``decode`` them back."""

    def __init__(self, vae, scale_factor, digest):
        self.vae, self.scale_factor, self.digest = vae.eval().requires_grad_(False), float(scale_factor), digest
        self.factor, self.latent_channels = downsampling(vae), int(vae.config.latent_channels)

    @property
    def device(self):
        return next(self.vae.parameters()).device

    def latent_shape(self, shape):
        n, _, h, w = shape
        return (n, self.latent_channels, h // self.factor, w // self.factor)

    @torch.no_grad()
    def encode(self, images, batch_size=256):
        """Scaled posterior means. The mean, not a sample: the edge-preserving process computes
        sigma from the clean latent's edge map, which a resampled z would change every step; with the
        small KL weight the posterior std is far below the forward noise at every t the loss sees."""
        chunks = [self.vae.encode(chunk.to(self.device)).latent_dist.mean for chunk in images.split(batch_size)]
        return torch.cat(chunks) * self.scale_factor

    @torch.no_grad()
    def decode(self, latents, batch_size=64):
        """Images in [-1, 1], decoded ``batch_size`` latents at a time (1,000 samples fit any device)."""
        chunks = [self.vae.decode(chunk.to(self.device) / self.scale_factor).sample.clamp(-1, 1)
                  for chunk in latents.split(batch_size)]
        return torch.cat(chunks)


def load_first_stage(path, device="cpu", channels=None, image_size=None):
    """The first stage at ``path`` (see the module docstring), checked against the images it will
    encode when ``channels`` and ``image_size`` are given, and against its own recorded digest."""
    described = check_fits(path, channels, image_size) if channels is not None else describe(path)
    folder = first_stage_folder(path)
    from diffusers import AutoencoderKL

    try:
        vae = AutoencoderKL.from_pretrained(folder, local_files_only=True, low_cpu_mem_usage=False)  # no accelerate
    except Exception as error:  # truncated or foreign files: diffusers raises many kinds
        raise AutoencoderError(f"{FIELD}: the autoencoder in {folder} cannot be loaded "
                               f"({' '.join(str(error).split())[:200]})") from None
    return FirstStage(vae.to(device), described["scale_factor"], described["digest"])
