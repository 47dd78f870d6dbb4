"""Shared defaults: the paper's diffusion settings (N = 500, beta 1e-4..2e-2,
t_phi = 0.5, kappa 1e-4..1e-1, tau `linear`). Experiment files override a few fields."""
import ml_collections
from ml_collections import config_dict

from sde_edge.config import default_diffusion


def get_config():
    config = ml_collections.ConfigDict()
    config.seed = 0

    config.device = "auto"  # "auto" (cuda if present), "cpu", "cuda", "cuda:1", ...

    config.data = data = ml_collections.ConfigDict()
    data.dataset = "digits"  # digits | shapes | lfw | patches | folder | mnist | cifar10
    data.image_size = 16
    data.num_channels = 1
    data.root = config_dict.placeholder(str)  # folder / mnist / cifar10
    data.download = False  # mnist / cifar10 only
    data.skip_bad_images = False  # folder only: skip and count unreadable files
    data.blur_sigma = 0.0  # > 0: Gaussian-blur every image (pixels): the frequency study's low-passed data
    data.random_flip = False  # horizontal flips, drawn per (seed, step) from the run's `flip` stream
    data.validation_fraction = 0.0  # > 0: hold this share of the train split out as split 'val' (tuning)
    data.prepare = True  # folder: decode and resize once into a cached uint8 array (sde_edge.data.prepared)
    data.latent = ml_collections.ConfigDict()
    # a first stage (a train-autoencoder workdir or a diffusers AutoencoderKL folder): diffuse its latents
    data.latent.autoencoder = config_dict.placeholder(str)
    data.num_workers = 0  # > 0: threads that load the next batches while the network trains

    # num_steps 500, beta 1e-4..2e-2 per step, tau `linear`, t_phi 0.5, kappa 1e-4..1e-1,
    # per-image edge normalisation with replicate padding, the `matched` SDE, t_eps 1e-3.
    config.diffusion = default_diffusion()

    config.model = model = ml_collections.ConfigDict()
    model.name = "unet"
    model.parameterization = "scaled_eps"  # scaled_eps | x0 | eps (eps: x0-independent noise only)
    model.nf = 16
    model.ch_mult = (1, 2, 2)
    model.num_res_blocks = 1
    model.attn_resolutions = (8,)
    model.dropout = 0.0
    model.num_groups = 8
    model.ema_rate = 0.999
    model.channels_last = False  # NHWC memory: pays on tensor-core GPUs, not on this CPU

    config.training = training = ml_collections.ConfigDict()
    training.batch_size = 64  # the global batch: split evenly over torchrun ranks
    training.n_iters = 3000
    training.log_freq = 50
    training.eval_freq = 250  # held-out loss on the test split ('val' with a validation_fraction); 0: never
    training.snapshot_freq = 1000  # a sample grid PNG
    training.snapshot_samples = 36  # images in that grid (0: none)
    training.checkpoint_freq = 500  # steps between checkpoints ...
    training.checkpoint_minutes = 1.0  # ... or minutes, whichever comes first: Ctrl-C loses at most this
    training.keep_checkpoints = 3  # the newest ones kept ...
    training.keep_every = 0  # ... plus every multiple of this step (0: none), e.g. for convergence curves
    training.max_skipped_steps = 20  # stop after this many updates in a row skipped for a non-finite gradient
    training.divergence_factor = 100.0  # stop when the loss exceeds this multiple of its running median (0: off)
    training.weighting = "paper"  # paper | variance | likelihood
    training.time_sampling = "continuous"  # continuous | discrete
    training.reduce_mean = False  # False: sum over pixels (the public code)
    training.precision = "fp32"  # fp32 | bf16 | fp16: autocast for the network only (fp16 with a loss scaler)
    training.compile = False  # torch.compile the network (pays on a GPU; minutes of compiling first)
    training.compile_backend = "inductor"  # inductor | cudagraphs | aot_eager | eager
    training.cudnn_benchmark = True  # CUDA: cuDNN times its convolution algorithms once per shape, keeps the fastest

    config.optim = optim = ml_collections.ConfigDict()
    optim.lr = 2e-3
    optim.beta1 = 0.9
    optim.eps = 1e-8
    optim.weight_decay = 0.0
    optim.warmup = 200
    optim.grad_clip = 1.0
    optim.fused = False  # Adam's fused kernel (one launch for all tensors on a GPU)

    config.sampling = sampling = ml_collections.ConfigDict()
    sampling.method = "ddpm"
    sampling.steps = 250
    sampling.grid = "uniform"
    sampling.num_samples = 64

    config.eval = evaluate = ml_collections.ConfigDict()
    evaluate.batch_size = 256  # the held-out loss's batch; eval-nll and eval-samples batches
    evaluate.num_samples = 256  # eval-nll images and eval-samples samples when --n is not given
    return config
