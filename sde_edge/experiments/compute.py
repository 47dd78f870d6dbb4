"""The compute each registered study has used: its trainings (from their metrics.csv) and its cached
evaluations (their recorded wall_seconds), recorded beside each study's section so that the report
keeps them when it is rebuilt on another machine."""
import json
from pathlib import Path

from sde_edge.experiments.registry import STUDIES
from sde_edge.experiments.runs import training_minutes

COLUMNS = ("trainings on disk", "trainings (all)", "training wall (min)", "evaluations", "evaluation wall (min)",
           "evaluations timed")


def compute_used(root, quick=False):
    """{study: its row} of what is on disk under ``root``. A training shared by several studies counts
    under the first (in the registry's order); an evaluation under the first study that owns it."""
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
    rows = {}
    for name in STUDIES:
        minutes, timed = trainings[name], [t for t in evaluations[name] if t is not None]
        rows[name] = dict(zip(COLUMNS, (sum(m > 0 for m in minutes.values()), len(minutes),
                                        round(sum(minutes.values()), 1), len(evaluations[name]),
                                        round(sum(timed) / 60, 1), len(timed))))
    return rows


def record_compute(rows, artifacts):
    """Keep each study's row beside its section (``compute.json``) when this machine has anything of it,
    so that a report rebuilt elsewhere still shows what the study cost where it ran."""
    for name, row in rows.items():
        if row["trainings on disk"] or row["evaluations"]:
            folder = Path(artifacts) / name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "compute.json").write_text(json.dumps(row, indent=1))


def compute_table(artifacts):
    """Markdown: the recorded compute of every registered study (``record_compute``)."""
    lines = ["| study | trainings on disk (all) | training wall (min) | evaluations | evaluation wall (min) |",
             "|---|---|---|---|---|"]
    for name in STUDIES:
        path = Path(artifacts) / name / "compute.json"
        if not path.exists():
            lines.append(f"| {name} | 0 (0) | 0 | 0 | 0 |")
            continue
        row = json.loads(path.read_text())
        timed = "" if row["evaluations timed"] == row["evaluations"] else f" ({row['evaluations timed']} timed)"
        lines.append(f"| {name} | {row['trainings on disk']} ({row['trainings (all)']}) | "
                     f"{row['training wall (min)']:.0f} | {row['evaluations']} | "
                     f"{row['evaluation wall (min)']:.0f}{timed} |")
    return lines
