"""Issue 9 item 8 in audits: `transaction_type` (export by default, reexport, in_country_transfer) on audit
creation is stored with the audit, evaluated for every product as classify does, and shown in the audit's
status, its list, its results and its reports (CSV, JSON Lines, JSON, XLSX)."""
from __future__ import annotations

import csv
import io
import json

import pytest

from compliance.tasks import wait_for_embedded_jobs
from tests.conftest import H100, RTX_4090

# 2026-02-01: the January 2026 China policy (case-by-case for chips released in the US before it) is in force.
AS_OF = "2026-02-01"
PRODUCTS = [{**H100, "sku": "H100"}, {**RTX_4090, "sku": "4090"}]


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url)


@pytest.fixture
def catalogue(client, auditor_headers):
    cid = client.post("/api/v1/catalogues", json={"name": "tt"}, headers=auditor_headers).json["id"]
    for p in PRODUCTS:
        assert client.put(f"/api/v1/catalogues/{cid}/products/{p['sku']}", json=p,
                          headers=auditor_headers).status_code == 201
    return cid


def run(client, headers, cid, **body):
    r = client.post(f"/api/v1/catalogues/{cid}/audits", json={"as_of": AS_OF, "destinations": ["CN", "DE"], **body},
                    headers=headers)
    assert r.status_code == 202, r.json
    wait_for_embedded_jobs(client.application)
    st = client.get(r.headers["Location"], headers=headers).json
    assert st["status"] == "done", st
    return st


def h100_cn(client, headers, audit_id):
    rows = client.get(f"/api/v1/audits/{audit_id}/results?destination=CN", headers=headers).json["items"]
    return next(r for r in rows if r["sku"] == "H100")


def test_an_export_audit_is_the_default_and_answers_as_classify_does(client, auditor_headers, catalogue):
    """The H100 (released 2022-09) is case-by-case for China as an export from the US after 2026-01-15: the
    audit reads its release date from the stored product, as classify reads it from the spec."""
    st = run(client, auditor_headers, catalogue)
    assert st["transaction_type"] == "export"
    row = h100_cn(client, auditor_headers, st["id"])
    assert (row["requirement"], row["review_policy"]) == ("license_required", "case_by_case")
    one = client.post("/api/v1/classify", json={"product": H100, "as_of": AS_OF, "destinations": ["CN"]},
                      headers=auditor_headers).json["licences"][0]
    assert (one["requirement"], one["review_policy"]) == (row["requirement"], row["review_policy"])
    assert one["rule_ids"] == row["rule_ids"]


@pytest.mark.parametrize("ttype", ["reexport", "in_country_transfer"])
def test_a_reexport_or_transfer_audit_keeps_the_presumption_of_denial(client, auditor_headers, catalogue, ttype):
    export = run(client, auditor_headers, catalogue, transaction_type="export")
    other = run(client, auditor_headers, catalogue, transaction_type=ttype)
    assert other["transaction_type"] == ttype
    assert other["counts"]["licences"]["CN"]["license_required"] == {"presumption_of_denial": 2}
    assert export["counts"]["licences"]["CN"]["license_required"] == {"case_by_case": 2}
    assert export["counts"]["licences"]["CN"] != other["counts"]["licences"]["CN"]
    row = h100_cn(client, auditor_headers, other["id"])
    assert (row["requirement"], row["review_policy"]) == ("license_required", "presumption_of_denial")
    # Germany is not touched by the China policy: the same answer either way.
    assert export["counts"]["licences"]["DE"] == other["counts"]["licences"]["DE"]
    listed = client.get(f"/api/v1/catalogues/{catalogue}/audits", headers=auditor_headers).json["items"]
    assert {(a["id"], a["transaction_type"]) for a in listed} == {(export["id"], "export"), (other["id"], ttype)}


def test_the_reports_carry_the_transaction_type(client, auditor_headers, catalogue):
    from openpyxl import load_workbook

    audit_id = run(client, auditor_headers, catalogue, transaction_type="reexport")["id"]
    base = f"/api/v1/audits/{audit_id}"
    rows = list(csv.DictReader(io.StringIO(client.get(f"{base}/report.csv", headers=auditor_headers).text)))
    assert {r["transaction_type"] for r in rows} == {"reexport"} and len(rows) == 4
    assert next(r for r in rows if r["sku"] == "H100" and r["destination"] == "CN")["review_policy"] == \
        "presumption_of_denial"
    lines = client.get(f"{base}/report.jsonl", headers=auditor_headers).text.splitlines()
    assert {json.loads(x)["transaction_type"] for x in lines} == {"reexport"}
    doc = json.loads(client.get(f"{base}/report.json", headers=auditor_headers).data)
    assert doc["transaction_type"] == "reexport" and len(doc["results"]) == 4
    sheet = load_workbook(io.BytesIO(client.get(f"{base}/report.xlsx", headers=auditor_headers).data)).active
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    column = header.index("transaction_type")
    assert {r[column] for r in sheet.iter_rows(min_row=2, values_only=True)} == {"reexport"}


def test_an_unknown_transaction_type_is_a_422_naming_the_field(client, auditor_headers, catalogue):
    r = client.post(f"/api/v1/catalogues/{catalogue}/audits", json={"transaction_type": "smuggle"},
                    headers=auditor_headers)
    assert r.status_code == 422
    assert "transaction_type" in r.json["errors"]["json"]


def test_an_idempotency_key_reused_with_another_transaction_type_is_refused(client, auditor_headers, catalogue):
    headers = auditor_headers | {"Idempotency-Key": "tt-1"}
    body = {"as_of": AS_OF, "destinations": ["CN"]}
    first = client.post(f"/api/v1/catalogues/{catalogue}/audits", json=body, headers=headers)
    assert first.status_code == 202
    again = client.post(f"/api/v1/catalogues/{catalogue}/audits", json=body | {"transaction_type": "reexport"},
                        headers=headers)
    assert again.status_code == 422 and "Idempotency-Key" in again.json["errors"], again.json
    wait_for_embedded_jobs(client.application)
