"""The subcommands of ``linfit``: each module has ``register(subparsers)``."""
