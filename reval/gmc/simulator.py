"""A local GMC Connect for development, tests and demos: the real WSDL and wire protocol over HTTP.

It serves ``?wsdl`` and the three operations Reval uses from a dataset in the GMC snapshot
format, checks credentials, keeps its state (an accepted add or remove shows in the next list)
and answers with GMC's documented codes. Faults are injected through a small JSON control API
under ``/simulator/``. It is a development tool: nothing in production starts it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from lxml import etree
from werkzeug.wrappers import Request, Response

from reval.clock import london_today
from reval.gmc.client import NAMESPACE, WSDL
from reval.gmc.codes import CHANGE_REASONS, Action
from reval.simulators import BackgroundServer, FaultList, InjectedFaultBase, json_response
from reval.validation import InvalidValue, gmc_number

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OPERATIONS = ("GetDoctorsForDB", "TryAddDoctor", "TryRemoveDoctor")
FAULT_KINDS = ("delay", "http-500", "soap-fault", "return-code")


@dataclass
class InjectedFault(InjectedFaultBase):
    """A fault for calls matching every given criterion; ``times`` None means until cleared."""

    kind: str
    operation: str | None = None
    designated_body_code: str | None = None
    gmc_number: str | None = None
    seconds: float = 0.0
    return_code: str | None = None
    times: int | None = None

    CONTROL_FIELDS: ClassVar[dict[str, str]] = {
        "kind": "kind",
        "operation": "operation",
        "designatedBodyCode": "designated_body_code",
        "gmcNumber": "gmc_number",
        "seconds": "seconds",
        "returnCode": "return_code",
        "times": "times",
    }

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {', '.join(FAULT_KINDS)}")
        if self.operation is not None and self.operation not in OPERATIONS:
            raise ValueError(f"operation {self.operation!r} is not one of {', '.join(OPERATIONS)}")
        if self.kind == "return-code" and not self.return_code:
            raise ValueError("a return-code fault needs returnCode")

    def matches(self, operation: str, body: str | None, number: str | None) -> bool:
        return (
            (self.operation in (None, operation))
            and (self.designated_body_code in (None, body))
            and (self.gmc_number in (None, number))
        )


@dataclass
class GmcConnectState:
    """Who is connected where, as GMC Connect would hold it."""

    username: str
    password: str = field(repr=False)
    lists: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # body -> number -> doctor
    known_doctors: dict[str, dict[str, Any]] = field(default_factory=dict)  # every doctor ever listed
    faults: FaultList = field(default_factory=lambda: FaultList(InjectedFault))
    calls: list[dict[str, Any]] = field(default_factory=list)  # every call received, without the password
    today: Callable[[], date] = london_today  # GMC keeps UK dates
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_snapshot(
        cls, body_lists: Iterable[dict[str, Any]], username: str, password: str, **kwargs
    ) -> GmcConnectState:
        state = cls(username, password, **kwargs)
        for body_list in body_lists:
            doctors = state.lists.setdefault(str(body_list.get("designatedBodyCode")), {})
            given = body_list.get("doctors")
            entries = given if isinstance(given, list) else []
            for index, doctor in enumerate(entries):
                if not isinstance(doctor, dict):
                    continue
                # Served as given, even when malformed: the data GMC sends is not always clean.
                number = str(doctor.get("GMCReferenceNumber", f"unnumbered-{index}"))
                doctors[number] = dict(doctor)
                state.known_doctors[number] = dict(doctor)
        return state

    def connected_body(self, number: str) -> str | None:
        return next((code for code, doctors in self.lists.items() if number in doctors), None)

    def take_fault(self, operation: str, body: str | None, number: str | None) -> InjectedFault | None:
        return self.faults.take(lambda fault: fault.matches(operation, body, number))

    def list_doctors(self, body: str) -> tuple[str, list[dict[str, Any]]]:
        with self.lock:
            if body not in self.lists:
                return "80", []
            return "0", [dict(doctor) for doctor in self.lists[body].values()]

    def change(self, action: Action, number: str, body: str, reason: str) -> str:
        """Applies an add or remove and returns GMC's return code."""
        with self.lock:
            if body not in self.lists:
                return "80"
            if reason not in CHANGE_REASONS[action]:
                return "120"
            current = self.connected_body(number)
            if action is Action.ADD:
                if current == body:
                    return "100"
                if current is not None:
                    del self.lists[current][number]  # a doctor has one prescribed connection
                doctor = dict(self.known_doctors.get(number, {"GMCReferenceNumber": number}))
                doctor["DateAdded"] = self.today().strftime("%d/%m/%Y")
                self.lists[body][number] = doctor
                self.known_doctors[number] = doctor
                return "0"
            if current != body:
                return "140"
            del self.lists[body][number]
            return "0"


