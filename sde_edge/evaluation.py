"""The NLL / bound evaluation behind ``sde-edge eval-nll``: per-sample CSV, a JSON summary
with mean +- standard error, and a plot of the bound's KL per step."""
import csv
import json
import math
import warnings
from pathlib import Path

import torch
from tqdm.auto import tqdm

from sde_edge.data import load_dataset
from sde_edge.figures import plt
from sde_edge.likelihood import LEVELS, ode_bpd, quantize, vlb_bpd
from sde_edge.odeint import SolverBudgetExceeded

METHODS = ("ode", "vlb", "both")


def evaluation_images(config, split, n):
    """The first ``n`` images of ``split`` (a fixed order), quantised to the 256 levels."""
    data = load_dataset(config.data, split)
    n = min(n, len(data))
    images = data[:n] if isinstance(data, torch.Tensor) else torch.stack([data[i] for i in range(n)])
    return quantize(images) * 2.0 / (LEVELS - 1) - 1.0


def _summary(values):
    finite = values[torch.isfinite(values)]
    if len(finite) == 0:
        return {"mean": None, "stderr": None, "n": 0}
    stderr = finite.std().item() / math.sqrt(len(finite)) if len(finite) > 1 else float("nan")
    return {"mean": finite.mean().item(), "stderr": stderr, "n": len(finite)}


def evaluate_nll(model, sde, images, *, method="both", batch_size=64, seed=0, steps=None, trace="hutchinson",
                 rtol=1e-5, atol=1e-5, max_nfe=20_000, device="cpu", progress=True):
    """Per-sample bpd by the ODE and/or the bound; returns (rows, kl_per_step or None)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    generator = torch.Generator(device).manual_seed(seed)
    rows, kl_steps = [], []
    for start in tqdm(range(0, len(images), batch_size), desc=f"eval-nll ({method})", disable=not progress):
        x = images[start:start + batch_size].to(device)
        batch = [{"index": start + i} for i in range(len(x))]
        if method in ("ode", "both"):
            try:
                result = ode_bpd(model, sde, x, trace=trace, rtol=rtol, atol=atol, max_nfe=max_nfe, generator=generator)
                for row, value in zip(batch, result.bpd.tolist()):
                    row.update(ode_bpd=value, ode_nfe=result.nfe)
            except SolverBudgetExceeded as error:
                warnings.warn(f"images {start}..{start + len(x) - 1}: {error}")
                for row in batch:
                    row.update(ode_bpd=float("nan"), ode_nfe=max_nfe, ode_hit_max_nfe=True)
        if method in ("vlb", "both"):
            bound = vlb_bpd(model, sde, x, steps=steps or sde.num_steps, generator=generator)
            for i, row in enumerate(batch):
                row.update(vlb_bpd=bound.bpd[i].item(), vlb_prior=bound.terms["prior"][i].item(),
                           vlb_kl=bound.terms["kl"][i].item(), vlb_decoder=bound.terms["decoder"][i].item())
            kl_steps.append(bound.terms["kl_per_step"].cpu())
        rows += batch
    return rows, (torch.cat(kl_steps), bound.times.cpu()) if kl_steps else None


def write_report(rows, kl, out_dir, meta):
    """results.csv (per sample), summary.json (mean +- stderr), kl_per_step.png; returns the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    summary = dict(meta)
    for key in ("ode_bpd", "vlb_bpd", "vlb_prior", "vlb_kl", "vlb_decoder"):
        if key in keys:
            summary[key] = _summary(torch.tensor([row.get(key, float("nan")) for row in rows], dtype=torch.float64))
    summary["ode_hit_max_nfe"] = sum(bool(row.get("ode_hit_max_nfe")) for row in rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if kl is not None:
        per_step, times = kl
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(times[:-2].numpy(), per_step.mean(0).numpy())
        ax.set_xlabel("t (the step t -> s)")
        ax.set_ylabel("KL per step (bits/dim)")
        ax.set_yscale("log")
        ax.set_title(f"bound: prior {summary['vlb_prior']['mean']:.3g} + KL {summary['vlb_kl']['mean']:.3g} "
                     f"+ decoder {summary['vlb_decoder']['mean']:.3g} bpd", fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "kl_per_step.png", dpi=110)
        plt.close(fig)
    return summary
