"""A doctor's History in words an admin uses: GMC requests read "Connect to East of England,
asked by Ann Admin, reason: ...", bodies by name, queues and reasons in words; no action codes,
body codes or ISO dates. ``reval history`` keeps its own lines (tests/test_cli.py)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from reval.gmc.codes import CHANGE_REASONS
from reval.gmc.simulator import InjectedFault
from reval.rules import DEFAULT_RULE_TABLE
from reval.web.presenters import HistoryWords, event_sentence
from tests.factories import EAST_OF_ENGLAND
from tests.web import test_browser
from tests.web.conftest import EAST_MISMATCH, EAST_NOT_CONNECTED
from tests.web.test_browser import assert_accessible, sign_in
from tests.web.test_layout import SIZES, assert_fits, connect_refused_by_gmc

browser_type_launch_args = test_browser.browser_type_launch_args
artifacts = test_browser.artifacts
site = test_browser.site
page = test_browser.page

CODES = re.compile(rf"\b(ADD|REMOVE|DISCREPANCY|CONNECTED|(?i:{EAST_OF_ENGLAND}))\b|\b\d{{4}}-\d{{2}}-\d{{2}}\b")
ASKED = "Connect to East of England, asked by Ann Admin, reason: the doctor has a connection with this designated body"


@pytest.mark.parametrize("width", SIZES)
def test_the_history_reads_as_sentences(page, site, artifacts, gmc_connect, national, width):
    page.set_viewport_size(SIZES[width])
    refused, accepted = EAST_NOT_CONNECTED[0], EAST_MISMATCH[0]
    gmc_connect.state.faults.append(InjectedFault("return-code", gmc_number=refused, return_code="106", times=1))
    sign_in(page, site, role="National")  # still sees a doctor after disconnecting them
    connect_refused_by_gmc(page, site, refused)

    page.goto(f"{site}/doctors/{refused}?body={EAST_OF_ENGLAND}")
    history = page.locator(".app-timeline")
    expect(history.locator("li", has_text=ASKED)).to_have_count(2)  # asked, then refused
    expect(history.locator("li", has_text=ASKED + ". GMC did not make the change: ")).to_contain_text(
        "revalidation lock"
    )
    expect(history).to_contain_text("Placed in Discrepancies (")
    entries = history.locator("li").all_inner_texts()
    assert not [entry for entry in entries if CODES.search(entry)], entries
    assert_fits(page, width, "doctor history")
    page.screenshot(path=artifacts / f"{width}-doctor-history.png", full_page=True)
    history.screenshot(path=artifacts / f"{width}-doctor-history-timeline.png")
    assert_accessible(page)

    page.goto(f"{site}/actions/disconnect?body={EAST_OF_ENGLAND}&doctor={accepted}")
    page.get_by_label("3: the doctor does not have a connection with this designated body").check(force=True)
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.locator(".nhsuk-notification-banner, .nhsuk-card")).not_to_have_count(0)
    page.goto(f"{site}/doctors/{accepted}?body={EAST_OF_ENGLAND}")
    history = page.locator(".app-timeline")
    expect(history).to_contain_text(
        "Disconnect from East of England, asked by Ann Admin, reason: the doctor does not have a connection"
    )
    expect(history).to_contain_text("Disconnected from East of England at GMC, asked by Ann Admin")
    entries = history.locator("li").all_inner_texts()
    assert not [entry for entry in entries if CODES.search(entry)], entries


def test_archiving_and_restoring_read_as_sentences():
    words = HistoryWords(str, DEFAULT_RULE_TABLE.reason_label, CHANGE_REASONS)
    archived = SimpleNamespace(
        kind="ARCHIVED",
        source="SYNC",
        old={"queue": "DISCREPANCY", "reason": "NOT_CONNECTED"},
        new={"archivedOn": "2027-12-26"},
        detail="no GMC connection, no TIS person and no change for 365 days",
    )
    restored = SimpleNamespace(kind="RESTORED", source="SYNC", old={"archivedOn": "2027-12-26"}, new={}, detail=None)
    assert event_sentence(archived, words) == (
        f"Archived on 26 December 2027, from Discrepancies ({DEFAULT_RULE_TABLE.reason_label('NOT_CONNECTED')}): "
        "no GMC connection, no TIS person and no change for 365 days"
    )
    assert event_sentence(restored, words) == (
        "Restored from the archive (archived on 26 December 2027): back at GMC or in TIS"
    )
