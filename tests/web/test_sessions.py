"""Sessions end: after REVAL_SESSION_IDLE_MINUTES without a request (default 30), and 8 hours after
signing in however busy; the next page asks the person to sign in and then brings them back."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from reval.app import create_app
from reval.extensions import database
from tests.factories import EAST_OF_ENGLAND
from tests.web.conftest import Browser, csrf_token, send_dev_sign_in

PAGE = "/queues/connected?q=ada"


def sign_in_again(browser: Browser, redirected) -> str:
    """Follows the sign-in redirect, signs in on the form, and returns where it sends them."""
    form = browser.client.get(browser.client.get(redirected.headers["Location"]).headers["Location"])
    assert "You were signed out because you had not used Reval for a while" in form.text
    return send_dev_sign_in(browser.client, form.text).headers["Location"]


def test_a_session_idle_for_longer_than_the_limit_asks_to_sign_in_again(web, national):
    with time_machine.travel("2026-12-06 09:00 +0000", tick=False) as clock:
        admin = Browser(web, "Ann Admin", "admin", EAST_OF_ENGLAND)
        clock.shift(timedelta(minutes=29))
        assert admin.get(PAGE).status_code == 200  # in use: the idle time starts again
        clock.shift(timedelta(minutes=29))
        assert admin.get(PAGE).status_code == 200
        clock.shift(timedelta(minutes=31))
        expired = admin.get(PAGE)
        assert expired.status_code == 302 and expired.headers["Location"].startswith("/auth/sign-in?next=")
        assert sign_in_again(admin, expired) == PAGE
        assert admin.get(PAGE).status_code == 200


def test_a_busy_session_still_ends_eight_hours_after_signing_in(web, national):
    with time_machine.travel("2026-12-06 09:00 +0000", tick=False) as clock:
        admin = Browser(web, "Ann Admin", "admin", EAST_OF_ENGLAND)
        for _ in range(23):  # a page every 20 minutes: 7 hours 40 minutes
            clock.shift(timedelta(minutes=20))
            assert admin.get(PAGE).status_code == 200
        clock.shift(timedelta(minutes=21))
        assert admin.get(PAGE).status_code == 302


def test_the_idle_limit_is_a_setting(app, national):
    settings = {key: value for key, value in app.config.items() if key.startswith("REVAL_")}
    site = create_app(
        settings
        | {"REVAL_AUTH": "dev", "REVAL_SECURE_COOKIES": "0", "REVAL_SESSION_IDLE_MINUTES": "5", "TESTING": True}
    )
    try:
        with time_machine.travel("2026-12-06 09:00 +0000", tick=False) as clock:
            admin = Browser(site, "Ann Admin", "admin", EAST_OF_ENGLAND)
            clock.shift(timedelta(minutes=4))
            assert admin.get(PAGE).status_code == 200
            clock.shift(timedelta(minutes=6))
            assert admin.get(PAGE).status_code == 302
    finally:
        database(site).engine.dispose()


def test_a_form_sent_after_the_session_ended_returns_to_the_page_it_came_from(web, national, sign_in):
    with time_machine.travel("2026-12-06 09:00 +0000", tick=False) as clock:
        admin = Browser(web, "Ann Admin", "admin", EAST_OF_ENGLAND)
        page = admin.get("/queues/discrepancies")
        clock.shift(timedelta(hours=1))
        sent = admin.client.post(
            "/actions/hide",
            data={"csrf_token": csrf_token(page.text)},
            headers={"Referer": "http://localhost/queues/discrepancies?page=1"},
        )
        assert sent.status_code == 302
        assert sign_in_again(admin, sent) == "/queues/discrepancies?page=1"
