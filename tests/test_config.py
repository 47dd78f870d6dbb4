"""sde_edge.config and configs/: bad fields are ValueErrors naming the field."""
from pathlib import Path

import pytest

from sde_edge.config import default_diffusion, load_config, validate_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

BAD_FIELDS = [
    ("tau", "cubic", "diffusion.tau"),
    ("variant", "implicit", "diffusion.variant"),
    ("t_phi", 0.0, "diffusion.t_phi"),
    ("t_phi", 1.5, "diffusion.t_phi"),
    ("kappa_min", 0.0, "diffusion.kappa_min"),
    ("kappa_min", -1e-3, "diffusion.kappa_min"),
    ("kappa_min", 0.5, "diffusion.kappa_min"),  # > kappa_max = 0.1
    ("beta_min", 0.03, "diffusion.beta_min"),  # >= beta_max
    ("num_steps", 1, "diffusion.num_steps"),
    ("edge_norm", "dataset", "diffusion.edge_norm"),
    ("edge_padding", "reflect", "diffusion.edge_padding"),
    ("kappa_schedule", "sigmoid", "diffusion.kappa_schedule"),
    ("t_eps", 0.0, "diffusion.t_eps"),
]


@pytest.mark.parametrize("field,value,name", BAD_FIELDS)
def test_bad_diffusion_field_names_the_field(field, value, name):
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        default_diffusion(**{field: value})


@pytest.mark.parametrize("name", ["default.py", "digits_edge.py", "digits_ddpm.py", "digits_edge_ramp.py"])
def test_shipped_configs_are_valid(name):
    config = validate_config(load_config(CONFIGS / name))
    assert set(config.keys()) >= {"data", "diffusion", "model", "training", "sampling", "eval"}


def test_paper_defaults_and_baseline():
    edge = load_config(CONFIGS / "digits_edge.py")
    d = edge.diffusion
    assert (d.num_steps, d.beta_min, d.beta_max, d.t_phi, d.kappa_min, d.kappa_max, d.tau) == (500, 1e-4, 2e-2, 0.5, 1e-4, 1e-1, "linear")
    baseline = load_config(CONFIGS / "digits_ddpm.py")
    assert baseline.diffusion.tau == "isotropic"
    baseline.diffusion.tau = edge.diffusion.tau
    assert baseline.to_dict() == edge.to_dict(), "the baseline differs from the demo only in tau"


def test_bad_parameterization_names_the_field():
    config = load_config(CONFIGS / "default.py")
    config.model.parameterization = "eps"
    with pytest.raises(ValueError, match=r"model\.parameterization"):
        validate_config(config)


def test_missing_config_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.py"):
        load_config(tmp_path / "nope.py")
