"""Contracts of the admin rule endpoints: drafts, edit operations, preview, publish, rollback, diff."""
from __future__ import annotations

from datetime import timezone

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


class RunsQuerySchema(PaginationQuerySchema):
    class Meta:
        unknown = RAISE

    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=1000),
                              metadata={"description": "Items per page (1-1000)"})


class DraftListQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(validate=validate.OneOf(["open", "published", "discarded"]))


# ---------------------------------------------------------------- responses

TIMESTAMP = {"format": "date-time", "description": "ISO 8601 with its UTC offset"}


class UtcDateTime(fields.DateTime):
    """A stored timestamp with its UTC offset on every database (SQLite hands back naive UTC values)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return super()._serialize(value, attr, obj, **kwargs)


class VersionSchema(Schema):
    """A published rule version (immutable): its number, content revision, parent and why it was published."""

    number = fields.Integer(required=True)
    revision = fields.String(required=True, metadata={"description": "sha256 of the content"})
    parent = fields.Integer(required=True, allow_none=True, metadata={"description": "None for the first version"})
    author = fields.String(required=True)
    reason = fields.String(required=True)
    created_at = fields.String(required=True, metadata=TIMESTAMP)
    packs = fields.Integer(required=True, metadata={"description": "Number of rule packs"})
    rules = fields.Integer(required=True, metadata={"description": "Number of rules"})


class VersionDetailSchema(VersionSchema):
    content = fields.Dict(required=True, metadata={"description": "The whole rulebook: {packs: [...], country_groups: {...}}"})


class PublishImpactSchema(Schema):
    """The storm guard's dry run (sent when the publish was not confirmed)."""

    total_products = fields.Integer(required=True)
    changed_products = fields.Integer(required=True)
    changed_rows = fields.Integer(required=True, metadata={"description": "Changed product x destination cells"})
    share_changed = fields.Float(required=True, metadata={"description": "changed_products / total_products"})


class PublishedSchema(VersionSchema):
    """The version a publish (or rollback) created, and the re-evaluation run it started."""

    run_id = fields.Integer(required=True, metadata={"description": "GET /rules/reevaluations/{run_id}"})
    as_of = fields.String(required=True, metadata={"format": "date", "description": "Catalogues re-evaluated as of"})
    impact = fields.Nested(PublishImpactSchema, metadata={"description": "Only when confirm was not sent"})


class FieldChangeSchema(Schema):
    field = fields.String(required=True, metadata={"description": "Path inside the rule or pack, e.g. when.all[1].value"})
    from_ = fields.Raw(required=True, allow_none=True, data_key="from", attribute="from")
    to = fields.Raw(required=True, allow_none=True)


class RuleRefSchema(Schema):
    id = fields.String(required=True)
    pack = fields.String(required=True)


class RuleChangeSchema(RuleRefSchema):
    changes = fields.List(fields.Nested(FieldChangeSchema), required=True)


class RulesDiffSchema(Schema):
    added = fields.List(fields.Nested(RuleRefSchema), required=True)
    removed = fields.List(fields.Nested(RuleRefSchema), required=True)
    changed = fields.List(fields.Nested(RuleChangeSchema), required=True)


class PackChangeSchema(Schema):
    id = fields.String(required=True)
    changes = fields.List(fields.Nested(FieldChangeSchema), required=True,
                          metadata={"description": "Pack fields (rules aside); tests as their counts"})


class PacksDiffSchema(Schema):
    added = fields.List(fields.String(), required=True)
    removed = fields.List(fields.String(), required=True)
    changed = fields.List(fields.Nested(PackChangeSchema), required=True)


class CountryGroupChangeSchema(Schema):
    group = fields.String(required=True)
    change = fields.String(required=True, validate=validate.OneOf(["added", "removed", "changed"]))
    members = fields.List(fields.String(), metadata={
        "description": "added/removed: every member (dated entries as canonical JSON)"})
    added = fields.List(fields.String(), metadata={"description": "changed: members added"})
    removed = fields.List(fields.String(), metadata={"description": "changed: members removed"})
    fields_ = fields.List(fields.String(), data_key="fields", attribute="fields",
                          metadata={"description": "changed: other fields of the group that changed"})


class AliasesDiffSchema(Schema):
    added = fields.List(fields.String(), required=True)
    removed = fields.List(fields.String(), required=True)
    changed = fields.List(fields.String(), required=True)


class ContentDiffSchema(Schema):
    """What changed between two rulebooks."""

    rules = fields.Nested(RulesDiffSchema, required=True)
    packs = fields.Nested(PacksDiffSchema, required=True)
    country_groups = fields.List(fields.Nested(CountryGroupChangeSchema), required=True)
    aliases = fields.Nested(AliasesDiffSchema, required=True)


class VersionDiffSchema(ContentDiffSchema):
    """GET /rules/diff: rules added/removed/changed (field level), packs, country groups and aliases."""

    from_ = fields.Integer(required=True, data_key="from", attribute="from")
    to = fields.Integer(required=True)
    from_revision = fields.String(required=True)
    to_revision = fields.String(required=True)


class AuditEventSchema(Schema):
    """One entry of the activity log: who did what (rules, keys, webhooks ...), when and why."""

    id = fields.Integer(required=True)
    at = UtcDateTime(required=True, metadata={"description": "ISO 8601 with its UTC offset"})
    actor = fields.String(required=True)
    action = fields.String(required=True, metadata={"description": "e.g. rules.publish, rules.draft.edit"})
    target = fields.String(required=True, metadata={"description": "e.g. rule_version:3, draft:7"})
    reason = fields.String(required=True, allow_none=True)
    detail = fields.Dict(required=True, allow_none=True, metadata={"description": "Depends on the action"})


