"""Loading and validating the ml_collections configs of `configs/`.

``validate_config`` checks every section (data, model, training, optim, sampling, diffusion,
eval) in one pass when a config is loaded, so a bad value is a ValueError that names the
field and its allowed range before any work starts, never a traceback hours later.
"""
import copy
import importlib.util
from pathlib import Path

import ml_collections
from ml_collections import config_dict

from sde_edge.data.datasets import DATASETS
from sde_edge.devices import resolve_device
from sde_edge.fields import BOOL, INT_TUPLE, Rule, check, choice, integer, number
from sde_edge.latent.first_stage import model_space
from sde_edge.losses import TIME_SAMPLINGS, WEIGHTINGS
from sde_edge.processes.registry import diffusion_defaults, processes, validate_diffusion
from sde_edge.sampling import SAMPLERS
from sde_edge.sampling.grids import GRIDS
from sde_edge.score import PARAMETERIZATIONS


def load_config(path):
    """Import a config file by path and return its ``get_config()``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"--config: {path} is a folder; name a config file such as configs/digits_edge.py")
    if not path.is_file():
        raise FileNotFoundError(f"--config: config file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"_sde_edge_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise ValueError(f"--config: {path} is not valid Python (line {error.lineno}: {error.msg})") from error
    if not hasattr(module, "get_config"):
        raise ValueError(f"--config: {path} defines no get_config()")
    return module.get_config()


COMPILE_BACKENDS = ("inductor", "cudagraphs", "aot_eager", "eager")  # aot_eager: traces without a C++ compiler
DATA_RULES = {"dataset": choice(DATASETS), "image_size": integer(4), "num_channels": choice((1, 3)),
              "download": BOOL, "skip_bad_images": BOOL, "blur_sigma": number(0), "random_flip": BOOL,
              "validation_fraction": number(0, 0.5, high_open=True), "prepare": BOOL, "num_workers": integer(0)}


MODEL_RULES = {
    "name": choice(("unet",)), "parameterization": choice(PARAMETERIZATIONS), "nf": integer(1),
    "ch_mult": INT_TUPLE, "num_res_blocks": integer(1), "attn_resolutions": Rule(
        lambda v: isinstance(v, (tuple, list)) and all(isinstance(i, int) for i in v), "a tuple of feature-map sizes"),
    "dropout": number(0, 1, high_open=True), "num_groups": integer(1), "ema_rate": number(0, 1, high_open=True),
    "channels_last": BOOL,
}
TRAINING_RULES = {
    "batch_size": integer(1), "n_iters": integer(1), "log_freq": integer(1), "snapshot_freq": integer(1),
    "snapshot_samples": integer(0), "checkpoint_freq": integer(1), "checkpoint_minutes": number(0, low_open=True),
    "keep_checkpoints": integer(1), "keep_every": integer(0), "eval_freq": integer(0),
    "weighting": choice(WEIGHTINGS), "time_sampling": choice(TIME_SAMPLINGS),
    "reduce_mean": BOOL, "max_skipped_steps": integer(1), "divergence_factor": number(0),
    "precision": choice(("fp32", "bf16", "fp16")), "compile": BOOL, "compile_backend": choice(COMPILE_BACKENDS),
    "cudnn_benchmark": BOOL,
}
OPTIM_RULES = {
    "lr": number(0, low_open=True), "beta1": number(0, 1, high_open=True), "eps": number(0, low_open=True),
    "weight_decay": number(0), "warmup": integer(0), "grad_clip": number(0), "fused": BOOL,
}
EVAL_RULES = {"batch_size": integer(1), "num_samples": integer(1)}
DISTILL_RULES = {"teacher": Rule(lambda v: isinstance(v, str) and bool(v), "the path of the teacher's checkpoint"),
                 "steps": integer(1), "target_iterations": integer(0)}


# Fields added after the first release, with the value a config written before them implied.
# ``upgrade_config`` fills them in, so old runs restore and resume.
ADDED_FIELDS = {
    "diffusion": dict(process="edge", basis="dct", blur_sigma_max=20.0, blur_min_scale=1e-3,
                      bluenoise_cutoff=0.25, bluenoise_floor=0.1, edge_channels="sum"),
    "data": dict(blur_sigma=0.0, random_flip=False, validation_fraction=0.0, prepare=False, num_workers=0,
                 latent=ml_collections.ConfigDict({"autoencoder": config_dict.placeholder(str)})),
    "training": dict(checkpoint_freq=500, checkpoint_minutes=1.0, keep_every=0, eval_freq=0,
                     max_skipped_steps=20, divergence_factor=100.0, precision="fp32", compile=False,
                     compile_backend="inductor", cudnn_benchmark=False),
    "model": dict(channels_last=False),
    "optim": dict(fused=False),
}


def _with_added_fields(section, name):
    """``section`` with the fields of ADDED_FIELDS[name] it lacks filled in (a copy if any were missing)."""
    missing = {k: copy.deepcopy(v) for k, v in ADDED_FIELDS.get(name, {}).items() if k not in section}
    if not missing:
        return section
    section = section.copy_and_resolve_references()
    with section.unlocked():
        section.update(missing)
    return section


def upgrade_config(config):
    """A copy of ``config`` with every field added since it was written filled in (see ADDED_FIELDS)."""
    config = config.copy_and_resolve_references()
    with config.unlocked():
        for name in ADDED_FIELDS:
            if name in config:
                config[name] = _with_added_fields(config[name], name)
    return config


def validate_config(config):
    """Check a whole experiment config, every section; returns it unchanged."""
    for section in ("data", "diffusion", "model", "training", "optim", "sampling", "eval"):
        if section not in config:
            raise ValueError(f"config.{section} is missing from the config")
    if not (isinstance(config.get("seed"), int) and config.seed >= 0):
        raise ValueError(f"seed must be an integer >= 0, got {config.get('seed')!r}")
    resolve_device(config.get("device", "auto"), field="device")
    check(config.data, DATA_RULES, "data")
    validate_diffusion(_with_added_fields(config.diffusion, "diffusion"))
    check(config.model, MODEL_RULES, "model")
    _check_parameterization(config)
    check(config.training, TRAINING_RULES, "training")
    check(config.optim, OPTIM_RULES, "optim")
    check(config.sampling, {"method": choice(tuple(sorted(SAMPLERS))), "steps": integer(1), "grid": choice(GRIDS),
                             "num_samples": integer(1)}, "sampling")
    check(config.eval, EVAL_RULES, "eval")
    _check_latent(config.data)
    _check_distill(config)
    downsampling = 2 ** (len(config.model.ch_mult) - 1)
    size = model_space(config.data)[1]
    if size % downsampling:
        what = f"data.image_size={config.data.image_size}" if size == config.data.image_size else (
            f"the latent size {size} (data.image_size={config.data.image_size} over the first stage's factor)")
        raise ValueError(f"{what} must be divisible by {downsampling}, the UNet's downsampling for "
                         f"model.ch_mult={tuple(config.model.ch_mult)}")
    if config.data.dataset == "folder" and not config.data.root:
        raise ValueError("data.root must name an image folder when data.dataset='folder'")
    return config


def _check_latent(data):
    latent = data.get("latent")
    if latent is None or latent.get("autoencoder") is None:
        return
    if not isinstance(latent.autoencoder, str):
        raise ValueError(f"data.latent.autoencoder must name a folder, got {latent.autoencoder!r}")
    if data.random_flip:
        raise ValueError("data.random_flip flips images, but with data.latent.autoencoder the latents are encoded "
                         "once; set data.random_flip=false")


def _check_distill(config):
    """A progressive-distillation round (``sde-edge distill``): its student samples with ddim on its K steps."""
    if config.get("distill") is None:
        return
    check(config.distill, DISTILL_RULES, "distill")
    s = config.sampling
    if (s.method, s.steps, s.grid) != ("ddim", config.distill.steps, "uniform"):
        raise ValueError(f"a distilled student samples with sampling.method='ddim', steps={config.distill.steps} "
                         f"(distill.steps) on the uniform grid; the config says {s.method!r}, {s.steps}, {s.grid!r}")


def _check_parameterization(config):
    """``eps`` needs a noise std that does not depend on x0 (sde_edge.score): not the edge-preserving process."""
    d = config.diffusion
    if config.model.parameterization == "eps" and processes()[d.process].noise_depends_on(d):
        raise ValueError(f"model.parameterization='eps' needs noise whose std does not depend on x0, but "
                         f"diffusion.tau={d.tau!r} makes sigma(x0, t) per pixel, so eps_hat could not be read without "
                         "x0 (circular); use 'scaled_eps' or 'x0', or diffusion.tau='isotropic'")


def image_shape(config, n):
    """The (n, C, H, W) shape of n of what the model generates: images of ``config.data``, or the
    latents of its first stage (``data.latent.autoencoder``; decoded by ``TrainedRun.decode``)."""
    channels, size = model_space(config.data)
    return (n, channels, size, size)


def default_diffusion(**overrides):
    """A ``config.diffusion`` section with every registered process's defaults (the paper's settings
    for the edge process: N = 500, beta 1e-4..2e-2, tau linear, t_phi 0.5, kappa 1e-4..1e-1,
    per-image edge map with replicate padding, the matched SDE, t_eps 1e-3), some fields replaced;
    validated."""
    config = ml_collections.ConfigDict(diffusion_defaults())
    config.update(overrides)
    return validate_diffusion(config)
