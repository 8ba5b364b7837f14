"""The web through real requests: who sees what, who may act, forms' tokens, and each queue's view."""

from __future__ import annotations

import csv
import io
import re

import pytest

from reval.app import create_app
from reval.clock import utcnow
from reval.extensions import database
from reval.gmc.codes import Action
from reval.reconcile.connections import record_connection_request
from tests.factories import EAST_OF_ENGLAND, NORTH_EAST, WESSEX
from tests.matching import first_group
from tests.web.conftest import (
    EAST_CONNECTED,
    EAST_MISMATCH,
    EAST_NOT_CONNECTED,
    UNASSIGNED,
    WESSEX_CONNECTED,
    csrf_token,
)


def tab_labels(html: str) -> list[str]:
    return re.findall(r'class="nhsuk-tabs__tab"[^>]*>([^<]+)<', html)


def numbers_listed(html: str) -> list[str]:
    return re.findall(r'name="doctor" value="(\d{7})"', html)


# --- signing in ----------------------------------------------------------------------------------


def test_a_page_asks_for_sign_in_first(web, national):
    response = web.test_client().get("/queues/discrepancies")
    assert response.status_code == 302 and response.headers["Location"].startswith("/auth/sign-in")


def test_home_is_the_signed_in_persons_discrepancies(sign_in, national):
    response = sign_in().get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/queues/discrepancies"


def test_the_development_sign_in_does_not_exist_outside_development(app, national):
    assert app.test_client().get("/auth/dev").status_code == 404
    assert app.test_client().post("/auth/dev", data={"name": "x"}).status_code == 404


def test_without_sign_in_settings_pages_are_refused_with_the_settings_named(app, national):
    response = app.test_client().get("/queues/discrepancies")
    assert response.status_code == 503
    from reval.refusals import NotConfigured
    from reval.web.auth import require_web_settings

    with pytest.raises(NotConfigured, match="REVAL_OIDC_ISSUER, REVAL_OIDC_CLIENT_ID and REVAL_OIDC_CLIENT_SECRET"):
        require_web_settings(app)


def test_outside_development_a_secret_key_is_required(migrated):
    from reval.refusals import NotConfigured
    from reval.web.auth import require_web_settings

    app = create_app(
        {
            "REVAL_DATABASE_URL": migrated,
            "REVAL_OIDC_ISSUER": "https://id.example",
            "REVAL_OIDC_CLIENT_ID": "r",
            "REVAL_OIDC_CLIENT_SECRET": "s",
        }
    )
    with pytest.raises(NotConfigured, match="REVAL_SECRET_KEY"):
        require_web_settings(app)
    database(app).engine.dispose()


def test_the_development_banner_shows_on_every_page(sign_in, national):
    browser = sign_in()
    for path in ("/queues/discrepancies", "/runs", "/rules", f"/doctors/{EAST_CONNECTED[0]}"):
        assert "Development sign-in is on" in browser.get(path).text, path


def test_sign_out_clears_the_session(sign_in, national):
    browser = sign_in()
    browser.post("/auth/sign-out")
    assert browser.get("/queues/discrepancies").status_code == 302


