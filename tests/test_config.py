"""sde_edge.config and configs/: one validation pass at load time; bad fields name themselves."""
from pathlib import Path

import pytest

from sde_edge.config import default_diffusion, load_config, upgrade_config, validate_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

BAD_DIFFUSION = [
    ("tau", "cubic", "diffusion.tau"),
    ("variant", "implicit", "diffusion.variant"),
    ("t_phi", 0.0, "diffusion.t_phi"),
    ("t_phi", 1.5, "diffusion.t_phi"),
    ("kappa_min", 0.0, "diffusion.kappa_min"),
    ("kappa_min", -1e-3, "diffusion.kappa_min"),
    ("kappa_min", 0.5, "diffusion.kappa_min"),  # > kappa_max = 0.1
    ("kappa_max", float("inf"), "diffusion.kappa_max"),
    ("tau_k", float("inf"), "diffusion.tau_k"),
    ("beta_min", 0.03, "diffusion.beta_min"),  # >= beta_max
    ("num_steps", 1, "diffusion.num_steps"),
    ("edge_norm", "dataset", "diffusion.edge_norm"),
    ("edge_padding", "reflect", "diffusion.edge_padding"),
    ("kappa_schedule", "sigmoid", "diffusion.kappa_schedule"),
    ("t_eps", 0.0, "diffusion.t_eps"),
    ("process", "heat", "diffusion.process"),
]


@pytest.mark.parametrize("field,value,name", BAD_DIFFUSION)
def test_bad_diffusion_field_names_the_field(field, value, name):
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        default_diffusion(**{field: value})


# (dotted field, bad value): every section is checked when the config is loaded.
BAD_FIELDS = [
    ("training.batch_size", 0), ("training.batch_size", -4), ("training.n_iters", 0), ("training.snapshot_freq", 0),
    ("training.log_freq", 0), ("training.keep_checkpoints", -1), ("training.keep_checkpoints", 0),
    ("training.checkpoint_minutes", 0.0), ("training.weighting", "snr"), ("data.image_size", 1), ("data.image_size", 3),
    ("data.image_size", 18), ("data.num_channels", 2), ("data.dataset", "imagenet"), ("data.blur_sigma", -1.0),
    ("model.nf", 0), ("model.dropout", 1.5), ("model.parameterization", "eps"), ("optim.lr", 0.0), ("optim.lr", -1e-3),
    ("optim.lr", float("nan")), ("optim.warmup", -5), ("seed", -1), ("sampling.method", "dpm_solver"),
    ("sampling.steps", 0), ("sampling.grid", "cosine"), ("eval.batch_size", 0), ("device", "gpu"),
]


@pytest.mark.parametrize("field,value", BAD_FIELDS, ids=lambda v: str(v))
def test_bad_field_anywhere_is_refused_at_load_with_its_name(field, value):
    config = load_config(CONFIGS / "digits_edge.py")
    section, _, leaf = field.rpartition(".")
    (config[section] if section else config)[leaf] = value
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        validate_config(config)


SHIPPED = ["default.py", "digits_edge.py", "digits_ddpm.py", "digits_edge_ramp.py", "shapes_edge.py", "shapes_ddpm.py",
           "digits_blur.py", "digits_bluenoise.py", "shapes_blur.py", "shapes_bluenoise.py",
           "paper/shapes64_recipe_edge.py"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_are_valid(name):
    config = validate_config(load_config(CONFIGS / name))
    assert set(config.keys()) >= {"data", "diffusion", "model", "training", "sampling", "eval"}


def test_paper_defaults_and_baselines(paper_schedule):
    edge = load_config(CONFIGS / "digits_edge.py")
    d = edge.diffusion
    assert (d.num_steps, d.beta_min, d.beta_max) == (paper_schedule.n, paper_schedule.beta_min, paper_schedule.beta_max)
    assert (d.t_phi, d.kappa_min, d.kappa_max, d.tau) == (0.5, 1e-4, 1e-1, "linear")
    for twin, changed in (("digits_ddpm.py", {"tau"}), ("digits_blur.py", {"process", "blur_sigma_max"}),
                          ("digits_bluenoise.py", {"process", "tau"}), ("shapes_ddpm.py", {"tau", "dataset"})):
        baseline = load_config(CONFIGS / twin)
        differing = {key for section in ("data", "diffusion", "model", "training", "optim", "sampling")
                     for key in edge[section] if edge[section][key] != baseline[section][key]}
        assert differing <= changed, f"{twin} differs from the demo in {differing - changed}"


def test_configs_written_before_a_field_existed_still_load():
    config = load_config(CONFIGS / "digits_edge.py")
    del config.training["checkpoint_minutes"]
    del config.diffusion["process"]
    del config.data["blur_sigma"]
    upgraded = validate_config(upgrade_config(config))
    assert upgraded.diffusion.process == "edge" and upgraded.data.blur_sigma == 0.0


def test_config_file_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.py"):
        load_config(tmp_path / "nope.py")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        load_config(tmp_path)
    broken = tmp_path / "broken.py"
    broken.write_text("def get_config(:\n")
    with pytest.raises(ValueError, match="broken.py"):
        load_config(broken)


@pytest.mark.parametrize("name", ["celeba64_edge.py", "celeba64_ddpm.py", "afhq_cat128_edge.py", "afhq_cat128_ddpm.py"])
def test_paper_scale_configs_train_two_steps_on_the_cpu(tmp_path, name):
    """Loaded as shipped, then shrunk (image size, batch, width) and run for 2 steps on a tiny folder."""
    import numpy as np
    from PIL import Image

    from sde_edge.training.trainer import train

    config = load_config(CONFIGS / name)
    with pytest.raises(ValueError, match="data.root"):  # the user's own image folder is required
        validate_config(config)
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (40, 36, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    config.data.root = str(folder)
    validate_config(config)
    assert config.training.batch_size == 64 and config.diffusion.num_steps == (750 if "afhq" in name else 500)
    config.data.image_size = 16
    config.model.nf = 8
    config.model.num_groups = 4
    config.model.ch_mult = (1, 2)
    config.model.attn_resolutions = (8,)
    config.training.batch_size = 4
    config.training.n_iters = 2
    assert config.training.compile and config.training.precision == "bf16"  # what pays on a GPU, as shipped
    config.training.compile_backend = "aot_eager"  # the same tracing without inductor's minutes of C++ on a CPU
    config.training.snapshot_samples = 0
    config.eval.batch_size = 2
    config.device = "cpu"
    assert train(config, tmp_path / "run", progress=False).step == 2
