"""What the subcommands share: the generation commands' flags and checks before any work."""
from dataclasses import dataclass
from pathlib import Path

from absl import flags


@dataclass(frozen=True)
class GenerationFlags:
    """The flags every command that samples from a run has (``sample``, ``sdedit``)."""

    workdir: flags.FlagHolder
    seed: flags.FlagHolder
    out: flags.FlagHolder
    batch_size: flags.FlagHolder
    device: flags.FlagHolder


def define_generation_flags(out_default, out_help):
    """--workdir, --seed, --out, --batch_size and --device (one command module is loaded at a time)."""
    return GenerationFlags(
        workdir=flags.DEFINE_string("workdir", None, "Run folder (or a checkpoint file)."),
        seed=flags.DEFINE_integer("seed", 0, "Seed.", lower_bound=0),
        out=flags.DEFINE_string("out", out_default, out_help),
        batch_size=flags.DEFINE_integer("batch_size", 256, "Samples per batch.", lower_bound=1),
        device=flags.DEFINE_string("device", "auto", "auto | cpu | cuda | cuda:K"),
    )


# The imports inside functions below are deliberate: a command module is loaded for `--help` too, and
# torch, ml_collections' flag parser and the library load only once the command runs.


def config_from_flag(holder):
    """The config a ``DEFINE_config_file`` flag names, with its ``--config.*`` overrides, or None;
    a missing file or a folder is a one-line error naming it (ml_collections' own is a traceback)."""
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


def open_run(workdir, device_name, out=None, out_is_folder=False, compile_backend=None):
    """(run, device, out): the run's newest verified checkpoint on the device (its network compiled
    with ``compile_backend`` if one is named), after checking that --workdir was given and that --out
    (a file's folder, or a folder) can be written, so nothing is computed before a mistake in the
    command line shows."""
    from sde_edge.devices import resolve_device
    from sde_edge.restore import load_run
    from sde_edge.storage.workdir import ensure_writable

    if workdir is None:
        raise ValueError("--workdir is required")
    device = resolve_device(device_name)
    if out is not None:
        out = Path(out)
        ensure_writable(out if out_is_folder else out.parent, "--out")
    return load_run(workdir, device=device, compile_backend=compile_backend), device, out
