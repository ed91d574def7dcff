"""Point in time: a catalogue evaluated as of a past date, and its diff between two dates under the
current rules (bundled rules/, which include the 2025 H20 letters)."""
from __future__ import annotations

import json

import pytest

from compliance.services.catalogues import create_catalogue, upsert_products
from tests.conftest import A800, H20, H100, RTX_4090_D

HGX_H20 = {"name": "HGX H20 8-GPU", "vendor": "NVIDIA", "kind": "system", "datacenter": True,
           "components": [{"count": 8, "product": H20}]}


@pytest.fixture
def catalogue(app):
    db = app.extensions["db"]
    cat = create_catalogue(db, "pit", destinations=["CN", "HK", "MO", "RU", "DE"])
    upsert_products(db, cat.id, [dict(H100, sku="H100"), dict(A800, sku="A800"), dict(H20, sku="H20"),
                                 dict(RTX_4090_D, sku="RTX-4090-D"), dict(HGX_H20, sku="HGX-H20")])
    return cat.id


def test_a800_became_controlled_between_june_2023_and_january_2024(client, viewer_headers, catalogue):
    r = client.get(f"/api/v1/catalogues/{catalogue}/diff?from=2023-06-01&to=2024-01-01", headers=viewer_headers)
    assert r.status_code == 200, r.json
    changed = {(i["sku"], i["destination"]) for i in r.json["items"]}
    # The October 2023 rewrite drops the I/O test: the A800 (NVLink 400 GB/s) becomes 3A090.a (its ECCN
    # changes for every watched destination). The H100 already needed a licence for Russia in June 2023
    # (15 CFR 746.8: every CCL item), so it does not change.
    assert changed == {("A800", d) for d in ("CN", "HK", "MO", "RU", "DE")}
    a800 = [i for i in r.json["items"] if i["destination"] == "CN"][0]
    assert a800["from"]["eccn"] is None and a800["to"]["eccn"] == "3A090.a"
    assert a800["to"]["requirement"] == "license_required"
    assert r.json["changed_products"] == 1 and r.json["products"] == 5
    assert r.json["changed_rows"] == len(r.json["items"]) == sum(t["count"] for t in r.json["transitions"])


def test_the_h20_letter_changes_the_chip_and_the_server_of_h20s_overnight(client, viewer_headers, catalogue):
    r = client.get(f"/api/v1/catalogues/{catalogue}/diff?from=2025-04-08&to=2025-04-09", headers=viewer_headers)
    assert r.status_code == 200, r.json
    assert {(i["sku"], i["destination"]) for i in r.json["items"]} == {
        (sku, d) for sku in ("H20", "HGX-H20") for d in ("CN", "HK", "MO", "RU")}
    only_cn = client.get(f"/api/v1/catalogues/{catalogue}/diff?from=2025-04-08&to=2025-04-09&destinations=CN&per_page=1",
                         headers=viewer_headers).json
    assert only_cn["changed_rows"] == only_cn["total"] == only_cn["pages"] == 2 and len(only_cn["items"]) == 1
    page2 = client.get(f"/api/v1/catalogues/{catalogue}/diff?from=2025-04-08&to=2025-04-09&destinations=CN&per_page=1&page=2",
                       headers=viewer_headers).json
    assert {only_cn["items"][0]["sku"], page2["items"][0]["sku"]} == {"H20", "HGX-H20"}


