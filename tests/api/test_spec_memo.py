"""The suite's apps serve a memoised OpenAPI document (tests/conftest.py, _install_spec_memo): it must be
exactly the document that building the app from scratch gives, for the default and another configuration."""
from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("settings", [{}, {"RATE_LIMIT": "5/minute", "AUTH_MODE": "disabled"}])
def test_the_memoised_openapi_document_is_the_one_a_fresh_app_builds(make_app, monkeypatch, settings):
    import flask_smorest

    import tests.conftest as conftest

    make_app(**settings)  # the first app of this configuration may build and memoise the document
    served = make_app(**settings).test_client().get("/api/v1/openapi.json")
    assert conftest._SPECS, "the memo is not installed"
    monkeypatch.setattr(conftest, "_SPECS", {})  # a miss: the next app builds its document from scratch
    fresh = make_app(**settings)
    assert flask_smorest.Blueprint.register_views_in_doc.__name__ == "register_views_in_doc"
    built = fresh.test_client().get("/api/v1/openapi.json")
    assert served.status_code == built.status_code == 200
    assert json.loads(served.data) == json.loads(built.data)
    assert len(json.loads(built.data)["paths"]) > 50
