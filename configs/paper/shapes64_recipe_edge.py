"""The GPU recipe's edge model (study comparison64, arm E, seed 0) as a config file, for commands
that take one, e.g. `tools/bench.py --config configs/paper/shapes64_recipe_edge.py --device cuda
--only options,forward,side_by_side`. Its network and options live in one place, `NET_64PX` in
sde_edge/experiments/studies/comparison_runs.py."""
from sde_edge.experiments.studies.comparison_runs import GPU_SETTINGS, run_of


def get_config():
    return run_of(GPU_SETTINGS[0], "E", 0).build_config()
