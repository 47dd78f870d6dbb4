"""What the subcommands share: checks before any work."""
from pathlib import Path


def config_from_flag(holder):
    """The config a ``DEFINE_config_file`` flag names, with its ``--config.*`` overrides, or None;
    a missing file or a folder is a one-line error naming it (ml_collections' own is a traceback)."""
    from absl import flags
    from ml_collections import config_flags

    name = config_flags.get_config_filename(flags.FLAGS[holder.name])
    if name is None:
        return None
    path = Path(name.split(":")[0])
    if not path.exists():
        raise ValueError(f"--{holder.name}: {path} does not exist (a config file such as configs/digits_edge.py)")
    if not path.is_file():
        raise ValueError(f"--{holder.name}: {path} is a folder, not a config file such as configs/digits_edge.py")
    return holder.value


def open_run(workdir, device_name, out=None, out_is_folder=False):
    """(run, device, out): the run's newest verified checkpoint on the device, after checking that
    --workdir was given and that --out (a file's folder, or a folder) can be written, so nothing is
    computed before a mistake in the command line shows."""
    from sde_edge.devices import resolve_device
    from sde_edge.restore import load_run
    from sde_edge.workdir import ensure_writable

    if workdir is None:
        raise ValueError("--workdir is required")
    device = resolve_device(device_name)
    if out is not None:
        out = Path(out)
        ensure_writable(out if out_is_folder else out.parent, "--out")
    return load_run(workdir, device=device), device, out
