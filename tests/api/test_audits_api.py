"""Audit API in embedded mode (no broker: the same chunk tasks run in-process): 202 + progress,
counts, paginated results, streamed reports, validation and roles. The queueing itself is tested
against a real worker in tests/integration/test_audit_worker.py."""
from __future__ import annotations

import csv
import io
import json

import pytest

from compliance.tasks import wait_for_embedded_jobs
from tests.conftest import A800, H20, H100, HBM3E, RTX_4090, RTX_4090_D

PRODUCTS = [{**H100, "sku": "H100"}, {**A800, "sku": "A800"}, {**H20, "sku": "H20"}, {**RTX_4090, "sku": "4090"},
            {**RTX_4090_D, "sku": "4090D"}, {**HBM3E, "sku": "HBM"},
            {"sku": "NODIE", "name": "No die", "vendor": "Acme", "datacenter": True,
             "throughput": [{"format": "fp16", "dense_tops": 150}]},
            {"sku": "DGX", "name": "DGX", "vendor": "NVIDIA", "kind": "system", "datacenter": True,
             "components": [{"product": {"sku": "H100"}, "count": 8}]}]


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url, AUDIT_CHUNK_SIZE="3")


@pytest.fixture
def catalogue(client, auditor_headers):
    cid = client.post("/api/v1/catalogues", json={"name": "acme"}, headers=auditor_headers).json["id"]
    data = "\n".join(json.dumps(p) for p in PRODUCTS).encode()
    r = client.post(f"/api/v1/catalogues/{cid}/imports", headers=auditor_headers,
                    data={"file": (io.BytesIO(data), "p.jsonl")}, content_type="multipart/form-data")
    assert r.json["imported"] == len(PRODUCTS), r.json
    return cid


def start(client, headers, cid, **body):
    body = {"as_of": "2025-06-01", "destinations": ["CN", "AE", "DE"], **body}
    return client.post(f"/api/v1/catalogues/{cid}/audits", json=body, headers=headers)


def test_audit_answers_202_then_finishes_with_counts(client, auditor_headers, viewer_headers, catalogue):
    r = start(client, auditor_headers, catalogue, end_user={"headquarters": "US"})
    assert r.status_code == 202
    assert r.headers["Location"] == r.json["url"] == f"/api/v1/audits/{r.json['id']}"
    assert r.json["progress"]["chunks_total"] == 3 and r.json["progress"]["products_total"] == 8
    wait_for_embedded_jobs(client.application)
    st = client.get(r.headers["Location"], headers=viewer_headers).json
    assert st["status"] == "done", st
    assert st["progress"] == {"products_done": 8, "products_total": 8, "chunks_done": 3, "chunks_total": 3,
                              "percent": 100.0}
    c = st["counts"]
    assert c["products"] == 8
    assert c["by_eccn"] == {"3A090.a": 3, "3A090.c": 1, "4A090.a": 1, "none": 3}
    assert c["by_status"] == {"controlled": 5, "not_controlled": 2, "indeterminate": 1}
    # CN: 5 controlled items + the H20 overlay (letter of 2025-04-09) need a licence; the policy is
    # presumption of denial for all of them on 2025-06-01 (H20 approvals came in July 2025).
    assert c["licences"]["CN"]["license_required"] == {"presumption_of_denial": 6}
    assert c["licences"]["CN"] == {"license_required": {"presumption_of_denial": 6},
                                   "no_license_required": {"none": 1}, "indeterminate": {"unknown": 1}}
    assert c["licences"]["DE"] == {"no_license_required": {"none": 8}}  # A:5: no licence for anything
    assert sum(n for per in c["licences"]["AE"].values() for n in per.values()) == 8
    t = st["timings"]
    assert t["queued_at"] <= t["started_at"] <= t["finished_at"] and t["products_per_second"] > 0


def test_results_match_the_classify_api_row_by_row(client, auditor_headers, catalogue):
    aid = start(client, auditor_headers, catalogue).json["id"]
    wait_for_embedded_jobs(client.application)
    rows = client.get(f"/api/v1/audits/{aid}/results?per_page=1000", headers=auditor_headers).json["items"]
    assert len(rows) == 8 * 3
    for product in PRODUCTS[:7]:
        d = client.post("/api/v1/classify", json={"product": product, "as_of": "2025-06-01",
                                                  "destinations": ["CN", "AE", "DE"]}, headers=auditor_headers).json
        mine = [r for r in rows if r["sku"] == product["sku"]]
        assert [r["destination"] for r in mine] == ["CN", "AE", "DE"]
        for r, lic in zip(mine, d["licences"]):
            assert (r["eccn"], r["status"]) == (d["classification"]["eccn"], d["classification"]["status"])
            assert (r["requirement"], r["review_policy"], r["exceptions"], r["rule_ids"]) == \
                (lic["requirement"], lic["review_policy"], lic["exceptions"], lic["rule_ids"])
    h100 = next(r for r in rows if r["sku"] == "H100")
    assert "tpp>=4800:+11032" in h100["margins"]
    h20 = next(r for r in rows if r["sku"] == "H20")
    assert "tpp>=4800:-2432" in h20["margins"]
    nodie = next(r for r in rows if r["sku"] == "NODIE")
    assert nodie["status"] == "indeterminate" and "performance_density" in nodie["missing"]


