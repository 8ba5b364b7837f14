"""What a person reads, made from stored values: dates in long form, designated bodies by name
with their code as GMC writes it, GMC requests and form errors in words. Templates lay out what
these return and never format values themselves."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from markupsafe import Markup

from reval.clock import LONDON

YEAR_DIGITS = 4  # a two-digit year is refused, never read as the year 27


def format_day(value: date | str | None) -> str:
    """A day as people write it: 6 December 2026."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return f"{value.day} {value:%B %Y}"


def format_moment(value: datetime | str | None) -> Markup | str:
    """A moment in London time (6 December 2026 at 11:26), the full moment in a <time> element."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    local = value.astimezone(LONDON)
    return Markup('<time datetime="{}">{} at {}</time>').format(
        value.isoformat(), format_day(local.date()), local.strftime("%H:%M")
    )


def sentence_case(text: str | None) -> str:
    """The first letter a capital, the rest as written (codes such as 1-1RSSQ05 keep their case)."""
    if not text:
        return ""
    return text[0].upper() + text[1:]


def code_breaks(code: str | None) -> Markup:
    """A code such as NO_PROGRAMME_NOT_CONNECTED that may wrap after each underscore, never inside a word."""
    return Markup("_<wbr>").join(str(code or "").split("_"))


MEMBERSHIP_ACRONYMS = frozenset({"LAT", "FTSTA"})  # TIS's membership types that are initials


def membership_type(text: str | None) -> str:
    """A programme membership type as people read it: Substantive, Military, LAT."""
    if not text:
        return ""
    return text if text in MEMBERSHIP_ACRONYMS else text.capitalize()


def body_label(name: str, code: str) -> str:
    """A designated body by name, with its code as GMC writes it: East of England (1-1RSSQ05)."""
    code = code.upper()
    return code if name.upper() == code else f"{name} ({code})"


def request_summary(
    action: str, body: str, requested_by: str, reason: str, reasons: Mapping[str, Mapping[str, str]]
) -> str:
    """A GMC request in words: Connect to East of England, asked by Ann Admin, reason: the doctor
    has a connection with this designated body."""
    change = "Connect to" if action == "ADD" else "Disconnect from"
    meaning = reasons.get(action, {}).get(reason, f"GMC reason {reason}")
    return f"{change} {body}, asked by {requested_by}, reason: {meaning}"


def refused_change(action: str, body: str) -> str:
    """What GMC did not do: connect this doctor to East of England."""
    return f"connect this doctor to {body}" if action == "ADD" else f"disconnect this doctor from {body}"


def until_error(parts: tuple[str, str, str]) -> str | None:
    """The error for a hide's until-date as typed (day, month, year), or None when it is a date."""
    return date_error(parts, "The date the hide ends")


def date_error(parts: tuple[str, str, str], subject: str) -> str | None:
    """The error for a date as typed (day, month, year) in an NHS.UK date input, naming it as
    ``subject`` does ("The date the hide ends"), or None when it is a date."""
    day, month, year = parts
    if not all(parts):
        missing = [name for name, part in zip(("a day", "a month", "a year"), parts, strict=True) if not part]
        return f"{subject} must include " + " and ".join(missing)
    if not (day.isdigit() and month.isdigit() and year.isdigit()):
        return f"{subject} must be a real date, for example 31 12 2027"
    if len(year) != YEAR_DIGITS:
        return "Year must include 4 numbers, for example 2027"
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return f"{subject} must be a real date, for example 31 12 2027"
    return None


def range_error(subject: str, start: date) -> str:
    """The error for a range's end before its start: "... must be the same as or after 1 February 2027"."""
    return f"{subject} must be the same as or after {format_day(start)}"


def action_error(field: str, action: str, today: date, body: Callable[[], str]) -> str | None:
    """The form error for a refusal of the action's field, in the NHS.UK style (None: the
    refusal's own sentence is shown)."""
    if field == "until":
        return f"Enter a date after {format_day(today)}"
    if field == "reason" and action == "hide":
        return f"Enter why these doctors need no action from {body()}"
    if field == "reason":
        return "Select GMC's reason for this change"
    return None


DONE_WORDS = {
    "hide": "hidden",
    "unhide": "unhidden",
    "connect": "connected at GMC",
    "disconnect": "disconnected at GMC",
    "resend": "resent to GMC and accepted",
}


def results_banner(action: str, done: int, not_done: int, waiting: int) -> tuple[str, str] | None:
    """The results page's opening banner (its kind and sentence), or None while GMC has not answered."""
    doctors = f"{done} doctor{'' if done == 1 else 's'}"
    if waiting:
        return None
    if not not_done:
        return "success", f"{doctors} {DONE_WORDS.get(action, 'done')}"
    return "important", f"{not_done} of {done + not_done} changes were not made: see why below"


ISO_DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def in_words(text: str | None, body_names: Mapping[str, str]) -> str:
    """A use case's sentence for people: sentence case, ISO days in long form, body codes as names
    (codes matched in any letter case, as GMC writes them)."""
    if not text:
        return ""
    text = ISO_DAY.sub(lambda day: format_day(date(int(day[1]), int(day[2]), int(day[3]))), text)
    for code, name in body_names.items():
        text = re.sub(rf"\b{re.escape(code)}\b", name, text, flags=re.IGNORECASE)
    return sentence_case(text)


