"""Files people actually have: XLSX and semicolon/tab CSV in; catalogues, the change feed, the activity log
and audit reports out as CSV / JSON Lines / XLSX (streamed, formula cells neutralised); round trips."""
from __future__ import annotations

import csv
import io
import json

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select

from compliance.models import ChangeRecord, Product
from compliance.services.import_formats import iter_rows
from compliance.services.tabular import MEDIA_TYPES
from compliance.tasks import wait_for_embedded_jobs
from tests.api.conftest import error_text
from tests.conftest import A800, H20, H100, HBM3E

XLSX = MEDIA_TYPES["xlsx"]
PRODUCTS = [{**H100, "sku": "H100"}, {**A800, "sku": "A800"}, {**H20, "sku": "H20"}, {**HBM3E, "sku": "HBM"},
            {"sku": "=CMD()", "name": "-Formula name", "vendor": "@vendor", "datacenter": True,
             "throughput": [{"format": "fp8", "dense_tops": 989.5}, {"format": "int8", "sparse_tops": 400}],
             "logic_dies": [{"area_mm2": 600, "non_planar": True}, {"area_mm2": 100}],
             "sources": [{"url": "https://example.invalid/x"}], "notes": "+1 note"},
            {"sku": "DGX", "name": "DGX", "vendor": "NVIDIA", "kind": "system", "datacenter": True,
             "components": [{"product": {"sku": "H100"}, "count": 8}]}]


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url)


def _catalogue(client, headers, name="acme") -> int:
    return client.post("/api/v1/catalogues", json={"name": name}, headers=headers).json["id"]


