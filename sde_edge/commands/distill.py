"""sde-edge distill --workdir DIR --steps 64 [--min_steps 4 --round_steps 2000 --lr 1e-4]

Progressive distillation (Salimans and Ho 2022) of the run in DIR, per pixel (paper_appendix/math.md,
section 10): a student learns to take one DDIM step where its teacher takes two, starting from the
teacher's EMA weights; K halves round by round, from --steps down to --min_steps. Round K lives in
DIR/distill/steps_K/, an ordinary run folder (checkpoints, metrics.csv, Ctrl-C and resume with the
same command; a finished round is skipped), so every command samples it:
``sde-edge sample --workdir DIR/distill/steps_4`` (ddim, 4 steps, its own config).
"""
from absl import flags

_WORKDIR = flags.DEFINE_string("workdir", None, "The teacher's run folder.")
_STEPS = flags.DEFINE_integer("steps", 64, "The teacher's DDIM steps in the first round.", lower_bound=2)
_MIN_STEPS = flags.DEFINE_integer("min_steps", 4, "The last round's student steps.", lower_bound=1)
_ROUND_STEPS = flags.DEFINE_integer("round_steps", 2000, "Training steps per round.", lower_bound=1)
_LR = flags.DEFINE_float("lr", None, "Learning rate of every round (default: a tenth of the first teacher's optim.lr).")
_ITERATIONS = flags.DEFINE_integer("target_iterations", 30, "L-BFGS steps of the per-pixel target (0: the closed "
                                   "form at the teacher's statistic).", lower_bound=0)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar.")
_THREADS = flags.DEFINE_integer("threads", None, "CPU threads for torch (default: all cores).")


def main():
    from sde_edge.devices import set_cpu_threads

    if _WORKDIR.value is None:
        raise ValueError("--workdir is required (the teacher's run folder)")
    set_cpu_threads(_THREADS.value)
    from sde_edge.training.progressive import distill

    for steps, result in distill(_WORKDIR.value, _STEPS.value, min_steps=_MIN_STEPS.value,
                                 round_steps=_ROUND_STEPS.value, lr=_LR.value, target_iterations=_ITERATIONS.value,
                                 progress=_PROGRESS.value):
        print(f"student of {steps} DDIM steps: {result.workdir} (step {result.step})")
    print(f"sample the last one with: sde-edge sample --workdir {result.workdir}")
