"""Sample quality on digits without downloads: a small classifier trained on sklearn's digits,
its confidence on samples, and a Frechet distance in its feature space (clean-fid's formula).
"""
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sde_edge.data import digit_labels, load_dataset


class DigitsClassifier(nn.Module):
    """A three-layer CNN for 16x16 digits in [-1, 1]; ``features`` is its 128-d penultimate layer."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(),
        )
        self.head = nn.Linear(128, 10)

    def features(self, x):
        return self.body(F.interpolate(x, size=(16, 16), mode="bilinear", antialias=True) if x.shape[-1] != 16 else x)

    def forward(self, x):
        return self.head(self.features(x))


def _digit_images(split):
    import ml_collections

    config = ml_collections.ConfigDict(dict(dataset="digits", image_size=16, num_channels=1))
    return load_dataset(config, split)


def train_digits_classifier(epochs=30, seed=0):
    """Train on the digits train split (deterministic, ~10 s on 2 cores); returns (model, test accuracy)."""
    torch.manual_seed(seed)
    images, labels = _digit_images("train"), digit_labels("train")
    model = DigitsClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(images), generator=generator).split(64):
            shifted = torch.roll(images[batch], shifts=tuple(torch.randint(-1, 2, (2,), generator=generator).tolist()), dims=(2, 3))
            loss = F.cross_entropy(model(shifted), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(_digit_images("test")).argmax(1) == digit_labels("test")).float().mean().item()
    return model, accuracy


@dataclass
class DigitQuality:
    confident_fraction: float  # share of samples classified with probability >= threshold
    class_counts: list  # predicted class histogram
    frechet_distance: float  # between sample and test-set features


def frechet_distance(features_a, features_b):
    """Frechet distance of Gaussians fitted to two feature sets (clean-fid's implementation)."""
    from cleanfid.fid import frechet_distance as cleanfid_frechet

    a, b = np.asarray(features_a, dtype=np.float64), np.asarray(features_b, dtype=np.float64)
    return float(cleanfid_frechet(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)))


@torch.no_grad()
def digit_quality(classifier, samples, threshold=0.9, reference="test"):
    """Quality of digit samples (B, 1, H, W) in [-1, 1] under ``classifier``."""
    samples = samples.float().cpu().clamp(-1, 1)
    probabilities = classifier(samples).softmax(1)
    confidence, predicted = probabilities.max(1)
    reference_features = classifier.features(_digit_images(reference))
    return DigitQuality(
        confident_fraction=(confidence >= threshold).float().mean().item(),
        class_counts=torch.bincount(predicted, minlength=10).tolist(),
        frechet_distance=frechet_distance(classifier.features(samples).numpy(), reference_features.numpy()),
    )
