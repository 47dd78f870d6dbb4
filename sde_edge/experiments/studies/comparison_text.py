"""The words of the studies ``comparison`` and ``comparison64``: their claims, which arms each compares,
the sections' templates and their tables."""
import math
import statistics

from sde_edge.experiments.evaluate import mean_and_stderr
from sde_edge.experiments.report import pm
from sde_edge.experiments.studies.common import lines
from sde_edge.experiments.studies.pairing import paired_differences

PAPER_GAIN = 0.3  # the largest FID reduction the paper's Table 1 reports against its DDPM
PAPER_1 = f"up to {PAPER_GAIN:.0%} lower FID than DDPM (Table 1)"
NOT_A_CLAIM = "(decomposition, not a paper claim)"
PAPER_LATENT = "latent space (Table 2): behind DDPM on CelebA (13.89 vs 7.87), ahead on AFHQ-Cat (18.91 vs 22.86)"
CLAIMS = {
    "(1) unconditional FID, the paper's comparison (E vs D)": PAPER_1,
    "(1) unconditional FID, the paper's comparison on digits": PAPER_1,
    "(1) unconditional FID, the paper's comparison at 32 px": PAPER_1,
    "(1) unconditional FID, the paper's comparison at 64 px (GPU)": PAPER_1,
    "(1) unconditional FID, the paper's comparison on latents at 64 px": PAPER_LATENT,
    "(1) unconditional FID, the paper's comparison on latents at 128 px": PAPER_LATENT,
    "(1a) noise shape at equal loss (E vs D-sigma)": NOT_A_CLAIM,
    "(1a) noise shape at equal loss, on latents at 64 px (E vs D-sigma)": NOT_A_CLAIM,
    "(1b) loss weighting at isotropic noise (D vs D-sigma)": NOT_A_CLAIM,
    "(1b) loss weighting at isotropic noise, on latents at 64 px (D vs D-sigma)": NOT_A_CLAIM,
    "(1c) weighting inside the edge process (E-var vs E)": NOT_A_CLAIM,
    "(1d) released code: tau cosine in training (E-cosine vs E)": NOT_A_CLAIM,
    "(1d) released code: today's edge map (E-image-edge vs E)": NOT_A_CLAIM,
}
# claim -> (the role of its setting, arm, baseline, verdict -> answer): "reproduced" means the arm
# has the lower FD, its mean paired difference over the seeds more than two standard errors below 0.
DECOMPOSITION = dict(zip(CLAIMS, (
    ("main", "E", "D", {}),
    ("digits", "E", "D", {}),
    ("32px", "E", "D", {}),
    ("64px", "E", "D", {}),
    ("latent64", "E", "D", {}),
    ("latent128", "E", "D", {}),
    ("main", "E", "D-sigma", {"reproduced": "edge noise better", "not reproduced": "isotropic noise better"}),
    ("latent64", "E", "D-sigma", {"reproduced": "edge noise better", "not reproduced": "isotropic noise better"}),
    ("main", "D", "D-sigma", {"reproduced": "DDPM loss better", "not reproduced": "edge loss better"}),
    ("latent64", "D", "D-sigma", {"reproduced": "DDPM loss better", "not reproduced": "edge loss better"}),
    ("main", "E-var", "E", {"reproduced": "variance weighting better", "not reproduced": "paper weighting better"}),
    ("main", "E-cosine", "E", {"reproduced": "cosine better", "not reproduced": "linear (E) better"}),
    ("main", "E-image-edge", "E", {"reproduced": "per-image map better", "not reproduced": "batch map (E) better"}),
)))

