"""GMC Connect's return and change-reason codes, and what each outcome means for Reval."""

from __future__ import annotations

from enum import StrEnum

RETURN_CODE_MEANINGS = {
    "0": "success",
    "70": "missing or invalid doctor GMC reference number",
    "80": "missing or invalid designated body code",
    "81": "your account does not have access to this designated body",
    "90": "doctor not subject to revalidation",
    "98": "GMC internal error",
    "99": "invalid credentials (user name, password or IP address)",
    "100": "doctor already associated with your designated body",
    "106": "doctor has a revalidation lock applied",
    "110": "missing internal user",
    "120": "missing or invalid change code (reason)",
    "140": "doctor not associated with your designated body",
    "160": "doctor's designated body history is locked; contact the GMC revalidation team",
}


class Action(StrEnum):
    ADD = "ADD"
    REMOVE = "REMOVE"


# ChangeReason codes GMC accepts for each action.
CHANGE_REASONS = {
    Action.ADD: {
        "1": "the doctor has a connection with this designated body",
        "2": "conflict of interest",
    },
    Action.REMOVE: {
        "1": "conflict of interest",
        "2": "doctor has retired",
        "3": "the doctor does not have a connection with this designated body",
    },
}


class OutcomeKind(StrEnum):
    SUCCESS = "SUCCESS"
    TRANSIENT = "TRANSIENT"  # worth retrying: the same call may well succeed later
    PERMANENT = "PERMANENT"  # the same call will fail again
    ACCESS = "ACCESS"  # every call will fail until someone fixes Reval's GMC account or settings


TRANSIENT_CODES = {"98"}
ACCESS_CODES = {"81", "99"}
# Codes that mean "already so": the change asked for is already in effect at GMC.
ALREADY_DONE = {Action.ADD: "100", Action.REMOVE: "140"}


def classify_return_code(code: str | None, action: Action | None = None) -> OutcomeKind:
    """What a ReturnCode means for the call that got it (``action`` None: a list call)."""
    if code == "0" or (action is not None and code == ALREADY_DONE[action]):
        return OutcomeKind.SUCCESS
    if code in TRANSIENT_CODES:
        return OutcomeKind.TRANSIENT
    if code in ACCESS_CODES:
        return OutcomeKind.ACCESS
    return OutcomeKind.PERMANENT


def describe_return_code(code: str | None) -> str:
    if code is None:
        return "no return code"
    meaning = RETURN_CODE_MEANINGS.get(code)
    return f"return code {code} ({meaning})" if meaning else f"return code {code} (not documented by GMC)"