def _upload(client, headers, cid, data: bytes, filename: str, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return client.post(f"/api/v1/catalogues/{cid}/imports" + (f"?{qs}" if qs else ""), headers=headers,
                       data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")


def _xlsx(rows: list[list], title: str = "Sheet1", extra_sheets: dict | None = None) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(r)
    for name, srows in (extra_sheets or {}).items():
        other = wb.create_sheet(name)
        for r in srows:
            other.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _stored(app, cid) -> dict[str, tuple]:
    db = app.extensions["db"]
    with db.session() as s:
        return {p.sku: (p.name, p.vendor, p.kind, p.spec, p.tpp, p.performance_density, p.eccn, p.status)
                for p in s.scalars(select(Product).where(Product.catalogue_id == cid))}


def test_xlsx_import_reads_the_first_sheet_or_a_named_one(client, auditor_headers):
    cid = _catalogue(client, auditor_headers)
    header = ["sku", "name", "vendor", "datacenter", "throughput", "die_area_mm2", "release_date"]
    from datetime import date

    good = [header, ["H100", "H100 SXM5", "NVIDIA", True, "fp16:989.5", 814, date(2023, 3, 21)],
            ["X1", "X one", "Acme", "false", None, 300.5, "2024"]]
    data = _xlsx([["sku", "name"], ["FIRST", "first sheet"]], "Cover", {"Products": good})
    r = _upload(client, auditor_headers, cid, data, "book.xlsx")
    assert r.status_code == 201 and r.json["format"] == "xlsx" and r.json["imported"] == 1, r.json
    r = _upload(client, auditor_headers, cid, data, "book.xlsx", sheet="Products")
    assert r.status_code == 201 and (r.json["imported"], r.json["rejected"]) == (2, 0), r.json
    h100 = client.get(f"/api/v1/catalogues/{cid}/products/H100", headers=auditor_headers).json
    assert h100["spec"]["datacenter"] is True and h100["spec"]["die_area_mm2"] == 814
    assert h100["spec"]["throughput"] == [{"format": "fp16", "dense_tops": 989.5}]
    assert h100["spec"]["release_date"] == "2023-03-21" and h100["eccn"] == "3A090.a"
    r = _upload(client, auditor_headers, cid, data, "book.xlsx", sheet="Nope")
    assert r.status_code == 422 and "sheet" in error_text(r) and "Products" in error_text(r)
    r = _upload(client, auditor_headers, cid, b"PK\x03\x04 not really a workbook", "bad.xlsx")
    assert r.status_code == 422 and "XLSX" in error_text(r)
    r = _upload(client, auditor_headers, cid, _xlsx([["sku", "colour"], ["A", "red"]]), "b.xlsx")
    assert r.status_code == 422 and "colour" in error_text(r)
    # the raw body with the spreadsheet media type works too
    r = client.post(f"/api/v1/catalogues/{cid}/imports?sheet=Products", headers={**auditor_headers, "Content-Type": XLSX},
                    data=data)
    assert r.status_code == 201 and r.json["imported"] == 2, r.json


def test_semicolon_and_tab_separated_files_are_detected(client, auditor_headers):
    cid = _catalogue(client, auditor_headers)
    semi = "sku;name;vendor;tpp;die_area_mm2;datacenter\nA;Chip A;Acme;4800;814,5;true\nB;\"Chip; B\";Acme;100;50;false\n"
    r = _upload(client, auditor_headers, cid, semi.encode(), "eu.csv")
    assert r.status_code == 201 and (r.json["imported"], r.json["rejected"]) == (2, 0), r.json
    a = client.get(f"/api/v1/catalogues/{cid}/products/A", headers=auditor_headers).json
    assert a["spec"]["die_area_mm2"] == 814.5 and a["spec"]["tpp"] == 4800
    assert client.get(f"/api/v1/catalogues/{cid}/products/B", headers=auditor_headers).json["name"] == "Chip; B"
    tsv = "sku\tname\ttpp\nT1\tTab one\t1,5\nT2\tTab two\t2\n"
    r = _upload(client, auditor_headers, cid, tsv.encode(), "tab.tsv")
    assert r.status_code == 201 and r.json["format"] == "tsv" and (r.json["imported"], r.json["rejected"]) == (1, 1)
    assert r.json["errors"] == [{"row": 1, "field": "tpp", "problem": "must be a number, got '1,5'"}]
    r = _upload(client, auditor_headers, cid, tsv.replace("1,5", "1.5").encode(), "tab.csv")  # sniffed
    assert r.status_code == 201 and r.json["imported"] == 2, r.json


def test_a_row_with_several_bad_cells_reports_every_problem(client, auditor_headers):
    cid = _catalogue(client, auditor_headers)
    data = ("sku,name,tpp,datacenter,logic_dies,die_area_mm2,kind\n"
            "OK,ok,100,true,,,\n"
            "BAD,bad,lots,maybe,800:finfet,-5,gpu\n").encode()
    r = _upload(client, auditor_headers, cid, data, "m.csv")
    assert r.status_code == 201 and (r.json["imported"], r.json["rejected"], r.json["rows_read"]) == (1, 1, 2)
    fields = sorted(e["field"] for e in r.json["errors"])
    assert all(e["row"] == 2 for e in r.json["errors"])
    # the three cells that did not convert, and the schema's problem with a cell that did (kind)
    assert fields == ["datacenter", "kind", "logic_dies", "tpp"], r.json["errors"]
    stored = client.get(r.headers["Location"], headers=auditor_headers).json
    assert stored["rejected"] == 1 and len(stored["errors"]) == 4
    js = b'{"sku": "J", "name": "j", "tpp": -1, "die_area_mm2": 0, "kind": "x"}\n'
    r = _upload(client, auditor_headers, cid, js, "m.jsonl")
    assert sorted(e["field"] for e in r.json["errors"]) == ["die_area_mm2", "kind", "tpp"]


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "jsonl"])
def test_a_catalogue_exported_then_imported_gives_the_same_products(app, client, auditor_headers, fmt):
    cid = _catalogue(client, auditor_headers, "source")
    data = "\n".join(json.dumps(p) for p in PRODUCTS).encode()
    assert _upload(client, auditor_headers, cid, data, "p.jsonl").json["imported"] == len(PRODUCTS)
    r = client.get(f"/api/v1/catalogues/{cid}/export?format={fmt}", headers=auditor_headers)
    assert r.status_code == 200 and r.is_streamed and r.mimetype == MEDIA_TYPES[fmt].split(";")[0]
    assert f'catalogue-{cid}.{fmt}' in r.headers["Content-Disposition"]
    body = r.get_data()
    copy = _catalogue(client, auditor_headers, "copy")
    back = _upload(client, auditor_headers, copy, body, f"export.{fmt}")
    assert back.status_code == 201 and (back.json["imported"], back.json["rejected"]) == (len(PRODUCTS), 0), back.json
    original, again = _stored(app, cid), _stored(app, copy)
    assert set(original) == set(again)
    for sku in original:
        # CSV/XLSX: systems name their parts by SKU, resolved against the file on import to the same spec
        assert again[sku] == original[sku], sku
    if fmt == "xlsx":
        ws = load_workbook(io.BytesIO(body)).active
        rows = list(ws.iter_rows(values_only=False))
        header = [c.value for c in rows[0]]
        formula_row = next(r for r in rows if r[header.index("sku")].value == "=CMD()")
        assert all(c.data_type != "f" for r in rows for c in r)  # strings, never formulas
        assert formula_row[header.index("name")].value == "-Formula name"
    if fmt == "csv":
        table = list(csv.DictReader(io.StringIO(body.decode())))
        row = next(t for t in table if t["sku"] == "'=CMD()")
        assert row["vendor"] == "'@vendor" and row["notes"] == "'+1 note"
        assert {t["sku"]: t["eccn"] for t in table}["H100"] == "3A090.a"


def test_csv_import_strips_the_quote_the_export_adds():
    rows = list(iter_rows(io.BytesIO(b"sku,name\n'=CMD(),'-x\n"), "csv"))
    assert rows == [(1, {"sku": "=CMD()", "name": "-x"})]


def test_export_errors(client, auditor_headers):
    assert client.get("/api/v1/catalogues/999/export", headers=auditor_headers).status_code == 404
    cid = _catalogue(client, auditor_headers)
    r = client.get(f"/api/v1/catalogues/{cid}/export?format=pdf", headers=auditor_headers)
    assert r.status_code == 422 and "format" in error_text(r)
    assert client.get("/api/v1/changes/export?version=99", headers=auditor_headers).status_code == 404
    r = client.get("/api/v1/changes/export?page=2", headers=auditor_headers)
    assert r.status_code == 422 and "page" in error_text(r)