INTRO = """
The earlier comparison (the study `unconditional`) changed only the noise: its DDPM is the edge
process with isotropic noise, still predicting the scaled noise b(t) eps with the edge model's
loss. The paper's DDPM predicts the unscaled eps and is trained with the plain DDPM loss
sum (eps_hat - eps)^2, which weights small t about 1 / b(t)^2 times more. Here both models are
trained as the released code trains them (`configs/paper/`: discrete t, random flips, dropout 0.1,
the released edge map), and the comparison is taken apart:

$arms

E vs D is the paper's claim; E vs D-sigma isolates the noise shape at equal loss, D vs D-sigma the
loss weighting at equal noise, E-var vs E the weighting inside the edge process. Verdicts only from
the paper's sampler, $final with $n samples per training seed (ddim@50 and dpmpp_2m@10 as
secondary columns), FD in the dataset classifier's features against the test split; the same
training seeds for every arm (paired: the same data order and noise streams), and the verdict reads
the paired difference: FD(arm) - FD(baseline) seed by seed, its mean more than two standard errors
(over seeds) from 0 either way, else inconclusive. An arm counts once all its seeds are evaluated;
a seed whose training diverged makes its arm's rows 'diverged' (its finite seeds alone would flatter
it). The rows of the paper's claim also say how far the paper's largest gain (30% of the DDPM's FD)
lies from the measured difference, in paired standard errors: a sign can be inconclusive while the
size the paper reports is ruled out. An inconclusive row says how many seeds would resolve a
difference of its mean and seed spread.

Two limits of the decomposition. Each arm trains with the recipe its own sweep chose (below:
$recipes): the same search for every arm, not the same learning rate. And
D vs D-sigma changes two things the paper's losses tie together: the weighting over t (1 against
b(t)^2) and the network's target (eps against b(t) eps, an output scale the network, which sees t,
can absorb). An arm predicting eps with the paper's weighting (loss b(t)^2 (eps_hat - eps)^2)
would separate the two; it is not run."""

INTRO_64 = """
The paper's comparison, E against D, on 64 px `shapes` with a network sized for 64 px (`NET_64PX` in
`sde_edge/experiments/studies/comparison_runs.py`), in the recipe of `configs/paper/` that the 16 px
sweep chose (section above), trained and evaluated on one GPU. Verdicts as at 16 px: the paired
difference FD(E) - FD(D) over the training seeds, of the paper's sampler, $final with $n samples per
seed, more than two standard errors from 0 either way, else inconclusive."""

INTRO_LATENT = """
The paper's comparison, E against D, in latent space as the paper's Table 2 runs it (after Rombach
et al. 2022): a KL autoencoder (`sde-edge train-autoencoder`) encodes 64 px `shapes` with f = 4 and
128 px `shapes` with f = 8, both to 16 x 16 x 4 latents scaled to unit standard deviation, and E and
D diffuse the latents with the 16 px network and the recipe the latent sweep chose (the latent edge map
sums the squared Sobel magnitudes over the latent's channels; no flips). The samples are decoded and
measured at the image resolution, FD in the shapes classifier's features against the test split,
beside the **reconstruction floor**: the FD of the test images passed through the autoencoder, what
the first stage alone costs. Verdicts as at 16 px: the paired difference FD(E) - FD(D) over the
training seeds, of $final with $n samples per seed, more than two standard errors from 0 either way."""

# str.format: the study's per-t denoising errors (sde_edge/experiments/denoising.py)
DENOISING = """

### Where in time the arms differ

The error of x0_hat, mean over the elements of the first {n} test latents of {setting} of
(x0_hat - x0)^2, each arm's EMA weights of training seed {seed}, x_t from each arm's own process with
one noise draw shared by all (ratios to D-sigma in brackets). D and D-sigma see the same x_t at every
t (both isotropic), E the same past t_phi = 0.5; a sample's layout is decided at large t.

{table}

![x0 error against t]({figure})"""

