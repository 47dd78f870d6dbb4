"""Training never loses a run. Each test reproduces one way a run used to be lost or corrupted
(they drive the ``sde-edge`` command line only, so they also run against older versions; each command
runs in its own process, forked from a server that has imported torch: tests/forked.py)."""
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import forked

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.py"
QUIET = ["--progress=false"]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _train(workdir, *flags):
    return [sys.executable, "-m", "sde_edge.cli", "train", f"--config={TINY}", f"--workdir={workdir}", *QUIET, *flags]


def _run(command, timeout=600):
    return forked.run(command, env=_env(), timeout=timeout)


def _checkpoints(workdir):
    folder = Path(workdir) / "checkpoints"
    return sorted(folder.glob("checkpoint_*.pt")) if folder.is_dir() else []


def _steps(workdir):
    return [int(re.search(r"(\d+)", p.name).group(1)) for p in _checkpoints(workdir)]


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _all_finite(state):
    return all(bool(torch.isfinite(v).all()) for v in state["model"].values() if v.is_floating_point())


def _one_line_error(result):
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return result.returncode == 2 and "Traceback" not in result.stderr and lines and "error" in lines[-1]


def test_1_negative_keep_checkpoints_is_refused_and_deletes_nothing(tmp_path):
    assert _run(_train(tmp_path, "--config.training.n_iters=10")).returncode == 0
    before = _steps(tmp_path)
    result = _run(_train(tmp_path, "--config.training.keep_checkpoints=-1", "--config.training.n_iters=20"))
    assert _one_line_error(result) and "training.keep_checkpoints" in result.stderr
    assert _steps(tmp_path) == before


def test_2_divergence_stops_without_saving_the_damage_and_resumes_with_a_lower_lr(tmp_path):
    assert _run(_train(tmp_path, "--config.training.n_iters=10")).returncode == 0
    exploded = _run(
        _train(
            tmp_path,
            "--config.optim.lr=1e10",
            "--config.optim.warmup=0",
            "--config.training.n_iters=60",
            "--accept_config_changes",
        )
    )
    assert exploded.returncode == 2 and "diverged" in exploded.stderr, exploded.stderr[-2000:]
    assert "checkpoint_00000010.pt" in exploded.stderr, "the error names the last good checkpoint"
    assert max(_steps(tmp_path)) == 10 and all(_all_finite(_load(p)) for p in _checkpoints(tmp_path))
    calmer = _run(_train(tmp_path, "--config.optim.lr=1e-3", "--config.training.n_iters=20", "--accept_config_changes"))
    assert calmer.returncode == 0, calmer.stderr[-2000:]
    state = _load(_checkpoints(tmp_path)[-1])
    assert int(state["step"]) == 20 and _all_finite(state)
    assert max(v.abs().max().item() for v in state["model"].values() if v.is_floating_point()) < 1e3


def test_2b_an_enormous_lr_never_leaves_a_poisoned_checkpoint(tmp_path):
    assert _run(_train(tmp_path, "--config.training.n_iters=10")).returncode == 0
    result = _run(_train(tmp_path, "--config.optim.lr=1e30", "--config.optim.warmup=0", "--config.training.n_iters=60",
                         "--accept_config_changes"))
    assert result.returncode == 2
    for path in _checkpoints(tmp_path):
        state = _load(path)
        largest = max(v.abs().max().item() for v in state["model"].values() if v.is_floating_point())
        assert largest < 1e3, f"{path.name} holds weights of {largest:.3g}"


def test_3_unreadable_checkpoints_stop_the_run_instead_of_restarting_it(tmp_path):
    assert _run(_train(tmp_path, "--config.training.n_iters=10")).returncode == 0
    metrics = (tmp_path / "metrics.csv").read_text()
    for path in _checkpoints(tmp_path):
        path.write_bytes(path.read_bytes()[:100])  # truncated
    result = _run(_train(tmp_path, "--config.training.n_iters=20"))
    assert _one_line_error(result), result.stderr[-2000:]
    assert "checkpoint_00000010.pt" in result.stderr and "--restart" in result.stderr
    assert (tmp_path / "metrics.csv").read_text() == metrics
    assert _steps(tmp_path) == [5, 10]  # still there, untouched


def _flip_a_weight_byte(path):
    """Flip one byte inside the stored bytes of the EMA model's largest tensor."""
    state = _load(path)
    name, tensor = max(state["ema"]["model"].items(), key=lambda item: item[1].numel())
    data = bytearray(path.read_bytes())
    needle = tensor.contiguous().view(torch.uint8).numpy().tobytes()[:64]
    offset = bytes(data).find(needle)
    assert offset >= 0
    data[offset + 10] ^= 0xFF
    path.write_bytes(bytes(data))


