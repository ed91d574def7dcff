"""Catalogue API: create, import (CSV / JSON / JSON Lines), re-import upsert, CRUD, pagination, filters."""
from __future__ import annotations

import io
import json

import pytest

from tests.conftest import A800, H20, H100, HBM3E, RTX_4090

CSV_GOOD_AND_BAD = (
    "sku,name,vendor,family,kind,datacenter,throughput,logic_dies,io_bandwidth_gb_per_s,memory_bandwidth_gb_per_s,"
    "package_area_mm2,components\n"
    "H100,H100 SXM5,NVIDIA,H100,ic,true,fp8:1979;fp16:989.5,814:np,900,3350,,\n"   # 1 good
    "H20,H20,NVIDIA,H20,ic,true,fp16:148,814,900,4000,,\n"                          # 2 good
    "BAD-NUM,Bad,NVIDIA,,ic,true,fp8:lots,814,900,,,\n"                            # 3 bad: throughput number
    "BAD-DC,Bad DC,NVIDIA,,ic,maybe,fp8:100,814,,,,\n"                             # 4 bad: datacenter
    "HBM,HBM3E,SK hynix,,hbm,,,,,1228.8,121,\n"                                    # 5 good
    "DGX,DGX H100,NVIDIA,DGX,system,true,,,,,,H100*8\n"                            # 6 good (refers to row 1)
    "GHOST,Ghost box,Acme,,system,true,,,,,,NOPE*2\n"                              # 7 bad: unknown component
    ",,NVIDIA,,ic,true,fp8:1,,,,,\n"                                               # 8 bad: name missing
    "NEG,Neg,NVIDIA,,ic,true,,-5,,,,\n"                                            # 9 bad: die area <= 0
)


@pytest.fixture
def app(make_app, db_url):
    """Every test here runs on SQLite (embedded) and on PostgreSQL (production)."""
    return make_app(DATABASE_URL=db_url)


