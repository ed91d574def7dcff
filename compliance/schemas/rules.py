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