def test_the_session_cookie_is_http_only_and_same_site(web, national):
    client = web.test_client()
    form = client.get("/auth/dev")
    response = client.post(
        "/auth/dev",
        data={"csrf_token": csrf_token(form.text), "name": "Ann", "role": "admin", "designated_body": EAST_OF_ENGLAND},
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_pages_carry_security_headers(sign_in, national):
    headers = sign_in().get("/queues/discrepancies").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_scripts(sign_in, national):
    html = sign_in().get("/queues/discrepancies").text
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []


# --- who sees what -------------------------------------------------------------------------------


def test_another_offices_doctor_is_not_found(sign_in, national):
    wessex = sign_in(body=WESSEX)
    assert wessex.get(f"/doctors/{EAST_CONNECTED[0]}").status_code == 404
    assert wessex.get(f"/doctors/{WESSEX_CONNECTED[0]}").status_code == 200
    # Answered exactly as a number nobody knows.
    assert wessex.get("/doctors/9999999").text == wessex.get(f"/doctors/{EAST_CONNECTED[0]}").text


def test_another_offices_queue_and_download_are_not_found(sign_in, national):
    wessex = sign_in(body=WESSEX)
    assert wessex.get(f"/queues/connected?body={EAST_OF_ENGLAND}").status_code == 404
    assert wessex.get(f"/queues/connected/download?body={EAST_OF_ENGLAND}").status_code == 404


def test_another_offices_actions_are_not_found(sign_in, national):
    wessex = sign_in(body=WESSEX)
    doctor = EAST_CONNECTED[0]
    assert wessex.get(f"/actions/hide?body={EAST_OF_ENGLAND}&doctor={doctor}").status_code == 404
    response = wessex.post("/actions/hide", {"body": EAST_OF_ENGLAND, "doctor": doctor, "reason": "x"})
    assert response.status_code == 404
    # For their own body, another office's doctor is refused on the results page, and nothing is hidden.
    response = wessex.post(
        "/actions/hide", {"body": WESSEX, "doctor": doctor, "reason": "moving"}, follow_redirects=True
    )
    assert "Refused" in response.text and "not a doctor in your designated bodies" in response.text
    assert sign_in().get(f"/queues/hidden?body={EAST_OF_ENGLAND}").text.count(doctor) == 0


def test_another_offices_gmc_request_is_not_found(sign_in, national, sessions):
    with sessions.begin() as session:
        request = record_connection_request(
            session,
            gmc_number_text=EAST_NOT_CONNECTED[0],
            designated_body=EAST_OF_ENGLAND,
            action=Action.ADD,
            reason="1",
            requested_by="ann",
            now=utcnow(),
        )
        request.status = "FAILED"
    assert sign_in(body=WESSEX).post(f"/requests/{request.id}/resend").status_code == 404


def test_unassigned_is_for_national_users_only(sign_in, national):
    assert sign_in(role="admin").get("/queues/unassigned").status_code == 404
    response = sign_in(role="national").get("/queues/unassigned")
    assert response.status_code == 200
    assert numbers_listed(response.text) == [UNASSIGNED]
    assert "Unassigned (1)" in tab_labels(response.text)


def test_a_national_user_sees_every_body(sign_in, national):
    national_user = sign_in(role="national", body=NORTH_EAST)
    assert national_user.get(f"/queues/connected?body={WESSEX}").status_code == 200
    assert national_user.get(f"/doctors/{EAST_CONNECTED[0]}").status_code == 200


# --- who may act ---------------------------------------------------------------------------------


def test_hide_is_offered_only_for_a_body_that_sees_the_doctor(sign_in, national):
    national_user = sign_in(role="national", body=NORTH_EAST)
    for_east = national_user.get(f"/doctors/{EAST_CONNECTED[0]}?body={EAST_OF_ENGLAND}").text
    assert f'href="/actions/hide?body={EAST_OF_ENGLAND}' in for_east
    assert "cannot hide them" not in for_east
    for_wessex = national_user.get(f"/doctors/{EAST_CONNECTED[0]}?body={WESSEX}").text
    assert "/actions/hide?" not in for_wessex
    assert "Wessex does not see this doctor, so cannot hide them." in for_wessex
    assert f'href="/actions/connect?body={WESSEX}' in for_wessex  # connecting is how a body comes to see them


def test_a_viewers_action_is_forbidden(sign_in, national):
    viewer = sign_in(role="viewer")
    response = viewer.post("/actions/hide", {"body": EAST_OF_ENGLAND, "doctor": EAST_CONNECTED[0], "reason": "x"})
    assert response.status_code == 403
    assert viewer.post("/requests/1/resend").status_code in (403, 404)
    # And the page offers no actions.
    assert 'name="doctor"' not in viewer.get("/queues/connected").text


def test_a_post_without_a_valid_token_changes_nothing(sign_in, national):
    admin = sign_in()
    response = admin.client.post(
        "/actions/hide", data={"body": EAST_OF_ENGLAND, "doctor": EAST_CONNECTED[0], "reason": "x"}
    )
    assert response.status_code == 400
    response = admin.client.post(
        "/actions/hide",
        data={
            "csrf_token": "forged",
            "body": EAST_OF_ENGLAND,
            "doctor": EAST_CONNECTED[0],
            "reason": "x",
        },
    )
    assert response.status_code == 400
    assert "Hidden (0)" in tab_labels(admin.get("/queues/hidden").text)


def test_hiding_asks_for_confirmation_then_records_who_did_it(sign_in, national):
    admin = sign_in(name="Ann Admin")
    doctors = EAST_CONNECTED[:2]
    confirmation = admin.get(f"/actions/hide?body={EAST_OF_ENGLAND}&doctor={doctors[0]}&doctor={doctors[1]}")
    assert confirmation.status_code == 200
    assert "Confirm" in confirmation.text and all(number in confirmation.text for number in doctors)
    missing_reason = admin.post(
        "/actions/hide", {"body": EAST_OF_ENGLAND, "doctor": doctors}, token_from=confirmation.request.url
    )
    assert missing_reason.status_code == 422 and (
        "Enter why these doctors need no action from East of England" in missing_reason.text
    )
    done = admin.post(
        "/actions/hide", {"body": EAST_OF_ENGLAND, "doctor": doctors, "reason": "on leave"}, follow_redirects=True
    )
    assert done.text.count("Done") == 2
    hidden = admin.get("/queues/hidden")
    assert sorted(numbers_listed(hidden.text)) == sorted(doctors)
    assert "Ann Admin" in admin.get(f"/doctors/{doctors[0]}").text


# --- the queue views -----------------------------------------------------------------------------


def test_each_tab_shows_its_count(sign_in, national):
    labels = tab_labels(sign_in().get("/queues/connected").text)
    assert labels == ["Connected (25)", "Discrepancies (3)", "Hidden (0)", "Historic (0)", "Failed GMC updates (0)"]


def test_pages_of_twenty(sign_in, national):
    admin = sign_in()
    first, second = admin.get("/queues/connected"), admin.get("/queues/connected?page=2")
    assert numbers_listed(first.text) == EAST_CONNECTED[:20]
    assert numbers_listed(second.text) == EAST_CONNECTED[20:]
    assert "Showing 21 to 25 of 25 doctors" in second.text


def test_search_by_name_prefix_and_gmc_number_prefix(sign_in, national):
    admin = sign_in()
    assert numbers_listed(admin.get("/queues/connected?q=zeph").text) == ["1100003"]
    assert numbers_listed(admin.get("/queues/discrepancies?q=NAKA").text) == EAST_NOT_CONNECTED
    assert numbers_listed(admin.get("/queues/connected?q=110001").text) == EAST_CONNECTED[10:20]
    # The tab counts follow the search.
    assert tab_labels(admin.get("/queues/connected?q=mbeki").text)[:2] == ["Connected (0)", "Discrepancies (1)"]


def test_a_hidden_doctor_is_searched_by_name_in_hidden_and_back_in_connected_once_unhidden(sign_in, national):
    admin = sign_in()
    admin.post("/actions/hide", {"body": EAST_OF_ENGLAND, "doctor": ["1100003"], "reason": "on leave"})
    assert numbers_listed(admin.get("/queues/connected?q=zeph").text) == []
    assert numbers_listed(admin.get("/queues/hidden?q=zeph").text) == ["1100003"]
    assert tab_labels(admin.get("/queues/hidden?q=zeph").text)[:3] == [
        "Connected (0)",
        "Discrepancies (0)",
        "Hidden (1)",
    ]
    admin.post("/actions/unhide", {"body": EAST_OF_ENGLAND, "doctor": ["1100003"]}, token_from="/queues/hidden")
    assert numbers_listed(admin.get("/queues/connected?q=zeph").text) == ["1100003"]


def test_a_doctor_renamed_at_gmc_is_searched_and_sorted_by_the_new_name(sign_in, national, sessions, files):
    from reval.reconcile.sync import GmcInput, TisInput, run_sync
    from tests.factories import AS_OF, gmc_snapshot, tis_snapshot

    lists = {body: [dict(doctor) for doctor in doctors] for body, doctors in national.gmc_lists.items()}
    renamed = next(doctor for doctor in lists[EAST_OF_ENGLAND] if doctor["GMCReferenceNumber"] == "1100003")
    renamed["DoctorLastName"] = "Aaronson"  # GMC's name is the one shown; TIS still says Zephaniah
    run_sync(
        sessions,
        as_of=AS_OF,
        gmc=GmcInput.from_file(gmc_snapshot(files / "renamed.json", lists)),
        tis=TisInput.from_file(tis_snapshot(files / "tis-again.json", national.people)),
    )
    admin = sign_in()
    assert numbers_listed(admin.get("/queues/connected?q=aaron").text) == ["1100003"]
    assert numbers_listed(admin.get("/queues/connected?q=zeph").text) == ["1100003"]  # as TIS has it
    assert numbers_listed(admin.get("/queues/connected?sort=name").text)[0] == "1100003"


def test_a_search_that_case_folding_lengthens_past_a_stored_name_key_still_finds_the_name(
    sign_in, national, sessions, files
):
    from urllib.parse import quote

    from reval.reconcile.sync import GmcInput, TisInput, run_sync
    from tests.factories import AS_OF, gmc_snapshot, tis_snapshot

    ligatures = "\ufb03" * 100  # 100 characters that case-fold to 300 ("ffi" each)
    lists = {body: [dict(doctor) for doctor in doctors] for body, doctors in national.gmc_lists.items()}
    next(doctor for doctor in lists[EAST_OF_ENGLAND] if doctor["GMCReferenceNumber"] == "1100003")["DoctorLastName"] = (
        ligatures
    )
    run_sync(
        sessions,
        as_of=AS_OF,
        gmc=GmcInput.from_file(gmc_snapshot(files / "ligatures.json", lists)),
        tis=TisInput.from_file(tis_snapshot(files / "tis-again.json", national.people)),
    )
    assert numbers_listed(sign_in().get(f"/queues/connected?q={quote(ligatures)}").text) == ["1100003"]


def test_filter_by_reason_and_programme_owner(sign_in, national):
    admin = sign_in()
    assert numbers_listed(admin.get("/queues/discrepancies?reason=DB_MISMATCH").text) == EAST_MISMATCH
    assert numbers_listed(admin.get(f"/queues/discrepancies?owner={WESSEX}").text) == EAST_MISMATCH
    assert admin.get("/queues/discrepancies?reason=NONSENSE").status_code == 400


def test_sort_by_name_both_ways(sign_in, national):
    admin = sign_in()
    ascending = numbers_listed(admin.get("/queues/connected?sort=name&order=asc").text)
    descending = numbers_listed(admin.get("/queues/connected?sort=name&order=desc").text)
    assert ascending[:2] == ["1100000", "1100001"]  # Lovelaces first, by GMC number among equal names
    assert descending[:2] == ["1100003", "1100004"]  # Zephaniah, Okafor
    assert admin.get("/queues/connected?sort=shoe_size").status_code == 400


def test_column_headers_link_to_their_sort(sign_in, national):
    html = sign_in().get("/queues/connected?sort=name&order=asc").text
    assert 'href="/queues/connected?sort=name&amp;order=desc"' in html  # the current sort, the other way
    assert 'href="/queues/connected?sort=submission_date&amp;order=asc"' in html


def test_download_csv_is_the_whole_view(sign_in, national):
    admin = sign_in()
    page = admin.get("/queues/connected?q=1100")
    link = first_group(r'href="([^"]+)">Download CSV', page.text).replace("&amp;", "&")
    response = admin.get(link)
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["GMC number"] for row in rows] == EAST_CONNECTED[:25]
    assert rows[0]["Reason code"] == "CONNECTED" and rows[0]["GMC designated body"] == EAST_OF_ENGLAND


