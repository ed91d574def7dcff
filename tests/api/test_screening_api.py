"""POST /screen, screening lists (CSL import with bad rows, snapshots, deltas, custom lists) and hit reviews,
on SQLite and PostgreSQL."""
from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from compliance.models import ActivityEvent
from tests.api.conftest import error_text

CSL_HEADER = ["_id", "source", "entity_number", "type", "programs", "name", "title", "addresses",
              "federal_register_notice", "start_date", "end_date", "standard_order", "license_requirement",
              "license_policy", "call_sign", "vessel_type", "gross_tonnage", "gross_registered_tonnage", "vessel_flag",
              "vessel_owner", "remarks", "source_list_url", "alt_names", "citizenships", "dates_of_birth",
              "nationalities", "places_of_birth", "source_information_url", "ids"]
EL = "Entity List (EL) - Bureau of Industry and Security"


def csl_csv(rows: list[dict], header=CSL_HEADER) -> bytes:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=header)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in header})
    return out.getvalue().encode()


ROWS = [
    {"_id": "a1", "source": EL, "name": "Acme Photonics Co., Ltd.", "addresses": "1 Light Road, Chengdu, CN",
     "federal_register_notice": "89 FR 1", "start_date": "2024-01-02", "alt_names": "Acme Optics; AP Photonics",
     "license_requirement": "For all items subject to the EAR", "license_policy": "Presumption of denial"},
    {"_id": "a2", "source": "Denied Persons List (DPL) - Bureau of Industry and Security", "name": "Boris Quill",
     "addresses": "5 Main St, Moscow, RU", "end_date": "2099-01-01"},
    {"_id": "a3", "source": EL, "name": "", "addresses": "nowhere, CN"},              # bad: no name
    {"_id": "a1", "source": EL, "name": "Acme Again"},                                # bad: duplicate id
    {"_id": "a4", "source": EL, "name": "Zeta Compute", "addresses": "9 Road, Atlantis"},  # kept, country unknown
    {"_id": "a5", "source": EL, "name": "Expired Trading", "end_date": "2001-01-01"},
]


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url)


@pytest.fixture
def auditor(app, headers_for):
    return headers_for(app, "auditor")


@pytest.fixture
def viewer(app, headers_for):
    return headers_for(app, "viewer")


def csl_id(client, viewer) -> int:
    r = client.get("/api/v1/screening/lists", headers=viewer)
    assert r.status_code == 200, r.get_json()
    return next(it["id"] for it in r.get_json()["items"] if it["name"] == "csl")


def screen(client, headers, **party):
    r = client.post("/api/v1/screen", json=party, headers=headers)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_the_bundled_sample_screens_out_of_the_box(client, viewer):
    body = screen(client, viewer, name="HUAWEI TECHNOLOGIES CO LTD", country="CN")
    assert body["status"] == "hit"
    hit = body["hits"][0]
    assert hit["list"] == "csl" and hit["source"] == "EL" and hit["score"] == 100.0
    assert hit["entry"]["name"] == "Huawei Technologies Co., Ltd."
    assert hit["entry"]["federal_register_notice"] == "84 FR 22961"
    assert hit["matched_name"] and "threshold" in hit["why"]
    assert body["lists"][0]["list"] == "csl" and body["lists"][0]["entries"] == 23
    assert screen(client, viewer, name="Siemens AG", country="DE")["status"] == "clear"


def test_batch_screening_answers_each_party(client, viewer):
    r = client.post("/api/v1/screen", headers=viewer, json={"parties": [
        {"name": "Siemens AG", "country": "DE"}, {"name": "Zhongke Shuguang"}, {"name": "SMIC", "address": "Shanghai"}]})
    assert r.status_code == 200
    results = r.get_json()["results"]
    assert [x["status"] for x in results] == ["clear", "hit", "hit"]
    assert results[1]["hits"][0]["entry"]["name"] == "Sugon" and results[1]["hits"][0]["matched_kind"] == "alias"


@pytest.mark.parametrize("body, field", [
    ({}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "Acme", "country": "XX"}, "country"),
    ({"name": "Acme", "parties": [{"name": "B"}]}, "parties"),
    ({"parties": []}, "parties"),
    ({"parties": [{"name": "B", "country": "Narnia"}]}, "country"),
    ({"parties": [{"name": "B"}] * 1001}, "parties"),
    ({"name": "Acme", "colour": "red"}, "colour"),
    ({"name": "x" * 1001}, "name"),
])
def test_bad_screening_requests_are_422_naming_the_field(client, viewer, body, field):
    r = client.post("/api/v1/screen", json=body, headers=viewer)
    assert r.status_code == 422 and field in error_text(r), r.get_json()


