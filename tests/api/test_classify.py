"""POST /api/v1/classify and /classify/batch: the contract, recording, batch == single."""
from __future__ import annotations

import json
from datetime import date

import pytest

from tests.conftest import A800, H20, H100, HBM3E, RTX_4090


def test_classify_returns_the_documented_fields(post):
    r = post("/api/v1/classify", {"product": H100, "as_of": "2024-06-01", "destinations": ["CN", "DE"]})
    assert r.status_code == 200
    body = r.get_json()
    c = body["classification"]
    assert {"eccn", "status", "conditions", "missing", "metrics", "rule_id", "citation", "reason"} <= set(c)
    assert (c["eccn"], c["status"], c["missing"]) == ("3A090.a", "controlled", [])
    assert c["metrics"]["tpp"] == 15832 and c["metrics"]["tpp_source"] == "throughput:fp8"
    leaf = c["conditions"][0]
    assert {"rule_id", "path", "metric", "op", "threshold", "met", "state"} <= set(leaf)
    assert [lic["destination"] for lic in body["licences"]] == ["CN", "DE"]
    cn = body["licences"][0]
    assert {"destination", "requirement", "review_policy", "exceptions", "rule_ids", "citations"} <= set(cn)
    assert cn["requirement"] == "license_required" and cn["review_policy"] == "presumption_of_denial"
    assert cn["rule_ids"] and cn["citations"]
    assert body["as_of"] == "2024-06-01"
    assert len(body["ruleset_revision"]) == 64
    assert "not legal advice" in body["disclaimer"]


def test_as_of_defaults_to_today(post):
    r = post("/api/v1/classify", {"product": H20})
    assert r.status_code == 200
    assert r.get_json()["as_of"] == date.today().isoformat()


def test_lower_case_country_codes_are_accepted_and_upper_cased(post):
    body = post("/api/v1/classify", {"product": H100, "as_of": "2024-06-01", "destinations": ["cn", " hk"],
                                     "end_user": {"headquarters": "mo"}}).get_json()
    assert [lic["destination"] for lic in body["licences"]] == ["CN", "HK"]
    assert body["licences"][1]["evaluated_as"] == "CN"


def test_headquarters_reach_the_engine(post):
    body = post("/api/v1/classify", {"product": H100, "as_of": "2024-06-01", "destinations": ["DE"],
                                     "end_user": {"headquarters": "CN"}}).get_json()
    assert body["licences"][0]["rule_ids"] == ["us-2023-10.licence.headquarters"]


def test_the_ruleset_revision_matches_rules_endpoint(client, post, viewer_headers):
    decided = post("/api/v1/classify", {"product": H100}).get_json()
    rules = client.get("/api/v1/rules", headers=viewer_headers).get_json()
    assert decided["ruleset_revision"] == rules["ruleset_revision"]


def test_an_unknown_ruleset_revision_is_404_naming_the_field(post):
    r = post("/api/v1/classify", {"product": H100, "ruleset_revision": "0" * 64})
    assert r.status_code == 404
    assert "ruleset_revision" in r.get_json()["errors"]


def test_classify_a_system(post):
    product = {"name": "DGX H100", "vendor": "NVIDIA", "kind": "system", "datacenter": True,
               "components": [{"count": 8, "product": H100}]}
    c = post("/api/v1/classify", {"product": product, "as_of": "2024-06-01"}).get_json()["classification"]
    assert c["eccn"] == "4A090.a" and c["components"][0]["count"] == 8


def test_indeterminate_is_a_200_with_missing_named(post):
    r = post("/api/v1/classify", {"product": {"name": "x", "datacenter": True, "tpp": 3000},
                                  "as_of": "2024-06-01", "destinations": ["CN"]})
    assert r.status_code == 200
    body = r.get_json()
    assert body["classification"]["status"] == "indeterminate"
    assert body["classification"]["missing"] == ["performance_density"]
    assert body["licences"][0]["requirement"] == "indeterminate"


def test_record_true_stores_a_decision_retrievable_by_id(make_app, db_url, headers_for):
    app = make_app(DATABASE_URL=db_url)
    client = app.test_client()
    headers = headers_for(app, "viewer")
    request = {"product": H100, "as_of": "2024-06-01", "destinations": ["CN"], "record": True}
    decided = client.post("/api/v1/classify", json=request, headers=headers).get_json()
    assert isinstance(decided["decision_id"], int)
    stored = client.get(f"/api/v1/decisions/{decided['decision_id']}", headers=headers)
    assert stored.status_code == 200
    rec = stored.get_json()
    assert rec["ruleset_revision"] == decided["ruleset_revision"]
    assert rec["as_of"] == "2024-06-01"
    assert rec["request"]["product"]["name"] == "H100 SXM5"
    assert rec["response"]["classification"]["eccn"] == "3A090.a"
    assert rec["response"]["licences"] == decided["licences"]
    assert "test viewer" in rec["actor"]


