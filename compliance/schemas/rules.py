"""Contracts of the read-only rules endpoints."""
from __future__ import annotations

from datetime import date

from marshmallow import RAISE, Schema, fields, validate

from .common import QueryBoolean


class RulesQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    as_of = fields.Date(load_default=date.today, metadata={"description": "Rules in force on this date"})
    history = QueryBoolean(load_default=True, metadata={"description": "Include every rule with its dates"})
    kind = fields.String(validate=validate.OneOf(["classification", "licence"]))
    ruleset_revision = fields.String(validate=validate.Length(equal=64))


# ---------------------------------------------------------------- responses

class RuleSchema(Schema):
    """One rule as the engine describes it (`Rule.describe()`): optional keys are sent only when set."""

    id = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "classification | licence"})
    title = fields.String(required=True)
    pack = fields.String(required=True, metadata={"description": "Id of the pack the rule belongs to"})
    citation = fields.String(required=True)
    effective_from = fields.String(required=True, metadata={"format": "date"})
    effective_to = fields.String(required=True, allow_none=True, metadata={"format": "date",
                                                                          "description": "None: still in force"})
    precedence = fields.Integer(required=True)
    when = fields.Dict(required=True, metadata={"description": "The condition tree (see rules/README.md)"})
    eccn = fields.String(metadata={"description": "Classification rules: the ECCN it sets"})
    effect = fields.Dict(metadata={"description": "Licence rules: requirement, review policy, exceptions, flags"})
    notes = fields.String()
    source_url = fields.String()
    compliance_from = fields.String(metadata={"format": "date",
                                              "description": "In force from effective_from, due only from this day"})
    uncertain = fields.String(metadata={"description": "What our sources leave uncertain about this rule"})


class RulePackSchema(Schema):
    """A rule pack (one publication) with the ids of its rules."""

    id = fields.String(required=True)
    title = fields.String(required=True, allow_none=True)
    citation = fields.String(required=True, allow_none=True)
    published = fields.String(required=True, allow_none=True, metadata={"format": "date"})
    effective_from = fields.String(required=True, allow_none=True, metadata={"format": "date"})
    source_url = fields.String(required=True, allow_none=True)
    status = fields.String(required=True, allow_none=True, metadata={"description": "e.g. never_in_force"})
    notes = fields.String(required=True, allow_none=True)
    rules = fields.List(fields.String(), required=True)


class RulesInForceSchema(Schema):
    """GET /rules: the rules in force on a date, the country groups on that date, the packs, and history."""

    as_of = fields.Date(required=True)
    rule_version = fields.Integer(required=True, metadata={"description": "Published rule version number"})
    ruleset_revision = fields.String(required=True, metadata={"description": "sha256 of the rulebook content"})
    in_force = fields.List(fields.Nested(RuleSchema), required=True,
                           metadata={"description": "In evaluation order (highest precedence first)"})
    country_groups = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                                 metadata={"description": "Group -> member country codes on as_of"})
    country_aliases = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                                  metadata={"description": "Country evaluated as another (e.g. HK -> CN)"})
    packs = fields.List(fields.Nested(RulePackSchema), required=True)
    history = fields.List(fields.Nested(RuleSchema), metadata={
        "description": "Every rule with its dates, by effective_from (only with history=true)"})


class MetricSchema(Schema):
    name = fields.String(required=True)
    type = fields.String(required=True, metadata={"description": "number | bool | category | country | text"})
    unit = fields.String(required=True)
    scope = fields.String(required=True, metadata={"description": "What it describes: product, destination, end_user, transaction"})
    description = fields.String(required=True)
    operators = fields.List(fields.String(), required=True)
    values = fields.List(fields.String(), metadata={"description": "Allowed values (categories only)"})

    def get_attribute(self, obj, attr, default):
        # A metric is a dict, and marshmallow falls back to getattr for a missing key: `values` would
        # be dict.values, not absent.
        return obj.get(attr, default)


class VocabularySchema(Schema):
    """What rules and products may talk about."""

    metrics = fields.List(fields.Nested(MetricSchema), required=True)
    formats = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True,
                          metadata={"description": "Number format -> bit length"})
    kinds = fields.List(fields.String(), required=True)
    eccns = fields.List(fields.String(), required=True)
    requirements = fields.List(fields.String(), required=True)
    review_policies = fields.List(fields.String(), required=True)
    exceptions = fields.List(fields.String(), required=True)
    transaction_types = fields.List(fields.String(), required=True)
    hbm_packagings = fields.List(fields.String(), required=True)
