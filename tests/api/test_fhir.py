"""The FHIR R4 view (/fhir/r4): every answer, success or error, parses as a valid R4 resource
with the FHIR library; the same tokens, scopes and body scoping as the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.practitionerrole import PractitionerRole

from reval.clock import utcnow
from tests.factories import EAST_OF_ENGLAND, WESSEX
from tests.web.conftest import EAST_CONNECTED, EAST_MISMATCH, EAST_NOT_CONNECTED, WESSEX_CONNECTED

SEARCH = "/fhir/r4/PractitionerRole"
GMC_SYSTEM = "https://fhir.hl7.org.uk/Id/gmc-number"


def parsed(response, resource_type):
    """The answer as the FHIR library reads it (which validates it), checking its content type."""
    assert response.mimetype == "application/fhir+json", response.data
    resource = resource_type.model_validate_json(response.data)
    assert resource.get_resource_type() == resource_type.get_resource_type()
    return resource


def all_entries(caller, query: str) -> list[PractitionerRole]:
    roles: list[PractitionerRole] = []
    url: str | None = f"{SEARCH}?{query}"
    while url:
        bundle = parsed(caller.get(url), Bundle)
        assert bundle.type == "searchset"
        roles += [entry.resource for entry in bundle.entry or []]
        url = next((link.url for link in bundle.link if link.relation == "next"), None)
    return roles


def test_a_body_s_connected_doctors_as_practitioner_roles_paged(calling, national):
    caller = calling()
    first = parsed(caller.get(f"{SEARCH}?organization={EAST_OF_ENGLAND}&_count=10"), Bundle)
    assert first.total == len(EAST_CONNECTED + EAST_MISMATCH)
    assert len(first.entry) == 10
    roles = all_entries(caller, f"organization={EAST_OF_ENGLAND}&_count=10")
    assert [role.id for role in roles] == sorted(EAST_CONNECTED + EAST_MISMATCH)
    role = roles[0]
    document = role.model_dump(mode="json", exclude_none=True)
    assert document["active"] is True
    assert document["practitioner"]["identifier"] == {"system": GMC_SYSTEM, "value": role.id}
    assert document["organization"]["identifier"]["value"] == EAST_OF_ENGLAND
    assert document["period"]["start"] and document["meta"]["lastUpdated"]
    assert EAST_NOT_CONNECTED[0] not in {r.id for r in roles}  # in the programme, not connected at GMC

    one = caller.get(f"{SEARCH}/{role.id}")
    assert parsed(one, PractitionerRole).id == role.id
    assert one.headers["Last-Modified"]


def test_last_updated_narrows_the_search(calling, national):
    caller = calling()
    since = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert parsed(caller.get(f"{SEARCH}?organization={EAST_OF_ENGLAND}&_lastUpdated=gt{since}"), Bundle).total == 0
    assert parsed(caller.get(f"{SEARCH}?organization={EAST_OF_ENGLAND}&_lastUpdated=gt2000-01-01"), Bundle).total == 27


def test_the_capability_statement(client_of_api):
    statement = parsed(client_of_api.get("/fhir/r4/metadata"), CapabilityStatement)
    assert statement.fhirVersion == "4.0.1"
    assert statement.rest[0].resource[0].type == "PractitionerRole"


@pytest.fixture
def client_of_api(api):
    return api.test_client()


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (f"{SEARCH}?organization={WESSEX}", 404, "not-found"),  # another office's body
        (f"{SEARCH}/{WESSEX_CONNECTED[0]}", 404, "not-found"),  # another office's doctor
        (f"{SEARCH}/9999999", 404, "not-found"),
        (f"{SEARCH}/not-a-number", 422, "processing"),
        (SEARCH, 422, "processing"),  # organization is required
        (f"{SEARCH}?organization={EAST_OF_ENGLAND}&_count=0", 422, "processing"),
        (f"{SEARCH}?organization={EAST_OF_ENGLAND}&_count=many", 422, "processing"),
        (f"{SEARCH}?organization={EAST_OF_ENGLAND}&_lastUpdated=gtyesterday", 422, "processing"),
        (f"{SEARCH}?organization={EAST_OF_ENGLAND}&_lastUpdated=gt2027-02-30", 422, "processing"),
        ("/fhir/r4/Patient", 404, "not-found"),
    ],
)
def test_errors_are_operation_outcomes(calling, national, path, status, code):
    response = calling().get(path)
    assert response.status_code == status, response.data
    outcome = parsed(response, OperationOutcome)
    assert outcome.issue[0].code == code and outcome.issue[0].diagnostics


def test_tokens_and_scopes_as_the_api(calling, client_of_api, national):
    unauthenticated = client_of_api.get(f"{SEARCH}?organization={EAST_OF_ENGLAND}")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Bearer")
    assert parsed(unauthenticated, OperationOutcome).issue[0].code == "login"
    bad = client_of_api.get(SEARCH, headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401 and parsed(bad, OperationOutcome)
    no_scope = calling(scopes="reval.write").get(f"{SEARCH}?organization={EAST_OF_ENGLAND}")
    assert no_scope.status_code == 403
    assert parsed(no_scope, OperationOutcome).issue[0].code == "forbidden"
    national_caller = calling(scopes="reval.read reval.national", bodies=())
    assert parsed(national_caller.get(f"{SEARCH}?organization={WESSEX}"), Bundle).total == len(WESSEX_CONNECTED)
