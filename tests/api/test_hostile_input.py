"""Issue 12, items 1-3 and 10: input that used to be a 500 on PostgreSQL (or on both databases) is a 4xx
that names the field. Each test runs on SQLite and on PostgreSQL (db_url)."""
from __future__ import annotations

import io

import pytest

NUL = "must not contain a NUL character"
INT32_OVER = 2**31  # one above rule_versions.number's INTEGER range


@pytest.fixture
def pg_and_sqlite_client(make_app, db_url, headers_for):
    app = make_app(DATABASE_URL=db_url)
    return app, app.test_client(), headers_for(app, "admin")


def _catalogue(client, headers) -> int:
    r = client.post("/api/v1/catalogues", json={"name": "hostile"}, headers=headers)
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.get_json()["id"]


@pytest.mark.parametrize("path", [
    f"/api/v1/rules/versions/{INT32_OVER}",
    f"/api/v1/rules/versions/{2**63 - 1}/export",
    f"/api/v1/rules/versions/{INT32_OVER}/export",
])
def test_a_rule_version_beyond_its_integer_column_is_404_not_500(pg_and_sqlite_client, path):
    _, client, h = pg_and_sqlite_client
    assert client.get(path, headers=h).status_code == 404


def test_a_rollback_to_a_version_beyond_its_integer_column_is_404(pg_and_sqlite_client):
    _, client, h = pg_and_sqlite_client
    r = client.post(f"/api/v1/rules/versions/{INT32_OVER}/rollback", json={"reason": "x"}, headers=h)
    assert r.status_code == 404, r.get_data(as_text=True)


@pytest.mark.parametrize("path, field", [
    (f"/api/v1/changes?version={INT32_OVER}", "version"),
    (f"/api/v1/rules/diff?from=1&to={INT32_OVER}", "to"),
    (f"/api/v1/rules/diff?from={INT32_OVER}&to=1", "from"),
])
def test_a_version_query_beyond_its_integer_column_is_422_naming_it(pg_and_sqlite_client, path, field):
    _, client, h = pg_and_sqlite_client
    r = client.get(path, headers=h)
    assert r.status_code == 422 and f"{field}: " in r.get_json()["message"], r.get_data(as_text=True)


def test_a_draft_based_on_a_version_beyond_the_integer_column_is_422(pg_and_sqlite_client):
    _, client, h = pg_and_sqlite_client
    r = client.post("/api/v1/rules/drafts", json={"base_version": INT32_OVER, "title": "x"}, headers=h)
    assert r.status_code == 422 and "base_version: " in r.get_json()["message"]


@pytest.mark.parametrize("query, field", [
    ("/api/v1/catalogues/{cid}/products?q=a%00b", "q"),
    ("/api/v1/catalogues/{cid}/products?vendor=%00", "vendor"),
    ("/api/v1/changes?product=a%00", "product"),
    ("/api/v1/rules/audit-trail?actor=x%00", "actor"),
    ("/api/v1/catalogues/{cid}/products/A%00B", "sku"),
])
def test_a_nul_character_in_the_query_or_path_is_422_naming_it(pg_and_sqlite_client, query, field):
    _, client, h = pg_and_sqlite_client
    cid = _catalogue(client, h)
    r = client.get(query.format(cid=cid), headers=h)
    assert r.status_code == 422, r.get_data(as_text=True)
    assert f"{field}: {NUL}" in r.get_json()["message"]


@pytest.mark.parametrize("method, path, body, field", [
    ("post", "/api/v1/catalogues", {"name": "a\x00b"}, "name"),
    ("put", "/api/v1/catalogues/{cid}/products/X1", {"name": "H\x00", "vendor": "NVIDIA", "tpp": 100}, "name"),
    ("post", "/api/v1/rules/drafts", {"title": "t\x00"}, "title"),
    ("post", "/api/v1/classify", {"product": {"name": "ok", "vendor": "N\x00"}}, "product.vendor"),
    ("post", "/api/v1/classify/batch", {"products": [{"name": "a"}, {"name": "b\x00"}]}, "products[1].name"),
])
def test_a_nul_character_in_a_json_body_is_422_naming_the_field(pg_and_sqlite_client, method, path, body, field):
    _, client, h = pg_and_sqlite_client
    cid = _catalogue(client, h)
    r = getattr(client, method)(path.format(cid=cid), json=body, headers=h)
    assert r.status_code == 422, r.get_data(as_text=True)
    assert f"{field}: {NUL}" in r.get_json()["message"]


