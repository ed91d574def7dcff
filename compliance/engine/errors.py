"""Domain exceptions. The API maps each to one HTTP status in compliance/api/errors.py."""
from __future__ import annotations

from typing import Any


class ComplianceError(Exception):
    """Base class of every error this service raises on purpose."""

    status = 400

    def __init__(self, message: str, errors: dict[str, Any] | list[Any] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors


class InvalidInput(ComplianceError):
    """Input that passed the schema but is still unusable (e.g. an unknown country group)."""

    status = 422


class RulebookInvalid(ComplianceError):
    """A rulebook failed validation; `errors` lists every problem with its path."""

    status = 422
    errors: list[str]  # always the list given to __init__ (the base class also allows a dict or None)

    def __init__(self, errors: list[str]):
        super().__init__(f"rulebook is invalid ({len(errors)} problem(s))", errors)

    def __str__(self) -> str:
        return self.message + ":\n  " + "\n  ".join(self.errors)


class NotFound(ComplianceError):
    status = 404


class Conflict(ComplianceError):
    status = 409


class Forbidden(ComplianceError):
    status = 403


class Unauthorized(ComplianceError):
    status = 401
