"""The Blueprint class of every API module: flask-smorest's, with request bodies decoded once by orjson."""
from __future__ import annotations

import functools
import typing

import flask
import flask_smorest
import orjson
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import RequestEntityTooLarge, UnprocessableEntity

from ..schemas.common import NUL_PROBLEM, nul_paths, page_of
from ..services.paging import Page
from .encoding import loads

_CACHE_KEY = "compliance.json_body"




def json_body(req: flask.Request) -> typing.Any:
    """The request's JSON body, decoded once per request (json.JSONDecodeError when it is not JSON; a
    422 naming every field whose text holds a NUL character, which no database column can store)."""
    if _CACHE_KEY not in req.environ:
        data = req.get_data(cache=True)
        limit = req.max_content_length
        if req.content_length is None and limit is not None and len(data) >= limit:
            # A chunked body (no Content-Length) is read up to the limit and no further: one that
            # reaches it is too large (werkzeug would hand over the first `limit` bytes as the body).
            raise RequestEntityTooLarge()
        try:
            text = data.decode("utf-8")  # as webargs does: a body that is not UTF-8 is invalid JSON
        except UnicodeDecodeError:
            return core.parse_json(data)  # raises webargs' own error for it
        body = loads(text)
        if b"\\u0000" in data:  # JSON can only carry a NUL escaped; look for it only then
            paths = nul_paths(body)
            if paths:
                exc = UnprocessableEntity("a text field holds a NUL character")
                exc.data = {"messages": {"json": {p: [NUL_PROBLEM] for p in paths}}}
                raise exc
        req.environ[_CACHE_KEY] = body
    return req.environ[_CACHE_KEY]


class ApiParser(FlaskParser):
    """webargs' Flask parser, decoding JSON bodies with `json_body` (orjson where exact)."""

    def _handle_invalid_json_error(self, error, req, *args, **kwargs) -> typing.NoReturn:
        reason = getattr(error, "msg", None) or str(error)
        abort(400, exc=error, messages={"json": [f"Invalid JSON body: {reason}"]})

    def _raw_load_json(self, req: flask.Request) -> typing.Any:
        if not is_json_request(req):
            return core.missing
        return json_body(req)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ApiParser()

    def page_response(self, item_schema, *, description: str | None = None, **extra):
        """Document and produce a paginated list: the view returns a `Page`; `page_of(item_schema)` dumps
        it, and the X-Pagination header (flask-smorest's convention) carries the same numbers."""
        schema = page_of(item_schema, **extra)

        def decorator(func):
            @functools.wraps(func)
            def wrapper(*args, **kwargs):
                page = func(*args, **kwargs)
                if not isinstance(page, Page):
                    raise TypeError(f"{func.__qualname__} must return a Page, not {type(page).__name__}")
                return page, 200, {"X-Pagination": orjson.dumps(page.metadata()).decode()}

            return self.response(200, schema, description=description,
                                 headers={"X-Pagination": "PAGINATION"})(wrapper)

        return decorator
