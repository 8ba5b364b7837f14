"""The rule preview in the browser's terms: /rules/preview and its doctors, scoped by the signed-in person's bodies."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from reval.clock import utcnow
from reval.models import SyncRun
from tests.factories import AS_OF, EAST_OF_ENGLAND, WESSEX
from tests.web.conftest import EAST_CONNECTED, WESSEX_CONNECTED

# A year on, every programme of the dataset has ended (they end 300 days after AS_OF).
LATER = AS_OF + timedelta(days=301)


def as_of(day) -> str:
    return day.isoformat()


def count_links(html: str) -> dict[str, str]:
    """Each group's count link by its address: {href: count}."""
    return {
        unescape(href): count
        for href, count in re.findall(r'<a class="nhsuk-link" href="(/rules/preview/doctors\?[^"]+)">(\d+)<', html)
    }


def doctors_on(html: str) -> list[str]:
    return re.findall(r'data-label="GMC number">.*?(?:<a[^>]*>)?(\d{7})', html)


def test_a_national_user_sees_every_bodys_moves_with_counts(sign_in, national):
    response = sign_in("national", EAST_OF_ENGLAND, "Nat National").get(f"/rules/preview?as_of={as_of(LATER)}")
    assert response.status_code == 200
    links = count_links(response.text)
    bodies = {parse_qs(urlsplit(href).query)["body"][0] for href in links}
    assert {EAST_OF_ENGLAND, WESSEX} <= bodies
    east = next(
        href
        for href in links
        if parse_qs(urlsplit(href).query)["body"] == [EAST_OF_ENGLAND] and "from_reason=CONNECTED" in href
    )
    assert links[east] == str(len(EAST_CONNECTED))


def test_an_admin_sees_only_their_bodies_moves(sign_in, national):
    response = sign_in().get(f"/rules/preview?as_of={as_of(LATER)}")
    bodies = {parse_qs(urlsplit(href).query)["body"][0] for href in count_links(response.text)}
    assert bodies == {EAST_OF_ENGLAND}


def test_a_viewer_may_not_preview(sign_in, national):
    assert sign_in("viewer").get("/rules/preview").status_code == 403


def test_today_after_todays_sync_nobody_would_move(sign_in, national):
    response = sign_in().get(f"/rules/preview?as_of={as_of(AS_OF)}")
    assert "No doctor would move" in response.text


def test_each_count_links_to_its_doctors_paged_and_sorted(sign_in, national):
    admin = sign_in()
    links = count_links(admin.get(f"/rules/preview?as_of={as_of(LATER)}").text)
    connected = next(href for href, count in links.items() if count == str(len(EAST_CONNECTED)))
    first = admin.get(connected)
    assert first.status_code == 200
    second = admin.get(connected + "&page=2")
    listed = doctors_on(first.text) + doctors_on(second.text)
    assert listed == sorted(EAST_CONNECTED)
    backwards = doctors_on(admin.get(connected + "&sort=gmc&order=desc").text)
    assert backwards == sorted(EAST_CONNECTED, reverse=True)[:20]


def test_a_groups_doctors_download_as_csv(sign_in, national):
    admin = sign_in()
    links = count_links(admin.get(f"/rules/preview?as_of={as_of(LATER)}").text)
    connected = next(href for href, count in links.items() if count == str(len(EAST_CONNECTED)))
    response = admin.get(connected.replace("/rules/preview/doctors", "/rules/preview/doctors/download"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][0] == "GMC number"
    assert sorted(row[0] for row in rows[1:]) == sorted(EAST_CONNECTED)


def test_an_admin_cannot_list_another_bodys_group(sign_in, national):
    response = sign_in().get(
        f"/rules/preview/doctors?as_of={as_of(LATER)}&from_queue=CONNECTED&from_reason=CONNECTED"
        f"&to_queue=DISCREPANCY&to_reason=PROGRAMME_EXPIRED&body={WESSEX}"
    )
    assert response.status_code == 404
    assert WESSEX_CONNECTED[0] not in response.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("as_of=1999-12-31", "Enter a date from 1 January 2000 to"),
        ("as_of=2026-02-30", "must be a real date"),
        ("as_of[day]=1&as_of[month]=&as_of[year]=2027", "must include a month"),
        ("as_of=next-week", "must be a real date"),
    ],
)
def test_a_wrong_date_is_said_above_the_form(sign_in, national, query, message):
    response = sign_in().get(f"/rules/preview?{query}")
    assert response.status_code == 400
    assert "There is a problem" in response.text and message in response.text


def test_the_date_form_decides_as_of_the_day_typed(sign_in, national):
    response = sign_in().get(
        f"/rules/preview?as_of[day]={LATER.day}&as_of[month]={LATER.month}&as_of[year]={LATER.year}"
    )
    assert response.status_code == 200 and count_links(response.text)


def test_the_rules_page_says_when_the_stored_decisions_were_made_with_other_rules(sign_in, national, sessions):
    admin = sign_in()
    assert "The stored decisions were made with rules" not in admin.get("/rules").text
    with sessions.begin() as session:
        session.execute(update(SyncRun).values(rule_table="reval-default@1", finished_at=utcnow()))
    page = admin.get("/rules").text
    assert 'The stored decisions were made with rules <span class="app-code">reval-default@1</span>' in page
    assert 'href="/rules/preview"' in page
