"""The ``sde-edge`` console script: ``sde-edge SUBCOMMAND [--flags]``."""
import importlib
import sys

from absl import app

SUBCOMMANDS = {
    "forward": ("sde_edge.commands.forward", "PNG of the forward process (isotropic vs edge-preserving)"),
    "train": ("sde_edge.commands.train", "train or resume a score model: --config configs/X.py --workdir DIR"),
    "sample": ("sde_edge.commands.sample", "samples from a trained run to .npz + PNG grid"),
    "eval-nll": ("sde_edge.commands.eval_nll", "bits/dim by the probability-flow ODE and the variational bound"),
}


def _usage():
    lines = ["usage: sde-edge SUBCOMMAND [--flags]   (sde-edge SUBCOMMAND --help for its flags)", ""]
    lines += [f"  {name:<10} {summary}" for name, (_, summary) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv=None):
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] not in SUBCOMMANDS:
        print(_usage(), file=sys.stderr)
        return 0 if len(argv) >= 2 and argv[1] in ("-h", "--help") else 2
    module = importlib.import_module(SUBCOMMANDS[argv[1]][0])
    app.run(module.main, argv=[f"sde-edge {argv[1]}"] + argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
