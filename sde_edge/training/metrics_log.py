"""metrics.csv, sessions.csv and TensorBoard of a training run."""
import csv
import datetime
import time
from pathlib import Path

import torch

from sde_edge.devices import describe_device

METRICS = ("step", "loss", "eval_loss", "lr", "grad_norm", "skipped_steps", "steps_per_sec")
SESSIONS = ("start_step", "device", "torch", "started")


def log_session(workdir, start_step, device, processes=1):
    """One row of sessions.csv per start or resume: where the steps from start_step on ran, and on how
    many processes (a resumed run can move between machines; its minutes mean nothing without this)."""
    path = Path(workdir) / "sessions.csv"
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(SESSIONS)
        where = describe_device(device) + (f" x {processes} processes" if processes > 1 else "")
        writer.writerow((start_step, where, torch.__version__,
                         datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")))


def session_devices(workdir):
    """The devices the run's steps ran on, in order of first use ([] for a run from before sessions.csv)."""
    path = Path(workdir) / "sessions.csv"
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(dict.fromkeys(row["device"] for row in csv.DictReader(handle)))


class MetricsLogger:
    """metrics.csv always (rows past the resumed step are dropped, so steps strictly increase);
    TensorBoard when importable (train/* and eval/loss)."""

    def __init__(self, workdir, start_step, device=None, processes=1, columns=METRICS):
        if device is not None:
            log_session(workdir, start_step, device, processes)
        self.path = Path(workdir) / "metrics.csv"
        rows = []
        if self.path.exists():
            with open(self.path, newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if row.get("step") and int(row["step"]) <= start_step]
        self.handle = open(self.path, "w", newline="")
        self.writer = csv.DictWriter(self.handle, fieldnames=columns, restval="", extrasaction="ignore")
        self.writer.writeheader()
        self.writer.writerows(rows)
        self.handle.flush()
        try:
            from torch.utils.tensorboard import SummaryWriter  # optional, and costly: only when a run logs

            self.tensorboard = SummaryWriter(str(Path(workdir) / "tensorboard"))
        except ImportError:
            self.tensorboard = None

    def log(self, **row):
        self.writer.writerow(row)
        self.handle.flush()
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "step":
                    self.tensorboard.add_scalar(
                        "eval/loss" if key == "eval_loss" else f"train/{key}", value, row["step"]
                    )

    def close(self):
        self.handle.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


class LossWindow:
    """The losses since the last log row: their mean (over ranks with ``mean``) and steps per second."""

    def __init__(self):
        self.losses, self.started = [], time.perf_counter()

    def add(self, loss):
        self.losses.append(loss)

    def close(self, mean=float):
        """(mean loss, steps per second) of the window; starts the next one."""
        result = mean(sum(self.losses) / len(self.losses)), len(self.losses) / (time.perf_counter() - self.started)
        self.losses, self.started = [], time.perf_counter()
        return result
