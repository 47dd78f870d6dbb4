"""Claim 1 as the paper ran it, and taken apart: the paper's edge model (E) against the paper's DDPM
(D: unscaled eps, the DDPM loss), with D-sigma (isotropic noise, the edge loss), E-var (edge noise,
the variance weighting) and the released code's variants of E; digits and 32 px as further settings.
The recipe (learning rate, clipping, EMA) comes from a sweep judged on a validation split."""
import math
import re

from sde_edge.experiments.evaluate import Pending, evaluate, mean_and_stderr
from sde_edge.experiments.kept import kept_evaluation, kept_steps
from sde_edge.experiments.registry import Study, claim_row, register
from sde_edge.experiments.report import aggregate, compare, pm
from sde_edge.experiments.runs import QUICK_MILESTONE, milestone_steps, trained_or_kept, training_facts
from sde_edge.experiments.studies import comparison_runs as cr
from sde_edge.experiments.studies.common import lines, metrics_row, trained_unless_kept, write_section
from sde_edge.experiments.studies.comparison_figures import convergence_figure, paired_fd_figure, sample_pair_figures
from sde_edge.experiments.studies.comparison_text import (
    CLAIMS,
    DECOMPOSITION,
    INTRO,
    INTRO_64,
    PAPER_1,
    PAPER_GAIN,
    SWEEP,
    arm_table,
    chosen_recipes,
    minutes_by_device,
    sample_lines,
    secondary_table,
    section_template,
    sweep_table,
)
from sde_edge.experiments.studies.pairing import mixed_spaces, paired_differences, seeds_to_resolve
from sde_edge.tables import write_csv
from sde_edge.training.trainer import DivergenceError


