"""The sde-edge console script: every subcommand end to end on a tiny run, its --help, and
every user error as one line on stderr with exit status 2."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import forked
from helpers import TINY
from sde_edge.config import load_config
from sde_edge.storage.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint
from sde_edge.training.trainer import train


def _sde_edge(*args, timeout=300, fresh=False):
    """``python -m sde_edge.cli ARGS`` in a new process: forked from a server that has imported torch
    (tests/forked.py), or with ``fresh`` a new interpreter, as the console script starts."""
    command = [sys.executable, "-m", "sde_edge.cli", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if fresh:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    return forked.run(command, env=env, timeout=timeout)


def _assert_one_line_error(result, *needles):
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    for needle in needles:
        assert needle in last, f"{needle!r} not in {last!r}"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    trained = _sde_edge("train", f"--config={TINY}", f"--workdir={workdir}", "--config.training.n_iters=10",
                        "--config.diffusion.tau=linear_ramp", "--progress=false")
    assert trained.returncode == 0, trained.stderr
    for name in ("samples.png", "loss_curve.png", "forward_process.png"):
        assert (workdir / name).exists() and str(workdir / name) in trained.stdout
    return workdir


def test_forward_writes_a_png(tmp_path):
    out = tmp_path / "figs" / "forward.png"
    result = _sde_edge("forward", f"--out={out}", "--tau=linear_ramp", "--t_phi=0.4")
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    with Image.open(out) as image:
        assert image.width > 800 and image.height > 400


def test_unknown_subcommand_prints_usage():
    result = _sde_edge("frobnicate", fresh=True)
    assert result.returncode == 2
    assert "forward" in result.stderr and "eval-samples" in result.stderr


@pytest.mark.parametrize(
    "command,flag",
    [
        ("train", "accept_config_changes"),
        ("sample", "--eta"),
        ("eval-nll", "--method"),
        ("eval-samples", "--features"),
        ("sdedit", "--t0"),
        ("forward", "--tau"),
    ],
)
def test_every_subcommand_help_lists_its_flags(command, flag):
    result = _sde_edge(command, "--help")
    assert result.returncode == 0, result.stderr
    assert flag in result.stdout
    assert "--workdir" in result.stdout or command == "forward"


def test_sample_defaults_to_the_runs_sampling_config_and_takes_sampler_options(tiny_run, tmp_path):
    out = tmp_path / "draws" / "s.npz"
    sampled = _sde_edge("sample", f"--workdir={tiny_run}", "--n=10", "--seed=3", f"--out={out}", "--batch_size=4")
    assert sampled.returncode == 0, sampled.stderr
    assert "(ddpm, 5 steps" in sampled.stdout  # tiny.py: sampling.method = ddpm, sampling.steps = 5
    samples = np.load(out)["samples"]
    assert samples.shape == (10, 1, 8, 8) and samples.min() >= -1 and samples.max() <= 1
    assert out.with_suffix(".png").exists()
    with_eta = _sde_edge("sample", f"--workdir={tiny_run}", "--n=4", "--sampler=ddim", "--eta=0.5", f"--out={out}")
    assert with_eta.returncode == 0 and "(ddim, 5 steps" in with_eta.stdout
    refused = _sde_edge("sample", f"--workdir={tiny_run}", "--n=4", "--sampler=ddpm", "--eta=0.5", f"--out={out}")
    _assert_one_line_error(refused, "--eta", "ddpm")
    # --compile runs the network through torch.compile (aot_eager traces as inductor does, without its
    # C++ compiling): the same samples to rounding
    compiled = _sde_edge("sample", f"--workdir={tiny_run}", "--n=10", "--seed=3", f"--out={out}", "--batch_size=4",
                         "--compile=aot_eager")
    assert compiled.returncode == 0 and "network compiled with aot_eager" in compiled.stdout, compiled.stderr
    assert np.allclose(np.load(out)["samples"], samples, atol=1e-5)


def test_eval_nll_reads_its_defaults_from_config_eval_and_explains_the_bound(tiny_run):
    evaluated = _sde_edge("eval-nll", f"--workdir={tiny_run}", "--n=6", "--batch_size=3", "--steps=20", "--method=both")
    assert evaluated.returncode == 0, evaluated.stderr
    report = tiny_run / "eval_nll_test"
    assert {"results.csv", "summary.json", "kl_per_step.png"} <= {p.name for p in report.iterdir()}
    summary = json.loads((report / "summary.json").read_text())
    assert summary["ode_bpd"]["n"] == 6 and summary["vlb_bpd"]["n"] == 6 and summary["vlb_bpd"]["mean"] > 0
    assert "bound" in summary["reading"] and "uniform model of 8-bit data scores 8" in evaluated.stdout
    default_n = _sde_edge("eval-nll", f"--workdir={tiny_run}", "--steps=3", "--method=vlb")
    assert default_n.returncode == 0 and '"n": 256' in default_n.stdout  # config.eval.num_samples


def test_eval_samples_and_sdedit_run_on_a_tiny_run(tiny_run, tmp_path):
    out = tmp_path / "quality"
    evaluated = _sde_edge("eval-samples", f"--workdir={tiny_run}", "--n=20", "--steps=3", "--features=classifier",
                          f"--out={out}", "--n_reference=40")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("features", "n", "n_reference", "fd", "kid", "kid_std", "precision", "recall", "swd", "swd_mean"):
        assert key in metrics
    assert metrics["features"].startswith("classifier") and len(metrics["swd"]) == 2  # 8x8: one band and the residual
    assert {"samples.png", "swd_per_level.png", "samples.npz"} <= {p.name for p in out.iterdir()}
    edited = _sde_edge(
        "sdedit", f"--workdir={tiny_run}", "--n=5", "--steps=3", "--t0=0.4", f"--out={tmp_path / 'e.npz'}"
    )
    assert edited.returncode == 0, edited.stderr
    arrays = np.load(tmp_path / "e.npz")
    assert arrays["samples"].shape == arrays["guides"].shape == arrays["sources"].shape == (5, 1, 8, 8)
    assert (tmp_path / "e.png").exists()


@pytest.mark.parametrize("command", ["sample", "sdedit", "eval-samples"])
def test_sampling_commands_read_their_partial_file_and_refuse_a_broken_one(tiny_run, tmp_path, command):
    out = tmp_path / ("quality" if command == "eval-samples" else "s.npz")
    folder = out / "samples.partial" if command == "eval-samples" else out.with_suffix(".partial")
    partial = folder / "batch_00000000.pt"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"cut short")
    result = _sde_edge(command, f"--workdir={tiny_run}", "--n=6", "--steps=3", f"--out={out}")
    _assert_one_line_error(result, str(partial), "unreadable partial sampling run")
    assert partial.read_bytes() == b"cut short"  # nothing is lost


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case", ["no samples array", "wrong channels", "out of range", "too few"])
def test_eval_samples_bad_input_is_one_line(tmp_path, case):
    good = np.zeros((20, 1, 16, 16), dtype=np.float32)
    arrays = {
        "no samples array": {"images": good},
        "wrong channels": {"samples": np.zeros((20, 3, 16, 16), np.float32)},
        "out of range": {"samples": good + 3.0},
        "too few": {"samples": good[:3]},
    }[case]
    needle = {"no samples array": "no array 'samples'", "wrong channels": "(3, 16, 16)", "out of range": "[-1, 1]",
              "too few": "at least 4"}[case]
    result = _sde_edge(
        "eval-samples",
        f"--samples={_npz(tmp_path / 'x.npz', **arrays)}",
        "--config=configs/digits_edge.py",
        f"--out={tmp_path / 'out'}",
    )
    _assert_one_line_error(result, needle)


# One call per kind of mistake; every config field's check is tested in-process in test_config.py.
BAD_CALLS = [
    (["train", "--config=configs/nope.py", "--workdir={tmp}"], "nope.py"),
    (["train", "--config=configs", "--workdir={tmp}"], "is a folder"),
    (["train", f"--config={TINY}", "--workdir={tmp}", "--config.training.batchsize=8"], "did you mean 'batch_size'"),
    (["train", f"--config={TINY}", "--workdir={tmp}", "--config.sampling.method=ddpn"], "sampling.method"),
    (["train", f"--config={TINY}", "--workdir={file}"], "is a file"),
    (["sample", "--workdir={tmp}/missing"], "does not exist"),
    (["eval-nll", "--workdir={empty}"], "no checkpoint"),
    (["sample", "--workdir={run}", "--steps=0"], "--steps"),
    (["sample", "--workdir={run}", "--sampler=dpm"], "--sampler"),
    (["sample", "--workdir={run}", "--sampler=pc", "--snr=-1"], "snr"),
    (["sample", "--workdir={run}", "--out={file}/x.npz"], "--out"),
    # /proc refuses new files even to root (who ignores permission bits): a read-only place anywhere
    (["sample", "--workdir={run}", "--out=/proc/sde_edge_test/x.npz"], "--out /proc/sde_edge_test is not writable"),
    (["eval-nll", "--workdir={run}", "--out=/proc/sde_edge_test"], "not writable"),
    (["train", f"--config={TINY}", "--workdir=/proc/sde_edge_test"], "--workdir /proc/sde_edge_test is not writable"),
]


@pytest.mark.parametrize("args,needle", BAD_CALLS, ids=lambda v: v if isinstance(v, str) else " ".join(v)[:60])
def test_user_errors_are_one_line_with_exit_status_2(tiny_run, tmp_path, args, needle):
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    fill = {"tmp": tmp_path / "w", "file": tmp_path / "a_file", "run": tiny_run, "empty": tmp_path / "empty"}
    result = _sde_edge(*[arg.format(**fill) for arg in args])
    _assert_one_line_error(result, needle)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits (the /proc cases above cover read-only)")
def test_a_read_only_workdir_is_refused_before_any_work(tiny_run, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = _sde_edge("sample", f"--workdir={tiny_run}", f"--out={locked / 'x.npz'}")
        _assert_one_line_error(result, "not writable")
    finally:
        locked.chmod(0o700)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a GPU")
def test_cuda_without_a_gpu_is_one_line(tmp_path):
    result = _sde_edge("train", f"--config={TINY}", f"--workdir={tmp_path}", "--config.device=cuda")
    _assert_one_line_error(result, "CUDA is not available")


def test_verbose_shows_the_traceback(tmp_path):  # and a user error from a brand-new interpreter
    result = _sde_edge("train", "--config=configs/nope.py", f"--workdir={tmp_path}", "--verbose", fresh=True)
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_restoring_a_run_never_downloads_or_writes_outside_it(tmp_path):
    """A checkpoint whose stored config asks for a download into a folder of its choosing."""
    config = load_config(TINY)
    config.training.n_iters = 2
    train(config, tmp_path / "run", progress=False)
    path = checkpoint_paths(tmp_path / "run" / "checkpoints")[-1]
    state = load_checkpoint(path)
    stored = json.loads(state["config"])
    elsewhere = tmp_path / "elsewhere" / "mnist"
    stored["data"].update(dataset="mnist", download=True, root=str(elsewhere))
    state["config"] = json.dumps(stored)
    save_checkpoint(path.parent, 99, state)
    result = _sde_edge("eval-nll", f"--workdir={tmp_path / 'run'}", "--n=2", "--method=vlb", "--steps=3")
    _assert_one_line_error(result, "data.download")
    assert not (tmp_path / "elsewhere").exists()


def test_eval_nll_refuses_a_checkpoint_that_does_not_fit_its_config(tmp_path):
    config = load_config(TINY)
    config.training.n_iters = 2
    train(config, tmp_path, progress=False)
    state = load_checkpoint(checkpoint_paths(tmp_path / "checkpoints")[-1])
    config.model.nf = 16  # the weights no longer fit
    state["config"] = config.to_json()
    save_checkpoint(tmp_path / "checkpoints", 99, state)
    result = _sde_edge("eval-nll", f"--workdir={tmp_path}", "--n=2")
    _assert_one_line_error(result, "does not fit the model")