SWEEP_HEAD = """
### The recipe sweep

Learning rate and gradient clipping (none, as in the released code, or 1.0), judged by the FD
(ddim@50, 500 samples) of the EMA weights (0.999) against a validation split of 10% carved out of
the train split (the test split is never read), one training seed, 2,500 iterations, the same grid
for every arm."""
SWEEP = SWEEP_HEAD + """ The configs in `configs/paper/` carry each arm's best. A sweep this short judges
how fast a recipe learns as much as where it ends, so it can favour a fast recipe over one that ends
better: the convergence figure shows how far a 2,500-iteration FD can sit from the 10,000-iteration
one (E-var's seeds fall from about 30-45 to 11-18). E-var's choice was forced all the same: its
other cells diverged or did not learn. The raw weights are shown but
are not candidates: one checkpoint's raw-weight FD is a snapshot of a swinging quantity, so a
single evaluation cannot rank them. A first E run with the raw weights at lr 2e-3, the sweep's
best cell when they were candidates, measured FD 33.3 ± 1.8, 10.3 ± 2.0 and 17.1 ± 2.7 at 2.5k,
5k and 7.5k iterations (ddim@50, 500 samples) and, at 10k, 19.8 ± 1.3 with ddim@50 and
28.9 ± 2.1 with ddpm@500 (1,000 samples), while its loss fell smoothly throughout
(`reproduction/comparison/raw_weights_E_s0.csv`; the run is kept out of the study).

The sweep's sampler, and the convergence figure's, is a proxy for the verdict sampler, and a poor
one early in training. Seeds 0-2 of E and D, trained again outside the study (seed 0 for the
sample figures below) and measured with both samplers at 2.5k and 10k iterations (500 samples
each, test split; `reproduction/comparison/sampler_check.csv`; mean ± s.e. over the 3 seeds):
D's ddpm@500 FD falls from 11.6 ± 0.7 to 4.8 ± 0.4 (by 6.4-7.3 on every seed) while its ddim@50
FD stays flat (6.4 ± 1.0, then 6.7 ± 0.1); E's ddim@50 FD rises on every seed (11.5 ± 0.7 to
12.8 ± 0.9) while its ddpm@500 FD shows no clear direction (9.6 ± 1.8 to 8.0 ± 0.4). At 2.5k the
two samplers order the arms differently (ddim@50: D ahead on every seed; ddpm@500: E ahead on 2 of
3); at 10k both put D ahead. So the ddim@50 convergence figure says little of how the verdict
sampler's FD converges, and the 2,500-iteration ddim@50 FD that chose each arm's recipe does not
foretell its 10,000-iteration ddpm@500 FD. This check does not vary the recipe, so it cannot say
whether the sweep ranked an arm's recipes wrongly; every arm ran the same search, and the verdicts
read ddpm@500 at 10k directly. (FD from 500 samples sits above FD from 1,000: compare these
numbers with each other only.)

$sweep"""
LATENT_SWEEP = SWEEP_HEAD + """ The latents chose another recipe than the 16 px sweep (`configs/paper/`: lr
5e-4, no clipping, for E and D; lr 2e-3, no clipping, for D-sigma): lr 2e-3 for E, lr 2e-3 with
clipping at 1 for D and lr 5e-4 with clipping at 1 for D-sigma, and the runs train with those
(`configs/latent/` holds the same; 128 px runs E and D only). D's choice is far ahead of its 16 px
recipe here; E's and D-sigma's are within about a standard error of theirs. D-sigma (isotropic
noise, E's loss) takes D's gap apart: it tells the noise shape from the loss weighting.

$sweep"""

ARMS_TABLE = """
### Arms

$table

Minutes are wall minutes of one run, $where, unless a device is named beside them
(training: from its metrics.csv; evaluation: the three protocols of the row, $n samples each).

E against D in every metric of the verdict sampler ($final), paired by seed: E - D, mean ± s.e.
over the seeds both have, and the arm better by more than two s.e. (FD decides the verdicts; the
others show what kind of difference it is: precision and coverage fall when samples leave the
data, recall when modes go missing).

$metrics

![FD per arm](reproduction/$name/fd.png)$curve
$samples
"""


def section_template(title, intro, sweep=""):
    """The section's Markdown (string.Template: $arms, $curve, $final, $metrics, $n, $recipes, $samples, $sweep,
    $table, $name, $where); ``sweep``: the sweep's text (none without a sweep)."""
    return "\n".join(["", f"## {title}", intro, *([sweep] if sweep else []), ARMS_TABLE])


def sweep_best(sweep, arm):
    """The arm's EMA sweep row with the lowest validation FD (None while any of its runs is pending)."""
    mine = [r for r in sweep if r["arm"] == arm]
    if not mine or any(r["ema"] is None for r in mine):
        return None
    best = min((r for r in mine if r["ema"]), key=lambda r: r["fd_val"])
    return best if math.isfinite(best["fd_val"]) else None  # every cell diverged: no recipe


def chosen_recipes(sweep):
    """The sweep's choice per arm in words ('E lr 0.0005, ...'; 'pending' for an arm still running)."""
    def recipe(best):
        if best is None:
            return "pending"
        return f"lr {best['lr']:g}" + (f", clip {best['clip']:g}" if best["clip"] else "")
    return ", ".join(f"{arm} {recipe(sweep_best(sweep, arm))}" for arm in dict.fromkeys(r["arm"] for r in sweep))


def sweep_table(sweep):
    table = ["| arm | lr | clip | weights | FD on val |", "|---|---|---|---|---|"]
    best = [sweep_best(sweep, arm) for arm in dict.fromkeys(r["arm"] for r in sweep)]
    for r in sweep:
        weights = {True: "EMA", False: "raw", None: "pending"}[r["ema"]]
        fd = ("not run yet" if r["ema"] is None else f"diverged ({r['diverged']})" if r.get("diverged")
              else pm(r["fd_val"], r["fd_val_stderr"]))
        table.append(f"| {r['arm']} | {r['lr']:g} | {r['clip'] or 'none'} | {weights} | "
                     + (f"**{fd}** (best) |" if any(r is b for b in best) else f"{fd} |"))
    return table


