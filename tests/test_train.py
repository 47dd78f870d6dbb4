"""Training runs: bit-identical resume after SIGKILL, failure handling, DDP parity."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sde_edge.checkpoint import checkpoint_paths, load_checkpoint, load_latest
from sde_edge.config import load_config
from sde_edge.train import ConfigMismatchError, NonFiniteLossError, Trainer, train

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.py"
# The demo's network size: slow enough (~0.1 s a step) that the kill lands mid-run.
KILL_TEST_FLAGS = ["--config.data.image_size=16", "--config.model.nf=16", "--config.model.ch_mult=(1,2,2)",
                   "--config.model.attn_resolutions=(8,)", "--config.model.num_groups=8", "--config.training.batch_size=32",
                   "--config.model.dropout=0.1", "--progress=false"]


def _train_command(workdir, *flags):
    return [sys.executable, "-m", "sde_edge.cli", "train", f"--config={TINY}", f"--workdir={workdir}", *flags]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _assert_same_state(a, b):
    for key in ("model", "ema", "optimizer"):
        flat_a, flat_b = _tensors(a[key]), _tensors(b[key])
        assert flat_a.keys() == flat_b.keys()
        for name in flat_a:
            assert torch.equal(flat_a[name], flat_b[name]), f"{key}.{name} differs"


def _tensors(tree, prefix=""):
    out = {}
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, (list, tuple)) else []
    for key, value in items:
        if isinstance(value, torch.Tensor):
            out[f"{prefix}{key}"] = value
        else:
            out.update(_tensors(value, f"{prefix}{key}."))
    return out


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    subprocess.run(_train_command(straight, *KILL_TEST_FLAGS), check=True, env=_env(), capture_output=True, timeout=600)

    process = subprocess.Popen(_train_command(interrupted, *KILL_TEST_FLAGS), env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = interrupted / "checkpoints" / "checkpoint_00000010.pt"
    deadline = time.time() + 300
    while not target.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = [int(p.stem.split("_")[1]) for p in checkpoint_paths(interrupted / "checkpoints")]
    assert 10 in killed_at and max(killed_at) < 20, f"the kill came too late to test anything: {killed_at}"

    resumed = subprocess.run(_train_command(interrupted, *KILL_TEST_FLAGS), env=_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"at step {max(killed_at)}" in resumed.stdout
    _assert_same_state(load_latest(straight / "checkpoints")[0], load_latest(interrupted / "checkpoints")[0])
    assert load_latest(interrupted / "checkpoints")[0]["step"] == 20


def test_checkpoint_holds_what_resume_needs(tmp_path):
    train(load_config(TINY), tmp_path, progress=False)
    state = load_checkpoint(checkpoint_paths(tmp_path / "checkpoints")[-1])
    assert {"model", "ema", "optimizer", "step", "config", "rng", "data"} <= state.keys()
    assert {"python", "numpy", "torch", "cuda"} <= state["rng"].keys()
    assert state["data"] == {"epoch": 20 // (1527 // 16), "batch_in_epoch": 20 % (1527 // 16)}
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 1 + 20 // 5


def test_corrupt_latest_checkpoint_falls_back_with_a_warning(tmp_path, caplog):
    train(load_config(TINY), tmp_path, progress=False)
    paths = checkpoint_paths(tmp_path / "checkpoints")
    paths[-1].write_bytes(b"not a checkpoint")
    with caplog.at_level("WARNING"):
        state, path = load_latest(tmp_path / "checkpoints")
    assert path == paths[-2] and state["step"] == 15
    assert str(paths[-1]) in caplog.text
    config = load_config(TINY)
    config.training.n_iters = 25
    assert train(config, tmp_path, progress=False).step == 25


def test_changed_config_on_resume_is_a_clear_error(tmp_path):
    config = load_config(TINY)
    config.training.n_iters = 5
    train(config, tmp_path, progress=False)
    config.diffusion.tau = "isotropic"
    config.optim.lr = 1e-3
    config.training.n_iters = 10  # allowed to change
    with pytest.raises(ConfigMismatchError) as error:
        train(config, tmp_path, progress=False)
    message = str(error.value)
    assert "diffusion.tau" in message and "optim.lr" in message and "n_iters" not in message
    assert "--accept_config_changes" in message
    assert train(config, tmp_path, accept_config_changes=True, progress=False).step == 10


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = load_config(TINY)
    config.training.n_iters = 10
    trainer = Trainer(config, tmp_path, progress=False)
    for _ in range(5):
        trainer.train_step()
    trainer.save()
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="step 5"):
        trainer.run()
    state, path = load_latest(tmp_path / "checkpoints")
    assert state["step"] == 5
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_batch_larger_than_dataset_is_refused(tmp_path):
    config = load_config(TINY)
    config.training.batch_size = 4096
    with pytest.raises(ValueError, match="training.batch_size"):
        train(config, tmp_path, progress=False)


def test_torchrun_two_processes_match_one(tmp_path):
    """gloo on the CPU: parameters equal across ranks and equal to a single process with the same global batch."""
    flags = ["--config.training.n_iters=5", "--config.training.snapshot_freq=5", "--progress=false"]
    single = subprocess.run(_train_command(tmp_path / "single", *flags), env=_env(), capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr
    worker = ROOT / "tests" / "ddp_worker.py"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker),
               str(TINY), str(tmp_path / "ddp"), str(tmp_path / "params")]
    ddp = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr
    rank0 = torch.load(tmp_path / "params" / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "params" / "rank1.pt", weights_only=True)
    reference = load_latest(tmp_path / "single" / "checkpoints")[0]["model"]
    assert load_latest(tmp_path / "ddp" / "checkpoints")[0]["step"] == 5
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), f"{name} differs between ranks"
        torch.testing.assert_close(value, reference[name], atol=1e-5, rtol=0)
