"""The training benchmarks of tools/bench.py: the fast-arithmetic options and the data pipeline.

options:  median train step of the config's network with each option (bf16, fp16, channels-last,
          fused Adam, cudnn.benchmark (CUDA only), torch.compile with --compile) against fp32 eager
          without them, same batch.
pipeline: a synthetic folder of 2,000 JPEGs of 178 x 218 px read at 64 px: the time to open it
          (today's open-and-check against the prepared cache), the loader's images/s, and the share
          of a training step spent waiting for data with 0 and 2 loader threads.
"""
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sde_edge.data.datasets import ImageFolder
from sde_edge.data.prepared import PreparedImageSet, prepare
from sde_edge.losses import ScoreMatchingLoss
from sde_edge.models import build_model
from sde_edge.processes.registry import build_sde
from sde_edge.training.batches import BatchSource
from sde_edge.training.fast import build_optimizer, choose_convolutions, fast_network

OPTIONS = {"fp32 eager": {}, "bf16": {"training.precision": "bf16"}, "fp16 + scaler": {"training.precision": "fp16"},
           "channels_last": {"model.channels_last": True}, "fused Adam": {"optim.fused": True},
           "cudnn.benchmark": {"training.cudnn_benchmark": True}, "compile (inductor)": {"training.compile": True},
           "compile (cudagraphs)": {"training.compile": True, "training.compile_backend": "cudagraphs"}}

PLAIN = {"training.precision": "fp32", "training.compile": False, "model.channels_last": False, "optim.fused": False,
         "training.cudnn_benchmark": False}


def _with(config, changes):
    config = config.copy_and_resolve_references()
    for name, value in changes.items():
        section, leaf = name.split(".")
        config[section][leaf] = value
    return config


def random_images(config, batch, device, generator=None):
    """``batch`` images of the config's shape, uniform in [-1, 1] (drawn on the CPU)."""
    size = config.data.image_size
    return torch.rand((batch, config.data.num_channels, size, size), generator=generator).to(device) * 2 - 1


def training_step(config, device, batch):
    """A fresh model's training step on ``batch`` with the config's options (fp16 with its scaler):
    a callable that draws t and the noise and takes one optimiser step."""
    torch.manual_seed(0)
    model = build_model(config).to(device)
    choose_convolutions(config, device)
    network, optimizer = fast_network(model, model, config), build_optimizer(model, config.optim)
    scaler = torch.amp.GradScaler(device.type) if config.training.precision == "fp16" else None
    loss = ScoreMatchingLoss.from_config(config.training, build_sde(config.diffusion))
    generator = torch.Generator(device).manual_seed(0)

    def step():
        t = torch.rand(len(batch), generator=generator, device=device) * 0.98 + 0.01
        eps = torch.randn(batch.shape, generator=generator, device=device)
        value = loss(network, batch, t, eps)
        (value if scaler is None else scaler.scale(value)).backward()
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)
            scaler.update()
        optimizer.zero_grad(set_to_none=True)

    return step


def _step_seconds(config, device, repeats, batch):
    step, times = training_step(config, device, batch), []
    for i in range(repeats + 3):  # three warm-up steps (compile happens in the first)
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        if i >= 3:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_options(config, device, repeats, include_compile=False):
    batch = random_images(config, config.training.batch_size, device, torch.Generator().manual_seed(0))
    # each option alone against fp32 eager: the config's own choices (the paper-scale configs turn on
    # bf16, compile, channels-last and fused Adam) are turned off first
    rows, base = {}, _with(config, PLAIN)
    own = {name: config[name.split(".")[0]][name.split(".")[1]] for name in PLAIN}
    own = {name: value for name, value in own.items() if value != PLAIN[name]}
    cases = dict(OPTIONS)
    if own:  # the config's own combination, as a row of its own
        cases["as configured: " + ", ".join(f"{name.split('.')[1]}={value}" for name, value in own.items())] = own
    for name, changes in cases.items():
        cuda_only = name.endswith("(cudagraphs)")
        compiles = changes.get("training.compile", False)
        if compiles and not include_compile or cuda_only and device.type != "cuda":
            continue
        try:
            rows[name] = _step_seconds(_with(base, changes), device, repeats, batch)
        except RuntimeError as error:  # e.g. no fp16 kernels on this device
            rows[name] = f"not available ({str(error).splitlines()[0][:60]})"
    base = rows["fp32 eager"]
    table = ["| option | median step (ms) | steps/s | speed vs fp32 eager |", "|---|---|---|---|"]
    for name, value in rows.items():
        if isinstance(value, str):
            table.append(f"| {name} | {value} | | |")
        else:
            table.append(f"| {name} | {1e3 * value:.1f} | {1 / value:.2f} | {base / value:.2f}x |")
    parameters = sum(p.numel() for p in build_model(config).parameters()) / 1e6
    sentence = (f"Training-step options on the {device.type.upper()} ({config.data.image_size} px, batch "
                f"{config.training.batch_size}, {parameters:.2f} M parameters).")
    return "\n".join(table) + "\n", sentence