def test_catalogue_as_of_a_past_date(client, viewer_headers, catalogue):
    r = client.get(f"/api/v1/catalogues/{catalogue}/as-of?as_of=2023-06-01&destinations=CN", headers=viewer_headers)
    assert r.status_code == 200, r.json
    by_sku = {i["sku"]: i for i in r.json["items"]}
    assert by_sku["H100"]["eccn"] == "3A090.a" and by_sku["A800"]["eccn"] is None
    assert by_sku["H100"]["licences"]["CN"]["requirement"] == "license_required"
    assert r.json["requirements"]["CN"] == {"license_required": 1, "no_license_required": 4}
    assert (r.json["total"], r.json["products"], r.json["as_of"]) == (5, 5, "2023-06-01")
    paged = client.get(f"/api/v1/catalogues/{catalogue}/as-of?as_of=2023-06-01&per_page=2&page=3", headers=viewer_headers)
    assert [i["sku"] for i in paged.json["items"]] == [i["sku"] for i in r.json["items"]][4:]
    assert json.loads(paged.headers["X-Pagination"]) == {"total": 5, "total_pages": 3, "first_page": 1,
                                                         "last_page": 3, "page": 3, "previous_page": 2}
    later = client.get(f"/api/v1/catalogues/{catalogue}/as-of?as_of=2025-05-01&destinations=CN", headers=viewer_headers).json
    assert later["requirements"]["CN"]["license_required"] == 4  # H100, A800, H20, HGX H20


def test_bad_point_in_time_queries_are_clear_4xx(client, viewer_headers, catalogue):
    base = f"/api/v1/catalogues/{catalogue}"
    cases = {f"{base}/diff?from=2023-06-01": ("to", 422), f"{base}/diff?from=2023-06-01&to=2023-13-01": ("to", 422),
             f"{base}/diff?from=2023-06-01&to=2023-06-01": ("to", 422),
             f"{base}/diff?from=2023-06-01&to=2024-01-01&destinations=CN,XX": ("destinations", 422),
             f"{base}/diff?from=2022-10-06&to=2024-01-01": ("from", 422),
             f"{base}/as-of?as_of=2099-01-01": ("as_of", 422),
             "/api/v1/catalogues/999/diff?from=2023-06-01&to=2024-01-01": ("catalogue", 404),
             "/api/v1/changes?destination=XX": ("destination", 422), "/api/v1/changes?per_page=0": ("per_page", 422),
             "/api/v1/changes?version=99": ("version", 404)}
    for url, (field, code) in cases.items():
        r = client.get(url, headers=viewer_headers)
        assert r.status_code == code, (url, r.json)
        assert field in r.json["message"] or field in str(r.json.get("errors")), (url, r.json)


def test_point_in_time_views_take_a_transaction_type(client, viewer_headers, catalogue):
    """After 2026-01-15 the H100 to China is case-by-case as an export from the US, presumption of denial as a
    reexport; the views answer for the transaction asked (export by default)."""
    base = f"/api/v1/catalogues/{catalogue}/as-of?as_of=2026-02-01&destinations=CN"
    export = client.get(base, headers=viewer_headers).json
    reexport = client.get(f"{base}&transaction_type=reexport", headers=viewer_headers).json
    assert (export["transaction_type"], reexport["transaction_type"]) == ("export", "reexport")
    h100 = [{i["sku"]: i for i in r["items"]}["H100"]["licences"]["CN"] for r in (export, reexport)]
    assert [lic["review_policy"] for lic in h100] == ["case_by_case", "presumption_of_denial"]
    diff = client.get(f"/api/v1/catalogues/{catalogue}/diff?from=2026-01-14&to=2026-01-15&destinations=CN",
                      headers=viewer_headers).json
    assert ("H100", "presumption_of_denial", "case_by_case") in {
        (i["sku"], i["from"]["review_policy"], i["to"]["review_policy"]) for i in diff["items"]}
    unchanged = client.get(f"/api/v1/catalogues/{catalogue}/diff?from=2026-01-14&to=2026-01-15&destinations=CN"
                           "&transaction_type=reexport", headers=viewer_headers).json
    assert "H100" not in {i["sku"] for i in unchanged["items"]}
    bad = client.get(f"{base}&transaction_type=smuggle", headers=viewer_headers)
    assert bad.status_code == 422 and "transaction_type" in bad.json["errors"]["query"]
