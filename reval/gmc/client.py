"""The GMC Connect SOAP client: three operations, each outcome classified, never the password shown.

Zeep speaks the WSDL shipped in this package (never fetched at run time): SOAP 1.1,
document/literal, SOAPAction per operation, credentials in the body. Each call is one attempt
and returns a ``GmcReply``; ``with_retries`` repeats transient failures under Reval's retry
policy (``reval.retrying``), for callers that wait (the sync). The outbox keeps its own retry timers.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import requests
import zeep
import zeep.exceptions
import zeep.helpers
from lxml.etree import XMLSyntaxError

from reval import retrying
from reval.gmc.codes import Action, OutcomeKind, classify_return_code, describe_return_code
from reval.metrics import metrics, timed_call
from reval.retrying import RetryLater
from reval.settings import Settings

WSDL = Path(__file__).with_name("FullGMCConnect.wsdl")
NAMESPACE = "https://webcache.gmc-uk.org/GMCWebServices/"
BINDING = f"{{{NAMESPACE}}}GMCWebServicesSoap"  # the SOAP 1.1 binding
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GmcSettings:
    url: str
    username: str
    password: str = field(repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 120.0  # a large designated body's list takes a while to build
    attempts: int = 4  # per call, for callers that wait; the outbox keeps its own count
    backoff_seconds: float = 2.0  # first retry's mean delay; doubles each time

    @classmethod
    def from_settings(cls, settings: Settings) -> GmcSettings | None:
        """The settings from REVAL_GMC_*; None when no URL is configured."""
        if not settings.gmc_url:
            return None
        return cls(
            url=settings.gmc_url,
            username=settings.gmc_username,
            password=settings.gmc_password,
            connect_timeout=settings.gmc_connect_timeout,
            read_timeout=settings.gmc_read_timeout,
            attempts=settings.gmc_attempts,
            backoff_seconds=settings.gmc_backoff_seconds,
        )


@dataclass(frozen=True)
class GmcReply:
    """One call's outcome. ``message`` is for people: GMC's code and meaning, or what went wrong."""

    kind: OutcomeKind
    message: str
    client_request_id: str
    return_code: str | None = None
    gmc_request_id: str | None = None
    doctors: list[dict[str, Any]] | None = None  # GetDoctorsForDB only, with GMC's field names

    @property
    def succeeded(self) -> bool:
        return self.kind is OutcomeKind.SUCCESS


class _PasswordRedactor(logging.Filter):
    """Zeep logs whole envelopes at DEBUG, and our envelopes carry the password."""

    PASSWORD = re.compile(r"(<(?:[\w-]+:)?Password>).*?(</(?:[\w-]+:)?Password>)", re.DOTALL)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.PASSWORD.sub(r"\1***\2", record.getMessage())
        record.args = ()
        return True


_REDACTOR = _PasswordRedactor()


class GmcClient:
    def __init__(self, settings: GmcSettings, session: requests.Session | None = None):
        self.settings = settings
        transport = zeep.Transport(
            session=session or requests.Session(),
            operation_timeout=(settings.connect_timeout, settings.read_timeout),
        )
        logging.getLogger("zeep.transports").addFilter(_REDACTOR)  # a filter is only added once
        client = zeep.Client(str(WSDL), transport=transport)
        self._service = client.create_service(BINDING, settings.url)

    def get_doctors_for_db(self, designated_body_code: str, internal_user: str = "reval") -> GmcReply:
        request_id = new_client_request_id()
        reply = self._call(
            "GetDoctorsForDB",
            None,
            request_id,
            request={
                "DesignatedBodyCode": designated_body_code,
                "ClientRequestID": request_id,
                "InternalUser": internal_user,
            },
        )
        return reply

    def try_add_doctor(
        self, gmc_number: str, designated_body_code: str, reason: str, client_request_id: str, internal_user: str
    ) -> GmcReply:
        return self._change(
            "TryAddDoctor", Action.ADD, gmc_number, designated_body_code, reason, client_request_id, internal_user
        )

    def try_remove_doctor(
        self, gmc_number: str, designated_body_code: str, reason: str, client_request_id: str, internal_user: str
    ) -> GmcReply:
        return self._change(
            "TryRemoveDoctor", Action.REMOVE, gmc_number, designated_body_code, reason, client_request_id, internal_user
        )

    def change_connection(
        self,
        action: Action,
        gmc_number: str,
        designated_body_code: str,
        reason: str,
        client_request_id: str,
        internal_user: str,
    ) -> GmcReply:
        change = self.try_add_doctor if action is Action.ADD else self.try_remove_doctor
        return change(gmc_number, designated_body_code, reason, client_request_id, internal_user)

    def _change(self, operation, action, gmc_number, designated_body_code, reason, client_request_id, internal_user):
        return self._call(
            operation,
            action,
            client_request_id,
            RecReq={
                "DoctorUID": gmc_number,
                "DesignatedBodyCode": designated_body_code,
                "ChangeReason": reason,
                "ClientRequestID": client_request_id,
                "InternalUser": internal_user,
            },
        )

    def _call(self, operation: str, action: Action | None, client_request_id: str, **body) -> GmcReply:
        measured = metrics()
        with timed_call(measured.gmc_calls, measured.gmc_call_duration, operation) as outcome:
            try:
                result = getattr(self._service, operation)(
                    **body, Username=self.settings.username, Password=self.settings.password
                )
            except CALL_FAILURES as error:
                kind, message = self._failure(error)
                reply = GmcReply(kind, f"{operation}: {message}", client_request_id)
            else:
                reply = _reply(operation, action, client_request_id, result)
            outcome.append(reply.kind.value.lower())
        log.info("GMC %s: %s (client request %s)", operation, reply.kind.value.lower(), client_request_id)
        return reply

    def _failure(self, error: Exception) -> tuple[OutcomeKind, str]:
        """A call that got no readable answer: whether to try again, and why it failed."""
        if isinstance(error, requests.Timeout):
            return OutcomeKind.TRANSIENT, f"no answer within {self.settings.read_timeout:g} s"
        if isinstance(error, requests.ConnectionError):
            return OutcomeKind.TRANSIENT, f"could not connect to {self.settings.url} ({type(error).__name__})"
        if isinstance(error, zeep.exceptions.Fault):
            return OutcomeKind.TRANSIENT, f"SOAP fault: {error.message}"
        if isinstance(error, zeep.exceptions.TransportError):
            server_side = (error.status_code or 500) >= HTTPStatus.INTERNAL_SERVER_ERROR
            return OutcomeKind.TRANSIENT if server_side else OutcomeKind.PERMANENT, f"HTTP {error.status_code}"
        return OutcomeKind.TRANSIENT, f"unreadable answer ({error})"


# What a call may fail with before GMC's answer is read (the order of _failure's checks matters:
# a connect timeout is both a Timeout and a ConnectionError).
CALL_FAILURES = (
    requests.Timeout,
    requests.ConnectionError,
    zeep.exceptions.Fault,
    zeep.exceptions.TransportError,
    zeep.exceptions.XMLParseError,
    XMLSyntaxError,
)


def _reply(operation: str, action: Action | None, client_request_id: str, result: Any) -> GmcReply:
    """GMC's answer: its return code classified, and a list's doctors."""
    reply = zeep.helpers.serialize_object(result, target_cls=dict) or {}
    code = reply.get("ReturnCode")
    code = code.strip() if isinstance(code, str) else code
    kind = classify_return_code(code, action)
    doctors = _listed_doctors(reply) if operation == "GetDoctorsForDB" and kind is OutcomeKind.SUCCESS else None
    reply_message = f"{operation}: {describe_return_code(code)}"
    if kind is OutcomeKind.ACCESS:
        log.error("OPERATOR ALERT: GMC Connect refused Reval's account: %s; check REVAL_GMC_* settings", reply_message)
    return GmcReply(kind, reply_message, client_request_id, code, reply.get("GMCRequestID"), doctors)


def _listed_doctors(reply: dict[str, Any]) -> list[dict[str, Any]]:
    listed = (reply.get("Doctors") or {}).get("GetDoctorsForDBResponse_Doctor") or []
    return [{name: value for name, value in doctor.items() if value is not None} for doctor in listed if doctor]


def new_client_request_id() -> str:
    return str(uuid.uuid4())


def with_retries(
    call: Callable[[], GmcReply],
    attempts: int,
    backoff_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[GmcReply, int]:
    """Calls until success, a non-transient failure, or ``attempts`` calls; returns the last reply and the count."""

    def attempt() -> GmcReply:
        reply = call()
        if reply.kind is OutcomeKind.TRANSIENT:
            raise RetryLater(reply.message, outcome=reply)
        return reply

    def log_retry(failure: RetryLater, attempt: int, _delay: float) -> None:
        log.warning("GMC call failed, will retry (%d of %d): %s", attempt, attempts, failure.problem)

    try:
        return retrying.with_retries(attempt, attempts, backoff_seconds, log_retry, sleep)
    except RetryLater as failure:  # still transient after the last attempt
        assert isinstance(failure.outcome, GmcReply)
        return failure.outcome, attempts
