"""GET /rules, /rules/vocabulary, /health, the OpenAPI document and the docs page."""
from __future__ import annotations

from openapi_spec_validator import validate

from compliance.engine.vocabulary import METRICS, OPERATORS


def test_rules_in_force_on_a_date_with_citations(client, viewer_headers):
    body = client.get("/api/v1/rules?as_of=2023-06-01", headers=viewer_headers).get_json()
    ids = {r["id"] for r in body["in_force"]}
    assert "us-2022-10.3a090.a" in ids and "us-2023-10.3a090.a" not in ids
    assert all(r["citation"] for r in body["in_force"])
    assert body["as_of"] == "2023-06-01" and len(body["ruleset_revision"]) == 64
    assert body["country_aliases"] == {"HK": "CN"}
    assert "IL" in body["country_groups"]["A:6"]


def test_rules_history_lists_every_rule_with_its_dates(client, viewer_headers):
    body = client.get("/api/v1/rules?as_of=2024-06-01", headers=viewer_headers).get_json()
    history = {r["id"]: r for r in body["history"]}
    assert history["us-2022-10.3a090.a"]["effective_to"] == "2023-11-16"
    assert history["us-2023-10.3a090.a"]["effective_from"] == "2023-11-17"
    assert history["us-2023-10.3a090.a"]["effective_to"] is None
    froms = [r["effective_from"] for r in body["history"]]
    assert froms == sorted(froms)
    ai = next(p for p in body["packs"] if p["id"] == "us-2025-01-ai-diffusion")
    # never enforced: its one rule is a notice (flags and a note), it sets no requirement
    assert ai["status"] == "never_in_force" and ai["rules"] == ["us-2025-01.notice.ai-diffusion"]


def test_rules_without_history_and_filtered_by_kind(client, viewer_headers):
    body = client.get("/api/v1/rules?as_of=2024-06-01&history=false&kind=classification",
                      headers=viewer_headers).get_json()
    assert "history" not in body
    assert {r["kind"] for r in body["in_force"]} == {"classification"}
    precedences = [r["precedence"] for r in body["in_force"]]
    assert precedences == sorted(precedences, reverse=True)


def test_rules_of_an_earlier_revision_and_an_unknown_one(client, viewer_headers):
    current = client.get("/api/v1/rules?history=false", headers=viewer_headers).get_json()
    same = client.get(f"/api/v1/rules?history=false&ruleset_revision={current['ruleset_revision']}",
                      headers=viewer_headers)
    assert same.status_code == 200 and same.get_json() == current
    unknown = client.get(f"/api/v1/rules?ruleset_revision={'0' * 64}", headers=viewer_headers)
    assert unknown.status_code == 404 and "ruleset_revision" in unknown.get_json()["errors"]


def test_rules_default_to_today(client, viewer_headers):
    from datetime import date

    assert client.get("/api/v1/rules", headers=viewer_headers).get_json()["as_of"] == date.today().isoformat()


def test_vocabulary_lists_metrics_operators_and_formats(client, viewer_headers):
    body = client.get("/api/v1/rules/vocabulary", headers=viewer_headers).get_json()
    metrics = {m["name"]: m for m in body["metrics"]}
    assert set(metrics) == set(METRICS)
    assert metrics["tpp"]["operators"] == list(OPERATORS["number"])
    assert metrics["performance_density"]["unit"] == "TPP/mm2"
    assert metrics["destination"]["operators"] == list(OPERATORS["country"])
    assert body["formats"]["fp8"] == 8 and body["formats"]["tf32"] == 32
    assert set(body["exceptions"]) == {"NAC", "ACA", "HBM"}


def test_health_needs_no_key_and_reports_the_database_and_rules(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    r = app.test_client().get("/api/v1/health")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok"
    assert body["database"] == ("sqlite" if db_url.startswith("sqlite") else "postgresql")
    assert body["rule_version"] == 1 and len(body["ruleset_revision"]) == 64


def test_openapi_json_is_a_valid_openapi_3_document(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/classify", "/api/v1/classify/batch", "/api/v1/rules", "/api/v1/rules/vocabulary",
                 "/api/v1/health", "/api/v1/decisions/{decision_id}"):
        assert path in spec["paths"], path
    product = spec["components"]["schemas"]["Product"]["properties"]
    assert "dense" in product["throughput"]["description"].lower() or "Dense" in product["throughput"]["description"]


def test_the_docs_page_answers_200(client):
    r = client.get("/api/v1/docs")
    assert r.status_code == 200
    assert b"swagger" in r.data.lower()


def test_the_classify_error_responses_are_documented(client):
    responses = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/classify"]["post"]["responses"]
    assert {"200", "400", "401", "413", "415", "422"} <= set(responses)
