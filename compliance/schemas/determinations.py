"""Contracts of determinations, their review feed and exports, and of the decision log."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..engine.vocabulary import STATUSES
from .common import PaginationQuerySchema, QueryBoolean, StrictBoolean, id_range, page_range

STATES = ("in_force", "pending_approval", "superseded")
STANDING_STATES = ("agrees", "needs_review", "undetermined", "pending_approval")


class PageQuery(PaginationQuerySchema):
    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=page_range, metadata={"description": "1-based page"})
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000),
                              metadata={"description": "Items per page (1-1000)"})


class BasisSchema(Schema):
    class Meta:
        unknown = RAISE

    spec_figures = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=100)),
                               values=fields.Raw(), validate=validate.Length(max=100), metadata={
                                   "description": "The figures the determination rests on, e.g. {\"tpp\": 4800, "
                                                  "\"die_area_mm2\": 814}"})
    datasheet = fields.String(validate=validate.Length(max=1000),
                              metadata={"description": "A datasheet reference or the name of an attachment"})
    text = fields.String(validate=validate.Length(max=20000), metadata={"description": "The officer's reasoning"})


class DeterminationCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    sku = fields.String(required=True, validate=validate.Length(min=1, max=200),
                        metadata={"description": "The catalogue product's SKU"})
    eccn = fields.String(required=True, validate=validate.Length(min=1, max=32), metadata={
        "description": "The determined ECCN (e.g. 3A090.a, 5A992.c), EAR99, or NOT_SUBJECT (not subject to the EAR)"})
    basis = fields.Nested(BasisSchema, required=True,
                          metadata={"description": "At least one of spec_figures, datasheet and text"})
    rule_revision = fields.String(validate=validate.Length(equal=64), metadata={
        "description": "The published rule revision it is made under (default: the current one)"})
    as_of = fields.Date(metadata={"description": "Date of the rules applied (default: today)"})


class ApprovalSchema(Schema):
    class Meta:
        unknown = RAISE

    note = fields.String(validate=validate.Length(max=5000), metadata={"description": "The approver's note"})


class PolicySchema(Schema):
    class Meta:
        unknown = RAISE

    four_eyes = StrictBoolean(required=True, metadata={
        "description": "New determinations of this catalogue need a second person's approval"})


class PolicyViewSchema(Schema):
    catalogue_id = fields.Integer(required=True)
    four_eyes = fields.Boolean(required=True)
    updated_by = fields.String(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)


class ComputedSnapshotSchema(Schema):
    eccn = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(STATUSES))
    missing = fields.List(fields.String())


class ApprovalViewSchema(Schema):
    required = fields.Boolean()
    approved_by = fields.String(allow_none=True)
    approved_at = fields.DateTime(allow_none=True)
    note = fields.String(allow_none=True)


class DeterminationSchema(Schema):
    """One determination (immutable: approval and supersession are recorded once beside it)."""

    id = fields.Integer(required=True)
    catalogue_id = fields.Integer()
    product_id = fields.Integer()
    sku = fields.String()
    product_name = fields.String()
    eccn = fields.String(metadata={"description": "An ECCN, EAR99 or NOT_SUBJECT"})
    basis = fields.Dict()
    state = fields.String(validate=validate.OneOf(STATES))
    rule_version = fields.Integer()
    ruleset_revision = fields.String()
    as_of = fields.Date()
    computed = fields.Nested(ComputedSnapshotSchema, metadata={
        "description": "The engine's answer for the product's spec under that revision when it was recorded"})
    agrees_with_computed = fields.Boolean()
    decision_id = fields.Integer(allow_none=True, metadata={"description": "The decision record of that answer "
                                                                          "(replay it: POST /decisions/{id}/replay)"})
    input_sha256 = fields.String(metadata={"description": "SHA-256 of the canonical input: spec, ECCN, basis, "
                                                          "date and revision"})
    recorded_by = fields.String()
    recorded_at = fields.DateTime()
    approval = fields.Nested(ApprovalViewSchema)
    superseded_by = fields.Integer(allow_none=True)
    superseded_at = fields.DateTime(allow_none=True)


class DeterminationQuerySchema(PageQuery):
    catalogue_id = fields.Integer(validate=id_range)
    sku = fields.String(validate=validate.Length(max=200))
    eccn = fields.String(validate=validate.Length(max=32))
    recorded_by = fields.String(validate=validate.Length(max=200))
    state = fields.String(validate=validate.OneOf(STATES))


class ComputedNowSchema(Schema):
    eccn = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    ruleset_revision = fields.String(allow_none=True)
    classified_on = fields.Date(allow_none=True)


class StandingSchema(Schema):
    """A product's computed answer (current rules, today) beside its determination in force."""

    product_id = fields.Integer()
    sku = fields.String()
    name = fields.String()
    state = fields.String(validate=validate.OneOf(STANDING_STATES))
    computed = fields.Nested(ComputedNowSchema)
    determination = fields.Nested(DeterminationSchema, allow_none=True)
    pending = fields.Nested(DeterminationSchema, allow_none=True,
                            metadata={"description": "A newer determination awaiting approval"})
    needs_review = fields.Boolean()
    reasons = fields.List(fields.String())


