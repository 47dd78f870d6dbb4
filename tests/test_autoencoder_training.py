"""sde-edge train-autoencoder on a tiny first stage: a run stopped and resumed trains exactly as one
that was not, and what it writes at the end can be loaded and encodes to unit-std latents."""
from pathlib import Path

import torch

from helpers import ROOT
from sde_edge.config import load_config
from sde_edge.latent.autoencoder_config import validate_autoencoder_config
from sde_edge.latent.autoencoder_training import train_autoencoder
from sde_edge.storage.checkpoint import checkpoint_paths, load_checkpoint


def _config(n_iters):
    config = load_config(ROOT / "configs" / "latent" / "shapes64_autoencoder.py")
    config.data.dataset, config.data.image_size = "digits", 16
    config.autoencoder.block_out_channels, config.autoencoder.num_groups = (8, 8), 4
    t = config.training
    t.batch_size, t.n_iters, t.warmup, t.log_freq, t.eval_freq, t.checkpoint_freq = 8, n_iters, 6, 2, 4, 3
    config.eval.batch_size, config.eval.scale_images, config.eval.psnr_images = 32, 64, 32
    return validate_autoencoder_config(config)


def _weights(workdir):
    return load_checkpoint(checkpoint_paths(Path(workdir) / "checkpoints")[-1])["model"]


def test_a_resumed_autoencoder_training_equals_an_uninterrupted_one(tmp_path):
    whole = train_autoencoder(_config(8), tmp_path / "whole", progress=False)
    train_autoencoder(_config(5), tmp_path / "parts", progress=False)  # stops inside the warmup, off a checkpoint step
    parts = train_autoencoder(_config(8), tmp_path / "parts", progress=False)
    assert whole["step"] == parts["step"] == 8
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "parts")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert whole["scale_factor"] == parts["scale_factor"] and whole["test_psnr"] == parts["test_psnr"]
    # a ninth step would have moved the weights: the comparison above can tell runs apart
    train_autoencoder(_config(9), tmp_path / "parts", progress=False)
    c = _weights(tmp_path / "parts")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_the_first_stage_it_writes_loads_and_scales_its_latents_to_unit_std(tmp_path):
    from sde_edge.data import load_dataset
    from sde_edge.latent.first_stage import load_first_stage

    result = train_autoencoder(_config(4), tmp_path, progress=False)
    stage = load_first_stage(result["folder"])
    images = load_dataset(_config(4).data, "train").first(64)
    latents = stage.encode(images)
    assert latents.shape == (64, 4, 8, 8)
    assert abs(float(latents.std()) - 1.0) < 1e-3  # the scaling factor was measured on these 64 images
    assert torch.isfinite(torch.tensor(result["test_psnr"])) and (tmp_path / "reconstructions.png").is_file()
