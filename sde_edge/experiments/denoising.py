"""How well each trained arm denoises, time by time: the mean squared error of its x0_hat on clean
test data perturbed by its own forward process, one noise draw shared by every arm. Where two arms'
processes coincide (isotropic noise, or the edge process past t_phi) they see the same x_t, so the
error tells where in time one model is better than another: a loss weighting moves accuracy
between small and large t, and a sample's layout is decided at large t."""
from pathlib import Path

import numpy as np
import torch

from sde_edge.experiments.evaluate import Pending, derived_result, require_compute
from sde_edge.experiments.kept import fingerprint
from sde_edge.score import Denoiser

TIMES = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95)


@torch.no_grad()
def x0_errors(models, x0, times=TIMES, seed=0):
    """{arm: [mean over x0's elements of (x0_hat - x0)^2 at each t]} for ``models`` = {arm: (model,
    sde)} on clean data ``x0`` (B, C, H, W), each t perturbed with the same standard normal draw."""
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(x0)
    errors = {}
    for arm, (model, sde) in models.items():
        denoiser, rows = Denoiser(model, sde), []
        for t in times:
            tt = torch.full((len(x0),), float(t), device=x0.device, dtype=x0.dtype)
            y = sde.to_basis(sde.perturb(x0, tt, noise))
            rows.append((sde.from_basis(denoiser(y, tt).x0) - x0).square().mean().item())
        errors[arm] = rows
    return errors


def denoising_errors(setting, runs, root, quick, n=256):
    """``x0_errors`` of the trained runs {arm: RunSpec} (EMA weights) on the first ``n`` test images of
    ``setting`` (encoded for a latent run), kept (``derived_result``) for those runs' specs;
    ``Pending`` until every run is trained (computed by the worker of the first arm's run)."""
    made_for = {"runs": {arm: fingerprint(spec, quick) for arm, spec in runs.items()}, "n": n, "times": list(TIMES)}

    def compute():
        from sde_edge.data import load_dataset
        from sde_edge.restore import load_run

        first = next(iter(runs.values()))
        require_compute(f"the denoising errors of {setting.name}", first.key)
        workdirs = {arm: Path(root) / "trainings" / spec.key for arm, spec in runs.items()}
        if not all((w / "checkpoints").is_dir() for w in workdirs.values()):
            raise Pending(f"the denoising errors of {setting.name} (every arm's run trained first)")
        loaded = {arm: load_run(w) for arm, w in workdirs.items()}
        some = next(iter(loaded.values()))
        images = load_dataset(some.config.data, "test").first(n)
        return {"times": list(TIMES), "n": len(images), "runs": {arm: s.key for arm, s in runs.items()},
                "errors": x0_errors({arm: (r.model, r.sde) for arm, r in loaded.items()}, some.encode(images))}

    return derived_result(f"denoising-{setting.name}{'-quick' if quick else ''}", made_for, root, compute)


def denoising_table(result, reference=None):
    """Markdown: one row per t, one column per arm (and each arm's ratio to ``reference``'s error)."""
    arms = list(result["errors"])
    header = "| t | " + " | ".join(arms) + " |"
    rows = [header, "|---|" + "---|" * len(arms)]
    for i, t in enumerate(result["times"]):
        cells = []
        for arm in arms:
            value = result["errors"][arm][i]
            base = result["errors"][reference][i] if reference in arms and arm != reference else np.nan
            cells.append(f"{value:.3g}" + (f" ({value / base:.2f}x)" if np.isfinite(base) else ""))
        rows.append(f"| {t:g} | " + " | ".join(cells) + " |")
    return rows


def denoising_figure(result, path, title):
    """x0_hat's error against t, one line per arm (log scale)."""
    from sde_edge.figures import plt, save_figure

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for arm, errors in result["errors"].items():
        ax.plot(result["times"], errors, marker="o", label=arm)
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("mean (x0_hat - x0)^2")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, path)
