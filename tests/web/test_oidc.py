"""Sign-in with OpenID Connect, end to end against a real OIDC provider (oidc-provider-mock):
the authorization code flow with PKCE, roles and bodies from claims, a person without a role."""

from __future__ import annotations

from collections.abc import Iterator
from html import unescape
from urllib.parse import parse_qs, quote, urljoin, urlparse

import oidc_provider_mock
import pytest
import requests

from reval.app import create_app
from reval.extensions import database
from tests.conftest import served
from tests.factories import EAST_OF_ENGLAND, WESSEX
from tests.matching import first_group
from tests.web.conftest import EAST_CONNECTED, WESSEX_CONNECTED

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the mock provider's own


@pytest.fixture
def provider() -> Iterator[str]:
    # The issuer is the Host of each request: always call it by this one name.
    with oidc_provider_mock.run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def production_site(app, provider, national):
    """The web with only OIDC sign-in, as in production (cookies over plain HTTP for the test)."""
    settings = {key: value for key, value in app.config.items() if key.startswith("REVAL_")}
    site = create_app(
        settings
        | {
            "REVAL_OIDC_ISSUER": provider,
            "REVAL_OIDC_CLIENT_ID": "reval",
            "REVAL_OIDC_CLIENT_SECRET": "reval-secret",
            "REVAL_SECRET_KEY": "a-test-secret",
            "REVAL_SECURE_COOKIES": "0",
        }
    )
    with served(site) as url:
        yield url
    database(site).engine.dispose()


def set_user(provider: str, sub: str, claims: dict) -> None:
    response = requests.put(f"{provider}/users/{quote(sub, safe='')}", json=claims, timeout=5)
    assert response.status_code == 204, response.text


