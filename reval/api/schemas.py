"""What the API takes and gives, in one place: marshmallow schemas, documented in the OpenAPI
document from the same definitions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields, pre_load, validate

from reval.rules import DEFAULT_RULE_TABLE, Queue, Ready
from reval.services.changes import DEFAULT_PAGE_SIZE as CHANGES_PAGE_SIZE
from reval.services.changes import MAX_PAGE_SIZE as CHANGES_MAX_PAGE_SIZE
from reval.services.doctors import describe_event
from reval.services.queues import MAX_PAGE_SIZE, SortKey

NULLABLE: dict[str, Any] = {"allow_none": True}  # typed Any: unpacked into fields of every kind


class UpperCase(fields.String):
    """A code in any letter case, given back in capitals."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip().upper()


# --- queries -------------------------------------------------------------------------------------


class DoctorFilterArgs(ma.Schema):
    q = fields.String(
        validate=validate.Length(max=100),
        metadata={"description": "A prefix of the GMC number, or of a first or last name (any case)"},
    )
    reason = UpperCase(validate=validate.OneOf(DEFAULT_RULE_TABLE.reasons()), metadata={"description": "A reason code"})
    programmeOwner = UpperCase(metadata={"description": "A designated body code among the doctor's programme owners"})
    gmcUpdateFailed = fields.Boolean(
        metadata={"description": "Only doctors whose last GMC request failed (true), or none of them (false)"}
    )
    ready = fields.String(
        validate=validate.OneOf([ready.value for ready in Ready]),
        metadata={
            "description": "connect: a programme owner is this body and the doctor is not connected to it; "
            "disconnect: connected to this body and decided as not belonging there"
        },
    )
    programme = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "A programme name, as the doctor's programmeName (any case)"},
    )
    submittedFrom = fields.Date(metadata={"description": "GMC submission date on or after this day"})
    submittedTo = fields.Date(metadata={"description": "GMC submission date on or before this day"})
    endedFrom = fields.Date(metadata={"description": "Programme membership end date on or after this day"})
    endedTo = fields.Date(metadata={"description": "Programme membership end date on or before this day"})
    changedFrom = fields.Date(metadata={"description": "Last change (lastChange) on or after this day"})
    changedTo = fields.Date(metadata={"description": "Last change (lastChange) on or before this day"})
    changedBy = fields.String(
        validate=validate.Length(max=200),
        metadata={
            "description": "Who last asked GMC for a connection change of the doctor, or hid or unhid them "
            "(the full name, any case)"
        },
    )


class PageArgs(ma.Schema):
    page = fields.Integer(
        load_default=1, validate=validate.Range(min=1, max=1_000_000), metadata={"description": "From 1"}
    )
    pageSize = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


class DoctorQueryArgs(DoctorFilterArgs, PageArgs):
    queue = UpperCase(
        validate=validate.OneOf([q.value for q in Queue]), metadata={"description": "A queue code, any letter case"}
    )
    sort = fields.String(load_default=SortKey.GMC_NUMBER.value, validate=validate.OneOf([key.value for key in SortKey]))
    order = fields.String(load_default="asc", validate=validate.OneOf(["asc", "desc"]))


class RequestQueryArgs(PageArgs):
    status = UpperCase(validate=validate.OneOf(["PENDING", "SUCCEEDED", "FAILED"]))
    gmcNumber = fields.String(validate=validate.Regexp(r"^[0-9]{7}$", error="not a 7-digit GMC number"))


class IdempotencyArgs(ma.Schema):
    idempotency_key = fields.String(
        data_key="Idempotency-Key",
        validate=[validate.Length(min=1, max=200), validate.Regexp(r"^[\x21-\x7e]+$")],
        metadata={
            "description": "Make the request safe to repeat: the same key with the same body gives the first result"
        },
    )


# --- bodies --------------------------------------------------------------------------------------


class HideIn(ma.Schema):
    designatedBody = fields.String(required=True, validate=validate.Length(min=1, max=32))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    until = fields.Date(metadata={"description": "The hide's last day (after today)"})


