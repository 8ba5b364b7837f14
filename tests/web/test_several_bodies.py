"""An admin or viewer of several designated bodies: development sign-in offers them as
checkboxes (as a real sign-in's claim can list several), and each queue page names its body and
switches to any other of theirs in one click, each with its Discrepancies count."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import EAST_OF_ENGLAND, WESSEX
from tests.web import test_browser
from tests.web.conftest import csrf_token
from tests.web.test_browser import assert_accessible
from tests.web.test_layout import SIZES, assert_fits

browser_type_launch_args = test_browser.browser_type_launch_args
artifacts = test_browser.artifacts
site = test_browser.site
page = test_browser.page


def dev_sign_in(client, role: str, bodies: list[str]):
    form = client.get("/auth/dev")
    return client.post(
        "/auth/dev",
        data={"csrf_token": csrf_token(form.text), "name": "Ann Admin", "role": role, "designated_body": bodies},
    )


def discrepancies_count(client, body: str) -> int:
    tab = client.get(f"/queues/discrepancies?body={body}").text
    found = re.search(r"Discrepancies \((\d+)\)", tab)
    assert found is not None, tab
    return int(found[1])


def test_an_admin_of_two_bodies_sees_each_with_its_discrepancies(web, national):
    client = web.test_client()
    assert dev_sign_in(client, "admin", [EAST_OF_ENGLAND, WESSEX]).status_code == 302

    html = client.get("/queues/connected").text
    start = html.index('aria-label="Your designated bodies"')
    switcher = html[start : html.index("</nav>", start)]
    for body, name in ((EAST_OF_ENGLAND, "East of England"), (WESSEX, "Wessex")):
        count = discrepancies_count(client, body)
        assert f"/queues/discrepancies?body={body}" in switcher
        assert re.search(rf"{name}</a>\s*<span[^>]*>{count} discrepanc", switcher), switcher
    assert discrepancies_count(client, EAST_OF_ENGLAND) > 0
    assert client.get(f"/queues/hidden?body={WESSEX}").status_code == 200  # both are theirs


def test_one_body_or_a_national_user_has_no_switcher(web, national):
    admin = web.test_client()
    assert dev_sign_in(admin, "admin", [EAST_OF_ENGLAND]).status_code == 302
    assert "Your designated bodies" not in admin.get("/queues/discrepancies").text
    assert admin.get(f"/queues/discrepancies?body={WESSEX}").status_code == 404  # one body only

    nat = web.test_client()
    assert dev_sign_in(nat, "national", [WESSEX]).status_code == 302
    assert "Your designated bodies" not in nat.get("/queues/discrepancies").text


def test_a_national_user_chooses_only_the_body_to_land_on(web, national):
    refused = dev_sign_in(web.test_client(), "national", [WESSEX, EAST_OF_ENGLAND])
    assert refused.status_code == 422
    assert "choose only the one to land on" in refused.text


def test_a_body_that_is_not_configured_is_refused(web, national):
    refused = dev_sign_in(web.test_client(), "viewer", [EAST_OF_ENGLAND, "1-NOSUCH"])
    assert refused.status_code == 422
    assert "Select a designated body" in refused.text


@pytest.mark.parametrize("width", SIZES)
def test_an_admin_of_two_bodies_switches_in_one_click(page, site, artifacts, national, width):
    page.set_viewport_size(SIZES[width])
    page.goto(site + "/")
    page.get_by_label("Name").fill("Ann Admin")
    page.get_by_label("Admin", exact=True).check()
    page.get_by_label("Designated body").select_option(EAST_OF_ENGLAND)
    page.get_by_role("group", name="More designated bodies").get_by_label("Wessex").check()
    assert_fits(page, width, "sign-in with several bodies")
    page.screenshot(path=artifacts / f"{width}-sign-in-several-bodies.png", full_page=True)
    page.get_by_role("button", name="Sign in", exact=True).click()

    switcher = page.get_by_role("navigation", name="Your designated bodies")
    expect(page.locator(".nhsuk-caption-l")).to_contain_text("East of England")
    expect(switcher.get_by_role("link")).to_have_text(["East of England", "Wessex"])
    expect(switcher.locator("[aria-current=page]")).to_have_text("East of England")
    assert_fits(page, width, "queue with the body switcher")
    page.screenshot(path=artifacts / f"{width}-several-bodies.png", full_page=True)
    assert_accessible(page)

    switcher.get_by_role("link", name="Wessex").click()
    expect(page.locator(".nhsuk-caption-l")).to_contain_text("Wessex")
    expect(page.get_by_role("heading", name="Discrepancies", level=1)).to_be_visible()
    expect(switcher.locator("[aria-current=page]")).to_have_text("Wessex")
    assert f"body={WESSEX}" in page.url

    page.goto(f"{site}/actions/hide?body={WESSEX}&doctor=2100001")  # a confirmation names its body
    expect(page.locator(".nhsuk-caption-l")).to_have_text(f"Wessex {WESSEX}")
    expect(page.locator("input[name=body]")).to_have_value(WESSEX)
    assert_fits(page, width, "confirmation for the second body")
    page.screenshot(path=artifacts / f"{width}-several-bodies-confirmation.png", full_page=True)
