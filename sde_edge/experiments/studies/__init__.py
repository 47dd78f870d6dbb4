"""The studies of ``tools/experiments.py``, one module each; importing this package registers them
(``sde_edge.experiments.registry.STUDIES``, in the report's order: each study's ``position``)."""
from sde_edge.experiments.registry import STUDIES
from sde_edge.experiments.studies import (  # noqa: F401 (importing registers them)
    ablation,
    comparison,
    convergence,
    frequency,
    latent,
    sdedit,
    unconditional,
    weighting,
)

__all__ = ["STUDIES"]
