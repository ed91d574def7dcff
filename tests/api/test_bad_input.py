"""Bad input is a clear 4xx naming the field, never a 500."""
from __future__ import annotations

import json

import pytest

from tests.api.conftest import error_text
from tests.conftest import H100

SYSTEM_PART = {"name": "part", "tpp": 100}


def with_product(**changes):
    return {"product": {**H100, **changes}, "as_of": "2024-06-01"}


@pytest.mark.parametrize("body, status, field, fragment", [
    (with_product(tpp=-1), 422, "product.tpp", "must be 0 or more"),
    (with_product(die_area_mm2=-814), 422, "product.die_area_mm2", "must be greater than 0"),
    (with_product(die_area_mm2=0), 422, "product.die_area_mm2", "must be greater than 0"),
    (with_product(tpp="4800"), 422, "product.tpp", "must be a number"),
    (with_product(io_bandwidth_gb_per_s="fast"), 422, "product.io_bandwidth_gb_per_s", "must be a number"),
    (with_product(tpp=True), 422, "product.tpp", "must be a number, got True"),
    (with_product(memory_bandwidth_gb_per_s=False), 422, "product.memory_bandwidth_gb_per_s", "must be a number"),
    (with_product(datacenter="yes"), 422, "product.datacenter", "Not a valid boolean"),
    (with_product(datacenter=1), 422, "product.datacenter", "Not a valid boolean"),
    (with_product(throughput=[{"format": "fp7", "dense_tops": 1}]), 422, "product.throughput.0.format",
     "unknown format 'fp7'"),
    (with_product(throughput=[{"format": "fp8", "dense_tops": -1}]), 422, "product.throughput.0.dense_tops",
     "must be 0 or more"),
    (with_product(throughput=[{"format": "fp8"}]), 422, "product.throughput.0.dense_tops", "exactly one of"),
    (with_product(throughput=[{"format": "fp8", "dense_tops": 1, "sparse_tops": 2}]), 422,
     "product.throughput.0.dense_tops", "exactly one of"),
    (with_product(throughput=[{"format": "fp8", "dense_tops": 1}, {"format": "fp8", "dense_tops": 2}]), 422,
     "product.throughput", "format listed twice: fp8"),
    (with_product(kind="gpu"), 422, "product.kind", "Must be one of"),
    (with_product(name=""), 422, "product.name", "Length"),
    (with_product(name=None), 422, "product.name", "may not be null"),
    (with_product(colour="green"), 422, "product.colour", "Unknown field"),
    (with_product(logic_dies=[{"area_mm2": 400}]), 422, "product.die_area_mm2",
     "give die_area_mm2 or logic_dies, not both"),
    ({"product": {"name": "x", "tpp": 100, "logic_dies": [{"area_mm2": 400, "non_planar": "yes"}]}}, 422,
     "product.logic_dies.0.non_planar", "Not a valid boolean"),
    ({"product": {"name": "x", "tpp": 100, "logic_dies": [{"area_mm2": 0}]}}, 422,
     "product.logic_dies.0.area_mm2", "must be greater than 0"),
    ({"product": {"name": "x", "tpp": 100, "logic_dies": [{"non_planar": True}]}}, 422,
     "product.logic_dies.0.area_mm2", "Missing data"),
    ({"product": H100, "record": 1}, 422, "record", "Not a valid boolean"),
    (with_product(package_area_mm2=100), 422, "product.package_area_mm2", "kind 'hbm' only"),
    ({"product": {"name": "s", "kind": "system"}}, 422, "product.components", "at least one component"),
    ({"product": {"name": "s", "kind": "system", "components": []}}, 422, "product.components",
     "at least one component"),
    ({"product": {"name": "s", "kind": "system", "components": [{"product": SYSTEM_PART, "count": 0}]}}, 422,
     "product.components.0.count", "greater than or equal to 1"),
    ({"product": {"name": "s", "kind": "system", "components": [{"product": SYSTEM_PART, "count": "2"}]}}, 422,
     "product.components.0.count", "Not a valid integer"),
    ({"product": {"name": "s", "kind": "system", "components": [{"product": {"name": "p", "tpp": -3}}]}}, 422,
     "product.components.0.product.tpp", "must be 0 or more"),
    ({"product": {**H100, "components": [{"product": SYSTEM_PART}]}}, 422, "product.components",
     "only kind 'system' has components"),
    ({"product": H100, "destinations": ["XX"]}, 422, "destinations.0", "unknown country code 'XX'"),
    ({"product": H100, "destinations": ["China"]}, 422, "destinations.0", "unknown country code 'China'"),
    ({"product": H100, "destinations": [86]}, 422, "destinations.0", "Not a valid string"),
    ({"product": H100, "destinations": "CN"}, 422, "destinations", "Not a valid list"),
    ({"product": H100, "end_user": {"headquarters": "ZZ"}}, 422, "end_user.headquarters", "unknown country code"),
    ({"product": H100, "end_user": {"headquarters": "CN", "size": 3}}, 422, "end_user.size", "Unknown field"),
    ({"product": H100, "as_of": "2023-02-30"}, 422, "as_of", "Not a valid date"),
    ({"product": H100, "as_of": "30/11/2026"}, 422, "as_of", "Not a valid date"),
    ({"product": H100, "as_of": 20240101}, 422, "as_of", "Not a valid date"),
    ({"product": H100, "record": "yes"}, 422, "record", "Not a valid boolean"),
    ({"product": H100, "ruleset_revision": "abc"}, 422, "ruleset_revision", "Length"),
    ({"product": H100, "unexpected": 1}, 422, "unexpected", "Unknown field"),
    ({"product": None}, 422, "product", "may not be null"),
    ({"product": "H100"}, 422, "product", "Invalid input type"),
    ({}, 422, "product", "Missing data for required field"),
])
def test_bad_classify_input_is_a_4xx_naming_the_field(post, body, status, field, fragment):
    r = post("/api/v1/classify", body)
    assert r.status_code == status, r.get_data(as_text=True)
    assert f"{field}: " in r.get_json()["message"] and fragment in r.get_json()["message"], r.get_json()


