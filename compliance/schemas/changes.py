"""Contracts of the change feed, point-in-time endpoints, webhooks and API keys."""
from __future__ import annotations

from datetime import date

from marshmallow import RAISE, Schema, fields, validate
from webargs.fields import DelimitedList

from .common import CountryCode, TabularExportQuerySchema, id_range, page_range, version_range

WEBHOOK_EVENTS = ["changes.published", "determination.needs_review", "order.held", "order.released", "audit.completed",
                  "audit.failed", "reevaluation.completed", "ping"]


class PageQuerySchema(Schema):
    """Pagination. (schemas.common.PaginationQuerySchema validates with lambdas returning False, which
    marshmallow 4 no longer treats as failures; validate.Range does.)"""

    page = fields.Integer(load_default=1, validate=page_range, metadata={"description": "1-based page"})
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000),
                              metadata={"description": "Items per page (1-1000)"})


PaginationQuerySchema = PageQuerySchema


class ChangeStandingSchema(Schema):
    """A product's standing for one destination, before or after a change."""

    eccn = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    requirement = fields.String(allow_none=True)
    review_policy = fields.String(allow_none=True)


class ChangeSchema(Schema):
    """One change record: a product x destination whose standing a rule publish changed."""

    id = fields.Integer(required=True)
    run_id = fields.Integer(allow_none=True, metadata={"description": "The re-evaluation run that recorded it"})
    catalogue_id = fields.Integer(required=True)
    catalogue_name = fields.String(allow_none=True, metadata={"description": "None once the catalogue is deleted"})
    product_id = fields.Integer(allow_none=True)
    sku = fields.String(required=True)
    product_name = fields.String(allow_none=True, metadata={"description": "None once the product is deleted"})
    destination = fields.String(required=True)
    as_of = fields.String(required=True, metadata={"description": "The date the standing was evaluated as of"})
    from_revision = fields.String(allow_none=True)
    to_revision = fields.String(required=True)
    old = fields.Nested(ChangeStandingSchema, required=True)
    new = fields.Nested(ChangeStandingSchema, required=True)
    cause_rule_ids = fields.List(fields.String(), required=True,
                                 metadata={"description": "Rules whose change caused it"})
    created_at = fields.String(allow_none=True)


class ChangesFilterSchema(Schema):
    class Meta:
        unknown = RAISE

    catalogue_id = fields.Integer(validate=id_range)
    product = fields.String(validate=validate.Length(min=1, max=200), metadata={"description": "Product id or SKU"})
    destination = CountryCode()
    revision = fields.String(validate=validate.Length(min=6, max=64),
                             metadata={"description": "Rule revision (full or prefix) the change led to"})
    version = fields.Integer(validate=version_range, metadata={"description": "Rule version number the change led to"})
    run_id = fields.Integer(validate=id_range)


class ChangesQuerySchema(PaginationQuerySchema, ChangesFilterSchema):
    class Meta:
        unknown = RAISE


class ChangesExportQuerySchema(TabularExportQuerySchema, ChangesFilterSchema):
    """The change feed's filters and the export format."""

    class Meta:
        unknown = RAISE


class CatalogueDiffQuerySchema(PaginationQuerySchema):
    class Meta:
        unknown = RAISE

    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    destinations = DelimitedList(CountryCode(), metadata={"description": "Comma-separated; default the catalogue's watched ones"})
    ruleset_revision = fields.String(validate=validate.Length(equal=64))


class CatalogueAsOfQuerySchema(PaginationQuerySchema):
    class Meta:
        unknown = RAISE

    as_of = fields.Date(load_default=date.today)
    destinations = DelimitedList(CountryCode())
    ruleset_revision = fields.String(validate=validate.Length(equal=64))


class WebhookCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.String(required=True, validate=validate.Length(min=8, max=2000))
    secret = fields.String(validate=validate.Length(min=16, max=200),
                           metadata={"description": "HMAC secret (default: generated and returned once)"})
    events = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)), validate=validate.Length(min=1))


class DeliveriesQueuedSchema(Schema):
    deliveries = fields.List(fields.Integer(), metadata={"description": "Ids of the deliveries queued"})


class DeliveriesQuerySchema(PageQuerySchema):
    class Meta:
        unknown = RAISE

    status = fields.String(validate=validate.OneOf(["pending", "delivered", "failed"]),
                           metadata={"description": "Only deliveries in this state"})


class KeyCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True, validate=validate.OneOf(["viewer", "auditor", "admin"]))


class KeySchema(Schema):
    """An API key as listed: never the key itself (only its prefix)."""

    id = fields.Integer()
    name = fields.String()
    role = fields.String()
    prefix = fields.String()
    created_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True)


class CreatedKeySchema(KeySchema):
    key = fields.String(metadata={"description": "The key: shown this once, stored only as a hash"})


class KeyListSchema(Schema):
    items = fields.List(fields.Nested(KeySchema))
