"""Every JSON response of the suite's requests is checked against the operation's documented schema."""
from __future__ import annotations

import re

from flask import Flask, request

# Operations whose 2xx body has no schema yet (issue 7's contract slice is not finished): this list
# may only shrink; tests/api/test_contract.py fails when one gains a schema and is still listed.
UNDOCUMENTED_2XX: set[tuple[str, str]] = set()
_RULE_ARG = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")


def operation_path(rule: str) -> str:
    """Flask's /a/<int:b> as OpenAPI's /a/{b}."""
    return _RULE_ARG.sub(r"{\1}", rule)


def response_schema(spec: dict, method: str, path: str, status: int) -> dict | None:
    """The documented JSON schema of a response, or None when there is none."""
    responses = spec["paths"].get(path, {}).get(method, {}).get("responses", {})
    doc = responses.get(str(status)) or (responses.get("default") if status >= 400 else None)
    if doc and "$ref" in doc:
        doc = spec["components"]["responses"][doc["$ref"].rsplit("/", 1)[1]]
    return ((doc or {}).get("content") or {}).get("application/json", {}).get("schema")


def install(app: Flask, mismatches: list[str]) -> None:
    """After each request: validate a JSON body against the spec; append every mismatch."""
    from openapi_schema_validator import OAS30Validator

    cache: dict = {}

    @app.after_request
    def check(response):
        if request.url_rule is None or response.status_code == 204 or response.mimetype != "application/json":
            return response
        if "spec" not in cache:
            cache["spec"] = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
        method, path = request.method.lower(), operation_path(request.url_rule.rule)
        if path not in cache["spec"]["paths"]:  # the spec and docs pages themselves
            return response
        schema = response_schema(cache["spec"], method, path, response.status_code)
        if schema is None:
            if 200 <= response.status_code < 300 and (method, path) not in UNDOCUMENTED_2XX:
                mismatches.append(f"{method.upper()} {path} {response.status_code}: no documented schema")
            return response
        body = response.get_json()  # a streamed body is buffered here (tests only)
        for error in OAS30Validator(_resolve(schema, cache["spec"])).iter_errors(body):
            mismatches.append(f"{method.upper()} {path} {response.status_code}: {error.message[:200]} at "
                              f"/{'/'.join(map(str, error.absolute_path))}")
            break
        return response


def _resolve(schema, spec):
    """Inline every local $ref (the spec's schemas hold no cycles the suite reaches)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            return _resolve(spec["components"]["schemas"][name], spec)
        return {k: _resolve(v, spec) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_resolve(v, spec) for v in schema]
    return schema
