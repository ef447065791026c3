"""Subcommands of ``lakehouse``: each module has ``register(subparsers)``."""
