"""What the local GMC and TIS simulators share: a background HTTP server and injected faults.

Both are development tools that speak their service's real wire protocol; this module holds
only the plumbing, so each simulator reads as its service.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import orjson
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

F = TypeVar("F", bound="InjectedFaultBase")


class InjectedFaultBase:
    """A fault as the control API reads and writes it: camelCase names mapped to attributes."""

    CONTROL_FIELDS: ClassVar[dict[str, str]]
    times: int | None

    @classmethod
    def from_control(cls: type[F], document: dict[str, Any]) -> F:
        unknown = set(document) - set(cls.CONTROL_FIELDS)
        if unknown:
            raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
        return cls(**{cls.CONTROL_FIELDS[name]: value for name, value in document.items()})

    def to_control(self) -> dict[str, Any]:
        return {name: getattr(self, attribute) for name, attribute in self.CONTROL_FIELDS.items()}


class FaultList:
    """Injected faults, taken by the first that matches; one with ``times`` runs out."""

    def __init__(self, fault_class: type[InjectedFaultBase]):
        self.fault_class = fault_class
        self.items: list = []
        self.lock = threading.Lock()

    def append(self, fault) -> None:
        with self.lock:
            self.items.append(fault)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()

    def take(self, matches: Callable[[Any], bool]):
        with self.lock:
            for fault in self.items:
                if matches(fault):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self.items.remove(fault)
                    return fault
        return None

    def control(self, request: Request) -> Response:
        """POST adds a fault (JSON), DELETE clears them, GET lists them."""
        if request.method == "POST":
            try:
                fault = self.fault_class.from_control(orjson.loads(request.get_data()))
            except (ValueError, TypeError) as error:
                return json_response({"error": str(error)}, 400)
            self.append(fault)
            return json_response(fault.to_control(), 201)
        if request.method == "DELETE":
            self.clear()
        with self.lock:
            return json_response({"faults": [fault.to_control() for fault in self.items]})


def json_response(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(document), status, headers=headers, content_type="application/json")


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


class BackgroundServer:
    """A WSGI app served on a thread; ``stop`` is set on exit, to cut injected delays short."""

    def __init__(self, make_app: Callable[[threading.Event], Any], host: str, port: int, log_requests: bool, name: str):
        self.stop = threading.Event()
        self.app = make_app(self.stop)
        handler = WSGIRequestHandler if log_requests else _QuietRequestHandler
        self.server: BaseWSGIServer = make_server(host, port, self.app, threaded=True, request_handler=handler)
        self.base_url = f"http://{host}:{self.server.server_port}"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
