"""A doctor as GMC Connect's GetDoctorsForDB lists it, validated into Reval's own form.

``read_connected_doctor`` is the bulk path used for every doctor in a list; the marshmallow
``ConnectedDoctorSchema`` is the same contract for single records and is checked against it in
the tests. Both apply the rules in ``reval.validation``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from marshmallow import EXCLUDE, Schema, post_load

from reval.validation import (
    FieldReader,
    FieldRule,
    Rule,
    gmc_number,
    optional_code,
    optional_enumeration,
    optional_gmc_date,
    optional_text,
    require_object,
)

UNDER_NOTICE_VALUES = ("Yes", "No", "On Hold")

# GMC's field name -> (Reval's field name, the rule for its value).
CONNECTED_DOCTOR_FIELDS: dict[str, tuple[str, FieldRule]] = {
    "GMCReferenceNumber": ("gmc_number", gmc_number),
    "DoctorFirstName": ("first_name", optional_text),
    "DoctorLastName": ("last_name", optional_text),
    "SubmissionDate": ("submission_date", optional_gmc_date),
    "DateAdded": ("date_added", optional_gmc_date),
    "UnderNotice": ("under_notice", partial(optional_enumeration, allowed=UNDER_NOTICE_VALUES)),
    "DoctorStatus": ("doctor_status", optional_code),
    "Breach": ("breach", optional_code),
    "Investigation": ("investigation", optional_code),
    "PreliminaryInvestigation": ("preliminary_investigation", optional_code),
    "Sanction": ("sanction", optional_code),
}


READER = FieldReader(
    ((gmc_field, name, rule) for gmc_field, (name, rule) in CONNECTED_DOCTOR_FIELDS.items()), unique=(gmc_number,)
)


def read_connected_doctor(raw: Any) -> dict[str, Any]:
    """The validated doctor, keyed by Reval's field names; raises InvalidValue."""
    return READER.read(require_object("doctor", raw))


class _ConnectedDoctorBase(Schema):
    class Meta:
        unknown = EXCLUDE

    @post_load
    def in_field_order(self, data: dict, **kwargs) -> dict:
        return {name: data.get(name) for name, _rule in CONNECTED_DOCTOR_FIELDS.values()}


ConnectedDoctorSchema = _ConnectedDoctorBase.from_dict(
    {name: Rule(rule, data_key=gmc_field) for gmc_field, (name, rule) in CONNECTED_DOCTOR_FIELDS.items()},
    name="ConnectedDoctorSchema",
)