class GmcConnectSimulator:
    """The WSGI application. ``state`` may be inspected and changed by tests directly."""

    def __init__(self, state: GmcConnectState, stop: threading.Event | None = None):
        self.state = state
        self.stop = stop or threading.Event()  # set on shutdown: cuts injected delays short

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path.startswith("/simulator/"):
            response = self._control(request)
        elif request.method == "GET" and "wsdl" in {key.lower() for key in request.args}:
            response = self._wsdl(request)
        elif request.method == "POST":
            response = self._soap(request)
        else:
            response = Response("GMC Connect simulator: POST SOAP 1.1 requests, or GET ?wsdl\n", 405)
        return response(environ, start_response)

    def _wsdl(self, request: Request) -> Response:
        document = etree.parse(str(WSDL))
        for address in document.iter(
            "{http://schemas.xmlsoap.org/wsdl/soap/}address", "{http://schemas.xmlsoap.org/wsdl/soap12/}address"
        ):
            address.set("location", request.base_url)
        return Response(
            etree.tostring(document, xml_declaration=True, encoding="utf-8"), content_type="text/xml; charset=utf-8"
        )

    def _soap(self, request: Request) -> Response:
        """Answers one SOAP call: parsed and checked, any fault injected for it, then its operation."""
        parsed = self._parse_call(request)
        if isinstance(parsed, Response):
            return parsed
        operation, fields = parsed
        self.state.calls.append({"operation": operation, **{k: v for k, v in fields.items() if k != "Password"}})
        fault = self.state.take_fault(operation, fields.get("DesignatedBodyCode"), fields.get("DoctorUID"))
        failure = self._injected_failure(fault)
        if failure is not None:
            return failure
        request_id = str(uuid.uuid4())
        result: dict[str, Any] = {"ClientRequestID": fields.get("ClientRequestID", "")}
        code, doctors = self._outcome(operation, fields, fault)
        result.update(GMCRequestID=request_id, ReturnCode=code)
        if operation == "TryAddDoctor":
            result["SubmissionDate"] = self.state.today().strftime("%d/%m/%Y") if code == "0" else ""
        return soap_response(operation, result, doctors)

    @staticmethod
    def _parse_call(request: Request) -> tuple[str, dict[str, str]] | Response:
        """The operation called and its fields (by local name), or the SOAP fault refusing the call."""
        try:
            envelope = etree.fromstring(request.get_data())
            body = envelope.find(f"{{{SOAP_ENV}}}Body")
            call = body[0] if body is not None and len(body) else None
        except etree.XMLSyntaxError as error:
            return soap_fault("soap:Client", f"request is not XML: {error}")
        if call is None or etree.QName(call).namespace != NAMESPACE or etree.QName(call).localname not in OPERATIONS:
            return soap_fault("soap:Client", "unknown operation")
        operation = etree.QName(call).localname
        action = request.headers.get("SOAPAction", "").strip('"')
        if action != NAMESPACE + operation:
            return soap_fault("soap:Client", f"SOAPAction {action!r} does not match {operation}")
        fields = {etree.QName(element).localname: (element.text or "") for element in call.iter() if len(element) == 0}
        return operation, fields

    def _injected_failure(self, fault: InjectedFault | None) -> Response | None:
        """What an injected fault answers instead of the call (a delay answers it, late)."""
        if fault is None:
            return None
        if fault.kind == "delay":
            self.stop.wait(fault.seconds)
        elif fault.kind == "http-500":
            return Response("Internal Server Error", 500, content_type="text/html")
        elif fault.kind == "soap-fault":
            return soap_fault("soap:Server", "Server was unable to process request. (simulated)")
        return None

    def _outcome(
        self, operation: str, fields: dict[str, str], fault: InjectedFault | None
    ) -> tuple[str, list[dict[str, Any]] | None]:
        """The call's return code (and a list's doctors): refused before its operation is done, or done."""
        if (fields.get("Username"), fields.get("Password")) != (self.state.username, self.state.password):
            return "99", None
        if fault is not None and fault.kind == "return-code" and fault.return_code:  # (one is required)
            return fault.return_code, None
        if not fields.get("InternalUser"):
            return "110", None
        if operation == "GetDoctorsForDB":
            return self.state.list_doctors(fields.get("DesignatedBodyCode") or "")
        chosen = Action.ADD if operation == "TryAddDoctor" else Action.REMOVE
        return self._change(chosen, fields), None

    def _change(self, chosen: Action, fields: dict[str, str]) -> str:
        try:
            number = gmc_number("DoctorUID", fields.get("DoctorUID"))
        except InvalidValue:
            return "70"
        return self.state.change(chosen, number, fields.get("DesignatedBodyCode") or "", fields.get("ChangeReason", ""))

    def _control(self, request: Request) -> Response:
        path = request.path.removeprefix("/simulator/")
        if path == "faults":
            return self.state.faults.control(request)
        if path == "doctors":
            with self.state.lock:
                return json_response({code: sorted(doctors) for code, doctors in self.state.lists.items()})
        if path == "calls":
            return json_response({"calls": self.state.calls})
        return json_response({"error": f"no simulator control at {request.path}"}, 404)


