"""One module per ``sde-edge`` subcommand; each defines its absl flags and a ``main(argv)``.

They are imported only when their subcommand runs, so no two sets of flags ever meet.
"""
