"""Contracts of the catalogue endpoints (catalogues, products, imports)."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..engine.vocabulary import ECCNS, STATUSES
from .common import CountryCode, PaginationQuerySchema, page_range


class PageQuerySchema(PaginationQuerySchema):
    """page / per_page with validators that raise (marshmallow 4 ignores validators returning False,
    which the shared PaginationQuerySchema relies on)."""

    page = fields.Integer(load_default=1, validate=page_range, metadata={"description": "1-based page"})
    per_page = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000),
                              metadata={"description": "Items per page (1-1000)"})


class CatalogueCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    destinations = fields.List(CountryCode(), validate=validate.Length(max=250), metadata={
        "description": "Destinations watched by re-evaluation (default: D:1, D:4, D:5, E:1, E:2, HK, MO)"})


class CatalogueSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String()
    destinations = fields.List(fields.String())
    products = fields.Integer(metadata={"description": "Number of products"})
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer())
    created_at = fields.String()
    updated_at = fields.String()


class ProductQuerySchema(PageQuerySchema):
    class Meta:
        unknown = RAISE

    vendor = fields.String(metadata={"description": "Exact vendor (case-insensitive)"})
    eccn = fields.String(validate=validate.OneOf(list(ECCNS) + ["none"]),
                         metadata={"description": "Current ECCN; 'none' for products outside 3A090/4A090"})
    status = fields.String(validate=validate.OneOf(STATUSES), metadata={"description": "Current status"})
    q = fields.String(validate=validate.Length(max=200), metadata={"description": "Substring of SKU or name"})


class ImportQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    format = fields.String(validate=validate.OneOf(["csv", "tsv", "xlsx", "json", "jsonl", "ndjson"]),
                           metadata={"description": "File format (default: from the file name or content type). "
                                                    "CSV: comma, semicolon or tab separated (detected from the header)"})
    sheet = fields.String(validate=validate.Length(min=1, max=31),
                          metadata={"description": "XLSX: the sheet to read (default: the first)"})


class ImportFileSchema(Schema):
    file = fields.Raw(metadata={"type": "string", "format": "binary", "description": "The catalogue file"})


class RowErrorSchema(Schema):
    row = fields.Integer(metadata={"description": "1-based row (record) number in the file"})
    field = fields.String()
    problem = fields.String()
    warning = fields.Boolean()


class ImportReportSchema(Schema):
    id = fields.Integer()
    catalogue_id = fields.Integer()
    filename = fields.String()
    format = fields.String()
    rows_read = fields.Integer()
    imported = fields.Integer(metadata={"description": "Rows kept (created + updated + duplicate SKUs replaced)"})
    created = fields.Integer()
    updated = fields.Integer()
    rejected = fields.Integer()
    duplicates = fields.Integer(metadata={"description": "Rows whose SKU appears again later in the file (last wins)"})
    errors = fields.List(fields.Nested(RowErrorSchema))
    warnings = fields.List(fields.Nested(RowErrorSchema))
    seconds = fields.Float()
    created_at = fields.String(allow_none=True)