def test_the_doctor_page_explains_the_decision(sign_in, national):
    html = sign_in().get(f"/doctors/{EAST_MISMATCH[0]}").text
    assert "DB_MISMATCH" in html and "Connected to another body" in html
    assert "connected_to_programme_owner is no, needs yes" not in html or "Matched" in html
    assert "Row 10 of reval-default@2" in html


def test_the_rules_page_lists_every_row_with_its_label(sign_in, national):
    from reval.rules import DEFAULT_RULE_TABLE

    html = sign_in(role="viewer").get("/rules").text
    for row in DEFAULT_RULE_TABLE.rows:
        assert row.label in html and row.reason in html


def test_runs_show_rejected_records_to_national_users_only(sign_in, national):
    assert "Rejected records" in sign_in(role="national").get(f"/runs/{national.run_id}").text
    admin_view = sign_in(role="admin").get(f"/runs/{national.run_id}")
    assert admin_view.status_code == 200 and "<h2>Rejected records</h2>" not in admin_view.text


def test_the_doctor_page_shows_a_rejected_tis_record(sign_in, sessions, files):
    from reval.reconcile.sync import GmcInput, TisInput, run_sync
    from tests.factories import AS_OF, gmc_doctor, gmc_snapshot, person, programme, tis_snapshot

    broken = person("1000009", programme(WESSEX, start="31/02/2025"), person_id=9)
    run_sync(
        sessions,
        as_of=AS_OF,
        gmc=GmcInput.from_file(gmc_snapshot(files / "gmc.json", {EAST_OF_ENGLAND: [gmc_doctor("1000009")]})),
        tis=TisInput.from_file(tis_snapshot(files / "tis.json", [broken])),
    )
    html = sign_in().get("/doctors/1000009").text
    assert "TIS record rejected" in html and "TIS person 9: record rejected" in html
    assert (
        "programmeMemberships[0].programmeStartDate is not a date in the form YYYY-MM-DD (got &#39;31/02/2025&#39;)"
        in html
    )


