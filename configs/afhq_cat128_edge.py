"""Edge-preserving diffusion on AFHQ-Cat 128x128 at the paper's scale (its Appendix E: T = 750
for this dataset, batch 64, 1000 epochs), for GPUs. An image folder (data.root: AFHQ's train/cat).

    torchrun --nproc_per_node=8 -m sde_edge.cli train --config configs/afhq_cat128_edge.py \\
        --workdir runs/afhq_cat128_edge --config.data.root=/data/afhq/train/cat
    sde-edge eval-samples --workdir runs/afhq_cat128_edge --n 5000 --features inception
"""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("celeba64_edge.py"))
    config.data.image_size = 128
    config.diffusion.num_steps = 750
    config.model.ch_mult = (1, 1, 2, 2, 4)
    config.model.attn_resolutions = (16,)
    config.training.n_iters = 80_000  # ~1000 epochs of AFHQ-Cat's 5,153 training cats at batch 64
    config.training.keep_every = 10_000
    config.sampling.steps = 750
    config.eval.num_samples = 5_000
    return config
