"""The compute each registered study has used: its trainings (from their metrics.csv, else their kept
records) and its evaluations (the recorded wall_seconds of the cache and of the kept records), recorded
beside each study's section so that the report keeps them when it is rebuilt on another machine."""
import json
from pathlib import Path

from sde_edge.experiments.kept import earlier_compute, kept_records
from sde_edge.experiments.registry import STUDIES
from sde_edge.experiments.runs import training_facts, training_minutes

COLUMNS = ("trainings on disk", "trainings (all)", "training wall (min)", "evaluations", "evaluation wall (min)",
           "evaluations timed")


def compute_used(root, quick=False):
    """{study: its row} of what is on disk under ``root``. A training shared by several studies counts
    under the first (in the registry's order); an evaluation under the first study that owns it."""
    counted, trainings = set(), {}
    for name, study in STUDIES.items():
        own = [spec for spec in study.runs(quick) if spec.key not in counted]
        counted.update(spec.key for spec in own)
        trainings[name] = {spec.key: _training_minutes(spec, root, quick) for spec in own}
    seconds = {}  # (run, step, slug) -> wall seconds: the cache on disk and the kept records, once each
    for path in Path(root, "evals").glob("*/**/*.json"):
        metrics = json.loads(path.read_text())
        run = path.relative_to(Path(root, "evals")).parts[0]
        seconds[run, metrics.get("step", path.parent.name), path.stem] = metrics.get("wall_seconds")
    for run, kept in kept_records():
        for key, metrics in kept["evaluations"].items():
            step, slug = key.split("/", 1)
            seconds.setdefault((run, int(step), slug), metrics.get("wall_seconds"))
    evaluations = {name: [] for name in STUDIES}
    for (run, _, slug), wall in seconds.items():
        owner = next((name for name, study in STUDIES.items() if study.owns_evaluation(run, slug, quick)), None)
        if owner:
            evaluations[owner].append(wall)
    rows, earlier = {}, earlier_compute()
    for name in STUDIES:
        minutes, timed = trainings[name], [t for t in evaluations[name] if t is not None]
        row = dict(zip(COLUMNS, (sum(done and m > 0 for m, done in minutes.values()), len(minutes),
                                 sum(m for m, _ in minutes.values()),
                                 len(evaluations[name]), sum(timed) / 60, len(timed))))
        for column, value in earlier.get(name, {}).items():
            if column in row and column != "trainings (all)":
                row[column] += value
        rows[name] = {k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}
    return rows


def _training_minutes(spec, root, quick):
    """(minutes, finished) of a run: of a trained run from its metrics.csv (and kept), else its kept
    record's, else what a run still training has used so far (not finished). A run kept without
    minutes is counted in earlier_compute's row instead."""
    facts = training_facts(spec, root, quick)  # {} for a run neither trained here nor kept
    return facts.get("train_minutes") or training_minutes(spec, root), bool(facts)


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
    lines = ["| study | trainings done, on disk or kept (all) | training wall (min) | evaluations "
             "| evaluation wall (min) |", "|---|---|---|---|---|"]
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
