"""What the property tests send: any text a browser or a client could send, and what a fault is."""

from __future__ import annotations

from typing import Any, Literal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.factories import EAST_OF_ENGLAND

# Control characters and any script; no lone surrogates (no client can encode them).
SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
TEXT = st.text(st.characters(exclude_categories=SURROGATES), max_size=40)
TRICKY = ["", "0", "-1", "99999999999999999999", "2026-13-45", EAST_OF_ENGLAND, "1100000", "yes", "desc",
          "../../etc/passwd", "%00", "\r\n"]  # fmt: skip
VALUE = st.one_of(TEXT, st.sampled_from(TRICKY))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
# A few dozen examples an operation: the app and its dataset are made once per test, not per example.
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_no_fault(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:500])
