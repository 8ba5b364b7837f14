"""Reading one value out of a page or a message in a test."""

from __future__ import annotations

import re


def first_group(pattern: str, text: str) -> str:
    """The first group of ``pattern``'s first match in ``text``; fails the test when there is none."""
    found = re.search(pattern, text)
    assert found is not None, f"{pattern!r} not found in {text[:300]!r}"
    return found.group(1)