class ConnectionRequestIn(ma.Schema):
    gmcNumber = fields.String(required=True, validate=validate.Length(min=1, max=20))
    designatedBody = fields.String(required=True, validate=validate.Length(min=1, max=32))
    action = UpperCase(required=True, validate=validate.OneOf(["ADD", "REMOVE"]))
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=4),
        metadata={"description": "GMC's change reason: ADD 1 or 2; REMOVE 1, 2 or 3"},
    )

    @pre_load
    def reason_as_text(self, data: Any, **kwargs: Any) -> Any:
        # GMC's reason codes are numerals; a caller may send 1 or "1".
        if isinstance(data, dict) and isinstance(data.get("reason"), int) and not isinstance(data.get("reason"), bool):
            data = {**data, "reason": str(data["reason"])}
        return data


# --- answers -------------------------------------------------------------------------------------


class DesignatedBodySchema(ma.Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    programmeOwner = fields.String(
        required=True, attribute="owner", metadata={"description": "The programme owner name TIS uses"}
    )


class DesignatedBodyListSchema(ma.Schema):
    items = fields.List(fields.Nested(DesignatedBodySchema), required=True)


class QueueCountsSchema(ma.Schema):
    designatedBody = fields.String(required=True)
    queues = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "Doctors in each queue, this body's hides applied"},
    )
    gmcUpdateFailed = fields.Integer(required=True, metadata={"description": "Doctors whose last GMC request failed"})


class DoctorSummarySchema(ma.Schema):
    """A doctor as a body's queue shows them: `reval export`'s fields and a little more."""

    gmcReferenceNumber = fields.String(required=True, attribute="gmc_number")
    queue = fields.String(required=True)
    reason = fields.String(required=True)
    reasonLabel = fields.String(required=True, attribute="reason_label")
    visibleTo = fields.List(fields.String(), required=True, attribute="visible_to")
    designatedBody = fields.String(required=True, attribute="designated_body", **NULLABLE)
    programmeOwnerDesignatedBodies = fields.List(fields.String(), required=True, attribute="programme_owners")
    hiddenFor = fields.List(fields.String(), required=True, attribute="hidden_for")
    firstName = fields.String(required=True, attribute="first_name", **NULLABLE)
    lastName = fields.String(required=True, attribute="last_name", **NULLABLE)
    tisPersonIds = fields.List(fields.Integer(), required=True, attribute="tis_person_ids")
    gmcUpdateFailed = fields.Boolean(required=True, attribute="gmc_update_failed")
    programmeName = fields.String(required=True, attribute="programme_name", **NULLABLE)
    programmeStartDate = fields.Date(required=True, attribute="programme_start", **NULLABLE)
    programmeEndDate = fields.Date(required=True, attribute="programme_end", **NULLABLE)
    submissionDate = fields.Date(required=True, attribute="submission_date", **NULLABLE)
    lastChange = fields.Date(
        required=True, attribute="changed", metadata={"description": "When the decision was reached"}
    )
    programmeMembershipType = fields.String(
        required=True,
        attribute="programme_membership_type",
        metadata={"description": "The membership type of the programme shown (TIS's programmeMembershipType)"},
        **NULLABLE,
    )
    lastChangedBy = fields.String(
        required=True,
        attribute="last_changed_by",
        metadata={"description": "Who last asked GMC for a connection change of the doctor, or hid or unhid them"},
        **NULLABLE,
    )


