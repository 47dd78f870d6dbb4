"""Latent diffusion: the first stage, its latents through every process and sampler, and bad input."""
import json
import sys

import numpy as np
import pytest
import torch
from scipy import ndimage

import forked
from helpers import ROOT, TINY
from sde_edge.config import load_config
from sde_edge.experiments.sampler_comparison import mode_statistics
from sde_edge.oracle import MixtureOracle
from sde_edge.processes.edge_map import edge_map
from sde_edge.sampling import sample

KEPT = ROOT / "paper_appendix" / "reproduction" / "latent" / "first_stage_shapes64"


@pytest.fixture(scope="module")
def tiny_first_stage(tmp_path_factory):
    """An untrained f = 2 first stage for 16 px digits (4 x 8 x 8 latents), saved as train-autoencoder does."""
    import ml_collections

    from sde_edge.latent.first_stage import FirstStage, build_autoencoder, save_first_stage

    torch.manual_seed(0)
    ae = ml_collections.ConfigDict(dict(block_out_channels=(8, 8), latent_channels=4, layers_per_block=1,
                                        num_groups=4, attention=False))
    vae = build_autoencoder(ae, 1, 16)
    images = load_config(TINY).data
    images.image_size = 16
    from sde_edge.data import load_dataset

    latents = FirstStage(vae, 1.0, None).encode(load_dataset(images, "train").first(512))
    folder = tmp_path_factory.mktemp("first_stage") / "ae"
    save_first_stage(vae, folder / "first_stage", scale_factor=1.0 / float(latents.std()), image_size=16, channels=1,
                     step=0, data=images.to_dict())
    return folder


def _latent_config(autoencoder, **fields):
    config = load_config(TINY)
    config.data.image_size = 16
    config.data.latent.autoencoder = str(autoencoder)
    config.diffusion.edge_channels = "each"
    for key, value in fields.items():
        section, name = key.split("__")
        config[section][name] = value
    return config


def test_round_trip_keeps_shape_dtype_and_range(tiny_first_stage):
    from sde_edge.latent.first_stage import load_first_stage

    stage = load_first_stage(tiny_first_stage, channels=1, image_size=16)
    images = torch.rand(5, 1, 16, 16) * 2 - 1
    latents = stage.encode(images, batch_size=2)
    assert latents.shape == (5, 4, 8, 8) and latents.dtype == torch.float32
    decoded = stage.decode(latents, batch_size=2)
    assert decoded.shape == images.shape and decoded.dtype == images.dtype
    assert decoded.min() >= -1 and decoded.max() <= 1


KEPT_128 = ROOT / "paper_appendix" / "reproduction" / "latent" / "first_stage_shapes128"


@pytest.mark.slow
@pytest.mark.parametrize("folder, size, test_images", [(KEPT, 64, 2000), (KEPT_128, 128, 250)],
                         ids=["64px", "128px"])
def test_a_kept_first_stage_reconstructs_shapes_and_scales_its_latents_to_unit_std(folder, size, test_images):
    """Acceptance: PSNR >= 25 dB on the test split (the whole of it at 64 px; the first 250 images
    at 128 px, where decoding costs 4x), latent std within 5% of 1 on the first 1,000 train images."""
    from sde_edge.data.shapes import render, shape_parameters, shapes
    from sde_edge.latent.autoencoder_training import psnr
    from sde_edge.latent.first_stage import load_first_stage

    if not folder.is_dir():
        pytest.skip(f"the kept {size} px first stage is not in this checkout")
    stage = load_first_stage(folder, channels=1, image_size=size)
    test = shapes("test", size, 1)[0][:test_images] * 2 - 1
    reconstructed = stage.decode(stage.encode(test, 250), 250)
    assert reconstructed.shape == test.shape and reconstructed.dtype == test.dtype
    value = psnr(test, reconstructed)
    assert value >= 25.0, f"test PSNR {value:.2f} dB"
    params = {k: v[:1000] for k, v in shape_parameters("train", 1).items()}
    latents = stage.encode(render(params, size) * 2 - 1, 250)
    assert abs(float(latents.std()) - 1.0) < 0.05, float(latents.std())