def minutes_by_device(rows):
    """{device: (training, evaluation) mean wall minutes} over the seeds' rows of one arm, by where each
    run trained ('' for runs from before that was recorded: the study's stated default)."""
    groups = {}
    for row in rows:
        groups.setdefault(row.get("trained_on") or "", []).append(row)
    return {device: tuple(statistics.fmean(r.get(key, math.nan) for r in members)
                          for key in ("train_minutes", "eval_minutes")) for device, members in groups.items()}


def minutes_cells(summary):
    """The table's two minutes cells of an arm; the device beside each where one is recorded."""
    groups = summary.get("minutes_by_device") or {}
    if set(groups) <= {""}:
        return f"{summary['train_minutes']:.0f}", f"{summary.get('eval_minutes', math.nan):.0f}"
    return tuple("; ".join(f"{minutes[i]:.3g} ({device or 'unrecorded'})" for device, minutes in groups.items())
                 for i in (0, 1))


def arm_table(summary):
    table = [
        "| setting | arm | seeds | FD | seed range | ddim@50 | dpmpp_2m@10 | median grad norm | clipped "
        "| training min / run | evaluation min / run |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        others = [
            pm(v, s.get(f"{k}_se")) for k, v in s.items() if k.startswith("fd_") and "@" in k and not k.endswith("_se")
        ]
        others = (others + ["-", "-"])[:2]
        seeds = f"{s['seeds']} of {s['seeds_of']}" + (f" ({s['diverged']} diverged)" if s.get("diverged") else
                                                      "" if s["complete"] else " (pending)")
        train, evaluation = minutes_cells(s)
        table.append(f"| {s['setting']} | {s['arm']} | {seeds} | {pm(s['fd'], s['fd_se'])} | "
                     f"{s['fd_min']:.3g}-{s['fd_max']:.3g} | {others[0]} | {others[1]} | "
                     f"{s['grad_norm_median']:.3g} | {s['clipped_share']:.0%} | {train} | {evaluation} |")
    return table


# the metrics of the E vs D table: (column, key in the rows, whether lower is better)
SECONDARY = (("FD", "fd", True), ("KID", "kid", True), ("precision", "precision", False),
             ("recall", "recall", False), ("coverage", "coverage", False), ("SWD", "swd_mean", True))


def secondary_table(rows, settings, sampler, ours="E", baseline="D"):
    """Markdown: ours - baseline in each metric of SECONDARY, one row per setting ({name: its number of
    seeds}) with two paired seeds or more; no arm is named ahead while a setting has seeds to come."""
    table = ["| setting | seeds | " + " | ".join(f"{name} ({'lower' if lower else 'higher'} is better)"
                                                for name, _, lower in SECONDARY) + " |",
             "|---|---|" + "---|" * len(SECONDARY)]
    for setting, all_seeds in settings.items():
        cells, seeds = [], 0
        for _, key, lower in SECONDARY:
            paired = paired_differences(rows, setting, sampler, ours, baseline, key)
            seeds = max(seeds, len(paired))
            if len(paired) < 2:
                cells.append("-")
                continue
            mean, se = mean_and_stderr(paired)
            ahead = len(paired) == all_seeds and abs(mean) > 2 * se
            cells.append(pm(mean, se) + (f" **{ours if (mean < 0) == lower else baseline}**" if ahead else ""))
        if seeds > 1:
            count = f"{seeds}" if seeds == all_seeds else f"{seeds} of {all_seeds} (pending)"
            table.append(f"| {setting} | {count} | " + " | ".join(cells) + " |")
    return table if len(table) > 2 else ["(no setting has two paired seeds of both arms yet)"]


def sample_lines(figures, name):
    """The section's sample figures, each with its pictures' notes (``comparison_figures.sample_pair_figures``),
    or nothing."""
    if not figures:
        return ""
    intro = ["E's samples beside D's, training seed 0, the verdict sampler (one sampling seed: a cell of",
             "one grid starts from the same prior noise as the same cell of the other):"]
    shown = []
    for figure, notes in figures:
        shown += ["", f"![E and D samples, {figure.stem.removeprefix('samples_')}](reproduction/{name}/{figure.name})"]
        shown += ["", *(f"* {note}" for note in notes)] if notes else []
    return lines(["", *intro, *shown])