def test_without_record_no_decision_id_is_returned(post):
    assert "decision_id" not in post("/api/v1/classify", {"product": H100}).get_json()


def test_an_unknown_decision_is_404(client, viewer_headers):
    r = client.get("/api/v1/decisions/999999", headers=viewer_headers)
    assert r.status_code == 404 and "999999" in r.get_json()["message"]


# ---- batch ----

BATCH = [H100, A800, H20, RTX_4090, HBM3E,
         {"name": "x", "datacenter": True, "tpp": 3000},
         {"name": "DGX", "vendor": "NVIDIA", "kind": "system", "datacenter": True,
          "components": [{"count": 8, "product": H100}]}]


@pytest.mark.parametrize("as_of", ["2023-06-01", "2025-08-01"])
def test_batch_gives_the_same_answers_as_single_calls(post, as_of):
    options = {"as_of": as_of, "destinations": ["CN", "AE", "IL"], "end_user": {"headquarters": "SG"}}
    batch = post("/api/v1/classify/batch", {"products": BATCH, **options})
    assert batch.status_code == 200
    body = batch.get_json()
    assert body["count"] == len(BATCH) and body["as_of"] == as_of
    for product, result in zip(BATCH, body["results"]):
        single = post("/api/v1/classify", {"product": product, **options}).get_json()
        for key in ("classification", "licences", "ruleset_revision", "as_of"):
            assert json.dumps(result[key], sort_keys=True) == json.dumps(single[key], sort_keys=True), product["name"]


def test_batch_over_the_limit_is_422_naming_products(make_app, db_url, headers_for):
    app = make_app(DATABASE_URL=db_url, BATCH_MAX_PRODUCTS=3)
    headers = headers_for(app, "viewer")
    client = app.test_client()
    r = client.post("/api/v1/classify/batch", json={"products": [H20] * 4}, headers=headers)
    assert r.status_code == 422
    assert r.get_json()["errors"] == {"products": ["at most 3 products per call, got 4"]}
    assert client.post("/api/v1/classify/batch", json={"products": [H20] * 3}, headers=headers).status_code == 200


def test_an_empty_batch_is_422_naming_products(post):
    r = post("/api/v1/classify/batch", {"products": []})
    assert r.status_code == 422 and "products" in r.get_json()["errors"]["json"]


def test_a_bad_product_in_a_batch_is_named_by_its_index(post):
    r = post("/api/v1/classify/batch", {"products": [H100, {**H20, "tpp": -5}]})
    assert r.status_code == 422
    assert r.get_json()["errors"]["json"]["products"]["1"]["tpp"] == ["must be 0 or more"]
    assert "products.1.tpp" in r.get_json()["message"]


@pytest.mark.parametrize("decision_id", ["99999999999999999999999", "9223372036854775808", "0"])
def test_decision_ids_outside_the_database_range_are_404_not_500(make_app, db_url, headers_for, decision_id):
    app = make_app(DATABASE_URL=db_url)
    r = app.test_client().get(f"/api/v1/decisions/{decision_id}", headers=headers_for(app, "viewer"))
    assert r.status_code == 404


def test_batch_record_stores_each_full_product_so_the_decision_can_be_replayed(make_app, db_url, headers_for):
    app = make_app(DATABASE_URL=db_url)
    client = app.test_client()
    headers = headers_for(app, "viewer")
    body = {"products": [H100, H20], "as_of": "2025-05-01", "destinations": ["CN"], "record": True}
    results = client.post("/api/v1/classify/batch", json=body, headers=headers).get_json()["results"]
    for product, result in zip([H100, H20], results):
        stored = client.get(f"/api/v1/decisions/{result['decision_id']}", headers=headers).get_json()
        assert stored["request"]["product"]["throughput"] == product["throughput"]
        assert stored["request"]["destinations"] == ["CN"]
        replay = client.post("/api/v1/classify", json={k: v for k, v in stored["request"].items() if k != "record"},
                             headers=headers).get_json()
        assert replay["classification"] == stored["response"]["classification"]
        assert replay["licences"] == stored["response"]["licences"]
