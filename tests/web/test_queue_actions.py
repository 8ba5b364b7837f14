"""Queues that say what each doctor needs: the Hidden tab shows each hide (reason, until, who and
when) with Unhide as its only action, each tab offers only the actions that apply, a doctor not
connected to the body is offered no Disconnect, and a page past the end shows the last page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import EAST_OF_ENGLAND
from tests.web import test_browser
from tests.web.conftest import EAST_CONNECTED, EAST_NOT_CONNECTED
from tests.web.test_browser import assert_accessible, sign_in, tab
from tests.web.test_layout import SIZES, assert_fits
from tests.web.test_words import until

browser_type_launch_args = test_browser.browser_type_launch_args
artifacts = test_browser.artifacts
site = test_browser.site
page = test_browser.page

ACTIONS = {
    "connected": ["Hide", "Disconnect"],
    "discrepancies": ["Hide", "Connect", "Disconnect"],
    "hidden": ["Unhide"],
}


@pytest.mark.parametrize("width", SIZES)
def test_the_hidden_tab_shows_each_hide_and_offers_unhide(page, site, artifacts, national, width):
    page.set_viewport_size(SIZES[width])
    sign_in(page, site)
    page.goto(f"{site}/actions/hide?body={EAST_OF_ENGLAND}&doctor={EAST_CONNECTED[0]}")
    page.get_by_label("Reason").fill("on parental leave")
    until(page, "31", "12", "2030")
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_role("heading", name="What happened")).to_be_visible()

    page.goto(f"{site}/queues/hidden?body={EAST_OF_ENGLAND}")
    hide = page.locator("#queue-table tbody tr", has_text=EAST_CONNECTED[0]).locator(".app-hide")
    expect(hide).to_contain_text(
        re.compile(r"Hidden by Ann Admin, \d{1,2} [A-Z][a-z]+ \d{4} at \d\d:\d\d: on parental leave")
    )
    expect(hide).to_contain_text("Until 31 December 2030")
    assert_fits(page, width, "hidden tab")
    page.screenshot(path=artifacts / f"{width}-tab-hidden-with-one.png", full_page=True)
    assert_accessible(page)
    for name, labels in ACTIONS.items():
        page.goto(f"{site}/queues/{name}?body={EAST_OF_ENGLAND}")
        expect(page.locator("#act-form .nhsuk-button-group .nhsuk-button")).to_have_text(labels)


def test_disconnect_is_offered_only_for_a_doctor_connected_to_the_body(page, site, national):
    sign_in(page, site)
    page.goto(f"{site}/doctors/{EAST_NOT_CONNECTED[0]}?body={EAST_OF_ENGLAND}")
    expect(page.get_by_role("button", name="Connect", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Disconnect", exact=True)).to_have_count(0)
    page.goto(f"{site}/doctors/{EAST_CONNECTED[0]}?body={EAST_OF_ENGLAND}")
    expect(page.get_by_role("button", name="Disconnect", exact=True)).to_be_visible()


def test_a_page_past_the_end_shows_the_last_page(page, site, national):
    sign_in(page, site)
    page.goto(f"{site}/queues/connected?body={EAST_OF_ENGLAND}&page=99999")
    expect(page.get_by_text("Showing 21 to 25 of 25 doctors")).to_be_visible()
    assert "page=2" in page.url
    expect(tab(page, "Connected")).to_have_text("Connected (25)")
