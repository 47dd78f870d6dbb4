"""sde_edge.metrics: the digits classifier and the Frechet distance in its feature space."""
import numpy as np
import pytest
import torch

from sde_edge.data import digit_labels, load_dataset
from sde_edge.metrics import digit_quality, frechet_distance, train_digits_classifier


@pytest.fixture(scope="module")
def classifier():
    model, accuracy = train_digits_classifier()
    assert accuracy >= 0.95, f"held-out accuracy {accuracy:.3f}"
    return model


def test_quality_separates_digits_from_noise(classifier):
    import ml_collections

    test = load_dataset(ml_collections.ConfigDict(dict(dataset="digits", image_size=16, num_channels=1)), "test")
    real = digit_quality(classifier, test, reference="train")
    noise = digit_quality(classifier, torch.rand(270, 1, 16, 16) * 2 - 1, reference="train")
    assert real.confident_fraction > 0.9 and noise.confident_fraction < real.confident_fraction
    assert real.frechet_distance < 0.1 * noise.frechet_distance
    assert sum(real.class_counts) == 270 and len(digit_labels("test")) == 270


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, (200_000, 2))
    b = rng.normal([1.0, 0.0], [2.0, 1.0], (200_000, 2))
    # ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2) = 1 + (1 + 4 - 4) + 0 = 2
    assert frechet_distance(a, b) == pytest.approx(2.0, abs=0.03)
