"""Typed absl flags for every registered sampler's options, defined once from the registry.

``--eta 0.5``, ``--snr 0.2``, ``--method srk``, ``--s_churn 10``...: each option becomes one flag,
typed by its default (names are enums of the allowed values). A flag the chosen sampler does not
take is an error naming it. ``--grid fitted`` reads the grid ``sde-edge fit-grid`` kept in the run's
folder for this sampler, step count and options, and refuses one fitted for anything else.
"""
from absl import flags

from sde_edge.config import COMPILE_BACKENDS
from sde_edge.sampling import SAMPLERS
from sde_edge.sampling.fitted import fitted_grid_of
from sde_edge.sampling.grids import GRIDS


def _all_options():
    options, choices = {}, {}
    for name in sorted(SAMPLERS):
        for option, default in SAMPLERS[name].options.items():
            options.setdefault(option, default)
            choices.setdefault(option, [])
            choices[option] += [c for c in SAMPLERS[name].choices.get(option, ()) if c not in choices[option]]
    return options, choices


def define_sampler_flags(with_grid=True):
    """--sampler, --steps, --grid (unless not ``with_grid``) and one flag per sampler option; returns
    a reader of the chosen ones."""
    sampler = flags.DEFINE_enum(
        "sampler", None, sorted(SAMPLERS), "Sampler (default: the run's config.sampling.method)."
    )
    steps = flags.DEFINE_integer(
        "steps", None, "Sampler steps (default: the run's config.sampling.steps).", lower_bound=1
    )
    grid = None if not with_grid else flags.DEFINE_enum(
        "grid", None, [*GRIDS, "fitted"], "Time grid (default: the run's config.sampling.grid; fitted: the one "
        "sde-edge fit-grid kept for this sampler and --steps).")
    backend = flags.DEFINE_enum(
        "compile", "none", ["none", *COMPILE_BACKENDS], "Run the network through torch.compile with this backend "
        "(it pays on a GPU: docs/benchmarks.md; the first batch compiles; on a CPU it needs a C++ compiler)."
    )
    options, choices = _all_options()
    holders = {}
    for option, default in options.items():
        users = ", ".join(n for n in sorted(SAMPLERS) if option in SAMPLERS[n].options)
        text = f"Option of {users} (default {default!r})."
        if choices[option]:
            holders[option] = flags.DEFINE_enum(option, None, choices[option], text)
        elif isinstance(default, bool):
            holders[option] = flags.DEFINE_bool(option, None, text)
        elif isinstance(default, int):
            holders[option] = flags.DEFINE_integer(option, None, text)
        else:
            holders[option] = flags.DEFINE_float(option, None, text)

    def chosen(sampling_config, run=None, t_start=1.0):
        """(sampler name, steps, grid, options) from the flags, falling back on ``config.sampling``;
        with ``--grid fitted`` the grid is ``run``'s fitted one for sampling from ``t_start``."""
        name = sampler.value or sampling_config.method
        given = {option: holder.value for option, holder in holders.items() if holder.present}
        for option in given:
            if option not in SAMPLERS[name].options:
                offered = ", ".join(f"--{o}" for o in sorted(SAMPLERS[name].options)) or "none"
                raise ValueError(f"--{option} is not an option of sampler {name!r} (its options: {offered})")
        count = steps.value or sampling_config.steps
        named = (grid.value if grid is not None else None) or sampling_config.grid
        if named == "fitted":
            named = fitted_grid_of(run, name, count, given, t_start)
        return name, count, named, given

    chosen.compile_backend = lambda: None if backend.value == "none" else backend.value
    return chosen
