"""Words an admin uses: errors in the NHS.UK style with dates as people write them, dates in long
form, bodies by name with their code as GMC writes it, GMC requests in words, and a results page
that names the doctors, says what happened and goes back to where the admin was."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.factories import EAST_OF_ENGLAND
from tests.web import test_browser
from tests.web.conftest import EAST_CONNECTED, EAST_NOT_CONNECTED
from tests.web.test_browser import assert_accessible, sign_in, tab
from tests.web.test_layout import SIZES, assert_fits

browser_type_launch_args = test_browser.browser_type_launch_args
artifacts = test_browser.artifacts
site = test_browser.site
page = test_browser.page

ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
LONG_DATE = re.compile(
    r"\b\d{1,2} (January|February|March|April|May|June|July|August|September|October|November|December) \d{4}\b"
)


def until(page: Page, day: str, month: str, year: str) -> None:
    page.get_by_label("Day").fill(day)
    page.get_by_label("Month").fill(month)
    page.get_by_label("Year").fill(year)


def expect_error(page: Page, message: str | re.Pattern[str]) -> None:
    expect(page.get_by_role("alert").get_by_role("link", name=message)).to_be_visible()
    expect(page.locator(".nhsuk-error-message", has_text=message)).to_be_visible()


@pytest.mark.parametrize("width", SIZES)
def test_hiding_speaks_as_people_do_and_returns_where_the_admin_was(page, site, artifacts, national, width):
    page.set_viewport_size(SIZES[width])
    sign_in(page, site)
    tab(page, "Connected").click()
    page.get_by_role("link", name="Next").click()
    came_from = page.url
    assert "page=2" in came_from
    for number in EAST_CONNECTED[20:22]:
        page.get_by_label(f"Select Lovelace, Ada, GMC number {number}").check(force=True)
    page.get_by_role("button", name="Hide", exact=True).click()

    page.get_by_role("button", name="Confirm", exact=True).click()
    expect_error(page, "Enter why these doctors need no action from East of England")
    page.get_by_label("Reason").fill("on parental leave")
    until(page, "1", "1", "27")
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect_error(page, "Year must include 4 numbers, for example 2027")  # not the year 27
    until(page, "1", "1", "2020")
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect_error(page, re.compile(rf"Enter a date after {LONG_DATE.pattern}"))
    assert not ISO_DATE.search(page.locator("main").inner_text())
    assert_fits(page, width, "confirmation with errors")
    page.screenshot(path=artifacts / f"{width}-confirmation-errors.png", full_page=True)
    assert_accessible(page)
    until(page, "", "", "")
    page.get_by_role("button", name="Confirm", exact=True).click()

    banner = page.locator(".nhsuk-notification-banner--success")
    expect(banner).to_contain_text("2 doctors hidden")
    expect(page.get_by_role("link", name=f"Ada Lovelace GMC number {EAST_CONNECTED[20]}")).to_be_visible()
    expect(page.get_by_role("cell", name="Done Hidden from East of England")).to_have_count(2)
    main = page.locator("main").inner_text()
    assert "East of England (1-1RSSQ05)" in main and "1-1rssq05" not in main
    assert_fits(page, width, "results")
    page.screenshot(path=artifacts / f"{width}-results-hidden.png", full_page=True)
    assert_accessible(page)
    page.get_by_role("link", name="Back to the queues").click()
    assert page.url == came_from  # the tab, filters and page the admin came from
    expect(tab(page, "Hidden")).to_have_text("Hidden (2)")


def test_a_doctors_gmc_requests_and_dates_read_as_words(page, site, national):
    number = EAST_NOT_CONNECTED[0]
    sign_in(page, site)
    page.goto(f"{site}/actions/connect?body={EAST_OF_ENGLAND}&doctor={number}")
    page.get_by_label("1: the doctor has a connection with this designated body").check(force=True)
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_text("GMC made the change")).to_be_visible(timeout=15_000)
    expect(page.locator(".nhsuk-notification-banner--success")).to_contain_text("1 doctor connected at GMC")

    page.goto(f"{site}/doctors/{number}?body={EAST_OF_ENGLAND}")
    expect(
        page.get_by_role(
            "cell",
            name=re.compile(
                "Connect to East of England, asked by Ann Admin, "
                "reason: the doctor has a connection with this designated body"
            ),
        )
    ).to_be_visible()
    main = page.locator("main").inner_text()
    assert LONG_DATE.search(main)
    assert not re.search(r"\b\d{1,2} (Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}\b", main)


def test_the_explanation_reads_as_sentences_with_the_rules_in_details(page, site, national):
    sign_in(page, site)
    page.goto(f"{site}/doctors/{EAST_NOT_CONNECTED[0]}?body={EAST_OF_ENGLAND}")
    facts = page.locator(".app-facts")
    expect(facts).to_contain_text("Has an F1 placement now")
    assert "current_f1_placement" not in facts.inner_text() and "NOT_CONNECTED" not in facts.inner_text()
    rules = page.get_by_role("table", name="Rules tried")
    expect(rules).to_be_hidden()  # the rule rows, fact names and codes wait in a disclosure
    page.get_by_text("Details", exact=True).click()
    expect(rules).to_be_visible()
    expect(rules).to_contain_text("NOT_CONNECTED")
