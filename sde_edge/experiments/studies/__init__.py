"""The studies of ``tools/experiments.py``, one module each; importing this package registers them
(``sde_edge.experiments.registry.STUDIES``) in the report's order."""
from sde_edge.experiments.registry import STUDIES

# the report's order is the import order
from sde_edge.experiments.studies import (
    ablation,  # noqa: F401, I001
    comparison,  # noqa: F401, I001 (registers)
    convergence,  # noqa: F401, I001
    frequency,  # noqa: F401, I001
    sdedit,  # noqa: F401, I001
    unconditional,  # noqa: F401, I001
    weighting,  # noqa: F401, I001
)

__all__ = ["STUDIES"]