def test_results_paginate_and_filter(client, auditor_headers, catalogue):
    aid = start(client, auditor_headers, catalogue).json["id"]
    wait_for_embedded_jobs(client.application)
    base = f"/api/v1/audits/{aid}/results"
    p2 = client.get(f"{base}?per_page=5&page=2", headers=auditor_headers).json
    everything = client.get(f"{base}?per_page=1000", headers=auditor_headers).json["items"]
    assert p2["total"] == 24 and p2["pages"] == 5 and p2["items"] == everything[5:10]
    cn = client.get(f"{base}?destination=cn&per_page=1000", headers=auditor_headers).json
    assert cn["total"] == 8 and {r["destination"] for r in cn["items"]} == {"CN"}
    req = client.get(f"{base}?requirement=license_required&per_page=4&page=2", headers=auditor_headers).json
    allreq = [r for r in everything if r["requirement"] == "license_required"]
    assert req["total"] == len(allreq) and req["items"] == allreq[4:8]
    both = client.get(f"{base}?destination=AE&requirement=license_required", headers=auditor_headers).json
    assert both["items"] == [r for r in allreq if r["destination"] == "AE"]
    assert client.get(f"{base}?destination=FR", headers=auditor_headers).status_code == 422
    assert client.get(f"{base}?destination=XX", headers=auditor_headers).status_code == 422
    assert client.get(f"{base}?requirement=maybe", headers=auditor_headers).status_code == 422


def test_reports_stream_every_row_as_csv_and_json(client, auditor_headers, catalogue):
    aid = start(client, auditor_headers, catalogue).json["id"]
    wait_for_embedded_jobs(client.application)
    everything = client.get(f"/api/v1/audits/{aid}/results?per_page=1000", headers=auditor_headers).json["items"]
    r = client.get(f"/api/v1/audits/{aid}/report.csv", headers=auditor_headers)
    assert r.status_code == 200 and r.mimetype == "text/csv" and r.is_streamed
    table = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert len(table) == 24
    assert [(t["sku"], t["destination"], t["requirement"]) for t in table] == \
        [(e["sku"], e["destination"], e["requirement"]) for e in everything]
    r = client.get(f"/api/v1/audits/{aid}/report.json?destination=CN", headers=auditor_headers)
    doc = json.loads(r.get_data(as_text=True))
    assert doc["audit_id"] == aid and len(doc["results"]) == 8
    assert doc["results"][0]["rule_ids"] == everything[0]["rule_ids"]
    assert client.get(f"/api/v1/audits/{aid}/report.csv?destination=FR", headers=auditor_headers).status_code == 422
    assert client.get("/api/v1/audits/999/report.csv", headers=auditor_headers).status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"destinations": ["CN", "ZZ"]}, "destinations"),
    ({"destinations": []}, "destinations"),
    ({"as_of": "2025-02-30"}, "as_of"),
    ({"as_of": "yesterday"}, "as_of"),
    ({"end_user": {"headquarters": "Narnia"}}, "end_user"),
    ({"colour": "red"}, "colour"),
])
def test_audit_creation_validation_is_422_naming_the_field(client, auditor_headers, catalogue, body, field):
    r = start(client, auditor_headers, catalogue, **body)
    assert r.status_code == 422, r.json
    assert field in json.dumps(r.json["errors"])


def test_audit_of_unknown_catalogue_is_404(client, auditor_headers):
    assert start(client, auditor_headers, 999).status_code == 404
    assert client.get("/api/v1/audits/999", headers=auditor_headers).status_code == 404


def test_roles_auditor_starts_viewer_reads_viewer_cannot_start(client, auditor_headers, viewer_headers, catalogue):
    assert start(client, viewer_headers, catalogue).status_code == 403
    r = start(client, auditor_headers, catalogue)
    assert r.status_code == 202
    wait_for_embedded_jobs(client.application)
    assert client.get(r.headers["Location"], headers=viewer_headers).status_code == 200
    assert client.get(r.headers["Location"]).status_code == 401
    listing = client.get(f"/api/v1/catalogues/{catalogue}/audits", headers=viewer_headers).json
    assert [a["id"] for a in listing["items"]] == [r.json["id"]]


def test_empty_catalogue_audit_finishes_with_zero_products(client, auditor_headers):
    cid = client.post("/api/v1/catalogues", json={"name": "empty"}, headers=auditor_headers).json["id"]
    r = start(client, auditor_headers, cid)
    wait_for_embedded_jobs(client.application)
    st = client.get(r.headers["Location"], headers=auditor_headers).json
    assert st["status"] == "done" and st["counts"]["products"] == 0 and st["progress"]["percent"] == 100.0


def test_an_audit_without_destinations_covers_the_catalogues_watched_destinations(client, auditor_headers):
    from tests.conftest import H100

    cat = client.post("/api/v1/catalogues", json={"name": "watched", "destinations": ["CN", "DE"]},
                      headers=auditor_headers)
    assert cat.status_code == 201, cat.json
    cid = cat.json["id"]
    assert client.put(f"/api/v1/catalogues/{cid}/products/H100", json=dict(H100, sku="H100"),
                      headers=auditor_headers).status_code in (200, 201)
    r = client.post(f"/api/v1/catalogues/{cid}/audits", json={"as_of": "2024-06-01"}, headers=auditor_headers)
    assert r.status_code == 202, r.json
    from compliance.tasks import wait_for_embedded_jobs

    wait_for_embedded_jobs(client.application, timeout=60)
    audit = client.get(r.headers["Location"], headers=auditor_headers).json
    assert audit["destinations"] == ["CN", "DE"]
