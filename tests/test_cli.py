"""The sde-edge console script."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from sde_edge.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint
from sde_edge.config import load_config
from sde_edge.train import train

TINY = Path(__file__).resolve().parent / "configs" / "tiny.py"


def _sde_edge(*args):
    return subprocess.run([sys.executable, "-m", "sde_edge.cli", *args], capture_output=True, text=True, timeout=300)


def test_forward_writes_a_png(tmp_path):
    out = tmp_path / "figs" / "forward.png"
    result = _sde_edge("forward", f"--out={out}", "--tau=linear_ramp", "--t_phi=0.4")
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    with Image.open(out) as image:
        assert image.width > 800 and image.height > 400


def test_unknown_subcommand_prints_usage():
    result = _sde_edge("frobnicate")
    assert result.returncode == 2
    assert "forward" in result.stderr


def test_bad_flag_value_is_a_clear_error(tmp_path):
    result = _sde_edge("forward", f"--out={tmp_path / 'x.png'}", "--t_phi=1.5")
    assert result.returncode != 0
    assert "diffusion.t_phi" in result.stderr


def test_train_sample_and_eval_nll_on_a_tiny_run(tmp_path):
    workdir = tmp_path / "run"
    trained = _sde_edge("train", f"--config={TINY}", f"--workdir={workdir}", "--config.training.n_iters=10",
                        "--config.diffusion.tau=linear_ramp", "--progress=false")
    assert trained.returncode == 0, trained.stderr
    for name in ("samples.png", "loss_curve.png", "forward_process.png"):
        assert (workdir / name).exists() and str(workdir / name) in trained.stdout

    out = tmp_path / "draws" / "s.npz"
    sampled = _sde_edge("sample", f"--workdir={workdir}", "--n=10", "--steps=5", "--seed=3", "--sampler=ddim",
                        f"--out={out}", "--batch_size=4")
    assert sampled.returncode == 0, sampled.stderr
    samples = np.load(out)["samples"]
    assert samples.shape == (10, 1, 8, 8) and samples.min() >= -1 and samples.max() <= 1
    assert out.with_suffix(".png").exists()

    evaluated = _sde_edge("eval-nll", f"--workdir={workdir}", "--n=6", "--batch_size=3", "--steps=20", "--method=both")
    assert evaluated.returncode == 0, evaluated.stderr
    report = workdir / "eval_nll_test"
    assert {"results.csv", "summary.json", "kl_per_step.png"} <= {p.name for p in report.iterdir()}
    summary = json.loads((report / "summary.json").read_text())
    assert summary["ode_bpd"]["n"] == 6 and summary["vlb_bpd"]["n"] == 6
    assert summary["vlb_bpd"]["mean"] > 0


def test_eval_nll_names_a_missing_checkpoint(tmp_path):
    result = _sde_edge("eval-nll", f"--workdir={tmp_path}")
    assert result.returncode != 0 and "no checkpoint" in result.stderr


def test_eval_nll_refuses_a_checkpoint_that_does_not_fit_its_config(tmp_path):
    config = load_config(TINY)
    config.training.n_iters = 2
    train(config, tmp_path, progress=False)
    state = load_checkpoint(checkpoint_paths(tmp_path / "checkpoints")[-1])
    config.model.nf = 16  # the weights no longer fit
    state["config"] = config.to_json()
    save_checkpoint(tmp_path / "checkpoints", 99, state)
    result = _sde_edge("eval-nll", f"--workdir={tmp_path}", "--n=2")
    assert result.returncode != 0 and "does not fit the model" in result.stderr
