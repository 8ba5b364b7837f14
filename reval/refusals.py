"""Refusals: a request Reval will not carry out, typed by kind so each entry point can answer it.

The message is one sentence for the person who asked, naming the bad value, and never speaks of
a particular entry point (no command-line flags, no URLs). The CLI answers every kind with exit
status 2; the web and the API with 404, 422, 409 and 403.
"""

from __future__ import annotations


class Refused(Exception):
    """Nothing was changed, and the message says why."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field  # the input at fault, where one is


class NotFound(Refused):
    """No such thing, or not one the caller may see (the two are answered alike)."""


class Invalid(Refused):
    """The request breaks a rule: a bad value, a reason that does not fit, a date in the past."""


class Malformed(Invalid):
    """A value that cannot even be read (a cursor Reval did not make, a date that is no date)."""


class Gone(Refused):
    """What was asked for existed once and has been deleted for good."""


class Conflict(Refused):
    """The request does not fit the current state: already hidden, not failed, superseded."""


class NotPermitted(Refused):
    """The caller may see this but not do it (a viewer acting, say)."""


class NotConfigured(Refused):
    """A service Reval needs for this is not configured; the message names the setting."""
