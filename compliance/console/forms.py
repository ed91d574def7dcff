"""HTML forms -> the API's request bodies, validated by the API's own marshmallow schemas, and their
errors back onto the form fields: bad input gets the API's exact message, next to the field.

Form fields are named by the body path they fill ("product.throughput.0.dense_tops"); a validation
error at that path is shown beside that field."""
from __future__ import annotations

import json
from typing import Any

from marshmallow import Schema, ValidationError

from ..engine.errors import InvalidInput


def number(text: str) -> Any:
    """A form's number: int or float; anything else is passed on as text, so the schema names it."""
    t = text.strip()
    for kind in (int, float):
        try:
            return kind(t)
        except ValueError:
            pass
    return text


def codes(text: str) -> list[str]:
    """'CN, de  AE' -> ['CN', 'de', 'AE'] (the schema upper-cases and checks each)."""
    return [c for c in text.replace(",", " ").split() if c]


def flatten_errors(errors: Any, prefix: str = "") -> dict[str, list[str]]:
    """{'product': {'throughput': {0: {'dense_tops': ['...']}}}} -> {'product.throughput.0.dense_tops': ['...']}"""
    out: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            key = str(key)
            if key in ("json", "query", "form") and not prefix:
                path = ""
            elif key == "_schema":
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else key
            for k, v in flatten_errors(value, path).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        out.setdefault(prefix or "_form", []).extend(errors)
    elif isinstance(errors, list):
        for i, e in enumerate(errors):
            for k, v in flatten_errors(e, f"{prefix}.{i}" if prefix else str(i)).items():
                out.setdefault(k, []).extend(v)
    else:
        out.setdefault(prefix or "_form", []).append(str(errors))
    return out


def errors_near(errors: dict[str, list[str]], path: str) -> list[str]:
    """The problems at `path` and below it (a list field shows its items' problems too)."""
    return [f"{k[len(path) + 1:]}: {m}" if k != path else m
            for k, msgs in errors.items() if k == path or k.startswith(path + ".") for m in msgs]


def load(schema: Schema, body: Any) -> tuple[dict | None, dict[str, list[str]]]:
    """(loaded body, {}) or (None, {path: [problems]}), exactly as the API would answer it."""
    try:
        return schema.load(body), {}
    except ValidationError as exc:
        return None, flatten_errors(exc.messages)


def domain_errors(exc: InvalidInput) -> dict[str, list[str]]:
    """A service's 422 (InvalidInput) as form errors; without paths, the message goes above the form."""
    flat = flatten_errors(exc.errors) if exc.errors else {}
    return flat or {"_form": [exc.message]}


def parse_json(text: str, field: str) -> tuple[Any, dict[str, list[str]]]:
    try:
        return json.loads(text), {}
    except ValueError as exc:
        return None, {field: [f"not valid JSON: {exc}"]}