def sign_in(browser: requests.Session, site: str, sub: str, path: str = "/queues/discrepancies") -> requests.Response:
    """Asks for a page, is sent to the provider, chooses who to be there, and comes back."""
    at_provider = browser.get(f"{site}{path}", timeout=10)
    assert at_provider.url.split("?")[0].endswith("/oauth2/authorize"), at_provider.url
    asked = parse_qs(urlparse(at_provider.url).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["code_challenge"][0]  # PKCE
    assert asked["response_type"] == ["code"] and "openid" in asked["scope"][0].split()
    return browser.post(at_provider.url, data={"sub": sub}, timeout=10)


def test_an_admin_signs_in_and_sees_their_bodys_queue(provider, production_site):
    set_user(
        provider,
        "ann@nhs.example",
        {
            "name": "Ann Admin",
            "roles": ["reval.admin", "some.other.app"],
            "designated_bodies": [EAST_OF_ENGLAND.lower()],
        },
    )
    with requests.Session() as browser:
        page = sign_in(browser, production_site, "ann@nhs.example")
        assert page.status_code == 200 and page.url == f"{production_site}/queues/discrepancies"
        assert "Ann Admin (admin)" in page.text and "Development sign-in" not in page.text
        assert browser.get(f"{production_site}/doctors/{EAST_CONNECTED[0]}", timeout=5).status_code == 200
        assert browser.get(f"{production_site}/doctors/{WESSEX_CONNECTED[0]}", timeout=5).status_code == 404

        signed_out = sign_out(browser, production_site, page.text)
        assert "You have signed out" in signed_out.text
        again = browser.get(f"{production_site}/queues/discrepancies", allow_redirects=False, timeout=5)
        assert again.status_code == 302 and "/auth/sign-in" in again.headers["Location"]


def sign_out(browser: requests.Session, site: str, page_html: str) -> requests.Response:
    """Signs out of Reval, which ends the session at the provider too; confirms there (as the
    mock provider asks) and comes back to Reval's signed-out page."""
    token = first_group(r'name="csrf_token" value="([^"]+)"', page_html)
    at_provider = browser.post(f"{site}/auth/sign-out", data={"csrf_token": token}, timeout=5)
    assert urlparse(at_provider.url).path == "/oauth2/end_session", at_provider.url
    confirm = first_group(r'<form method="post" action="([^"]+)"', at_provider.text)
    redirect_uri = first_group(r'name="redirect_uri" value="([^"]+)"', at_provider.text)
    return browser.post(urljoin(at_provider.url, confirm), data={"redirect_uri": unescape(redirect_uri)}, timeout=5)


def test_roles_and_bodies_may_come_as_strings_under_configured_claim_names(app, provider, national):
    settings = {key: value for key, value in app.config.items() if key.startswith("REVAL_")}
    site = create_app(
        settings
        | {
            "REVAL_OIDC_ISSUER": provider,
            "REVAL_OIDC_CLIENT_ID": "reval",
            "REVAL_OIDC_CLIENT_SECRET": "s",
            "REVAL_SECRET_KEY": "k",
            "REVAL_SECURE_COOKIES": "0",
            "REVAL_OIDC_ROLES_CLAIM": "groups",
            "REVAL_OIDC_BODIES_CLAIM": "dbs",
        }
    )
    set_user(provider, "vic", {"name": "Vic Viewer", "groups": "reval.viewer", "dbs": f"{WESSEX} 1-NOT-CONFIGURED"})
    with served(site) as url, requests.Session() as browser:
        page = sign_in(browser, url, "vic", f"/queues/connected?body={WESSEX}")
        assert page.status_code == 200 and "Vic Viewer (viewer)" in page.text
        assert 'name="doctor"' not in page.text  # a viewer is offered no actions
    database(site).engine.dispose()


def test_a_national_role_wins_over_lesser_ones(provider, production_site):
    set_user(provider, "nat", {"name": "Nat", "roles": ["reval.viewer", "reval.national"], "designated_bodies": []})
    with requests.Session() as browser:
        page = sign_in(browser, production_site, "nat", "/queues/unassigned")
        assert page.status_code == 200 and "Nat (national)" in page.text


def test_a_person_without_a_reval_role_is_refused(provider, production_site):
    set_user(
        provider, "nobody", {"name": "No Role", "roles": ["another.service"], "designated_bodies": [EAST_OF_ENGLAND]}
    )
    with requests.Session() as browser:
        refused = sign_in(browser, production_site, "nobody")
        assert refused.status_code == 403
        assert "You do not have access to Reval" in refused.text and "no Reval role" in refused.text
        still_out = browser.get(f"{production_site}/queues/discrepancies", allow_redirects=False, timeout=5)
        assert still_out.status_code == 302


def test_a_denied_sign_in_is_refused_and_signs_nobody_in(provider, production_site):
    with requests.Session() as browser:
        at_provider = browser.get(f"{production_site}/queues/discrepancies", timeout=10)
        denied = browser.post(at_provider.url, data={"action": "deny"}, timeout=10)
        assert denied.status_code == 401 and "Sign-in failed" in denied.text


def test_outside_development_there_is_no_development_sign_in(production_site):
    assert requests.get(f"{production_site}/auth/dev", timeout=5).status_code == 404


def test_signing_out_ends_the_session_at_the_provider_and_lands_on_the_signed_out_page(provider, production_site):
    set_user(
        provider,
        "ann@nhs.example",
        {"name": "Ann Admin", "roles": ["reval.admin"], "designated_bodies": [EAST_OF_ENGLAND]},
    )
    with requests.Session() as browser:
        page = sign_in(browser, production_site, "ann@nhs.example")
        token = first_group(r'name="csrf_token" value="([^"]+)"', page.text)
        leaving = browser.post(
            f"{production_site}/auth/sign-out", data={"csrf_token": token}, allow_redirects=False, timeout=5
        )
        assert leaving.status_code == 302
        end_session = urlparse(leaving.headers["Location"])
        assert f"{end_session.scheme}://{end_session.netloc}{end_session.path}" == f"{provider}/oauth2/end_session"
        asked = parse_qs(end_session.query)
        assert asked["post_logout_redirect_uri"] == [f"{production_site}/auth/signed-out"]
        assert asked["client_id"] == ["reval"] and asked["id_token_hint"][0].count(".") == 2  # the ID token, a JWT
        # Signed out of Reval already, whatever the provider does next.
        assert (
            browser.get(f"{production_site}/queues/discrepancies", allow_redirects=False, timeout=5).status_code == 302
        )


@pytest.mark.parametrize(
    "target", ["/%09/evil.example/pwned", "//evil.example", "/%5Cevil.example", "https:evil.example"]
)
def test_the_callback_returns_only_to_a_page_of_this_site(provider, production_site, target):
    set_user(
        provider,
        "ann@nhs.example",
        {"name": "Ann Admin", "roles": ["reval.admin"], "designated_bodies": [EAST_OF_ENGLAND]},
    )
    with requests.Session() as browser:
        at_provider = browser.get(f"{production_site}/auth/sign-in?next={target}", timeout=10)
        back = browser.post(at_provider.url, data={"sub": "ann@nhs.example"}, allow_redirects=False, timeout=10)
        callback = browser.get(back.headers["Location"], allow_redirects=False, timeout=10)
        assert callback.status_code == 302
        assert callback.headers["Location"] == "/", callback.headers["Location"]