def test_numbers_too_large_or_not_finite_are_rejected(client, viewer_headers):
    for raw in ('{"product": {"name": "x", "tpp": NaN}}', '{"product": {"name": "x", "tpp": Infinity}}',
                '{"product": {"name": "x", "tpp": 1e400}}', '{"product": {"name": "x", "tpp": ' + "9" * 400 + "}}"):
        r = client.post("/api/v1/classify", data=raw, headers={**viewer_headers, "Content-Type": "application/json"})
        assert r.status_code == 422, raw
        assert "product.tpp: " in r.get_json()["message"]


def test_malformed_json_is_400(client, viewer_headers):
    r = client.post("/api/v1/classify", data='{"product": {"name": ', headers={**viewer_headers,
                                                                             "Content-Type": "application/json"})
    assert r.status_code == 400
    assert "Invalid JSON" in r.get_json()["message"]


def test_a_json_array_body_is_422_naming_the_body(post):
    r = post("/api/v1/classify", [H100])
    assert r.status_code == 422
    assert r.get_json()["message"].startswith("invalid input: body: ")


def test_an_empty_body_is_422_naming_the_missing_product(client, viewer_headers):
    for headers in ({"Content-Type": "application/json"}, {}):
        r = client.post("/api/v1/classify", data="", headers={**viewer_headers, **headers})
        assert r.status_code == 422
        assert "product: Missing data for required field" in r.get_json()["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml",
                                          "text/csv", "multipart/form-data; boundary=x", None])
@pytest.mark.parametrize("path", ["/api/v1/classify", "/api/v1/classify/batch"])
def test_a_wrong_content_type_is_415_naming_the_header(client, viewer_headers, content_type, path):
    headers = dict(viewer_headers, **({"Content-Type": content_type} if content_type else {}))
    r = client.post(path, data=json.dumps({"product": H100, "products": [H100]}), headers=headers)
    assert r.status_code == 415
    body = r.get_json()
    assert "Content-Type" in body["errors"]
    assert (content_type or "none").split(";")[0] in body["message"]


