"""Contracts of the API keys: create (optionally expiring), rotate, list, revoke."""
from __future__ import annotations

from datetime import timezone

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

from ..models.auth import EXPIRES_IN_DAYS_MAX, OVERLAP_HOURS_DEFAULT, OVERLAP_HOURS_MAX, ROLES, expiry_problem

KEY_STATES = ["active", "expired", "revoked"]


class _ExpirySchema(Schema):
    class Meta:
        unknown = RAISE

    expires_in_days = fields.Integer(validate=validate.Range(min=1, max=EXPIRES_IN_DAYS_MAX), metadata={
        "description": f"The key expires this many days from now (1-{EXPIRES_IN_DAYS_MAX}). Give this or expires_at"})
    expires_at = fields.AwareDateTime(default_timezone=timezone.utc, metadata={
        "description": "The key expires at this time (RFC 3339; no offset: UTC), in the future and at most "
                       f"{EXPIRES_IN_DAYS_MAX} days ahead"})

    @validates("expires_at")
    def _future(self, value, **_):
        problem = expiry_problem(value)
        if problem:
            raise ValidationError(problem)

    @validates_schema
    def _one_of(self, data, **_):
        if "expires_in_days" in data and "expires_at" in data:
            raise ValidationError("give expires_in_days or expires_at, not both", field_name="expires_at")


class KeyCreateSchema(_ExpirySchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(required=True, validate=validate.OneOf(list(ROLES)))


class KeyRotateSchema(_ExpirySchema):
    overlap_hours = fields.Integer(load_default=OVERLAP_HOURS_DEFAULT,
                                   validate=validate.Range(min=0, max=OVERLAP_HOURS_MAX), metadata={
        "description": f"Hours the old key keeps working beside the new one (0-{OVERLAP_HOURS_MAX}; default "
                       f"{OVERLAP_HOURS_DEFAULT}); never later than the old key's own expiry"})


class KeySchema(Schema):
    """An API key as listed: never the key itself (only its prefix)."""

    id = fields.Integer()
    name = fields.String()
    role = fields.String(validate=validate.OneOf(list(ROLES)))
    prefix = fields.String()
    state = fields.String(validate=validate.OneOf(KEY_STATES),
                          metadata={"description": "active, expired (past expires_at) or revoked"})
    created_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True, metadata={"description": "When the key stops working (null: never)"})
    revoked_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True)
    rotated_from = fields.Integer(allow_none=True, metadata={"description": "The key this one replaced by rotation"})
    replaced_by = fields.Integer(allow_none=True, metadata={"description": "The key that replaced this one by rotation"})


class CreatedKeySchema(KeySchema):
    key = fields.String(metadata={"description": "The key: shown this once, stored only as a hash"})


class RotatedKeySchema(CreatedKeySchema):
    """The new key (shown once), with the old key as it now is (expiring after the overlap)."""

    previous = fields.Nested(KeySchema, metadata={"description": "The old key, now expiring at its expires_at"})


class KeyListSchema(Schema):
    items = fields.List(fields.Nested(KeySchema))
