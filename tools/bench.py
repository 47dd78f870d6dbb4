"""Benchmarks, reported as medians and ratios from one run (absolute times on a shared machine
are noise; the ratios are the result).

    python tools/bench.py                          # print every table
    python tools/bench.py --write_docs             # and rewrite the sections of docs/benchmarks.md

train:      median train-step time of each process (edge, DDPM, blurring, blue noise), same network
            and batch, steps interleaved so that machine noise hits all alike; and each process's own
            work (the loss with a near-free model), whose excess over DDPM's is the overhead.
samplers:   wall time per sampler with a near-free model against the demo UNet: the share of the
            time spent outside the network calls (the sampler's own overhead).
likelihood: the probability-flow ODE likelihood (Hutchinson) against ODE sampling, per image.
options:    the training step with bf16, fp16, channels-last, fused Adam, cudnn.benchmark (and torch.compile with
            --compile) against fp32 eager (tools/bench_training.py).
pipeline:   a synthetic folder of 2,000 JPEGs at 64 px: open, loader images/s, waiting share.
forward, side_by_side (not run by default): the network's forward eager / channels-last / bf16 /
            compiled, and N training processes at once (tools/bench_gpu.py).
"""
import copy
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from absl import app, flags
from bench_gpu import bench_forward, bench_side_by_side
from bench_training import bench_options, bench_pipeline

from sde_edge.config import image_shape, load_config
from sde_edge.data.datasets import load_dataset
from sde_edge.devices import resolve_device
from sde_edge.likelihood import ode_bpd, snap_to_lattice
from sde_edge.losses import ScoreMatchingLoss
from sde_edge.models import build_model
from sde_edge.processes.registry import build_sde
from sde_edge.restore import load_run
from sde_edge.sampling import sample

ROOT = Path(__file__).resolve().parents[1]
_ONLY = flags.DEFINE_list("only", ["train", "samplers", "likelihood", "options", "pipeline"],
                          "Which benchmarks: train, samplers, likelihood, options, pipeline, forward, side_by_side.")
_COMPILE = flags.DEFINE_bool("compile", False, "options, forward: include torch.compile (minutes on a CPU).")
_PROCESSES = flags.DEFINE_list("processes", ["1", "6"], "side_by_side: how many processes at once, each count.")
_PIPELINE_IMAGES = flags.DEFINE_integer("pipeline_images", 2000, "pipeline: JPEGs in the synthetic folder.")
_REPEATS = flags.DEFINE_integer("repeats", 40, "Timed repetitions per case.")
_BATCH = flags.DEFINE_integer("batch", 64, "samplers, likelihood, forward: images per batch.")
_SAMPLER_STEPS = flags.DEFINE_integer("sampler_steps", 50, "samplers: steps per sampler.")
_TOLERANCE = flags.DEFINE_float("tolerance", 1e-5, "likelihood: rtol = atol of the adaptive ODE solver.")
_DEVICE = flags.DEFINE_string("device", "auto", "auto | cpu | cuda")
_CONFIG = flags.DEFINE_string(
    "config", str(ROOT / "configs" / "digits_edge_ramp.py"), "Config of the network and batch."
)
_WRITE = flags.DEFINE_bool("write_docs", False, "Replace the tables (and their sentences) in docs/benchmarks.md.")
_WORKDIR = flags.DEFINE_string("workdir", None, "A trained run whose EMA weights the samplers and likelihood use "
                               "(default: the config's network with random weights).")
SAMPLER_CASES = [("ddpm", {}), ("ddim", {}), ("dpmpp_2m", {}), ("euler_maruyama", {}), ("heun", {}), ("edm", {}),
                 ("torchsde", {"method": "euler"})]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device):
    """(seconds, fn()) with the device synchronised on both sides."""
    _sync(device)
    start = time.perf_counter()
    value = fn()
    _sync(device)
    return time.perf_counter() - start, value


def _process_configs(config):
    processes = {}
    for name, changes in (
        ("edge", {}),
        ("ddpm", {"tau": "isotropic"}),
        ("blur", {"process": "blur", "blur_sigma_max": 10.0}),
        ("bluenoise", {"process": "bluenoise"}),
    ):
        diffusion = config.diffusion.copy_and_resolve_references()
        diffusion.update(changes)
        processes[name] = build_sde(diffusion)
    return processes


