"""Loading and validating the ml_collections configs of `configs/`.

``validate_config`` checks every section (data, model, training, optim, sampling, diffusion,
eval) in one pass when a config is loaded, so a bad value is a ValueError that names the
field and its allowed range before any work starts, never a traceback hours later.
"""
import importlib.util
import math
from pathlib import Path

import ml_collections

from sde_edge.bases import BASIS_NAMES
from sde_edge.edges import EDGE_NORMS, EDGE_PADDINGS
from sde_edge.schedules import KAPPA_SCHEDULES, TRANSITIONS
from sde_edge.score import PARAMETERIZATIONS

VARIANTS = ("matched", "direct")
PROCESSES = ("edge", "blur", "bluenoise")


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


# --- field rules ------------------------------------------------------------------------------
class _Rule:
    def __init__(self, test, expected):
        self.test, self.expected = test, expected


def _integer(low=None, high=None):
    def test(v):
        return isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low) and (high is None or v <= high)

    bounds = " >= %s" % low if high is None else " in [%s, %s]" % (low, high)
    return _Rule(test, "an integer" + (bounds if low is not None else ""))


def _number(low=None, high=None, low_open=False, high_open=False):
    def test(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        if low is not None and (v <= low if low_open else v < low):
            return False
        return high is None or (v < high if high_open else v <= high)

    if high is None:
        text = f"a finite number {'>' if low_open else '>='} {low}"
    else:
        text = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    return _Rule(test, text)


def _choice(options):
    return _Rule(lambda v: v in options, f"one of {tuple(options)}")


_BOOL = _Rule(lambda v: isinstance(v, bool), "true or false")
_INT_TUPLE = _Rule(lambda v: isinstance(v, (tuple, list)) and all(isinstance(i, int) and i >= 1 for i in v),
                   "a tuple of positive integers")


def _check(config, rules, prefix):
    for field, rule in rules.items():
        if field not in config:
            raise ValueError(f"{prefix}.{field} is missing from the config")
        value = config[field]
        if not rule.test(value):
            raise ValueError(f"{prefix}.{field} must be {rule.expected}, got {value!r}")


DIFFUSION_RULES = {
    "process": _choice(PROCESSES), "num_steps": _integer(2), "beta_min": _number(0, 1, low_open=True, high_open=True),
    "beta_max": _number(0, 1, low_open=True, high_open=True), "tau": _choice(TRANSITIONS),
    "t_phi": _number(0, 1, low_open=True), "tau_k": _number(0, low_open=True),
    "kappa_min": _number(0, low_open=True), "kappa_max": _number(0, low_open=True),
    "kappa_schedule": _choice(KAPPA_SCHEDULES), "edge_norm": _choice(EDGE_NORMS), "edge_padding": _choice(EDGE_PADDINGS),
    "variant": _choice(VARIANTS), "t_eps": _number(0, 1, low_open=True, high_open=True),
}


# the fields only the baselines (sde_edge.processes) read
BASELINE_RULES = {
    "basis": _choice(BASIS_NAMES), "blur_sigma_max": _number(0), "blur_min_scale": _number(0, 1, low_open=True, high_open=True),
    "bluenoise_cutoff": _number(0, low_open=True), "bluenoise_floor": _number(0, 1, low_open=True),
}


def validate_diffusion(diffusion, prefix="diffusion"):
    """Check a ``config.diffusion`` section and return it (with any field added since it was
    written filled in with its default)."""
    diffusion = _with_added_fields(diffusion, "diffusion")
    _check(diffusion, DIFFUSION_RULES, prefix)
    if diffusion.beta_min >= diffusion.beta_max:
        raise ValueError(f"{prefix}.beta_min must be < {prefix}.beta_max, got {diffusion.beta_min!r} >= {diffusion.beta_max!r}")
    if diffusion.kappa_min > diffusion.kappa_max:
        raise ValueError(f"{prefix}.kappa_min must be <= {prefix}.kappa_max, got {diffusion.kappa_min!r} > {diffusion.kappa_max!r}")
    if diffusion.process != "edge":
        _check(diffusion, BASELINE_RULES, prefix)
    return diffusion


def _data_rules(data):
    from sde_edge.data import DATASETS

    return {"dataset": _choice(DATASETS), "image_size": _integer(4), "num_channels": _choice((1, 3)),
            "download": _BOOL, "skip_bad_images": _BOOL, "blur_sigma": _number(0), "random_flip": _BOOL,
            "validation_fraction": _number(0, 0.5, high_open=True)}


MODEL_RULES = {
    "name": _choice(("unet",)), "parameterization": _choice(PARAMETERIZATIONS), "nf": _integer(1),
    "ch_mult": _INT_TUPLE, "num_res_blocks": _integer(1), "attn_resolutions": _Rule(
        lambda v: isinstance(v, (tuple, list)) and all(isinstance(i, int) for i in v), "a tuple of feature-map sizes"),
    "dropout": _number(0, 1, high_open=True), "num_groups": _integer(1), "ema_rate": _number(0, 1, high_open=True),
}
TRAINING_RULES = {
    "batch_size": _integer(1), "n_iters": _integer(1), "log_freq": _integer(1), "snapshot_freq": _integer(1),
    "snapshot_samples": _integer(0), "checkpoint_freq": _integer(1), "checkpoint_minutes": _number(0, low_open=True),
    "keep_checkpoints": _integer(1), "keep_every": _integer(0), "eval_freq": _integer(0),
    "weighting": _choice(("paper", "variance", "likelihood")), "time_sampling": _choice(("continuous", "discrete")),
    "reduce_mean": _BOOL, "max_skipped_steps": _integer(1), "divergence_factor": _number(0),
}
OPTIM_RULES = {
    "lr": _number(0, low_open=True), "beta1": _number(0, 1, high_open=True), "eps": _number(0, low_open=True),
    "weight_decay": _number(0), "warmup": _integer(0), "grad_clip": _number(0),
}
EVAL_RULES = {"batch_size": _integer(1), "num_samples": _integer(1)}


# Fields added after the first release, with the value a config written before them implied.
# ``upgrade_config`` fills them in, so old runs restore and resume.
ADDED_FIELDS = {
    "diffusion": dict(process="edge", basis="dct", blur_sigma_max=20.0, blur_min_scale=1e-3,
                      bluenoise_cutoff=0.25, bluenoise_floor=0.1),
    "data": dict(blur_sigma=0.0, random_flip=False, validation_fraction=0.0),
    "training": dict(checkpoint_freq=500, checkpoint_minutes=1.0, keep_every=0, eval_freq=0,
                     max_skipped_steps=20, divergence_factor=100.0),
}


def _with_added_fields(section, name):
    missing = {k: v for k, v in ADDED_FIELDS.get(name, {}).items() if k not in section}
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
    from sde_edge.devices import resolve_device
    from sde_edge.sampling import SAMPLERS
    from sde_edge.sampling.grids import GRIDS

    for section in ("data", "diffusion", "model", "training", "optim", "sampling", "eval"):
        if section not in config:
            raise ValueError(f"config.{section} is missing from the config")
    if not (isinstance(config.get("seed"), int) and config.seed >= 0):
        raise ValueError(f"seed must be an integer >= 0, got {config.get('seed')!r}")
    resolve_device(config.get("device", "auto"), field="device")
    _check(config.data, _data_rules(config.data), "data")
    validate_diffusion(config.diffusion)
    _check(config.model, MODEL_RULES, "model")
    _check_parameterization(config)
    _check(config.training, TRAINING_RULES, "training")
    _check(config.optim, OPTIM_RULES, "optim")
    _check(config.sampling, {"method": _choice(tuple(sorted(SAMPLERS))), "steps": _integer(1), "grid": _choice(GRIDS),
                             "num_samples": _integer(1)}, "sampling")
    _check(config.eval, EVAL_RULES, "eval")
    downsampling = 2 ** (len(config.model.ch_mult) - 1)
    if config.data.image_size % downsampling:
        raise ValueError(f"data.image_size={config.data.image_size} must be divisible by {downsampling}, the UNet's "
                         f"downsampling for model.ch_mult={tuple(config.model.ch_mult)}")
    if config.data.dataset == "folder" and not config.data.root:
        raise ValueError("data.root must name an image folder when data.dataset='folder'")
    return config


def _check_parameterization(config):
    """``eps`` needs a noise std that does not depend on x0 (sde_edge.score): not the edge-preserving process."""
    d = config.diffusion
    if config.model.parameterization == "eps" and d.get("process", "edge") == "edge" and d.tau != "isotropic":
        raise ValueError(f"model.parameterization='eps' needs noise whose std does not depend on x0, but "
                         f"diffusion.tau={d.tau!r} makes sigma(x0, t) per pixel, so eps_hat could not be read without "
                         "x0 (circular); use 'scaled_eps' or 'x0', or diffusion.tau='isotropic'")


def image_shape(config, n):
    """The (n, C, H, W) shape of n images of ``config.data``."""
    return (n, config.data.num_channels, config.data.image_size, config.data.image_size)


def default_diffusion(**overrides):
    """The paper's diffusion settings as a ``config.diffusion`` section, with some fields replaced."""
    config = ml_collections.ConfigDict(
        dict(
            process="edge",
            num_steps=500,
            beta_min=1e-4,
            beta_max=2e-2,
            tau="linear",
            t_phi=0.5,
            tau_k=10.0,
            kappa_min=1e-4,
            kappa_max=1e-1,
            kappa_schedule="linear",
            edge_norm="image",
            edge_padding="replicate",
            variant="matched",
            t_eps=1e-3,
            # the baselines (sde_edge.processes); the edge process ignores these
            basis="dct",  # dct | dft: the frequency basis of blur and bluenoise
            blur_sigma_max=20.0,  # blur: the largest blur, in pixels (Hoogeboom & Salimans' default)
            blur_min_scale=1e-3,  # blur: no frequency is damped below this fraction
            bluenoise_cutoff=0.25,  # bluenoise: cycles per pixel below which the blue spectrum is suppressed
            bluenoise_floor=0.1,  # bluenoise: the suppressed frequencies' relative power
        )
    )
    config.update(overrides)
    return validate_diffusion(config)
