"""Benchmarks, reported as medians and ratios from one run, written into README.md.

    python tools/bench.py                      # everything, on the default device
    python tools/bench.py --repeats=60

train:    median train-step time, edge-preserving vs isotropic, same network and batch
          (steps interleaved A/B so that machine noise hits both alike).
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
_ONLY = flags.DEFINE_list("only", ["train"], "Which benchmarks: train.")
_REPEATS = flags.DEFINE_integer("repeats", 40, "Timed repetitions per case.")
_DEVICE = flags.DEFINE_string("device", "auto", "auto | cpu | cuda")
_CONFIG = flags.DEFINE_string("config", str(ROOT / "configs" / "digits_edge_ramp.py"), "Config of the network and batch.")
_WRITE = flags.DEFINE_bool("write_readme", True, "Replace the tables in README.md.")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device):
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


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
            times[name].append(_timed(lambda: step(sde), device))
    medians = {name: statistics.median(values) for name, values in times.items()}
    rows = [f"| {name} | {1e3 * medians[name]:.2f} |" for name in sdes]
    ratio = medians["edge"] / medians["isotropic"]
    header = (f"Train step, {config.training.batch_size} x {config.data.num_channels} x {config.data.image_size}^2, "
              f"demo UNet ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters), {device.type}, "
              f"median of {repeats}:\n\n| process | ms / step |\n|---|---|\n")
    return header + "\n".join(rows) + f"\n\nedge / isotropic = **{ratio:.3f}**\n"


BENCHES = {"train": bench_train}


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
