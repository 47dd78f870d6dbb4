"""sde-edge train --config configs/X.py --workdir DIR [--config.training.batch_size=8 ...]

Trains (or resumes) a score model; also runs under ``torchrun --nproc_per_node=K -m sde_edge.cli train``.
Ctrl-C or SIGTERM finishes the step, writes a checkpoint and exits; the same command resumes.
At the end it writes a sample grid, the loss curve and the forward-process figure.
"""
import os

from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file (configs/*.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder: checkpoints/, samples/, metrics.csv.")
_ACCEPT = flags.DEFINE_bool("accept_config_changes", False, "Resume even if the config differs from the checkpoint's.")
_RESTART = flags.DEFINE_bool("restart", False, "Start afresh: existing checkpoints are renamed *.corrupt, not deleted.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
_THREADS = flags.DEFINE_integer("threads", None, "CPU threads for torch (default: cores / torchrun processes).")


def main():
    # imports inside main: torch and the library load only for this command (sde-edge --help stays fast)
    from sde_edge.commands.common import config_from_flag
    from sde_edge.devices import set_cpu_threads

    config = config_from_flag(_CONFIG)
    if config is None or _WORKDIR.value is None:
        raise ValueError("--config and --workdir are required")
    set_cpu_threads(_THREADS.value)
    from sde_edge.config import image_shape
    from sde_edge.figures import forward_process_figure, plot_loss_curve, save_grid
    from sde_edge.processes.edge import VPSDE
    from sde_edge.restore import load_run
    from sde_edge.rng import stream_generator
    from sde_edge.sampling import sample
    from sde_edge.training.trainer import train

    result = train(config, _WORKDIR.value, accept_config_changes=_ACCEPT.value, restart=_RESTART.value,
                   progress=_PROGRESS.value)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    run = load_run(result.workdir)
    c = run.config
    samples = sample(
        c.sampling.method,
        run.model,
        run.sde,
        image_shape(c, c.sampling.num_samples),
        steps=c.sampling.steps,
        grid=c.sampling.grid,
        generator=stream_generator(c.seed, "final_samples"),
        progress=_PROGRESS.value,
    ).samples
    samples = run.decode(samples)  # a latent run's samples are latents
    from sde_edge.data.datasets import load_dataset

    example = load_dataset(c.data, "train").first(1)
    processes = {"isotropic": VPSDE(c.diffusion), f"{c.diffusion.process} ({c.diffusion.tau})": run.sde}
    outputs = {
        "samples": save_grid(samples, result.workdir / "samples.png"),
        "loss curve": plot_loss_curve(result.workdir / "metrics.csv", result.workdir / "loss_curve.png"),
        "forward process": forward_process_figure(example, processes, result.workdir / "forward_process.png"),
    }
    print(f"trained {result.step} steps; checkpoint {result.checkpoint}")
    for name, path in outputs.items():
        print(f"{name}: {path}")
