"""Contracts of the audit endpoints."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from ..engine.vocabulary import REQUIREMENTS
from .catalogue import PageQuerySchema
from .classify import EndUserSchema, _today
from .common import CountryCode


class AuditCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    as_of = fields.Date(load_default=_today, metadata={"description": "Rules in force on this date (YYYY-MM-DD)"})
    destinations = fields.List(CountryCode(), load_default=None, validate=validate.Length(min=1, max=250),
                               metadata={"description": "ISO country codes, e.g. [\"CN\", \"AE\"]; "
                                                        "default: the catalogue's watched destinations"})
    end_user = fields.Nested(EndUserSchema)


class AuditResultsQuerySchema(PageQuerySchema):
    class Meta:
        unknown = RAISE

    destination = CountryCode(metadata={"description": "Only this destination (one of the audit's)"})
    requirement = fields.String(validate=validate.OneOf(REQUIREMENTS))


class AuditReportQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    destination = CountryCode()
    requirement = fields.String(validate=validate.OneOf(REQUIREMENTS))
