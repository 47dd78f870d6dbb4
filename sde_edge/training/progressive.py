"""Progressive distillation's rounds (``sde-edge distill``): K DDIM steps halved round by round,
each round an ordinary training run (sde_edge/training/trainer.py) with the loss of
sde_edge/training/distill.py, in ``workdir/distill/steps_K/``, whose teacher is the round before's
student (the first round's: the run itself, its EMA weights).
"""
import json
from pathlib import Path

import ml_collections

from sde_edge.storage.checkpoint import CHECKSUM_KEY, atomic_save, load_checkpoint, load_latest, payload_digest
from sde_edge.training.distill import TEACHER_FILE
from sde_edge.training.trainer import train

DIVERGENCE_FACTOR = 10_000.0  # a round's training.divergence_factor
LR_FRACTION = 0.1  # a round's default learning rate: this share of the teacher's


def round_config(teacher_config, steps, round_steps, lr, target_iterations=30):
    """The config of the round that distils ``teacher_config``'s model into a ``steps``-step student."""
    config = teacher_config.copy_and_resolve_references()
    with config.unlocked():
        config.distill = ml_collections.ConfigDict(
            {"teacher": TEACHER_FILE, "steps": steps, "target_iterations": target_iterations})
        config.sampling.method, config.sampling.steps, config.sampling.grid = "ddim", steps, "uniform"
        config.training.n_iters = round_steps
        # a student starts as its teacher, so its loss starts near zero and is heavy-tailed (a batch of
        # paths near a mode boundary): the guard's 100 x median stopped a healthy round on digits
        config.training.divergence_factor = DIVERGENCE_FACTOR
        config.optim.lr = lr
    return config


def keep_teacher(teacher_dir, round_dir):
    """Copy the teacher's newest verified checkpoint (its EMA weights as the model) into the round's
    folder, once: the student keeps its teacher even if the teacher's run goes on or is removed.
    Returns the teacher's config."""
    path = Path(round_dir) / TEACHER_FILE
    if path.exists():
        return ml_collections.ConfigDict(json.loads(load_checkpoint(path)["config"]))
    found = load_latest(Path(teacher_dir) / "checkpoints")
    if found is None:
        raise FileNotFoundError(f"--workdir: no checkpoint in {Path(teacher_dir) / 'checkpoints'} to distil")
    state, _ = found
    kept = {"config": state["config"], "model": state["ema"]["model"], "ema": state["ema"], "step": state["step"],
            **{k: state[k] for k in ("latent_autoencoder",) if k in state}}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save({**kept, CHECKSUM_KEY: payload_digest(kept)}, path)
    return ml_collections.ConfigDict(json.loads(state["config"]))


def round_steps_of(steps, min_steps):
    """The students' step counts K/2, K/4, ..., min_steps; a K that does not halve down to it is refused."""
    if min_steps < 1 or steps <= min_steps or steps % min_steps or (steps // min_steps) & (steps // min_steps - 1):
        raise ValueError(f"--steps {steps} must be --min_steps ({min_steps}) times a power of two above 1")
    counts = []
    while steps > min_steps:
        steps //= 2
        counts.append(steps)
    return counts


def distill(workdir, steps, *, min_steps=4, round_steps=2000, lr=None, target_iterations=30, progress=True):
    """Progressive distillation of the run in ``workdir`` from ``steps`` DDIM steps down to ``min_steps``:
    one round per halving in ``workdir/distill/steps_K/``, each an ordinary (resumable) training run
    whose teacher is the round before's student. Returns [(K, TrainResult)] for the rounds."""
    teacher, results = Path(workdir), []
    for count in round_steps_of(steps, min_steps):
        round_dir = Path(workdir) / "distill" / f"steps_{count}"
        teacher_config = keep_teacher(teacher, round_dir)
        if lr is None:  # every round at a share of the first teacher's rate, which restarted on a converged
            lr = teacher_config.optim.lr * LR_FRACTION  # network overshoots (digits: spikes at 2e-3)
        config = round_config(teacher_config, count, round_steps, lr, target_iterations)
        results.append((count, train(config, round_dir, progress=progress)))
        teacher = round_dir
    return results
