"""Distances between generated and reference feature sets (numpy arrays (N, D)).

* FD of Gaussians fitted to the features (clean-fid's formula, computed here by a symmetric
  eigenvalue problem: clean-fid 0.1.35 calls ``scipy.linalg.sqrtm(..., disp=False)``, which
  scipy 1.18 no longer accepts), plus a bootstrap standard error over the generated set (the
  reference held fixed).
* KID: clean-fid's ``kernel_distance`` (cubic polynomial kernel, unbiased MMD^2), one subset at
  a time so that its mean and standard deviation over subsets come out (clean-fid returns the
  mean only), with numpy's global RNG seeded and restored around it.
* Precision and recall (Kynkaenniemi et al. 2019, k = 3) with density and coverage (Naeem et al.
  2020), from ``prdc``.
"""
import contextlib
import io

import numpy as np


def gaussian_moments(features):
    features = np.asarray(features, dtype=np.float64)
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(features_a, features_b):
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2): the eigenvalues of S_a S_b are those of
    the symmetric A S_a A with A = S_b^1/2, so no general matrix square root is taken."""
    return FixedReferenceFD(features_b)(features_a)


class FixedReferenceFD:
    """FD of many generated sets against one reference. The reference covariance S_r is fixed, so
    its square root A is taken once and each set needs only tr((S_r S_g)^1/2) = sum sqrt(eig(A S_g A)),
    a symmetric eigenvalue problem; with fewer samples n than dimensions the same nonzero
    eigenvalues come from the n x n matrix X S_r X^T / (n - 1) of the centred samples X."""

    def __init__(self, reference):
        self.mu, self.sigma = gaussian_moments(reference)
        eigenvalues, vectors = np.linalg.eigh(self.sigma)
        self.root = (vectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ vectors.T

    def __call__(self, generated):
        generated = np.asarray(generated, dtype=np.float64)
        n, dims = generated.shape
        mu, sigma = gaussian_moments(generated)
        if n < dims:
            centred = generated - mu
            product = centred @ self.sigma @ centred.T / (n - 1)
        else:
            product = self.root @ sigma @ self.root
        cross = np.sqrt(np.clip(np.linalg.eigvalsh(product), 0, None)).sum()
        return float(np.sum((mu - self.mu) ** 2) + np.trace(sigma) + np.trace(self.sigma) - 2 * cross)


def frechet_distance_stderr(generated, reference, resamples=20, seed=0):
    """Bootstrap standard error of FD over the generated set (the reference held fixed); fast for
    2048-d Inception features too (20 sqrtm of 2048 x 2048 matrices would take minutes)."""
    generated = np.asarray(generated, dtype=np.float64)
    fd = FixedReferenceFD(reference)
    rng = np.random.default_rng(seed)
    values = [fd(generated[rng.integers(0, len(generated), len(generated))]) for _ in range(resamples)]
    return float(np.std(values, ddof=1))


def kernel_distance(generated, reference, subsets=100, max_subset_size=1000, seed=0):
    """(KID mean, its standard deviation over ``subsets`` random subsets).

    Comparing a set with itself (the same array) draws the two subsets from disjoint halves:
    a point shared by both subsets puts a diagonal kernel value into the cross term and biases
    the unbiased MMD^2 below zero."""
    from cleanfid.fid import kernel_distance as cleanfid_kernel  # costly to import: only when used

    generated, reference = np.asarray(generated), np.asarray(reference)
    same = generated.shape == reference.shape and np.array_equal(generated, reference)
    size = min(len(generated) // 2 if same else min(len(generated), len(reference)), max_subset_size)
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        values = []
        for _ in range(subsets):
            if same:
                order = np.random.permutation(len(generated))
                a, b = generated[order[:size]], generated[order[size:2 * size]]
            else:
                a, b = generated, reference
            values.append(cleanfid_kernel(a, b, num_subsets=1, max_subset_size=size))
    finally:
        np.random.set_state(saved)
    return float(np.mean(values)), float(np.std(values, ddof=1))


def precision_recall(generated, reference, k=3):
    """{'precision', 'recall', 'density', 'coverage'} with k nearest neighbours."""
    from prdc import compute_prdc  # costly to import: only when used

    if min(len(generated), len(reference)) <= k:
        raise ValueError(f"precision/recall with k = {k} needs more than {k} images in each set, "
                         f"got {len(generated)} generated and {len(reference)} reference")
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        values = compute_prdc(np.asarray(reference), np.asarray(generated), k)
    return {key: float(value) for key, value in values.items()}
