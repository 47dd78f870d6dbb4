"""Edge-preserving diffusion on CelebA 64x64 at the paper's scale (its Appendix E), for a GPU.

An image folder (data.root: e.g. CelebA's aligned faces, center-cropped to 64x64 by the loader),
batch 64, T = 500 steps, Adam, a UNet of DDPM's CIFAR/CelebA size (~35 M parameters; the paper
uses IHDM's UNet). Train with torchrun and measure with Inception FID:

    torchrun --nproc_per_node=4 -m sde_edge.cli train --config configs/celeba64_edge.py \\
        --workdir runs/celeba64_edge --config.data.root=/data/celeba/img_align_celeba
    sde-edge eval-samples --workdir runs/celeba64_edge --n 10000 --features inception
"""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("default.py"))
    config.data.dataset = "folder"
    config.data.image_size = 64
    config.data.num_channels = 3
    config.data.skip_bad_images = True
    config.diffusion.num_steps = 500
    config.diffusion.tau = "linear"
    model = config.model
    model.nf = 128
    model.ch_mult = (1, 2, 2, 2)
    model.num_res_blocks = 2
    model.attn_resolutions = (16,)
    model.dropout = 0.1
    model.num_groups = 32
    model.ema_rate = 0.9999
    training = config.training
    training.batch_size = 64
    training.n_iters = 1_300_000  # ~475 epochs of CelebA's 162,770 training faces at batch 64, as the paper
    training.snapshot_freq = 10_000
    training.checkpoint_freq = 5_000
    training.checkpoint_minutes = 10.0
    training.keep_every = 100_000
    training.eval_freq = 5_000
    training.log_freq = 100
    # the usual GPU choices, off by default because none pays on a CPU; together they pay for this
    # network on an H100, channels-last alone does not (docs/benchmarks.md, "On a GPU")
    training.precision = "bf16"
    training.compile = True
    model.channels_last = True
    config.optim.fused = True
    config.data.num_workers = 4  # loader threads over the prepared folder (data.prepare, the default)
    config.optim.lr = 1e-4  # the paper's pixel-space value is not legible in our copy; DDPM's CelebA-HQ rate
    config.optim.warmup = 5_000
    config.sampling.steps = 500
    config.sampling.num_samples = 64
    config.eval.batch_size = 256
    config.eval.num_samples = 10_000
    return config