@register
class Comparison(Study):
    name = "comparison"
    position = 10
    title = "The paper's comparison: edge against the paper's DDPM, and what makes the difference (claim 1)"
    claims = tuple(c for c, (role, *_) in DECOMPOSITION.items() if role in ("main", "digits", "32px"))
    summary = "E vs the paper's DDPM (eps, DDPM loss), D-sigma, E-var and the released variants; 5 seeds"
    sweep_arms = cr.SWEEP_ARMS  # the arms whose recipe the sweep chooses (on the first setting)
    evaluates_in_shards = True  # every item's Pending is caught: --shard i/n workers share the runs
    intro = INTRO  # the section's text above its tables
    sweep_text = SWEEP  # what the sweep is and what it found
    where_runs = "on one CPU thread, beside a second run on the other core"  # where its minutes were measured

    def swept(self, quick):
        """The sweep's arms; --quick sweeps E and D only (the same code path, half the runs)."""
        return self.sweep_arms[:2] if quick else self.sweep_arms

    def settings(self, quick):
        return cr.QUICK_SETTINGS if quick else cr.SETTINGS

    def runs(self, quick=False):
        """In the budget's order: the E/D sweep and E and D seed by seed; then, arm by arm, the sweep and
        the seeds of D-sigma, E-var and the released variants; then the other settings."""
        main, *others = self.settings(quick)

        def sweep(arm):
            return (
                [cr.sweep_run(main, arm, lr, clip) for lr, clip in cr.sweep_grid(quick)]
                if arm in self.swept(quick)
                else []
            )

        runs = sweep("E") + sweep("D") + [cr.run_of(main, a, s) for s in main.seeds for a in ("E", "D")]
        for arm in main.arms[2:]:
            runs += sweep(arm) + [cr.run_of(main, arm, s) for s in main.seeds]
        return runs + [cr.run_of(setting, a, s) for setting in others for s in setting.seeds for a in setting.arms]

    def measured(self, spec, quick=False):
        """A diverged run, or one whose every final evaluation (the sweep's or the seed's) is kept."""
        main = self.settings(quick)[0]
        needed = {cr.sweep_run(main, arm, lr, clip).key: cr.sweep_protocols(quick)
                  for arm in self.swept(quick) for lr, clip in cr.sweep_grid(quick)}
        needed.update({cr.run_of(setting, arm, seed).key: cr.final_protocols(arm, quick)
                       for setting in self.settings(quick) for arm in setting.arms for seed in setting.seeds})
        protocols = needed.get(spec.key, ())
        return super().measured(spec, quick) or bool(protocols) and all(
            kept_evaluation(spec, protocol.slug, None, quick) is not None for protocol in protocols)

    def run(self, root, out, quick):
        sweep = self._sweep(root, quick)
        rows, pending, diverged = [], [], {}
        for setting in self.settings(quick):
            for arm in setting.arms:
                for seed in setting.seeds:
                    spec = cr.run_of(setting, arm, seed)
                    try:
                        rows += self._evaluate(spec, setting, cr.ARMS[arm], seed, root, quick)
                    except Pending as missing:
                        pending.append(str(missing))
                    except DivergenceError as error:  # a result: the arm's verdict says so, never its mean
                        diverged.setdefault((setting.name, arm), []).append(f"seed {seed} at {diverged_at(error)}")
        if not rows and not any(r["ema"] is not None for r in sweep):
            raise Pending(pending[0] if pending else "no comparison run is trained yet")
        if rows:
            write_csv(rows, out / "per_seed.csv")
        write_csv(sweep, out / "sweep.csv")
        summary = [
            self._summarise(rows, setting, arm, root, quick) for setting in self.settings(quick) for arm in setting.arms
        ]
        summary = [s for s in summary if s is not None]
        for entry in summary:
            entry["diverged"] = len(diverged.get((entry["setting"], entry["arm"]), []))
        if summary:
            write_csv([{k: v for k, v in s.items() if k != "minutes_by_device"} for s in summary], out / "summary.csv")
        final = f"{cr.protocols(quick)[0].sampler}@{cr.protocols(quick)[0].steps}"
        if rows:
            paired_fd_figure(summary, rows, final, out / "fd.png")
        curve = self._curve(root, quick)
        if curve:
            write_csv(curve, out / "convergence.csv")
            convergence_figure(curve, out / "convergence.png")
        samples = sample_pair_figures(self.settings(quick), root, cr.protocols(quick)[0], out, quick)
        claims = self._claims(summary, rows, final, quick, diverged)
        values = dict(arms=lines(f"* **{a.label}**: {a.description}" for a in cr.ARMS.values()),
                      sweep=lines(sweep_table(sweep)), table=lines(arm_table(summary)), final=final,
                      metrics=lines(secondary_table(rows, {s.name: len(s.seeds) for s in self.settings(quick)}, final)),
                      n=cr.protocols(quick)[0].n, name=self.name, where=self.where_runs,
                      recipes=chosen_recipes(sweep), samples=sample_lines(samples, self.name),
                      curve=f" ![FD against iteration](reproduction/{self.name}/convergence.png)" if curve else "")
        values["extra"], extra = self.extras(root, out, quick, rows)
        template = section_template(self.title, self.intro, self.sweep_text if self.swept(quick) else "")
        template += "\n\n$extra"
        write_section(out, template, values, claims, {**extra, "rows": rows, "summary": summary, "sweep": sweep,
                                                       "pending": pending, "diverged": [
                                                           {"setting": k[0], "arm": k[1], "seeds": v}
                                                           for k, v in diverged.items()]}, pending)
        return summary

    def extras(self, root, out, quick, rows):
        """(Markdown after the section's tables, more results; figures go to ``out``): what a subclass
        adds (nothing here)."""
        return "", {}

    def _sweep(self, root, quick):
        """FD on the validation split of every sweep run (EMA and raw weights); trains what is missing."""
        rows = []
        setting = self.settings(quick)[0]
        for arm in self.swept(quick):
            for lr, clip in cr.sweep_grid(quick):
                spec = cr.sweep_run(setting, arm, lr, clip)
                try:
                    trained_unless_kept(spec, root, quick, cr.sweep_protocols(quick))
                    for protocol in cr.sweep_protocols(quick):
                        metrics = evaluate(spec, root, protocol, quick=quick)
                        rows.append({"arm": arm, "lr": lr, "clip": clip, "ema": protocol.ema, "fd_val": metrics["fd"],
                                     "fd_val_stderr": metrics["fd_stderr"]})
                except Pending:
                    rows.append({"arm": arm, "lr": lr, "clip": clip, "ema": None, "fd_val": math.nan,
                                 "fd_val_stderr": math.nan})
                except DivergenceError as error:  # a result of the cell: never the best, shown as such
                    rows += [{"arm": arm, "lr": lr, "clip": clip, "ema": ema, "fd_val": math.inf, "fd_val_stderr": 0.0,
                              "diverged": diverged_at(error)} for ema in (True, False)]
        return rows

    def _curve(self, root, quick):
        """FD (ddim@50, 500 samples) of the main setting's runs at every kept milestone checkpoint."""
        rows, setting, every = [], self.settings(quick)[0], QUICK_MILESTONE if quick else cr.MILESTONES
        protocol = cr.curve_protocol(quick)
        for arm in setting.arms:
            for seed in setting.seeds:
                spec = cr.run_of(setting, arm, seed)
                steps = set(milestone_steps(spec, root, quick)) | set(kept_steps(spec, protocol.slug, quick))
                for step in sorted(s for s in steps if s % every == 0):
                    try:
                        metrics = evaluate(spec, root, protocol, step=step, quick=quick)
                    except Pending:
                        continue
                    rows.append({"arm": arm, "seed": seed, "iteration": step, "fd": metrics["fd"]})
        return rows

    @staticmethod
    def _evaluate(spec, setting, arm, seed, root, quick):
        protocols = cr.final_protocols(arm, quick)
        trained_unless_kept(spec, root, quick, protocols)
        rows, seconds = [], []
        for protocol in protocols:
            metrics = evaluate(spec, root, protocol, quick=quick)
            seconds.append(metrics.get("wall_seconds"))
            rows.append(metrics_row(metrics, setting=setting.name, arm=arm.label, seed=seed,
                                    sampler=f"{protocol.sampler}@{protocol.steps}"))
        facts = training_facts(spec, root, quick)
        # the run's cost: its training and its three verdict evaluations, wall minutes (a record rebuilt
        # from the tables of an earlier report has the run's total only: its evaluations carry none)
        minutes = sum(seconds) / 60 if None not in seconds else facts.get("eval_minutes", math.nan)
        for row in rows:
            row.update(grad_norm_median=facts.get("grad_norm_median"),  # None (unrecorded): left out of means
                       clipped_share=facts.get("clipped_share"),
                       train_minutes=facts.get("train_minutes", math.nan), eval_minutes=minutes,
                       trained_on=facts.get("trained_on", ""))
        return rows

    @staticmethod
    def _summarise(rows, setting, arm, root, quick):
        """One entry per (setting, arm, sampler) of the final sampler, with the seed spread; pending
        (seeds < all) is marked and kept out of the verdicts."""
        mine = [r for r in rows if r["setting"] == setting.name and r["arm"] == arm]
        if not mine:
            return None
        final = f"{cr.protocols(quick)[0].sampler}@{cr.protocols(quick)[0].steps}"
        entries = aggregate(
            mine, ("setting", "arm", "sampler"),
            ("fd", "grad_norm_median", "clipped_share", "train_minutes", "eval_minutes"),
        )
        entry = next((e for e in entries if e["sampler"] == final), entries[0])
        fds = [r["fd"] for r in mine if r["sampler"] == entry["sampler"]]
        trained = sum(trained_or_kept(cr.run_of(setting, arm, s), root, quick) for s in setting.seeds)
        entry.update(minutes_by_device=minutes_by_device([r for r in mine if r["sampler"] == entry["sampler"]]))
        entry.update(fd_min=min(fds), fd_max=max(fds), complete=entry["seeds"] == len(setting.seeds),
                     seeds_of=len(setting.seeds), trained=trained)
        for other in entries:
            if other is not entry:
                entry[f"fd_{other['sampler']}"], entry[f"fd_{other['sampler']}_se"] = other["fd"], other["fd_se"]
        return entry

    def _claims(self, summary, rows, final, quick, diverged=None):
        """One row per decomposition claim: pending until both arms have every seed, 'diverged' where a
        seed of either arm diverged (the finite seeds alone would flatter that arm), else the verdict of
        the paired difference."""
        by = {(s["setting"], s["arm"]): s for s in summary}
        names = {setting.role: setting.name for setting in self.settings(quick)}
        arms = {setting.role: setting.arms for setting in self.settings(quick)}
        seeds = {setting.name: len(setting.seeds) for setting in self.settings(quick)}
        costs = {setting.name: f"; {setting.cost}" if setting.cost else "" for setting in self.settings(quick)}
        claims = []
        for name, (role, ours, baseline, answers) in DECOMPOSITION.items():
            if role not in names or not {ours, baseline} <= set(arms[role]):  # another study's setting, or
                continue  # a setting or an arm the quick budget leaves out
            setting = names[role]
            a, b = by.get((setting, ours)), by.get((setting, baseline))
            label = f"{setting}, {final}, {ours} vs {baseline}"
            paired = paired_differences(rows, setting, final, ours, baseline)
            paired_mean, paired_se = mean_and_stderr(paired)  # over seeds, as every other s.e. here
            lost = [f"{arm}: {', '.join(diverged[setting, arm])}" for arm in (ours, baseline)
                    if (setting, arm) in (diverged or {})]
            if lost:
                claims.append(claim_row(name, label, CLAIMS[name], f"training diverged ({'; '.join(lost)})",
                                        "diverged", "-"))
                continue
            mixed = mixed_spaces(rows, setting, final, (ours, baseline))
            if mixed:  # a verdict waits until both arms are measured in one classifier
                claims.append(claim_row(name, label, CLAIMS[name], f"{ours} and {baseline} {mixed}", "pending", "-"))
                continue
            if not (a and b and a["complete"] and b["complete"]):
                done = f"{a['seeds'] if a else 0} and {b['seeds'] if b else 0} of {seeds[setting]} seeds"
                interim = (f"; interim paired difference {ours} - {baseline} over the {len(paired)} seeds both "
                           f"have, not a verdict: {pm(paired_mean, paired_se)}" if len(paired) > 1 else "")
                going = f"not every run is done yet ({done} evaluated{costs[setting]}){interim}"
                claims.append(claim_row(name, label, CLAIMS[name], going, "pending", "-"))
                continue
            # the verdict reads the paired difference (seed by seed): the spread shared by both arms cancels
            verdict, _, _ = compare(paired_mean, paired_se, 0.0, 0.0)
            text = (f"FD {ours} {pm(a['fd'], a['fd_se'])} vs {baseline} {pm(b['fd'], b['fd_se'])}; paired difference "
                    f"{pm(paired_mean, paired_se)} over {len(paired)} seeds")
            if verdict == "inconclusive" and paired_mean != 0:
                text += f"; {seeds_to_resolve(paired_mean, paired_se, len(paired))}"
            if CLAIMS[name] == PAPER_1:  # how far the paper's size of effect is from ours, not only its sign
                gain = -PAPER_GAIN * b["fd"]
                z = (paired_mean - gain) / paired_se
                text += (f"; the paper's largest gain, {PAPER_GAIN:.0%} ({gain:.2g} here), lies "
                         f"{abs(z):.1f} paired s.e. {'below' if z >= 0 else 'above'} ours")
            claims.append(claim_row(name, label, CLAIMS[name], text, answers.get(verdict, verdict),
                                    f"[fd.png](reproduction/{self.name}/fd.png)"))
        return claims


