"""Shared fields and schemas."""
from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..engine.countries import COUNTRY_INDEX

# Ids and page numbers must fit a 64-bit database integer (and page x per_page an OFFSET): a larger
# one would overflow in the database driver (a 500) instead of being a clear 422.
DB_ID_MAX = 2**63 - 1
PAGE_MAX = 1_000_000_000
page_range = validate.Range(min=1, max=PAGE_MAX)
id_range = validate.Range(min=1, max=DB_ID_MAX)
# Rule version numbers are a 32-bit INTEGER column (rule_versions.number).
VERSION_MAX = 2**31 - 1
version_range = validate.Range(min=1, max=VERSION_MAX)


NUL_PROBLEM = "must not contain a NUL character (\\u0000)"


def nul_paths(value: Any, path: str = "") -> list[str]:
    """The dotted paths (`products[3].name`) of every string in `value`, key or value, holding a NUL."""
    if isinstance(value, str):
        return [path or "body"] if "\x00" in value else []
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                out.append(here)
            out += nul_paths(item, here)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += nul_paths(item, f"{path}[{i}]")
    return out


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


_PAGE_SCHEMAS: dict[tuple[type, str], type[Schema]] = {}


class PageSchema(Schema):
    """The envelope of every paginated list (the same numbers are in the X-Pagination header)."""

    page = fields.Integer(required=True, metadata={"description": "1-based page number"})
    per_page = fields.Integer(required=True, metadata={"description": "Items per page"})
    total = fields.Integer(required=True, metadata={"description": "Items in the whole list"})
    pages = fields.Integer(required=True, metadata={"description": "Number of pages"})


def page_of(item_schema: type[Schema], name: str | None = None, **extra: fields.Field) -> type[Schema]:
    """The page schema of a list of `item_schema` (one class per item schema, named for the spec), with
    any `extra` top-level fields the list carries beside its items."""
    name = name or item_schema.__name__.removesuffix("Schema") + "PageSchema"
    key = (item_schema, name)
    if key not in _PAGE_SCHEMAS:
        attrs = {"items": fields.List(fields.Nested(item_schema), required=True)} | extra
        _PAGE_SCHEMAS[key] = type(name, (PageSchema,), attrs)
    return _PAGE_SCHEMAS[key]


def list_of(item_schema: type[Schema], name: str | None = None) -> type[Schema]:
    """The schema of a whole (unpaginated) list: {"items": [item_schema, ...]}."""
    name = name or item_schema.__name__.removesuffix("Schema") + "ListSchema"
    key = (item_schema, name)
    if key not in _PAGE_SCHEMAS:
        _PAGE_SCHEMAS[key] = type(name, (Schema,), {"items": fields.List(fields.Nested(item_schema), required=True)})
    return _PAGE_SCHEMAS[key]


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
