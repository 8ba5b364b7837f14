"""Pagination in the NHS.UK numbered pattern: at a desk 1 … 4 5 6 … 9 with Previous and Next; on
a phone the design system keeps the first, current and last pages with Previous and Next, all on
screen; a page past the end shows the last page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.factories import AS_OF, WESSEX, gmc_doctor, person, programme, sync_snapshots
from tests.web import test_browser
from tests.web.conftest import Dataset, national_dataset
from tests.web.test_browser import assert_accessible, sign_in
from tests.web.test_layout import SIZES, assert_fits

browser_type_launch_args = test_browser.browser_type_launch_args
artifacts = test_browser.artifacts
site = test_browser.site
page = test_browser.page

WESSEX_MORE = [f"22{i:05d}" for i in range(170)]  # with its two others: 172 connected, 9 pages of 20


@pytest.fixture
def national(app, sessions, files) -> Dataset:
    """The web's national dataset, with Wessex connected to 170 more of its trainees."""
    data = national_dataset()
    lists = data.gmc_lists | {WESSEX: data.gmc_lists[WESSEX] + [gmc_doctor(n) for n in WESSEX_MORE]}
    people = data.people + [person(n, programme(WESSEX)) for n in WESSEX_MORE]
    summary = sync_snapshots(sessions, files, lists, people, as_of=AS_OF)
    return Dataset(lists, people, summary["syncRunId"])


def visible_pager(page: Page) -> list[str]:
    """The pager's parts a person sees, in order: Previous, numbers, ellipses (…), Next."""
    parts = page.locator(
        "nav.nhsuk-pagination > .nhsuk-pagination__previous, nav.nhsuk-pagination li, "
        "nav.nhsuk-pagination > .nhsuk-pagination__next"
    )
    return [
        "…" if "ellipsis" in (part.get_attribute("class") or "") else part.inner_text().split("\n")[0].strip()
        for part in parts.all()
        if part.is_visible()
    ]


@pytest.mark.parametrize("width", SIZES)
def test_the_pager_follows_the_nhs_numbered_pattern(page, site, artifacts, national, width):
    page.set_viewport_size(SIZES[width])
    sign_in(page, site, role="Viewer", body=WESSEX)
    page.goto(f"{site}/queues/connected?body={WESSEX}&page=5")
    expect(page.locator("#results-count")).to_contain_text("Showing 81 to 100 of 172 doctors")
    pager = page.get_by_role("navigation", name="Pagination")
    expect(pager.locator("[aria-current=page]")).to_have_text("5")
    if width == "desktop":
        assert visible_pager(page) == ["Previous", "1", "…", "4", "5", "6", "…", "9", "Next"]
    else:  # the design system's phone pattern: first, current and last
        assert visible_pager(page) == ["Previous", "1", "…", "5", "…", "9", "Next"]
    for part in pager.locator("a:visible").all():
        box = part.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= SIZES[width]["width"]
    assert_fits(page, width, "queue page 5")
    pager.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / f"{width}-pagination.png")
    assert_accessible(page)

    pager.get_by_role("link", name="Next").click()
    expect(page.locator("#results-count")).to_contain_text("Showing 101 to 120 of 172 doctors")
    expect(pager.locator("[aria-current=page]")).to_have_text("6")

    page.goto(f"{site}/queues/connected?body={WESSEX}&page=99")  # past the end: the last page
    expect(page.locator("#results-count")).to_contain_text("Showing 161 to 172 of 172 doctors")
    expect(pager.locator("[aria-current=page]")).to_have_text("9")
    assert "page=9" in page.url
    expect(pager.get_by_role("link", name="Next")).to_have_count(0)
    expected = ["Previous", "1", "…", "8", "9"] if width == "desktop" else ["Previous", "1", "…", "9"]
    assert visible_pager(page) == expected
