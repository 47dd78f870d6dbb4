"""Many samples in batches: the one loop behind ``sde-edge sample``, ``eval-samples``, ``sdedit``
and the experiments. With ``partial`` a killed run resumes at the first unfinished batch and gives
the same samples, bit for bit, as one that was never stopped."""
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from sde_edge.sampling.registry import SampleResult, sample
from sde_edge.storage.checkpoint import atomic_save


def _identity(name, shape, steps, seed, batch_size, device, x_init, kwargs, source):
    """What a partial run must agree on to be resumed (everything that changes the samples)."""
    return {"sampler": name, "shape": list(shape), "steps": int(steps), "seed": int(seed),
            "batch_size": int(batch_size), "device": device.type,
            "x_init": None if x_init is None else float(x_init.detach().cpu().double().sum()),
            "options": repr(sorted(kwargs.items())), "source": str(source)}


def _batch_file(folder, start):
    return folder / f"batch_{start:08d}.pt"


def _resume(folder, identity, batch_size):
    """The finished batches kept in ``folder`` ([]: none), in order; refuses those of another run."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder}: expected the folder of a partial sampling run, found a file")
    states = []
    while (path := _batch_file(folder, len(states) * batch_size)).exists():
        try:
            state = torch.load(path, weights_only=True)
        except Exception as error:  # noqa: BLE001 -- any unreadable file gets the same one line
            raise ValueError(f"{path}: unreadable partial sampling run ({error}); remove it to start over") from None
        saved = state["identity"]
        different = sorted(key for key in identity if saved.get(key) != identity[key])
        if different:
            found = ", ".join(f"{key}={saved.get(key)!r}" for key in different)
            raise ValueError(f"{path}: a partial sampling run with other {', '.join(different)} ({found}); "
                             "remove it to start over")
        states.append(state)
    return states


def _clean(folder, n, batch_size):
    """Remove the batch files of a finished run, and the folder if nothing else is in it."""
    for start in range(0, n, batch_size):
        _batch_file(folder, start).unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def sample_in_batches(name, model, sde, shape, *, steps, seed=0, batch_size=256, device="cpu", x_init=None,
                      progress=True, partial=None, source="", decode=None, **kwargs):
    """``sample`` over ``shape[0]`` images in batches of ``batch_size`` with one generator seeded
    ``seed``; returns the samples on the CPU, clipped to [-1, 1], and the NFE of one batch. ``decode``
    (a latent run's ``TrainedRun.decode``) turns each batch into images before it is clipped and kept.

    ``partial``: a folder that keeps each finished batch (one file each, with the generator's state
    after it), removed when all are done; a later call resumes from it, and refuses (one line naming
    the file and what differs) batches drawn with another sampler, shape, seed, options or ``source``
    (a name of the model, e.g. its checkpoint)."""
    device = torch.device(device)
    generator = torch.Generator(device).manual_seed(seed)
    n = shape[0]
    chunks, nfe, earlier = [], 0, 0.0
    started = time.perf_counter()
    if partial is not None:
        partial = Path(partial)
        identity = _identity(name, shape, steps, seed, batch_size, device, x_init, kwargs, source)
        kept = _resume(partial, identity, batch_size)
        if kept:
            chunks, nfe = [state["samples"] for state in kept], int(kept[-1]["nfe"])
            earlier = float(kept[-1]["seconds"])
            generator.set_state(kept[-1]["generator"])
    batches = range(sum(len(chunk) for chunk in chunks), n, batch_size)
    for start in tqdm(batches, desc=f"sampling ({name})", disable=not progress or n <= batch_size):
        size = min(batch_size, n - start)
        init = None if x_init is None else x_init[start:start + size].to(device)
        result = sample(name, model, sde, (size,) + tuple(shape[1:]), steps=steps, generator=generator, x_init=init,
                        device=device, progress=progress and n <= batch_size, **kwargs)
        samples = result.samples if decode is None else decode(result.samples)
        chunks.append(samples.clamp(-1, 1).cpu())
        nfe = result.nfe
        if partial is not None and start + size < n:
            # atomically (a kill leaves the whole file or none); a full disk is one line naming the file
            atomic_save({"identity": identity, "samples": chunks[-1], "generator": generator.get_state(), "nfe": nfe,
                         "seconds": earlier + time.perf_counter() - started}, _batch_file(partial, start))
    if partial is not None:
        _clean(partial, n, batch_size)
    return SampleResult(torch.cat(chunks), nfe, resumed_seconds=earlier)
