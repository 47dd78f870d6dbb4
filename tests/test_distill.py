"""Progressive distillation (paper_appendix/math.md, section 10): the per-pixel target makes one
student DDIM step land where two teacher steps land (checked on the exact mixture oracle), a
student trained on it takes that step better than its teacher does, and a killed round resumes
bit for bit."""
import json
import os
import signal
import sys
import time

import pytest
import torch

import forked
from helpers import ROOT, TINY
from sde_edge.config import default_diffusion
from sde_edge.oracle import MixtureOracle, rectangle_images
from sde_edge.processes import build_sde
from sde_edge.sampling.discrete import ddim_step
from sde_edge.score import Denoiser
from sde_edge.storage.checkpoint import checkpoint_paths, load_checkpoint
from sde_edge.tables import read_csv
from sde_edge.tensors import time_like
from sde_edge.training.distill import DistillationLoss
from sde_edge.training.progressive import round_steps_of

WEIGHTS = (0.5, 0.3, 0.2)


def _oracle(tau, dtype=torch.float32):
    sde = build_sde(default_diffusion(tau=tau))
    return MixtureOracle(rectangle_images(3).to(dtype), WEIGHTS, sde), sde


def _noisy(sde, loss, n, seed, dtype=torch.float32):
    """(y_t, t) as a round draws them: x0 from the mixture, t = i / K, the forward process's noise."""
    generator = torch.Generator().manual_seed(seed)
    x0 = rectangle_images(3).to(dtype)[torch.multinomial(torch.tensor(WEIGHTS), n, True, generator=generator)]
    t, _ = loss.sample_times(n, generator=generator, dtype=dtype)
    t = time_like(t, x0)
    eps = torch.randn(x0.shape, generator=generator, dtype=dtype)
    return sde.alpha(t, x0) * x0 + sde.noise_std(sde.noise_statistic(x0), t, x0) * eps, t


def _rms(a, b):
    return float((a - b).double().pow(2).mean().sqrt())


@pytest.mark.parametrize("tau,steps,tolerance", [("isotropic", 4, 1e-6), ("linear", 2, 1e-6),
                                                 ("linear_ramp", 4, 3e-3), ("linear", 4, 3e-3)])
def test_the_target_makes_one_student_step_equal_two_teacher_steps(tau, steps, tolerance):
    """An ideal student (its x0_hat is the target) against two steps of the exact teacher. Exact where
    r = s(x, s) / s(x, t) does not depend on x (isotropic noise; K = 2, whose steps end at t_phi
    and at 0); the least-squares residual elsewhere, well below the teacher's own single step."""
    oracle, sde = _oracle(tau, torch.float64)
    loss = DistillationLoss(oracle, sde, steps)
    y_t, t = _noisy(sde, loss, 256, seed=0, dtype=torch.float64)
    s = (t - 1.0 / steps).clamp_min(0)
    target = loss.target(y_t, t)
    y_two, _ = loss.teacher_steps(y_t, t)
    # the student's step, written out here from math.md (not through the loss's own helper)
    statistic = sde.noise_statistic(sde.from_basis(target))
    ratio = sde.noise_std(statistic, s, y_t) / sde.noise_std(statistic, t, y_t)
    y_one = sde.alpha(s, y_t) * target + ratio * (y_t - sde.alpha(t, y_t) * target)
    teacher_one = ddim_step(sde, y_t, Denoiser(oracle, sde)(y_t, t), s)
    assert _rms(y_one, y_two) < tolerance
    if tolerance > 1e-6:
        assert _rms(y_one, y_two) < 0.25 * _rms(teacher_one, y_two)


class _StudentOfTheOracle(torch.nn.Module):
    """The oracle plus one small MLP per student time whose last layer starts at zero: a student that
    starts as its teacher, as a distilled network starts from the teacher's weights."""

    def __init__(self, oracle, steps, pixels=64, width=256):
        super().__init__()
        self.oracle, self.parameterization, self.steps = oracle, oracle.parameterization, steps
        self.heads = torch.nn.ModuleList(torch.nn.Sequential(
            torch.nn.Linear(pixels, width), torch.nn.SiLU(), torch.nn.Linear(width, width), torch.nn.SiLU(),
            torch.nn.Linear(width, pixels)) for _ in range(steps))
        for head in self.heads:
            torch.nn.init.zeros_(head[-1].weight)
            torch.nn.init.zeros_(head[-1].bias)

    def forward(self, x, t):
        with torch.no_grad():
            base = self.oracle(x, t)
        index = (t * self.steps).round().long().clamp(1, self.steps) - 1
        corrections = torch.stack([head(x.flatten(1)) for head in self.heads], 1)
        return base + corrections[torch.arange(len(x)), index].view_as(x)


