"""The compute each registered study has used on this machine: its trainings (from their
metrics.csv) and its cached evaluations (their recorded wall_seconds)."""
import json
from pathlib import Path

from sde_edge.experiments.registry import STUDIES
from sde_edge.experiments.runs import training_minutes


def compute_used(root, quick=False):
    """Markdown table, one row per study. A training shared by several studies counts under the first
    (in the registry's order); an evaluation under the first study that owns it."""
    counted, trainings = set(), {}
    for name, study in STUDIES.items():
        own = [spec for spec in study.runs(quick) if spec.key not in counted]
        counted.update(spec.key for spec in own)
        trainings[name] = {spec.key: training_minutes(spec, root) for spec in own}
    evaluations = {name: [] for name in STUDIES}
    for path in Path(root, "evals").glob("*/**/*.json"):
        run, slug = path.relative_to(Path(root, "evals")).parts[0], path.stem
        owner = next((name for name, study in STUDIES.items() if study.owns_evaluation(run, slug, quick)), None)
        if owner:
            evaluations[owner].append(json.loads(path.read_text()).get("wall_seconds"))
    lines = ["| study | trainings on disk (all) | training wall (min) | evaluations | evaluation wall (min) |",
             "|---|---|---|---|---|"]
    for name in STUDIES:
        minutes, timed = trainings[name], [t for t in evaluations[name] if t is not None]
        lines.append(
            f"| {name} | {sum(m > 0 for m in minutes.values())} ({len(minutes)}) | {sum(minutes.values()):.0f} | "
            f"{len(evaluations[name])} | {sum(timed) / 60:.0f}"
            + (f" ({len(timed)} timed)" if len(timed) < len(evaluations[name]) else "")
            + " |"
        )
    return lines
