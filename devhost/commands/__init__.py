"""Subcommands of `python -m devhost`: each module has `add_to(subparsers)`, which registers its
parser with `set_defaults(run=<function of the parsed args returning an exit code>)`."""