def synthetic_folder(root, n=2000, size=(178, 218)):
    """n JPEGs of random smooth colour images (CelebA's size), made once."""
    root = Path(root)
    if len(list(root.glob("*.jpg"))) == n:
        return root
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize(size, Image.BILINEAR).save(root / f"{i:05d}.jpg", quality=90)
    return root


def bench_pipeline(config, device, repeats, size=64, batch_size=64, n_images=2000):
    root = synthetic_folder(Path(tempfile.gettempdir()) / f"sde_edge_bench_folder_{n_images}", n=n_images)
    started = time.perf_counter()
    today = ImageFolder(root, size, 3)
    open_today = time.perf_counter() - started
    prepare(root, size, 3, progress=False)  # the first preparation is not timed here
    started = time.perf_counter()
    array, paths = prepare(root, size, 3, progress=False)
    open_prepared = time.perf_counter() - started
    prepared = PreparedImageSet(array, paths)
    rates = {}
    batch_size = min(batch_size, len(prepared) // 2)
    for name, images in (("today (decode every step)", today), ("prepared", prepared)):
        times = []
        for i in range(max(3, repeats // 4)):
            indices = np.random.default_rng(i).choice(len(images), batch_size, replace=False)
            start = time.perf_counter()
            images.batch(indices)
            times.append(time.perf_counter() - start)
        rates[name] = batch_size / statistics.median(times)
    waiting = {}
    net_config = _with(config, {"data.image_size": size, "data.num_channels": 3})
    net_config.model.ch_mult, net_config.model.attn_resolutions = (1, 2, 2, 2), (8,)
    model = build_model(net_config).to(device)
    optimizer = build_optimizer(model, net_config.optim)
    loss = ScoreMatchingLoss.from_config(net_config.training, build_sde(net_config.diffusion))
    for name, images, workers in (("today, 0 threads", today, 0), ("prepared, 0 threads", prepared, 0),
                                  ("today, 2 threads", today, 2), ("prepared, 2 threads", prepared, 2)):
        source = BatchSource(images, batch_size, 0, device, workers=workers)
        start = time.perf_counter()
        for step in range(8):
            x0 = source.batch(step)
            t = torch.rand(batch_size, device=device) * 0.98 + 0.01
            loss(model, x0, t, torch.randn_like(x0)).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        waiting[name] = source.waited / (time.perf_counter() - start)
        source.close()
    table = ["| what | value |", "|---|---|",
             f"| open {n_images:,} files, today's open-and-check | {open_today:.2f} s |",
             f"| open the prepared cache (listing, manifest, CRC-32) | {open_prepared:.3f} s |"]
    table += [f"| loader, {name} | {rate:.0f} images/s |" for name, rate in rates.items()]
    table += [f"| share of a training step waiting for data, {name} | {share:.0%} |" for name, share in waiting.items()]
    sentence = (f"The data pipeline on the {device.type.upper()} ({n_images:,} JPEGs of 178 x 218 px read at "
                f"{size} px, batch {batch_size}; the step is the demo UNet widened to {size} px, "
                f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters).")
    return "\n".join(table) + "\n", sentence