def test_a_student_trained_for_one_round_steps_closer_to_two_teacher_steps_than_the_teacher():
    """Tolerance: the median over held-out paths of the RMS mismatch with two teacher steps is below
    0.6 of the teacher's own single step's (measured: 0.44 here, 0.44-0.54 over five training seeds;
    with a constant learning rate the last iterate wandered, 0.58 and 0.77 on two seeds). The median,
    because a few paths whose two teacher steps cross into another mode dominate a mean and no smooth
    student follows them."""
    torch.manual_seed(0)
    oracle, sde = _oracle("linear_ramp")
    student = _StudentOfTheOracle(oracle, 4)
    loss = DistillationLoss(oracle, sde, 4)
    iterations, batch = 300, 128
    optimizer = torch.optim.Adam(student.parameters(), lr=2e-3)
    decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1 - i / iterations)
    images = rectangle_images(3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(iterations):
        x0 = images[torch.multinomial(torch.tensor(WEIGHTS), batch, True, generator=generator)]
        t, _ = loss.sample_times(batch, generator=generator)
        value = loss(student, x0, t, torch.randn(x0.shape, generator=generator))
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        decay.step()
    y_t, t = _noisy(sde, loss, 512, seed=99)  # held-out noise
    s = (t - 0.25).clamp_min(0)
    with torch.no_grad():
        y_two, _ = loss.teacher_steps(y_t, t)
        teacher_one = ddim_step(sde, y_t, Denoiser(oracle, sde)(y_t, t), s)
        student_one = ddim_step(sde, y_t, Denoiser(student, sde)(y_t, t), s)

    def median_mismatch(y):
        return float((y - y_two).flatten(1).pow(2).mean(1).sqrt().median())

    assert median_mismatch(student_one) < 0.6 * median_mismatch(teacher_one)


def test_round_step_counts_halve_down_to_min_steps():
    assert round_steps_of(64, 4) == [32, 16, 8, 4]
    assert round_steps_of(8, 2) == [4, 2]
    for steps, min_steps in ((12, 4), (4, 4), (6, 4)):
        with pytest.raises(ValueError, match="power of two"):
            round_steps_of(steps, min_steps)


def _cli(*args):
    return [sys.executable, "-m", "sde_edge.cli", *args]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def test_a_killed_round_resumes_bit_identically_and_the_student_samples(tmp_path):
    teacher = tmp_path / "teacher"
    trained = forked.run(_cli("train", f"--config={TINY}", f"--workdir={teacher}", "--config.training.n_iters=10",
                              "--progress=false"), env=_env(), timeout=600)
    assert trained.returncode == 0, trained.stderr[-2000:]
    rounds = {}
    for name in ("straight", "killed"):
        (tmp_path / name).mkdir()
        os.symlink(teacher / "checkpoints", tmp_path / name / "checkpoints")  # two rounds from one teacher
        rounds[name] = tmp_path / name / "distill" / "steps_8"
    distill = ["distill", "--steps=16", "--round_steps=40", "--progress=false"]  # two rounds: 8 and 4 steps
    assert forked.run(_cli(*distill, f"--workdir={tmp_path / 'straight'}"), env=_env(), timeout=600).returncode == 0
    process = forked.Process(_cli(*distill, f"--workdir={tmp_path / 'killed'}"), env=_env())
    start = time.time()
    while not checkpoint_paths(rounds["killed"] / "checkpoints") and time.time() - start < 300:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    steps = [int(p.stem.split("_")[1]) for p in checkpoint_paths(rounds["killed"] / "checkpoints")]
    assert steps and max(steps) < 40, f"the kill landed after the round finished ({steps})"
    resumed = forked.run(_cli(*distill, f"--workdir={tmp_path / 'killed'}"), env=_env(), timeout=600)
    assert resumed.returncode == 0 and "resumed from" in resumed.stdout, resumed.stderr[-2000:]
    a, b = (load_checkpoint(checkpoint_paths(rounds[n] / "checkpoints")[-1]) for n in ("straight", "killed"))
    assert a["step"] == b["step"] == 40
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
        assert torch.equal(a["ema"]["model"][key], b["ema"]["model"][key]), key
    # every round trains at a tenth of the first teacher's rate (not a tenth of the round before's)
    def rate(folder):
        return json.loads(load_checkpoint(checkpoint_paths(folder / "checkpoints")[-1])["config"])["optim"]["lr"]

    rounds_of_straight = tmp_path / "straight" / "distill"
    assert {rate(rounds_of_straight / f"steps_{k}") for k in (8, 4)} == {0.1 * rate(teacher)}
    last = tmp_path / "killed" / "distill" / "steps_4"
    drawn = forked.run(_cli("sample", f"--workdir={last}", "--n=4", f"--out={tmp_path / 's.npz'}"),
                       env=_env(), timeout=600)
    assert drawn.returncode == 0 and "ddim, 4 steps" in drawn.stdout, drawn.stderr[-2000:]
    # the students beside the teacher in a sampler comparison, from the same initial noise (paired rows)
    compare = [sys.executable, str(ROOT / "tools" / "compare_samplers.py"), f"--workdir={teacher}", "--samplers=ddim",
               "--steps=4", "--reference=ddpm@10", "--n=8", "--features=classifier"]
    compared = forked.run([*compare, f"--students={rounds_of_straight}", f"--out={tmp_path / 'cmp'}"], env=_env(),
                          timeout=600)
    assert compared.returncode == 0, compared.stderr[-2000:]
    rows = [r for r in read_csv(tmp_path / "cmp" / "results.csv") if r["grid"] == "distilled"]
    assert [(r["sampler"], r["steps"]) for r in rows] == [("ddim", "8"), ("ddim", "4")]
    assert all(float(r["fd_diff_se"]) > 0 for r in rows)  # paired with ddpm@10 of the teacher
    assert float(rows[1]["fd_vs_uniform_se"]) > 0  # and with the teacher's own 4 ddim steps
    refused = forked.run([*compare, f"--students={teacher}", f"--out={tmp_path / 'cmp2'}"], env=_env(), timeout=600)
    assert refused.returncode != 0 and "not a distilled student" in refused.stderr
    other = [*compare[:2], f"--workdir={rounds_of_straight / 'steps_8'}", *compare[3:]]  # not their teacher
    refused = forked.run([*other, f"--students={rounds_of_straight}", f"--out={tmp_path / 'cmp3'}"], env=_env(),
                         timeout=600)
    assert refused.returncode != 0 and "distilled from other weights" in refused.stderr, refused.stderr[-2000:]