def test_an_escaped_backslash_u0000_is_text_not_a_nul(pg_and_sqlite_client):
    _, client, h = pg_and_sqlite_client
    r = client.post("/api/v1/catalogues", json={"name": "literally \\u0000"}, headers=h)
    assert r.status_code == 201 and r.get_json()["name"] == "literally \\u0000"


@pytest.mark.parametrize("fmt, content_type, data", [
    ("csv", "text/csv", "sku,name,vendor,tpp\nA1,ok,NVIDIA,100\nA2,bad\x00name,NVIDIA,100\nA3,fine,AMD,200\n"),
    ("json", "application/json",
     '[{"sku": "A1", "name": "ok", "tpp": 100}, {"sku": "A2", "name": "bad\\u0000", "tpp": 1},'
     ' {"sku": "A3", "name": "fine", "tpp": 200}]'),
    ("jsonl", "application/x-ndjson",
     '{"sku": "A1", "name": "ok", "tpp": 100}\n{"sku": "A2", "name": "bad\\u0000", "tpp": 1}\n'
     '{"sku": "A3", "name": "fine", "tpp": 200}\n'),
])
def test_an_import_keeps_the_good_rows_and_rejects_the_row_with_a_nul(pg_and_sqlite_client, fmt, content_type, data):
    _, client, h = pg_and_sqlite_client
    cid = _catalogue(client, h)
    r = client.post(f"/api/v1/catalogues/{cid}/imports?format={fmt}", data=data.encode(), content_type=content_type,
                    headers=h)
    assert r.status_code == 201, r.get_data(as_text=True)
    report = r.get_json()
    assert (report["imported"], report["rejected"]) == (2, 1)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(2, "name")]
    assert NUL in report["errors"][0]["problem"]
    skus = {p["sku"] for p in client.get(f"/api/v1/catalogues/{cid}/products", headers=h).get_json()["items"]}
    assert skus == {"A1", "A3"}


@pytest.mark.parametrize("path, template", [
    ("/api/v1/classify", '{"product": {"name": "x", "tpp": %s}}'),
    ("/api/v1/catalogues", '{"name": "x", "description": %s}'),
])
def test_an_integer_literal_beyond_pythons_conversion_limit_is_400(pg_and_sqlite_client, path, template):
    _, client, h = pg_and_sqlite_client
    r = client.post(path, data=template % ("9" * 5000), content_type="application/json", headers=h)
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    assert "more than 4300 digits" in r.get_json()["message"]


def test_a_chunked_json_body_over_the_limit_is_413(pg_and_sqlite_client):
    app, client, h = pg_and_sqlite_client
    limit = app.config["COMPLIANCE"].MAX_BODY_BYTES
    body = b'{"product": {"name": "' + b"a" * limit + b'"}}'
    r = client.post("/api/v1/classify", input_stream=io.BytesIO(body), content_type="application/json",
                    headers={**h, "Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert r.status_code == 413 and f"limit {limit} bytes" in r.get_json()["message"]


def test_a_chunked_json_body_under_the_limit_is_read_whole(pg_and_sqlite_client):
    _, client, h = pg_and_sqlite_client
    body = b'{"product": {"name": "small", "tpp": 5000, "datacenter": true}}'
    r = client.post("/api/v1/classify", input_stream=io.BytesIO(body), content_type="application/json",
                    headers={**h, "Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})
    assert r.status_code == 200 and r.get_json()["product"]["name"] == "small"
