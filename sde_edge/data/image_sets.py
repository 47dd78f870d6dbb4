"""Image sets in memory and their fixed splits: train / test by one permutation (seed 0, 15% test),
and a validation share carved out of train (seed 1) for tuning; the Gaussian low-pass of the
frequency study."""
import numpy as np
import torch
import torch.nn.functional as F

_TEST_FRACTION = 0.15


def split_indices(n, split):
    """The fixed train/test split of n items (seed 0, 15% test), as sorted index lists."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    n_test = int(round(_TEST_FRACTION * n))
    chosen = order[n_test:] if split == "train" else order[:n_test]
    return chosen


def gaussian_blur(images, sigma):
    """Blur (B, C, H, W) images with a Gaussian of ``sigma`` pixels (reflecting borders)."""
    if sigma <= 0:
        return images
    radius = max(1, int(np.ceil(3 * sigma)))
    axis = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (axis / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(
        images, (radius, radius, radius, radius), mode="reflect" if radius < min(images.shape[-2:]) else "replicate"
    )
    horizontal = F.conv2d(padded, kernel.reshape(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(horizontal, kernel.reshape(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


class ImageSet(torch.utils.data.Dataset):
    """Images in [-1, 1] by index; ``batch(indices)`` stacks them into (N, C, H, W) and
    ``labels`` holds the class labels of labelled sets (else None)."""

    labels = None

    def batch(self, indices):
        return torch.stack([self[int(i)] for i in indices])

    def first(self, n):
        """The first n images (all if fewer), in the set's fixed order."""
        return self.batch(range(min(n, len(self))))

    def subset(self, indices):
        """The set restricted to ``indices`` (sorted), labels included."""
        raise NotImplementedError


class TensorImageSet(ImageSet):
    """An in-memory set: ``images`` (N, C, H, W) in [-1, 1] and optional ``labels`` (N,)."""

    def __init__(self, images, labels=None):
        self.images, self.labels = images.contiguous(), labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index]

    def batch(self, indices):
        return self.images[torch.as_tensor(indices, dtype=torch.long)]

    def to(self, device):
        return TensorImageSet(self.images.to(device), self.labels)

    def subset(self, indices):
        indices = torch.as_tensor(indices, dtype=torch.long)
        return TensorImageSet(self.images[indices], None if self.labels is None else self.labels[indices])


def validation_indices(n, fraction, split):
    """The fixed validation carve-out of a train split of n items (seed 1): the 'val' indices, or
    the rest ('train'), sorted. Tuning reads 'val' and never the test split."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    n_val = int(round(fraction * n))
    chosen = order[:n_val] if split == "val" else order[n_val:]
    return chosen.sort().values
