"""A trained run back from its checkpoint: config, SDE and the (EMA) model.

Restoring never reaches outside the run: a stored config that asks for a download or names
a data folder is not acted on here (only the user's own command line can do that).
"""
import json
from dataclasses import dataclass
from pathlib import Path

import ml_collections
import torch

from sde_edge.config import upgrade_config, validate_config
from sde_edge.latent.first_stage import FirstStage
from sde_edge.latent.latents import check_same_first_stage, first_stage_digest, first_stage_of
from sde_edge.models import build_model
from sde_edge.processes import SDE, build_sde
from sde_edge.storage.checkpoint import load_checkpoint, load_latest, payload_digest


@dataclass
class TrainedRun:
    model: torch.nn.Module
    sde: SDE
    config: ml_collections.ConfigDict
    step: int
    path: Path
    first_stage: FirstStage | None = None  # a latent run's autoencoder
    model_digest: str = ""  # SHA-256 of the weights in use: what a fitted grid is fitted for

    @property
    def workdir(self):
        """The run's folder (``path`` is its checkpoint, normally in ``workdir/checkpoints/``)."""
        return self.path.parent.parent if self.path.parent.name == "checkpoints" else self.path.parent

    def decode(self, samples):
        """What the model generates -> images in [-1, 1] (the identity for a pixel-space run)."""
        return samples if self.first_stage is None else self.first_stage.decode(samples)

    def encode(self, images):
        """Images in [-1, 1] -> what the model generates (the identity for a pixel-space run)."""
        return images if self.first_stage is None else self.first_stage.encode(images)


def load_run(path, device="cpu", use_ema=True, channels_last=None, compile_backend=None):
    """``path`` is a workdir (its newest checkpoint that verifies) or a checkpoint file. The model runs
    channels-last if ``channels_last`` says so (``None``: as the run trained, ``model.channels_last``),
    and through ``torch.compile`` with ``compile_backend`` (e.g. ``"inductor"``) if one is named."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--workdir: {path} does not exist")
    if path.is_dir():
        found = load_latest(path / "checkpoints", map_location=device)
        if found is None:
            raise FileNotFoundError(
                f"--workdir: no checkpoint in {path / 'checkpoints'}: train first, or pass a checkpoint file"
            )
        state, path = found
    else:
        state = load_checkpoint(path, map_location=device)
    for key in ("config", "model", "ema", "step"):
        if key not in state:
            raise ValueError(f"checkpoint {path} has no {key!r} entry: not an sde_edge training checkpoint")
    config = upgrade_config(ml_collections.ConfigDict(json.loads(state["config"])))
    config.data.download = False  # restoring never downloads
    config.device = "auto"  # the caller's device, not the training machine's
    validate_config(config)
    model = build_model(config).to(device)
    weights = state["ema"]["model"] if use_ema else state["model"]
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise ValueError(
            f"checkpoint {path} does not fit the model its config describes (config.model): {error}"
        ) from error
    if config.model.channels_last if channels_last is None else channels_last:
        model.use_channels_last()
    if compile_backend is not None:
        model.use_compile(compile_backend)
    check_same_first_stage(state.get("latent_autoencoder"), first_stage_digest(config.data), config.data, path)
    return TrainedRun(model.eval(), build_sde(config.diffusion), config, int(state["step"]), path,
                      first_stage_of(config.data, device), payload_digest(weights))
