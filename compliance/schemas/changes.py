"""Contracts of the change feed, point-in-time endpoints and webhooks (API keys: schemas/keys.py)."""
from __future__ import annotations

from datetime import date

from marshmallow import RAISE, Schema, fields, validate
from webargs.fields import DelimitedList

from ..engine.vocabulary import TRANSACTION_TYPES
from .classify import supported_as_of
from .common import CountryCode, TabularExportQuerySchema, id_range, page_range, version_range

TRANSACTION_TYPE_DESCRIPTION = (
    "export (from the US; the default), reexport (from abroad) or in_country_transfer: every product is evaluated "
    "as this transaction. The January 2026 China case-by-case policy covers exports from the US only.")
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


class CellStandingSchema(Schema):
    """A product's standing for one destination on one date (point-in-time views)."""

    eccn = fields.String(allow_none=True, metadata={"description": "null: not listed"})
    status = fields.String(required=True)
    requirement = fields.String(required=True)
    review_policy = fields.String(allow_none=True)


class CatalogueDiffItemSchema(Schema):
    """One product x destination whose standing differs between the two dates."""

    product_id = fields.Integer(required=True)
    sku = fields.String(required=True)
    destination = fields.String(required=True)
    from_ = fields.Nested(CellStandingSchema, required=True, data_key="from", attribute="from",
                          metadata={"description": "The standing on `from`"})
    to = fields.Nested(CellStandingSchema, required=True, metadata={"description": "The standing on `to`"})
    cause_rule_ids = fields.List(fields.String(), required=True,
                                 metadata={"description": "Rules whose coming into or out of force caused it"})


class TransitionSchema(Schema):
    """How many product x destination cells moved from one standing to another."""

    destination = fields.String(required=True)
    count = fields.Integer(required=True)
    from_ = fields.Nested(CellStandingSchema, required=True, data_key="from", attribute="from")
    to = fields.Nested(CellStandingSchema, required=True)


CATALOGUE_DIFF_FIELDS = {
    "catalogue_id": fields.Integer(required=True),
    "from_": fields.String(required=True, data_key="from", attribute="from"),
    "to": fields.String(required=True),
    "rule_version": fields.Integer(required=True, metadata={"description": "The rule version evaluated (both dates)"}),
    "ruleset_revision": fields.String(required=True),
    "destinations": fields.List(fields.String(), required=True),
    "transaction_type": fields.String(required=True),
    "products": fields.Integer(required=True, metadata={"description": "Products in the catalogue"}),
    "changed_products": fields.Integer(required=True),
    "changed_rows": fields.Integer(required=True, metadata={"description": "Changed product x destination cells "
                                                                          "(the list's total)"}),
    "transitions": fields.List(fields.Nested(TransitionSchema), required=True,
                               metadata={"description": "Counts per destination x old x new standing, most first"}),
    "seconds": fields.Float(required=True),
}


class AsOfLicenceSchema(Schema):
    requirement = fields.String(required=True)
    review_policy = fields.String(allow_none=True)


class CatalogueAsOfItemSchema(Schema):
    """One product's standing as of the date, per destination."""

    product_id = fields.Integer(required=True)
    sku = fields.String(required=True)
    eccn = fields.String(allow_none=True, metadata={"description": "null: not listed"})
    status = fields.String(required=True)
    licences = fields.Dict(keys=fields.String(), values=fields.Nested(AsOfLicenceSchema), required=True,
                           metadata={"description": "destination -> requirement and review policy"})


CATALOGUE_AS_OF_FIELDS = {
    "catalogue_id": fields.Integer(required=True),
    "as_of": fields.String(required=True),
    "rule_version": fields.Integer(required=True),
    "ruleset_revision": fields.String(required=True),
    "destinations": fields.List(fields.String(), required=True),
    "transaction_type": fields.String(required=True),
    "products": fields.Integer(required=True, metadata={"description": "Products in the catalogue (the list's total)"}),
    "eccn_counts": fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                               metadata={"description": "Products per ECCN ('none': not listed)"}),
    "requirements": fields.Dict(keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Integer()),
                                required=True, metadata={"description": "destination -> requirement -> products"}),
}


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

    from_ = fields.Date(required=True, data_key="from", validate=supported_as_of)
    to = fields.Date(required=True, validate=supported_as_of)
    destinations = DelimitedList(CountryCode(), metadata={"description": "Comma-separated; default the catalogue's watched ones"})
    ruleset_revision = fields.String(validate=validate.Length(equal=64))
    transaction_type = fields.String(load_default="export", validate=validate.OneOf(TRANSACTION_TYPES),
                                     metadata={"description": TRANSACTION_TYPE_DESCRIPTION})


class CatalogueAsOfQuerySchema(PaginationQuerySchema):
    class Meta:
        unknown = RAISE

    as_of = fields.Date(load_default=date.today, validate=supported_as_of, metadata={
        "description": "Default today; 2022-10-07 (the first 3A090/4A090 rule) to three years from today"})
    destinations = DelimitedList(CountryCode())
    ruleset_revision = fields.String(validate=validate.Length(equal=64))
    transaction_type = fields.String(load_default="export", validate=validate.OneOf(TRANSACTION_TYPES),
                                     metadata={"description": TRANSACTION_TYPE_DESCRIPTION})


class WebhookCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.String(required=True, validate=validate.Length(min=8, max=2000))
    secret = fields.String(validate=validate.Length(min=16, max=200),
                           metadata={"description": "HMAC secret (default: generated and returned once)"})
    events = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)), validate=validate.Length(min=1))


class WebhookSchema(Schema):
    """A webhook subscription (never its secret)."""

    id = fields.Integer(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(), required=True, metadata={"description": f"Of {', '.join(WEBHOOK_EVENTS)}"})
    active = fields.Boolean(required=True, metadata={"description": "False once deactivated"})
    created_by = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)


class CreatedWebhookSchema(WebhookSchema):
    secret = fields.String(required=True, metadata={
        "description": "The signing secret (whsec_... when generated): shown this once"})


class DeliverySchema(Schema):
    """One delivery of an event to a subscription, with its attempt log."""

    id = fields.Integer(required=True)
    subscription_id = fields.Integer(required=True)
    event = fields.String(required=True)
    event_id = fields.String(allow_none=True, metadata={
        "description": "The event's id (the webhook-id header; the same on a redelivery)"})
    status = fields.String(required=True, validate=validate.OneOf(["pending", "delivered", "failed"]))
    attempts = fields.Integer(required=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    log = fields.List(fields.Dict(), required=True, metadata={
        "description": "Attempts (attempt, at, status_code, error, ms) and redelivery notes (redelivery_of, by, at)"})
    next_attempt_at = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    delivered_at = fields.String(allow_none=True)


class DeliveriesQueuedSchema(Schema):
    deliveries = fields.List(fields.Integer(), metadata={"description": "Ids of the deliveries queued"})


class DeliveriesQuerySchema(PageQuerySchema):
    class Meta:
        unknown = RAISE

    status = fields.String(validate=validate.OneOf(["pending", "delivered", "failed"]),
                           metadata={"description": "Only deliveries in this state"})
