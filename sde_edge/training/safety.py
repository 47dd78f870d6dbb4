"""What keeps a run safe: its errors, the divergence guard, signals that checkpoint instead of killing,
and the rules for resuming with a changed config."""
import json
import math
import signal
import statistics
import threading
from collections import deque
from contextlib import contextmanager

import ml_collections

from sde_edge.config import upgrade_config

# Fields that may change between a run and its resumption: they do not change what is learned.
RESUMABLE_CHANGES = (
    "device",
    "training.n_iters",
    "training.log_freq",
    "training.eval_freq",
    "training.snapshot_",
    "training.checkpoint_",
    "training.keep_",
    "training.max_skipped_steps",
    "training.divergence_factor",
    "training.precision",
    "training.compile",
    "training.compile_backend",
    "training.cudnn_benchmark",
    "model.channels_last",
    "optim.fused",
    "sampling.",
    "eval.",
)


class TrainingError(RuntimeError):
    """Training stopped; the message says why and what to do."""


class DivergenceError(TrainingError):
    pass


class TrainingInterrupted(TrainingError):
    """SIGINT or SIGTERM: the step finished and a checkpoint was written."""

    def __init__(self, signum, message):
        super().__init__(message)
        self.signum = signum


class ConfigMismatchError(ValueError):
    pass


def flatten_config(config):
    """{'training.batch_size': 64, ...} from a ConfigDict or its JSON."""
    tree = json.loads(config) if isinstance(config, str) else json.loads(config.to_json())
    flat = {}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                flat[prefix + key] = value

    walk(tree, "")
    return flat


def config_differences(saved_json, config):
    """The fields that differ between a checkpoint's config and ``config`` and change what is learned."""
    saved = flatten_config(upgrade_config(ml_collections.ConfigDict(json.loads(saved_json))))
    current = flatten_config(config)
    return [
        f"{key}: {saved.get(key, '<absent>')!r} in the checkpoint, {current.get(key, '<absent>')!r} now"
        for key in sorted(set(saved) | set(current))
        if saved.get(key) != current.get(key) and not key.startswith(RESUMABLE_CHANGES)
    ]


def divergence_message(step, reason, last_checkpoint, lr):
    """What went wrong at ``step`` and how to go on: from the last good checkpoint with a lower lr."""
    advice = ("no checkpoint was saved before it: start again with a lower --config.optim.lr"
              if last_checkpoint is None else
              f"the last good checkpoint is {last_checkpoint}; resume from it with a lower learning rate: "
              f"the same command with --config.optim.lr={lr / 10:g} --accept_config_changes")
    return f"training diverged at step {step}: {reason}. Nothing was saved after it; {advice}"


class DivergenceGuard:
    """Counts updates skipped for a non-finite gradient and watches the loss against the lowest
    running median it has had (over ``window`` healthy steps); ``update`` names a reason to stop,
    ``check`` tests one loss (the probe before a checkpoint) against the same bar."""

    def __init__(self, max_skipped, factor, window=100):
        self.max_skipped, self.factor = max_skipped, factor
        self.history = deque(maxlen=window)
        self.reference = math.inf
        self.in_a_row, self.total = 0, 0

    def check(self, loss, what="the loss"):
        if not math.isfinite(loss):
            return f"{what} is {loss}"
        if self.factor and self.history and loss > self.factor * self.reference:
            return (f"{what} {loss:.4g} exceeds training.divergence_factor={self.factor:g} times the loss's running "
                    f"median {self.reference:.4g}")
        return None

    def update(self, loss, finite):
        """``finite``: whether the update went through (loss and gradient finite)."""
        if math.isfinite(loss) and (reason := self.check(loss)):
            return reason
        if not finite:
            self.in_a_row += 1
            self.total += 1
            if self.in_a_row >= self.max_skipped:
                return (f"{self.in_a_row} updates in a row had a non-finite gradient and were skipped "
                        f"(training.max_skipped_steps={self.max_skipped})")
            return None
        self.in_a_row = 0
        self.history.append(loss)
        self.reference = min(self.reference, statistics.median(self.history))
        return None

    def state_dict(self):
        return {
            "history": list(self.history),
            "reference": self.reference,
            "in_a_row": self.in_a_row,
            "total": self.total,
        }

    def load_state_dict(self, state):
        self.history.extend(state["history"])
        self.reference, self.in_a_row, self.total = state["reference"], state["in_a_row"], state["total"]


class Signals:
    """SIGINT / SIGTERM set ``signum`` instead of killing the run; a second one aborts at once."""

    def __init__(self):
        self.signum = None

    def handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum


@contextmanager
def caught_signals():
    caught = Signals()
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = {s: signal.signal(s, caught.handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
