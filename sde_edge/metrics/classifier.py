"""A small CNN classifier for the labelled embedded datasets (``digits``, ``shapes``): its
penultimate layer is the ``classifier`` feature space, its softmax the confident share and the
class histogram of samples (mode coverage).

Its features are the spatially averaged activations of each convolution and the 128-d
penultimate layer, concatenated (288-d): the penultimate layer alone maps out-of-distribution
images such as noise onto the digits (precision 0.9 for pure noise), the pooled low-level
activations keep them apart. Each block is divided by one fixed number, its root-mean-square
on the training split (measured once, stored with the weights), so that every block has unit
scale per dimension, as KID's polynomial kernel (x.y / D + 1)^3 assumes; fixed scales keep
every FD comparable.

Trained offline once, deterministically, and cached on disk per (dataset, image size,
channels) under $SDE_EDGE_CACHE (default ~/.cache/sde_edge), written atomically with a
checksum like a training checkpoint; a cache file that does not verify is retrained.
"""
import ml_collections
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from sde_edge.data.datasets import load_dataset
from sde_edge.storage.checkpoint import cached_state
from sde_edge.storage.workdir import cache_root

LABELLED_EMBEDDED = ("digits", "shapes")
_VERSION = 3
# Epochs by dataset: digits has 1,527 training images, shapes 20,000.
_EPOCHS = {"digits": 30, "shapes": 8}


class ImageClassifier(nn.Module):
    """Three convolutions, a 4x4 average pool and a 128-d feature layer, for images in [-1, 1]."""

    def __init__(self, channels, num_classes):
        super().__init__()
        self.convolutions = nn.ModuleList(
            [
                nn.Conv2d(channels, 32, 3, padding=1),
                nn.Conv2d(32, 64, 3, stride=2, padding=1),
                nn.Conv2d(64, 64, 3, stride=2, padding=1),
            ]
        )
        self.penultimate = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU())
        self.head = nn.Linear(128, num_classes)
        self.register_buffer("feature_scales", torch.ones(len(self.convolutions) + 1))

    def blocks(self, x):
        """[pooled activations of each convolution, ..., the penultimate layer]."""
        pooled = []
        for convolution in self.convolutions:
            x = torch.relu(convolution(x))
            pooled.append(x.mean(dim=(2, 3)))
        return pooled + [self.penultimate(x)]

    def features(self, x):
        return torch.cat([block / scale for block, scale in zip(self.blocks(x), self.feature_scales)], dim=1)

    def forward(self, x):
        return self.head(self.blocks(x)[-1])


def _data(dataset, size, channels, split):
    config = ml_collections.ConfigDict(dict(dataset=dataset, image_size=size, num_channels=channels, blur_sigma=0.0))
    return load_dataset(config, split)


def _train(dataset, size, channels, seed=0, progress=True):
    train, test = _data(dataset, size, channels, "train"), _data(dataset, size, channels, "test")
    torch.manual_seed(seed)
    model = ImageClassifier(channels, int(train.labels.max()) + 1)
    epochs = _EPOCHS[dataset]
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=epochs * -(-len(train) // 64))
    generator = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(epochs), desc=f"training the {dataset} classifier ({size}px, once)", disable=not progress):
        for batch in torch.randperm(len(train), generator=generator).split(64):
            shift = tuple(torch.randint(-1, 2, (2,), generator=generator).tolist())
            loss = F.cross_entropy(
                model(torch.roll(train.batch(batch), shifts=shift, dims=(2, 3))), train.labels[batch]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    model.feature_scales.copy_(block_scales(model, train.images))
    with torch.no_grad():
        batches = zip(test.images.split(500), test.labels.split(500))
        correct = sum(int((model(images).argmax(1) == labels).sum()) for images, labels in batches)
    return model, correct / len(test.labels)


@torch.no_grad()
def block_scales(model, images, batch_size=500):
    """Each feature block's root-mean-square over ``images``, a batch at a time (all 20,000 training
    images at 64 px at once needed more than 24 GB)."""
    squares, counts = 0.0, 0
    for batch in images.split(batch_size):
        blocks = model.blocks(batch)
        squares = squares + torch.stack([block.square().sum() for block in blocks])
        counts = counts + torch.tensor([block.numel() for block in blocks])
    return (squares / counts).sqrt()


def classifier_path(dataset, size, channels):
    """Where the classifier of one labelled dataset, resolution and channel count is cached."""
    return cache_root() / "classifiers" / f"{dataset}-{size}px-{channels}ch-v{_VERSION}.pt"


def load_classifier(dataset, size, channels, progress=True):
    """(classifier, held-out accuracy) for a labelled embedded dataset: from the cache, or trained now."""
    if dataset not in LABELLED_EMBEDDED:
        raise ValueError(
            f"--features classifier needs a labelled embedded dataset {LABELLED_EMBEDDED}, got {dataset!r}"
        )
    path = classifier_path(dataset, size, channels)
    num_classes = int(_data(dataset, size, channels, "test").labels.max()) + 1

    def trained():
        model, accuracy = _train(dataset, size, channels, progress=progress)
        return {"model": model.state_dict(), "accuracy": accuracy}

    def restored(state):
        model = ImageClassifier(channels, num_classes)
        model.load_state_dict(state["model"])
        return model.eval(), float(state["accuracy"])

    return cached_state(path, trained, restored, "classifier")  # one process trains it; the others load it
