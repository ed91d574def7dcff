"""Contracts of orders (parties, lines, holds, releases) and licences."""
from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from ..engine.vocabulary import TRANSACTION_TYPES
from .common import CountryCode, Number, QueryBoolean, StrictBoolean, id_range, page_range
from .product import ProductSchema
from .screening import HitSchema, PartySchema, SnapshotRefSchema

ORDER_STATUSES = ("held", "released", "rejected")
REASON_CODES = ("licence_required", "screening_hit", "unknown_inputs")
MAX_LINES = 1000
CHANGE_KINDS = ("held", "no_longer_blocked", "reasons_changed")


class OrderParentSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(validate=validate.Length(min=1, max=1000))
    headquarters = CountryCode(metadata={"description": "Where the end user's parent is headquartered "
                                                        "(the headquarters rule)"})


class OrderEndUserSchema(PartySchema):
    parent = fields.Nested(OrderParentSchema)


class OrderLineInSchema(Schema):
    class Meta:
        unknown = RAISE

    sku = fields.String(validate=validate.Length(min=1, max=200))
    catalogue_id = fields.Integer(validate=id_range)
    product = fields.Nested(ProductSchema, metadata={"description": "An inline product (as POST /classify)"})
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10**9))
    value = Number(validate=validate.Range(min=0), metadata={"description": "Line value (licence value limits)"})

    @validates_schema
    def _product_or_catalogue(self, data, **kwargs):
        if "product" in data:
            if "catalogue_id" in data:
                raise ValidationError("give either product or catalogue_id + sku", "catalogue_id")
        elif "sku" not in data or "catalogue_id" not in data:
            raise ValidationError("give product, or catalogue_id and sku",
                                  "sku" if "sku" not in data else "catalogue_id")


class OrderCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    reference = fields.String(required=True, validate=validate.Length(min=1, max=200))
    date = fields.Date(required=True, metadata={"description": "Order date: the rules in force on it apply"})
    ship_to = CountryCode(required=True)
    transaction_type = fields.String(load_default="export", validate=validate.OneOf(TRANSACTION_TYPES))
    end_user = fields.Nested(OrderEndUserSchema, required=True)
    consignees = fields.List(fields.Nested(PartySchema), load_default=list, validate=validate.Length(max=50))
    end_use = fields.String(validate=validate.Length(max=5000))
    lines = fields.List(fields.Nested(OrderLineInSchema), required=True,
                        validate=validate.Length(min=1, max=MAX_LINES))


class HoldReasonSchema(Schema):
    code = fields.String(validate=validate.OneOf(REASON_CODES))
    message = fields.String()
    citation = fields.String(allow_none=True)
    party_role = fields.String()
    entry_id = fields.Integer()


class LineClassificationSchema(Schema):
    eccn = fields.String(allow_none=True)
    status = fields.String()
    reason = fields.String(allow_none=True)
    missing = fields.List(fields.String())
    ruleset_revision = fields.String()
    as_of = fields.String()


class LineLicenceAnswerSchema(Schema):
    destination = fields.String()
    requirement = fields.String()
    review_policy = fields.String(allow_none=True)
    exceptions = fields.List(fields.String())
    rule_ids = fields.List(fields.String())
    citations = fields.List(fields.String())
    missing = fields.List(fields.String())
    notes = fields.List(fields.String())


class IssuedLicenceRefSchema(Schema):
    id = fields.Integer()
    number = fields.String()


class LineReleaseViewSchema(Schema):
    basis = fields.String(metadata={"description": "auto (nothing held it) | licence | override"})
    by = fields.String(allow_none=True)
    at = fields.DateTime(allow_none=True)
    reason = fields.String(allow_none=True)


class OrderLineSchema(Schema):
    id = fields.Integer(required=True)
    seq = fields.Integer()
    sku = fields.String(allow_none=True)
    catalogue_id = fields.Integer(allow_none=True)
    product = fields.Dict()
    quantity = fields.Integer()
    value = fields.Float(allow_none=True)
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))
    classification = fields.Nested(LineClassificationSchema)
    licences = fields.List(fields.Nested(LineLicenceAnswerSchema),
                           metadata={"description": "The engine's licence answer for the destination"})
    reasons = fields.List(fields.Nested(HoldReasonSchema), metadata={"description": "Why the line is held"})
    licence = fields.Nested(IssuedLicenceRefSchema, allow_none=True, metadata={"description": "The licence drawn"})
    release = fields.Nested(LineReleaseViewSchema, allow_none=True)


class PartyScreeningSchema(Schema):
    role = fields.String(validate=validate.OneOf(("end_user", "consignee", "parent")))
    party = fields.Nested(PartySchema)
    party_fingerprint = fields.String()
    status = fields.String()
    hits = fields.List(fields.Nested(HitSchema))


class OrderDecisionSchema(Schema):
    by = fields.String()
    at = fields.DateTime()
    reason = fields.String(allow_none=True)