def test_json_with_a_charset_is_accepted(client, viewer_headers):
    r = client.post("/api/v1/classify", data=json.dumps({"product": H100}),
                    headers={**viewer_headers, "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200


def test_an_oversized_body_is_413(make_app, headers_for):
    app = make_app(MAX_BODY_BYTES=4096)
    headers = headers_for(app, "viewer")
    body = {"product": {**H100, "notes": "x" * 4000}}
    r = app.test_client().post("/api/v1/classify", json=body, headers=headers)
    assert r.status_code == 413
    assert "limit 4096 bytes" in r.get_json()["message"]
    small = app.test_client().post("/api/v1/classify", json={"product": H100}, headers=headers)
    assert small.status_code == 200


@pytest.mark.parametrize("query, field", [("as_of=2024-02-30", "as_of"), ("history=maybe", "history"),
                                          ("kind=everything", "kind"), ("colour=red", "colour")])
def test_bad_rules_queries_are_422_naming_the_parameter(client, viewer_headers, query, field):
    r = client.get(f"/api/v1/rules?{query}", headers=viewer_headers)
    assert r.status_code == 422
    assert f"{field}: " in r.get_json()["message"]


def test_no_bad_input_ever_answers_500(post, client, viewer_headers):
    """A sweep of odd values into every product field: anything but a 5xx."""
    oddities = [None, -1, 0, 1e308, "", "x" * 400, [], {}, True, [1], {"a": 1}]
    fields = ["tpp", "die_area_mm2", "datacenter", "throughput", "logic_dies", "components", "kind", "name",
              "vendor", "family", "io_bandwidth_gb_per_s", "memory_bandwidth_gb_per_s", "package_area_mm2",
              "transistors", "sources", "sku"]
    for field in fields:
        for value in oddities:
            r = post("/api/v1/classify", {"product": {**H100, field: value}, "as_of": "2024-06-01"})
            assert r.status_code < 500, (field, value, r.get_data(as_text=True))
            if r.status_code >= 400:
                assert field in error_text(r), (field, value, error_text(r))


@pytest.mark.parametrize("product, field", [
    ({"name": "x", "throughput": [{"format": "fp64", "dense_tops": 1e307}]}, "product.throughput"),
    ({"name": "x", "tpp": 1e308, "die_area_mm2": 1e-308}, "product.die_area_mm2"),
    ({"name": "x", "tpp": 1e308, "logic_dies": [{"area_mm2": 1e-300}]}, "product.logic_dies"),
    ({"name": "x", "kind": "hbm", "memory_bandwidth_gb_per_s": 1e308, "package_area_mm2": 1e-300},
     "product.package_area_mm2"),
])
def test_inputs_whose_derived_metrics_overflow_are_422_naming_the_field_not_infinity(post, product, field):
    r = post("/api/v1/classify", {"product": product, "as_of": "2025-05-01"})
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert f"{field}: " in r.get_json()["message"] and "overflows" in r.get_json()["message"]


def _nested_system(depth: int) -> dict:
    product = dict(H100)
    for i in range(depth):
        product = {"name": f"level {i}", "kind": "system", "components": [{"product": product, "count": 2}]}
    return product


def test_systems_nested_too_deeply_are_422_naming_components(post):
    assert post("/api/v1/classify", {"product": _nested_system(16), "as_of": "2025-05-01"}).status_code == 200
    for depth in (17, 100, 200):
        r = post("/api/v1/classify", {"product": _nested_system(depth), "as_of": "2025-05-01"})
        assert r.status_code == 422, (depth, r.get_data(as_text=True)[:300])
        assert "product.components: " in r.get_json()["message"] and "16 levels" in r.get_json()["message"]


def test_json_nested_thousands_deep_is_400_not_500(client, viewer_headers):
    raw = '{"product": {"name": "x"}, "destinations": ' + "[" * 5000 + "]" * 5000 + "}"
    r = client.post("/api/v1/classify", data=raw, headers={**viewer_headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and "nested too deeply" in r.get_json()["message"]


@pytest.mark.parametrize("path", [
    "/api/v1/changes?page=99999999999999999999",
    "/api/v1/changes?catalogue_id=99999999999999999999",
    "/api/v1/changes?version=99999999999999999999",
    "/api/v1/changes?run_id=99999999999999999999",
    "/api/v1/rules/audit-trail?page=99999999999999999999",
    "/api/v1/rules/diff?from=1&to=99999999999999999999",
    "/api/v1/catalogues/1/products?page=9999999999999999999",
    "/api/v1/catalogues/1/as-of?as_of=2025-01-01&page=9999999999999999999",
    "/api/v1/audits/1/results?page=9999999999999999999",
])
def test_page_numbers_and_ids_too_large_for_the_database_are_422(client, admin_headers, path):
    r = client.get(path, headers=admin_headers)
    assert r.status_code == 422, (path, r.status_code, r.get_data(as_text=True)[:300])
    param = path.split("?")[1].split("=99999")[0].split("&")[-1]
    assert f"{param}: " in r.get_json()["message"]


@pytest.mark.parametrize("product", ["99999999999999999999999", "²", "١٢"])
def test_a_change_feed_product_that_is_not_a_database_id_is_matched_as_a_sku(client, viewer_headers, product):
    r = client.get(f"/api/v1/changes?product={product}", headers=viewer_headers)
    assert r.status_code == 200 and r.get_json()["total"] == 0


def test_a_draft_from_a_base_version_too_large_for_the_database_is_422(client, admin_headers):
    r = client.post("/api/v1/rules/drafts", json={"base_version": 10**20, "title": "x"}, headers=admin_headers)
    assert r.status_code == 422 and "base_version: " in r.get_json()["message"]
