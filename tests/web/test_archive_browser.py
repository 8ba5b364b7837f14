"""The archive in a real browser, as a national user reads it at a desk and on a phone: the
doctors nobody holds, with their last queue, out of every queue; and only national users see it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.api.test_changes import sync, without
from tests.factories import AS_OF
from tests.web import test_browser
from tests.web.conftest import UNASSIGNED
from tests.web.test_browser import assert_accessible, sign_in
from tests.web.test_layout import SIZES, assert_fits

browser_type_launch_args = test_browser.browser_type_launch_args
artifacts = test_browser.artifacts
site = test_browser.site
page = test_browser.page


@pytest.fixture
def archived(site, national, sessions, files):
    """A year and more later, the doctor nobody saw has left TIS too: the sync archives them."""
    later = AS_OF + timedelta(days=400)
    summary = sync(sessions, files, without(national, UNASSIGNED), later, "later")
    assert summary["archived"] == 1
    return later


@pytest.mark.parametrize("width", SIZES)
def test_a_national_user_finds_the_archived_doctors(page, site, artifacts, archived, width):
    page.set_viewport_size(SIZES[width])
    sign_in(page, site, role="National")
    page.get_by_role("link", name="Archive", exact=True).click()
    expect(page.get_by_role("heading", name="Archive", level=1)).to_be_visible()
    row = page.locator("table tbody tr")
    expect(row).to_have_count(1)
    expect(row.first).to_contain_text(UNASSIGNED)
    expect(row.first).to_contain_text("Hidden")  # what the last sync before decided: no source holds them
    expect(row.first).to_contain_text(archived.strftime("%-d %B %Y"))
    page.screenshot(path=artifacts / f"archive-{width}.png", full_page=True)
    assert_fits(page, width, "the archive")
    assert_accessible(page)

    page.get_by_role("link", name=UNASSIGNED).click()  # their record and history are kept
    expect(page.get_by_text(f"Archived on {archived.strftime('%-d %B %Y')}: no GMC connection")).to_be_visible()
    # No body sees them, so none can hide them; a connection at GMC would bring them back.
    expect(page.get_by_text("does not see this doctor, so cannot hide them")).to_be_visible()
    expect(page.get_by_role("button", name="Hide", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Connect", exact=True)).to_be_visible()
    expect(page.locator(".app-timeline")).to_contain_text(
        f"Archived on {archived.strftime('%-d %B %Y')}, from Hidden (No programme, never connected): no GMC connection"
    )
    page.screenshot(path=artifacts / f"archived-doctor-{width}.png", full_page=True)
    assert_fits(page, width, "an archived doctor")
    assert_accessible(page)

    page.goto(site + "/queues/unassigned")  # out of the Unassigned queue they were in
    expect(page.get_by_text(UNASSIGNED)).to_have_count(0)


def test_only_national_users_see_the_archive(page, site, archived):
    sign_in(page, site)
    expect(page.get_by_role("link", name="Archive", exact=True)).to_have_count(0)
    response = page.goto(site + "/archive")
    assert response is not None and response.status == 403