def bench_train(config, device, repeats):
    data = load_dataset(config.data, "train").first(config.training.batch_size).to(device)
    losses = {
        name: ScoreMatchingLoss.from_config(config.training, sde) for name, sde in _process_configs(config).items()
    }
    torch.manual_seed(0)
    model = build_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator(device).manual_seed(0)

    def step(loss):
        t, importance = loss.sample_times(len(data), generator=generator, device=device)
        eps = torch.randn(data.shape, generator=generator, device=device)
        value = loss(model, data, t, eps, importance)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()

    def own_work(loss):  # the same loss with a near-free model: what the process itself costs
        t, importance = loss.sample_times(len(data), generator=generator, device=device)
        eps = torch.randn(data.shape, generator=generator, device=device)
        return loss(_NearFree(), data, t, eps, importance)

    times = {name: [] for name in losses}
    own = {name: [] for name in losses}
    for _ in range(5):
        for loss in losses.values():
            step(loss)
    for _ in range(repeats):
        for name, loss in losses.items():
            times[name].append(_timed(lambda loss=loss: step(loss), device)[0])
            own[name].append(_timed(lambda loss=loss: own_work(loss), device)[0])
    medians = {name: statistics.median(values) for name, values in times.items()}
    owns = {name: statistics.median(values) for name, values in own.items()}
    extra = {name: (owns[name] - owns["ddpm"]) / medians["ddpm"] for name in losses}
    rows = [f"| {name} | {1e3 * medians[name]:.2f} | {medians[name] / medians['ddpm']:.3f} | {1e3 * owns[name]:.2f} | "
            f"{100 * extra[name]:+.2f}% |" for name in losses]
    header = (f"Train step, {config.training.batch_size} x {config.data.num_channels} x {config.data.image_size}^2, "
              f"demo UNet ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters), {device.type}, "
              f"median of {repeats}; 'own work' is the loss with a near-free model (the process's part of the step), "
              f"'extra' its excess over DDPM's as a share of DDPM's whole step:\n\n"
              f"| process | ms / step | / DDPM | own work (ms) | extra |\n|---|---|---|---|---|\n")
    ratio = medians["edge"] / medians["ddpm"]
    prose = (f"The edge-preserving process's own work (a 3x3 Sobel and a few elementwise ops per batch) adds "
             f"{100 * extra['edge']:+.2f}% to a DDPM training step, the DCT baselines {100 * extra['blur']:+.2f}% "
             f"(blurring) and {100 * extra['bluenoise']:+.2f}% (blue noise); whole steps timed side by side give "
             f"edge / DDPM = {ratio:.3f}, within this machine's noise.")
    return header + "\n".join(
        rows
    ) + f"\n\nedge / DDPM = **{ratio:.3f}** (whole step), **{1 + extra['edge']:.4f}** (own work)\n", prose


class _NearFree:
    """A model that costs almost nothing, so the sampler's own work is what gets timed."""

    parameterization = "scaled_eps"

    def __call__(self, x, t):
        return 0.1 * x


def _network(config, device):
    if _WORKDIR.value:
        run = load_run(_WORKDIR.value, device=device)
        return run.model, run.sde, f"trained weights of {_WORKDIR.value}"
    torch.manual_seed(0)
    model = build_model(config).to(device).eval()
    torch.nn.init.normal_(model.net.head[-1].weight, std=0.02)  # a non-trivial output
    return model, build_sde(config.diffusion), "random weights"


