"""sde_edge.metrics: every metric against a case where its answer is known (digits splits,
closed forms), the shapes classifier, and the Inception path with a stand-in network."""
import math
import os
import sys

import ml_collections
import numpy as np
import pytest
import torch
from scipy.special import gamma

import forked
from sde_edge.data.datasets import gaussian_blur, load_dataset
from sde_edge.metrics.distances import (
    FixedReferenceFD,
    frechet_distance,
    frechet_distance_stderr,
    kernel_distance,
    precision_recall,
)
from sde_edge.metrics.features import ClassifierFeatures, InceptionFeatures, InceptionUnavailable, build_features
from sde_edge.metrics.report import sample_quality
from sde_edge.metrics.swd import sliced_wasserstein, swd_per_level


def _digits(split):
    return load_dataset(
        ml_collections.ConfigDict(dict(dataset="digits", image_size=16, num_channels=1, blur_sigma=0.0)), split
    )


@pytest.fixture(scope="module")
def digits_quality():
    """The report of several sets against the digits test split, in the classifier's features."""
    features = ClassifierFeatures("digits", 16, 1, progress=False)
    assert features.accuracy >= 0.95
    train, test = _digits("train"), _digits("test")
    noise = torch.randn(600, 1, 16, 16, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    cases = {"train": train.images, "classes 0-4": train.images[train.labels < 5], "noise": noise}
    return {name: sample_quality(images, test.images, features, progress=False) for name, images in cases.items()}


def test_train_split_against_test_split_is_close(digits_quality):
    q = digits_quality
    assert q["train"]["precision"] >= 0.7 and q["train"]["recall"] >= 0.7
    assert q["train"]["fd"] < 0.2 * q["classes 0-4"]["fd"] and q["train"]["fd"] < 0.05 * q["noise"]["fd"]
    assert q["train"]["kid"] < 0.2 * q["classes 0-4"]["kid"]
    assert q["train"]["confident"] > 0.9 and q["train"]["classes_covered"] == 10


def test_half_the_classes_costs_recall_not_precision(digits_quality):
    q = digits_quality
    assert q["train"]["recall"] - q["classes 0-4"]["recall"] >= 0.2
    assert q["classes 0-4"]["precision"] >= 0.6
    assert q["classes 0-4"]["class_counts"][5:] == [0, 0, 0, 0, 0] or sum(q["classes 0-4"]["class_counts"][5:]) < 20


def test_noise_has_no_precision_and_a_far_larger_fd(digits_quality):
    q = digits_quality
    assert q["noise"]["precision"] <= 0.05
    assert q["noise"]["fd"] > 20 * q["train"]["fd"]


def test_blur_raises_the_finest_band_first():
    test = _digits("test").images
    sigmas = (0.0, 0.5, 1.0, 1.5, 2.0)
    levels = np.array([swd_per_level(gaussian_blur(test, s) if s else test, test) for s in sigmas])
    finest, coarsest = levels[:, 0], levels[:, -1]
    assert (np.diff(finest) > 0).all(), finest
    assert finest[-1] - finest[0] > coarsest[-1] - coarsest[0], (finest, coarsest)


# --- known values -------------------------------------------------------------------------------------
def test_frechet_distance_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (200_000, 2))
    b = rng.normal([1.0, 0.0], [2.0, 1.0], (200_000, 2))
    # ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2) = 1 + (1 + 4 - 4) + 0 = 2
    assert frechet_distance(a, b) == pytest.approx(2.0, abs=0.03)


@pytest.mark.parametrize("n", [30, 300])
def test_frechet_distance_equals_the_general_matrix_square_roots(n):
    """Against clean-fid's formula written with scipy's sqrtm of the non-symmetric product (fewer
    samples than dimensions too, where the product is singular)."""
    from scipy import linalg

    rng = np.random.default_rng(5)
    generated, reference = rng.normal(size=(n, 50)), 1.3 * rng.normal(size=(200, 50)) + 0.2
    (mu_g, s_g), (mu_r, s_r) = [(x.mean(0), np.cov(x, rowvar=False)) for x in (generated, reference)]
    general = np.sum((mu_g - mu_r) ** 2) + np.trace(s_g + s_r - 2 * linalg.sqrtm(s_g @ s_r).real)
    assert frechet_distance(generated, reference) == pytest.approx(general, rel=1e-6)


@pytest.mark.parametrize("features", ["gaussian", "skewed_mixture"])
def test_the_fd_standard_error_is_the_spread_of_fd_over_independent_draws(features):
    """Every verdict reads FD ± its bootstrap s.e.: Monte-Carlo over 300 independent generated sets
    (the reference held fixed, as in the bootstrap) gives the spread it must estimate. Gaussian
    features and a skewed class mixture (closer to a classifier's), n = 1000 as in the studies.
    Measured: the bootstrap is 1.19 and 1.08 times the spread (resampling with replacement repeats
    samples, which errs on the safe side)."""
    rng = np.random.default_rng(0)
    d, n = 16, 1000
    mixing = np.eye(d) + 0.15 * rng.standard_normal((d, d))

    def sample(m, generated=True):
        z = rng.standard_normal((m, d))
        if features == "gaussian":
            return z @ mixing.T + (0.1 if generated else 0.0)
        classes = rng.integers(0, 4, m)
        x = np.exp(0.5 * z) + 2.0 * (classes[:, None] == np.arange(d)[None] % 4)
        return x * np.where(np.arange(d) < 4, 1.2, 1.0) if generated else x

    reference = sample(5000, generated=False)
    fd = FixedReferenceFD(reference)
    spread = np.std([fd(sample(n)) for _ in range(300)], ddof=1)
    bootstrap = np.mean([frechet_distance_stderr(sample(n), reference, seed=i) for i in range(30)])
    assert 0.8 < bootstrap / spread < 1.4, (bootstrap, spread)


