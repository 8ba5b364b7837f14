"""Return addresses (``next=``, ``back=``): whatever is written there, a redirect or a link built
from it stays on this site, as a browser would read it (WHATWG URL parsing)."""

from __future__ import annotations

from html import unescape
from urllib.parse import quote, urlsplit

import pytest

from reval.web.addresses import own_path
from tests.factories import EAST_OF_ENGLAND
from tests.matching import first_group
from tests.web.conftest import EAST_MISMATCH, next_field, send_dev_sign_in

# Known ways to write another site's address that a naive "starts with one slash" check lets
# through, or that a browser reads differently from how they are written.
BYPASSES = [
    "//evil.example/x",
    "/\\evil.example/x",
    "\\\\evil.example/x",
    "/\t/evil.example/x",
    "/\n/evil.example/x",
    "/\r/evil.example/x",
    "///evil.example/x",
    "////evil.example/x",
    "https:evil.example",
    "https://evil.example/x",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " //evil.example/x",
    "\x00//evil.example/x",
    "/\\\t/evil.example/x",
    "evil.example/x",
]


def on_this_site(address: str) -> bool:
    """What a browser does with the address: it must not leave http://localhost."""
    cleaned = address.strip("".join(chr(c) for c in range(0x21))).replace("\t", "").replace("\n", "").replace("\r", "")
    parts = urlsplit(cleaned.replace("\\", "/"))
    return (
        parts.scheme in ("", "http")
        and parts.netloc in ("", "localhost")
        and not cleaned.replace("\\", "/").startswith("//")
    )


@pytest.mark.parametrize("target", BYPASSES)
def test_an_address_on_another_site_is_not_ours(target):
    assert own_path(target) is None


@pytest.mark.parametrize(
    "target, read_as",
    [
        ("/queues/discrepancies?q=ada&page=2", "/queues/discrepancies?q=ada&page=2"),
        ("/doctors/1100001", "/doctors/1100001"),
        (" /doctors/1100001", "/doctors/1100001"),  # browsers strip leading spaces
        ("/doc\ttors/1100001", "/doctors/1100001"),  # and remove tabs
        ("/%5Cevil.example", "/%5Cevil.example"),  # percent-encoded: a path here, never decoded into one
        ("/x\r\nSet-Cookie: stolen=1", "/xSet-Cookie: stolen=1"),  # no header can be split off
    ],
)
def test_a_path_on_this_site_is_kept_as_a_browser_reads_it(target, read_as):
    assert own_path(target) == read_as


@pytest.mark.parametrize("target", BYPASSES)
def test_signing_in_returns_only_to_a_page_of_this_site(web, national, target):
    client = web.test_client()
    start = client.get(f"/auth/sign-in?next={quote(target, safe='')}")
    assert start.status_code == 302
    form = client.get(start.headers["Location"])
    assert form.status_code == 200
    assert own_path(next_field(form.text)) == next_field(form.text)
    signed_in = send_dev_sign_in(client, form.text, next_page=target)  # a forged form, sent straight to the post
    assert signed_in.status_code == 302
    assert on_this_site(signed_in.headers["Location"]), signed_in.headers["Location"]
    assert signed_in.headers["Location"] == "/"


def test_signing_in_returns_to_the_page_asked_for(web, national):
    client = web.test_client()
    asked = client.get("/queues/connected?q=ada")
    assert asked.status_code == 302
    form = client.get(client.get(asked.headers["Location"]).headers["Location"])
    signed_in = send_dev_sign_in(client, form.text)
    assert signed_in.headers["Location"] == "/queues/connected?q=ada"


@pytest.mark.parametrize("target", BYPASSES)
def test_the_confirmation_pages_links_back_stay_on_this_site(sign_in, national, target):
    admin = sign_in()
    page = admin.get(f"/actions/hide?body={EAST_OF_ENGLAND}&doctor={EAST_MISMATCH[0]}&back={quote(target, safe='')}")
    assert page.status_code == 200
    cancel = unescape(first_group(r'<a class="nhsuk-link" href="([^"]*)">Cancel</a>', page.text))
    assert cancel == f"/queues/discrepancies?body={EAST_OF_ENGLAND}"
    hidden_back = unescape(first_group(r'name="back" value="([^"]*)"', page.text))
    assert hidden_back == cancel


def test_a_newline_in_a_return_address_is_not_a_fault(web, national):
    response = web.test_client().get("/auth/sign-in?next=/%0D%0ASet-Cookie:%20x=1")
    assert response.status_code == 302
    assert "\r" not in response.headers["Location"] and "\n" not in response.headers["Location"]
    assert not any(cookie.startswith("x=") for cookie in response.headers.getlist("Set-Cookie"))
