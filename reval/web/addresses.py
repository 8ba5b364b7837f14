"""Return addresses (``next=`` and ``back=``): a redirect or a link built from one only ever
leads to a page of this site.

A browser does not follow an address as it is written: WHATWG URL parsing first strips leading
and trailing spaces and control characters, removes every tab, newline and carriage return, and
reads ``\\`` as ``/``. So ``/\\t/evil.example`` and ``/\\evil.example`` are ``//evil.example``, an
address on another site. The address is judged after that same cleaning, and the cleaned form is
what Reval sends.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import url_for

_SPACE_OR_C0_CONTROL = "".join(chr(code) for code in range(0x21))
_CONTROL = frozenset(chr(code) for code in (*range(0x20), 0x7F))
_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")


def own_path(target: str | None) -> str | None:
    """``target`` as a browser would read it, when that is a path on this site; else None."""
    if not target:
        return None
    cleaned = target.strip(_SPACE_OR_C0_CONTROL).translate(_TAB_OR_NEWLINE).replace("\\", "/")
    if not cleaned.startswith("/") or cleaned.startswith("//"):
        return None  # a scheme ("https:", "javascript:"), a relative path, or another host
    if not _CONTROL.isdisjoint(cleaned):
        return None
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc:
        return None
    return cleaned


def local_path(target: str | None, default: str | None = None) -> str:
    """``target`` if it is a path of this site (see ``own_path``), else ``default`` (home)."""
    return own_path(target) or default or url_for("pages.home")
