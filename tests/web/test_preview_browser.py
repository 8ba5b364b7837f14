"""The rule preview in a real browser, at a desk (1280 by 900) and on a phone (390 by 844): an
admin asks who would move on a day to come, opens a group's doctors, sorts and pages them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.factories import AS_OF, EAST_OF_ENGLAND
from tests.web import test_browser
from tests.web.conftest import EAST_CONNECTED
from tests.web.test_browser import assert_accessible, sign_in
from tests.web.test_filters_browser import type_date
from tests.web.test_layout import SIZES, assert_fits

browser_type_launch_args = test_browser.browser_type_launch_args
artifacts = test_browser.artifacts
site = test_browser.site
page = test_browser.page

LATER = AS_OF + timedelta(days=301)  # every programme of the dataset has ended


@pytest.mark.parametrize("width", SIZES)
def test_an_admin_previews_who_would_move_and_opens_a_group(page, site, artifacts, width):
    page.set_viewport_size(SIZES[width])
    sign_in(page, site)
    page.goto(site + "/rules")
    page.get_by_role("link", name="Preview who the next sync would move").click()
    expect(page.get_by_role("heading", name="Preview the rules", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="No doctor would move", level=2)).to_be_visible()

    type_date(page, "Decide as of", "31", "2", "2027")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    expect(page.get_by_role("link", name="The date to decide as of must be a real date")).to_be_visible()
    page.screenshot(path=artifacts / f"preview-error-{width}.png", full_page=True)
    assert_accessible(page)

    type_date(page, "Decide as of", str(LATER.day), str(LATER.month), str(LATER.year))
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.get_by_role("heading", name="would move", level=2)).to_be_visible()
    assert_fits(page, width, "preview")
    page.screenshot(path=artifacts / f"preview-{width}.png", full_page=True)
    assert_accessible(page)

    page.get_by_role("link", name=f"{len(EAST_CONNECTED)} doctors of East of England ({EAST_OF_ENGLAND})").click()
    expect(page.get_by_role("heading", name="Doctors who would move", level=1)).to_be_visible()
    numbers = page.locator("#preview-doctors tbody td[data-label='GMC number'] a")
    expect(numbers).to_have_text(sorted(EAST_CONNECTED)[:20])
    page.get_by_role("link", name="GMC number, highest first").click()
    expect(numbers).to_have_text(sorted(EAST_CONNECTED, reverse=True)[:20])
    page.get_by_role("link", name="Next").click()
    expect(numbers).to_have_text(sorted(EAST_CONNECTED, reverse=True)[20:])
    if width == "desktop":  # the headers sort too, where the screen shows them
        page.get_by_role("link", name="GMC number", exact=True).click()
        expect(numbers).to_have_text(sorted(EAST_CONNECTED)[:20])
    assert_fits(page, width, "preview-doctors")
    page.screenshot(path=artifacts / f"preview-doctors-{width}.png", full_page=True)
    assert_accessible(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download these doctors (CSV)").click()
    assert download.value.suggested_filename == f"reval-preview-{LATER.isoformat()}.csv"
