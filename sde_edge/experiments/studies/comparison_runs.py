"""The runs of the study ``comparison``: its arms (configs/paper/ plus a few overrides), its settings
(dataset, resolution, seeds, iterations) and the recipe sweep on the validation split."""
from dataclasses import dataclass

from sde_edge.experiments.evaluate import Protocol
from sde_edge.experiments.runs import RunSpec


@dataclass(frozen=True)
class Arm:
    """One model of the comparison: ``configs/paper/<dataset>_<config>.py`` with ``overrides``;
    ``sampling`` replaces diffusion fields for sampling only (the released code samples with
    another transition function than it trains with)."""

    label: str
    config: str
    description: str
    overrides: tuple = ()
    sampling: tuple = ()


ARMS = {arm.label: arm for arm in (
    Arm("E", "edge", "the paper's edge model (scaled noise, the paper's loss)"),
    Arm("D", "ddpm", "the paper's DDPM (unscaled eps, the DDPM loss)"),
    Arm("D-sigma", "isotropic_edge_loss", "isotropic noise with the edge model's loss"),
    # E-var's recipe from its sweep: only lr 5e-4 with clipping at 1 trains (no clipping does not learn or diverges)
    Arm("E-var", "edge", "edge noise with the variance weighting (the DDPM loss's per-pixel analogue)",
        (("training.weighting", "variance"), ("optim.grad_clip", 1.0))),
    Arm("E-cosine", "edge", "trained with tau cosine (released train.py), sampled with tau linear (released sample.py)",
        (("diffusion.tau", "cosine"),), (("tau", "linear"),)),
    Arm("E-image-edge", "edge", "today's edge map: per-image maximum, replicate padding",
        (("diffusion.edge_norm", "image"), ("diffusion.edge_padding", "replicate"))),
)}


@dataclass(frozen=True)
class Setting:
    """Where the arms are compared: a dataset at a resolution, with its seeds and training length."""

    dataset: str
    size: int
    arms: tuple
    seeds: tuple
    n_iters: int
    overrides: tuple = ()  # e.g. the network for 32 px
    role: str = "main"  # which claims it judges (comparison_text.DECOMPOSITION)
    cost: str = ""  # what a run costs, measured before the runs began (the report says it while they go)
    space: str = ""  # "" for pixels; "latent" for a first stage's latents (the runs' names say so)
    recipes: tuple = ()  # ((arm, overrides), ...): an arm's recipe where this setting's own sweep chose another

    @property
    def name(self):
        return f"{self.dataset}{self.size}{self.space}"


NET_32PX = (
    ("data.image_size", 32),
    ("model.nf", 32),
    ("model.ch_mult", (1, 2, 2, 2)),
    ("model.attn_resolutions", (8,)),
)
SETTINGS = (
    Setting("shapes", 16, tuple(ARMS), (0, 1, 2, 3, 4), 10_000),
    Setting("digits", 16, ("E", "D"), (0, 1, 2, 3, 4), 3_000, role="digits"),
    # 32 px: 3 seeds x 2 arms is what two CPU cores allow (the cost, as measured: docs/benchmarks.md)
    Setting("shapes", 32, ("E", "D"), (0, 1, 2), 5_000, NET_32PX, role="32px",
            cost="4-5 h a run on one CPU thread beside a second run: 2.2-2.8 h training (seed 0 of E: 167 min), "
                 "about 2 h evaluation; on an H200, four runs side by side under MPS: 3.3 min training, "
                 "1.5 min evaluation"),
)
QUICK_SETTINGS = (Setting("digits", 8, tuple(ARMS), (0, 1), 20),)
# The study `latent`: E vs D on a first stage's 16 x 16 x 4 latents with the 16 px network, the latent
# edge map (summed over the channels) and no flips (latents are encoded once).
LATENT = (("diffusion.edge_channels", "each"), ("data.random_flip", False))
LATENT_64 = LATENT + (("data.latent.autoencoder", "paper_appendix/reproduction/latent/first_stage_shapes64"),)
LATENT_128 = LATENT + (("data.latent.autoencoder", "paper_appendix/reproduction/latent/first_stage_shapes128"),)
# The latent sweep's choice (its 2,500-iteration runs, FD of the EMA weights on the validation split,
# ddim@50, 500 samples): lr 2e-3 for E (65.0 +- 5.3; the 16 px recipe's lr 5e-4: 70.8 +- 6.8) and lr 2e-3
# with clipping at 1 for D (198 +- 33; lr 5e-4: 337 +- 47), lr 5e-4 with clipping at 1 for D-sigma (85.3 +- 13.2;
# the 16 px recipe's lr 2e-3, no clipping: 99.7 +- 13.8). configs/latent/ holds the same recipes.
LATENT_RECIPES = (("E", (("optim.lr", 2e-3), ("optim.grad_clip", 0.0))),
                  ("D", (("optim.lr", 2e-3), ("optim.grad_clip", 1.0))),
                  ("D-sigma", (("optim.lr", 5e-4), ("optim.grad_clip", 1.0))))
