"""gunicorn settings for the web process: `gunicorn -c python:compliance.gunicorn_conf compliance.wsgi:app`.

gunicorn answers some requests itself, before the app sees them: a request line over `limit_request_line`
(414), too many or too large headers (431), a malformed request line or header (400). Its own answer is an
HTML page; API clients get the API's JSON error body instead (``{"code", "status", "message"}``, as
`compliance.api.error_body` writes it), with the same status and connection handling as gunicorn's.

The limits themselves stay gunicorn's (a request line up to 8190 bytes, the most gunicorn allows and twice
its default, so that long filter queries fit; 100 headers of up to 8190 bytes each).
"""
from __future__ import annotations

import json

from gunicorn import util

limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's `util.write_error`, answering with the API's JSON error body instead of an HTML page."""
    body = json.dumps({"code": status_int, "status": reason, "message": mesg or reason}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin1")
    util.write_nonblock(sock, head + body)


def on_starting(server) -> None:  # gunicorn server hook: runs in the master before any worker forks
    util.write_error = write_json_error
