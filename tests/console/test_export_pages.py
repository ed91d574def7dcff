"""The console's downloads go through the API's export writer: catalogue (CSV/XLSX/JSON Lines, re-importable),
the activity log, and an XLSX upload with a named sheet."""
from __future__ import annotations

import io

from openpyxl import Workbook, load_workbook

from compliance.services.catalogues import create_catalogue, upsert_products
from tests.conftest import H100
from tests.console.conftest import csrf_of


def _xlsx(rows, title="Chips") -> bytes:
    wb = Workbook()
    wb.active.title = "Cover"
    ws = wb.create_sheet(title)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_catalogue_page_offers_exports_and_takes_an_xlsx_with_a_sheet(app, signed_in):
    db = app.extensions["db"]
    cat = create_catalogue(db, "console-x")
    upsert_products(db, cat.id, [dict(H100, sku="H100")])
    auditor = signed_in("auditor")
    page = auditor.get(f"/catalogues/{cat.id}").get_data(as_text=True)
    assert f"/catalogues/{cat.id}/export.xlsx" in page and 'name="sheet"' in page
    r = auditor.get(f"/catalogues/{cat.id}/export.xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    ws = load_workbook(io.BytesIO(r.get_data())).active
    header = [c.value for c in ws[1]]
    assert ws.max_row == 2 and ws.cell(2, header.index("sku") + 1).value == "H100"
    csv_text = auditor.get(f"/catalogues/{cat.id}/export.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("sku,name,vendor") and ",fp8:1979," in csv_text
    token = csrf_of(auditor.get(f"/catalogues/{cat.id}"))
    data = _xlsx([["sku", "name", "tpp"], ["X1", "From Excel", 5000], ["X2", "Bad", "lots"]])
    r = auditor.post(f"/catalogues/{cat.id}/upload", data={"csrf_token": token, "sheet": "Chips",
                                                           "file": (io.BytesIO(data), "chips.xlsx")},
                     content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)
    report = auditor.get(r.headers["Location"]).get_data(as_text=True)
    assert "2 rows read" in report and "1 imported" in report and "must be a number" in report
    r = auditor.post(f"/catalogues/{cat.id}/upload", data={"csrf_token": token, "sheet": "Nope",
                                                           "file": (io.BytesIO(data), "chips.xlsx")},
                     content_type="multipart/form-data")
    assert r.status_code == 422 and "no sheet" in r.get_data(as_text=True)


def test_activity_log_export(app, signed_in):
    auditor = signed_in("auditor")
    assert "/rules/activity/export.csv" in auditor.get("/rules/activity").get_data(as_text=True)
    r = auditor.get("/rules/activity/export.csv?action=api_key.*")
    lines = r.get_data(as_text=True).splitlines()
    assert r.status_code == 200 and lines[0] == "id,at,actor,action,target,reason,detail" and len(lines) >= 2
    assert all(",api_key.create," in x for x in lines[1:])
    assert signed_in("viewer").get("/rules/activity/export.csv").status_code == 403
