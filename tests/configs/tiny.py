"""digits_edge.py shrunk for tests: 8x8 digits, a tiny UNet, no snapshot sampling."""
from pathlib import Path

from sde_edge.config import load_config


def get_config():
    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "digits_edge.py")
    config.device = "cpu"
    config.data.image_size = 8
    config.model.nf = 8
    config.model.ch_mult = (1, 2)
    config.model.attn_resolutions = ()
    config.model.num_groups = 4
    config.training.batch_size = 16
    config.training.n_iters = 20
    config.training.log_freq = 5
    config.training.snapshot_freq = 5
    config.training.snapshot_samples = 0
    config.training.checkpoint_freq = 5
    config.training.eval_freq = 5
    config.training.keep_checkpoints = 10
    config.eval.batch_size = 16
    config.sampling.steps = 5
    config.sampling.num_samples = 4
    return config
