"""Quality of a digits (or shapes) run with the dataset's classifier features: a thin wrapper
over ``sde-edge eval-samples --features classifier`` with a budget of about a minute.

    python tools/digits_quality.py --workdir DIR            # 256 samples, ddpm, 100 steps
    python tools/digits_quality.py --workdir DIR --n 1000 --steps 500   # the full measurement
"""
import subprocess
import sys

from absl import app, flags

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder of a digits or shapes model.")
_N = flags.DEFINE_integer("n", 256, "Samples.")
_STEPS = flags.DEFINE_integer("steps", 100, "Sampler steps.")
_SAMPLER = flags.DEFINE_string("sampler", "ddpm", "Sampler name.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
    del argv
    command = [
        sys.executable,
        "-m",
        "sde_edge.cli",
        "eval-samples",
        f"--workdir={_WORKDIR.value}",
        f"--n={_N.value}",
        f"--steps={_STEPS.value}",
        f"--sampler={_SAMPLER.value}",
        f"--seed={_SEED.value}",
        "--features=classifier",
        f"--out={_WORKDIR.value}/quality",
    ]
    return subprocess.run(command).returncode


if __name__ == "__main__":
    sys.exit(app.run(main))
