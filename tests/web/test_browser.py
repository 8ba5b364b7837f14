"""The UI in a real browser (Debian's Chromium, driven by Playwright), as an admin uses it: sign
in, work the tabs, search, filter, sort, page, open a doctor, hide, connect and disconnect at the
GMC Connect simulator, see a refused change in red and resend it, download the view. Every page
type is checked with axe, and each tab is saved as a screenshot."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from reval.app import create_app
from reval.extensions import database
from reval.gmc.simulator import InjectedFault
from tests.conftest import served
from tests.factories import EAST_OF_ENGLAND, gmc_doctor
from tests.web.conftest import EAST_CONNECTED, EAST_MISMATCH, EAST_NOT_CONNECTED

CHROMIUM = "/usr/bin/chromium"
AXE = resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()


@pytest.fixture(scope="session")
def browser_type_launch_args():
    if not Path(CHROMIUM).exists():  # a failure, not a skip: these tests are part of the suite
        pytest.fail(f"the browser tests drive Debian's Chromium at {CHROMIUM}: apt-get install -y chromium")
    return {
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    """Where screenshots go: REVAL_TEST_ARTIFACTS, or a folder of the test run's own."""
    folder = (
        Path(os.environ["REVAL_TEST_ARTIFACTS"])
        if os.environ.get("REVAL_TEST_ARTIFACTS")
        else tmp_path_factory.mktemp("artifacts")
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def site(gmc_app, gmc_connect, national):
    """The web with development sign-in, GMC Connect at the simulator (which lists East of
    England's connected doctors), served on a loopback port."""
    for number in EAST_CONNECTED + EAST_MISMATCH:
        gmc_connect.state.lists[EAST_OF_ENGLAND][number] = gmc_doctor(number)
    settings = {key: value for key, value in gmc_app.config.items() if key.startswith("REVAL_")}
    app = create_app(settings | {"REVAL_AUTH": "dev", "REVAL_SECURE_COOKIES": "0"})
    with served(app) as address:
        yield address
    database(app).engine.dispose()


@pytest.fixture
def page(context, site) -> Iterator[Page]:
    """A page that reaches nothing off this machine (the NHS.UK font host) and fails the test on
    any script error or Content-Security-Policy violation of the site's own (a 4xx answer the
    test asked for is logged by the browser too, and is no error)."""
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(site) else route.abort())
    page = context.new_page()
    errors: list[str] = []

    def on_console(message) -> None:
        if (
            message.type == "error"
            and message.location.get("url", "").startswith(site)
            and not message.text.startswith("Failed to load resource: the server responded with a status of 4")
        ):
            errors.append(message.text)

    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", on_console)
    yield page
    assert errors == []


def sign_in(page: Page, site: str, role: str = "Admin", body: str = EAST_OF_ENGLAND, name: str = "Ann Admin") -> None:
    page.goto(site + "/")
    expect(page.get_by_role("heading", name="Development sign-in", level=1)).to_be_visible()
    page.get_by_label("Name").fill(name)
    page.get_by_label(role, exact=True).check()
    page.get_by_label("Designated body").select_option(body)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Discrepancies", level=1)).to_be_visible()