# Each fact of the rule table as an admin would ask it of a doctor.
FACT_QUESTIONS = {
    "current_f1_placement": "Has an F1 placement now",
    "military": "In a military programme",
    "tis_people": "People in TIS with this GMC number",
    "tis_record_rejected": "Every TIS record of theirs was rejected",
    "connected": "Connected to a designated body at GMC",
    "inactive_in_tis": "Inactive in TIS",
    "unknown_programme_owner": "A current programme's owner is not a known designated body",
    "current_programme_owners": "Designated bodies owning their current programmes",
    "connected_to_programme_owner": "Connected to a designated body that owns a current programme",
    "current_programme": "Has a current programme",
    "ended_programme": "Has a programme that has ended",
    "previously_connected": "Has been connected to a designated body before",
}
COUNT_WORDS = {"NONE": "none", "ONE": "one", "MANY": "more than one"}


def fact_answers(facts: Mapping[str, object]) -> list[tuple[str, str]]:
    """The doctor's facts as questions and answers: ("Has an F1 placement now", "no")."""
    return [(FACT_QUESTIONS.get(name, name), _answer(value)) for name, value in facts.items()]


def _answer(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return COUNT_WORDS.get(str(value), str(value))


# --- a doctor's history ----------------------------------------------------------------------


class HistoryEvent(Protocol):
    """What the History timeline reads of an event (a ``DoctorEvent``)."""

    @property
    def kind(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def old(self) -> dict[str, Any] | None: ...
    @property
    def new(self) -> dict[str, Any] | None: ...
    @property
    def detail(self) -> str | None: ...


@dataclass(frozen=True)
class HistoryWords:
    """What the timeline needs to name things: bodies by name, reasons and queues in words."""

    body: Callable[[str | None], str]  # a designated body's name from its code
    reason: Callable[[str], str]  # a decision's reason in words from its code
    change_reasons: Mapping[Any, Mapping[str, str]]  # GMC's change reasons, by action and code


QUEUE_WORDS = {"CONNECTED": "Connected", "DISCREPANCY": "Discrepancies", "HIDDEN": "Hidden", "HISTORIC": "Historic"}
ADMIN_CONNECTION_DETAIL = re.compile(r" at GMC by (.+) \(request \d+\)$")  # as reval.reconcile.connections writes it
REQUEST_OUTCOMES = {"SUCCEEDED": "GMC made the change", "FAILED": "GMC did not make the change"}


def event_sentence(event: HistoryEvent, words: HistoryWords) -> str | None:
    """A history event as an admin reads it, from its stored values (None: a kind with no
    words here, for the caller's own sentence)."""
    old, new = event.old or {}, event.new or {}
    if event.kind in ("GMC_REQUEST", "GMC_REQUEST_FAILED"):
        return _request_sentence(new, words)
    if event.kind == "CONNECTION":
        return _connection_sentence(event, old, new, words)
    if event.kind == "DECISION":
        return _decision_sentence(old, new, words)
    return _hide_or_archive_sentence(event, old, new, words)


def _hide_or_archive_sentence(
    event: HistoryEvent, old: Mapping[str, Any], new: Mapping[str, Any], words: HistoryWords
) -> str | None:
    """A hide or its end, an archiving or a restoring (None: any other kind)."""
    why = f": {event.detail}" if event.detail else ""
    if event.kind == "HIDE":
        until = f" until {format_day(new['until'])}" if new.get("until") else ""
        return (
            f"Hidden for {words.body(new.get('designatedBody'))} by {new.get('hiddenBy')}{until}: {new.get('reason')}"
        )
    if event.kind in ("UNHIDE", "HIDE_ENDED"):
        return f"Hide for {words.body(old.get('designatedBody'))} ended{why}"
    if event.kind == "ARCHIVED":
        return f"Archived on {format_day(new.get('archivedOn'))}, from {_placed(old, words)}{why}"
    if event.kind == "RESTORED":
        return f"Restored from the archive (archived on {format_day(old.get('archivedOn'))}): back at GMC or in TIS"
    return None


def _request_sentence(request: Mapping[str, Any], words: HistoryWords) -> str:
    """Connect to East of England, asked by Ann Admin, reason: the doctor has a connection with
    this designated body. GMC did not make the change: doctor has a revalidation lock."""
    summary = request_summary(
        str(request.get("action")),
        words.body(request.get("designatedBodyCode")),
        str(request.get("requestedBy") or "someone"),
        str(request.get("reason")),
        words.change_reasons,
    )
    status = str(request.get("status") or "")
    outcome = REQUEST_OUTCOMES.get(status)
    if outcome is None:  # asked, and not yet answered when this was written
        return summary
    said = f": {request['message']}" if status == "FAILED" and request.get("message") else ""
    return f"{summary}. {outcome}{said}"


def _connection_sentence(
    event: HistoryEvent, old: Mapping[str, Any], new: Mapping[str, Any], words: HistoryWords
) -> str:
    before, after = old.get("designatedBody"), new.get("designatedBody")
    if before is None:
        change = f"Connected to {words.body(after)}"
    elif after is None:
        change = f"Disconnected from {words.body(before)}"
    else:
        change = f"Moved from {words.body(before)} to {words.body(after)}"
    if event.source == "ADMIN":
        asked = ADMIN_CONNECTION_DETAIL.search(event.detail or "")
        return f"{change} at GMC" + (f", asked by {asked[1]}" if asked else "")
    return f"{change} on GMC's list"


def _decision_sentence(old: Mapping[str, Any], new: Mapping[str, Any], words: HistoryWords) -> str:
    if not old:
        return f"Placed in {_placed(new, words)}"
    return f"Moved from {_placed(old, words)} to {_placed(new, words)}"


def _placed(values: Mapping[str, Any], words: HistoryWords) -> str:
    """A queue and its reason in words: Discrepancies (Not connected)."""
    queue = str(values.get("queue"))
    return f"{QUEUE_WORDS.get(queue, queue.title())} ({words.reason(str(values.get('reason')))})"
