"""Contracts of the admin rule endpoints: drafts, edit operations, preview, publish, rollback, diff."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from .changes import PageQuerySchema as PaginationQuerySchema
from .common import CountryCode, StrictBoolean, TabularExportQuerySchema, version_range

OP_NAMES = ("set_threshold", "add_rule", "update_rule", "end_rule", "remove_rule", "add_pack", "remove_pack",
            "add_overlay", "set_country_group", "set_vendor", "set_family")


class DraftCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    base_version = fields.Integer(strict=True, validate=version_range,
                                  metadata={"description": "Published version to start from (default: current)"})
    title = fields.String(load_default="", validate=validate.Length(max=300))


class EditOpSchema(Schema):
    """One edit operation; the fields besides `op` depend on it (see the endpoint description)."""

    class Meta:
        unknown = "include"

    op = fields.String(required=True, validate=validate.OneOf(OP_NAMES))


class DraftEditSchema(Schema):
    class Meta:
        unknown = RAISE

    ops = fields.List(fields.Nested(EditOpSchema), required=True, validate=validate.Length(min=1, max=500))


class DraftContentSchema(Schema):
    class Meta:
        unknown = RAISE

    content = fields.Dict(required=True, metadata={"description": "The whole rulebook: {packs: [...], country_groups: {...}}"})


class PreviewSchema(Schema):
    class Meta:
        unknown = RAISE

    as_of = fields.Date(metadata={"description": "Evaluate both rulebooks as of this date (default today)"})
    destinations = fields.List(CountryCode(), validate=validate.Length(min=1, max=250),
                               metadata={"description": "Override every catalogue's watched destinations"})
    item_limit = fields.Integer(load_default=1000, validate=validate.Range(min=0, max=100_000))


class PublishSchema(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    as_of = fields.Date(metadata={"description": "Re-evaluate catalogues as of this date (default today)"})
    confirm = StrictBoolean(load_default=False, metadata={
        "description": "Required when the publish would change more than STORM_GUARD_SHARE of products"})


class DiffQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    from_ = fields.Integer(required=True, data_key="from", validate=version_range)
    to = fields.Integer(required=True, validate=version_range)


class ExportQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    format = fields.String(load_default="zip", validate=validate.OneOf(["zip", "yaml"]))


class AuditTrailQuerySchema(PaginationQuerySchema):
    class Meta:
        unknown = RAISE

    action = fields.String(validate=validate.Length(max=64), metadata={"description": "e.g. rules.publish or rules.*"})
    actor = fields.String(validate=validate.Length(max=200))


class AuditTrailExportQuerySchema(TabularExportQuerySchema):
    action = fields.String(validate=validate.Length(max=64), metadata={"description": "e.g. rules.publish or rules.*"})
    actor = fields.String(validate=validate.Length(max=200))


class DraftListQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(validate=validate.OneOf(["open", "published", "discarded"]))
