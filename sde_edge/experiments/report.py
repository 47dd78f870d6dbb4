"""Aggregation over seeds, verdicts, and the assembly of paper_appendix/REPRODUCTION.md.

Every study writes, into its artifact folder, ``section.md`` (its part of the report) and
``claims.json`` (its rows of the claims table); ``assemble`` rebuilds the whole report from
whatever studies have run, so a study can be rerun alone.
"""
import json
import math
from pathlib import Path

import numpy as np

from sde_edge.experiments.evaluate import mean_and_stderr
from sde_edge.tables import format_cell

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "pending")  # pending: not every run is done yet


def aggregate(rows, keys, metrics):
    """Mean and standard error over the rows that share ``keys`` (the seeds), one dict per group."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    summary = []
    for group, members in groups.items():
        entry = dict(zip(keys, group))
        entry["seeds"] = len(members)
        for metric in metrics:
            entry[metric], entry[f"{metric}_se"] = mean_and_stderr([m.get(metric) for m in members])
        summary.append(entry)
    return summary


def compare(ours, ours_se, baseline, baseline_se, *, lower_is_better=True, z=2.0):
    """The verdict for "ours beats the baseline": by more than z combined standard errors either
    way, or inconclusive. Missing standard errors (one seed) can only give 'inconclusive'."""
    difference = (baseline - ours) if lower_is_better else (ours - baseline)
    se = float(np.hypot(ours_se, baseline_se))
    if not np.isfinite(se) or se == 0:
        return "inconclusive", difference, se
    if difference > z * se:
        return "reproduced", difference, se
    if difference < -z * se:
        return "not reproduced", difference, se
    return "inconclusive", difference, se


def pm(mean, se, digits=3):
    """'mean ± se' (or the mean alone without a standard error)."""
    if se is None or not np.isfinite(se):
        return format_cell(float(mean), digits)
    return f"{format_cell(float(mean), digits)} ± {format_cell(float(se), 2)}"


def summary_table(summary, labels, metrics):
    """A markdown table of ``aggregate``'s output: ``labels`` are (header, key) columns shown as
    they are, ``metrics`` (header, key, scale) columns shown as 'mean ± s.e.' times scale."""
    header = [h for h, _ in labels] + [h for h, _, _ in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for entry in summary:
        cells = [format_cell(entry[key]) for _, key in labels]
        cells += [pm(scale * entry[key], scale * entry[f"{key}_se"]) for _, key, scale in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_study(folder, section, claims, results):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "section.md").write_text(section)
    (folder / "claims.json").write_text(json.dumps(claims, indent=1))
    (folder / "results.json").write_text(json.dumps(finite_or_null(results), indent=1, default=float,
                                                    allow_nan=False))


def finite_or_null(value):
    """``value`` with every NaN (not measured yet) and infinity (a diverged run) as None: strict JSON
    (``json.dumps`` would write the non-standard ``NaN`` / ``Infinity`` that other parsers refuse)."""
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def load_claims(artifacts, order, claim_order=()):
    """Every study's claims.json rows (studies in ``order``), sorted by ``claim_order`` (prefixes)."""
    claims = []
    for folder in (Path(artifacts) / study for study in order):
        if (folder / "claims.json").exists():
            claims += json.loads((folder / "claims.json").read_text())
    return sorted(claims, key=lambda c: next((i for i, k in enumerate(claim_order) if c["claim"].startswith(k)),
                                             len(claim_order)))


def headline(ours):
    """The numbers of a claim's 'ours' text, without the arithmetic after them (its first clause; a
    parenthesis the cut leaves open is closed)."""
    first = ours.split("; ")[0]
    return first + ")" * (first.count("(") - first.count(")"))


def claims_table(claims, link_prefix=""):
    """The short table: claim, setting, our numbers, verdict, figure (``link_prefix`` before its path)."""
    table = ["| claim | setting | ours (mean ± s.e. over training seeds) | verdict | figure |", "|---|---|---|---|---|"]
    for c in claims:
        figure = c["figure"].replace("](", f"]({link_prefix}")
        table.append(f"| {c['claim']} | {c['setting']} | {headline(c['ours'])} | **{c['verdict']}** | {figure} |")
    return table


def claim_details(claims):
    """Per claim: what the paper reports and our numbers with their arithmetic (paired s.e., seeds needed)."""
    lines = ["### The claims in detail", ""]
    for c in claims:
        lines.append(f"* **{c['claim']}** ({c['setting']}). The paper: {c['paper']}. Ours: {c['ours']}.")
    return lines


def results_at_a_glance(claims, link_prefix="paper_appendix/"):
    """The README's table: the first row of each claim (its headline setting), our numbers, the verdict."""
    seen, table = set(), ["| claim | ours | verdict | figure |", "|---|---|---|---|"]
    for c in claims:
        if c["claim"] in seen:
            continue
        seen.add(c["claim"])
        figure = c["figure"].replace("](", f"]({link_prefix}")
        table.append(f"| {c['claim']} ({c['setting']}) | {headline(c['ours'])} | **{c['verdict']}** | {figure} |")
    return table


RESULTS_START, RESULTS_END = "<!-- results: tools/experiments.py --readme -->", "<!-- /results -->"


def write_readme_results(readme, claims):
    """Replace the README's results table (between its markers) by ``results_at_a_glance(claims)``."""
    readme = Path(readme)
    text = readme.read_text()
    if RESULTS_START not in text or RESULTS_END not in text:
        raise ValueError(f"{readme} has no results markers ({RESULTS_START} ... {RESULTS_END})")
    before, rest = text.split(RESULTS_START, 1)
    after = rest.split(RESULTS_END, 1)[1]
    readme.write_text(before + RESULTS_START + "\n" + "\n".join(results_at_a_glance(claims)) + "\n" + RESULTS_END
                      + after)
    return readme


def assemble(report_path, artifacts, header, footer, order, claim_order=()):
    """REPRODUCTION.md = header + the short claims table (rows in ``claim_order``, matched by prefix) +
    the claims in detail + each study's section (in ``order``) + footer."""
    artifacts = Path(artifacts)
    claims = load_claims(artifacts, order, claim_order)
    sections = [(artifacts / s / "section.md").read_text() for s in order if (artifacts / s / "claims.json").exists()]
    text = "\n\n".join([header.strip(), "## Claims\n\n" + "\n".join(claims_table(claims)),
                         "\n".join(claim_details(claims)), *[s.strip() for s in sections], footer.strip()]) + "\n"
    Path(report_path).write_text(text)
    return report_path