def test_latent_edge_map_is_the_documented_formula():
    """e(z) = sum_c |Sobel z_c|^2 / max over the image (math.md, section 1), by scipy's own Sobel."""
    z = torch.randn(3, 4, 9, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = edge_map(z, channels="each").numpy()
    for b in range(3):
        magnitude = sum(ndimage.sobel(z[b, c].numpy(), axis=axis, mode="nearest") ** 2
                        for c in range(4) for axis in (0, 1))
        np.testing.assert_allclose(ours[b, 0], magnitude / magnitude.max(), rtol=1e-10, atol=1e-12)
    summed = edge_map(z, channels="sum").numpy()  # the paper's map of an image: the Sobel of the channel sum
    gray = z.sum(1).numpy()
    for b in range(3):
        magnitude = sum(ndimage.sobel(gray[b], axis=axis, mode="nearest") ** 2 for axis in (0, 1))
        np.testing.assert_allclose(summed[b, 0], magnitude / magnitude.max(), rtol=1e-10, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("tau", ["linear", "isotropic"])
@pytest.mark.parametrize("name,steps", [("ddpm", 200), ("ddim", 100), ("dpmpp_2m", 10)])
def test_samplers_land_on_the_modes_of_4_channel_latents(tau, name, steps):
    """The sampler acceptance of test_sampling.py on latents: 4 channels, unit scale, edges in every channel."""
    from sde_edge.config import default_diffusion
    from sde_edge.processes import build_sde

    sde = build_sde(default_diffusion(tau=tau, edge_channels="each"))
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(3, 4, 1, 1, generator=generator) * torch.ones(3, 4, 8, 8)
    latents[:, :, 2:6, 3:7] = torch.randn(3, 4, 1, 1, generator=generator)  # a square with an edge per channel
    weights = (0.5, 0.3, 0.2)
    oracle = MixtureOracle(latents, weights, sde)
    generator = torch.Generator().manual_seed(0)
    x = oracle.sample_marginal(1.0, 1000, generator=generator)
    result = sample(name, oracle, sde, x.shape, steps=steps, generator=generator, x_init=x)
    near, _, p_value = mode_statistics(result.samples, latents, weights)
    assert near >= 0.99, f"only {near:.3f} of the samples are within RMSE 0.05 of a mode"
    assert p_value > 1e-3, f"mode frequencies off: chi-square p = {p_value:.2e}"


def test_a_latent_run_resumes_bit_identically(tmp_path, tiny_first_stage):
    from sde_edge.storage.checkpoint import checkpoint_paths, load_checkpoint
    from sde_edge.training.trainer import train

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(_latent_config(tiny_first_stage, training__n_iters=10), straight, progress=False)
    train(_latent_config(tiny_first_stage, training__n_iters=5), resumed, progress=False)
    train(_latent_config(tiny_first_stage, training__n_iters=10), resumed, progress=False)
    a, b = (load_checkpoint(checkpoint_paths(run / "checkpoints")[-1]) for run in (straight, resumed))
    assert a["step"] == b["step"] == 10 and a["latent_autoencoder"] == b["latent_autoencoder"]
    for part, weights_a, weights_b in (("model", a["model"], b["model"]),
                                       ("ema", a["ema"]["model"], b["ema"]["model"])):
        for key in weights_a:
            assert torch.equal(weights_a[key], weights_b[key]), (part, key)


def _cli(*args):
    return forked.run([sys.executable, "-m", "sde_edge.cli", *map(str, args)], timeout=600)


def _config_file(tmp_path, autoencoder, **fields):
    path = tmp_path / f"latent_{len(list(tmp_path.glob('latent_*.py')))}.py"
    overrides = "".join(f"    config.{k.replace('__', '.')} = {v!r}\n" for k, v in fields.items())
    path.write_text(f"from sde_edge.config import load_config\n\n\ndef get_config():\n"
                    f"    config = load_config({str(TINY)!r})\n    config.data.image_size = 16\n"
                    f"    config.data.latent.autoencoder = {str(autoencoder)!r}\n"
                    f"    config.diffusion.edge_channels = 'each'\n{overrides}    return config\n")
    return path


def test_sample_on_a_latent_run_writes_images_of_the_image_resolution(tmp_path, tiny_first_stage):
    run = tmp_path / "run"
    trained = _cli("train", f"--config={_config_file(tmp_path, tiny_first_stage)}", f"--workdir={run}",
                   "--progress=false", "--config.training.n_iters=5")
    assert trained.returncode == 0, trained.stderr[-2000:]
    out = tmp_path / "samples.npz"
    sampled = _cli("sample", f"--workdir={run}", "--n=6", "--steps=4", f"--out={out}")
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    samples = np.load(out)["samples"]
    assert samples.shape == (6, 1, 16, 16) and samples.min() >= -1 and samples.max() <= 1


def _one_line_naming_the_field(result):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "data.latent.autoencoder" in lines[0], result.stderr[-2000:]
    return lines[0]


def test_a_bad_autoencoder_is_one_line_naming_the_field(tmp_path, tiny_first_stage):
    import shutil

    def train(config, workdir):
        return _cli("train", f"--config={config}", f"--workdir={workdir}", "--progress=false",
                    "--config.training.n_iters=5")

    missing = _one_line_naming_the_field(train(_config_file(tmp_path, tmp_path / "nowhere"), tmp_path / "a"))
    assert "names no autoencoder" in missing
    channels = _one_line_naming_the_field(train(_config_file(tmp_path, tiny_first_stage, data__dataset="patches",
                                                             data__num_channels=3), tmp_path / "b"))
    assert "1-channel" in channels and "data.num_channels is 3" in channels
    resolution = _one_line_naming_the_field(train(_config_file(tmp_path, tiny_first_stage, data__image_size=8),
                                                  tmp_path / "c"))
    assert "16 px" in resolution and "data.image_size is 8" in resolution

    truncated = tmp_path / "truncated"
    shutil.copytree(tiny_first_stage, truncated)
    weights = truncated / "first_stage" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert "changed after they were written" in _one_line_naming_the_field(
        train(_config_file(tmp_path, truncated), tmp_path / "d"))
    manifest = truncated / "first_stage" / "sde_edge.json"  # a consistent but cut file: diffusers cannot read it
    record = json.loads(manifest.read_text())
    from sde_edge.latent.first_stage import file_digest

    manifest.write_text(json.dumps({**record, "weights_sha256": file_digest(weights)}))
    assert "cannot be loaded" in _one_line_naming_the_field(train(_config_file(tmp_path, truncated), tmp_path / "e"))


def test_an_autoencoder_changed_after_a_run_encoded_its_latents_stops_the_resume(tmp_path, tiny_first_stage):
    """Retrained in place (a new, consistent first stage): resuming refuses, and nothing is overwritten."""
    import shutil

    from sde_edge.latent.first_stage import load_first_stage, save_first_stage

    moved = tmp_path / "ae"
    shutil.copytree(tiny_first_stage, moved)
    config, run = _config_file(tmp_path, moved), tmp_path / "run"
    first = _cli("train", f"--config={config}", f"--workdir={run}", "--progress=false", "--config.training.n_iters=5")
    assert first.returncode == 0, first.stderr[-2000:]
    stage = load_first_stage(moved)
    with torch.no_grad():
        next(stage.vae.parameters()).add_(0.01)
    save_first_stage(stage.vae, moved / "first_stage", scale_factor=stage.scale_factor, image_size=16, channels=1,
                     step=1, data={})
    before = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()}
    again = _cli("train", f"--config={config}", f"--workdir={run}", "--progress=false", "--config.training.n_iters=10")
    assert "is not the one" in _one_line_naming_the_field(again)
    assert {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir()} == before


@pytest.mark.parametrize("arm, config", [("E", "shapes64_edge.py"), ("D", "shapes64_ddpm.py"),
                                         ("D-sigma", "shapes64_isotropic_edge_loss.py")])
def test_the_latent_study_trains_with_the_recipe_of_configs_latent(arm, config):
    """The study's runs and the user's configs carry the latent sweep's choice, not two recipes."""
    from sde_edge.config import load_config
    from sde_edge.experiments.studies import comparison_runs as cr

    study = cr.run_of(cr.LATENT_SETTINGS[0], arm, 0).build_config()
    user = load_config(ROOT / "configs" / "latent" / config)
    for key in ("lr", "grad_clip"):
        assert study.optim[key] == user.optim[key], key
    assert study.model.ema_rate == user.model.ema_rate
    paper = load_config(ROOT / "configs" / "paper" / config.replace("64", ""))
    # the latents chose another recipe than 16 px pixels
    assert (study.optim.lr, study.optim.grad_clip) != (paper.optim.lr, paper.optim.grad_clip)