LATENT_SETTINGS = (
    # D-sigma (isotropic noise, E's loss) takes D's gap apart as at 16 px: noise shape or loss weighting
    Setting("shapes", 64, ("E", "D", "D-sigma"), (0, 1, 2, 3, 4), 10_000, LATENT_64, role="latent64", space="latent",
            recipes=LATENT_RECIPES,
            cost="measured: 25 min of training a run on one CPU thread beside a second job (10,000 steps at "
                 "0.15 s; 33 min beside two), 10.5 min of evaluation (ddpm@500, ddim@50 and dpmpp_2m@10 on 1,000 "
                 "decoded samples each); 6 min per 2,500-step sweep run and 2 min for its evaluation"),
    Setting("shapes", 128, ("E", "D"), (0, 1, 2), 10_000, LATENT_128, role="latent128", space="latent",
            recipes=LATENT_RECIPES,
            cost="measured: 22-32 min of training a run on one CPU thread beside a second job (10,000 steps of "
                 "16 x 16 x 4 latents), 9 min of evaluation (the three protocols, decoded at 128 px); once: the "
                 "f = 8 first stage (3,000 steps, 110 min) and the 128 px classifier (75 min), both kept"),
)
LATENT_QUICK_SETTINGS = (Setting("digits", 8, ("E", "D", "D-sigma"), (0, 1), 20, LATENT + (
    ("data.latent.autoencoder", "first_stage:quick"),), role="latent64", space="latent"),)
# The GPU recipe (study comparison64): 64 px shapes, E vs D, 3 seeds.
# It trains compiled in fp32 because, of the GPU options, only compiling paid for this network on an H100
# (docs/benchmarks.md, "On a GPU"); tools/gpu_check.sh runs the six trainings side by side under MPS.
NET_64PX = (("data.image_size", 64), ("model.nf", 64), ("model.ch_mult", (1, 2, 2, 2)),
            ("model.num_res_blocks", 2), ("model.attn_resolutions", (16,)), ("model.num_groups", 16),
            ("training.compile", True), ("training.eval_freq", 1_000), ("training.log_freq", 100))
GPU_SETTINGS = (Setting("shapes", 64, ("E", "D"), (0, 1, 2), 5_000, NET_64PX, role="64px",
                        cost="about 25 minutes of one H100 for the six runs, by estimate"),)
# its --quick runs are the comparison's own quick E and D runs (the same specs, so they are shared)
GPU_QUICK_SETTINGS = (Setting("digits", 8, ("E", "D"), (0, 1), 20, role="64px"),)
MILESTONES = 2_500  # checkpoints kept for the convergence curve

# the recipe sweep: judged on a validation split carved from the train split, never the test split
SWEEP_LRS = (5e-4, 2e-3)
SWEEP_CLIPS = (0.0, 1.0)  # 0: no clipping (the released code)
SWEEP_ITERS = 2_500
VALIDATION_FRACTION = 0.1
SWEEP_ARMS = ("E", "D", "D-sigma", "E-var")


def protocols(quick):
    """(final, secondary...) protocols: the paper's sampler at the full N decides."""
    if quick:
        return Protocol("ddpm", 10, 32), Protocol("ddim", 5, 32), Protocol("dpmpp_2m", 5, 32)
    return Protocol("ddpm", 500, 1000), Protocol("ddim", 50, 1000), Protocol("dpmpp_2m", 10, 1000)


def curve_protocol(quick):
    return Protocol("ddim", 5, 32) if quick else Protocol("ddim", 50, 500)


def sweep_protocols(quick):
    """FD on the validation split, of the EMA and of the raw weights (EMA or not is part of the sweep)."""
    n, steps = (32, 5) if quick else (500, 50)
    return Protocol("ddim", steps, n, split="val"), Protocol("ddim", steps, n, split="val", ema=False)


def with_sampling(protocol, arm):
    return Protocol(**{**protocol.__dict__, "diffusion": arm.sampling}) if arm.sampling else protocol


def run_of(setting, arm, seed):
    """The training run of an arm in a setting."""
    arm = ARMS[arm] if isinstance(arm, str) else arm
    overrides = {**dict(arm.overrides), **dict(setting.overrides), **dict(dict(setting.recipes).get(arm.label, ())),
                 "training.n_iters": setting.n_iters,
                 "training.keep_every": MILESTONES, "training.checkpoint_freq": MILESTONES}
    if setting.size != 16:
        overrides["data.image_size"] = setting.size
    return RunSpec(
        f"cmp-{setting.name}-{arm.label}-s{seed}", f"paper/{setting.dataset}_{arm.config}.py", seed, overrides
    )


def sweep_run(setting, arm, lr, clip, seed=0):
    """A sweep run: the arm at one (lr, clip), shorter, trained on the train split less the validation share."""
    spec = run_of(setting, arm, seed)
    overrides = {**spec.overrides, "optim.lr": lr, "optim.grad_clip": clip, "training.n_iters": SWEEP_ITERS,
                 "data.validation_fraction": VALIDATION_FRACTION}
    return RunSpec(f"sweep-{setting.name}-{arm}-lr{lr:g}-clip{clip:g}-s{seed}", spec.config, seed, overrides)


def sweep_grid(quick):
    lrs, clips = (SWEEP_LRS[:1], SWEEP_CLIPS) if quick else (SWEEP_LRS, SWEEP_CLIPS)
    return [(lr, clip) for lr in lrs for clip in clips]


def final_protocols(arm, quick):
    """The protocols every seed of ``arm`` is evaluated under at its last checkpoint (the verdict's first)."""
    arm = ARMS[arm] if isinstance(arm, str) else arm
    return [with_sampling(protocol, arm) for protocol in protocols(quick)]
