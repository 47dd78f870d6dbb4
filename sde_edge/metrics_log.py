"""metrics.csv and TensorBoard of a training run."""
import csv
from pathlib import Path

METRICS = ("step", "loss", "eval_loss", "lr", "grad_norm", "skipped_steps", "steps_per_sec")


class MetricsLogger:
    """metrics.csv always (rows past the resumed step are dropped, so steps strictly increase);
    TensorBoard when importable (train/* and eval/loss)."""

    def __init__(self, workdir, start_step):
        self.path = Path(workdir) / "metrics.csv"
        rows = []
        if self.path.exists():
            with open(self.path, newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if row.get("step") and int(row["step"]) <= start_step]
        self.handle = open(self.path, "w", newline="")
        self.writer = csv.DictWriter(self.handle, fieldnames=METRICS, restval="", extrasaction="ignore")
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