def test_change_feed_entries_and_export_carry_product_and_catalogue_names(app, client, auditor_headers):
    cid = _catalogue(client, auditor_headers, "feed")
    _upload(client, auditor_headers, cid, "\n".join(json.dumps(p) for p in PRODUCTS[:2]).encode(), "p.jsonl")
    db = app.extensions["db"]
    with db.session() as s:
        pid = s.scalar(select(Product.id).where(Product.catalogue_id == cid, Product.sku == "A800"))
        from datetime import date

        s.add(ChangeRecord(catalogue_id=cid, product_id=pid, sku="A800", destination="CN", as_of=date(2024, 1, 1),
                           from_revision="a" * 64, to_revision="b" * 64, old_eccn=None, new_eccn="3A090.a",
                           old_status="not_controlled", new_status="controlled", old_requirement="no_license_required",
                           new_requirement="license_required", cause_rule_ids="r1,r2"))
    feed = client.get("/api/v1/changes", headers=auditor_headers).json["items"]
    assert feed[0]["product_name"] == A800["name"] and feed[0]["catalogue_name"] == "feed"
    r = client.get(f"/api/v1/changes/export?format=csv&catalogue_id={cid}", headers=auditor_headers)
    table = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [(t["sku"], t["product_name"], t["catalogue_name"], t["new_requirement"], t["cause_rule_ids"])
            for t in table] == [("A800", A800["name"], "feed", "license_required", "r1,r2")]
    lines = client.get("/api/v1/changes/export?format=jsonl", headers=auditor_headers).get_data(as_text=True).splitlines()
    assert json.loads(lines[0])["cause_rule_ids"] == ["r1", "r2"] and len(lines) == 1
    ws = load_workbook(io.BytesIO(client.get("/api/v1/changes/export?format=xlsx&destination=CN",
                                             headers=auditor_headers).get_data())).active
    assert ws.max_row == 2
    assert client.get("/api/v1/changes/export?format=csv&destination=DE",
                      headers=auditor_headers).get_data(as_text=True).count("\n") == 1  # the header only


def test_activity_log_export(client, admin_headers, auditor_headers, viewer_headers):
    client.post("/api/v1/keys", json={"name": "=evil", "role": "viewer"}, headers=admin_headers)
    r = client.get("/api/v1/rules/audit-trail/export?format=csv", headers=auditor_headers)
    assert r.status_code == 200
    table = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert table[0]["action"] == "api_key.create" and table[0]["actor"].startswith("test admin")
    assert not any(v.startswith("=") for t in table for v in t.values())
    assert client.get("/api/v1/rules/audit-trail/export?action=nothing.*&format=jsonl",
                      headers=auditor_headers).get_data() == b""
    assert client.get("/api/v1/rules/audit-trail/export", headers=viewer_headers).status_code == 403


def test_audit_reports_carry_names_date_revision_and_citations(client, auditor_headers):
    cid = _catalogue(client, auditor_headers)
    _upload(client, auditor_headers, cid, "\n".join(json.dumps(p) for p in PRODUCTS).encode(), "p.jsonl")
    a = client.post(f"/api/v1/catalogues/{cid}/audits", json={"as_of": "2025-06-01", "destinations": ["CN", "DE"]},
                    headers=auditor_headers).json
    wait_for_embedded_jobs(client.application)
    r = client.get(f"/api/v1/audits/{a['id']}/report.csv", headers=auditor_headers)
    table = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert len(table) == 2 * len(PRODUCTS)
    h100_cn = next(t for t in table if t["sku"] == "H100" and t["destination"] == "CN")
    assert (h100_cn["product_name"], h100_cn["vendor"], h100_cn["as_of"]) == (H100["name"], "NVIDIA", "2025-06-01")
    assert len(h100_cn["ruleset_revision"]) == 64 and h100_cn["rule_version"] == "1"
    assert h100_cn["requirement"] == "license_required" and "CFR" in h100_cn["citations"], h100_cn
    assert next(t for t in table if t["sku"] == "'=CMD()")["vendor"] == "'@vendor"
    lines = client.get(f"/api/v1/audits/{a['id']}/report.jsonl?destination=CN", headers=auditor_headers)
    recs = [json.loads(x) for x in lines.get_data(as_text=True).splitlines()]
    assert len(recs) == len(PRODUCTS) and isinstance(recs[0]["citations"], list)
    x = client.get(f"/api/v1/audits/{a['id']}/report.xlsx", headers=auditor_headers)
    assert x.status_code == 200 and x.mimetype == XLSX
    ws = load_workbook(io.BytesIO(x.get_data())).active
    assert ws.max_row == 1 + 2 * len(PRODUCTS) and ws["A1"].value == "sku"
    doc = json.loads(client.get(f"/api/v1/audits/{a['id']}/report.json", headers=auditor_headers).get_data())
    assert doc["rule_version"] == 1 and doc["results"][0]["product_name"]
    assert client.get("/api/v1/audits/999/report.xlsx", headers=auditor_headers).status_code == 404
