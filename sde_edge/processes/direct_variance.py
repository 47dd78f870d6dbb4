"""The per-pixel variance of the `direct` SDE (paper_appendix/math.md, section 3.2), tabulated.

With G = sqrt(beta) c(e, t) the marginal variance is

    v(e, t) = abar(t) * integral_0^t beta(s) c(e, s)^2 / abar(s) ds,

which depends on the image only through its edge value e. We store
q = v / (1 - abar), the direct variant's c_eff^2 (q = 1 on flat
regions, q -> c(e, 0)^2 as t -> 0), on a grid in

    u = log(1 + e / kappa(0))   (resolves e ~ kappa, where c changes fastest)
    w = t^(1/3)                  (resolves the first ~1e-3 of time, where kappa
                                  grows many-fold), stretched piecewise linearly
                                  so that t_phi falls on a grid node: c has a kink
                                  (linear_ramp) or a jump (linear) there

and interpolate bilinearly. The tests hold the result to 1e-4 relative error
against brute-force quadrature.
"""
import numpy as np
import torch
import torch.nn.functional as F

# Gauss-Legendre nodes on [0, 1]; 4 points integrate each fine cell to ~h^8.
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(4)
_GL_NODES = torch.tensor(0.5 * (_GL_NODES + 1.0), dtype=torch.float64)
_GL_WEIGHTS = torch.tensor(0.5 * _GL_WEIGHTS, dtype=torch.float64)


def _two_pieces(x, knot_x, knot_y):
    """The piecewise-linear map through (0, 0), (knot_x, knot_y) and (1, 1)."""
    below = x * (knot_y / knot_x)
    above = knot_y + (x - knot_x) * ((1.0 - knot_y) / max(1.0 - knot_x, 1e-12))
    return torch.where(x <= knot_x, below, above)


class DirectVarianceTable:
    """q(e, t) on a (u, w) grid; ``effective_factor(e, t)`` returns sqrt(q) = c_eff."""

    def __init__(self, sde, num_edge=512, num_time=2048, refine=2):
        self.kappa_ref = float(sde.kappa(torch.zeros((), dtype=torch.float64)))
        self.u_max = float(np.log1p(1.0 / self.kappa_ref))
        self.w_phi = sde.tau_fn.t_phi ** (1.0 / 3.0)
        self.phi_node = min(max(round(self.w_phi * num_time), 1), num_time) / num_time
        u = torch.linspace(0.0, self.u_max, num_edge, dtype=torch.float64)
        e = self.kappa_ref * torch.expm1(u)
        table_coords = torch.linspace(0.0, 1.0, num_time + 1, dtype=torch.float64)
        self._q = self._tabulate(sde, e, table_coords, refine).to(torch.float32)
        self._cache = {}

    def _coord_to_w(self, x):
        """Table coordinate in [0, 1] -> w = t^(1/3); the inverse of ``_time_coord``."""
        return _two_pieces(x, self.phi_node, self.w_phi)

    def _time_coord(self, t):
        """t -> table coordinate in [0, 1], uniform in t^(1/3) on each side of t_phi."""
        return _two_pieces(t.clamp(0.0, 1.0) ** (1.0 / 3.0), self.w_phi, self.phi_node)

    def _tabulate(self, sde, e, table_coords, refine):
        # Fine cells refine each table cell; a kink or jump of c at t_phi sits on a cell boundary.
        fine = torch.linspace(0.0, 1.0, (len(table_coords) - 1) * refine + 1, dtype=torch.float64)
        left, right = self._coord_to_w(fine[:-1]), self._coord_to_w(fine[1:])
        width = right - left
        w_nodes = left[:, None] + width[:, None] * _GL_NODES  # (cells, 4)
        s = w_nodes**3
        ds_dw = 3.0 * w_nodes**2
        edges = e[:, None, None]
        integrand = sde.schedule.beta(s) * sde.edge_factor(edges, s) ** 2 / torch.exp(sde.schedule.log_abar(s)) * ds_dw
        cell_integrals = (integrand * _GL_WEIGHTS).sum(-1) * width  # (edges, cells)
        cumulative = torch.cat([torch.zeros_like(cell_integrals[:, :1]), cell_integrals.cumsum(-1)], dim=1)
        t = self._coord_to_w(table_coords) ** 3
        abar = torch.exp(sde.schedule.log_abar(t))
        variance = abar * cumulative[:, ::refine]
        q = variance / (1.0 - abar).clamp_min(1e-300)
        q[:, 0] = sde.edge_factor(e, torch.zeros(())) ** 2  # the t -> 0 limit
        return q

    def _table_for(self, tensor):
        key = (tensor.device, tensor.dtype)
        if key not in self._cache:
            self._cache[key] = self._q.to(device=tensor.device, dtype=tensor.dtype)[None, None]
        return self._cache[key]

    def effective_factor(self, e, t):
        """c_eff(e, t) = sqrt(v / (1 - abar)), broadcasting e (B, 1, H, W) with t (B, 1, 1, 1)."""
        e, t = torch.broadcast_tensors(e, t)
        u = torch.log1p(e / self.kappa_ref) / self.u_max
        time_coord = self._time_coord(t)
        # grid_sample's normalised coordinates: x runs along time, y along edges.
        grid = torch.stack([2.0 * time_coord - 1.0, 2.0 * u - 1.0], dim=-1).reshape(1, -1, 1, 2)
        table = self._table_for(e)
        q = F.grid_sample(table, grid, mode="bilinear", padding_mode="border", align_corners=True)
        return torch.sqrt(q).reshape(e.shape)
