"""sde-edge train --config configs/X.py --workdir DIR [--config.training.batch_size=8 ...]

Trains (or resumes) a score model; also runs under ``torchrun --nproc_per_node=K -m sde_edge.cli train``.
At the end it writes a sample grid, the loss curve and the forward-process figure.
"""
import os
import sys

import torch
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file (configs/*.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder: checkpoints/, samples/, metrics.csv.")
_ACCEPT = flags.DEFINE_bool("accept_config_changes", False, "Resume even if the config differs from the checkpoint's.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    from sde_edge.data import load_dataset
    from sde_edge.figures import forward_process_figure, plot_loss_curve, save_grid
    from sde_edge.restore import load_run
    from sde_edge.sampling import sample
    from sde_edge.sde import VPSDE
    from sde_edge.train import ConfigMismatchError, NonFiniteLossError, train

    config = _CONFIG.value
    try:
        result = train(config, _WORKDIR.value, accept_config_changes=_ACCEPT.value, progress=_PROGRESS.value)
    except (ConfigMismatchError, NonFiniteLossError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    run = load_run(result.workdir)
    c = run.config
    shape = (c.sampling.num_samples, c.data.num_channels, c.data.image_size, c.data.image_size)
    samples = sample(c.sampling.method, run.model, run.sde, shape, steps=c.sampling.steps, grid=c.sampling.grid,
                     generator=torch.Generator().manual_seed(c.seed), progress=_PROGRESS.value).samples
    data = load_dataset(c.data, "train")
    example = data[:1] if isinstance(data, torch.Tensor) else data[0][None]
    processes = {"isotropic": VPSDE(c.diffusion), f"edge ({c.diffusion.tau})": run.sde}
    outputs = {
        "samples": save_grid(samples, result.workdir / "samples.png"),
        "loss curve": plot_loss_curve(result.workdir / "metrics.csv", result.workdir / "loss_curve.png"),
        "forward process": forward_process_figure(example, processes, result.workdir / "forward_process.png"),
    }
    print(f"trained {result.step} steps; checkpoint {result.checkpoint}")
    for name, path in outputs.items():
        print(f"{name}: {path}")
