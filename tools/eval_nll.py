"""The NLL / bound evaluation tool; the same as ``sde-edge eval-nll`` (see its --help)."""
import sys

from sde_edge.cli import main

if __name__ == "__main__":
    sys.exit(main([sys.argv[0], "eval-nll", *sys.argv[1:]]))
