"""sde-edge sdedit: stroke-guided generation (SDEdit) from a trained run.

    sde-edge sdedit --workdir DIR --split test --n 64 --t0 0.5 --sampler ddpm --steps 100 --out FILE.npz
    sde-edge sdedit --workdir DIR --guides paintings.npz   (or a folder of images) --out FILE.npz

Paintings are made from the split's images by k-means colour quantisation (--strokes colours,
default 3 for grey and 6 for colour) and a mild blur, or given by the user (--guides: an .npz
with array 'guides' or 'samples' in [-1, 1], or an image folder). Each is perturbed to --t0
with the run's forward process and sampled back with any registered sampler. Writes arrays
'samples', 'guides' and 'sources' (empty when the user gives guides) to --out, and a PNG
beside it with rows source / guide / result. A killed run resumes at its first unfinished batch
from the folder FILE.partial/ (removed when done).
"""
from pathlib import Path

from absl import flags

from sde_edge.commands.common import define_generation_flags
from sde_edge.commands.sampler_flags import define_sampler_flags

_GUIDES = flags.DEFINE_string(
    "guides", None, "Your paintings: an .npz (array 'guides' or 'samples') or an image folder."
)
_SPLIT = flags.DEFINE_enum("split", "test", ["train", "test"], "Split whose images become paintings.")
_N = flags.DEFINE_integer("n", 64, "Paintings (the first n of the split).", lower_bound=1)
_STROKES = flags.DEFINE_integer(
    "strokes", None, "Colours per painting (default 3 for grey, 6 for colour).", lower_bound=1
)
_T0 = flags.DEFINE_float("t0", 0.5, "The hijack time in (0, 1]: where the painting is perturbed to.")
_RUN = define_generation_flags("sdedit.npz", "Output .npz; the PNG goes beside it.")
_CHOSEN = define_sampler_flags()


def _user_guides(path, config):
    # imports inside: torch and the library load only when the command runs (sde-edge --help stays fast)
    import numpy as np
    import torch

    from sde_edge.data.datasets import ImageFolder

    path = Path(path)
    if path.is_dir():
        folder = ImageFolder(path, config.data.image_size, config.data.num_channels, split="train")
        folder.paths = sorted(folder.paths + ImageFolder(path, config.data.image_size, config.data.num_channels,
                                                         split="test").paths)
        return folder.batch(range(len(folder)))
    if not path.is_file():
        raise FileNotFoundError(f"--guides: {path} does not exist")
    with np.load(path) as archive:
        key = next((k for k in ("guides", "samples") if k in archive), None)
        if key is None:
            raise ValueError(f"--guides: {path} has no array 'guides' or 'samples' (it holds {sorted(archive.files)})")
        return torch.from_numpy(np.asarray(archive[key], dtype=np.float32))


def main():
    # imports inside main: torch and the library load only for this command (sde-edge --help stays fast)
    import numpy as np
    import torch

    from sde_edge.commands.common import open_run
    from sde_edge.data.datasets import load_dataset
    from sde_edge.figures import save_rows
    from sde_edge.sdedit import default_strokes, sdedit, stroke_paintings
    from sde_edge.tensors import check_data_range

    run, device, out = open_run(_RUN.workdir.value, _RUN.device.value, _RUN.out.value,
                                compile_backend=_CHOSEN.compile_backend())
    c = run.config
    if _GUIDES.value:
        guides, sources = (
            _user_guides(_GUIDES.value, c),
            torch.zeros(0, c.data.num_channels, c.data.image_size, c.data.image_size),
        )
        check_data_range(guides, "--guides")
        if guides.shape[1:] != sources.shape[1:]:
            raise ValueError(
                f"--guides have shape {tuple(guides.shape[1:])} per image; the run makes {tuple(sources.shape[1:])}"
            )
    else:
        sources = load_dataset(c.data, _SPLIT.value).first(_N.value)
        guides = stroke_paintings(sources, _STROKES.value or default_strokes(c.data.num_channels), seed=_RUN.seed.value)
    name, steps, grid, options = _CHOSEN(c.sampling, run, _T0.value)
    result = sdedit(run.model, run.sde, guides, t0=_T0.value, sampler=name, steps=steps, seed=_RUN.seed.value,
                    batch_size=_RUN.batch_size.value, device=device, grid=grid,
                    partial=out.with_suffix(".partial"), source=run.path, **options,
                    **({"encode": run.encode, "decode": run.decode} if run.first_stage is not None else {}))
    np.savez(out, samples=result.samples.numpy(), guides=guides.numpy(), sources=sources.numpy())
    shown = min(len(guides), 12)
    rows = ([("source", sources[:shown])] if len(sources) else []) + [
        ("guide", guides[:shown]),
        (f"result (t0={_T0.value:g})", result.samples[:shown]),
    ]
    picture = save_rows(rows, out.with_suffix(".png"))
    print(f"{len(guides)} SDEdit samples ({name}, {steps} steps from t0 = {_T0.value:g}, {result.nfe} NFE per batch) "
          f"from step {run.step}: {out}, picture {picture}")