class DoctorPageSchema(ma.Schema):
    items = fields.List(fields.Nested(DoctorSummarySchema), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    pageSize = fields.Integer(required=True, attribute="page_size")


class GmcConnectionSchema(ma.Schema):
    designatedBody = fields.String(required=True, attribute="designated_body_code")
    firstName = fields.String(required=True, attribute="first_name", **NULLABLE)
    lastName = fields.String(required=True, attribute="last_name", **NULLABLE)
    submissionDate = fields.Date(required=True, attribute="submission_date", **NULLABLE)
    dateAdded = fields.Date(required=True, attribute="date_added", **NULLABLE)
    underNotice = fields.String(required=True, attribute="under_notice", **NULLABLE)
    doctorStatus = fields.String(required=True, attribute="doctor_status", **NULLABLE)


class ProgrammeMembershipSchema(ma.Schema):
    programmeName = fields.String(**NULLABLE)
    programmeNumber = fields.String(**NULLABLE)
    programmeMembershipType = fields.String(**NULLABLE)
    programmeStartDate = fields.String(metadata={"format": "date"})
    programmeEndDate = fields.String(metadata={"format": "date"}, **NULLABLE)
    programmeOwner = fields.String(**NULLABLE)


class PlacementSchema(ma.Schema):
    gradeAbbreviation = fields.String(**NULLABLE)
    dateFrom = fields.String(metadata={"format": "date"})
    dateTo = fields.String(metadata={"format": "date"}, **NULLABLE)


class TisPersonSchema(ma.Schema):
    tisPersonId = fields.Integer(required=True, attribute="tis_person_id")
    forenames = fields.String(required=True, **NULLABLE)
    surname = fields.String(required=True, **NULLABLE)
    status = fields.String(required=True, **NULLABLE)
    programmeMemberships = fields.List(
        fields.Nested(ProgrammeMembershipSchema), required=True, attribute="programme_memberships"
    )
    placements = fields.List(fields.Nested(PlacementSchema), required=True)


class FailedConditionSchema(ma.Schema):
    fact = fields.String(required=True)
    required_ = fields.Raw(
        required=True, data_key="required", metadata={"description": "true, false, NONE, ONE or MANY"}
    )
    actual = fields.Raw(required=True)


class RowTriedSchema(ma.Schema):
    row = fields.Integer(required=True)
    reason = fields.String(required=True)
    matched = fields.Boolean(required=True)
    failed = fields.List(
        fields.Nested(FailedConditionSchema), required=True, metadata={"description": "Empty for the row that matched"}
    )


class ExplanationSchema(ma.Schema):
    asOf = fields.Date(required=True)
    ruleTable = fields.String(required=True)
    matchedRow = fields.Integer(required=True)
    facts = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)
    rowsTried = fields.List(fields.Nested(RowTriedSchema), required=True)


class DecisionSchema(ma.Schema):
    queue = fields.String(required=True)
    reason = fields.String(required=True)
    reasonLabel = fields.String(required=True)
    rule = fields.Integer(required=True)
    ruleTable = fields.String(required=True)
    visibleTo = fields.List(fields.String(), required=True)
    programmeOwnerDesignatedBodies = fields.List(fields.String(), required=True)
    lastChange = fields.Date(required=True)


class HideSchema(ma.Schema):
    designatedBody = fields.String(required=True, attribute="designated_body_code")
    reason = fields.String(required=True)
    until = fields.Date(required=True, **NULLABLE)
    hiddenBy = fields.String(required=True, attribute="hidden_by")
    hiddenAt = fields.DateTime(required=True, attribute="hidden_at")
    endedAt = fields.DateTime(required=True, attribute="ended_at", **NULLABLE)
    endReason = fields.String(required=True, attribute="end_reason", **NULLABLE)


class ConnectionRequestSchema(ma.Schema):
    id = fields.Integer(required=True)
    gmcReferenceNumber = fields.String(required=True, attribute="request.gmc_number")
    designatedBody = fields.String(required=True, attribute="request.designated_body_code")
    action = fields.String(required=True, attribute="request.action")
    reason = fields.String(required=True, attribute="request.reason")
    status = fields.String(required=True, attribute="request.status")
    attempts = fields.Integer(required=True, attribute="request.attempts")
    returnCode = fields.String(required=True, attribute="request.return_code", **NULLABLE)
    message = fields.String(required=True, attribute="request.message", **NULLABLE)
    requestedBy = fields.String(required=True, attribute="request.requested_by")
    requestedAt = fields.DateTime(required=True, attribute="request.requested_at")
    lastAttemptAt = fields.DateTime(required=True, attribute="request.last_attempt_at", **NULLABLE)
    nextAttemptAt = fields.DateTime(required=True, attribute="next_attempt_at", **NULLABLE)
    resendOf = fields.Integer(required=True, attribute="request.resend_of", **NULLABLE)
    forced = fields.Boolean(required=True, attribute="request.forced")
    supersededBy = fields.Integer(
        required=True,
        attribute="superseded_by",
        **NULLABLE,
        metadata={"description": "A later request for the same doctor and body"},
    )
    gmcUpdateFailed = fields.Boolean(
        required=True,
        attribute="flags_failure",
        metadata={"description": "Failed, and not superseded: the doctor is flagged"},
    )


