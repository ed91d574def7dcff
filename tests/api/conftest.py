"""API test helpers."""
from __future__ import annotations

import pytest


@pytest.fixture
def post(client, viewer_headers):
    """post(path, body) -> response, as a viewer."""

    def run(path, body=None, headers=None, **kwargs):
        return client.post(path, json=body, headers=viewer_headers if headers is None else headers, **kwargs)

    return run


def error_text(response) -> str:
    """The message plus the structured errors, for asserting that a field is named."""
    body = response.get_json()
    return f"{body.get('message')} {body.get('errors')}"
