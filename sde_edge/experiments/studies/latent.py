"""The study ``latent``: the paper's comparison (E vs D, and D-sigma at 64 px) on the latents of a
first stage, at 64 px (f = 4, the kept first stage) and 128 px (f = 8, trained on demand), with the
same protocol as ``comparison`` (the validation-split sweep, the verdict at ddpm@500, paired over
seeds), the reconstruction floor of each first stage, and the E - D gap across 16, 32, 64 and 128 px."""
import math
from pathlib import Path

from sde_edge.data import load_dataset
from sde_edge.experiments.denoising import denoising_errors, denoising_figure, denoising_table
from sde_edge.experiments.evaluate import (
    Pending,
    derived_result,
    features_for,
    mean_and_stderr,
    require_compute,
)
from sde_edge.experiments.kept import kept_file_digest
from sde_edge.experiments.registry import register
from sde_edge.experiments.report import pm
from sde_edge.experiments.runs import first_stage_path
from sde_edge.experiments.studies import comparison_runs as cr
from sde_edge.experiments.studies.comparison import Comparison
from sde_edge.experiments.studies.comparison_text import DECOMPOSITION, DENOISING, INTRO_LATENT, LATENT_SWEEP
from sde_edge.experiments.studies.pairing import mixed_spaces, paired_differences
from sde_edge.metrics.classifier import classifier_path
from sde_edge.metrics.report import sample_quality
from sde_edge.tables import read_csv

PUBLISHED = Path(__file__).resolve().parents[3] / "paper_appendix" / "reproduction"


def reconstruction_floor(setting, root, quick, n):
    """FD (and the rest of ``sample_quality``) of the first ``n`` test images passed through the
    setting's first stage, against the whole test split: the part of any latent model's FD that
    the autoencoder alone explains. Computed once (by the --shard worker of E's first seed) and kept
    (``derived_result``) for that first stage's weights."""
    spec = cr.run_of(setting, "E", setting.seeds[0])
    value = dict(spec.overrides)["data.latent.autoencoder"]
    from sde_edge.latent.first_stage import describe, load_first_stage

    path = first_stage_path(value)
    config = spec.build_config(quick)
    classifier = classifier_path(config.data.dataset, config.data.image_size, config.data.num_channels)
    if kept_file_digest(classifier, "classifiers") is None:  # trained first, so that the floor names its weights
        require_compute(f"the reconstruction floor of {setting.name}", spec.key)  # the worker of E's first seed
        features_for(config)
    made_for = {"first_stage": value, "digest": describe(path)["digest"] if path.exists() else None, "n": n,
                "classifier": kept_file_digest(classifier, "classifiers")}  # made again in another one's features

    def compute():
        require_compute(f"the reconstruction floor of {setting.name}", spec.key)
        stage = load_first_stage(path, channels=config.data.num_channels, image_size=config.data.image_size)
        test = load_dataset(config.data, "test")
        reference = test.first(len(test))
        reconstructed = stage.decode(stage.encode(reference[:n], 250), 250)
        return {**sample_quality(reconstructed, reference, features_for(config), progress=False),
                "factor": stage.factor, "first_stage": value}

    return derived_result(f"floor-{setting.name}{'-quick' if quick else ''}", made_for, root, compute)


def _gap(rows, setting, final, arm="E", baseline="D"):
    """(seeds, FD(arm) - FD(baseline) paired over seeds and its s.e., both relative to the baseline's FD
    in %) of one setting's rows."""
    paired = paired_differences(rows, setting, final, arm, baseline)
    fd = [r["fd"] for r in rows if r["setting"] == setting and r["arm"] == baseline and r["sampler"] == final]
    mean, se = mean_and_stderr(paired)
    base = sum(fd) / len(fd) if fd else math.nan
    return len(paired), mean, se, 100 * mean / base, 100 * se / base


def _gap_cell(rows, setting, final, arm, baseline):
    n, mean, se, relative, relative_se = _gap(rows, setting, final, arm, baseline)
    return f"{pm(mean, se)} ({pm(relative, relative_se)}%, {n} seeds)" if n > 1 else "-"


def _rows(path):
    """The numeric per-seed rows of a comparison study's per_seed.csv (none if it has not run)."""
    if not path.exists():
        return []
    rows = read_csv(path)
    for row in rows:
        row["fd"] = float(row["fd"]) if row.get("fd") not in (None, "") else None
    return rows