class PackTestCountsSchema(Schema):
    passed = fields.Integer(required=True)
    failed = fields.Integer(required=True)


class ValidationReportSchema(Schema):
    """A rulebook's validity: schema errors with their paths, then failing pack test cases."""

    valid = fields.Boolean(required=True)
    errors = fields.List(fields.String(), required=True)
    revision = fields.String(metadata={"description": "The content's revision (when it is schema-valid)"})
    tests = fields.Nested(PackTestCountsSchema, required=True, allow_none=True,
                          metadata={"description": "The packs' own test cases; None when the schema is invalid"})


class DraftSchema(Schema):
    """A draft: free-form rulebook content being edited, from a published base version."""

    id = fields.Integer(required=True)
    etag = fields.String(required=True, metadata={
        "description": "The draft's version token, as in the ETag header (quotes included): it changes on every "
                       "write; send it as If-Match with a PUT, PATCH, DELETE or publish"})
    base_version = fields.Integer(required=True, metadata={"description": "Number of the version it started from"})
    published_version = fields.Integer(required=True, allow_none=True, metadata={
        "description": "Number of the version it was published as (None unless status is published)"})
    author = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["open", "published", "discarded"]))
    created_at = fields.String(required=True, metadata=TIMESTAMP)
    updated_at = fields.String(required=True, metadata=TIMESTAMP)
    content = fields.Dict(metadata={"description": "The whole rulebook (free-form); not in lists or on discard"})
    validation = fields.Nested(ValidationReportSchema, metadata={"description": "After reads and edits"})


class OutcomeSchema(Schema):
    """A product's outcome for one destination."""

    eccn = fields.String(required=True, allow_none=True)
    status = fields.String(required=True)
    requirement = fields.String(required=True)
    review_policy = fields.String(required=True, allow_none=True)


class PreviewTransitionSchema(Schema):
    destination = fields.String(required=True)
    count = fields.Integer(required=True)
    from_ = fields.Nested(OutcomeSchema, required=True, data_key="from", attribute="from")
    to = fields.Nested(OutcomeSchema, required=True)


class PreviewItemSchema(Schema):
    product_id = fields.Integer(required=True)
    sku = fields.String(required=True)
    destination = fields.String(required=True)
    from_ = fields.Nested(OutcomeSchema, required=True, data_key="from", attribute="from")
    to = fields.Nested(OutcomeSchema, required=True)
    cause_rule_ids = fields.List(fields.String(), required=True)


class CataloguePreviewSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    destinations = fields.List(fields.String(), required=True)
    products = fields.Integer(required=True)
    changed_products = fields.Integer(required=True)
    changed_rows = fields.Integer(required=True)
    transitions = fields.List(fields.Nested(PreviewTransitionSchema), required=True,
                              metadata={"description": "Counts per (destination, from, to), most common first"})
    items = fields.List(fields.Nested(PreviewItemSchema), required=True,
                        metadata={"description": "Changed cells, at most item_limit over all catalogues"})
    items_truncated = fields.Boolean(required=True)


class ImpactPreviewSchema(Schema):
    """A dry run of publishing a draft: what would change in every catalogue (nothing is written)."""

    draft = fields.Integer(required=True, metadata={"description": "The draft's id"})
    base_version = fields.Integer(required=True)
    from_revision = fields.String(required=True)
    to_revision = fields.String(required=True)
    validation = fields.Nested(ValidationReportSchema, required=True)
    as_of = fields.String(required=True, metadata={"format": "date"})
    total_products = fields.Integer(required=True)
    changed_products = fields.Integer(required=True)
    changed_rows = fields.Integer(required=True)
    share_changed = fields.Float(required=True)
    catalogues = fields.List(fields.Nested(CataloguePreviewSchema), required=True)
    seconds = fields.Float(required=True, metadata={"description": "Time the dry run took"})


class RunStandingSchema(Schema):
    requirement = fields.String(required=True)
    review_policy = fields.String(required=True, allow_none=True)


class RunTransitionSchema(Schema):
    destination = fields.String(required=True)
    count = fields.Integer(required=True)
    from_ = fields.Nested(RunStandingSchema, required=True, data_key="from", attribute="from")
    to = fields.Nested(RunStandingSchema, required=True)


class RunCountsSchema(Schema):
    """Filled in when the run finishes (empty before)."""

    transitions = fields.List(fields.Nested(RunTransitionSchema))
    chunks = fields.Integer()
    chunks_pending = fields.Integer()


class RunSchema(Schema):
    """A re-evaluation run: every catalogue re-evaluated after a publish (from_version -> to_version)."""

    id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["pending", "running", "done", "failed"]))
    from_version = fields.Integer(required=True, allow_none=True)
    to_version = fields.Integer(required=True)
    to_revision = fields.String(required=True)
    as_of = fields.String(required=True, metadata={"format": "date"})
    total = fields.Integer(required=True, metadata={"description": "Products to re-evaluate"})
    changed_products = fields.Integer(required=True)
    change_records = fields.Integer(required=True)
    counts = fields.Nested(RunCountsSchema, required=True)
    error = fields.String(required=True, allow_none=True)
    created_at = fields.String(required=True, metadata=TIMESTAMP)
    started_at = fields.String(required=True, allow_none=True, metadata=TIMESTAMP)
    finished_at = fields.String(required=True, allow_none=True, metadata=TIMESTAMP)