def soap_response(operation: str, result: dict[str, Any], doctors: list[dict[str, Any]] | None) -> Response:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    response = etree.SubElement(body, f"{{{NAMESPACE}}}{operation}Response", nsmap={None: NAMESPACE})
    outcome = etree.SubElement(response, f"{{{NAMESPACE}}}{operation}Result")
    if operation == "GetDoctorsForDB":
        listed = etree.SubElement(outcome, f"{{{NAMESPACE}}}Doctors")
        for doctor in doctors or []:
            entry = etree.SubElement(listed, f"{{{NAMESPACE}}}GetDoctorsForDBResponse_Doctor")
            for name in DOCTOR_FIELDS:
                if doctor.get(name) is not None:
                    etree.SubElement(entry, f"{{{NAMESPACE}}}{name}").text = str(doctor[name])
    for name in RESULT_FIELDS[operation]:
        etree.SubElement(outcome, f"{{{NAMESPACE}}}{name}").text = result.get(name, "")
    return Response(
        etree.tostring(envelope, xml_declaration=True, encoding="utf-8"), content_type="text/xml; charset=utf-8"
    )


DOCTOR_FIELDS = (
    "GMCReferenceNumber",
    "DoctorFirstName",
    "DoctorLastName",
    "SubmissionDate",
    "DoctorStatus",
    "Breach",
    "DateAdded",
    "UnderNotice",
    "Investigation",
    "PreliminaryInvestigation",
    "Sanction",
)
RESULT_FIELDS = {
    "GetDoctorsForDB": ("ClientRequestID", "GMCRequestID", "ReturnCode"),
    "TryAddDoctor": ("ClientRequestID", "GMCRequestID", "SubmissionDate", "ReturnCode"),
    "TryRemoveDoctor": ("ClientRequestID", "GMCRequestID", "ReturnCode"),
}


def soap_fault(code: str, message: str) -> Response:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body"), f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(fault, "faultcode").text = code
    etree.SubElement(fault, "faultstring").text = message
    return Response(
        etree.tostring(envelope, xml_declaration=True, encoding="utf-8"), 500, content_type="text/xml; charset=utf-8"
    )


class RunningSimulator(BackgroundServer):
    """A simulator served on a background thread; ``url`` is its SOAP endpoint."""

    def __init__(self, state: GmcConnectState, host: str = "127.0.0.1", port: int = 0, log_requests: bool = True):
        super().__init__(lambda stop: GmcConnectSimulator(state, stop), host, port, log_requests, "gmc-simulator")
        self.url = f"{self.base_url}/GMCWebServices/WebService.asmx"

    @property
    def state(self) -> GmcConnectState:
        return self.app.state
