"""Kept results: what the studies have measured of each run, committed beside the report
(``paper_appendix/reproduction/kept/<run>.json``), so that the report outlives the trainings root
(a fresh checkout, another machine, a session whose disk did not survive).

Results a study derives from several runs (a first stage's reconstruction floor, a diagnostic
over the arms) are kept the same way under ``kept/derived/``, each with what it was made for.

A run's record holds the run it was measured for (config file, seed, overrides), its training facts
(wall minutes, median gradient norm, share of clipped steps: read from its metrics.csv once it is
trained), its divergence if it diverged, every evaluation of it by checkpoint step and protocol
slug, and the SHA-256 of each sample grid kept beside it (``<run>.<slug>.png``). ``evaluate``
returns a kept evaluation before it looks for a checkpoint and keeps each one it computes. A record
made for another spec (the run's config file, seed or overrides changed since) is ignored, so a
changed run is trained and measured again; to measure an unchanged run again (a fix in the trainer
or the metrics), delete its record. Off (``None``) unless
``tools/experiments.py`` names the folder: library callers keep nothing.
"""
import fcntl
import hashlib
import json
import shutil
from contextlib import contextmanager
from pathlib import Path

_STORE = {"folder": None}


def set_kept(folder):
    """Keep records in ``folder`` (``None``: keep and read nothing)."""
    _STORE["folder"] = None if folder is None else Path(folder)


def _plain(value):
    """JSON's view of a value (tuples as lists), so that a spec compares equal to its stored form."""
    return json.loads(json.dumps(value))


def fingerprint(spec, quick=False):
    """What a record was measured for: the run's config file, seed, overrides and budget."""
    return _plain({"config": spec.config, "seed": spec.seed, "quick": bool(quick),
                   "overrides": {k: spec.overrides[k] for k in sorted(spec.overrides)}})


def _path(spec):
    return _STORE["folder"] / f"{spec.key}.json"


def record(spec, quick=False):
    """The run's record, or ``None`` (nothing kept, keeping off, or kept for another spec)."""
    if _STORE["folder"] is None or not _path(spec).exists():
        return None
    data = json.loads(_path(spec).read_text())
    return data if data.get("spec") == fingerprint(spec, quick) else None


def _update(spec, quick, change):
    """Read, change and write the run's record under a lock on the folder: processes side by side (a
    worker evaluating, a report counting compute) never drop each other's entries."""
    if _STORE["folder"] is None:
        return
    path = _path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = record(spec, quick) or {"spec": fingerprint(spec, quick), "training": {}, "evaluations": {}}
        before = json.dumps(data, sort_keys=True)
        change(data)
        if json.dumps(data, sort_keys=True) != before:
            tmp = path.with_name(f".{path.name}.tmp")  # a killed process leaves the old record or none
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            tmp.replace(path)


def final_step(spec, quick=False):
    return int(spec.build_config(quick).training.n_iters)


def _evaluation_key(step, slug):
    return f"{int(step)}/{slug}"


def kept_evaluation(spec, slug, step=None, quick=False):
    """The kept metrics of the run's checkpoint ``step`` (``None``: its last) under protocol ``slug``."""
    data = record(spec, quick)
    if data is None:
        return None
    return data["evaluations"].get(_evaluation_key(final_step(spec, quick) if step is None else step, slug))


def keep_evaluation(spec, slug, metrics, quick=False):
    """Keep the metrics of one evaluation (``metrics['step']`` names its checkpoint)."""
    _update(spec, quick, lambda data: data["evaluations"].__setitem__(_evaluation_key(metrics["step"], slug),
                                                                       _plain(metrics)))


