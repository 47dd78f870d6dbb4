"""Run by tests/test_train.py under torchrun: train, then dump this rank's parameters."""
import os
import sys
from pathlib import Path

import torch

from sde_edge.config import load_config
from sde_edge.training import distributed
from sde_edge.training.trainer import Trainer


def main(config_path, workdir, out):
    config = load_config(config_path)
    config.training.n_iters = 5
    config.training.snapshot_freq = 5
    trainer = Trainer(config, workdir, progress=False)
    trainer.run()
    rank = int(os.environ["RANK"])
    Path(out).mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in trainer.model.state_dict().items()}, Path(out) / f"rank{rank}.pt")
    distributed.teardown()


if __name__ == "__main__":
    main(*sys.argv[1:4])
