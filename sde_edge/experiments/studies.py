"""The studies of ``tools/experiments.py``: each trains what it needs (``runs``), evaluates it
(cached, ``evaluate``), writes CSV / JSON / figures and its section of the report with its
rows of the claims table. Edge = the paper's settings (tau linear, t_phi 0.5, kappa linear);
DDPM = tau isotropic; same network, data, budget, seeds and sampler for every model.
"""
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sde_edge.experiments.evaluate import (Pending, Protocol, cache_path, evaluate, require_compute,
                                           write_json_atomically)
from sde_edge.experiments.report import aggregate, compare, pm, summary_table, write_study
from sde_edge.experiments.runs import (ABLATION_SEEDS, BLUR_SIGMAS, CONSTANT_KAPPAS, PAPER_VARIANT, SEEDS, T_PHIS,
                                       WEIGHTING_SEEDS, ablation_run, ablation_runs, ablation_variants,
                                       ensure_trained, frequency_run, frequency_runs, is_trained, milestone_steps,
                                       training_minutes, unconditional_run,
                                       unconditional_runs as all_unconditional_runs, weighting_runs, workdir_of)
from sde_edge.figures import plt
from sde_edge.tables import write_csv

METRICS = ("fd", "kid", "precision", "recall", "swd_mean", "confident")
MODELS = ("edge", "ddpm", "blur", "bluenoise")
DATASETS = ("digits", "shapes")
T0S = (0.3, 0.5, 0.7)  # SDEdit's hijack times
PAPER_TABLE1 = "FID, DDPM / BNDM / ours: CelebA 28.17 / 26.35 / 26.15, Church 31.00 / 29.86 / 23.17, AFHQ-Cat 17.60 / 14.54 / 13.06"


@dataclass(frozen=True)
class Budget:
    """Datasets, seeds, variants, samples and steps of the studies. ``Budget.of(quick=True)`` shrinks
    them all (digits only, two seeds, one variant per ablation) so that the tests run every study
    end to end in seconds."""

    quick: bool
    datasets: tuple
    band_dataset: str  # the frequency and ablation studies' data: sharp edges
    models: tuple
    seeds: tuple
    blur_sigmas: tuple
    t_phis: tuple
    kappas: tuple
    t0s: tuple
    final: Protocol  # the paper's sampler at the full N
    fast: Protocol  # ddim at 50 steps: every final comparison
    curve: Protocol  # cheaper, for FD at every kept checkpoint (convergence, frequency)
    sdedit_steps: int
    sdedit_images: int

    @classmethod
    def of(cls, quick):
        if quick:
            return cls(True, ("digits",), "digits", MODELS[:2], SEEDS[:2], BLUR_SIGMAS[1:2], T_PHIS[:1],
                       CONSTANT_KAPPAS[:1], T0S[1:2], Protocol("ddpm", 10, 32), Protocol("ddim", 5, 32),
                       Protocol("ddim", 5, 32), 5, 16)
        return cls(False, DATASETS, "shapes", MODELS, SEEDS, BLUR_SIGMAS, T_PHIS, CONSTANT_KAPPAS, T0S,
                   Protocol("ddpm", 500, 1000), Protocol("ddim", 50, 1000), Protocol("ddim", 25, 500), 50, 1000)

    def sdedit(self, t0, n):
        return Protocol("ddpm", self.sdedit_steps, min(n, self.sdedit_images), t0=t0)


def _metrics_row(metrics, **labels):
    row = dict(labels)
    row.update({k: metrics.get(k) for k in ("fd", "fd_stderr", "kid", "kid_std", "precision", "recall", "density",
                                             "coverage", "swd_mean", "confident", "class_preserved", "low_res_l2")
                if k in metrics})
    for level, value in enumerate(metrics.get("swd", [])):
        row[f"swd_{level}"] = value
    counts = metrics.get("class_counts", [])
    for label, count in enumerate(counts):  # mode coverage: the classifier's label shares
        row[f"class_{label}"] = count / max(1, sum(counts))
    return row


def _class_names(dataset):
    from sde_edge.shapes import CLASSES

    return CLASSES if dataset == "shapes" else None