def assert_accessible(page: Page) -> None:
    """No serious or critical axe violations on the page as it stands."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)  # not a script tag: the page's CSP refuses inline scripts, rightly
    violations = page.evaluate("axe.run(document).then(result => result.violations)")
    serious = [
        (v["id"], v["impact"], [node["target"] for node in v["nodes"]][:3])
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], serious


def expect_numbers(page: Page, numbers: list[str]) -> None:
    """The table lists exactly these GMC numbers, in this order (waiting for the page to show them)."""
    expect(page.locator("#queue-table tbody tr td:nth-child(3)")).to_have_text(numbers)


def tab(page: Page, label: str):
    return page.get_by_role("navigation", name="Queues").get_by_role("link", name=re.compile(rf"^{label} \(\d+\)$"))


def test_an_admin_signs_in_and_works_each_tab(page, site, artifacts):
    sign_in(page, site)
    assert_accessible(page)
    for label, count in (
        ("Connected", 25),
        ("Discrepancies", 3),
        ("Hidden", 0),
        ("Historic", 0),
        ("Failed GMC updates", 0),
    ):
        tab(page, label).click()
        expect(page.get_by_role("heading", name=label, level=1)).to_be_visible()
        expect(tab(page, label)).to_have_text(f"{label} ({count})")
        page.screenshot(path=artifacts / f"tab-{label.lower().replace(' ', '-')}.png", full_page=True)
        assert_accessible(page)


def test_search_filter_sort_and_page(page, site):
    sign_in(page, site)
    tab(page, "Connected").click()
    expect_numbers(page, EAST_CONNECTED[:20])
    page.get_by_role("link", name="Next").click()
    expect_numbers(page, EAST_CONNECTED[20:])
    expect(page.get_by_text("Showing 21 to 25 of 25 doctors")).to_be_visible()

    page.get_by_role("link", name="Name", exact=True).click()  # sort by name, A to Z
    expect(page.locator("#queue-table th[aria-sort=ascending]")).to_have_text("Name")
    expect_numbers(page, EAST_CONNECTED[:3] + EAST_CONNECTED[5:22])  # the Lovelaces; Okafor and Zephaniah later
    page.get_by_role("link", name="Name", exact=True).click()  # and Z to A
    expect(page.locator("#queue-table tbody tr td:nth-child(3)").first).to_have_text("1100003")  # Zephaniah

    page.get_by_label("GMC number or name").fill("zeph")
    page.get_by_role("button", name="Search", exact=True).click()
    expect_numbers(page, ["1100003"])
    expect(tab(page, "Connected")).to_have_text("Connected (1)")  # the counts follow the search

    tab(page, "Discrepancies").click()
    page.get_by_label("GMC number or name").fill("")
    page.get_by_label("Reason").select_option("DB_MISMATCH")
    page.get_by_role("button", name="Search", exact=True).click()
    expect_numbers(page, EAST_MISMATCH)
    assert "reason=DB_MISMATCH" in page.url  # a view to bookmark and share


def test_a_doctors_page_explains_their_decision(page, site, artifacts):
    sign_in(page, site)
    page.get_by_role("link", name=re.compile("Mbeki")).click()
    expect(page.get_by_role("heading", name="Ada Mbeki", level=1)).to_be_visible()
    fact = page.locator(".app-facts .nhsuk-summary-list__row").filter(
        has=page.get_by_text("Connected to a designated body at GMC", exact=True)
    )
    expect(fact.locator(".nhsuk-summary-list__value")).to_have_text("yes")  # facts as sentences
    page.get_by_text("Details", exact=True).click()  # the rule row, fact names and codes
    expect(page.get_by_text("Row 10 of reval-default@2")).to_be_visible()
    expect(page.get_by_role("cell", name="Matched: connected = yes and current_programme = yes")).to_be_visible()
    page.screenshot(path=artifacts / "doctor.png", full_page=True)
    assert_accessible(page)


def test_hiding_several_doctors_at_once(page, site, artifacts):
    sign_in(page, site)
    tab(page, "Connected").click()
    page.get_by_label(f"Select Lovelace, Ada, GMC number {EAST_CONNECTED[0]}").check(force=True)
    page.get_by_label(f"Select Lovelace, Ada, GMC number {EAST_CONNECTED[1]}").check(force=True)
    page.get_by_role("button", name="Hide", exact=True).click()

    expect(page.get_by_role("heading", name="Hide doctors")).to_be_visible()
    expect(page.get_by_role("heading", name="2 doctors")).to_be_visible()
    page.get_by_role("button", name="Confirm", exact=True).click()  # no reason yet
    expect(page.get_by_text("There is a problem")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Reason").fill("on parental leave")
    page.screenshot(path=artifacts / "confirm-hide.png", full_page=True)
    page.get_by_role("button", name="Confirm", exact=True).click()

    expect(page.get_by_role("heading", name="What happened")).to_be_visible()
    expect(page.get_by_text("Done")).to_have_count(2)
    assert_accessible(page)
    page.get_by_role("link", name="Back to the queues").click()
    expect(tab(page, "Hidden")).to_have_text("Hidden (2)")
    expect(tab(page, "Connected")).to_have_text("Connected (23)")


def test_select_all_ticks_every_row_on_the_page(page, site):
    sign_in(page, site)
    tab(page, "Discrepancies").click()
    page.locator("[data-nhsuk-button-init]").first.wait_for()  # the page's script has run
    page.get_by_label("Select every doctor on this page").check(force=True)
    expect(page.locator('input[name="doctor"]:checked')).to_have_count(3)
    page.get_by_role("button", name="Hide", exact=True).click()  # (Unhide is only on the Hidden tab)
    expect(page.get_by_role("heading", name="3 doctors")).to_be_visible()


def test_connecting_then_disconnecting_a_doctor_at_gmc(page, site, gmc_connect):
    number = EAST_NOT_CONNECTED[0]
    sign_in(page, site)
    page.get_by_role("link", name=re.compile("Nakamura")).click()
    page.get_by_role("button", name="Connect", exact=True).click()
    page.get_by_label("1: the doctor has a connection with this designated body").check(force=True)
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_text("GMC made the change")).to_be_visible(timeout=15_000)
    assert number in gmc_connect.state.lists[EAST_OF_ENGLAND]

    page.get_by_role("link", name=number).click()
    expect(page.get_by_role("heading", name="Decision")).to_be_visible()
    expect(page.locator(".nhsuk-summary-list").first).to_contain_text("Connected")
    page.get_by_role("button", name="Disconnect", exact=True).click()
    page.get_by_label("3: the doctor does not have a connection with this designated body").check(force=True)
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_text("GMC made the change")).to_be_visible(timeout=15_000)
    assert number not in gmc_connect.state.lists[EAST_OF_ENGLAND]


def test_a_change_gmc_refuses_shows_in_red_and_can_be_resent(page, site, gmc_connect, artifacts):
    number = EAST_NOT_CONNECTED[0]
    gmc_connect.state.faults.append(InjectedFault("return-code", gmc_number=number, return_code="106", times=1))
    sign_in(page, site)
    page.get_by_role("link", name=re.compile("Nakamura")).click()
    page.get_by_role("button", name="Connect", exact=True).click()
    page.get_by_label("1: the doctor has a connection with this designated body").check(force=True)
    page.get_by_role("button", name="Confirm", exact=True).click()
    failed = page.locator(".app-failed", has_text="revalidation lock")
    expect(failed).to_be_visible(timeout=15_000)
    assert_accessible(page)

    page.get_by_role("link", name="Back to the queues").click()
    tab(page, "Failed GMC updates").click()
    expect(tab(page, "Failed GMC updates")).to_have_text("Failed GMC updates (1)")
    expect(page.locator("#queue-table").get_by_text("GMC update failed")).to_be_visible()
    page.screenshot(path=artifacts / "tab-failed-gmc-updates-with-one.png", full_page=True)

    page.locator("#queue-table tbody a").first.click()
    expect(page.get_by_text("A GMC update failed")).to_be_visible()
    page.get_by_role("button", name=re.compile("Resend")).click()
    expect(page.get_by_text("GMC made the change")).to_be_visible(timeout=15_000)
    assert number in gmc_connect.state.lists[EAST_OF_ENGLAND]
    page.get_by_role("link", name="Back to the queues").click()
    expect(tab(page, "Failed GMC updates")).to_have_text("Failed GMC updates (0)")


def test_download_csv_of_the_current_view(page, site):
    sign_in(page, site)
    tab(page, "Connected").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    with open(download.value.path(), newline="") as downloaded:
        rows = list(csv.DictReader(downloaded))
    assert [row["GMC number"] for row in rows] == EAST_CONNECTED  # every page, not just the first


def test_runs_rules_and_errors_read_well(page, site, artifacts, national):
    sign_in(page, site, role="National")
    run = national.run_id
    for path, heading, name in (
        ("/runs", "Sync runs", "runs"),
        (f"/runs/{run}", f"Run {run}", "run"),
        ("/rules", "How Reval decides", "rules"),
        ("/doctors/0000001", "Page not found", "not-found"),
    ):
        page.goto(site + path)
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        page.screenshot(path=artifacts / f"{name}.png", full_page=True)
        assert_accessible(page)
    page.goto(site + "/queues/unassigned")
    expect(tab(page, "Unassigned")).to_have_text("Unassigned (1)")
    assert_accessible(page)


def test_the_sign_in_page_is_accessible(context, site):
    page = context.new_page()
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(site) else route.abort())
    page.goto(site + "/auth/dev")
    assert_accessible(page)
    page.get_by_role("button", name="Sign in", exact=True).click()  # nothing filled in
    expect(page.get_by_text("There is a problem")).to_be_visible()
    assert_accessible(page)


def test_a_held_back_run_an_abandoned_run_and_a_rejected_record_read_well(
    page, site, artifacts, national, sessions, files
):
    """What an operator and an admin see when the sync protected them: the guard's reason on the
    run, an abandoned run in the list, and a doctor whose only TIS record was rejected."""
    from reval.clock import utcnow
    from reval.models import SyncRun
    from reval.reconcile.sync import GmcInput, TisInput, run_sync
    from tests.factories import AS_OF, WESSEX, gmc_snapshot, person, programme, tis_snapshot

    with sessions.begin() as session:
        session.add(
            SyncRun(
                started_at=utcnow(),
                finished_at=utcnow(),
                as_of=AS_OF,
                status="ABANDONED",
                rule_table="reval-default@2",
                rejected_records=0,
                holder="worker-2 pid 4242",
                error="abandoned: the process running it stopped before it finished",
            )
        )
    broken = person("1000099", programme(WESSEX, start="31/02/2025"), person_id=99)
    lists = dict(national.gmc_lists)
    lists[EAST_OF_ENGLAND] = lists[EAST_OF_ENGLAND] + [gmc_doctor("1000099")]
    held = run_sync(
        sessions,
        as_of=AS_OF,
        gmc=GmcInput.from_file(gmc_snapshot(files / "gmc2.json", lists)),
        tis=TisInput.from_file(tis_snapshot(files / "empty.json", [])),
    )
    assert held["status"] == "PARTIAL"
    run_sync(
        sessions,
        as_of=AS_OF,
        gmc=GmcInput.from_file(files / "gmc2.json"),
        tis=TisInput.from_file(tis_snapshot(files / "tis2.json", [*national.people, broken])),
    )

    sign_in(page, site, role="National")
    page.goto(site + "/runs")
    expect(page.get_by_text("Abandoned")).to_be_visible()
    page.screenshot(path=artifacts / "runs-with-abandoned.png", full_page=True)
    page.goto(site + f"/runs/{held['syncRunId']}")
    expect(page.get_by_text(re.compile("held back: it would delete"))).to_be_visible()
    page.screenshot(path=artifacts / "run-held-back.png", full_page=True)
    assert_accessible(page)
    page.goto(site + "/doctors/1000099")
    expect(page.get_by_text("TIS person 99: record rejected")).to_be_visible()
    expect(page.get_by_text("TIS record rejected").first).to_be_visible()
    page.screenshot(path=artifacts / "doctor-rejected-record.png", full_page=True)
    assert_accessible(page)
