"""What the subcommands that read a trained run share: checks before any work."""
from pathlib import Path


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
