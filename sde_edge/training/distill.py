"""Progressive distillation (Salimans and Ho 2022) with per-pixel noise (paper_appendix/math.md,
section 10): a student learns to take one deterministic DDIM step where its teacher takes two.

A round is an ordinary training run (checkpoints, resume, Ctrl-C, held-out loss) whose loss is
``DistillationLoss``: for x_t drawn as in training at a student time t = i / K, the teacher takes
the DDIM steps t -> t - 1/(2K) -> t - 1/K = s, and the student is taught the x0 whose single step
t -> s lands on the teacher's y_s in every coordinate:

    y_s = alpha_s x + (s(x, s) / s(x, t)) (y_t - alpha_t x)
    =>  x = (y_s - r y_t) / (alpha_s - r alpha_t),   r = s(x, s) / s(x, t) per coordinate.

With the edge-preserving process r depends on x (its edge map, normalised over the image): the
equation couples the pixels and a plain fixed-point iteration of it diverges, so x is the
least-squares solution of the student's step against the teacher's y_s, by ``target_iterations``
steps of L-BFGS from the closed form at the teacher's own statistic. Where r does not depend on x
(the isotropic process, t >= t_phi, s = 0) the closed form is exact. The student is fitted with its
teacher's own training loss (weighting and reduction), the target's noise y_t - alpha_t x in place
of sigma eps: S&H's truncated-SNR weight on the x error would multiply a scaled-eps network's
output error by 1 / alpha_t^2 at t = 1 (measured: the first round diverged at step 137).
"""
from pathlib import Path

import torch

from sde_edge.losses import ScoreMatchingLoss, noised
from sde_edge.restore import load_run
from sde_edge.sampling.discrete import ddim_step
from sde_edge.score import Denoiser
from sde_edge.tensors import time_like

TEACHER_FILE = "teacher.pt"  # in a round's folder: the copy of its teacher's checkpoint


class DistillationLoss:
    """The loss of one round: the student's x0_hat against the two-teacher-step target (above)."""

    def __init__(self, teacher, sde, steps, target_iterations=30, score_matching=None):
        if not (isinstance(steps, int) and steps >= 1):
            raise ValueError(f"distill.steps must be a positive integer, got {steps!r}")
        self.teacher, self.sde, self.steps = Denoiser(teacher, sde), sde, steps
        self.target_iterations = target_iterations
        # the weighting and reduction of the teacher's own training loss (paper: 1 per coordinate)
        self.score_matching = score_matching or ScoreMatchingLoss(sde)

    def sample_times(self, batch_size, *, generator=None, device=None, dtype=torch.float32):
        """Student times t = i / K, i uniform in 1..K, and unit importance weights."""
        index = torch.randint(1, self.steps + 1, (batch_size,), generator=generator, device=device)
        return index.to(dtype) / self.steps, torch.ones(batch_size, device=device, dtype=dtype)

    @torch.no_grad()
    def teacher_steps(self, y_t, t):
        """(y_s, the teacher's x0_hat at t) after two DDIM steps t -> t - 1/(2K) -> t - 1/K."""
        middle, s = (t - 0.5 / self.steps).clamp_min(0), (t - 1.0 / self.steps).clamp_min(0)
        first = self.teacher(y_t, t)
        y_middle = ddim_step(self.sde, y_t, first, middle)
        return ddim_step(self.sde, y_middle, self.teacher(y_middle, middle), s), first.x0

    def student_step(self, x, y_t, t, s):
        """The student's DDIM step t -> s from y_t if its x0_hat were x (basis): the stds at x's statistic."""
        sde = self.sde
        statistic = sde.noise_statistic(sde.from_basis(x))
        ratio = sde.noise_std(statistic, s, y_t) / sde.noise_std(statistic, t, y_t)
        return sde.alpha(s, y_t) * x + ratio * (y_t - sde.alpha(t, y_t) * x), ratio

    @torch.no_grad()
    def target(self, y_t, t):
        """The x0 (in the basis) whose one DDIM step t -> t - 1/K equals the teacher's two; t (B, 1, 1, 1):
        the closed form at the teacher's statistic, then L-BFGS on the squared mismatch (module docstring)."""
        sde = self.sde
        s = (t - 1.0 / self.steps).clamp_min(0)
        y_s, x = self.teacher_steps(y_t, t)
        _, ratio = self.student_step(x, y_t, t, s)
        x = (y_s - ratio * y_t) / (sde.alpha(s, y_t) - ratio * sde.alpha(t, y_t))
        if not sde.noise_depends_on(sde.config) or self.target_iterations == 0:
            return x  # the closed form is exact: r does not depend on x
        x = x.clone().requires_grad_(True)
        solver = torch.optim.LBFGS([x], max_iter=self.target_iterations, line_search_fn="strong_wolfe",
                                   tolerance_grad=0.0, tolerance_change=0.0)

        def mismatch():
            solver.zero_grad()
            value = (self.student_step(x, y_t, t, s)[0] - y_s).square().sum()
            value.backward()
            return value

        with torch.enable_grad():
            solver.step(mismatch)
        return x.detach()

    def per_pixel(self, model, x0, t, eps, importance=None):
        """The teacher's training loss with the target's noise y_t - alpha_t x* in place of sigma eps."""
        sde = self.sde
        tb, statistic, std, y_t = noised(sde, x0, t, eps)
        target_noise = y_t - sde.alpha(tb, x0) * self.target(y_t, tb)
        noise = Denoiser(model, sde).noise_in_basis(y_t, tb)
        loss = self.score_matching.coordinate_weights(statistic, tb, std) * (noise - target_noise).square()
        return loss if importance is None else loss * time_like(importance, x0)

    def __call__(self, model, x0, t, eps, importance=None):
        return self.score_matching.reduce(self.per_pixel(model, x0, t, eps, importance))


def teacher_of(config, workdir, device):
    """The teacher a distillation config names (``distill.teacher``, relative to the round's
    workdir), loaded from its checkpoint with its EMA weights; a teacher for another process or
    network is one line naming ``distill.teacher``."""
    path = Path(workdir) / config.distill.teacher
    if not path.is_file():
        raise FileNotFoundError(f"distill.teacher: {path} does not exist (the teacher's checkpoint copy)")
    run = load_run(path, device=device)
    for section in ("diffusion", "model"):
        if run.config[section].to_dict() != config[section].to_dict():
            raise ValueError(f"distill.teacher: {path} was trained with another config.{section} than this student")
    return run.model


def is_distillation(config):
    return bool(config.get("distill") and config.distill.get("teacher"))


def training_loss(config, sde, workdir, device):
    """The loss a training config asks for: score matching, or a distillation round's."""
    if not is_distillation(config):
        return ScoreMatchingLoss.from_config(config.training, sde)
    d = config.distill
    return DistillationLoss(teacher_of(config, workdir, device), sde, d.steps, d.target_iterations,
                            ScoreMatchingLoss.from_config(config.training, sde))

