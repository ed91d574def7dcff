"""Shared fields and schemas."""
from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..engine.countries import COUNTRY_INDEX

# Ids and page numbers must fit a 64-bit database integer (and page x per_page an OFFSET): a larger
# one would overflow in the database driver (a 500) instead of being a clear 422.
DB_ID_MAX = 2**63 - 1
PAGE_MAX = 1_000_000_000
page_range = validate.Range(min=1, max=PAGE_MAX)
id_range = validate.Range(min=1, max=DB_ID_MAX)


class CountryCode(fields.String):
    """An ISO 3166-1 alpha-2 code (case-insensitive on input, upper-case on output)."""

    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if code not in COUNTRY_INDEX:
            raise ValidationError(f"unknown country code {value!r} (expected ISO 3166-1 alpha-2, e.g. CN)")
        return code


class Number(fields.Float):
    """A finite number; booleans and numeric strings are rejected rather than coerced."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or isinstance(value, str):
            raise ValidationError(f"must be a number, got {value!r}")
        return super()._deserialize(value, attr, data, **kwargs)


class StrictBoolean(fields.Boolean):
    """true or false only (not 'yes', 1 or 'on')."""

    truthy = {True}
    falsy = {False}

    def _deserialize(self, value, attr, data, **kwargs):
        # 1 == True and 0 == False in Python, so the sets above alone would let 1 and 0 through.
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class QueryBoolean(fields.Boolean):
    """A boolean in a query string: true/false (or 1/0), case-insensitive; nothing else."""

    truthy = {"true", "True", "TRUE", "1"}
    falsy = {"false", "False", "FALSE", "0"}


class ErrorSchema(Schema):
    code = fields.Integer(metadata={"description": "HTTP status code"})
    status = fields.String(metadata={"description": "HTTP status name"})
    message = fields.String(metadata={"description": "What went wrong"})
    errors = fields.Raw(metadata={"description": "Field path -> list of problems"})


class PaginationQuerySchema(Schema):
    page = fields.Integer(load_default=1, validate=page_range, metadata={"description": "1-based page"})
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000),
                              metadata={"description": "Items per page (1-1000)"})


class HealthSchema(Schema):
    status = fields.String(metadata={"description": "ok | degraded"})
    database = fields.String(metadata={"description": "Database dialect (sqlite, postgresql)"})
    embedded = fields.Boolean(metadata={"description": "Jobs run in-process (no broker configured)"})
    rule_version = fields.Integer()
    ruleset_revision = fields.String()
    broker = fields.String()
    database_error = fields.String()
    broker_error = fields.String()


class TabularExportQuerySchema(Schema):
    """?format= of a table export (catalogue, change feed, activity log)."""

    class Meta:
        unknown = RAISE

    format = fields.String(load_default="csv", validate=validate.OneOf(["csv", "jsonl", "xlsx"]), metadata={
        "description": "csv (formula cells neutralised), jsonl (JSON Lines) or xlsx (Excel workbook); streamed"})
