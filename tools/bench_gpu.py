"""The benchmarks that decide how a GPU is used (``tools/bench.py --only forward,side_by_side``).

forward:      the config's network forward on a --batch of images, which is what sampling costs:
              eager, channels-last, bf16 autocast, and compiled (inductor) with --compile; rounds
              interleaved so that machine noise hits all alike.
side_by_side: N processes (--processes 1,6) each running the config's training step (its own
              options on) at once: the steps/s in all. To measure it under MPS, start
              ``nvidia-cuda-mps-control -d`` first (tools/gpu_check.sh does, for its six workers).
"""
import copy
import statistics
import time

import torch
import torch.multiprocessing as mp
from bench_training import PLAIN, _sync, _with, random_images, training_step

from sde_edge.models import build_model


def bench_forward(config, device, repeats, batch=250, include_compile=False):
    torch.manual_seed(0)
    model = build_model(_with(config, PLAIN)).to(device).eval()
    x, t = random_images(config, batch, device), torch.full((batch,), 0.5, device=device)
    cases = {"eager": (model, False), "channels-last": (copy.deepcopy(model).use_channels_last(), False),
             "bf16 autocast": (model, True)}
    if include_compile:
        cases["compile (inductor)"] = (copy.deepcopy(model).use_compile("inductor"), False)
    times = {name: [] for name in cases}
    with torch.no_grad():
        for i in range(repeats + 2):  # the first two rounds warm up (and compile)
            for name, (net, bf16) in cases.items():
                with torch.autocast(device.type, torch.bfloat16, enabled=bf16):
                    _sync(device)
                    start = time.perf_counter()
                    net(x, t)
                    _sync(device)
                if i >= 2:
                    times[name].append(time.perf_counter() - start)
    base = statistics.median(times["eager"])
    table = ["| network | median forward (ms) | speed vs eager |", "|---|---|---|"]
    for name, values in times.items():
        table.append(f"| {name} | {1e3 * statistics.median(values):.1f} | {base / statistics.median(values):.2f}x |")
    sentence = (f"The network's forward on the {device.type.upper()} ({batch} images of {config.data.image_size} px, "
                f"median of {repeats}).")
    return "\n".join(table) + "\n", sentence


def _train_steps(config, device_name, steps, barrier, queue):
    """One process's share of side_by_side: warm up, wait for the others, time ``steps`` steps."""
    device = torch.device(device_name)
    step = training_step(config, device, random_images(config, config.training.batch_size, device))
    for _ in range(3):  # (compiles in the first)
        step()
    _sync(device)
    barrier.wait()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    queue.put(time.perf_counter() - start)


def bench_side_by_side(config, device, repeats, counts=(1, 6)):
    context = mp.get_context("spawn")
    table = ["| processes | steps/s in all | steps/s each |", "|---|---|---|"]
    for n in counts:
        barrier, queue = context.Barrier(n), context.Queue()
        workers = [context.Process(target=_train_steps, args=(config, str(device), repeats, barrier, queue))
                   for _ in range(n)]
        for worker in workers:
            worker.start()
        slowest = max(queue.get(timeout=1800) for _ in workers)
        for worker in workers:
            worker.join()
        table.append(f"| {n} | {n * repeats / slowest:.1f} | {repeats / slowest:.1f} |")
    sentence = (f"Training processes side by side on the {device.type.upper()} ({config.data.image_size} px, batch "
                f"{config.training.batch_size}, the config's own options, {repeats} timed steps each).")
    return "\n".join(table) + "\n", sentence