def diverged_at(error):
    """'step N' from a ``DivergenceError`` (its message names the step), else 'an unknown step'."""
    step = re.search(r"diverged at step (\d+)", str(error))
    return f"step {step[1]}" if step else "an unknown step"


@register
class GpuComparison(Comparison):
    """The 64 px shapes comparison (E vs D, 3 seeds), about 25 minutes of one H100, end to end:
    ``python tools/experiments.py comparison64`` on a CUDA machine (``--quick`` on the CPU)."""

    name = "comparison64"
    position = 11
    title = "The paper's comparison at 64 px on a GPU (claim 1)"
    claims = tuple(c for c, (role, *_) in DECOMPOSITION.items() if role == "64px")
    summary = "the GPU recipe: E vs D on 64 px shapes, 3 seeds x 5,000 iterations (about 25 H100-minutes)"
    sweep_arms = ()  # the recipe of configs/paper/, chosen by the 16 px sweep
    intro = INTRO_64
    where_runs = "one of six side by side on one GPU"
    pending_text = (f"not run yet: {cr.GPU_SETTINGS[0].cost}; `tools/gpu_check.sh` runs it (one seed a lease: "
                    "`CHECKS=0 SHARDS=\"0 1\"`)")

    def settings(self, quick):
        return cr.GPU_QUICK_SETTINGS if quick else cr.GPU_SETTINGS
