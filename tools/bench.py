"""Benchmarks, reported as medians and ratios from one run, written into README.md.

    python tools/bench.py                      # everything, on the default device
    python tools/bench.py --repeats=60

train:      median train-step time, edge-preserving vs isotropic, same network and batch
            (steps interleaved A/B so that machine noise hits both alike).
samplers:   wall time per sampler with a near-free model against the demo UNet: the share
            of the time spent outside the network calls (the sampler's own overhead).
likelihood: the probability-flow ODE likelihood (Hutchinson) against ODE sampling, per image.
"""
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from absl import app, flags

from sde_edge.config import load_config
from sde_edge.data import load_dataset
from sde_edge.losses import per_pixel_loss, reduce_loss, sample_times
from sde_edge.models import build_model
from sde_edge.sde import VPSDE, EdgePreservingSDE

ROOT = Path(__file__).resolve().parents[1]
_ONLY = flags.DEFINE_list("only", ["train", "samplers", "likelihood"], "Which benchmarks: train, samplers, likelihood.")
_REPEATS = flags.DEFINE_integer("repeats", 40, "Timed repetitions per case.")
_DEVICE = flags.DEFINE_string("device", "auto", "auto | cpu | cuda")
_CONFIG = flags.DEFINE_string("config", str(ROOT / "configs" / "digits_edge_ramp.py"), "Config of the network and batch.")
_WRITE = flags.DEFINE_bool("write_readme", True, "Replace the tables in README.md.")
_WORKDIR = flags.DEFINE_string("workdir", None, "A trained run whose EMA weights the samplers and likelihood use "
                               "(default: the config's network with random weights).")


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


def bench_train(config, device, repeats):
    data = load_dataset(config.data, "train")[: config.training.batch_size].to(device)
    sdes = {"edge": EdgePreservingSDE(config.diffusion), "isotropic": VPSDE(config.diffusion)}
    torch.manual_seed(0)
    model = build_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    generator = torch.Generator(device).manual_seed(0)

    def step(sde):
        t, importance = sample_times(sde, len(data), generator=generator, device=device)
        eps = torch.randn(data.shape, generator=generator, device=device)
        loss = reduce_loss(per_pixel_loss(model, sde, data, t, eps, importance=importance))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    times = {name: [] for name in sdes}
    for _ in range(5):
        for sde in sdes.values():
            step(sde)
    for _ in range(repeats):
        for name, sde in sdes.items():
            times[name].append(_timed(lambda: step(sde), device)[0])
    medians = {name: statistics.median(values) for name, values in times.items()}
    rows = [f"| {name} | {1e3 * medians[name]:.2f} |" for name in sdes]
    ratio = medians["edge"] / medians["isotropic"]
    header = (f"Train step, {config.training.batch_size} x {config.data.num_channels} x {config.data.image_size}^2, "
              f"demo UNet ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters), {device.type}, "
              f"median of {repeats}:\n\n| process | ms / step |\n|---|---|\n")
    return header + "\n".join(rows) + f"\n\nedge / isotropic = **{ratio:.3f}**\n"


class _NearFree:
    """A model that costs almost nothing, so the sampler's own work is what gets timed."""

    parameterization = "scaled_eps"

    def __call__(self, x, t):
        return 0.1 * x


def _network(config, device):
    if _WORKDIR.value:
        from sde_edge.restore import load_run

        run = load_run(_WORKDIR.value, device=device)
        return run.model, run.sde, f"trained weights of {_WORKDIR.value}"
    torch.manual_seed(0)
    model = build_model(config).to(device).eval()
    torch.nn.init.normal_(model.net.head[-1].weight, std=0.02)  # a non-trivial output
    return model, EdgePreservingSDE(config.diffusion), "random weights"


def bench_samplers(config, device, repeats, steps=50, batch=64):
    from sde_edge.sampling import sample

    model, sde, weights = _network(config, device)
    shape = (batch, config.data.num_channels, config.data.image_size, config.data.image_size)
    rows = []
    for name, options in [("ddpm", {}), ("ddim", {}), ("euler_maruyama", {}), ("heun", {}), ("torchsde", {"method": "euler"})]:
        times = {"unet": [], "free": []}
        for _ in range(max(3, repeats // 10)):
            for label, net in (("unet", model), ("free", _NearFree())):
                generator = torch.Generator(device).manual_seed(0)
                times[label].append(_timed(lambda: sample(name, net, sde, shape, steps=steps, generator=generator,
                                                          device=device, **options), device)[0])
        unet, free = statistics.median(times["unet"]), statistics.median(times["free"])
        rows.append(f"| {name}{':' + options['method'] if options else ''} | {1e3 * unet:.0f} | {1e3 * free:.0f} | {100 * free / unet:.1f}% |")
    header = (f"Sampler overhead, {steps} steps, batch {batch} x {config.data.num_channels} x {config.data.image_size}^2, "
              f"{sde!r}, {device.type}, medians:\n\n| sampler | with the demo UNet (ms) | with a near-free model (ms) | "
              f"overhead share |\n|---|---|---|---|\n")
    return header + "\n".join(rows) + "\n"


def bench_likelihood(config, device, repeats, batch=64):
    from sde_edge.data import load_dataset
    from sde_edge.likelihood import ode_bpd, quantize
    from sde_edge.sampling import sample

    model, sde, weights = _network(config, device)
    x = (quantize(load_dataset(config.data, "test")[:batch]) * 2 / 255 - 1).to(device)
    generator = torch.Generator(device).manual_seed(0)
    sampled, measured = [], []
    for _ in range(max(1, repeats // 20)):
        seconds, sampling = _timed(lambda: sample("ode", model, sde, x.shape, steps=1, generator=generator, device=device), device)
        sampled.append(seconds)
        seconds, likelihood = _timed(lambda: ode_bpd(model, sde, x, generator=generator), device)
        measured.append(seconds)
    per_sample, per_nll = statistics.median(sampled) / batch, statistics.median(measured) / batch
    return (f"ODE likelihood cost, batch {batch}, {sde!r}, {weights}, {device.type}, RK45 at rtol = atol = 1e-5:\n\n"
            f"| task | s / image | NFE |\n|---|---|---|\n"
            f"| ODE sampling | {per_sample:.3f} | {sampling.nfe} |\n"
            f"| ODE likelihood (Hutchinson) | {per_nll:.3f} | {likelihood.nfe} |\n\n"
            f"likelihood / sampling = **{per_nll / per_sample:.2f}**\n")


BENCHES = {"train": bench_train, "samplers": bench_samplers, "likelihood": bench_likelihood}


def write_readme_section(name, text):
    readme = ROOT / "README.md"
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
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if _DEVICE.value == "auto" else _DEVICE.value)
    config = load_config(_CONFIG.value)
    for name in _ONLY.value:
        if name not in BENCHES:
            sys.exit(f"--only: unknown benchmark {name!r}; choose from {sorted(BENCHES)}")
        text = BENCHES[name](config, device, _REPEATS.value)
        print(text)
        if _WRITE.value:
            write_readme_section(name, text)


if __name__ == "__main__":
    app.run(main)
