"""sde-edge prepare-data --config configs/X.py [--config.data.root=DIR] [--workers N]

Decodes, checks and resizes the config's image folder once into the prepared cache that training
then opens in well under a second (``sde_edge.data.prepared``), using every core, with progress. A
training run on a folder prepares it itself when it is missing or stale; this command does it
ahead of time, e.g. before a multi-GPU job.
"""
from absl import flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config file (configs/*.py).", lock_config=True)
_WORKERS = flags.DEFINE_integer("workers", None, "Decoding processes (default: every core).", lower_bound=1)


def main():
    # imports inside main: torch and the library load only for this command (sde-edge --help stays fast)
    import time

    from sde_edge.commands.common import config_from_flag
    from sde_edge.config import upgrade_config, validate_config
    from sde_edge.data.prepared import prepare, prepared_dir

    config = config_from_flag(_CONFIG)
    if config is None:
        raise ValueError("--config is required")
    config = validate_config(upgrade_config(config))
    d = config.data
    if d.dataset != "folder":
        raise ValueError(f"data.dataset is {d.dataset!r}: only image folders (data.dataset=folder) are prepared")
    started = time.perf_counter()
    array, paths = prepare(d.root, d.image_size, d.num_channels, skip_bad_images=d.skip_bad_images,
                           workers=_WORKERS.value)
    where = prepared_dir(d.root, d.image_size, d.num_channels)
    print(f"{len(paths)} images of {d.root} at {d.image_size} px ready in {where} ({array.nbytes / 2**20:.1f} MiB, "
          f"{time.perf_counter() - started:.1f} s)")