class ConnectionRequestPageSchema(ma.Schema):
    items = fields.List(fields.Nested(ConnectionRequestSchema), required=True)
    total = fields.Integer(required=True)
    page = fields.Integer(required=True)
    pageSize = fields.Integer(required=True)


class DoctorDetailSchema(ma.Schema):
    gmcReferenceNumber = fields.String(required=True)
    gmc = fields.Nested(
        GmcConnectionSchema,
        required=True,
        **NULLABLE,
        metadata={"description": "The doctor on a GMC list; null when on none"},
    )
    tisPeople = fields.List(fields.Nested(TisPersonSchema), required=True)
    decision = fields.Nested(
        DecisionSchema,
        required=True,
        **NULLABLE,
        metadata={"description": "The stored decision; null before the first sync"},
    )
    explanation = fields.Nested(ExplanationSchema, required=True)
    activeHides = fields.List(fields.Nested(HideSchema), required=True)
    gmcUpdateFailed = fields.Boolean(required=True)
    connectionRequests = fields.List(fields.Nested(ConnectionRequestSchema), required=True)
    lastChanged = fields.String(
        required=True,
        **NULLABLE,
        metadata={"format": "date-time", "description": "The doctor's latest recorded change"},
    )
    archived = fields.Boolean(required=True, metadata={"description": "Archived: nobody holds the doctor"})
    archivedOn = fields.String(required=True, **NULLABLE, metadata={"format": "date"})
    lastQueue = fields.String(
        required=True, **NULLABLE, metadata={"description": "An archived doctor's queue when archived"}
    )


class HistoryEventSchema(ma.Schema):
    recordedAt = fields.DateTime(required=True, attribute="recorded_at")
    asOf = fields.Date(required=True, attribute="as_of")
    syncRunId = fields.Integer(required=True, attribute="sync_run_id", **NULLABLE)
    source = fields.String(required=True, metadata={"description": "GMC_SYNC, TIS_SYNC or ADMIN"})
    kind = fields.String(required=True)
    old = fields.Dict(required=True, **NULLABLE)
    new = fields.Dict(required=True, **NULLABLE)
    detail = fields.String(required=True, **NULLABLE)
    description = fields.Function(describe_event, required=True, metadata={"description": "The event as a sentence"})


class HistorySchema(ma.Schema):
    items = fields.List(fields.Nested(HistoryEventSchema), required=True)


class RejectionSchema(ma.Schema):
    source = fields.String(required=True)
    locator = fields.String(required=True)
    key = fields.String(required=True, attribute="record_key", **NULLABLE)
    field = fields.String(required=True, **NULLABLE)
    message = fields.String(required=True)


class ChangesArgs(ma.Schema):
    since = fields.String(
        metadata={
            "description": "The nextCursor (or an item's cursor) last seen, or an RFC 3339 time for a first pull; "
            "none: from the oldest change kept"
        }
    )
    pageSize = fields.Integer(load_default=CHANGES_PAGE_SIZE, validate=validate.Range(min=1, max=CHANGES_MAX_PAGE_SIZE))


