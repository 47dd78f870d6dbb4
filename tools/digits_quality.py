"""Quality of a digits run: sample from its checkpoint, classify with a digits classifier
trained here (no download), report the confident fraction and a Frechet distance.

    python tools/digits_quality.py --workdir DIR [--n 256 --steps 500 --sampler ddpm]
"""
import json

import torch
from absl import app, flags

from sde_edge.figures import save_grid
from sde_edge.metrics import digit_quality, train_digits_classifier
from sde_edge.restore import load_run
from sde_edge.sampling import sample

_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder of a digits model.")
_N = flags.DEFINE_integer("n", 256, "Samples.")
_STEPS = flags.DEFINE_integer("steps", 500, "Sampler steps.")
_SAMPLER = flags.DEFINE_string("sampler", "ddpm", "Sampler name.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
    del argv
    classifier, accuracy = train_digits_classifier()
    run = load_run(_WORKDIR.value)
    c = run.config
    shape = (_N.value, c.data.num_channels, c.data.image_size, c.data.image_size)
    result = sample(_SAMPLER.value, run.model, run.sde, shape, steps=_STEPS.value,
                    generator=torch.Generator().manual_seed(_SEED.value), progress=True)
    quality = digit_quality(classifier, result.samples)
    report = {"workdir": _WORKDIR.value, "step": run.step, "tau": c.diffusion.tau, "sampler": _SAMPLER.value,
              "steps": _STEPS.value, "nfe": result.nfe, "classifier_test_accuracy": accuracy,
              "confident_fraction": quality.confident_fraction, "frechet_distance": quality.frechet_distance,
              "class_counts": quality.class_counts}
    save_grid(result.samples[:64], f"{_WORKDIR.value}/quality_samples.png")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    app.run(main)
