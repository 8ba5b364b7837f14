"""Files of one instance that every process of it must agree on, made once by whichever comes first."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def read_or_create_private(path: Path, make: Callable[[], str]) -> str:
    """The file's text, or ``make()``'s written there readable by its owner only. Several
    processes starting at once all read the same text: the file appears whole, and only once."""
    if path.exists():
        return path.read_text()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(make())
        with contextlib.suppress(FileExistsError):  # another process got there first: theirs stands
            os.link(draft, path)
    finally:
        os.unlink(draft)
    return path.read_text()
