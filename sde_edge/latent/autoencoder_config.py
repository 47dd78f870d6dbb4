"""The config of ``sde-edge train-autoencoder``: data (as in a training config), autoencoder,
training, eval; checked in one pass like ``validate_config``."""
from sde_edge.config import DATA_RULES
from sde_edge.devices import resolve_device
from sde_edge.fields import BOOL, INT_TUPLE, check, integer, number

AUTOENCODER_RULES = {"block_out_channels": INT_TUPLE, "latent_channels": integer(1), "layers_per_block": integer(1),
                     "num_groups": integer(1), "attention": BOOL}
TRAINING_RULES = {"batch_size": integer(1), "n_iters": integer(1), "lr": number(0, low_open=True),
                  "warmup": integer(0), "grad_clip": number(0), "kl_weight": number(0), "edge_weight": number(0),
                  "log_freq": integer(1), "eval_freq": integer(0), "checkpoint_freq": integer(1),
                  "keep_checkpoints": integer(1), "max_skipped_steps": integer(1), "divergence_factor": number(0)}
EVAL_RULES = {"batch_size": integer(1), "scale_images": integer(2), "psnr_images": integer(1)}


def validate_autoencoder_config(config):
    for section in ("data", "autoencoder", "training", "eval"):
        if section not in config:
            raise ValueError(f"config.{section} is missing from the autoencoder config")
    if not (isinstance(config.get("seed"), int) and config.seed >= 0):
        raise ValueError(f"seed must be an integer >= 0, got {config.get('seed')!r}")
    resolve_device(config.get("device", "auto"), field="device")
    check(config.data, {k: v for k, v in DATA_RULES.items() if k in config.data}, "data")
    check(config.autoencoder, AUTOENCODER_RULES, "autoencoder")
    check(config.training, TRAINING_RULES, "training")
    check(config.eval, EVAL_RULES, "eval")
    a = config.autoencoder
    factor = 2 ** (len(a.block_out_channels) - 1)
    if config.data.image_size % factor:
        raise ValueError(f"data.image_size={config.data.image_size} must be divisible by the downsampling factor "
                         f"{factor} of autoencoder.block_out_channels={tuple(a.block_out_channels)}")
    if any(c % a.num_groups for c in a.block_out_channels):
        raise ValueError(f"autoencoder.num_groups={a.num_groups} must divide every autoencoder.block_out_channels")
    return config
