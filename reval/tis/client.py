"""The TIS (TCS) REST client: OAuth2 client credentials, paging, retries, bounded concurrency.

Authlib's OAuth2 session fetches the token with the client-credentials grant, keeps it until
shortly before ``expires_in`` runs out and then fetches another; a 401 all the same (a token
revoked early) gets one new token and one retry. Timeouts, connection errors, 429 and 5xx are
retried with backoff (429 and 503 after the server's Retry-After); any other 4xx is not.
People come out in the TIS snapshot format (``reval.tis.mapping``), validated later by the same
rules as a file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from reval.metrics import metrics, timed_call
from reval.retrying import RetryLater, with_retries
from reval.settings import Settings
from reval.tis.mapping import is_placeholder, person_record

log = logging.getLogger(__name__)
RETRIED_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class TisSettings:
    url: str  # TCS base, e.g. https://tis.example/tcs (the API is under /api)
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    attempts: int = 5
    backoff_seconds: float = 1.0
    page_size: int = 500
    concurrency: int = 8  # person calls in flight at once

    @classmethod
    def from_settings(cls, settings: Settings) -> TisSettings | None:
        """The settings from REVAL_TIS_*; None when no URL is configured."""
        if not settings.tis_url:
            return None
        return cls(
            url=settings.tis_url.rstrip("/"),
            token_url=settings.tis_token_url,
            client_id=settings.tis_client_id,
            client_secret=settings.tis_client_secret,
            connect_timeout=settings.tis_connect_timeout,
            read_timeout=settings.tis_read_timeout,
            attempts=settings.tis_attempts,
            backoff_seconds=settings.tis_backoff_seconds,
            page_size=settings.tis_page_size,
            concurrency=settings.tis_concurrency,
        )


class TisUnavailable(Exception):
    """A TIS call failed for good (after any retries); the message says which and why."""


class PersonDeleted(Exception):
    """TIS answers 404 for the person: they have been deleted."""


class TisClient:
    def __init__(self, settings: TisSettings, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self._sleep = sleep
        self._token_lock = threading.Lock()
        self._session = OAuth2Session(
            settings.client_id,
            settings.client_secret,
            token_endpoint=settings.token_url,
            grant_type="client_credentials",
            token_endpoint_auth_method="client_secret_post",
            leeway=30,  # a new token this long before the old one expires
        )

    # --- the three endpoints -------------------------------------------------------------------

    def people_page(self, page: int) -> tuple[list[dict[str, Any]], int]:
        """One page of people (numbered from 0) and the total in X-Total-Count."""
        response = self._get("/api/people", "people", params={"page": page, "size": self.settings.page_size})
        total = response.headers.get("X-Total-Count")
        if total is None or not total.isdigit():
            raise TisUnavailable(f"GET /api/people page {page}: no X-Total-Count header (got {total!r})")
        people = response.json()
        if not isinstance(people, list):
            raise TisUnavailable(f"GET /api/people page {page}: expected a list of people")
        return people, int(total)

    def person(self, person_id: int) -> dict[str, Any]:
        """The person in the TIS snapshot format; raises PersonDeleted on 404."""
        person = self._get(f"/api/people/v2/{person_id}", "person", not_found_is_deletion=True).json()
        placements = self._get(f"/api/people/{person_id}/placements", "placements", not_found_is_deletion=True).json()
        return person_record(person, placements)

    # --- pulls ---------------------------------------------------------------------------------

    def listed_person_ids(self) -> Iterator[int]:
        """Every real person's id, page by page (dummy and placeholder records are skipped)."""
        page, seen = 0, 0
        while True:
            people, total = self.people_page(page)
            for listed in people:
                seen += 1
                if not is_placeholder(listed):
                    yield listed["id"]
            if not people or seen >= total:
                return
            page += 1

    def everyone(self) -> Iterator[dict[str, Any]]:
        """A full pull: every real person TIS lists (one deleted since the listing is left out)."""
        return (person for _id, person in self.people(self.listed_person_ids()) if person is not None)

    def people(self, person_ids) -> Iterator[tuple[int, dict[str, Any] | None]]:
        """(id, person) for each id, fetched with bounded concurrency, in order; None: deleted."""

        def fetch(person_id: int):
            try:
                return person_id, self.person(person_id)
            except PersonDeleted:
                return person_id, None

        ahead = self.settings.concurrency * 4  # submitted but not yet consumed: bounds memory
        with ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="tis") as pool:
            pending: deque[Future] = deque()
            for person_id in person_ids:
                pending.append(pool.submit(fetch, person_id))
                if len(pending) >= ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    # --- one call, with its token and retries --------------------------------------------------

    def _get(
        self, path: str, operation: str, params: dict | None = None, not_found_is_deletion: bool = False
    ) -> requests.Response:
        what = f"GET {path}" + (f" page {params['page']}" if params and "page" in params else "")
        refreshed = False

        def attempt() -> requests.Response:
            nonlocal refreshed
            response = self._send(path, operation, params, what)
            if response.status_code == HTTPStatus.UNAUTHORIZED and not refreshed:
                refreshed = True  # the token was refused before its time: one new token, one retry
                self._renew_token()
                response = self._send(path, operation, params, what)
            if response.status_code == HTTPStatus.OK:
                return response
            raise _retried_problem(response, what, path, not_found_is_deletion)

        def log_retry(failure: RetryLater, _attempt: int, delay: float) -> None:
            log.warning("TIS %s failed (%s); retrying in %.1f s", what, failure.problem, delay)

        try:
            response, _attempts = with_retries(
                attempt, self.settings.attempts, self.settings.backoff_seconds, log_retry, self._sleep
            )
        except RetryLater as failure:  # after the last attempt
            raise TisUnavailable(f"{what}: {failure.problem}, after {self.settings.attempts} attempts") from None
        return response

    def _send(self, path: str, operation: str, params: dict | None, what: str) -> requests.Response:
        """One request with the current token; RetryLater for a timeout or a connection refused."""
        measured = metrics()
        try:
            self._ensure_token()
            with timed_call(measured.tis_calls, measured.tis_call_duration, operation) as outcome:
                try:
                    response = self._session.get(
                        self.settings.url + path,
                        params=params,
                        timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                    )
                except requests.RequestException:
                    outcome.append("unreachable")
                    raise
                outcome.append(_outcome(response.status_code))
            return response
        except requests.Timeout:
            raise RetryLater(f"no answer within {self.settings.read_timeout:g} s") from None
        except requests.ConnectionError as error:
            raise RetryLater(f"could not connect to {self.settings.url} ({type(error).__name__})") from None
        except OAuthError as error:
            raise TisUnavailable(f"{what}: TIS's identity provider refused Reval's client: {error.error}") from None

    def _ensure_token(self) -> None:
        with self._token_lock:
            if not self._session.token:
                self._request_token()

    def _renew_token(self) -> None:
        with self._token_lock:
            self._request_token()

    def _request_token(self) -> None:
        """A new token by the client-credentials grant (the caller holds the token lock)."""
        measured = metrics()
        try:
            with timed_call(measured.tis_calls, measured.tis_call_duration, "token") as outcome:
                self._session.fetch_token(timeout=(self.settings.connect_timeout, self.settings.read_timeout))
                outcome.append("success")
        except requests.RequestException as error:
            raise TisUnavailable(f"the TIS token endpoint did not answer ({type(error).__name__})") from None
        except OAuthError as error:
            raise TisUnavailable(f"TIS's identity provider refused Reval's client: {error.error}") from None


def _outcome(status: int) -> str:
    """A TIS answer as the metrics count it: a handful of outcomes, not every status."""
    if status == HTTPStatus.OK:
        return "success"
    if status == HTTPStatus.NOT_FOUND:
        return "not_found"
    if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return "error"
    return "refused"


def _retried_problem(response: requests.Response, what: str, path: str, not_found_is_deletion: bool) -> RetryLater:
    """A failed answer worth retrying, with the seconds TIS asked to wait; raises PersonDeleted or
    TisUnavailable for one that is not."""
    if response.status_code == HTTPStatus.NOT_FOUND and not_found_is_deletion:
        raise PersonDeleted(path)
    if response.status_code not in RETRIED_STATUSES:
        raise TisUnavailable(f"{what}: HTTP {response.status_code}")
    return RetryLater(f"HTTP {response.status_code}", _seconds(response.headers.get("Retry-After")))


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After as seconds (TIS sends delta-seconds); None when absent or unreadable."""
    if retry_after is None:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        return None
