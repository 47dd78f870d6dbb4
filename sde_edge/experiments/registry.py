"""The registry of studies: what ``tools/experiments.py`` runs, lists, reports and accounts for.

A study is one module that subclasses ``Study``, fills in its name, title, the claims it judges
and a one-line summary, says which training runs it needs (``runs``) and writes its section
(``run``), and decorates the class with ``@register``. The CLI's list, the order of the report,
the text of a study that cannot run yet and the compute accounting are all read from here, so a
new study touches no other file (a module outside the package registers the same way and is
loaded with ``tools/experiments.py --plugin FILE``).
"""
import importlib.util
from pathlib import Path

from sde_edge.experiments.kept import kept_divergence
from sde_edge.experiments.report import write_study

STUDIES = {}  # name -> Study, in the order the report shows them


class Study:
    """One experiment of the reproduction. Subclasses set the class attributes and implement ``run``."""

    name = ""
    title = ""  # the report section's heading
    claims = ()  # the claims-table rows it judges (their names, in order)
    summary = ""  # one line for ``tools/experiments.py --list``
    position = 100  # the report's order: lower first (studies from plugins come last by default)
    # True when ``run`` carries on past a Pending training or evaluation item by item, so that parallel
    # workers (``--shard i/n`` without ``--train_only``) can each train and evaluate a share of the runs
    evaluates_in_shards = False
    pending_text = "not every run is done yet"  # the claims' 'ours' cell while the study is pending

    def runs(self, quick=False):
        """The training runs (``RunSpec``) the study needs: ``--train_only`` trains these."""
        return []

    def measured(self, spec, quick=False):
        """Whether everything the study needs of a run is kept (kept.py), so that ``--train_only`` need
        not train it: here only a kept divergence; a study that keeps its evaluations says more."""
        return kept_divergence(spec, quick) is not None

    def owns_evaluation(self, run_key, slug, quick=False):
        """Whether a cached evaluation (run key, protocol slug) is this study's, for the compute table."""
        return run_key in {spec.key for spec in self.runs(quick)}

    def run(self, root, out, quick):
        """Train what is missing, evaluate, and write the study's files and section into ``out``."""
        raise NotImplementedError

    def write_pending(self, out, missing):
        """The section and claim rows of a study whose trainings or evaluations are not all on disk yet."""
        section = (f"## {self.title}\n\nPending: not every training and evaluation of this study is on disk yet "
                   f"(first missing: {missing}).")
        rows = [claim_row(c, "-", "-", self.pending_text, "pending", "-") for c in self.claims]
        write_study(out, section, rows, {"pending": str(missing)})


def claim_row(name, setting, paper, ours, verdict, figure):
    """One row of the report's claims table."""
    return {"claim": name, "setting": setting, "paper": paper, "ours": ours, "verdict": verdict, "figure": figure}


def register(cls):
    """Class decorator: add an instance of the ``Study`` subclass to ``STUDIES`` under its name."""
    study = cls()
    if not study.name or not study.title or not study.claims:
        raise ValueError(f"study {cls.__name__} must set name, title and claims")
    STUDIES[study.name] = study
    ordered = sorted(STUDIES.values(), key=lambda s: s.position)  # stable: equal positions keep their order
    STUDIES.clear()
    STUDIES.update((s.name, s) for s in ordered)
    return cls


def claim_order():
    """Every registered claim name, in the report's order."""
    return [claim for study in STUDIES.values() for claim in study.claims]


def load_plugin(path):
    """Import a Python file that registers studies (or processes, or samplers) of its own."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--plugin: no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"_sde_edge_plugin_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
