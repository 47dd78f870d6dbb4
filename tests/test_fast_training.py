"""Fast arithmetic changes the speed, not the math: mixed precision tracks fp32, compile /
channels-last / fused Adam give eager fp32's loss, and a run resumes across precisions."""
import functools

import pytest
import torch

from helpers import TINY, edge_rich_images, tensors
from sde_edge.config import load_config
from sde_edge.losses import ScoreMatchingLoss
from sde_edge.models import build_model
from sde_edge.processes.registry import build_sde
from sde_edge.training.fast import build_optimizer, fast_network
from sde_edge.training.trainer import train


def _config(**fields):
    config = load_config(TINY)
    for name, value in fields.items():
        section, leaf = name.split(".")
        config[section][leaf] = value
    return config


def _fixed_batch_loss(config, seed=0):
    """The training loss of a freshly initialised model (the same weights every time) on a fixed batch."""
    torch.manual_seed(seed)
    model = build_model(config)
    network = fast_network(model, model, config)
    sde = build_sde(config.diffusion)
    x0 = edge_rich_images(16, dtype=torch.float32)
    generator = torch.Generator().manual_seed(1)
    t = torch.rand(16, generator=generator) * 0.9 + 0.05
    eps = torch.randn(x0.shape, generator=generator)
    loss = ScoreMatchingLoss(sde, "paper")(network, x0, t, eps)
    loss.backward()
    gradient = torch.cat([p.grad.flatten() for p in model.parameters()])
    return loss.detach(), gradient


def test_channels_last_gives_the_eager_loss_and_gradient():
    reference, gradient = _fixed_batch_loss(_config())
    loss, other = _fixed_batch_loss(_config(**{"model.channels_last": True}))
    assert torch.allclose(loss, reference, rtol=1e-5) and torch.allclose(other, gradient, rtol=1e-3, atol=1e-5)


def _is_channels_last(model):
    weights = [p for p in model.parameters() if p.dim() == 4]
    return all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_a_run_restored_channels_last_samples_what_the_plain_one_samples(tmp_path, device, monkeypatch):
    from sde_edge.restore import load_run
    from sde_edge.sampling import sample

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # both layouts in full fp32 on a GPU
    config = _config(**{"training.n_iters": 5})
    config.device = device
    train(config, tmp_path, progress=False)  # trained plain
    plain, fast = load_run(tmp_path, device=device), load_run(tmp_path, device=device, channels_last=True)
    assert not _is_channels_last(plain.model) and _is_channels_last(fast.model)  # the switch acts
    drawn = [sample("ddpm", run.model, run.sde, (6, 1, 8, 8), steps=20, device=device,
                    generator=torch.Generator(device).manual_seed(3)) for run in (plain, fast)]
    assert drawn[1].samples.is_contiguous()  # the usual layout comes back
    assert torch.allclose(drawn[1].samples, drawn[0].samples, atol=1e-4)


def test_a_run_restored_compiled_samples_what_the_eager_one_samples(tmp_path):
    """What the experiments' evaluations do on a GPU (with inductor); aot_eager traces the same graph
    without inductor's C++ compiling."""
    from sde_edge.restore import load_run
    from sde_edge.sampling import sample

    train(_config(**{"training.n_iters": 5}), tmp_path, progress=False)
    eager, compiled = load_run(tmp_path), load_run(tmp_path, compile_backend="aot_eager")
    assert isinstance(compiled.model.net, torch._dynamo.eval_frame.OptimizedModule)  # the switch acts
    drawn = [sample("ddpm", run.model, run.sde, (6, 1, 8, 8), steps=20, generator=torch.Generator().manual_seed(3))
             for run in (eager, compiled)]
    assert torch.allclose(drawn[1].samples, drawn[0].samples, atol=1e-5)


def test_compile_gives_the_eager_loss_and_gradient():
    """aot_eager traces forward and backward as inductor does, without its minutes of C++ compiling."""
    reference, gradient = _fixed_batch_loss(_config())
    loss, other = _fixed_batch_loss(_config(**{"training.compile": True, "training.compile_backend": "aot_eager"}))
    assert torch.allclose(loss, reference, rtol=1e-5) and torch.allclose(other, gradient, rtol=1e-3, atol=1e-5)


def test_fused_adam_takes_the_same_step():
    config = _config()
    torch.manual_seed(0)
    a, b = build_model(config), build_model(config)
    b.load_state_dict(a.state_dict())
    fused = functools.partial(build_optimizer, optim_config=_config(**{"optim.fused": True}).optim)
    for model, optimizer in ((a, build_optimizer(a, config.optim)), (b, fused(b))):
        for step in range(3):
            x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(step))
            model(x, torch.full((4,), 0.5)).square().mean().backward()
            optimizer.step()
            optimizer.zero_grad()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-6)


def _losses(workdir):
    import csv

    with open(workdir / "metrics.csv", newline="") as handle:
        return [float(r["loss"]) for r in csv.DictReader(handle) if r.get("loss")]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_trains_and_tracks_fp32(tmp_path, precision):
    if precision == "fp16":
        try:
            with torch.autocast("cpu", dtype=torch.float16):
                torch.nn.functional.conv2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 3, 3))
        except RuntimeError as error:
            pytest.skip(f"this CPU build has no fp16 autocast for convolutions: {error}")
    steps = {"training.n_iters": 50, "training.log_freq": 10}
    train(_config(**steps), tmp_path / "fp32", progress=False)
    train(_config(**steps, **{"training.precision": precision}), tmp_path / precision, progress=False)
    full, half = _losses(tmp_path / "fp32"), _losses(tmp_path / precision)
    assert len(half) == len(full) == 5 and all(torch.isfinite(torch.tensor(half)))
    # the same batches and noise: each logged mean loss within 10% of fp32's (measured: within 2% for bf16)
    for a, b in zip(full, half):
        assert abs(b - a) <= 0.10 * a, (full, half)


def test_a_run_saved_in_bf16_resumes_in_fp32_with_fp32_checkpoints(tmp_path):
    config = _config(**{"training.n_iters": 10, "training.precision": "bf16"})
    first = train(config, tmp_path, progress=False)
    state = torch.load(first.checkpoint, weights_only=True)
    assert all(v.dtype == torch.float32 for k, v in tensors(state).items() if k.startswith(("model.", "ema.model."))
               and v.is_floating_point())
    config.training.precision, config.training.n_iters = "fp32", 20
    resumed = train(config, tmp_path, progress=False)
    assert resumed.step == 20


def test_cudnn_benchmark_is_a_speed_switch_that_a_run_resumes_across(tmp_path):
    from sde_edge.config import upgrade_config

    assert load_config(TINY).training.cudnn_benchmark is True  # on by default (it acts on CUDA only)
    old = load_config(TINY)
    del old.training["cudnn_benchmark"]  # a config written before the switch existed
    assert upgrade_config(old).training.cudnn_benchmark is False
    config = _config(**{"training.n_iters": 5, "training.cudnn_benchmark": True})
    train(config, tmp_path, progress=False)
    config.training.cudnn_benchmark, config.training.n_iters = False, 10
    assert train(config, tmp_path, progress=False).step == 10  # not a config change that refuses the resume