def kept_picture(spec, slug, source=None, quick=False, note=None):
    """The sample grid of the run's last checkpoint under protocol ``slug``, kept beside its record as
    ``<run>.<slug>.png`` (its SHA-256 in the record, so a picture of another spec or a changed file is
    never shown); ``source``, that grid on disk, is kept first, with ``note`` (where the picture came
    from, when not from the kept evaluation; an unchanged picture keeps its note). ``None`` while
    nothing valid is kept; with keeping off, ``source`` itself."""
    if _STORE["folder"] is None or record(spec, quick) is None:
        return source
    path = _STORE["folder"] / f"{spec.key}.{slug}.png"
    if source is not None:
        tmp = path.with_name(f".{path.name}.tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(path)
        digest = _sha256(path)

        def change(data):
            before = data.setdefault("pictures", {}).get(slug, {})
            said = note if note is not None else before.get("note") if before.get("sha256") == digest else None
            data["pictures"][slug] = {"sha256": digest, **({"note": said} if said else {})}

        _update(spec, quick, change)
        return path
    valid = path.exists() and _picture_entry(spec, slug, quick).get("sha256") == _sha256(path)
    return path if valid else None


def kept_picture_note(spec, slug, quick=False):
    """Where the run's kept picture under ``slug`` came from, if it says (``kept_picture``'s ``note``)."""
    return _picture_entry(spec, slug, quick).get("note")


def _picture_entry(spec, slug, quick):
    data = record(spec, quick) or {}
    return data.get("pictures", {}).get(slug, {})


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def kept_steps(spec, slug, quick=False):
    """The checkpoint steps with a kept evaluation under ``slug``, in order."""
    data = record(spec, quick) or {"evaluations": {}}
    suffix = f"/{slug}"
    return sorted(int(key[: -len(suffix)]) for key in data["evaluations"] if key.endswith(suffix))


def kept_training(spec, quick=False):
    """The run's kept training facts ({} if none): train_minutes, grad_norm_median, clipped_share, steps."""
    data = record(spec, quick)
    return dict(data["training"]) if data else {}


def keep_training(spec, facts, quick=False):
    _update(spec, quick, lambda data: data["training"].update(_plain(facts)))


def kept_divergence(spec, quick=False):
    """Why the run's training diverged, if that is kept (else ``None``)."""
    data = record(spec, quick)
    return data.get("diverged") if data else None


def keep_divergence(spec, reason, quick=False):
    _update(spec, quick, lambda data: data.__setitem__("diverged", str(reason)))


def kept_records():
    """(run key, record) of every kept run; for the compute accounting."""
    folder = _STORE["folder"]
    if folder is None or not folder.is_dir():
        return []
    return [(path.stem, json.loads(path.read_text())) for path in sorted(folder.glob("*.json"))
            if not path.name.startswith("_")]


DERIVED = "derived"  # kept/derived/<name>.json: a study's results over several runs (not a run's record)


def kept_result(name, made_for):
    """A study-level result kept as ``kept/derived/<name>.json`` (a reconstruction floor, a diagnostic
    over several runs), or ``None``: nothing kept, keeping off, or kept for something else than
    ``made_for`` (a JSON-able description of its inputs: the first stage's digest, the runs' specs)."""
    path = None if _STORE["folder"] is None else _STORE["folder"] / DERIVED / f"{name}.json"
    if path is None or not path.exists():
        return None
    data = json.loads(path.read_text())
    return data["value"] if data.get("made_for") == _plain(made_for) else None


def keep_result(name, made_for, value):
    """Keep ``value`` as the study-level result ``name`` made for ``made_for`` (see ``kept_result``)."""
    if _STORE["folder"] is None:
        return
    path = _STORE["folder"] / DERIVED / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"made_for": _plain(made_for), "value": _plain(value)}, indent=1, sort_keys=True))
    tmp.replace(path)


@contextmanager
def kept_file(cache_file, kind):
    """A cached file the studies measure with (a dataset classifier, whose features every FD is in),
    kept as ``kept/<kind>/<its name>``: the kept copy replaces the cache's on entry (the checkout's
    copy is the one the kept numbers were measured with), and a file first built in the cache is kept
    on exit, so that every session and machine measures with the same weights."""
    cache_file = Path(cache_file)
    kept = None if _STORE["folder"] is None else _STORE["folder"] / kind / cache_file.name
    if kept is not None and kept.exists() and (
            not cache_file.exists() or cache_file.read_bytes() != kept.read_bytes()):
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.name}.tmp")
        shutil.copyfile(kept, tmp)
        tmp.replace(cache_file)
    yield
    if kept is not None and cache_file.exists() and not kept.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        tmp = kept.with_name(f".{kept.name}.tmp")
        shutil.copyfile(cache_file, tmp)
        tmp.replace(kept)


def kept_file_digest(cache_file, kind):
    """SHA-256 of the copy of a cached file that ``kept_file`` would measure with (the kept one where
    there is one, else the cache's), or ``None`` while neither exists: what a derived result made in
    that file's features was made for."""
    kept = None if _STORE["folder"] is None else _STORE["folder"] / kind / Path(cache_file).name
    path = kept if kept is not None and kept.exists() else Path(cache_file)
    return _sha256(path) if path.exists() else None


EARLIER = "_earlier.json"  # {study: {compute column: value}}: compute recorded before its runs were kept


def earlier_compute():
    """What each study's accounting held before keeping began, less what its kept records account for
    (the trainings and evaluations whose per-run numbers were lost with their root); {} if none."""
    folder = _STORE["folder"]
    path = None if folder is None else folder / EARLIER
    return json.loads(path.read_text()) if path is not None and path.exists() else {}
