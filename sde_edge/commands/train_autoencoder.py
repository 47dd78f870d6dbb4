"""sde-edge train-autoencoder --config configs/latent/shapes64_autoencoder.py --workdir DIR

Trains (or resumes) the first stage of latent diffusion; Ctrl-C or SIGTERM checkpoints and exits,
the same command resumes. At the end it writes DIR/first_stage/ (the weights, diffusers' config and
the scaling factor), DIR/reconstructions.png (test images above their reconstructions) and prints
the test split's reconstruction PSNR. Point a training config at it with
``--config.data.latent.autoencoder=DIR``.
"""
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Autoencoder config (configs/latent/*_autoencoder.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder: checkpoints/, first_stage/, metrics.csv.")
_ACCEPT = flags.DEFINE_bool("accept_config_changes", False, "Resume even if the config differs from the checkpoint's.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
_THREADS = flags.DEFINE_integer("threads", None, "CPU threads for torch (default: all cores).")


def main():
    from sde_edge.commands.common import config_from_flag
    from sde_edge.devices import set_cpu_threads

    config = config_from_flag(_CONFIG)
    if config is None or _WORKDIR.value is None:
        raise ValueError("--config and --workdir are required")
    set_cpu_threads(_THREADS.value)
    from sde_edge.latent.autoencoder_config import validate_autoencoder_config
    from sde_edge.latent.autoencoder_training import train_autoencoder

    result = train_autoencoder(validate_autoencoder_config(config), _WORKDIR.value,
                               accept_config_changes=_ACCEPT.value, progress=_PROGRESS.value)
    print(f"trained {result['step']} steps; first stage {result['folder']} (scaling factor "
          f"{result['scale_factor']:.4f}); test PSNR {result['test_psnr']:.2f} dB on {result['images']} images; "
          f"reconstructions: {result['grid']}")
