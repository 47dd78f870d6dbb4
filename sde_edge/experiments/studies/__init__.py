"""The studies of ``tools/experiments.py``, one module each; importing this package registers them
(``sde_edge.experiments.registry.STUDIES``) in the report's order."""
from sde_edge.experiments.registry import STUDIES
# the report's order is the import order
from sde_edge.experiments.studies import comparison  # noqa: F401, I001 (registers)
from sde_edge.experiments.studies import unconditional  # noqa: F401, I001
from sde_edge.experiments.studies import convergence  # noqa: F401, I001
from sde_edge.experiments.studies import frequency  # noqa: F401, I001
from sde_edge.experiments.studies import sdedit  # noqa: F401, I001
from sde_edge.experiments.studies import ablation  # noqa: F401, I001
from sde_edge.experiments.studies import weighting  # noqa: F401, I001

__all__ = ["STUDIES"]
