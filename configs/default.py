"""Shared defaults: the paper's diffusion settings (N = 500, beta 1e-4..2e-2,
t_phi = 0.5, kappa 1e-4..1e-1, tau `linear`). Experiment files override a few fields."""
import ml_collections

from sde_edge.config import default_diffusion


def get_config():
    config = ml_collections.ConfigDict()
    config.seed = 0

    config.data = data = ml_collections.ConfigDict()
    data.dataset = "digits"
    data.image_size = 16
    data.num_channels = 1

    # num_steps 500, beta 1e-4..2e-2 per step, tau `linear`, t_phi 0.5, kappa 1e-4..1e-1,
    # per-image edge normalisation with replicate padding, the `matched` SDE, t_eps 1e-3.
    config.diffusion = default_diffusion()

    config.model = model = ml_collections.ConfigDict()
    model.parameterization = "scaled_eps"
    model.ema_rate = 0.999

    config.training = training = ml_collections.ConfigDict()
    training.batch_size = 64
    training.n_iters = 2000
    training.weighting = "paper"
    training.time_sampling = "continuous"
    training.reduce_mean = False

    config.optim = optim = ml_collections.ConfigDict()
    optim.lr = 2e-4
    optim.warmup = 100
    optim.grad_clip = 1.0

    config.sampling = sampling = ml_collections.ConfigDict()
    sampling.method = "ddpm"
    sampling.steps = 100

    config.eval = evaluate = ml_collections.ConfigDict()
    evaluate.batch_size = 64
    evaluate.num_samples = 256
    return config
