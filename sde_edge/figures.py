"""Pictures: the forward-process figure and sample grids."""
import csv
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

FORWARD_TIMES = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


def _pyplot():
    """matplotlib's pyplot on the Agg backend, imported when a figure is first drawn: the import
    costs about 0.7 s, which every process start (a training, a one-line CLI error) would pay."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def __getattr__(name):  # ``from sde_edge.figures import plt`` in the modules that draw
    if name == "plt":
        return _pyplot()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def to_unit_range(x):
    """[-1, 1] -> [0, 1], clipped, for display."""
    return ((x + 1) / 2).clamp(0, 1)


def save_figure(fig, path, dpi=110):
    """Lay out, write and close a matplotlib figure (every figure of the package ends here); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return path


NFE_TICKS = (2, 4, 6, 8, 10, 15, 20, 32, 64, 100, 200, 500, 1000)


def nfe_axis(ax, values=()):
    """A logarithmic NFE axis labelled at the step counts tables use, as plain numbers (matplotlib's
    default labels 3 x 10^0 and its neighbours on top of each other); ``values`` bounds the ticks."""
    ax.set_xscale("log")
    top = max(values, default=NFE_TICKS[-1])
    ticks = [t for t in NFE_TICKS if t <= top * 1.05] or [top]
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.xaxis.set_minor_formatter(_pyplot().NullFormatter())
    ax.set_xlabel("NFE (network evaluations)")


def save_grid(images, path, nrow=None):
    """Save images in [-1, 1] of shape (B, C, H, W) as one PNG grid; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nrow = nrow or max(1, int(len(images) ** 0.5))
    images = to_unit_range(images.detach().float().cpu())
    if images.shape[-1] < 64:  # small images are upscaled (nearest) so that the grid is legible
        images = F.interpolate(images, scale_factor=-(-64 // images.shape[-1]), mode="nearest")
    Image.fromarray(_grid_pixels(images, nrow)).save(path)
    return path


def _grid_pixels(images, nrow, padding=2, pad_value=1.0):
    """Images in [0, 1] (B, C, H, W) tiled ``nrow`` to a row with ``padding`` px of ``pad_value``
    between and around them, as a uint8 array (H', W') or (H', W', C). Our own rather than
    torchvision's make_grid: importing torchvision costs every process start about 2 s."""
    count, channels, height, width = images.shape
    columns = min(nrow, count)
    rows = -(-count // columns)
    grid = images.new_full((channels, rows * (height + padding) + padding, columns * (width + padding) + padding),
                           pad_value)
    for i, image in enumerate(images):
        top, left = padding + (i // columns) * (height + padding), padding + (i % columns) * (width + padding)
        grid[:, top:top + height, left:left + width] = image
    pixels = (grid * 255 + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return pixels[..., 0] if channels == 1 else pixels


def load_photo(name="chelsea", height=128):
    """An embedded skimage photo as a (1, C, H, W) tensor in [-1, 1]; no download."""
    import skimage.data  # costly to import: only when used

    image = torch.from_numpy(getattr(skimage.data, name)()).float() / 127.5 - 1.0
    image = image.permute(2, 0, 1)[None] if image.dim() == 3 else image[None, None]
    width = round(image.shape[-1] * height / image.shape[-2])
    return F.interpolate(image, size=(height, width), mode="bilinear", antialias=True, align_corners=False)


def forward_process_figure(x0, processes, path, times=FORWARD_TIMES, seed=0):
    """Rows of x_t and of its noise x_t - E[x_t | x0] for each named process, one column per t.

    ``processes`` maps a row label to an SDE. Every process sees the same standard normal z,
    so the rows differ only in how the noise is shaped.
    """
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(x0.shape, generator=generator)
    rows = []
    for label, sde in processes.items():
        noisy, masks = [], []
        for t in times:
            x_t = sde.perturb(x0, t, z)
            noisy.append(x_t)
            clean = sde.perturb(x0, t, torch.zeros_like(z))
            # Divided by the isotropic level b(t), so every column uses the same grey scale.
            masks.append((x_t - clean) / sde.schedule.noise(torch.tensor(t)))
        rows += [(f"{label}: x_t", noisy), (f"{label}:\nnoise / b(t)", masks)]
    fig, axes = _pyplot().subplots(len(rows), len(times), figsize=(1.6 * len(times), 1.3 * len(rows) + 0.3),
                                   squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c, image in enumerate(images):
            ax = axes[r, c]
            shown = to_unit_range(image[0]).permute(1, 2, 0).numpy()
            ax.imshow(shown.squeeze(-1) if shown.shape[-1] == 1 else shown, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t = {times[c]:g}", fontsize=9)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    return save_figure(fig, path)


def plot_loss_curve(metrics_csv, path):
    """The training loss (and the held-out loss, where logged) against step from metrics.csv, log scale."""
    with open(metrics_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    fig, ax = _pyplot().subplots(figsize=(5, 3.2))
    for key, label in (("loss", "training loss"), ("eval_loss", "held-out loss (EMA)")):
        points = [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]
        if points:
            ax.plot(*zip(*points), label=label, marker="o" if key == "eval_loss" else None, markersize=3)
    ax.legend(fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def save_rows(rows, path, size=1.0):
    """One labelled row per (label, images in [-1, 1]) pair: e.g. source / guide / result."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = max(len(images) for _, images in rows)
    fig, axes = _pyplot().subplots(len(rows), columns, figsize=(size * columns + 0.8, size * len(rows) + 0.2),
                                   squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                shown = to_unit_range(images[c].detach().float().cpu()).permute(1, 2, 0).numpy()
                ax.imshow(shown.squeeze(-1) if shown.shape[-1] == 1 else shown, cmap="gray", vmin=0, vmax=1)
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    return save_figure(fig, path)