class ChangeSchema(ma.Schema):
    cursor = fields.String(required=True, metadata={"description": "Resume after this item"})
    changedAt = fields.String(required=True, metadata={"format": "date-time"})
    gmcReferenceNumber = fields.String(required=True)
    kind = fields.String(
        required=True,
        metadata={"description": "DECISION, CONNECTION, HIDE, UNHIDE, HIDE_ENDED, ARCHIVED or RESTORED"},
    )
    designatedBody = fields.String(
        required=True, **NULLABLE, metadata={"description": "The body whose view changed; null: Unassigned"}
    )
    queue = fields.String(required=True, **NULLABLE, metadata={"description": "As that body sees the doctor"})
    reason = fields.String(required=True, **NULLABLE)
    visible = fields.Boolean(
        required=True, metadata={"description": "false: the doctor left this body's view (a deletion)"}
    )


class ChangesPageSchema(ma.Schema):
    items = fields.List(fields.Nested(ChangeSchema), required=True)
    nextCursor = fields.String(required=True, metadata={"description": "Pass as since to resume"})


class RunSchema(ma.Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True)
    asOf = fields.String(required=True, metadata={"format": "date"})
    startedAt = fields.String(required=True, metadata={"format": "date-time"})
    finishedAt = fields.String(required=True, **NULLABLE, metadata={"format": "date-time"})
    ruleTable = fields.String(required=True)
    sources = fields.Dict(required=True, metadata={"description": "Per source: fetched, and why not"})
    queues = fields.Dict(required=True, metadata={"description": "Per queue: before, after, in, out"})
    archived = fields.Integer(required=True, metadata={"description": "Doctors nobody holds, archived by the run"})
    restored = fields.Integer(required=True, metadata={"description": "Archived doctors back in a source"})
    rejectedRecords = fields.Integer(required=True)
    error = fields.String(required=True, **NULLABLE)
    rejections = fields.List(fields.Nested(RejectionSchema), metadata={"description": "National callers only"})


class RunListSchema(ma.Schema):
    items = fields.List(fields.Nested(RunSchema), required=True)


class RunStartedSchema(ma.Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True)


class RuleRowSchema(ma.Schema):
    number = fields.Integer(required=True)
    reason = fields.String(required=True)
    label = fields.String(required=True)
    description = fields.String(required=True)
    queue = fields.String(required=True)
    visibleTo = fields.List(fields.String(), required=True)
    when = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)


class FactSchema(ma.Schema):
    name = fields.String(required=True)
    meaning = fields.String(required=True)
    domain = fields.List(fields.Raw(), required=True)


class RuleTableSchema(ma.Schema):
    label = fields.String(required=True)
    name = fields.String(required=True)
    version = fields.String(required=True)
    fingerprint = fields.String(required=True)
    hitPolicy = fields.String(required=True)
    facts = fields.List(fields.Nested(FactSchema), required=True)
    rows = fields.List(fields.Nested(RuleRowSchema), required=True)


class PreviewArgs(PageArgs):
    asOf = fields.Date(
        metadata={"description": "Decide as on this day (default: today in London); 2000-01-01 to a year from today"}
    )


class PlacedSchema(ma.Schema):
    queue = fields.String(required=True, allow_none=True, metadata={"description": "null: not decided yet"})
    reason = fields.String(required=True, allow_none=True)


class MoveSchema(ma.Schema):
    gmcReferenceNumber = fields.String(required=True, attribute="gmc_number")
    from_ = fields.Nested(PlacedSchema, required=True, data_key="from", attribute="placed_from")
    to = fields.Nested(PlacedSchema, required=True, attribute="placed_to")
    designatedBodies = fields.List(
        fields.String(),
        required=True,
        attribute="designated_bodies",
        metadata={"description": "Every body that sees the doctor before or after"},
    )


class RulePreviewSchema(ma.Schema):
    asOf = fields.Date(required=True)
    ruleTable = fields.String(required=True, metadata={"description": "The installed rule table, as label@version"})
    doctors = fields.Integer(required=True, metadata={"description": "Doctors decided"})
    moves = fields.List(
        fields.Nested(MoveSchema),
        required=True,
        metadata={"description": "This page of the doctors whose queue, reason or bodies would change"},
    )
    total = fields.Integer(required=True, metadata={"description": "Moves the caller's bodies see, on every page"})
    page = fields.Integer(required=True)
    pageSize = fields.Integer(required=True)
