"""Contracts of the catalogue endpoints (catalogues, products, imports)."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..engine.vocabulary import ECCNS, STATUSES
from .common import CountryCode, PaginationQuerySchema, page_range

PRODUCT_SORTS = ("id", "sku", "name", "vendor", "eccn", "status", "tpp", "performance_density", "updated_at")


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
    """A catalogue with its product count and counts per current status (services.catalogues.catalogue_summary)."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    destinations = fields.List(fields.String(), required=True,
                               metadata={"description": "Destinations watched by re-evaluation"})
    products = fields.Integer(required=True, metadata={"description": "Number of products"})
    by_status = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True, metadata={
        "description": "Products per current status ('unclassified' for those without one)"})
    created_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)


class ProductMetricsSchema(Schema):
    """The engine's metric columns of a stored product (null: missing)."""

    tpp = fields.Float(allow_none=True, metadata={"description": "Total processing performance"})
    tpp_source = fields.String(allow_none=True, metadata={"description": "Where the TPP came from (given, computed)"})
    performance_density = fields.Float(allow_none=True)
    io_bandwidth = fields.Float(allow_none=True)
    memory_bandwidth_density = fields.Float(allow_none=True)
    dram_bandwidth = fields.Float(allow_none=True)
    transistors = fields.Float(allow_none=True)
    datacenter = fields.Boolean(allow_none=True)


class CatalogueProductSchema(Schema):
    """A catalogue's product: its stored spec, the engine's metric columns and its current standing (today, under
    the current rules). Dumps a `models.Product`."""

    id = fields.Integer(required=True)
    catalogue_id = fields.Integer(required=True)
    sku = fields.String(required=True)
    name = fields.String(required=True)
    vendor = fields.String(allow_none=True)
    family = fields.String(allow_none=True)
    kind = fields.String(required=True, metadata={"description": "ic, hbm or system"})
    eccn = fields.String(allow_none=True, metadata={"description": "Current ECCN (null: not listed)"})
    status = fields.String(allow_none=True, metadata={"description": "Current classification status"})
    classified_revision = fields.String(allow_none=True, metadata={
        "description": "Rule revision that set the current standing: the import or edit that stored it, or the "
                       "last publish whose re-evaluation changed it (a publish that leaves a product's standing as "
                       "it was does not rewrite it)"})
    classified_on = fields.Date(allow_none=True, metadata={
        "description": "The as-of date of the evaluation that set the current standing (see classified_revision)"})
    metrics = fields.Nested(ProductMetricsSchema, required=True)
    spec = fields.Dict(required=True, metadata={"description": "The product as stored (the classify API's product)"})
    created_at = fields.DateTime(allow_none=True)
    updated_at = fields.DateTime(allow_none=True)

    def get_attribute(self, obj, attr, default):
        if attr == "metrics":  # the metric columns are the product's own attributes
            return obj
        return super().get_attribute(obj, attr, default)


class ProductQuerySchema(PageQuerySchema):
    class Meta:
        unknown = RAISE

    vendor = fields.String(metadata={"description": "Exact vendor (case-insensitive)"})
    eccn = fields.String(validate=validate.OneOf(list(ECCNS) + ["none"]),
                         metadata={"description": "Current ECCN; 'none' for products outside 3A090/4A090"})
    status = fields.String(validate=validate.OneOf(STATUSES), metadata={"description": "Current status"})
    q = fields.String(validate=validate.Length(max=200), metadata={"description": "Substring of SKU or name"})
    sort = fields.String(load_default="id", validate=validate.OneOf(
        [f"{d}{c}" for c in PRODUCT_SORTS for d in ("", "-")]), metadata={
        "description": f"Order: one of {', '.join(PRODUCT_SORTS)}; '-' first for descending (ties by id)"})


class ImportQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    format = fields.String(validate=validate.OneOf(["csv", "tsv", "xlsx", "json", "jsonl", "ndjson"]),
                           metadata={"description": "File format (default: from the file name or content type). "
                                                    "CSV: comma, semicolon or tab separated (detected from the header)"})
    sheet = fields.String(validate=validate.Length(min=1, max=31),
                          metadata={"description": "XLSX: the sheet to read (default: the first)"})
    filename = fields.String(validate=validate.Length(min=1, max=500), metadata={
        "description": "A raw-body upload's file name (recorded in the report; the format is detected from it)"})
    async_ = fields.Boolean(data_key="async", metadata={
        "description": "true: run the import as a job (202, Location; poll GET /imports/{id}), as the header "
                       "`Prefer: respond-async` asks; default false: the import runs in the request (201)"})


class ImportFileSchema(Schema):
    file = fields.Raw(metadata={"type": "string", "format": "binary", "description": "The catalogue file"})


class RowErrorSchema(Schema):
    row = fields.Integer(metadata={"description": "1-based row (record) number in the file"})
    field = fields.String()
    problem = fields.String()
    warning = fields.Boolean()


class ImportProgressSchema(Schema):
    rows_read = fields.Integer(metadata={"description": "Rows read so far"})
    bytes_read = fields.Integer(metadata={"description": "Bytes of the file read so far"})
    bytes_total = fields.Integer(allow_none=True, metadata={"description": "The file's size (null: not recorded)"})
    percent = fields.Float(metadata={"description": "bytes_read of bytes_total, in percent (100 once done)"})


class ImportReportSchema(Schema):
    """One import: its status, progress and counts, and (GET /imports/{id}, the upload's answer) every rejected
    row. A job (`Prefer: respond-async`) is pending, then running (its counts and progress move), then done
    (the full report) or failed (`error`)."""

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
    status = fields.String(validate=validate.OneOf(["pending", "running", "done", "failed"]), metadata={
        "description": "pending (queued), running, done or failed; a synchronous import is answered done"})
    error = fields.String(allow_none=True, metadata={"description": "Why a failed import failed"})
    progress = fields.Nested(ImportProgressSchema)
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)
    url = fields.String(metadata={"description": "The import's URL (GET /imports/{id})"})
