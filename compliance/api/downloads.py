"""Streamed file downloads of the API (exports and reports): the response and its documented media types."""
from __future__ import annotations

from typing import Iterable

from flask import Response, stream_with_context

from ..services.tabular import MEDIA_TYPES

# The documented 200 of a table export (?format=csv|jsonl|xlsx).
EXPORT_RESPONSES = {"200": {"description": "The export (streamed download; the format chosen by ?format=)",
                            "content": {"text/csv": {"schema": {"type": "string"}},
                                        "application/x-ndjson": {"schema": {"type": "string"}},
                                        MEDIA_TYPES["xlsx"]: {"schema": {"type": "string", "format": "binary"}}}}}


def download(pieces: Iterable[str | bytes], filename: str, fmt: str) -> Response:
    """A streamed attachment of `fmt` (csv, jsonl, xlsx or json)."""
    ctype = "application/json" if fmt == "json" else MEDIA_TYPES[fmt]
    resp = Response(stream_with_context(pieces), content_type=ctype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp
