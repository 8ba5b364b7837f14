"""The ``reval`` command: the same use cases the web, the API and the workers call, for a terminal.

Each topic has a module of its own; importing this package registers them all on ``cli``.
"""

from reval.cli import admin, api, connections, demo, doctors, runs, servers  # noqa: F401  (registers the commands)
from reval.cli.base import cli, main

__all__ = ["cli", "main"]