# --- the filters the national UI has -----------------------------------------------------------


def test_discrepancies_offer_ready_for_connection_and_disconnection_with_their_counts(sign_in, national):
    admin = sign_in()
    html = admin.get("/queues/discrepancies").text
    assert "Ready for connection (1)" in html and "Ready for disconnection (2)" in html
    ready = admin.get("/queues/discrepancies?ready=disconnect").text
    assert numbers_listed(ready) == EAST_MISMATCH
    assert tab_labels(ready)[:2] == ["Connected (0)", "Discrepancies (2)"]
    # The tab links keep the filter.
    assert "ready=disconnect" in first_group(r'class="nhsuk-tabs__tab" href="([^"]+)"', ready)
    assert numbers_listed(admin.get("/queues/discrepancies?ready=connect").text) == EAST_NOT_CONNECTED
    assert "Ready for connection" not in admin.get("/queues/connected").text


def test_date_filters_come_from_date_inputs_or_the_address(sign_in, national):
    admin = sign_in()
    typed = "submitted_from[day]=1&submitted_from[month]=6&submitted_from[year]=2027"
    assert len(numbers_listed(admin.get(f"/queues/connected?{typed}").text)) == 20
    assert numbers_listed(admin.get("/queues/connected?submitted_from=2027-06-02").text) == []
    assert "Connected (25)" in tab_labels(admin.get("/queues/connected?changed_to=2026-11-21").text)


