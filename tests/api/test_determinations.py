"""Determinations end to end over the API: record, computed vs determined, supersede, four eyes, history,
the decision log and replay, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest

from tests.api.conftest import error_text
from tests.conftest import H100

SMALL_NPU = {"name": "Edge NPU 20", "vendor": "Acme", "kind": "ic", "datacenter": False,
             "throughput": [{"format": "int8", "dense_tops": 20}], "die_area_mm2": 100}


@pytest.fixture
def det_app(make_app, db_url):
    return make_app(DATABASE_URL=db_url)


@pytest.fixture
def setup(det_app, headers_for):
    client = det_app.test_client()
    officer = headers_for(det_app, "auditor")
    other = headers_for(det_app, "auditor")
    admin = headers_for(det_app, "admin")
    r = client.post("/api/v1/catalogues", json={"name": "chips", "destinations": ["CN"]}, headers=officer)
    assert r.status_code == 201, r.get_json()
    cid = r.get_json()["id"]
    for sku, spec in (("h100", H100), ("npu20", SMALL_NPU)):
        r = client.put(f"/api/v1/catalogues/{cid}/products/{sku}", json=spec, headers=officer)
        assert r.status_code in (200, 201), r.get_json()
    return client, cid, officer, other, admin


def _record(client, cid, headers, sku, eccn, **extra):
    body = {"sku": sku, "eccn": eccn, "basis": {"text": "datasheet figures", "datasheet": "H100-DS-2023.pdf",
                                                "spec_figures": {"tpp": 15832}}, **extra}
    return client.post(f"/api/v1/catalogues/{cid}/determinations", json=body, headers=headers)


def _standing(client, cid, headers, sku):
    r = client.get(f"/api/v1/catalogues/{cid}/determinations?sku={sku}", headers=headers)
    assert r.status_code == 200, r.get_json()
    (item,) = r.get_json()["items"]
    return item


def test_record_a_determination_that_agrees_with_the_computed_answer(setup):
    client, cid, officer, _, _ = setup
    r = _record(client, cid, officer, "h100", "3a090.A")
    assert r.status_code == 201, r.get_json()
    d = r.get_json()
    assert d["eccn"] == "3A090.a" and d["state"] == "in_force"
    assert d["computed"] == {"eccn": "3A090.a", "status": "controlled", "missing": []}
    assert d["agrees_with_computed"] is True and len(d["input_sha256"]) == 64
    assert d["recorded_by"].startswith("test auditor")
    assert r.headers["Location"].endswith(f"/api/v1/determinations/{d['id']}")
    st = _standing(client, cid, officer, "h100")
    assert st["state"] == "agrees" and st["needs_review"] is False and st["reasons"] == []
    assert st["computed"]["eccn"] == "3A090.a"


def test_a_determination_that_disagrees_needs_review_with_the_reason(setup):
    client, cid, officer, _, _ = setup
    d = _record(client, cid, officer, "h100", "EAR99").get_json()
    assert d["agrees_with_computed"] is False
    st = _standing(client, cid, officer, "h100")
    assert st["state"] == "needs_review"
    day = d["recorded_at"][:10]
    assert st["reasons"][0].startswith("computed 3A090.a under revision ")
    assert st["reasons"][0].endswith(f"; determined EAR99 on {day}")
    page = client.get(f"/api/v1/catalogues/{cid}/determinations?needs_review=true", headers=officer).get_json()
    assert [x["sku"] for x in page["items"]] == ["h100"] and page["counts"] == {"products": 1, "needs_review": 1}
    everyone = client.get(f"/api/v1/catalogues/{cid}/determinations", headers=officer).get_json()
    assert {x["sku"]: x["state"] for x in everyone["items"]} == {"h100": "needs_review", "npu20": "undetermined"}
    feed = client.get(f"/api/v1/determinations/reviews?catalogue_id={cid}", headers=officer).get_json()
    assert [(x["sku"], x["cause"], x["needs_review"]) for x in feed["items"]] == [("h100", "recorded", True)]


def test_a_new_determination_supersedes_the_old_and_the_history_is_kept(setup):
    client, cid, officer, _, _ = setup
    first = _record(client, cid, officer, "h100", "EAR99").get_json()
    second = _record(client, cid, officer, "h100", "3A090.a").get_json()
    assert second["state"] == "in_force"
    old = client.get(f"/api/v1/determinations/{first['id']}", headers=officer).get_json()
    assert old["state"] == "superseded" and old["superseded_by"] == second["id"] and old["eccn"] == "EAR99"
    hist = client.get("/api/v1/determinations?sku=h100", headers=officer).get_json()
    assert [(x["id"], x["state"]) for x in hist["items"]] == [(second["id"], "in_force"), (first["id"], "superseded")]
    assert _standing(client, cid, officer, "h100")["state"] == "agrees"


def test_four_eyes_needs_a_second_person_who_is_not_the_recorder(setup):
    client, cid, officer, other, admin = setup
    assert client.put(f"/api/v1/catalogues/{cid}/determination-policy", json={"four_eyes": True},
                      headers=officer).status_code == 403
    r = client.put(f"/api/v1/catalogues/{cid}/determination-policy", json={"four_eyes": True}, headers=admin)
    assert r.status_code == 200 and r.get_json()["four_eyes"] is True
    before = _record(client, cid, officer, "npu20", "5A992.c").get_json()
    assert before["state"] == "pending_approval"
    assert _standing(client, cid, officer, "npu20")["state"] == "pending_approval"
    r = client.post(f"/api/v1/determinations/{before['id']}/approve", json={}, headers=officer)
    assert r.status_code == 422 and "approved_by" in error_text(r)
    r = client.post(f"/api/v1/determinations/{before['id']}/approve", json={"note": "checked"}, headers=other)
    assert r.status_code == 200, r.get_json()
    ok = r.get_json()
    assert ok["state"] == "in_force" and ok["approval"]["approved_by"].startswith("test auditor")
    assert ok["approval"]["approved_by"] != ok["recorded_by"]
    assert client.post(f"/api/v1/determinations/{before['id']}/approve", json={},
                       headers=other).status_code == 409
    # A newer determination waits for approval; the approved one stays in force meanwhile.
    newer = _record(client, cid, officer, "npu20", "EAR99").get_json()
    st = _standing(client, cid, officer, "npu20")
    assert st["determination"]["id"] == before["id"] and st["pending"]["id"] == newer["id"]
    client.post(f"/api/v1/determinations/{newer['id']}/approve", json={}, headers=other)
    st = _standing(client, cid, officer, "npu20")
    assert st["determination"]["id"] == newer["id"] and st["state"] == "agrees"
    assert client.get(f"/api/v1/determinations/{before['id']}", headers=officer).get_json()["state"] == "superseded"


@pytest.mark.parametrize("body, field", [
    ({"sku": "h100", "eccn": "3A090.d", "basis": {"text": "x"}}, "eccn"),
    ({"sku": "h100", "eccn": "EAR-100", "basis": {"text": "x"}}, "eccn"),
    ({"sku": "h100", "eccn": "EAR99", "basis": {}}, "basis"),
    ({"sku": "h100", "eccn": "EAR99"}, "basis"),
    ({"sku": "nope", "eccn": "EAR99", "basis": {"text": "x"}}, "sku"),
    ({"sku": "h100", "eccn": "EAR99", "basis": {"text": "x"}, "rule_revision": "0" * 64}, "rule_revision"),
    ({"sku": "h100", "eccn": "EAR99", "basis": {"text": "x"}, "colour": "red"}, "colour"),
])
def test_bad_determinations_are_4xx_naming_the_field(setup, body, field):
    client, cid, officer, _, _ = setup
    r = client.post(f"/api/v1/catalogues/{cid}/determinations", json=body, headers=officer)
    assert 400 <= r.status_code < 500, r.get_json()
    assert field in error_text(r)


def test_viewers_cannot_record(setup, headers_for, det_app):
    client, cid, _, _, _ = setup
    r = _record(client, cid, headers_for(det_app, "viewer"), "h100", "EAR99")
    assert r.status_code == 403


def test_the_decision_log_lists_classify_decisions_and_determinations_and_replays_identically(setup):
    client, cid, officer, _, _ = setup
    r = client.post("/api/v1/classify", json={"product": H100, "destinations": ["CN"], "record": True,
                                              "as_of": "2025-05-01"}, headers=officer)
    assert r.status_code == 200
    classify_id = r.get_json()["decision_id"]
    det = _record(client, cid, officer, "h100", "3A090.a").get_json()
    log = client.get("/api/v1/decisions", headers=officer).get_json()
    kinds = [(x["kind"], x["decision_id"]) for x in log["items"]]
    assert ("classify", classify_id) in kinds and ("determination", det["decision_id"]) in kinds
    assert all(len(x["input_sha256"]) == 64 for x in log["items"])
    only = client.get("/api/v1/decisions?kind=classify&eccn=3A090.a&product=H100 SXM5", headers=officer).get_json()
    assert [x["decision_id"] for x in only["items"]] == [classify_id]
    assert client.get("/api/v1/decisions?eccn=none", headers=officer).get_json()["total"] == 0
    assert client.get("/api/v1/decisions?actor=nobody", headers=officer).get_json()["total"] == 0
    rev = det["ruleset_revision"]
    assert client.get(f"/api/v1/decisions?revision={rev[:10]}", headers=officer).get_json()["total"] == 2
    assert client.get("/api/v1/decisions?from=2000-01-01&to=2000-01-02", headers=officer).get_json()["total"] == 0
    r = client.get("/api/v1/decisions?from=2025-01-02&to=2025-01-01", headers=officer)
    assert r.status_code == 422 and "to" in error_text(r)
    for decision_id in (classify_id, det["decision_id"]):
        r = client.post(f"/api/v1/decisions/{decision_id}/replay", headers=officer)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert body["identical"] is True and body["differences"] == []
        assert body["current"]["same_as_recorded"] is True
    assert client.post("/api/v1/decisions/999999/replay", headers=officer).status_code == 404


def test_export_csv_and_json_with_history_and_neutralised_cells(setup):
    client, cid, officer, _, _ = setup
    _record(client, cid, officer, "h100", "EAR99")
    body = {"sku": "h100", "eccn": "3A090.a", "basis": {"text": "=HYPERLINK(\"http://x\")", "datasheet": "+SUM(1,2)"}}
    assert client.post(f"/api/v1/catalogues/{cid}/determinations", json=body, headers=officer).status_code == 201
    r = client.get("/api/v1/determinations/export?format=csv", headers=officer)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [(x["eccn"], x["state"]) for x in rows] == [("EAR99", "superseded"), ("3A090.a", "in_force")]
    assert rows[1]["basis_text"] == "'=HYPERLINK(\"http://x\")" and rows[1]["basis_datasheet"] == "'+SUM(1,2)"
    r = client.get(f"/api/v1/determinations/export?format=json&catalogue_id={cid}", headers=officer)
    items = r.get_json()["items"]
    assert [x["eccn"] for x in items] == ["EAR99", "3A090.a"] and items[1]["basis_text"].startswith("=")
    r = client.get("/api/v1/determinations/export?format=pdf", headers=officer)
    assert r.status_code == 422 and "format" in error_text(r)