def _class_share_table(summary, datasets, sampler):
    """Markdown: the classifier's label shares of each model's samples (mode coverage), per dataset."""
    lines = []
    for dataset in datasets:
        entries = [e for e in summary if e["dataset"] == dataset and e["sampler"] == sampler]
        labels = sorted(int(k[6:]) for k in entries[0] if k.startswith("class_") and k[6:].isdigit()
                        and np.isfinite(entries[0][k])) if entries else []
        if not labels:
            continue
        names = _class_names(dataset) or [str(i) for i in labels]
        lines += ["", f"Class shares of the samples, {dataset}, {sampler} (the data are balanced: {1 / len(labels):.3g} each):", "",
                  "| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(labels)]
        lines += [f"| {e['model']} | " + " | ".join(pm(e[f"class_{i}"], e[f"class_{i}_se"], 2) for i in labels) + " |"
                  for e in entries]
    return lines


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _claim(name, setting, paper, ours, verdict, figure):
    return {"claim": name, "setting": setting, "paper": paper, "ours": ours, "verdict": verdict, "figure": figure}


def unconditional_runs(budget, root, models=None):
    """(dataset, model, seed, spec) of every unconditional run of the budget, trained if need be."""
    for dataset in budget.datasets:
        for model in models or budget.models:
            for seed in budget.seeds:
                yield dataset, model, seed, ensure_trained_spec(unconditional_run(dataset, model, seed), root, budget.quick)


# --- (1) unconditional ---------------------------------------------------------------------------------
def unconditional(root, out, quick):
    budget = Budget.of(quick)
    datasets, models, rows, pending = budget.datasets, budget.models, [], []
    samplers = [f"{p.sampler}@{p.steps}" for p in (budget.final, budget.fast)]
    for dataset, model, seed, spec in unconditional_runs(budget, root):
        for protocol, sampler in zip((budget.final, budget.fast), samplers):
            try:
                metrics = evaluate(spec, root, protocol, quick=quick)
            except Pending as missing:  # reported below; the other sampler's rows still count
                pending.append(str(missing))
                continue
            rows.append(_metrics_row(metrics, dataset=dataset, model=model, seed=seed, sampler=sampler))
    if not rows:
        raise Pending(pending[0])
    summary = aggregate(rows, ("dataset", "model", "sampler"),
                        METRICS + tuple(k for k in rows[0] if k.startswith(("swd_", "class_"))))
    write_csv(rows, out / "per_seed.csv")
    write_csv(summary, out / "summary.csv")
    complete = [s for s in samplers if all(any(e["dataset"] == d and e["model"] == m and e["sampler"] == s
                                               and e["seeds"] == len(budget.seeds) for e in summary)
                                           for d in datasets for m in models)]
    shown = complete[0] if complete else samplers[-1]
    _bar_figure(summary, shown, "fd", out / "fd.png", f"FD (classifier features), {shown} sampler")
    _swd_figure(summary, shown, out / "swd_per_level.png")
    claims = []
    for dataset in datasets:
        for sampler, protocol in zip(samplers, (budget.final, budget.fast)):
            setting = f"{dataset}, {sampler}, {protocol.n} samples"
            # the claim needs edge and DDPM only, on the training seeds both have (all, or the first ones so far)
            seeds = [seed for seed in budget.seeds if all(any(r["dataset"] == dataset and r["sampler"] == sampler
                                                              and r["model"] == m and r["seed"] == seed for r in rows)
                                                          for m in ("edge", "ddpm"))]
            if len(seeds) < 2 or seeds != list(budget.seeds[:len(seeds)]):
                claims.append(_claim("(1) unconditional FID", setting, "up to 30% lower FID than DDPM (Table 1)",
                                     "evaluations still running", "pending", "-"))
                continue
            if len(seeds) < len(budget.seeds):
                setting += f" (seeds {', '.join(map(str, seeds))} of {len(budget.seeds)}; the rest pending)"
            entries = {e["model"]: e for e in aggregate([r for r in rows if r["dataset"] == dataset and r["sampler"] == sampler
                                                         and r["seed"] in seeds], ("model",), ("fd",))}
            edge, ddpm = entries["edge"], entries["ddpm"]
            verdict, _, _ = compare(True, edge["fd"], edge["fd_se"], ddpm["fd"], ddpm["fd_se"])
            lower = 100 * (ddpm["fd"] - edge["fd"]) / ddpm["fd"]
            claims.append(_claim("(1) unconditional FID", setting, "up to 30% lower FID than DDPM (Table 1)",
                                 f"FD edge {pm(edge['fd'], edge['fd_se'])} vs DDPM {pm(ddpm['fd'], ddpm['fd_se'])} "
                                 f"(edge {abs(lower):.0f}% {'lower' if lower > 0 else 'higher'})", verdict, "[fd.png](reproduction/unconditional/fd.png)"))
    table = summary_table(sorted(summary, key=lambda s: (s["dataset"], samplers.index(s["sampler"]))),
                          [("dataset", "dataset"), ("sampler", "sampler"), ("model", "model"), ("seeds", "seeds")],
                          [("FD", "fd", 1), ("KID x 1e3", "kid", 1e3), ("precision", "precision", 1), ("recall", "recall", 1),
                           ("SWD mean x 1e3", "swd_mean", 1e3), ("confident", "confident", 1)])
    lines = ["## Unconditional generation (claim 1; the paper's Table 1)", "",
             f"Models: {', '.join(models)}; {len(budget.seeds)} training seeds each, {budget.final.n} samples per seed with "
             f"ddpm at the full N = {budget.final.steps} steps and ddim at {budget.fast.steps}. Metrics against the "
             "test split in the dataset classifier's features; mean ± standard error over training seeds. The "
             "baselines `blur` (IHDM-style blurring) and `bluenoise` (BNDM-style) share network, data and budget.", "",
             *table, *_class_share_table(summary, datasets, shown), "",
             f"![FD ({shown})](reproduction/unconditional/fd.png) "
             f"![SWD per band ({shown})](reproduction/unconditional/swd_per_level.png)"]
    if pending:
        lines += ["", f"Pending ({len(pending)} evaluations not run yet): " + "; ".join(pending[:6])
                  + ("; ..." if len(pending) > 6 else "")]
    write_study(out, "\n".join(lines), claims, {"rows": rows, "summary": summary, "pending": pending})
    return summary


def ensure_trained_spec(spec, root, quick):
    if not is_trained(spec, root, quick):
        require_compute(f"training {spec.key}")
        ensure_trained(spec, root, quick=quick, progress=False)
    return spec


def _bar_figure(summary, sampler, metric, path, title):
    datasets = list(dict.fromkeys(s["dataset"] for s in summary))
    models = list(dict.fromkeys(s["model"] for s in summary))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.6 * len(datasets), 3.0), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        entries = [next(s for s in summary if s["dataset"] == dataset and s["model"] == m and s["sampler"] == sampler)
                   for m in models]
        ax.bar(models, [e[metric] for e in entries], yerr=[0 if math.isnan(e[f"{metric}_se"]) else e[f"{metric}_se"]
                                                           for e in entries], capsize=4, color="tab:blue")
        ax.set_title(f"{dataset}", fontsize=9)
        ax.set_ylabel(metric)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def _swd_figure(summary, sampler, path):
    datasets = list(dict.fromkeys(s["dataset"] for s in summary))
    fig, axes = plt.subplots(1, len(datasets), figsize=(3.8 * len(datasets), 3.0), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        entries = [s for s in summary if s["dataset"] == dataset and s["sampler"] == sampler]
        levels = sorted(k for k in entries[0] if k.startswith("swd_") and k[4:].isdigit())
        width = 0.8 / len(entries)
        for i, entry in enumerate(entries):
            ax.bar(np.arange(len(levels)) + i * width, [1e3 * entry[k] for k in levels], width,
                   yerr=[1e3 * entry[f"{k}_se"] if np.isfinite(entry[f"{k}_se"]) else 0 for k in levels],
                   label=entry["model"], capsize=2)
        ax.set_xticks(np.arange(len(levels)) + 0.4 - width / 2, [f"L{i}" for i in range(len(levels) - 1)] + ["res."])
        ax.set_title(f"{dataset}: SWD per band (finest left)", fontsize=9)
        ax.set_ylabel("SWD x 1e3")
        ax.legend(fontsize=7)
    return _save(fig, path)


# --- (2) convergence -------------------------------------------------------------------------------------
def convergence(root, out, quick):
    budget = Budget.of(quick)
    protocol, datasets, seeds = budget.curve, budget.datasets, budget.seeds
    rows = []
    for dataset, model, seed, spec in unconditional_runs(budget, root, ("edge", "ddpm")):
        for step in milestone_steps(spec, root, quick):
            metrics = evaluate(spec, root, protocol, step=step, quick=quick)
            rows.append(_metrics_row(metrics, dataset=dataset, model=model, seed=seed, iteration=step))
    summary = aggregate(rows, ("dataset", "model", "iteration"), ("fd",))
    write_csv(rows, out / "per_seed.csv")
    write_csv(summary, out / "summary.csv")
    fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 3.0), squeeze=False)
    claims, reached_rows = [], []
    for ax, dataset in zip(axes[0], datasets):
        finals = {}
        for model in ("edge", "ddpm"):
            points = sorted((s["iteration"], s["fd"], s["fd_se"]) for s in summary if s["dataset"] == dataset and s["model"] == model)
            its, means, ses = map(np.array, zip(*points))
            ax.plot(its, means, marker="o", label=model)
            ax.fill_between(its, means - np.nan_to_num(ses), means + np.nan_to_num(ses), alpha=0.2)
            finals[model] = means[-1]
        level = 1.25 * max(finals.values())
        ax.axhline(level, color="grey", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_title(f"{dataset}: FD against iteration ({protocol.sampler}@{protocol.steps})", fontsize=9)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=8)
        reached = {}
        for model in ("edge", "ddpm"):
            per_seed = []
            for seed in seeds:
                curve = sorted((r["iteration"], r["fd"]) for r in rows
                               if r["dataset"] == dataset and r["model"] == model and r["seed"] == seed)
                per_seed.append(next((it for it, fd in curve if fd <= level), math.nan))
            reached[model] = per_seed
            reached_rows.append({"dataset": dataset, "model": model, "level": level,
                                 **{f"seed{s}": v for s, v in zip(seeds, per_seed)}})
        e, d = (np.array(reached[m], dtype=float) for m in ("edge", "ddpm"))
        if np.isfinite(e).all() and np.isfinite(d).all():
            verdict, _, _ = compare(True, e.mean(), e.std(ddof=1) / math.sqrt(len(e)), d.mean(), d.std(ddof=1) / math.sqrt(len(d)))
            ours = f"iteration to FD <= {level:.3g}: edge {pm(e.mean(), e.std(ddof=1) / math.sqrt(len(e)), 4)}, DDPM {pm(d.mean(), d.std(ddof=1) / math.sqrt(len(d)), 4)}"
        else:
            verdict, ours = "inconclusive", f"not every seed reached FD <= {level:.3g}: edge {reached['edge']}, DDPM {reached['ddpm']}"
        claims.append(_claim("(2) convergence", f"{dataset}, checkpoints every {milestone_steps_text(quick)}",
                             "converges faster to sharper predictions", ours, verdict,
                             "[convergence.png](reproduction/convergence/convergence.png)"))
    _save(fig, out / "convergence.png")
    write_csv(reached_rows, out / "iteration_to_level.csv")
    section = "\n".join(["## Convergence (claim 2)", "",
                         f"FD ({protocol.sampler}@{protocol.steps}, {protocol.n} samples) of the unconditional runs at every "
                         "kept checkpoint, mean ± standard error over the training seeds; the fixed level is 1.25 x the "
                         "worse model's final FD, and the table gives the first checkpoint at or below it per seed.", "",
                         "![convergence](reproduction/convergence/convergence.png)", "",
                         "| dataset | model | level | " + " | ".join(f"seed {s}" for s in seeds) + " |",
                         "|---|---|---|" + "---|" * len(seeds),
                         *[f"| {r['dataset']} | {r['model']} | {r['level']:.3g} | " + " | ".join(
                             str(r[f"seed{s}"]) for s in seeds) + " |" for r in reached_rows]])
    write_study(out, section, claims, {"rows": rows, "summary": summary, "reached": reached_rows})
    return summary


