"""Every page type fits the screen, at a desk (1280 by 900) and on a phone (390 by 844): no sideways
scrolling, every column of a queue on screen at 1280 px, and no serious axe violation at either
width. Each page is saved as a screenshot per width."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from reval.gmc.simulator import InjectedFault
from tests.factories import EAST_OF_ENGLAND
from tests.web import test_browser
from tests.web.conftest import EAST_MISMATCH, EAST_NOT_CONNECTED
from tests.web.test_browser import assert_accessible, sign_in

# The browser, the live site and the screenshot folder, as the other browser tests have them.
browser_type_launch_args = test_browser.browser_type_launch_args
artifacts = test_browser.artifacts
site = test_browser.site
page = test_browser.page

SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
QUEUE_HEADINGS = (
    "Name",
    "GMC number",
    "GMC designated body",
    "Programme owner",
    "Programme",
    "Membership type",
    "Start",
    "End",
    "GMC submission date",
    "Reason",
    "Last change",
    "Last changed by",
)
TABS = ("connected", "discrepancies", "hidden", "historic", "failed-updates", "unassigned")


def assert_fits(page: Page, width: str, name: str) -> None:
    """Nothing wider than the screen; at a desk, every table header within it."""
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{name} at {width}: {widths[0]} px wide in a {widths[1]} px window"
    if width == "desktop":
        beyond = page.evaluate(
            """[...document.querySelectorAll('th')]
                 .filter(th => th.getBoundingClientRect().right > window.innerWidth + 0.5)
                 .map(th => th.textContent.trim())"""
        )
        assert beyond == [], f"{name}: headers right of the screen: {beyond}"


def connect_refused_by_gmc(page: Page, site: str, number: str) -> str:
    """Asks GMC to connect a doctor (GMC refuses it) and returns the results page's address."""
    page.goto(f"{site}/actions/connect?body={EAST_OF_ENGLAND}&doctor={number}")
    page.get_by_label("1: the doctor has a connection with this designated body").check(force=True)
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.locator(".app-failed", has_text="revalidation lock")).to_be_visible(timeout=15_000)
    return page.url


def forbidden(page: Page, site: str) -> None:
    """A viewer's hide, sent from their own page with its token: refused with 403."""
    page.goto(site + f"/queues/connected?body={EAST_OF_ENGLAND}")
    page.evaluate(
        """([body, doctor]) => {
             const form = document.createElement('form');
             form.method = 'post';
             form.action = '/actions/hide';
             const token = document.querySelector('input[name=csrf_token]').value;
             for (const [name, value] of [['csrf_token', token], ['body', body], ['doctor', doctor], ['reason', 'x']]) {
               const input = document.createElement('input');
               input.type = 'hidden'; input.name = name; input.value = value;
               form.append(input);
             }
             document.body.append(form);
             form.submit();
           }""",
        [EAST_OF_ENGLAND, EAST_MISMATCH[0]],
    )
    expect(page.get_by_role("heading", name="You cannot do this", level=1)).to_be_visible()


@pytest.mark.parametrize("width", SIZES)
def test_every_page_type_fits_the_screen(page, site, artifacts, gmc_connect, national, width):
    page.set_viewport_size(SIZES[width])
    number = EAST_NOT_CONNECTED[0]
    gmc_connect.state.faults.append(InjectedFault("return-code", gmc_number=number, return_code="106", times=1))

    page.goto(site + "/auth/dev")
    assert_fits(page, width, "sign-in")
    page.screenshot(path=artifacts / f"{width}-sign-in.png", full_page=True)
    assert_accessible(page)
    sign_in(page, site, role="National")

    shots: list[tuple[str, str]] = [
        (f"/actions/hide?body={EAST_OF_ENGLAND}&doctor={EAST_MISMATCH[0]}&doctor={number}", "confirmation")
    ]
    shots.append((connect_refused_by_gmc(page, site, number), "results"))
    shots += [(f"/queues/{tab}?body={EAST_OF_ENGLAND}", f"tab-{tab}") for tab in TABS]
    shots += [
        (f"/doctors/{number}?body={EAST_OF_ENGLAND}", "doctor"),
        (f"/doctors/{EAST_MISMATCH[0]}?body={EAST_OF_ENGLAND}", "doctor-mismatch"),
        ("/runs", "runs"),
        (f"/runs/{national.run_id}", "run"),
        ("/rules", "rules"),
        ("/doctors/0000001", "not-found"),
    ]
    for path, name in shots:
        page.goto(path if path.startswith("http") else site + path)
        expect(page.locator("h1")).to_be_visible()
        assert_fits(page, width, name)
        page.screenshot(path=artifacts / f"{width}-{name}.png", full_page=True)
        assert_accessible(page)
    expect(page.get_by_role("heading", name="Page not found", level=1)).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site, role="Viewer")
    forbidden(page, site)
    assert_fits(page, width, "forbidden")
    page.screenshot(path=artifacts / f"{width}-forbidden.png", full_page=True)
    assert_accessible(page)


def test_the_queue_table_is_a_card_per_doctor_on_a_phone(page, site, national):
    page.set_viewport_size(SIZES["phone"])
    sign_in(page, site)
    table = page.locator("#queue-table")
    expect(table).to_have_class(re.compile(r"\bnhsuk-table-responsive\b"))
    cells = table.locator("tbody tr").first.locator("td[data-label]")
    expect(cells).to_have_count(len(QUEUE_HEADINGS))
    labels = [cells.nth(i).get_attribute("data-label") for i in range(len(QUEUE_HEADINGS))]
    assert labels == list(QUEUE_HEADINGS)
    gmc_number = (
        "getComputedStyle(document.querySelector('#queue-table tbody td[data-label]:nth-child(3)'), '::before').content"
    )
    assert "GMC number" in page.evaluate(gmc_number)  # each cell names its column on a phone
    expect(table.locator("thead")).to_have_css("position", "absolute")  # the header row is for screen readers

    page.set_viewport_size(SIZES["desktop"])
    assert page.evaluate(gmc_number) == "none"
    expect(table.locator("thead")).not_to_have_css("position", "absolute")
