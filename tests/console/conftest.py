"""Console test helpers: sign in through the form, read the CSRF token from a page."""
from __future__ import annotations

import re

import pytest

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(response) -> str:
    match = CSRF.search(response.get_data(as_text=True))
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client, key: str, next_url: str = "/"):
    token = csrf_of(client.get("/sign-in"))
    return client.post("/sign-in", data={"api_key": key, "csrf_token": token, "next": next_url})


def new_key(app, role: str, name: str | None = None) -> str:
    from compliance.auth import create_api_key

    _, plain = create_api_key(app.extensions["db"], name or f"console {role}", role, actor="tests")
    return plain


@pytest.fixture
def signed_in(app):
    """signed_in(role) -> a test client with a console session of a new key of that role."""

    def make(role: str = "viewer", name: str | None = None):
        client = app.test_client()
        response = sign_in(client, new_key(app, role, name))
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return make
