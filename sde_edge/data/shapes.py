"""``shapes``: a procedural, labelled image dataset with sharp edges (no files, no download).

Each image shows one shape of a class in ``CLASSES`` (random size, position, orientation and
aspect) in a flat grey level or colour, on a flat or linear-gradient background whose level
differs from the shape's by at least 0.35 per channel, so every shape has a clear edge.
Shapes are rendered with 4x4 supersampling (anti-aliased, still sharp).

Determinism: the parameters of a split are drawn from a generator seeded by the split's name,
in a fixed order, so image i of a split is a function of (split, i) at any image size; rendering
is vectorised and needs no randomness. The classes are exactly balanced.
"""
import math
from functools import lru_cache

import torch

from sde_edge.storage.checkpoint import cached_state
from sde_edge.storage.workdir import cache_root

CLASSES = ("ellipse", "rectangle", "triangle", "ring")
SPLIT_SIZES = {"train": 20_000, "test": 2_000}
_SPLIT_SEEDS = {"train": 2024_11_01, "test": 2024_11_02}
_SUPERSAMPLE = 4
_CHUNK = 1024
DISK_CACHE_SIZE = 32  # px: smaller splits render in seconds and stay in memory only
_RENDER_VERSION = 1  # bump when rendering changes: older cache files are then ignored


def shape_parameters(split, channels):
    """The parameter table of a split: a dict of (N,)- or (N, channels)-tensors."""
    n = SPLIT_SIZES[split]
    g = torch.Generator().manual_seed(_SPLIT_SEEDS[split])

    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand((n, *shape), generator=g, dtype=torch.float64)

    labels = (torch.arange(n) % len(CLASSES))[torch.randperm(n, generator=g)]
    params = {
        "label": labels,
        "center": uniform(0.32, 0.68, 2),
        "radius": uniform(0.22, 0.4),
        "aspect": uniform(0.6, 1.0),
        "angle": uniform(0.0, 2 * math.pi),
        # colour draws come last and use their own generator, so grey and colour sets share
        # every geometric parameter
    }
    colour = torch.Generator().manual_seed(_SPLIT_SEEDS[split] + channels)
    fg = torch.rand((n, channels), generator=colour, dtype=torch.float64)
    gap = 0.35 + 0.25 * torch.rand((n, channels), generator=colour, dtype=torch.float64)
    bg = torch.where(fg < 0.5, fg + gap, fg - gap)
    gradient = torch.rand(n, generator=colour, dtype=torch.float64) < 0.5
    slope = (
        0.15 * gradient[:, None] * torch.sign(torch.rand((n, channels), generator=colour, dtype=torch.float64) - 0.5)
    )
    direction = 2 * math.pi * torch.rand(n, generator=colour, dtype=torch.float64)
    params.update(foreground=fg, background=bg, slope=slope, direction=direction)
    return params


def _coverage(params, size):
    """Fraction of each pixel inside the shape, (n, size, size), by supersampling."""
    fine = size * _SUPERSAMPLE
    axis = (torch.arange(fine, dtype=torch.float32) + 0.5) / fine
    y, x = axis[None, :, None], axis[None, None, :]

    def column(name):
        return params[name].float()[:, None, None]

    dx, dy = x - params["center"][:, 0, None, None].float(), y - params["center"][:, 1, None, None].float()
    cos, sin = column("angle").cos(), column("angle").sin()
    p = (cos * dx + sin * dy) / column("radius")
    q = (-sin * dx + cos * dy) / (column("radius") * column("aspect"))
    inside = torch.empty(p.shape, dtype=torch.bool)
    for label, test in enumerate(_INSIDE):
        members = params["label"] == label
        if members.any():
            inside[members] = test(p[members], q[members])
    return torch.nn.functional.avg_pool2d(inside[:, None].float(), _SUPERSAMPLE)[:, 0]


def _inside_ellipse(p, q):
    return p.square() + q.square() <= 1.0


def _inside_rectangle(p, q):
    return (p.abs() <= 0.8) & (q.abs() <= 0.8)


def _inside_triangle(p, q):
    """An equilateral triangle of circumradius 1.25 (so its area is close to the other shapes')."""
    inside = torch.ones_like(p, dtype=torch.bool)
    for angle in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6):  # the edges' outward normals
        inside &= p * math.cos(angle) + q * math.sin(angle) <= 0.625
    return inside


def _inside_ring(p, q):
    r_sq = p.square() + q.square()
    return (r_sq <= 1.0) & (r_sq >= 0.55**2)


_INSIDE = (_inside_ellipse, _inside_rectangle, _inside_triangle, _inside_ring)  # in the order of CLASSES


def _background(params, size):
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    y, x = axis[None, :, None], axis[None, None, :]
    direction = params["direction"].float()[:, None, None]
    along = direction.cos() * x + direction.sin() * y
    return params["background"].float()[:, :, None, None] + params["slope"].float()[:, :, None, None] * along[:, None]


def render(params, size):
    """Images (n, channels, size, size) in [0, 1] for a parameter table (or a slice of one)."""
    chunks = []
    for start in range(0, len(params["label"]), _CHUNK):
        part = {key: value[start:start + _CHUNK] for key, value in params.items()}
        coverage = _coverage(part, size)[:, None]
        image = coverage * part["foreground"].float()[:, :, None, None] + (1 - coverage) * _background(part, size)
        chunks.append(image.clamp(0, 1))
    return torch.cat(chunks)


@lru_cache(maxsize=4)
def shapes(split, size, channels):
    """(images in [0, 1], labels) of a whole split. Splits of ``DISK_CACHE_SIZE`` px and more are also
    kept on disk under $SDE_EDGE_CACHE (a 64 px train split takes minutes to render on a CPU core, in
    every process that trains or evaluates): rendered once, written atomically with a checksum, and
    rendered again if the file does not verify."""
    if size < DISK_CACHE_SIZE:
        return _rendered(split, size, channels)
    path = cache_root() / "shapes" / f"{split}-{size}px-{channels}ch-v{_RENDER_VERSION}.pt"
    return cached_state(path, lambda: dict(zip(("images", "labels"), _rendered(split, size, channels))),
                        lambda state: (state["images"], state["labels"]), "shapes split")


def _rendered(split, size, channels):
    params = shape_parameters(split, channels)
    return render(params, size), params["label"]
