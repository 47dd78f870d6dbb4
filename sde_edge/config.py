"""Loading and validating the ml_collections configs of `configs/`.

Every check turns a bad field into a ValueError that names the field and says
what is allowed, before any work starts.
"""
import importlib.util
from pathlib import Path

import ml_collections

from sde_edge.edges import EDGE_NORMS, EDGE_PADDINGS
from sde_edge.schedules import KAPPA_SCHEDULES, TRANSITIONS

VARIANTS = ("matched", "direct")
PARAMETERIZATIONS = ("scaled_eps", "x0")


def load_config(path):
    """Import a config file by path and return its ``get_config()``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    spec = importlib.util.spec_from_file_location(f"_sde_edge_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {path} defines no get_config()")
    return module.get_config()


def _require_choice(section, field, choices):
    value = section[field]
    if value not in choices:
        raise ValueError(f"{section.prefix}.{field} must be one of {choices}, got {value!r}")


def _require(condition, message):
    if not condition:
        raise ValueError(message)


class _Section:
    """A config section with the dotted name used in error messages."""

    def __init__(self, section, prefix):
        self._section, self.prefix = section, prefix

    def __getitem__(self, field):
        if field not in self._section:
            raise ValueError(f"{self.prefix}.{field} is missing from the config")
        return self._section[field]


def validate_diffusion(diffusion, prefix="diffusion"):
    """Check a ``config.diffusion`` section (SPEC section 8) and return it unchanged."""
    d = _Section(diffusion, prefix)
    _require_choice(d, "tau", TRANSITIONS)
    _require_choice(d, "variant", VARIANTS)
    _require_choice(d, "kappa_schedule", KAPPA_SCHEDULES)
    _require_choice(d, "edge_norm", EDGE_NORMS)
    _require_choice(d, "edge_padding", EDGE_PADDINGS)
    n = d["num_steps"]
    _require(isinstance(n, int) and n >= 2, f"{prefix}.num_steps must be an integer >= 2, got {n!r}")
    bmin, bmax = d["beta_min"], d["beta_max"]
    _require(bmin > 0, f"{prefix}.beta_min must be > 0, got {bmin!r}")
    _require(bmin < bmax, f"{prefix}.beta_min must be < {prefix}.beta_max, got {bmin!r} >= {bmax!r}")
    _require(bmax < 1, f"{prefix}.beta_max must be < 1 (a per-step variance), got {bmax!r}")
    t_phi = d["t_phi"]
    _require(0 < t_phi <= 1, f"{prefix}.t_phi must lie in (0, 1], got {t_phi!r}")
    kmin, kmax = d["kappa_min"], d["kappa_max"]
    _require(kmin > 0, f"{prefix}.kappa_min must be > 0, got {kmin!r}")
    _require(kmin <= kmax, f"{prefix}.kappa_min must be <= {prefix}.kappa_max, got {kmin!r} > {kmax!r}")
    _require(d["tau_k"] > 0, f"{prefix}.tau_k must be > 0, got {d['tau_k']!r}")
    t_eps = d["t_eps"]
    _require(0 < t_eps < 1, f"{prefix}.t_eps must lie in (0, 1), got {t_eps!r}")
    return diffusion


def validate_config(config):
    """Check a whole experiment config; returns it unchanged."""
    validate_diffusion(config.diffusion)
    _require_choice(_Section(config.model, "model"), "parameterization", PARAMETERIZATIONS)
    return config


def default_diffusion(**overrides):
    """The paper's diffusion settings as a ``config.diffusion`` section, with some fields replaced."""
    config = ml_collections.ConfigDict(
        dict(
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
        )
    )
    config.update(overrides)
    return validate_diffusion(config)
