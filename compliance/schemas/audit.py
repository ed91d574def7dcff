"""Contracts of the audit endpoints."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..engine.vocabulary import REQUIREMENTS, TRANSACTION_TYPES
from .catalogue import PageQuerySchema
from .classify import EndUserSchema, _today, supported_as_of
from .common import CountryCode

TRANSACTION_TYPE_DESCRIPTION = (
    "export (from the US; the default), reexport (from abroad) or in_country_transfer: every product of the "
    "catalogue is audited as this transaction. The January 2026 China case-by-case policy covers exports from "
    "the US only.")


class AuditCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    as_of = fields.Date(load_default=_today, validate=supported_as_of, metadata={
        "description": "Rules in force on this date (YYYY-MM-DD); 2022-10-07 to three years from today"})
    destinations = fields.List(CountryCode(), load_default=None, validate=validate.Length(min=1, max=250),
                               metadata={"description": "ISO country codes, e.g. [\"CN\", \"AE\"]; "
                                                        "default: the catalogue's watched destinations"})
    end_user = fields.Nested(EndUserSchema)
    transaction_type = fields.String(load_default="export", validate=validate.OneOf(TRANSACTION_TYPES),
                                     metadata={"description": TRANSACTION_TYPE_DESCRIPTION})


class AuditsQuerySchema(PageQuerySchema):
    class Meta:
        unknown = RAISE


class AuditResultsQuerySchema(PageQuerySchema):
    class Meta:
        unknown = RAISE

    destination = CountryCode(metadata={"description": "Only this destination (one of the audit's)"})
    requirement = fields.String(validate=validate.OneOf(REQUIREMENTS))


class AuditReportQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    destination = CountryCode()
    requirement = fields.String(validate=validate.OneOf(REQUIREMENTS))


# ---------------------------------------------------------------- responses

class AuditEndUserSchema(Schema):
    headquarters = fields.String(allow_none=True, metadata={"description": "End user's headquarters country"})


class AuditProgressSchema(Schema):
    products_done = fields.Integer(required=True)
    products_total = fields.Integer(required=True)
    chunks_done = fields.Integer(required=True)
    chunks_total = fields.Integer(required=True)
    percent = fields.Float(required=True)


class AuditCountsSchema(Schema):
    """Counts of the audited products (partial while the audit runs, from the chunks done)."""

    products = fields.Integer(required=True)
    by_eccn = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                          metadata={"description": "Products per ECCN ('none': not listed)"})
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    licences = fields.Dict(keys=fields.String(), values=fields.Dict(
        keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Integer())), required=True,
        metadata={"description": "destination -> requirement -> review policy ('none', 'unknown' or the policy) "
                                 "-> products"})
    determinations_needing_review = fields.Integer(metadata={
        "description": "Done audits: determinations in force that this audit's answers contradict"})


class AuditTimingsSchema(Schema):
    queued_at = fields.String(allow_none=True)
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)
    queue_seconds = fields.Float(allow_none=True)
    seconds = fields.Float(allow_none=True)
    products_per_second = fields.Float(allow_none=True)


class AuditSchema(Schema):
    """An audit: what was asked (date, destinations, end user, transaction type, pinned rule revision), its
    status, progress, counts and timings (services.audit_results.audit_status)."""

    id = fields.Integer(required=True)
    url = fields.String(metadata={"description": "The audit's URL"})
    catalogue_id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["pending", "running", "done", "failed"]))
    as_of = fields.String(required=True, metadata={"description": "Rules in force on this date"})
    destinations = fields.List(fields.String(), required=True)
    end_user = fields.Nested(AuditEndUserSchema, required=True)
    transaction_type = fields.String(required=True, validate=validate.OneOf(TRANSACTION_TYPES))
    ruleset_revision = fields.String(required=True, metadata={"description": "The rule revision pinned at creation"})
    rule_version_id = fields.Integer(required=True)
    requested_by = fields.String(required=True)
    error = fields.String(allow_none=True)
    progress = fields.Nested(AuditProgressSchema, required=True)
    counts = fields.Nested(AuditCountsSchema, required=True)
    timings = fields.Nested(AuditTimingsSchema, required=True)


class AuditSummarySchema(Schema):
    """An audit as listed."""

    id = fields.Integer(required=True)
    url = fields.String(metadata={"description": "The audit's URL"})
    catalogue_id = fields.Integer(required=True)
    status = fields.String(required=True)
    as_of = fields.String(required=True)
    destinations = fields.List(fields.String(), required=True)
    transaction_type = fields.String(required=True)
    total = fields.Integer(required=True, metadata={"description": "Products audited"})
    created_at = fields.String(allow_none=True)


class AuditResultSchema(Schema):
    """One product x destination of an audit."""

    product_id = fields.Integer(required=True)
    sku = fields.String(required=True)
    eccn = fields.String(allow_none=True)
    status = fields.String(required=True)
    destination = fields.String(required=True)
    requirement = fields.String(required=True)
    review_policy = fields.String(allow_none=True)
    exceptions = fields.List(fields.String(), required=True)
    rule_ids = fields.List(fields.String(), required=True, metadata={"description": "Licence rules that decided"})
    margins = fields.String(allow_none=True, metadata={
        "description": "';'-joined metric+op+threshold:margin (value - threshold) of the leaves that decided"})
    missing = fields.String(allow_none=True, metadata={"description": "';'-joined inputs the answer needed"})
