"""The ``sde-edge`` console script: ``sde-edge SUBCOMMAND [--flags]``.

Each subcommand is a module of ``sde_edge.commands`` with absl flags and ``main()``. User
errors (a bad flag or config value, a missing file, an unreadable checkpoint, a busy workdir)
end as one line on stderr and exit status 2; ``--verbose`` (or SDE_EDGE_VERBOSE=1) shows the
traceback. An interrupted run exits 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM).
"""
import importlib
import logging
import os
import re
import sys
import traceback

from absl import flags

SUBCOMMANDS = {
    "forward": ("sde_edge.commands.forward", "PNG of the forward process (isotropic vs edge-preserving)"),
    "train": ("sde_edge.commands.train", "train or resume a score model: --config configs/X.py --workdir DIR"),
    "sample": ("sde_edge.commands.sample", "samples from a trained run to .npz + PNG grid"),
    "fit-grid": ("sde_edge.commands.fit_grid", "fit a few-step time grid to a trained run and a sampler"),
    "distill": ("sde_edge.commands.distill", "progressive distillation of a run down to 4 DDIM steps"),
    "sdedit": ("sde_edge.commands.sdedit", "stroke-guided generation (SDEdit) from a trained run"),
    "eval-nll": ("sde_edge.commands.eval_nll", "bits/dim by the probability-flow ODE and the variational bound"),
    "eval-samples": ("sde_edge.commands.eval_samples", "FD, KID, precision/recall and per-band SWD of samples"),
    "train-autoencoder": ("sde_edge.commands.train_autoencoder",
                          "train the first stage of latent diffusion (a KL autoencoder)"),
    "prepare-data": ("sde_edge.commands.prepare_data", "decode and resize an image folder once for training"),
}
HELP = ("-h", "--help", "--helpshort", "--helpfull")


def _usage():
    lines = ["usage: sde-edge SUBCOMMAND [--flags]   (sde-edge SUBCOMMAND --help lists its flags)", ""]
    lines += [f"  {name:<13} {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    lines += ["", "  --verbose     show the traceback of an error (or set SDE_EDGE_VERBOSE=1)"]
    return "\n".join(lines)


def _one_line(error):
    suggestion = re.search(r'Did you mean "(\w+)" instead of "(\w+)"', str(error))
    if suggestion:  # ml_collections' answer to a mistyped --config.* override, escaped twice over
        return f"a --config.* override names no field {suggestion[2]!r}; did you mean {suggestion[1]!r}?"
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _user_errors():
    # imported when a command runs: loading torch here would slow down `sde-edge --help` and a mistyped subcommand
    from sde_edge.storage.checkpoint import CheckpointError
    from sde_edge.storage.workdir import WorkdirBusyError
    from sde_edge.training.trainer import TrainingError

    return (ValueError, OSError, KeyError, CheckpointError, TrainingError, WorkdirBusyError, flags.Error)


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in HELP:
        print(_usage(), file=sys.stdout if len(argv) >= 2 else sys.stderr)
        return 0 if len(argv) >= 2 else 2
    name, rest = argv[1], argv[2:]
    if name not in SUBCOMMANDS:
        print(f"sde-edge: unknown subcommand {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    verbose = "--verbose" in rest or os.environ.get("SDE_EDGE_VERBOSE", "") not in ("", "0")
    rest = [arg for arg in rest if arg != "--verbose"]
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    module = importlib.import_module(SUBCOMMANDS[name][0])
    if any(arg in HELP for arg in rest):
        print(f"usage: sde-edge {name} [--flags]\n\n{(module.__doc__ or '').strip()}\n\nflags:")
        helps = [flags.FLAGS.module_help(m) for m in (module.__name__, "sde_edge.commands.sampler_flags")
                 if m == module.__name__ or getattr(module, "_CHOSEN", None) is not None]
        print("\n".join(h for h in helps if h) or "  (none)")
        return 0
    from sde_edge.training.trainer import TrainingInterrupted  # as in _user_errors: torch loads only for a command

    try:  # everything that goes wrong while reading the flags and the config file is the user's to fix
        flags.FLAGS([f"sde-edge {name}"] + rest)
    except Exception as error:  # noqa: BLE001
        if verbose:
            traceback.print_exc()
        print(f"sde-edge {name}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    try:
        module.main()
    except TrainingInterrupted as interrupted:
        print(f"sde-edge {name}: {interrupted}", file=sys.stderr)
        return 128 + int(interrupted.signum)
    except KeyboardInterrupt:
        print(f"sde-edge {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - sorted into user errors and bugs below
        if not isinstance(error, _user_errors()) or verbose:
            traceback.print_exc()
        print(f"sde-edge {name}: error: {_one_line(error)}", file=sys.stderr)
        return 2 if isinstance(error, _user_errors()) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