class StandingQuerySchema(PageQuery):
    needs_review = QueryBoolean()
    state = fields.String(validate=validate.OneOf(STANDING_STATES))
    sku = fields.String(validate=validate.Length(max=200))


class StandingCountsSchema(Schema):
    products = fields.Integer()
    needs_review = fields.Integer()


class ReviewStateSchema(Schema):
    eccn = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    ruleset_revision = fields.String(allow_none=True)


class ReviewSchema(Schema):
    """An entry of the determinations' change feed."""

    id = fields.Integer()
    determination_id = fields.Integer()
    catalogue_id = fields.Integer()
    product_id = fields.Integer()
    sku = fields.String()
    cause = fields.String(metadata={"description": "recorded | rule_change | spec_change"})
    run_id = fields.Integer(allow_none=True)
    determined_eccn = fields.String()
    needs_review = fields.Boolean()
    reason = fields.String()
    old = fields.Nested(ReviewStateSchema)
    new = fields.Nested(ReviewStateSchema)
    created_at = fields.String(allow_none=True)


class ReviewQuerySchema(PageQuery):
    catalogue_id = fields.Integer(validate=id_range)
    sku = fields.String(validate=validate.Length(max=200))
    revision = fields.String(validate=validate.Length(min=4, max=64))
    run_id = fields.Integer(validate=id_range)
    determination_id = fields.Integer(validate=id_range)


class ExportQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "json", "xlsx"]))
    catalogue_id = fields.Integer(validate=id_range)


class AuditDeterminationsSchema(Schema):
    needs_review = fields.Integer()
    items = fields.List(fields.Dict())


# ---------------------------------------------------------------- decision log

class DecisionLogQuerySchema(PageQuery):
    kind = fields.String(validate=validate.OneOf(["classify", "determination", "audit"]))
    product = fields.String(validate=validate.Length(min=1, max=300), metadata={"description": "SKU or name"})
    eccn = fields.String(validate=validate.Length(min=1, max=32),
                         metadata={"description": "ECCN; 'none' for answers outside 3A090/4A090"})
    actor = fields.String(validate=validate.Length(min=1, max=200))
    revision = fields.String(validate=validate.Length(min=4, max=64),
                             metadata={"description": "Rule revision, or a prefix of it"})
    from_ = fields.Date(data_key="from", metadata={"description": "On or after this day (UTC)"})
    to = fields.Date(metadata={"description": "On or before this day (UTC)"})


class DecisionLogEntrySchema(Schema):
    kind = fields.String(validate=validate.OneOf(["classify", "determination", "audit"]))
    decision_id = fields.Integer(allow_none=True)
    determination_id = fields.Integer(allow_none=True)
    audit_id = fields.Integer(allow_none=True)
    product_id = fields.Integer(allow_none=True)
    product = fields.String(allow_none=True)
    eccn = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    as_of = fields.Date()
    ruleset_revision = fields.String()
    actor = fields.String()
    at = fields.DateTime()
    input_sha256 = fields.String(allow_none=True, metadata={
        "description": "SHA-256 of the canonical JSON of the stored request (null for audit results)"})
    determination_sha256 = fields.String(allow_none=True)
    replay = fields.String(allow_none=True)
    note = fields.String()


class ReplayCurrentSchema(Schema):
    ruleset_revision = fields.String()
    rule_version = fields.Integer()
    same_as_recorded = fields.Boolean()
    differences = fields.List(fields.String())
    answer = fields.Dict()


class ReplaySchema(Schema):
    decision_id = fields.Integer()
    input_sha256 = fields.String()
    ruleset_revision = fields.String()
    as_of = fields.Date()
    identical = fields.Boolean(metadata={"description": "The cited revision answers exactly as recorded"})
    differences = fields.List(fields.String())
    answer = fields.Dict()
    current = fields.Nested(ReplayCurrentSchema)