def test_a_wrong_date_is_named_in_words_and_the_page_still_shows(sign_in, national):
    admin = sign_in()
    response = admin.get("/queues/connected?ended_to[day]=31&ended_to[month]=2&ended_to[year]=2027")
    assert response.status_code == 200
    assert "Programme end date to must be a real date, for example 31 12 2027" in response.text
    assert "There is a problem" in response.text
    assert "Year must include 4 numbers" in admin.get("/queues/connected?changed_from=27-1-1").text
    backwards = admin.get("/queues/connected?changed_from=2027-01-02&changed_to=2027-01-01").text
    assert "Last change to must be the same as or after 2 January 2027" in backwards
    assert admin.get("/queues/connected/download?ended_to=2027-02-31").status_code == 400


def test_programme_and_last_changed_by_filter_and_show_as_columns(sign_in, national):
    admin = sign_in()
    html = admin.get("/queues/connected").text
    assert '<option value="General Practice">General Practice</option>' in html
    assert "Membership type" in html and "Last changed by" in html and "Substantive" in html
    assert numbers_listed(admin.get("/queues/connected?programme=Surgery").text) == []
    admin.post("/actions/hide", {"body": EAST_OF_ENGLAND, "doctor": ["1100003"], "reason": "on leave"})
    assert numbers_listed(admin.get("/queues/hidden?changed_by=ann+admin").text) == ["1100003"]
    rows = list(csv.DictReader(io.StringIO(admin.get("/queues/hidden/download?changed_by=Ann+Admin").text)))
    assert [(row["GMC number"], row["Last changed by"], row["Programme membership type"]) for row in rows] == [
        ("1100003", "Ann Admin", "SUBSTANTIVE")
    ]