def test_4_a_flipped_byte_is_caught_and_the_previous_checkpoint_used(tmp_path):
    assert _run(_train(tmp_path, "--config.training.n_iters=10")).returncode == 0
    _flip_a_weight_byte(_checkpoints(tmp_path)[-1])
    out = tmp_path / "s.npz"
    result = _run([sys.executable, "-m", "sde_edge.cli", "sample", f"--workdir={tmp_path}", "--n=2", "--steps=2",
                   f"--out={out}"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "checkpoint_00000010.pt" in result.stderr and "checksum" in result.stderr
    assert "from step 5" in result.stdout


def test_5_a_second_trainer_on_the_same_workdir_stops_at_once_naming_the_first(tmp_path):
    first = forked.Process(_train(tmp_path, "--config.training.n_iters=100000"), env=_env())
    try:
        deadline = time.time() + 300
        while not (tmp_path / "metrics.csv").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.1)
        second = _run(_train(tmp_path, "--config.training.n_iters=100000"), timeout=120)
        assert _one_line_error(second) and f"PID {first.pid}" in second.stderr, second.stderr[-2000:]
    finally:
        first.kill()
        first.wait()
    rows = (tmp_path / "metrics.csv").read_text().splitlines()[1:]
    steps = [int(row.split(",")[0]) for row in rows]
    assert steps == sorted(set(steps))


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_6_interrupting_saves_a_checkpoint_and_resumes_there(tmp_path, signum, code):
    process = forked.Process(
        _train(
            tmp_path,
            "--config.training.n_iters=100000",
            "--config.training.checkpoint_freq=100000",
            "--config.training.checkpoint_minutes=60",
        ),
        env=_env(),
    )
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        metrics = tmp_path / "metrics.csv"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 4:
            break
        time.sleep(0.1)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr[-2000:]
    assert "Traceback" not in stderr and "resume" in stderr
    interrupted_at = max(_steps(tmp_path))
    assert interrupted_at >= 15
    resumed = _run(_train(tmp_path, f"--config.training.n_iters={interrupted_at + 5}"))
    assert resumed.returncode == 0 and f"at step {interrupted_at}" in resumed.stdout


def _state_tensors(state):
    out = {}
    for key in ("model", "ema", "optimizer"):
        stack = [(key, state[key])]
        while stack:
            prefix, node = stack.pop()
            if isinstance(node, torch.Tensor):
                out[prefix] = node
            elif isinstance(node, dict):
                stack += [(f"{prefix}.{k}", v) for k, v in node.items()]
            elif isinstance(node, (list, tuple)):
                stack += [(f"{prefix}.{i}", v) for i, v in enumerate(node)]
    return out


KILL_FLAGS = [
    "--config.data.image_size=16",
    "--config.model.nf=16",
    "--config.model.ch_mult=(1,2,2)",
    "--config.model.attn_resolutions=(8,)",
    "--config.model.num_groups=8",
    "--config.training.batch_size=32",
    "--config.model.dropout=0.1",
    "--config.training.checkpoint_freq=1",
    "--config.training.keep_checkpoints=2",
    "--config.training.n_iters=30",
]


def test_repeated_sigkill_and_resume_is_bit_identical(tmp_path):
    """Killed at random moments (checkpoints are written every step, so kills land mid-write too)."""
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    assert _run(_train(straight, *KILL_FLAGS)).returncode == 0
    rng = random.Random(0)
    kills = 0
    for _ in range(20):
        if kills >= 5:
            break
        process = forked.Process(_train(interrupted, *KILL_FLAGS), env=_env())
        start = time.time()
        while not _checkpoints(interrupted) and time.time() - start < 300 and process.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.6))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        if max(_steps(interrupted), default=0) >= 30:
            break
    assert kills >= 5, "the run finished before five kills landed"
    finished = _run(_train(interrupted, *KILL_FLAGS))
    assert finished.returncode == 0, finished.stderr[-2000:]
    a, b = _state_tensors(_load(_checkpoints(straight)[-1])), _state_tensors(_load(_checkpoints(interrupted)[-1]))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after {kills} kills"
    assert not list((interrupted / "checkpoints").glob(".checkpoint_*")), "temp files of killed writes were not cleaned"


def _small_filesystem(path, size):
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return result.returncode == 0


def test_a_full_disk_is_one_line_and_leaves_the_previous_checkpoint(tmp_path):
    assert _run(_train(tmp_path / "measure", "--config.training.n_iters=5")).returncode == 0
    checkpoint_bytes = _checkpoints(tmp_path / "measure")[0].stat().st_size
    disk = tmp_path / "small"
    if not _small_filesystem(disk, size=int(2.5 * checkpoint_bytes) + 64 * 1024):
        pytest.skip("this machine does not let the tests mount a size-limited tmpfs")
    try:
        # two checkpoints fit, the third does not
        result = _run(_train(disk, "--config.training.n_iters=40", "--config.training.keep_checkpoints=10"))
        assert _one_line_error(result) and "no space left on device" in result.stderr, result.stderr[-2000:]
        assert "intact" in result.stderr
        assert not list((disk / "checkpoints").glob(".checkpoint_*")), "the failed write left its temp file"
        assert _all_finite(_load(_checkpoints(disk)[-1]))
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
