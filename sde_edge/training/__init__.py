"""Training a score model (``sde-edge train``): the loop (``trainer``), its batches and noise as pure
functions of (seed, step) (``batches``), its guards against divergence and signals (``safety``), the
precision / compile / fused-optimiser options (``fast``), torchrun (``distributed``) and metrics.csv
(``metrics_log``). Checkpoints and the workdir lock are ``sde_edge.storage``'s."""
from sde_edge.training.safety import DivergenceError, TrainingError, TrainingInterrupted
from sde_edge.training.trainer import Trainer, TrainResult, train

__all__ = ["DivergenceError", "Trainer", "TrainResult", "TrainingError", "TrainingInterrupted", "train"]