def test_kid_of_a_set_against_itself_is_zero_within_two_standard_deviations():
    features = np.random.default_rng(1).normal(size=(800, 64))
    kid, kid_std = kernel_distance(features, features, subsets=50, max_subset_size=300)
    assert abs(kid) <= 2 * kid_std and kid_std > 0


def test_sliced_wasserstein_of_shifted_gaussians_is_the_mean_projected_shift():
    """X ~ N(0, I_d), Y ~ N(mu, I_d): each unit direction theta sees N(0, 1) against N(theta.mu, 1),
    whose W_1 is |theta.mu|; over uniform directions E|theta.mu| = |mu| Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2))."""
    d = 6
    rng = np.random.default_rng(2)
    mu = np.array([1.5, -0.5, 0.0, 0.0, 1.0, 0.0])
    x, y = rng.normal(size=(10_000, d)), rng.normal(size=(8_000, d)) + mu
    expected = np.linalg.norm(mu) * gamma(d / 2) / (math.sqrt(math.pi) * gamma((d + 1) / 2))
    assert sliced_wasserstein(x, y, directions=2000, seed=3) == pytest.approx(expected, rel=0.03)


def test_precision_recall_of_disjoint_and_equal_sets():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(500, 8))
    assert precision_recall(a + 100.0, a)["precision"] == 0.0
    same = precision_recall(rng.normal(size=(500, 8)), a)
    assert same["precision"] > 0.8 and same["recall"] > 0.8
    with pytest.raises(ValueError, match="k = 3"):
        precision_recall(a[:3], a)


# --- shapes and the Inception path -----------------------------------------------------------------------
def test_shapes_classifier_is_accurate_and_its_label_names_its_weights():
    import hashlib

    from sde_edge.metrics.classifier import classifier_path

    features = ClassifierFeatures("shapes", 16, 1, progress=False)
    assert features.accuracy >= 0.98
    digest = hashlib.sha256(classifier_path("shapes", 16, 1).read_bytes()).hexdigest()[:12]
    assert features.label == f"classifier (shapes, 16px, held-out accuracy {features.accuracy:.4f}, weights {digest})"


def test_the_classifiers_block_scales_over_batches_equal_the_whole_sets():
    from sde_edge.metrics.classifier import ImageClassifier, block_scales

    torch.manual_seed(0)
    model, images = ImageClassifier(1, 4).eval(), torch.rand(1234, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        whole = torch.stack([block.square().mean().sqrt() for block in model.blocks(images)])
    torch.testing.assert_close(block_scales(model, images, batch_size=500), whole, rtol=1e-5, atol=0)


class _StandIn(torch.nn.Module):
    """The interface of clean-fid's TorchScript Inception: .layers on 299x299 inputs, and
    forward(x, return_features) that resizes itself (legacy_tensorflow)."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, 2048))

    def forward(self, x, return_features: bool = False):
        return self.layers((torch.nn.functional.interpolate(x, size=(299, 299)) - 128) / 128)


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "stand_in_inception.pt"
    torch.jit.save(torch.jit.script(_StandIn()), str(path))
    return path


@pytest.mark.parametrize("mode", ["clean", "legacy_tensorflow"])
def test_inception_path_runs_with_a_stand_in_network(stand_in, mode):
    features = InceptionFeatures(mode, stand_in, fetch=False)
    images = _digits("test").images[:10]
    values = features(images, progress=False)
    assert values.shape == (10, 2048) and np.isfinite(values).all()
    np.testing.assert_array_equal(values, features(images, progress=False))
    assert features.label == f"inception ({mode})"


def test_eval_samples_with_inception_features_end_to_end(stand_in, tmp_path):
    np.savez(tmp_path / "s.npz", samples=_digits("train").images[:40].numpy())
    env = {**os.environ, "SDE_EDGE_INCEPTION": str(stand_in), "OMP_NUM_THREADS": "1"}
    result = forked.run([sys.executable, "-m", "sde_edge.cli", "eval-samples", f"--samples={tmp_path / 's.npz'}",
                         "--config=configs/digits_edge.py", "--features=inception", "--n_reference=80",
                         f"--out={tmp_path / 'out'}"], env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[inception (clean)]" in result.stdout


def test_offline_inception_is_one_line_and_leaves_no_file(tmp_path):
    missing = tmp_path / "nothing_here" / "inception-2015-12-05.pt"
    env = {**os.environ, "SDE_EDGE_INCEPTION": str(missing), "SDE_EDGE_INCEPTION_URL": "http://127.0.0.1:9/inception.pt"}
    np.savez(tmp_path / "s.npz", samples=np.zeros((8, 1, 16, 16), np.float32))
    result = forked.run([sys.executable, "-m", "sde_edge.cli", "eval-samples", f"--samples={tmp_path / 's.npz'}",
                         "--config=configs/digits_edge.py", "--features=inception", f"--out={tmp_path / 'out'}"],
                        env=env, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert str(missing) in last and "SDE_EDGE_INCEPTION" in last and "--features classifier" in last
    assert not missing.parent.exists() or not list(missing.parent.iterdir())


def test_auto_falls_back_to_the_classifier_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("SDE_EDGE_INCEPTION", str(tmp_path / "absent.pt"))
    monkeypatch.setenv("SDE_EDGE_INCEPTION_URL", "http://127.0.0.1:9/inception.pt")
    data = ml_collections.ConfigDict(dict(dataset="digits", image_size=16, num_channels=1))
    assert build_features("auto", data, progress=False).name == "classifier"
    with pytest.raises(InceptionUnavailable):
        build_features("auto", ml_collections.ConfigDict(dict(dataset="folder", image_size=16, num_channels=3)))
