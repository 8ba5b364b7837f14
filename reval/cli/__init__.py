"""The ``reval`` command: the same use cases the web, the API and the workers call, for a terminal.

Each topic has a module of its own; importing this package registers them all on ``cli``.
"""

from reval.cli import (  # noqa: F401  (registers the commands)
    admin,
    api,
    connections,
    demo,
    doctors,
    operations,
    preview,
    runs,
    servers,
)
from reval.cli.base import cli, main

__all__ = ["cli", "main"]
