"""Training runs: what a checkpoint holds, fallback and config checks on resume, the held-out
loss, and torchrun parity (crash safety is in test_reliability.py)."""
import csv
import os
import subprocess
import sys

import pytest
import torch

import forked
from helpers import ROOT, TINY
from sde_edge.config import load_config
from sde_edge.storage.checkpoint import checkpoint_paths, load_checkpoint, load_latest
from sde_edge.training.safety import ConfigMismatchError, DivergenceGuard
from sde_edge.training.trainer import train


def _train_command(workdir, *flags):
    return [sys.executable, "-m", "sde_edge.cli", "train", f"--config={TINY}", f"--workdir={workdir}", *flags]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_checkpoint_holds_what_resume_needs(tmp_path):
    train(load_config(TINY), tmp_path, progress=False)
    state = load_checkpoint(checkpoint_paths(tmp_path / "checkpoints")[-1])
    assert {"model", "ema", "optimizer", "step", "config", "rng", "guard"} <= state.keys()
    assert {"python", "numpy", "torch", "cuda"} <= state["rng"].keys()
    assert [int(p.stem.split("_")[1]) for p in checkpoint_paths(tmp_path / "checkpoints")] == [5, 10, 15, 20]


def test_held_out_loss_is_logged_to_metrics_csv_and_tensorboard(tmp_path):
    train(load_config(TINY), tmp_path, progress=False)
    with open(tmp_path / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]
    # the rate of the step logged: the default linear warmup (2e-3 reached after 200 updates)
    assert [float(r["lr"]) for r in rows] == pytest.approx([2e-3 * step / 200 for step in (5, 10, 15, 20)])
    held_out = [float(r["eval_loss"]) for r in rows]
    assert all(value > 0 for value in held_out)
    assert held_out[-1] < held_out[0], "the held-out loss of a learning model falls"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(tmp_path / "tensorboard"))
    accumulator.Reload()
    assert {"eval/loss", "train/loss"} <= set(accumulator.Tags()["scalars"])
    assert [e.value for e in accumulator.Scalars("eval/loss")] == pytest.approx(held_out, rel=1e-6)


def test_sessions_csv_records_where_each_start_and_resume_ran(tmp_path):
    config = load_config(TINY)
    config.training.n_iters = 10
    train(config, tmp_path, progress=False)
    config.training.n_iters = 20
    train(config, tmp_path, progress=False, accept_config_changes=True)
    with open(tmp_path / "sessions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    threads = torch.get_num_threads()
    assert [int(r["start_step"]) for r in rows] == [0, 10]
    assert {r["device"] for r in rows} == {f"CPU, {threads} thread" + ("s" if threads > 1 else "")}
    assert all(r["torch"] == torch.__version__ for r in rows)


def test_keep_every_keeps_milestones_out_of_the_rotation(tmp_path):
    config = load_config(TINY)
    config.training.keep_checkpoints = 1
    config.training.keep_every = 10
    train(config, tmp_path, progress=False)
    assert [int(p.stem.split("_")[1]) for p in checkpoint_paths(tmp_path / "checkpoints")] == [10, 20]


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
    assert (tmp_path / "checkpoints" / "checkpoint_00000020.pt.corrupt").exists(), "the bad file is kept aside"


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


def test_divergence_guard_counts_skips_and_compares_with_the_lowest_running_median():
    guard = DivergenceGuard(max_skipped=3, factor=100, window=4)
    for loss in (10.0, 8.0, 6.0, 5.0, 5.5):
        assert guard.update(loss, True) is None
    assert guard.reference == pytest.approx(5.75)  # the median of the last four, the lowest seen
    assert guard.update(500.0, True) is None and "exceeds" in guard.update(600.0, True)
    guard = DivergenceGuard(max_skipped=3, factor=100)
    assert guard.update(float("nan"), False) is None and guard.update(float("inf"), False) is None
    assert "3 updates in a row" in guard.update(float("nan"), False)
    assert guard.total == 3


def test_batch_larger_than_dataset_is_refused(tmp_path):
    config = load_config(TINY)
    config.training.batch_size = 4096
    with pytest.raises(ValueError, match="training.batch_size"):
        train(config, tmp_path, progress=False)


def test_torchrun_two_processes_match_one(tmp_path):
    """gloo on the CPU: parameters equal across ranks and equal to a single process with the same global batch."""
    flags = ["--config.training.n_iters=5", "--config.training.snapshot_freq=5", "--progress=false"]
    single = forked.run(
        _train_command(tmp_path / "single", *flags), env=_env(), timeout=600
    )
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
    with open(tmp_path / "ddp" / "sessions.csv", newline="") as handle:  # written once, by rank 0
        assert [row["device"] for row in csv.DictReader(handle)] == ["CPU, 1 thread x 2 processes"]
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), f"{name} differs between ranks"
        torch.testing.assert_close(value, reference[name], atol=1e-5, rtol=0)


def test_threads_default_to_cores_per_torchrun_process(monkeypatch):
    from sde_edge.devices import set_cpu_threads

    previous = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setenv("LOCAL_WORLD_SIZE", str(max(1, os.cpu_count())))
        assert set_cpu_threads() == 1
        assert set_cpu_threads(2) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
