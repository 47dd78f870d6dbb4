"""Orthonormal bases in which a process is diagonal (paper_appendix/math.md, section 3.3).

A process x_t = U (alpha(t) * U^T x0 + s(x0, t) * z) is diagonal in the basis U. Pixels
(``IdentityBasis``) serve DDPM and the edge-preserving process; the orthonormal 2-D DCT
and real DFT serve the frequency-shaped baselines. Both are separable, y = M_H x M_W^T per
channel, with the N x N matrices built once per size, device and dtype: two small matmuls.

``frequencies(H, W)`` gives each coordinate's radial spatial frequency rho in cycles per
pixel; the continuous Laplacian's eigenvalue of that coordinate is 4 pi^2 rho^2
(Neumann boundaries for the DCT, periodic for the DFT).
"""
import math

import torch


class IdentityBasis:
    name = "identity"

    def forward(self, x):
        return x

    def inverse(self, y):
        return y

    def pixel_variance(self, variance):
        """diag(U diag(v) U^T): the per-pixel variance of coordinates with variances v."""
        return variance


def _dct_matrix(n):
    """The orthonormal DCT-II: M[k, j] = sqrt(2 / n) c_k cos(pi (2j + 1) k / (2n)), c_0 = 1 / sqrt(2)."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    matrix = math.sqrt(2.0 / n) * torch.cos(math.pi * (2 * j + 1) * k / (2 * n))
    matrix[0] /= math.sqrt(2.0)
    return matrix


def _dct_frequencies(n):
    return torch.arange(n, dtype=torch.float64) / (2 * n)


def _dft_matrix(n):
    """The real orthonormal Fourier basis: the constant, cosines for 0 < k < n/2, the alternating
    row (-1)^j for even n, and sines for n/2 < k < n (frequency n - k)."""
    j = torch.arange(n, dtype=torch.float64)
    rows = []
    for k in range(n):
        if k == 0:
            rows.append(torch.full((n,), 1.0 / math.sqrt(n), dtype=torch.float64))
        elif 2 * k < n:
            rows.append(math.sqrt(2.0 / n) * torch.cos(2 * math.pi * k * j / n))
        elif 2 * k == n:
            rows.append(torch.cos(math.pi * j) / math.sqrt(n))
        else:
            rows.append(math.sqrt(2.0 / n) * torch.sin(2 * math.pi * (n - k) * j / n))
    return torch.stack(rows)


def _dft_frequencies(n):
    k = torch.arange(n, dtype=torch.float64)
    return torch.minimum(k, n - k) / n


class SeparableBasis:
    """An orthonormal basis applied along both image axes: y = M_H x M_W^T per channel."""

    def __init__(self, name, matrix_fn, frequency_fn):
        self.name, self._matrix_fn, self._frequency_fn = name, matrix_fn, frequency_fn
        self._cache = {}

    def _matrix(self, n, like):
        key = (n, like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = self._matrix_fn(n).to(device=like.device, dtype=like.dtype)
        return self._cache[key]

    def forward(self, x):
        return self._matrix(x.shape[-2], x) @ x @ self._matrix(x.shape[-1], x).T

    def inverse(self, y):
        return self._matrix(y.shape[-2], y).T @ y @ self._matrix(y.shape[-1], y)

    def pixel_variance(self, variance):
        variance = variance.expand(*variance.shape[:-2], *variance.shape[-2:])
        left, right = self._matrix(variance.shape[-2], variance), self._matrix(variance.shape[-1], variance)
        return left.square().T @ variance @ right.square()

    def frequencies(self, height, width):
        """Radial frequency of each coordinate, (height, width), cycles per pixel (float64)."""
        rows, cols = self._frequency_fn(height), self._frequency_fn(width)
        return torch.sqrt(rows[:, None] ** 2 + cols[None, :] ** 2)


IDENTITY = IdentityBasis()
DCT = SeparableBasis("dct", _dct_matrix, _dct_frequencies)
DFT = SeparableBasis("dft", _dft_matrix, _dft_frequencies)
BASES = {"dct": DCT, "dft": DFT}
BASIS_NAMES = tuple(BASES)