def upload(client, headers, cid, data: bytes, filename: str, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return client.post(f"/api/v1/catalogues/{cid}/imports" + (f"?{qs}" if qs else ""), headers=headers,
                       data={"file": (io.BytesIO(data), filename)}, content_type="multipart/form-data")


@pytest.fixture
def catalogue(client, auditor_headers):
    r = client.post("/api/v1/catalogues", json={"name": "acme", "destinations": ["CN", "AE"]}, headers=auditor_headers)
    assert r.status_code == 201, r.json
    return r.json["id"]


def test_csv_import_keeps_good_rows_and_reports_each_bad_row(client, auditor_headers, catalogue):
    r = upload(client, auditor_headers, catalogue, CSV_GOOD_AND_BAD.encode(), "acme.csv")
    assert r.status_code == 201, r.json
    rep = r.json
    assert (rep["rows_read"], rep["imported"], rep["rejected"], rep["created"]) == (9, 4, 5, 4)
    assert rep["imported"] + rep["rejected"] == rep["rows_read"]
    by_row = {e["row"]: e for e in rep["errors"]}
    assert sorted(by_row) == [3, 4, 7, 8, 9]
    assert by_row[3]["field"] == "throughput" and "'lots'" in by_row[3]["problem"]
    assert by_row[4]["field"] == "datacenter"
    assert by_row[7]["field"] == "components" and "NOPE" in by_row[7]["problem"]
    assert by_row[8]["field"] == "name"
    assert by_row[9]["field"].startswith("logic_dies")
    stored = client.get(r.headers["Location"], headers=auditor_headers).json
    assert stored["rejected"] == 5 and len(stored["errors"]) == 5
    dgx = client.get(f"/api/v1/catalogues/{catalogue}/products/DGX", headers=auditor_headers).json
    assert dgx["eccn"] == "4A090.a" and dgx["status"] == "controlled"
    assert dgx["spec"]["components"][0]["count"] == 8
    assert dgx["spec"]["components"][0]["product"]["name"] == "H100 SXM5"


def test_reimporting_the_same_file_upserts_by_sku(client, auditor_headers, catalogue):
    upload(client, auditor_headers, catalogue, CSV_GOOD_AND_BAD.encode(), "acme.csv")
    changed = CSV_GOOD_AND_BAD.replace("H20,H20,NVIDIA,H20,ic,true,fp16:148", "H20,H20 v2,NVIDIA,H20,ic,true,fp16:400")
    r = upload(client, auditor_headers, catalogue, changed.encode(), "acme.csv")
    assert (r.json["created"], r.json["updated"], r.json["imported"]) == (0, 4, 4)
    listing = client.get(f"/api/v1/catalogues/{catalogue}/products", headers=auditor_headers).json
    assert listing["total"] == 4
    h20 = client.get(f"/api/v1/catalogues/{catalogue}/products/H20", headers=auditor_headers).json
    assert h20["name"] == "H20 v2" and h20["metrics"]["tpp"] == 6400 and h20["eccn"] == "3A090.a"


def test_duplicate_skus_in_one_file_last_row_wins_and_is_reported(client, auditor_headers, catalogue):
    lines = [json.dumps({**H100, "sku": "X"}), json.dumps({**H20, "sku": "X"}), json.dumps({**A800, "sku": "Y"})]
    r = upload(client, auditor_headers, catalogue, "\n".join(lines).encode(), "dup.jsonl")
    assert (r.json["rows_read"], r.json["imported"], r.json["rejected"], r.json["duplicates"]) == (3, 3, 0, 1)
    assert r.json["warnings"][0]["row"] == 1 and "row 2" in r.json["warnings"][0]["problem"]
    x = client.get(f"/api/v1/catalogues/{catalogue}/products/X", headers=auditor_headers).json
    assert x["name"] == "H20"
    assert client.get(f"/api/v1/catalogues/{catalogue}/products", headers=auditor_headers).json["total"] == 2


def test_json_and_jsonl_imports_validate_with_the_product_schema(client, auditor_headers, catalogue):
    body = {"products": [H100, RTX_4090, {**HBM3E, "sku": "HBM"}, {"name": "x", "tpp": "fast"}, {"name": "y", "colour": 1}]}
    r = upload(client, auditor_headers, catalogue, json.dumps(body).encode(), "c.json")
    assert (r.json["imported"], r.json["rejected"]) == (3, 2)
    assert [(e["row"], e["field"]) for e in r.json["errors"]] == [(4, "tpp"), (5, "colour")]
    lines = json.dumps(A800) + "\n{not json\n\n" + json.dumps([1]) + "\n"
    r = upload(client, auditor_headers, catalogue, lines.encode(), "c.jsonl")
    assert (r.json["rows_read"], r.json["imported"], r.json["rejected"]) == (3, 1, 2)
    assert "invalid JSON" in r.json["errors"][0]["problem"]


def test_raw_body_upload_with_format_query(client, auditor_headers, catalogue):
    r = client.post(f"/api/v1/catalogues/{catalogue}/imports?format=csv", headers=auditor_headers,
                    data=CSV_GOOD_AND_BAD.encode(), content_type="text/csv")
    assert r.status_code == 201 and r.json["imported"] == 4
    named = client.post(f"/api/v1/catalogues/{catalogue}/imports?filename=products.jsonl", headers=auditor_headers,
                        data=json.dumps(H100).encode(), content_type="application/octet-stream")
    assert named.status_code == 201, named.json
    assert (named.json["filename"], named.json["format"], named.json["imported"]) == ("products.jsonl", "jsonl", 1)


@pytest.mark.parametrize("data,filename,needle", [
    (b"\xff\xfe\x00garbage\x81\x82", "x.csv", "UTF-8"),
    (b"colour,size\nred,1\n", "x.csv", "unknown column"),
    (b"", "x.csv", "empty"),
    (b"{\"products\": [", "x.json", "not valid JSON"),
    (b"42", "x.json", "list of products"),
    (b"name\nA\n", "x.txt", "format"),
])
def test_garbage_uploads_are_4xx_naming_the_problem(client, auditor_headers, catalogue, data, filename, needle):
    r = upload(client, auditor_headers, catalogue, data, filename)
    assert 400 <= r.status_code < 500, r.json
    assert needle in r.json["message"]


def test_oversized_upload_is_413(make_app, headers_for):
    app = make_app(MAX_UPLOAD_BYTES="1000", MAX_BODY_BYTES="1000")
    client, headers = app.test_client(), headers_for(app, "auditor")
    cid = client.post("/api/v1/catalogues", json={"name": "big"}, headers=headers).json["id"]
    r = upload(client, headers, cid, b"name\n" + b"chip\n" * 1000, "big.csv")
    assert r.status_code == 413 and "too large" in r.json["message"]


def test_import_into_unknown_catalogue_is_404(client, auditor_headers):
    assert upload(client, auditor_headers, 999, b"name\nA\n", "a.csv").status_code == 404


def test_product_crud(client, auditor_headers, admin_headers, catalogue):
    url = f"/api/v1/catalogues/{catalogue}/products/H20-X"
    r = client.put(url, json=H20, headers=auditor_headers)
    assert r.status_code == 201 and r.json["status"] == "not_controlled" and r.json["sku"] == "H20-X"
    assert r.headers["Location"] == url and r.json["catalogue_id"] == catalogue
    assert r.json["spec"]["name"] == "H20" and r.json["metrics"]["tpp"] == 148 * 16
    r = client.put(url, json={**H20, "throughput": [{"format": "fp8", "dense_tops": 1979}]}, headers=auditor_headers)
    assert r.status_code == 200 and r.json["eccn"] == "3A090.a" and "Location" not in r.headers
    assert client.get(url, headers=auditor_headers).json == r.json
    assert client.put(url, json={**H20, "tpp": "x"}, headers=auditor_headers).status_code == 422
    assert client.put(url, json={**H20, "sku": "OTHER"}, headers=auditor_headers).status_code == 422
    assert client.delete(url, headers=auditor_headers).status_code == 204
    assert client.get(url, headers=auditor_headers).status_code == 404
    assert client.delete(f"/api/v1/catalogues/{catalogue}", headers=auditor_headers).status_code == 403
    assert client.delete(f"/api/v1/catalogues/{catalogue}", headers=admin_headers).status_code == 204
    assert client.get(f"/api/v1/catalogues/{catalogue}", headers=admin_headers).status_code == 404


def test_duplicate_catalogue_name_is_409(client, auditor_headers, catalogue):
    assert client.post("/api/v1/catalogues", json={"name": "acme"}, headers=auditor_headers).status_code == 409


def test_listing_paginates_and_filters(client, viewer_headers, auditor_headers, catalogue):
    rows = ["sku,name,vendor,datacenter,throughput,die_area_mm2"]
    for i in range(25):
        tops = 1979 if i % 2 == 0 else 100
        rows.append(f"S{i:02d},Chip {i},{'NVIDIA' if i < 10 else 'AMD'},true,fp8:{tops},800")
    rows.append("U1,Unknown area,AMD,true,fp8:150,")  # tpp 1200 without area: not controlled
    upload(client, auditor_headers, catalogue, "\n".join(rows).encode(), "p.csv")
    base = f"/api/v1/catalogues/{catalogue}/products"
    page = client.get(f"{base}?per_page=10&page=3", headers=viewer_headers).json
    assert (page["total"], page["pages"], len(page["items"])) == (26, 3, 6)
    assert page["items"][0]["sku"] == "S20"
    nv = client.get(f"{base}?vendor=nvidia&per_page=100", headers=viewer_headers).json
    assert nv["total"] == 10 and {p["vendor"] for p in nv["items"]} == {"NVIDIA"}
    a = client.get(f"{base}?eccn=3A090.a&per_page=100", headers=viewer_headers).json
    assert a["total"] == 13 and all(p["metrics"]["tpp"] == 15832 for p in a["items"])
    nc = client.get(f"{base}?status=not_controlled&vendor=AMD", headers=viewer_headers).json
    assert nc["total"] == 8
    assert client.get(f"{base}?eccn=9Z999", headers=viewer_headers).status_code == 422
    assert client.get(f"{base}?per_page=5000", headers=viewer_headers).status_code == 422
    r = client.get(f"{base}?sort=-tpp&per_page=3", headers=viewer_headers)
    assert [p["sku"] for p in r.json["items"]] == ["S00", "S02", "S04"]  # ties by id
    assert json.loads(r.headers["X-Pagination"])["total_pages"] == r.json["pages"] == 9
    bad = client.get(f"{base}?sort=price", headers=viewer_headers)
    assert bad.status_code == 422 and "sort" in bad.json["errors"]["query"]
    cat = client.get(f"/api/v1/catalogues/{catalogue}", headers=viewer_headers).json
    assert cat["products"] == 26 and cat["by_status"] == {"controlled": 13, "not_controlled": 13}


def test_viewer_cannot_import_or_create(client, viewer_headers, catalogue):
    assert client.post("/api/v1/catalogues", json={"name": "v"}, headers=viewer_headers).status_code == 403
    assert upload(client, viewer_headers, catalogue, b"name\nA\n", "a.csv").status_code == 403
    assert client.get("/api/v1/catalogues").status_code == 401


def test_import_reports_and_audits_are_paginated_lists(client, viewer_headers, auditor_headers, catalogue):
    for i in range(3):
        upload(client, auditor_headers, catalogue, f"name\nChip {i}\n".encode(), f"f{i}.csv")
    r = client.get(f"/api/v1/catalogues/{catalogue}/imports?per_page=2", headers=viewer_headers)
    assert (r.json["total"], r.json["pages"], [x["filename"] for x in r.json["items"]]) == (3, 2, ["f2.csv", "f1.csv"])
    assert json.loads(r.headers["X-Pagination"])["next_page"] == 2 and "errors" not in r.json["items"][0]
    r = client.get(f"/api/v1/catalogues/{catalogue}/audits", headers=viewer_headers)
    assert r.status_code == 200 and (r.json["total"], r.json["items"]) == (0, [])
    assert client.get(f"/api/v1/catalogues/{catalogue}/audits?page=0", headers=viewer_headers).status_code == 422
    assert client.get("/api/v1/catalogues/999/imports", headers=viewer_headers).status_code == 404