def milestone_steps_text(quick):
    from sde_edge.experiments.runs import milestone

    return f"{milestone(quick)} iterations"


# --- (3) frequency bands ---------------------------------------------------------------------------------
def frequency(root, out, quick):
    budget = Budget.of(quick)
    protocol, dataset = budget.curve, budget.band_dataset
    bands = (0.0,) + budget.blur_sigmas
    rows = []
    for sigma in bands:
        for model in ("edge", "ddpm"):
            spec = ensure_trained_spec(frequency_run(dataset, model, sigma), root, quick)
            for step in milestone_steps(spec, root, quick):
                metrics = evaluate(spec, root, protocol, step=step, quick=quick)
                rows.append(_metrics_row(metrics, band_sigma=sigma, model=model, iteration=step))
    write_csv(rows, out / "per_checkpoint.csv")
    iterations = sorted({r["iteration"] for r in rows})
    table = {(r["band_sigma"], r["model"], r["iteration"]): r for r in rows}
    difference = np.array([[table[(s, "ddpm", it)]["fd"] - table[(s, "edge", it)]["fd"] for it in iterations] for s in bands])
    se = np.array([[math.hypot(table[(s, "ddpm", it)]["fd_stderr"], table[(s, "edge", it)]["fd_stderr"])
                    for it in iterations] for s in bands])
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(iterations), 0.6 + 0.6 * len(bands)))
    limit = np.abs(difference).max() or 1.0
    image = ax.imshow(difference, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for i in range(len(bands)):
        for j in range(len(iterations)):
            ax.text(j, i, f"{difference[i, j]:.2g}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(iterations)), iterations, fontsize=7)
    ax.set_yticks(range(len(bands)), [f"blur {s:g} px" for s in bands], fontsize=7)
    ax.set_xlabel("iteration")
    ax.set_title("FD(DDPM) - FD(edge): blue favours edge", fontsize=9)
    fig.colorbar(image)
    _save(fig, out / "heatmap.png")
    claims = []
    for i, sigma in enumerate(bands):
        z = difference[i] / se[i]
        favour = int((z > 2).sum()), int((z < -2).sum())
        verdict = "reproduced" if favour[0] > len(iterations) / 2 else "not reproduced" if favour[1] > len(iterations) / 2 else "inconclusive"
        claims.append(_claim("(3) low-to-mid frequencies", f"{dataset} blurred by {sigma:g} px, seed 0",
                             "edge learns the low-to-mid bands better (App. B)",
                             f"edge ahead by > 2 s.e. at {favour[0]}/{len(iterations)} checkpoints, behind at {favour[1]}; "
                             f"final FD(DDPM) - FD(edge) = {pm(difference[i, -1], se[i, -1])}", verdict,
                             "[heatmap.png](reproduction/frequency/heatmap.png)"))
    section = "\n".join(["## Frequency bands (claim 3; the paper's Appendix B protocol)", "",
                         f"Both models trained on the {dataset} dataset Gaussian-blurred by {', '.join(f'{s:g}' for s in bands)} px "
                         f"(one training seed per band: the standard errors are bootstrap errors of FD over the samples), "
                         f"FD ({protocol.sampler}@{protocol.steps}, {protocol.n} samples) against the test split of the same band "
                         "at every kept checkpoint. The heatmap is FD(DDPM) - FD(edge): positive favours edge.", "",
                         "![heatmap](reproduction/frequency/heatmap.png)"])
    write_study(out, section, claims, {"rows": rows, "difference": difference.tolist(), "se": se.tolist()})
    return rows


# --- (4) SDEdit --------------------------------------------------------------------------------------------


def sdedit_study(root, out, quick):
    from sde_edge.data import load_dataset

    budget = Budget.of(quick)
    datasets, rows, pending = budget.datasets, [], []
    for dataset, model, seed, spec in unconditional_runs(budget, root):
        test_size = len(load_dataset(spec.build_config(quick).data, "test"))
        for t0 in budget.t0s:
            try:
                metrics = evaluate(spec, root, budget.sdedit(t0, test_size), quick=quick)
            except Pending as missing:  # a baseline's rows may follow later; the claim needs edge and DDPM
                pending.append(str(missing))
                continue
            rows.append(_metrics_row(metrics, dataset=dataset, model=model, seed=seed, t0=t0))
    keys = ("fd", "kid", "precision", "recall", "class_preserved", "low_res_l2")
    summary = [s for s in aggregate(rows, ("dataset", "model", "t0"), keys) if s["seeds"] == len(budget.seeds)]
    models = [m for m in budget.models if any(s["model"] == m for s in summary)]
    have = {(s["dataset"], s["model"], s["t0"]) for s in summary}
    if not all((d, m, t0) in have for d in datasets for m in ("edge", "ddpm") for t0 in budget.t0s):
        raise Pending(pending[0])
    write_csv(rows, out / "per_seed.csv")
    write_csv(summary, out / "summary.csv")
    fig, axes = plt.subplots(1, len(datasets), figsize=(4 * len(datasets), 3.0), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for model in models:
            points = sorted((s["t0"], s["fd"], s["fd_se"]) for s in summary if s["dataset"] == dataset and s["model"] == model)
            if not points:
                continue
            t0s, means, ses = map(np.array, zip(*points))
            ax.errorbar(t0s, means, yerr=np.nan_to_num(ses), marker="o", capsize=3, label=model)
        ax.set_xlabel("t0 (hijack time)")
        ax.set_ylabel("FD")
        ax.set_title(f"{dataset}: SDEdit from stroke paintings", fontsize=9)
        ax.legend(fontsize=7)
    _save(fig, out / "fd_vs_t0.png")
    claims = []
    for dataset, t0 in ((d, t) for d in datasets for t in budget.t0s):  # the paper's t0 is 0.5
        entries = {s["model"]: s for s in summary if s["dataset"] == dataset and s["t0"] == t0}
        edge, ddpm = entries["edge"], entries["ddpm"]
        verdict, _, _ = compare(True, edge["fd"], edge["fd_se"], ddpm["fd"], ddpm["fd_se"])
        claims.append(_claim("(4) stroke-guided SDEdit", f"{dataset}, t0 = {t0:g}, ddpm@{budget.sdedit(t0, 10**9).steps}",
                             "FID 39.1 vs 45.8 (CelebA), 56.1 vs 72.5 (Church); precision/recall kept",
                             f"FD edge {pm(edge['fd'], edge['fd_se'])} vs DDPM {pm(ddpm['fd'], ddpm['fd_se'])}; precision "
                             f"{pm(edge['precision'], edge['precision_se'])} vs {pm(ddpm['precision'], ddpm['precision_se'])}, "
                             f"recall {pm(edge['recall'], edge['recall_se'])} vs {pm(ddpm['recall'], ddpm['recall_se'])}; "
                             f"class kept {pm(edge['class_preserved'], edge['class_preserved_se'])} vs "
                             f"{pm(ddpm['class_preserved'], ddpm['class_preserved_se'])}", verdict,
                             "[fd_vs_t0.png](reproduction/sdedit/fd_vs_t0.png)"))
    examples = []  # rows source / guide / result of seed 0 at the paper's t0
    for dataset in datasets:
        for model in ("edge", "ddpm"):
            spec = unconditional_run(dataset, model, budget.seeds[0])
            test_size = len(load_dataset(spec.build_config(quick).data, "test"))
            grid = cache_path(spec, root, budget.sdedit(0.5, test_size)).with_suffix(".png")
            if grid.exists():
                shutil.copy2(grid, out / f"examples_{dataset}_{model}.png")
                examples.append(f"![{dataset}, {model}](reproduction/sdedit/examples_{dataset}_{model}.png)")
    table = summary_table(sorted(summary, key=lambda s: (s["dataset"], s["t0"])),
                          [("dataset", "dataset"), ("t0", "t0"), ("model", "model")],
                          [("FD", "fd", 1), ("precision", "precision", 1), ("recall", "recall", 1),
                           ("class kept", "class_preserved", 1), ("low-res L2 to source", "low_res_l2", 1)])
    section = "\n".join(["## Stroke-guided generation with SDEdit (claim 4)", "",
                         "Stroke paintings of the test split (k-means to 3 grey levels, then a 0.5 px blur), perturbed to t0 by "
                         f"each model's forward process and sampled back with ddpm ({budget.sdedit(0.5, 10**9).steps} steps from t0). "
                         "FD / precision / recall against the test split; 'class kept' is the share of results the classifier "
                         "labels like their source; the low-resolution L2 compares 4x4 average-pooled result and source.", "",
                         "![FD against t0](reproduction/sdedit/fd_vs_t0.png)", "", *table, "",
                         "Read with care: at equal t0 the two processes have not destroyed the guide equally. Before "
                         "t_phi = 0.5 the edge process keeps the noise off the guide's edges, so its results stay closer "
                         "to their sources (the low-res L2 column), and the sources are test images, which the FD is "
                         "measured against. The paper compares at equal t0 too; a comparison at equal distance to the "
                         "source (or equal mean noise) would separate 'keeps the strokes' from 'denoises better'.", "",
                         "Examples at t0 = 0.5, training seed 0 (rows: source, stroke guide, result; edge then DDPM per "
                         "dataset):", "", " ".join(examples)])
    if pending:
        section += (f"\n\nPending ({len(pending)} evaluations not run yet; models with every seed and t0 are shown): "
                    + "; ".join(pending[:6]) + ("; ..." if len(pending) > 6 else ""))
    write_study(out, section, claims, {"rows": rows, "summary": summary, "pending": pending})
    return summary


# --- (5) ablation ------------------------------------------------------------------------------------------
def ablation(root, out, quick):
    budget = Budget.of(quick)
    protocol, d = budget.fast, budget.band_dataset
    rows = []
    for label, variant in ablation_variants(budget.t_phis, budget.kappas).items():
        for seed in ABLATION_SEEDS:
            spec = ensure_trained_spec(ablation_run(d, variant, seed), root, quick)
            rows.append(_metrics_row(evaluate(spec, root, protocol, quick=quick), variant=label, seed=seed))
    summary = aggregate(rows, ("variant",), METRICS)
    write_csv(rows, out / "per_seed.csv")
    write_csv(summary, out / "summary.csv")
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar([s["variant"].replace(", ", "\n") for s in summary], [s["fd"] for s in summary],
           yerr=[np.nan_to_num(s["fd_se"]) for s in summary], capsize=4)
    ax.set_ylabel("FD")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(f"{d}, edge-preserving variants ({protocol.sampler}@{protocol.steps})", fontsize=9)
    _save(fig, out / "ablation.png")
    by = {s["variant"]: s for s in summary}
    paper = by[PAPER_VARIANT]
    claims = []
    for others, name, text in (([f"t_phi {t:g}" for t in budget.t_phis], "(5a) transition point", "t_phi = 0.5 (50/50) works best"),
                               ([f"kappa constant {k:g}" for k in budget.kappas], "(5b) edge sensitivity",
                                "a time-varying (linear) kappa beats a constant one")):
        verdicts = [compare(True, paper["fd"], paper["fd_se"], by[o]["fd"], by[o]["fd_se"])[0] for o in others]
        verdict = ("reproduced" if all(v == "reproduced" for v in verdicts) else
                   "not reproduced" if any(v == "not reproduced" for v in verdicts) else "inconclusive")
        ours = f"FD {pm(paper['fd'], paper['fd_se'])} (paper's) vs " + ", ".join(f"{o}: {pm(by[o]['fd'], by[o]['fd_se'])}" for o in others)
        claims.append(_claim(name, f"{d}, {len(ABLATION_SEEDS)} seeds", text, ours, verdict,
                             "[ablation.png](reproduction/ablation/ablation.png)"))
    table = summary_table(summary, [("variant", "variant")],
                          [("FD", "fd", 1), ("KID x 1e3", "kid", 1e3), ("precision", "precision", 1), ("recall", "recall", 1),
                           ("confident", "confident", 1)])
    section = "\n".join(["## Ablation: transition point and edge sensitivity (claim 5)", "",
                         f"The edge model on shapes with t_phi in {{0.25, 0.5, 0.75}} and a constant kappa at two levels against "
                         f"the linear one; {len(ABLATION_SEEDS)} training seeds each, {protocol.sampler}@{protocol.steps}, "
                         f"{protocol.n} samples.", "", "![ablation](reproduction/ablation/ablation.png)", "", *table])
    write_study(out, section, claims, {"rows": rows, "summary": summary})
    return summary


# --- weighting ------------------------------------------------------------------------------------------
def weighting(root, out, quick):
    import json

    from sde_edge.evaluation import evaluate_nll, evaluation_images
    from sde_edge.restore import load_run

    protocol = Budget.of(quick).fast
    n_images = 16 if quick else 256
    rows = []
    for spec in weighting_runs():  # the runs' keys and overrides live in one place (runs.py)
        ensure_trained_spec(spec, root, quick)
        name = spec.overrides["training.weighting"]
        row = _metrics_row(evaluate(spec, root, protocol, quick=quick), weighting=name, seed=spec.seed)
        cache = Path(root) / "evals" / spec.key / f"bpd_n{n_images}.json"
        if not cache.exists():
            require_compute(f"{spec.key} bpd_n{n_images}")
            run = load_run(workdir_of(spec, root))
            images = evaluation_images(run.config, "test", n_images)
            nll_rows, _ = evaluate_nll(run.model, run.sde, images, method="both", batch_size=64, progress=False,
                                       steps=None if not quick else 20)
            write_json_atomically({k: float(np.nanmean([r[k] for r in nll_rows]))
                                   for k in ("ode_bpd", "vlb_bpd", "vlb_prior", "vlb_kl", "vlb_decoder")}, cache)
        row.update(json.loads(cache.read_text()))
        rows.append(row)
    keys = ("fd", "ode_bpd", "vlb_bpd", "vlb_kl", "vlb_decoder")
    summary = aggregate(rows, ("weighting",), keys)
    write_csv(rows, out / "per_seed.csv")
    write_csv(summary, out / "summary.csv")
    by = {s["weighting"]: s for s in summary}
    verdict, _, _ = compare(True, by["likelihood"]["vlb_bpd"], by["likelihood"]["vlb_bpd_se"], by["paper"]["vlb_bpd"],
                            by["paper"]["vlb_bpd_se"])
    claims = [_claim("weighting (our question)", f"digits, tau linear_ramp, {len(WEIGHTING_SEEDS)} seeds",
                     "(not a paper claim) does the likelihood weighting fix the bound?",
                     f"bound {pm(by['likelihood']['vlb_bpd'], by['likelihood']['vlb_bpd_se'])} bpd (likelihood) vs "
                     f"{pm(by['paper']['vlb_bpd'], by['paper']['vlb_bpd_se'])} (paper); ODE "
                     f"{pm(by['likelihood']['ode_bpd'], by['likelihood']['ode_bpd_se'])} vs {pm(by['paper']['ode_bpd'], by['paper']['ode_bpd_se'])}; "
                     f"FD {pm(by['likelihood']['fd'], by['likelihood']['fd_se'])} vs {pm(by['paper']['fd'], by['paper']['fd_se'])}",
                     {"reproduced": "yes, the bound", "not reproduced": "no"}.get(verdict, verdict), "(table)")]
    table = summary_table(summary, [("weighting", "weighting")],
                          [("FD", "fd", 1), ("ODE bpd", "ode_bpd", 1), ("bound bpd", "vlb_bpd", 1), ("bound's KL", "vlb_kl", 1),
                           ("decoder", "vlb_decoder", 1)])
    section = "\n".join(["## Loss weighting: paper against likelihood", "",
                         f"The edge model (tau linear_ramp, so that the ODE likelihood exists) trained with the paper's weighting "
                         f"and with the likelihood weighting; FD ({protocol.sampler}@{protocol.steps}), ODE bpd and bound bpd "
                         f"(N steps) on the first {n_images} test images.", "", *table, "", _weighting_reading(by)])
    write_study(out, section, claims, {"rows": rows, "summary": summary})
    return summary


def _weighting_reading(by):
    """One paragraph on what the weighting table says (worded from its numbers)."""
    paper, likelihood = by["paper"], by["likelihood"]
    text = (f"The likelihood weighting (per pixel G^2 / sigma^4, the bound's own scale) changes the bound "
            f"{paper['vlb_bpd'] / likelihood['vlb_bpd']:.3g}-fold ({pm(paper['vlb_bpd'], paper['vlb_bpd_se'])} -> "
            f"{pm(likelihood['vlb_bpd'], likelihood['vlb_bpd_se'])} bpd). ")
    if likelihood["fd"] - paper["fd"] > 2 * math.hypot(likelihood["fd_se"] or 0, paper["fd_se"] or 0):
        text += ("Its samples are worse by more than two standard errors: the weight is largest on edge pixels early "
                 "in time, where sigma is tiny, while t is importance-sampled by the isotropic proposal only, so the "
                 "loss's variance stays high at this budget (the likelihood-against-sample-quality trade-off that "
                 "Song et al. 2021 report for isotropic noise, here sharper).")
    return text


def compute_used(root, quick=False):
    """Markdown: the wall time each study has used on this machine so far: its own trainings (from
    their metrics.csv) and its cached evaluations (their recorded wall_seconds)."""
    import json

    budget = Budget.of(quick)
    unconditional = all_unconditional_runs() + all_unconditional_runs(models=("blur", "bluenoise"))
    runs_of = {"unconditional": unconditional, "frequency": frequency_runs(), "ablation": ablation_runs(),
               "weighting": weighting_runs()}
    keys = {name: {spec.key for spec in runs} for name, runs in runs_of.items()}
    evaluations = {name: [] for name in STUDIES}
    for path in Path(root, "evals").glob("*/**/*.json"):
        run, slug, record = path.relative_to(Path(root, "evals")).parts[0], path.stem, json.loads(path.read_text())
        if "sdedit" in slug:
            study = "sdedit"
        elif run in keys["unconditional"]:
            study = "convergence" if slug == budget.curve.slug else "unconditional"
        else:
            study = next((name for name in ("frequency", "ablation", "weighting") if run in keys[name]), None)
        if study:
            evaluations[study].append(record.get("wall_seconds"))
    lines = ["| study | trainings on disk (all) | training wall (min) | evaluations | evaluation wall (min) |",
             "|---|---|---|---|---|"]
    for name in STUDIES:
        runs = runs_of.get(name, [])
        minutes = {spec.key: training_minutes(spec, root) for spec in runs}
        timed = [t for t in evaluations[name] if t is not None]
        lines.append(f"| {name} | {sum(m > 0 for m in minutes.values())} ({len(runs)}) | {sum(minutes.values()):.0f} | "
                     f"{len(evaluations[name])} | {sum(timed) / 60:.0f}"
                     + (f" ({len(timed)} timed)" if len(timed) < len(evaluations[name]) else "") + " |")
    return lines


def write_pending(name, out, missing):
    """The report's section and claim rows of a study that cannot run yet (``Pending``)."""
    title, claims = PENDING_TEXT[name]
    section = f"## {title}\n\nPending: not every training and evaluation of this study is on disk yet (first missing: {missing})."
    write_study(out, section, [_claim(c, "-", "-", "runs still going", "pending", "-") for c in claims], {"pending": str(missing)})


PENDING_TEXT = {"unconditional": ("Unconditional generation (claim 1)", ["(1) unconditional FID"]),
                "convergence": ("Convergence (claim 2)", ["(2) convergence"]),
                "frequency": ("Frequency bands (claim 3)", ["(3) low-to-mid frequencies"]),
                "sdedit": ("Stroke-guided generation with SDEdit (claim 4)", ["(4) stroke-guided SDEdit"]),
                "ablation": ("Ablation: transition point and edge sensitivity (claim 5)",
                             ["(5a) transition point", "(5b) edge sensitivity"]),
                "weighting": ("Loss weighting: paper against likelihood", ["weighting (our question)"])}
STUDIES = {"unconditional": unconditional, "convergence": convergence, "frequency": frequency, "sdedit": sdedit_study,
           "ablation": ablation, "weighting": weighting}
