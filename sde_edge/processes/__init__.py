"""The forward processes: what every loss, sampler and likelihood talks to.

* ``base``: the interface ``SDE``, a linear Gaussian SDE diagonal in an orthonormal basis;
* ``registry``: ``diffusion.process`` names a registered process, ``build_sde`` builds it (it
  imports no process; each module below registers its own);
* ``edge``: the edge-preserving process of Vandersanden et al. (2024) and its isotropic case
  ``VPSDE`` (DDPM), with its Sobel ``edge_map``, its ``schedules`` and the ``direct_variance`` table;
* ``spectral``: blurring diffusion and blue noise, diagonal in the frequency ``bases``.
"""
from sde_edge.processes.base import SDE
from sde_edge.processes.edge import VPSDE, EdgePreservingSDE
from sde_edge.processes.registry import (
    PROCESSES,
    build_sde,
    config_key,
    diffusion_defaults,
    process_fields,
    processes,
    register_process,
    validate_diffusion,
)
from sde_edge.processes.spectral import BlueNoiseSDE, BlurringSDE

__all__ = ["PROCESSES", "SDE", "VPSDE", "BlueNoiseSDE", "BlurringSDE", "EdgePreservingSDE", "build_sde", "config_key",
           "diffusion_defaults", "process_fields", "processes", "register_process", "validate_diffusion"]
