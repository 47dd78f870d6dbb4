"""The first stage for 64 px shapes: f = 4 (64 x 64 x 1 -> 16 x 16 x 4), KL weight 1e-6 as in LDM,
small and without attention so that it trains on one CPU core (its cost: docs/latent.md)."""
from pathlib import Path

import ml_collections

from sde_edge.config import load_config


def get_config():
    base = load_config(Path(__file__).parents[1] / "default.py")
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.device = "auto"
    config.data = base.data
    config.data.dataset = "shapes"
    config.data.image_size = 64
    config.data.num_channels = 1

    config.autoencoder = ae = ml_collections.ConfigDict()
    ae.block_out_channels = (16, 32, 32)  # three levels: f = 4
    ae.latent_channels = 4
    ae.layers_per_block = 1
    ae.num_groups = 16
    ae.attention = False  # the mid block's self-attention: most of a CPU step at 64 px

    config.training = training = ml_collections.ConfigDict()
    training.batch_size = 32
    training.n_iters = 4000
    training.lr = 1e-3
    training.warmup = 100
    training.grad_clip = 1.0
    training.kl_weight = 1e-6
    training.edge_weight = 0.5  # L1 of the Sobel gradients: stands in for LDM's perceptual and adversarial terms
    training.log_freq = 50
    training.eval_freq = 250
    training.checkpoint_freq = 250
    training.keep_checkpoints = 2
    training.max_skipped_steps = 20
    training.divergence_factor = 100.0

    config.eval = evaluate = ml_collections.ConfigDict()
    evaluate.batch_size = 250
    evaluate.scale_images = 4000  # train images whose latents give the scaling factor
    evaluate.psnr_images = 2000  # the whole test split
    return config