@register
class LatentComparison(Comparison):
    name = "latent"
    position = 12
    title = "The paper's comparison in latent space, at 64 and 128 px (claim 1, the paper's Table 2)"
    claims = tuple(c for c, (role, *_) in DECOMPOSITION.items() if role in ("latent64", "latent128"))
    summary = "E vs D (and D-sigma) on a first stage's latents: 64 px (f = 4, 5 seeds) and 128 px (f = 8, 3 seeds)"
    sweep_arms = ("E", "D", "D-sigma")
    intro = INTRO_LATENT
    sweep_text = LATENT_SWEEP

    def settings(self, quick):
        return cr.LATENT_QUICK_SETTINGS if quick else cr.LATENT_SETTINGS

    def extras(self, root, out, quick, rows):
        final = cr.protocols(quick)[0]
        label = f"{final.sampler}@{final.steps}"
        arms = list(dict.fromkeys(arm for setting in self.settings(quick) for arm in setting.arms))
        floors, table = {}, ["| setting | first stage | reconstruction floor (FD) | " +
                             " | ".join(f"FD of {arm}" for arm in arms) + " |", "|---|---|---|" + "---|" * len(arms)]
        for setting in self.settings(quick):
            try:
                floors[setting.name] = reconstruction_floor(setting, root, quick, final.n)
            except Pending:
                continue
            fds = {arm: [r["fd"] for r in rows if r["setting"] == setting.name and r["arm"] == arm
                         and r["sampler"] == label] for arm in arms}
            fd = [pm(*mean_and_stderr(fds[arm])) if fds[arm] else "-" for arm in arms]
            floor = floors[setting.name]
            table.append(f"| {setting.name} | f = {floor['factor']} | {pm(floor['fd'], floor['fd_stderr'])} | "
                         + " | ".join(fd) + " |")
        comparison = Path(root) / "comparison" / "per_seed.csv"
        pixel = _rows(comparison if comparison.exists() else PUBLISHED / "comparison" / "per_seed.csv")
        gaps = ["| setting | seeds | E - D (paired FD) | relative to D's FD | E - D-sigma (noise shape) | "
                "D - D-sigma (loss weighting) |", "|---|---|---|---|---|---|"]
        for setting, these in [(s, pixel) for s in ("shapes16", "shapes32")] + [
                (s.name, rows) for s in self.settings(quick)]:
            n, mean, se, relative, relative_se = _gap(these, setting, label)
            if n:
                gaps.append(f"| {setting} | {n} | {pm(mean, se)} | {pm(relative, relative_se)}% | "
                            f"{_gap_cell(these, setting, label, 'E', 'D-sigma')} | "
                            f"{_gap_cell(these, setting, label, 'D', 'D-sigma')} |")
        spaces = [f"{setting.name}: {mixed}" for setting in self.settings(quick)
                  if (mixed := mixed_spaces(rows, setting.name, label, setting.arms))]
        spaces += [f"the {name} floor is in {floor['features']}" for name, floor in floors.items()
                   if {r.get("features") for r in rows if r["setting"] == name} - {floor.get("features"), None, ""}]
        table += ["", "Feature spaces (an FD is a distance in one classifier's features, and a classifier retrained "
                  "from the same seed elsewhere gives other FDs, so seeds measured in two are not paired): "
                  + "; ".join(spaces) + "."] if spaces else []
        text = ("### The reconstruction floor\n\n" + "\n".join(table) +
                "\n\n### The E - D gap across resolutions\n\n" + "\n".join(gaps))
        errors = self._denoising(root, quick, out)
        if errors:
            text += DENOISING.format(setting=errors["setting"], n=errors["n"], seed=errors["seed"],
                                     table="\n".join(denoising_table(errors, reference="D-sigma")),
                                     figure=f"reproduction/{self.name}/denoising.png")
        return text, {"floors": floors, "denoising": errors}

    def _denoising(self, root, quick, out):
        """The per-t denoising error of the first training seed of each arm where D-sigma is trained
        (its figure goes to ``out``); None while a run is missing."""
        setting = next(s for s in self.settings(quick) if "D-sigma" in s.arms)
        seed = setting.seeds[0]
        try:
            errors = denoising_errors(setting, {arm: cr.run_of(setting, arm, seed) for arm in setting.arms},
                                      root, quick)
        except Pending:
            return None
        denoising_figure(errors, Path(out) / "denoising.png", f"{setting.name}, training seed {seed}: "
                         "the error of x0_hat against t")
        return {**errors, "setting": setting.name, "seed": seed}
