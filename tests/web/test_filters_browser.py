"""The filters admins have in the national UI, as an admin uses them at a desk (1280 by 900)
and on a phone (390 by 844): what they read is the rows and the counts, and the page still fits."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.web import test_browser
from tests.web.conftest import EAST_MISMATCH, EAST_NOT_CONNECTED
from tests.web.test_browser import assert_accessible, expect_numbers, sign_in, tab
from tests.web.test_layout import SIZES, assert_fits

browser_type_launch_args = test_browser.browser_type_launch_args
artifacts = test_browser.artifacts
site = test_browser.site
page = test_browser.page


def search(page: Page) -> None:
    page.get_by_role("button", name="Search", exact=True).click()


def more_filters(page: Page) -> None:
    """Opens "More filters" (open already when one of them is set)."""
    details = page.locator("details.app-more-filters")
    if details.get_attribute("open") is None:
        page.get_by_text("More filters", exact=True).click()
    expect(page.get_by_label("Last changed by")).to_be_visible()


def type_date(page: Page, legend: str, day: str, month: str, year: str) -> None:
    group = page.get_by_role("group", name=legend)
    group.get_by_label("Day").fill(day)
    group.get_by_label("Month").fill(month)
    group.get_by_label("Year").fill(year)


@pytest.mark.parametrize("width", SIZES)
def test_ready_links_dates_and_programme_narrow_the_rows_and_counts(page, site, artifacts, width):
    page.set_viewport_size(SIZES[width])
    sign_in(page, site)
    expect(page.get_by_role("link", name="Ready for connection (1)")).to_be_visible()
    page.get_by_role("link", name="Ready for disconnection (2)").click()
    expect_numbers(page, EAST_MISMATCH)
    expect(tab(page, "Discrepancies")).to_have_text("Discrepancies (2)")
    expect(tab(page, "Connected")).to_have_text("Connected (0)")  # the filter narrows every count
    page.get_by_role("link", name="All discrepancies").click()
    expect_numbers(page, EAST_MISMATCH + EAST_NOT_CONNECTED)
    assert_fits(page, width, "discrepancies")
    assert_accessible(page)

    more_filters(page)
    type_date(page, "GMC submission date from", "31", "2", "2027")
    search(page)
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    expect(
        page.get_by_role("link", name="GMC submission date from must be a real date, for example 31 12 2027")
    ).to_be_visible()
    expect_numbers(page, EAST_MISMATCH + EAST_NOT_CONNECTED)  # the wrong date narrows nothing
    page.screenshot(path=artifacts / f"filters-date-error-{width}.png", full_page=True)
    assert_fits(page, width, "a wrong date")
    assert_accessible(page)

    more_filters(page)
    type_date(page, "GMC submission date from", "1", "6", "2027")
    search(page)
    expect_numbers(page, EAST_MISMATCH)  # the doctor connected nowhere has no submission date
    expect(page.get_by_role("link", name="Ready for connection (0)")).to_be_visible()
    expect(tab(page, "Connected")).to_have_text("Connected (25)")

    more_filters(page)
    page.get_by_label("Programme", exact=True).select_option("General Practice")
    type_date(page, "GMC submission date from", "", "", "")
    search(page)
    expect_numbers(page, EAST_MISMATCH + EAST_NOT_CONNECTED)
    assert "programme=General+Practice" in page.url  # a view to bookmark and share
    tab(page, "Connected").click()
    expect(page.locator("#queue-table tbody tr").first.locator("td[data-label='Membership type']")).to_have_text(
        "Substantive"
    )
    page.screenshot(path=artifacts / f"filters-connected-{width}.png", full_page=True)
    assert_fits(page, width, "connected, filtered")
