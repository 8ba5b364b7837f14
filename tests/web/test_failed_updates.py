"""A failed GMC update is impossible to miss, and one click resends it: beside the request on the
results page, at the top of the doctor's page, and for the ticked rows of the Failed GMC updates
tab (which shows GMC's answer and when it failed). At a desk and on a phone."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from reval.gmc.simulator import InjectedFault
from tests.factories import EAST_OF_ENGLAND
from tests.web import test_browser
from tests.web.test_browser import assert_accessible, sign_in, tab
from tests.web.test_layout import SIZES, assert_fits

browser_type_launch_args = test_browser.browser_type_launch_args
artifacts = test_browser.artifacts
site = test_browser.site
page = test_browser.page

NUMBER = "1300001"  # Nakamura: in East of England's programme, connected nowhere
REFUSAL = "revalidation lock"  # GMC's answer to return code 106


def expect_refused(page: Page) -> None:
    expect(page.locator(".app-failed", has_text=REFUSAL)).to_be_visible(timeout=15_000)


@pytest.mark.parametrize("width", SIZES)
def test_a_failed_update_is_resent_from_results_doctor_page_and_failed_tab(
    page, site, artifacts, gmc_connect, national, width
):
    page.set_viewport_size(SIZES[width])
    gmc_connect.state.faults.append(InjectedFault("return-code", gmc_number=NUMBER, return_code="106", times=3))
    sign_in(page, site)
    page.goto(f"{site}/actions/connect?body={EAST_OF_ENGLAND}&doctor={NUMBER}")
    page.get_by_label("1: the doctor has a connection with this designated body").check(force=True)
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect_refused(page)

    # The results page: Resend beside the failed request.
    page.get_by_role("button", name=re.compile(rf"^Resend request \d+ for {NUMBER}$")).click()
    expect(page.get_by_role("heading", name="What happened")).to_be_visible()
    expect_refused(page)  # refused again: a second injected fault
    assert_fits(page, width, "results with a failure")
    page.screenshot(path=artifacts / f"{width}-results-failed.png", full_page=True)
    assert_accessible(page)

    # The doctor's page: a warning at the top, with GMC's answer and the Resend button.
    page.goto(f"{site}/doctors/{NUMBER}?body={EAST_OF_ENGLAND}")
    callout = page.locator(".nhsuk-card--warning", has_text="A GMC update failed")
    expect(callout).to_contain_text(REFUSAL)
    expect(callout).to_contain_text("GMC did not connect this doctor to East of England")
    resend = callout.get_by_role("button", name="Resend")
    assert resend.bounding_box()["y"] + resend.bounding_box()["height"] <= SIZES[width]["height"]  # no scrolling
    assert_fits(page, width, "doctor with a failure")
    page.screenshot(path=artifacts / f"{width}-doctor-failed.png", full_page=True)
    assert_accessible(page)
    resend.click()
    expect_refused(page)  # and refused a third time

    # The Failed GMC updates tab: GMC's answer and when, and Resend for the ticked rows.
    page.goto(f"{site}/queues/failed-updates?body={EAST_OF_ENGLAND}")
    expect(tab(page, "Failed GMC updates")).to_have_text("Failed GMC updates (1)")
    row = page.locator("#queue-table tbody tr", has_text=NUMBER)
    expect(row.locator(".app-failed-answer")).to_contain_text(REFUSAL)
    expect(row.locator(".app-failed-answer time")).to_be_visible()
    assert_fits(page, width, "failed-updates with a failure")
    page.screenshot(path=artifacts / f"{width}-tab-failed-updates-resend.png", full_page=True)
    assert_accessible(page)
    row.get_by_label(re.compile(f"GMC number {NUMBER}")).check(force=True)
    page.get_by_role("button", name="Resend", exact=True).click()
    expect(page.get_by_role("heading", name="Resend failed GMC updates", level=1)).to_be_visible()
    expect(page.get_by_text(f"{NUMBER}: connect to East of England; GMC said:")).to_be_visible()
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_text("GMC made the change")).to_be_visible(timeout=15_000)
    assert NUMBER in gmc_connect.state.lists[EAST_OF_ENGLAND]
    page.goto(f"{site}/queues/failed-updates?body={EAST_OF_ENGLAND}")
    expect(tab(page, "Failed GMC updates")).to_have_text("Failed GMC updates (0)")


def test_resend_is_offered_only_on_the_failed_updates_tab(page, site, national):
    sign_in(page, site)
    expect(page.get_by_role("button", name="Hide", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Resend", exact=True)).to_have_count(0)