class OrderSchema(Schema):
    """An order as checked: `status` held (any line held) / released / rejected."""

    id = fields.Integer(required=True)
    reference = fields.String()
    date = fields.Date()
    ship_to = fields.String()
    transaction_type = fields.String()
    end_use = fields.String(allow_none=True)
    headquarters = fields.String(allow_none=True, metadata={"description": "From the end user's parent"})
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))
    needs_review = fields.Boolean(metadata={"description": "A re-check found a held line no longer blocked"})
    ruleset_revision = fields.String()
    rule_version = fields.Integer()
    list_snapshots = fields.List(fields.Nested(SnapshotRefSchema))
    lines = fields.List(fields.Nested(OrderLineSchema))
    screening = fields.List(fields.Nested(PartyScreeningSchema))
    created_by = fields.String()
    created_at = fields.DateTime()
    checked_at = fields.DateTime()
    decision = fields.Nested(OrderDecisionSchema, allow_none=True)


class OrderQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=page_range)
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))
    ship_to = CountryCode()
    reference = fields.String(validate=validate.Length(max=200))
    needs_review = QueryBoolean()
    reason = fields.String(validate=validate.OneOf(REASON_CODES),
                           metadata={"description": "Orders with a held line held for this reason"})


class ReleaseSchema(Schema):
    class Meta:
        unknown = RAISE

    licence_id = fields.Integer(validate=id_range, metadata={"description": "A licence that covers the line"})
    override = StrictBoolean(load_default=False, metadata={
        "description": "Release without a licence (an officer other than the order's creator; needs a reason)"})
    reason = fields.String(validate=validate.Length(max=5000))

    @validates_schema
    def _one_basis(self, data, **kwargs):
        if data.get("override") and "licence_id" in data:
            raise ValidationError("give licence_id or override, not both", "override")
        if not data.get("override") and "licence_id" not in data:
            raise ValidationError(["missing: give a licence_id, or override: true with a reason"], "licence_id")
        if data.get("override") and not (data.get("reason") or "").strip():
            raise ValidationError(["missing: an override needs a reason"], "reason")


class RejectSchema(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))


class IssuedLicenceSchema(Schema):
    """A licence of the register, with its balance."""

    class Meta:
        unknown = RAISE

    id = fields.Integer(dump_only=True)
    number = fields.String(required=True, validate=validate.Length(min=1, max=100))
    holder = fields.String(required=True, validate=validate.Length(min=1, max=300))
    eccns = fields.List(fields.String(validate=validate.Length(min=1, max=32)), load_default=list,
                        metadata={"description": "ECCNs covered (empty: only the products listed)"})
    products = fields.List(fields.String(validate=validate.Length(min=1, max=200)), load_default=list,
                           metadata={"description": "SKUs covered"})
    destinations = fields.List(CountryCode(), required=True, validate=validate.Length(min=1))
    parties = fields.List(fields.String(validate=validate.Length(min=1, max=1000)), load_default=list,
                          metadata={"description": "End users named on the licence (empty: any)"})
    quantity_limit = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=0))
    value_limit = Number(allow_none=True, validate=validate.Range(min=0))
    quantity_used = fields.Integer(dump_only=True)
    value_used = fields.Float(dump_only=True)
    quantity_remaining = fields.Integer(dump_only=True, allow_none=True)
    value_remaining = fields.Float(dump_only=True, allow_none=True)
    valid_from = fields.Date(required=True)
    valid_to = fields.Date(required=True)
    notes = fields.String(allow_none=True, validate=validate.Length(max=5000))
    created_by = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    drawdowns = fields.List(fields.Dict(), dump_only=True)

    @validates_schema
    def _dates(self, data, **kwargs):
        if "valid_from" in data and "valid_to" in data and data["valid_to"] < data["valid_from"]:
            raise ValidationError("must not be before valid_from", "valid_to")
        if not data.get("eccns") and not data.get("products") and "number" in data:
            raise ValidationError("give the ECCNs or the products the licence covers", "eccns")


class IssuedLicenceQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=page_range)
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    destination = CountryCode()
    valid_on = fields.Date()


class OrderChangeSchema(Schema):
    """An entry of the orders' change feed: what a re-check changed on an open order's line."""

    id = fields.Integer(required=True)
    order_id = fields.Integer()
    line_id = fields.Integer(allow_none=True)
    line_seq = fields.Integer(allow_none=True)
    cause = fields.String(metadata={"description": "list_snapshot:<id> or rule_version:<n>"})
    kind = fields.String(validate=validate.OneOf(CHANGE_KINDS))
    old_status = fields.String()
    new_status = fields.String()
    old_reasons = fields.List(fields.Nested(HoldReasonSchema))
    new_reasons = fields.List(fields.Nested(HoldReasonSchema))
    created_at = fields.DateTime()


class OrderChangeQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=page_range)
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    order_id = fields.Integer(validate=id_range)
    kind = fields.String(validate=validate.OneOf(CHANGE_KINDS))
    cause = fields.String(validate=validate.Length(max=64))


