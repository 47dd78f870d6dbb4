"""The registry of forward processes: ``diffusion.process`` names one, ``build_sde`` builds it.

It imports no process: each registers itself (``sde_edge.processes`` imports them all).

A process is an ``SDE`` subclass decorated with ``@register_process``. It sets ``name`` and
declares its own config fields (``fields``: name -> ``Field``, with default and rule) on top of
the shared reference schedule of ``SDE.fields``; ``check_config`` adds rules that tie fields
together. ``sde_edge.config`` derives the process names, the defaults of ``config.diffusion``
and its validation from here, so a new process is one module (docs/extending.md).
"""
import json

from sde_edge.fields import check, choice

PROCESSES = {}  # name -> SDE subclass


def register_process(cls):
    """Class decorator: make an ``SDE`` subclass available as ``diffusion.process = cls.name``."""
    if not getattr(cls, "name", None):
        raise ValueError(f"process {cls.__name__} must set a name")
    PROCESSES[cls.name] = cls
    return cls


def processes():
    """Every registered process, the built-in ones first (``sde_edge.processes`` registers them)."""
    return PROCESSES


def process_fields(name):
    """Every field of process ``name``: the shared ones and its own."""
    cls = processes()[name]
    fields = {}
    for klass in reversed(cls.__mro__):
        fields.update(getattr(klass, "fields", {}))
    return fields


def diffusion_defaults():
    """The default of every field of every process (the fields of processes not chosen are ignored)."""
    defaults = {}
    for name in processes():
        defaults.update({key: field.default for key, field in process_fields(name).items()})
    defaults["process"] = "edge"
    return defaults


def validate_diffusion(diffusion, prefix="diffusion"):
    """Check a ``config.diffusion`` section against its process's fields and rules; returns it."""
    check(diffusion, {"process": choice(tuple(processes()))}, prefix)
    cls = processes()[diffusion.process]
    check(diffusion, {key: field.rule for key, field in process_fields(diffusion.process).items()}, prefix)
    cls.check_config(diffusion, prefix)
    return diffusion


def build_sde(diffusion_config):
    """The process a (validated) ``config.diffusion`` section names."""
    return processes()[diffusion_config.get("process", "edge")](diffusion_config)


def config_key(diffusion_config):
    """A hashable key of the whole section, for caches of anything built from it."""
    return json.dumps(diffusion_config.to_dict(), sort_keys=True, default=str)
