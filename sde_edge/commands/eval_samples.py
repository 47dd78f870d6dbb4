"""sde-edge eval-samples: FD, KID, precision/recall and per-band SWD of samples against a data split.

    sde-edge eval-samples --samples FILE.npz --config configs/X.py [--split test] --out DIR
    sde-edge eval-samples --workdir DIR [--n 1000 --sampler ddpm --steps 500 --seed 0] --out DIR

The first form reads array ``samples`` (N, C, H, W) in [-1, 1] (what ``sde-edge sample`` writes)
and takes the reference data from the config; the second samples the run's EMA model first
(saved as samples.npz beside the report; a killed run resumes from samples.partial/ there)
and takes the reference from the run's own config.
``--features`` chooses the feature space (auto: Inception if its weights are available, else
the dataset's classifier); every output names it. Writes metrics.json, samples.png and
swd_per_level.png into --out.
"""
from pathlib import Path

from absl import flags
from ml_collections import config_flags

from sde_edge.commands.sampler_flags import define_sampler_flags

_SAMPLES = flags.DEFINE_string("samples", None, "An .npz with array 'samples' (N, C, H, W) in [-1, 1].")
_CONFIG = config_flags.DEFINE_config_file("config", None, "Config naming the reference data (with --samples).")
_WORKDIR = flags.DEFINE_string("workdir", None, "A trained run: sample it, and take its data as the reference.")
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "test"], "The reference split.")
_N = flags.DEFINE_integer(
    "n", None, "Samples to draw with --workdir (default: the run's config.eval.num_samples).", lower_bound=1
)
_N_REFERENCE = flags.DEFINE_integer("n_reference", None, "Reference images (default: the whole split).", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the sampling and of the metrics' random subsets.", lower_bound=0)
_FEATURES = flags.DEFINE_enum("features", "auto", ["auto", "inception", "classifier"], "Feature space.")
_INCEPTION_MODE = flags.DEFINE_enum("inception_mode", "clean", ["clean", "legacy_tensorflow", "legacy_pytorch"],
                                    "clean-fid's resizing mode.")
_INCEPTION_PATH = flags.DEFINE_string("inception_path", None, "The Inception weights file (or $SDE_EDGE_INCEPTION).")
_OUT = flags.DEFINE_string("out", None, "Output folder (default: WORKDIR/eval_samples_SPLIT, or beside --samples).")
_DEVICE = flags.DEFINE_string("device", "auto", "auto | cpu | cuda | cuda:K")
_CHOSEN = define_sampler_flags()


def _load_samples(path):
    # imports inside: torch and the library load only when the command runs (sde-edge --help stays fast)
    import numpy as np
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--samples: {path} does not exist")
    try:
        with np.load(path) as archive:
            if "samples" not in archive:
                raise ValueError(f"--samples: {path} has no array 'samples' (it holds {sorted(archive.files)})")
            return torch.from_numpy(np.asarray(archive["samples"], dtype=np.float32))
    except (OSError, EOFError) as error:
        raise ValueError(f"--samples: {path} is not a readable .npz ({error})") from error


def main():
    # imports inside main: torch and the library load only for this command (sde-edge --help stays fast)
    import numpy as np

    from sde_edge.commands.common import config_from_flag
    from sde_edge.config import image_shape, validate_config
    from sde_edge.data.datasets import load_dataset
    from sde_edge.devices import resolve_device
    from sde_edge.metrics.features import build_features
    from sde_edge.metrics.report import check_samples, sample_quality, summary_line, write_report
    from sde_edge.storage.workdir import ensure_writable

    if (_SAMPLES.value is None) == (_WORKDIR.value is None):
        raise ValueError("give exactly one of --samples (with --config) and --workdir")
    device = resolve_device(_DEVICE.value)
    if _SAMPLES.value is not None:
        config = config_from_flag(_CONFIG)
        if config is None:
            raise ValueError("--samples needs --config to name the reference data")
        config = validate_config(config)
        out = Path(_OUT.value or Path(_SAMPLES.value).with_suffix("").as_posix() + f"_eval_{_SPLIT.value}")
        ensure_writable(out, "--out")
        samples, sampled = _load_samples(_SAMPLES.value), None
    else:
        from sde_edge.commands.common import open_run
        from sde_edge.sampling.batched import sample_in_batches

        out = _OUT.value or Path(_WORKDIR.value) / f"eval_samples_{_SPLIT.value}"
        run, device, out = open_run(_WORKDIR.value, _DEVICE.value, out, out_is_folder=True,
                                    compile_backend=_CHOSEN.compile_backend())
        config = run.config
        name, steps, grid, options = _CHOSEN(config.sampling, run)
        n = _N.value or config.eval.num_samples
        result = sample_in_batches(name, run.model, run.sde, image_shape(config, n), steps=steps, grid=grid,
                                   seed=_SEED.value, batch_size=config.eval.batch_size, device=device,
                                   partial=out / "samples.partial", source=run.path, decode=run.decode, **options)
        samples, sampled = result.samples, {"sampler": name, "steps": steps, "grid": str(grid), "nfe": result.nfe,
                                            "grid_times": list(getattr(grid, "times", ())) or None,
                                            "checkpoint": str(run.path), "step": run.step, **options}
        np.savez(out / "samples.npz", samples=samples.numpy())
    reference_set = load_dataset(config.data, _SPLIT.value)
    reference = reference_set.first(_N_REFERENCE.value or len(reference_set))
    check_samples(samples, reference)
    features = build_features(_FEATURES.value, config.data, inception_mode=_INCEPTION_MODE.value,
                              inception_weights=_INCEPTION_PATH.value, device=device)
    report = sample_quality(samples, reference, features, seed=_SEED.value)
    report.update(dataset=config.data.dataset, split=_SPLIT.value, source=_SAMPLES.value or _WORKDIR.value,
                  **({"sampling": sampled} if sampled else {}))
    paths = write_report(report, samples, out)
    print(summary_line(report))
    print("wrote " + ", ".join(str(p) for p in paths))