def bench_samplers(config, device, repeats, steps=50, batch=64):
    model, sde, _ = _network(config, device)
    channels_last = copy.deepcopy(model).use_channels_last()  # what the experiments' evaluations use on a CPU
    shape = image_shape(config, batch)
    rows, shares, speedup = [], [], float("nan")
    for name, options in SAMPLER_CASES:
        # ddpm also with the network channels-last, interleaved with the rest so machine noise hits all alike
        networks = {"unet": model, "free": _NearFree()} | ({"channels-last": channels_last} if name == "ddpm" else {})
        times = {label: [] for label in networks}
        label = f"{name}{':' + options['method'] if options else ''}"
        try:
            for _ in range(max(3, repeats // 10)):
                for network, net in networks.items():
                    generator = torch.Generator(device).manual_seed(0)
                    def run(name=name, net=net, generator=generator, options=options):
                        return sample(name, net, sde, shape, steps=steps, generator=generator, device=device,
                                      **options)

                    times[network].append(_timed(run, device)[0])
        except ValueError as error:  # e.g. an SDE sampler on tau = 'linear', which has no continuous form
            rows.append(f"| {label} | not available: {str(error).split(',')[0][:70]} | | |")
            continue
        medians = {label: statistics.median(values) for label, values in times.items()}
        for network in ("unet", "channels-last")[:len(networks) - 1]:
            unet, free = medians[network], medians["free"]
            shares.append(free / unet)
            note = ", channels-last" if network == "channels-last" else ""
            rows.append(f"| {label}{note} | {1e3 * unet:.0f} | {1e3 * free:.0f} | {100 * free / unet:.1f}% |")
        if name == "ddpm":
            speedup = medians["unet"] / medians["channels-last"]
    header = (
        f"Sampler overhead, {steps} steps, batch {batch} x {config.data.num_channels} x {config.data.image_size}^2, "
        f"{sde!r}, {device.type} ({torch.get_num_threads()} torch threads), medians:\n\n"
        f"| sampler | with the demo UNet (ms) | with a near-free model (ms) | overhead share |\n|---|---|---|---|\n"
    )
    prose = (
        f"The samplers spend {100 * min(shares):.1f}% to {100 * max(shares):.1f}% of their time outside the network; "
        f"the network in channels-last memory (what the experiments' evaluations use on a CPU) makes ddpm "
        f"{speedup:.2f}x as fast."
    )
    return header + "\n".join(rows) + "\n", prose


def bench_likelihood(config, device, repeats, batch=64, tolerance=1e-5):
    model, sde, weights = _network(config, device)
    x = snap_to_lattice(load_dataset(config.data, "test").first(batch)).to(device)
    generator = torch.Generator(device).manual_seed(0)
    sampled, measured = [], []
    for _ in range(max(1, repeats // 20)):
        seconds, sampling = _timed(
            lambda: sample("ode", model, sde, x.shape, steps=1, generator=generator, device=device, rtol=tolerance,
                           atol=tolerance), device
        )
        sampled.append(seconds)
        seconds, likelihood = _timed(
            lambda: ode_bpd(model, sde, x, generator=generator, rtol=tolerance, atol=tolerance), device
        )
        measured.append(seconds)
    per_sample, per_nll = statistics.median(sampled) / batch, statistics.median(measured) / batch
    table = (f"ODE likelihood cost, batch {batch}, {sde!r}, {weights}, {device.type}, "
             f"RK45 at rtol = atol = {tolerance:g}:\n\n"
             f"| task | s / image | NFE |\n|---|---|---|\n"
             f"| ODE sampling | {per_sample:.3f} | {sampling.nfe} |\n"
             f"| ODE likelihood (Hutchinson) | {per_nll:.3f} | {likelihood.nfe} |\n\n"
             f"likelihood / sampling = **{per_nll / per_sample:.2f}**\n")
    return table, f"An ODE likelihood costs {per_nll / per_sample:.1f}x an ODE sample."


def _bench_samplers(config, device, repeats):
    return bench_samplers(config, device, repeats, steps=_SAMPLER_STEPS.value, batch=_BATCH.value)


def _bench_likelihood(config, device, repeats):
    return bench_likelihood(config, device, repeats, batch=_BATCH.value, tolerance=_TOLERANCE.value)


def _bench_options(config, device, repeats):
    return bench_options(config, device, repeats, include_compile=_COMPILE.value)


def _bench_pipeline(config, device, repeats):
    return bench_pipeline(config, device, repeats, n_images=_PIPELINE_IMAGES.value)


def _bench_forward(config, device, repeats):
    return bench_forward(config, device, repeats, batch=_BATCH.value, include_compile=_COMPILE.value)


def _bench_side_by_side(config, device, repeats):
    return bench_side_by_side(config, device, repeats, counts=[int(n) for n in _PROCESSES.value])


BENCHES = {"train": bench_train, "samplers": _bench_samplers, "likelihood": _bench_likelihood,
           "options": _bench_options, "pipeline": _bench_pipeline, "forward": _bench_forward,
           "side_by_side": _bench_side_by_side}


def write_docs_section(name, text):
    readme = ROOT / "docs" / "benchmarks.md"
    content = readme.read_text()
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{text}{end}"
    if start in content:
        content = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, content, flags=re.S)
    else:
        content += f"\n{block}\n"
    readme.write_text(content)


def main(argv):
    del argv
    device = resolve_device(_DEVICE.value)
    config = load_config(_CONFIG.value)
    for name in _ONLY.value:
        if name not in BENCHES:
            sys.exit(f"--only: unknown benchmark {name!r}; choose from {sorted(BENCHES)}")
        table, sentence = BENCHES[name](config, device, _REPEATS.value)
        print(table)
        print(sentence + "\n")
        if _WRITE.value:  # each section carries its own sentence, so --only rewrites just its own
            write_docs_section(name, f"{sentence}\n\n{table}")


if __name__ == "__main__":
    app.run(main)
