"""The body you chose: a national user lands on the body chosen at sign-in, and choosing another
body is part of the search form (changing it and pressing Search shows that body, searched)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import EAST_OF_ENGLAND, WESSEX
from tests.web import test_browser
from tests.web.conftest import EAST_MISMATCH
from tests.web.test_browser import assert_accessible, expect_numbers, sign_in
from tests.web.test_layout import SIZES, assert_fits

browser_type_launch_args = test_browser.browser_type_launch_args
artifacts = test_browser.artifacts
site = test_browser.site
page = test_browser.page


@pytest.mark.parametrize("width", SIZES)
def test_a_national_user_lands_on_their_body_and_switches_with_search(page, site, artifacts, national, width):
    page.set_viewport_size(SIZES[width])
    page.goto(site + "/")
    page.get_by_label("Name").fill("Nia National")
    page.get_by_label("National", exact=True).check()
    page.get_by_label("Designated body").select_option(WESSEX)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator(".nhsuk-caption-l")).to_contain_text("Wessex")  # not the first body in the list

    page.get_by_label("Designated body").select_option(EAST_OF_ENGLAND)
    page.get_by_label("GMC number or name").fill("mbeki")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator(".nhsuk-caption-l")).to_contain_text("East of England")
    expect_numbers(page, [EAST_MISMATCH[0]])
    assert f"body={EAST_OF_ENGLAND}" in page.url
    assert_fits(page, width, "queue of a national user")
    page.screenshot(path=artifacts / f"{width}-national-switched.png", full_page=True)
    assert_accessible(page)


def test_an_admin_of_one_body_lands_on_it(page, site, national):
    sign_in(page, site)
    expect(page.locator(".nhsuk-caption-l")).to_contain_text("East of England")
    expect(page.get_by_label("Designated body")).to_have_count(0)  # nothing to choose
