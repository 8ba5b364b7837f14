"""The access audit as a national user reads it, at a desk (1280 by 900) and on a phone (390 by
844): after an admin opened a doctor's page, the record is there; the filters narrow it; a wrong
GMC number is named in the error summary; the page fits and has no serious axe violation."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.web import test_browser
from tests.web.conftest import EAST_MISMATCH
from tests.web.test_browser import assert_accessible, sign_in
from tests.web.test_layout import SIZES, assert_fits

browser_type_launch_args = test_browser.browser_type_launch_args
artifacts = test_browser.artifacts
site = test_browser.site
page = test_browser.page


@pytest.mark.parametrize("width", SIZES)
def test_a_national_user_finds_who_viewed_a_doctor(page, site, artifacts, width):
    page.set_viewport_size(SIZES[width])
    sign_in(page, site)
    page.goto(f"{site}/doctors/{EAST_MISMATCH[0]}")
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site, role="National", name="Nina National")
    page.get_by_role("link", name="Audit", exact=True).click()
    expect(page.get_by_role("heading", name="Access audit", level=1)).to_be_visible()
    row = page.locator("tbody tr").filter(has_text="Ann Admin")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"Record of {EAST_MISMATCH[0]}")
    expect(row).to_contain_text("Web")
    assert_fits(page, width, "audit")
    assert_accessible(page)
    page.screenshot(path=artifacts / f"audit-{width}.png", full_page=True)

    page.get_by_label("Doctor's GMC number").fill("12345")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Enter a GMC number of 7 digits"))).to_be_visible()
    assert_fits(page, width, "audit with an error")
    assert_accessible(page)
    page.screenshot(path=artifacts / f"audit-error-{width}.png", full_page=True)

    page.get_by_label("Doctor's GMC number").fill(EAST_MISMATCH[1])
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_text("No views match.")).to_be_visible()
