"""The learning-rate schedule of every training here (the score model's and the autoencoder's): a
linear warmup, then constant."""


def warmup_lr(lr, step, warmup):
    """The rate of update ``step`` (counted from 0): ``lr`` ramped linearly over the first ``warmup``
    updates (``lr / warmup`` at the first) and constant after; ``warmup`` 0 or 1 is no warmup."""
    return lr * min(1.0, (step + 1) / max(warmup, 1))