def test_screening_needs_a_key_and_a_json_body(client, viewer):
    assert client.post("/api/v1/screen", json={"name": "Acme"}).status_code == 401
    r = client.post("/api/v1/screen", data="name=Acme", headers={**viewer, "Content-Type": "text/plain"})
    assert r.status_code == 415 and "Content-Type" in error_text(r)


def test_import_keeps_good_rows_reports_bad_ones_and_screens_against_the_new_snapshot(app, client, auditor, viewer):
    lid = csl_id(client, viewer)
    assert client.post(f"/api/v1/screening/lists/{lid}/snapshots?format=csv", data=csl_csv(ROWS),
                       headers={**viewer, "Content-Type": "text/csv"}).status_code == 403
    r = client.post(f"/api/v1/screening/lists/{lid}/snapshots?format=csv&source_date=2026-11-30",
                    data=csl_csv(ROWS), headers={**auditor, "Content-Type": "text/csv"})
    assert r.status_code == 201, r.get_json()
    snap = r.get_json()
    assert snap["version"] == 2 and snap["source_date"] == "2026-11-30"
    assert snap["rows_read"] == 6 and snap["entries"] == 4 and snap["rejected"] == 2
    problems = {(e["row"], e["field"], e["kept"]) for e in snap["errors"]}
    assert (3, "name", False) in problems and (4, "_id", False) in problems
    assert any(e["row"] == 5 and "Atlantis" in e["message"] and e["kept"] for e in snap["errors"])
    # the sample's 23 entries are gone, the 4 new ones added
    assert snap["delta"] == {"added": 4, "removed": 23, "changed": 0}
    # the snapshot in force is the new one: the sample no longer hits, the new entries do
    assert screen(client, viewer, name="Huawei Technologies")["status"] == "clear"
    body = screen(client, viewer, name="Acme Optics", country="CN")
    assert body["status"] == "hit" and body["hits"][0]["entry"]["federal_register_notice"] == "89 FR 1"
    assert body["hits"][0]["entry"]["countries"] == ["CN"]
    assert screen(client, viewer, name="Boris Quill")["hits"][0]["source"] == "DPL"
    assert screen(client, viewer, name="Expired Trading")["status"] == "clear"  # its end_date is past
    # the same file again is refused, a changed one gives a delta
    r = client.post(f"/api/v1/screening/lists/{lid}/snapshots?format=csv", data=csl_csv(ROWS),
                    headers={**auditor, "Content-Type": "text/csv"})
    assert r.status_code == 409
    changed = [dict(ROWS[0], alt_names="Acme Optics"), ROWS[1],
               {"_id": "a6", "source": EL, "name": "Nova Wafer", "addresses": "Hsinchu, TW"}]
    r = client.post(f"/api/v1/screening/lists/{lid}/snapshots", data={"file": (io.BytesIO(csl_csv(changed)), "csl.csv")},
                    headers=auditor, content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    snap3 = r.get_json()
    assert snap3["delta"] == {"added": 1, "removed": 2, "changed": 1}
    r = client.get(f"/api/v1/screening/snapshots/{snap3['id']}/changes?change=changed", headers=viewer)
    assert r.get_json()["items"] == [{"entity_key": "a1", "change": "changed", "name": "Acme Photonics Co., Ltd.",
                                      "source": "EL", "fields": ["alt_names"],
                                      "entry_id": r.get_json()["items"][0]["entry_id"],
                                      "previous_entry_id": r.get_json()["items"][0]["previous_entry_id"]}]
    r = client.get(f"/api/v1/screening/snapshots/{snap3['id']}/entries?q=nova", headers=viewer)
    assert [e["name"] for e in r.get_json()["items"]] == ["Nova Wafer"]
    r = client.get(f"/api/v1/screening/lists/{lid}", headers=viewer)
    assert [s["version"] for s in r.get_json()["history"]] == [3, 2, 1]
    with app.extensions["db"].session() as s:
        actions = [e.action for e in s.scalars(select(ActivityEvent).where(ActivityEvent.action == "screening.import"))]
    assert len(actions) == 3


def test_json_and_tsv_files_are_read_and_unknown_columns_named(client, auditor, viewer):
    lid = csl_id(client, viewer)
    doc = {"results": [{"id": "j1", "source": EL, "name": "Kappa Devices", "alt_names": ["Kappa"],
                        "addresses": [{"address": "1 St", "city": "Wuhan", "country": "CN"}], "new_field": "x"},
                       {"id": "j2", "name": 5}]}
    r = client.post(f"/api/v1/screening/lists/{lid}/snapshots?filename=csl.json", data=json.dumps(doc),
                    headers={**auditor, "Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.get_json()
    snap = r.get_json()
    assert snap["format"] == "json" and snap["entries"] == 1 and snap["rejected"] == 1
    assert snap["unknown_columns"] == ["new_field"]
    tsv = "name\tsource\taddresses\nLambda Fab\tEntity List (EL) - BIS\tHsinchu, TW\n"
    r = client.post(f"/api/v1/screening/lists/{lid}/snapshots?format=tsv", data=tsv,
                    headers={**auditor, "Content-Type": "text/tab-separated-values"})
    assert r.status_code == 201 and r.get_json()["entries"] == 1
    assert screen(client, viewer, name="Lambda Fab", country="TW")["status"] == "hit"


@pytest.mark.parametrize("data, qs, field", [
    (b"\xff\xfe\x00bad", "format=csv", "file"),
    (b"{not json", "format=json", "file"),
    (b"title,alias\nx,y\n", "format=csv", "file"),
    (b"name\nx\n", "", "format"),
])
def test_unreadable_list_files_are_422_naming_the_problem(client, auditor, viewer, data, qs, field):
    lid = csl_id(client, viewer)
    r = client.post(f"/api/v1/screening/lists/{lid}/snapshots?{qs}", data=data,
                    headers={**auditor, "Content-Type": "application/octet-stream"})
    assert r.status_code == 422 and field in error_text(r), r.get_json()


def test_custom_lists_are_lists_too(client, auditor, viewer):
    r = client.post("/api/v1/screening/lists", json={"name": "denied-own", "description": "our own"}, headers=auditor)
    assert r.status_code == 201, r.get_json()
    lid = r.get_json()["id"]
    assert client.post("/api/v1/screening/lists", json={"name": "denied-own"}, headers=auditor).status_code == 409
    assert client.post("/api/v1/screening/lists", json={"name": "bad name!"}, headers=auditor).status_code == 422
    data = "name,country,address,remarks\nRogue Reseller Pte Ltd,SG,8 Harbour Rd,chargeback fraud 2025\n"
    r = client.post(f"/api/v1/screening/lists/{lid}/snapshots?format=csv", data=data,
                    headers={**auditor, "Content-Type": "text/csv"})
    assert r.status_code == 201, r.get_json()
    body = screen(client, viewer, name="Rogue Reseller", country="SG")
    hit = body["hits"][0]
    assert hit["list"] == "denied-own" and hit["source"] == "CUSTOM" and hit["entry"]["remarks"] == "chargeback fraud 2025"
    assert {x["list"] for x in body["lists"]} == {"csl", "denied-own"}
    assert client.get("/api/v1/screening/lists/999999", headers=viewer).status_code == 404


def test_a_cleared_hit_is_not_raised_again_until_the_party_or_the_entry_changes(app, client, auditor, viewer):
    lid = csl_id(client, viewer)
    client.post(f"/api/v1/screening/lists/{lid}/snapshots?format=csv", data=csl_csv(ROWS[:2]),
                headers={**auditor, "Content-Type": "text/csv"})
    party = {"name": "Acme Photonic", "country": "CN", "address": "77 Other Street, Chengdu"}
    body = screen(client, viewer, **party)
    assert body["status"] == "hit"
    entry_id = body["hits"][0]["entry"]["id"]
    review = {"party": party, "entry_id": entry_id, "decision": "cleared",
              "reason": "different company: Acme Photonic is a Chengdu retailer, registry no. 123"}
    assert client.post("/api/v1/screening/reviews", json=review, headers=viewer).status_code == 403
    assert client.post("/api/v1/screening/reviews", json={**review, "reason": ""}, headers=auditor).status_code == 422
    r = client.post("/api/v1/screening/reviews", json={**review, "party": {"name": "Totally Different"}},
                    headers=auditor)
    assert r.status_code == 422 and "entry_id" in error_text(r)
    r = client.post("/api/v1/screening/reviews", json=review, headers=auditor)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["decision"] == "cleared" and r.get_json()["actor"].startswith("test auditor")
    again = screen(client, viewer, **party)
    assert again["status"] == "cleared" and again["hits"][0]["cleared"] is True
    assert again["hits"][0]["review"]["reason"].startswith("different company")
    # the party changes (another address): the hit is raised again
    assert screen(client, viewer, **{**party, "address": "1 Light Road, Chengdu"})["status"] == "hit"
    # the entry changes (a new snapshot alters it): raised again, the old review shown as stale
    changed = [dict(ROWS[0], remarks="now with footnote 4"), ROWS[1]]
    assert client.post(f"/api/v1/screening/lists/{lid}/snapshots?format=csv", data=csl_csv(changed),
                       headers={**auditor, "Content-Type": "text/csv"}).status_code == 201
    after = screen(client, viewer, **party)
    assert after["status"] == "hit" and after["hits"][0]["review_state"] == "stale"
    r = client.get("/api/v1/screening/reviews?decision=cleared", headers=viewer)
    assert r.status_code == 200 and r.get_json()["total"] == 1
    with app.extensions["db"].session() as s:
        ev = s.scalar(select(ActivityEvent).where(ActivityEvent.action == "screening.hit_cleared"))
    assert ev.reason.startswith("different company") and ev.actor.startswith("test auditor")
