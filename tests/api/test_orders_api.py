"""Orders: classification + screening on create, holds with cited reasons, release by licence (atomic
draw-down, also under concurrent releases on PostgreSQL) or four-eyes override, rejection; licences."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from compliance.models import ActivityEvent
from tests.api.conftest import error_text
from tests.conftest import H100
from tests.factories import catalogue

SMALL = {"name": "Edge NPU", "vendor": "Acme", "kind": "ic", "datacenter": False,
         "throughput": [{"format": "int8", "dense_tops": 20}], "die_area_mm2": 50, "io_bandwidth_gb_per_s": 16,
         "memory_bandwidth_gb_per_s": 50}


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url)


@pytest.fixture
def cat(app):
    return catalogue(app, [dict(H100, sku="H100-SXM"), dict(SMALL, sku="NPU-1")])


@pytest.fixture
def clerk(app, headers_for):
    return headers_for(app, "auditor")


@pytest.fixture
def officer(app, headers_for):
    return headers_for(app, "auditor")


def order(cat, **over):
    body = {"reference": "PO-1", "date": "2025-05-01", "ship_to": "CN", "transaction_type": "export",
            "end_user": {"name": "Blue River Labs", "address": "1 Lake Rd, Hangzhou", "country": "CN"},
            "consignees": [{"name": "Harbour Freight Pte Ltd", "country": "SG"}], "end_use": "research",
            "lines": [{"sku": "H100-SXM", "catalogue_id": cat, "quantity": 8, "value": 200000}]}
    body.update(over)
    return body


def create(client, headers, body, status=201):
    r = client.post("/api/v1/orders", json=body, headers=headers)
    assert r.status_code == status, r.get_json()
    return r.get_json()


def licence(client, headers, **over):
    body = {"number": "L-1", "holder": "Us Inc", "eccns": ["3A090.a"], "destinations": ["CN"],
            "quantity_limit": 10, "value_limit": 1_000_000, "valid_from": "2025-01-01", "valid_to": "2099-12-31"}
    body.update(over)
    r = client.post("/api/v1/licences", json=body, headers=headers)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def test_an_order_needing_a_licence_is_held_with_the_cited_reason(client, cat, clerk):
    o = create(client, clerk, order(cat))
    assert o["status"] == "held"
    line = o["lines"][0]
    assert line["status"] == "held" and line["classification"]["eccn"] == "3A090.a"
    reason = line["reasons"][0]
    assert reason["code"] == "licence_required" and "742.6" in reason["citation"]
    assert line["licences"][0]["requirement"] == "license_required"
    assert {p["role"] for p in o["screening"]} == {"end_user", "consignee"}
    assert all(p["status"] == "clear" and p["hits"] == [] for p in o["screening"])


def test_an_order_with_nothing_to_hold_is_released(client, cat, clerk):
    o = create(client, clerk, order(cat, ship_to="DE", lines=[{"sku": "NPU-1", "catalogue_id": cat, "quantity": 100},
                                                             {"product": SMALL, "quantity": 2, "value": 10}]))
    assert o["status"] == "released" and [ln["status"] for ln in o["lines"]] == ["released", "released"]
    assert o["lines"][0]["release"]["basis"] == "auto" and o["lines"][0]["reasons"] == []


def test_a_party_on_the_entity_list_holds_every_line_with_the_hit(client, cat, clerk):
    body = order(cat, ship_to="DE", end_user={"name": "Huawei Technologies Co., Ltd.", "country": "CN"},
                 lines=[{"sku": "NPU-1", "catalogue_id": cat, "quantity": 1}])
    o = create(client, clerk, body)
    assert o["status"] == "held"
    reason = o["lines"][0]["reasons"][0]
    assert reason["code"] == "screening_hit" and reason["citation"] == "84 FR 22961"
    assert "Huawei" in reason["message"] and "Presumption of denial" in reason["message"]
    eu = next(p for p in o["screening"] if p["role"] == "end_user")
    hit = eu["hits"][0]
    assert hit["list"] == "csl" and hit["entry"]["name"] == "Huawei Technologies Co., Ltd." and hit["score"] == 100


def test_the_headquarters_rule_comes_from_the_end_users_parent(client, cat, clerk):
    plain = create(client, clerk, order(cat, ship_to="MY"))
    with_parent = create(client, clerk, order(cat, ship_to="MY", end_user={
        "name": "Kuala Compute Sdn Bhd", "country": "MY", "parent": {"name": "Blue River Labs", "headquarters": "CN"}}))
    assert with_parent["headquarters"] == "CN"
    assert plain["lines"][0]["licences"][0]["requirement"] != with_parent["lines"][0]["licences"][0]["requirement"]
    assert with_parent["status"] == "held"
    assert {p["role"] for p in with_parent["screening"]} == {"end_user", "consignee", "parent"}


def test_unknown_inputs_hold_the_line(client, cat, clerk):
    o = create(client, clerk, order(cat, lines=[{"product": {"name": "Mystery accelerator", "vendor": "X"},
                                                 "quantity": 1}]))
    reason = o["lines"][0]["reasons"][0]
    assert o["status"] == "held" and reason["code"] == "unknown_inputs" and "missing" in reason["message"]


@pytest.mark.parametrize("change, field", [
    ({"ship_to": "ZZ"}, "ship_to"),
    ({"lines": [{"sku": "H100-SXM", "catalogue_id": 1, "quantity": -1}]}, "quantity"),
    ({"lines": [{"sku": "H100-SXM", "catalogue_id": 1, "quantity": 1.5}]}, "quantity"),
    ({"lines": []}, "lines"),
    ({"lines": [{"quantity": 1}]}, "sku"),
    ({"date": "2025-13-01"}, "date"),
    ({"transaction_type": "gift"}, "transaction_type"),
    ({"end_user": {"name": "A", "parent": {"name": "B", "headquarters": "Mars"}}}, "headquarters"),
    ({"colour": "red"}, "colour"),
])
def test_bad_orders_are_422_naming_the_field(client, cat, clerk, change, field):
    r = client.post("/api/v1/orders", json=order(cat, **change), headers=clerk)
    assert r.status_code == 422 and field in error_text(r), r.get_json()


def test_an_unknown_catalogue_product_is_422_naming_the_line(client, cat, clerk):
    r = client.post("/api/v1/orders", json=order(cat, lines=[{"sku": "NOPE", "catalogue_id": cat, "quantity": 1}]),
                    headers=clerk)
    assert r.status_code == 422 and "lines.0.sku" in error_text(r)


def test_viewers_cannot_create_orders_but_can_read_the_holds_queue(app, client, cat, clerk, headers_for):
    viewer = headers_for(app, "viewer")
    assert client.post("/api/v1/orders", json=order(cat), headers=viewer).status_code == 403
    held = create(client, clerk, order(cat))
    create(client, clerk, order(cat, reference="PO-2", ship_to="DE",
                                lines=[{"sku": "NPU-1", "catalogue_id": cat, "quantity": 1}]))
    r = client.get("/api/v1/orders?status=held", headers=viewer)
    assert r.status_code == 200 and [o["id"] for o in r.get_json()["items"]] == [held["id"]]
    r = client.get("/api/v1/orders?reason=licence_required&ship_to=CN", headers=viewer)
    assert [o["id"] for o in r.get_json()["items"]] == [held["id"]]
    assert client.get(f"/api/v1/orders/{held['id']}", headers=viewer).get_json()["reference"] == "PO-1"
    assert client.get("/api/v1/orders/999999", headers=viewer).status_code == 404


@pytest.mark.parametrize("change, field", [
    ({"valid_from": "2026-01-01", "valid_to": "2025-01-01"}, "valid_to"),
    ({"destinations": ["XX"]}, "destinations"),
    ({"quantity_limit": -1}, "quantity_limit"),
    ({"value_limit": -5}, "value_limit"),
    ({"eccns": [], "products": []}, "eccns"),
])
def test_bad_licences_are_422_naming_the_field(client, clerk, change, field):
    body = {"number": "L-9", "holder": "Us", "eccns": ["3A090.a"], "destinations": ["CN"], "valid_from": "2025-01-01",
            "valid_to": "2026-01-01", **change}
    r = client.post("/api/v1/licences", json=body, headers=clerk)
    assert r.status_code == 422 and field in error_text(r), r.get_json()


def test_release_with_a_covering_licence_draws_it_down(app, client, cat, clerk, officer):
    o = create(client, clerk, order(cat))
    line = o["lines"][0]
    lic = licence(client, officer)
    expired = licence(client, officer, number="L-OLD", valid_from="2020-01-01", valid_to="2024-12-31")
    elsewhere = licence(client, officer, number="L-AE", destinations=["AE"])
    url = f"/api/v1/orders/{o['id']}/lines/{line['id']}/release"
    r = client.post(url, json={"licence_id": expired["id"]}, headers=officer)
    assert r.status_code == 422 and "not valid on" in error_text(r)
    r = client.post(url, json={"licence_id": elsewhere["id"]}, headers=officer)
    assert r.status_code == 422 and "destination CN" in error_text(r)
    r = client.post(url, json={"licence_id": lic["id"]}, headers=officer)
    assert r.status_code == 200, r.get_json()
    done = r.get_json()
    assert done["status"] == "released" and done["lines"][0]["licence"]["number"] == "L-1"
    assert done["lines"][0]["release"]["basis"] == "licence"
    after = client.get(f"/api/v1/licences/{lic['id']}", headers=officer).get_json()
    assert after["quantity_used"] == 8 and after["quantity_remaining"] == 2 and after["value_used"] == 200000
    assert after["drawdowns"][0]["order_line_id"] == line["id"]
    assert client.post(url, json={"licence_id": lic["id"]}, headers=officer).status_code == 409  # not held now
    # the next order of 8 does not fit the remaining 2: exhausted, nothing released
    o2 = create(client, clerk, order(cat, reference="PO-2"))
    r = client.post(f"/api/v1/orders/{o2['id']}/lines/{o2['lines'][0]['id']}/release", json={"licence_id": lic["id"]},
                    headers=officer)
    assert r.status_code == 409 and "exhausted" in error_text(r)
    assert client.get(f"/api/v1/orders/{o2['id']}", headers=officer).get_json()["status"] == "held"
    with app.extensions["db"].session() as s:
        actions = [e.action for e in s.scalars(select(ActivityEvent).where(ActivityEvent.target == f"order:{o['id']}"))]
    assert actions == ["order.create", "order.line_release"]


def test_a_licence_must_name_a_party_that_hit_a_list(client, cat, clerk, officer):
    o = create(client, clerk, order(cat, end_user={"name": "Sugon", "country": "CN"}))
    url = f"/api/v1/orders/{o['id']}/lines/{o['lines'][0]['id']}/release"
    anyone = licence(client, officer)
    r = client.post(url, json={"licence_id": anyone["id"]}, headers=officer)
    assert r.status_code == 422 and "screening hit" in error_text(r)
    named = licence(client, officer, number="L-SUGON", parties=["Sugon"])
    assert client.post(url, json={"licence_id": named["id"]}, headers=officer).status_code == 200


def test_an_override_needs_a_second_person_and_a_reason(client, cat, clerk, officer):
    o = create(client, clerk, order(cat))
    url = f"/api/v1/orders/{o['id']}/lines/{o['lines'][0]['id']}/release"
    r = client.post(url, json={"override": True, "reason": "I say so"}, headers=clerk)
    assert r.status_code == 422 and "override" in error_text(r) and "created this order" in error_text(r)
    r = client.post(url, json={"override": True}, headers=officer)
    assert r.status_code == 422 and "reason" in error_text(r)
    r = client.post(url, json={"override": True, "reason": "licence D123456 on paper, entry pending"}, headers=officer)
    assert r.status_code == 200 and r.get_json()["status"] == "released"
    assert r.get_json()["lines"][0]["release"]["basis"] == "override"


def test_reject_a_held_order(client, cat, clerk, officer):
    o = create(client, clerk, order(cat))
    assert client.post(f"/api/v1/orders/{o['id']}/reject", json={}, headers=officer).status_code == 422
    r = client.post(f"/api/v1/orders/{o['id']}/reject", json={"reason": "end use unclear"}, headers=officer)
    assert r.status_code == 200 and r.get_json()["status"] == "rejected"
    assert r.get_json()["lines"][0]["status"] == "rejected" and r.get_json()["decision"]["reason"] == "end use unclear"
    assert client.post(f"/api/v1/orders/{o['id']}/reject", json={"reason": "x"}, headers=officer).status_code == 409


def test_concurrent_releases_never_overdraw_a_licence(app, client, cat, clerk, officer, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("real concurrency needs PostgreSQL (SQLite serialises writers)")
    from compliance.services import orders as svc

    lic = licence(client, officer, quantity_limit=10, value_limit=None)
    orders = [create(client, clerk, order(cat, reference=f"PO-{i}",
                                          lines=[{"sku": "H100-SXM", "catalogue_id": cat, "quantity": 3}]))
              for i in range(8)]
    db = app.extensions["db"]
    barrier = threading.Barrier(len(orders))
    outcomes: list[str] = []

    def release(o):
        barrier.wait()
        try:
            svc.release_line(db, o["id"], o["lines"][0]["id"], "officer B", licence_id=lic["id"])
            outcomes.append("released")
        except Exception as exc:  # noqa: BLE001 - the outcome is what we count
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=release, args=(o,)) for o in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["Conflict"] * 5 + ["released"] * 3, outcomes
    after = client.get(f"/api/v1/licences/{lic['id']}", headers=officer).get_json()
    assert after["quantity_used"] == 9 and len(after["drawdowns"]) == 3


def test_the_licence_register_lists_balances(client, clerk):
    licence(client, clerk)
    licence(client, clerk, number="L-2", destinations=["AE"], valid_to="2025-06-30")
    r = client.get("/api/v1/licences?destination=AE", headers=clerk)
    assert [x["number"] for x in r.get_json()["items"]] == ["L-2"]
    r = client.get("/api/v1/licences?valid_on=2026-01-01", headers=clerk)
    assert [x["number"] for x in r.get_json()["items"]] == ["L-1"]
    assert client.post("/api/v1/licences", json={"number": "L-1", "holder": "x", "eccns": ["3A090.a"],
                                                 "destinations": ["CN"], "valid_from": "2025-01-01",
                                                 "valid_to": "2026-01-01"}, headers=clerk).status_code == 409


def test_lines_decided_before_are_not_evaluated_again_and_answer_the_same(client, cat, clerk, monkeypatch):
    from compliance.services import classification, orders
    monkeypatch.setattr(orders, "_decisions", type(orders._decisions)())
    counted: list[int] = []
    monkeypatch.setattr(classification, "CLASSIFIED_OBSERVERS", [counted.append])
    lines = [{"sku": "H100-SXM", "catalogue_id": cat, "quantity": 8, "value": 200000},
             {"sku": "NPU-1", "catalogue_id": cat, "quantity": 1}]
    first = create(client, clerk, order(cat, lines=lines))
    assert counted == [2]
    second = create(client, clerk, order(cat, reference="PO-2", lines=lines[::-1]))
    assert counted == [2]  # both lines decided before: no engine call
    keep = ("sku", "status", "classification", "licences", "reasons")
    assert [{k: ln[k] for k in keep} for ln in second["lines"]] == \
        [{k: ln[k] for k in keep} for ln in first["lines"][::-1]]
    assert second["status"] == first["status"] == "held" and second["lines"][1]["classification"]["eccn"] == "3A090.a"
    # another date, destination or headquarters is another decision: evaluated (only the lines not seen)
    create(client, clerk, order(cat, reference="PO-3", date="2025-06-01", lines=lines))
    assert counted == [2, 2]
    create(client, clerk, order(cat, reference="PO-4", lines=lines + [{"product": dict(SMALL, sku="NPU-2"),
                                                                       "quantity": 1}]))
    assert counted == [2, 2, 1]


def test_the_reason_filter_pages_in_the_database(client, cat, clerk):
    """?reason= picks orders with a line held for that reason before paging, so every page is full and the
    total counts what the pages hold (it used to filter each page after the fact)."""
    licence_held = [create(client, clerk, order(cat, reference=f"PO-L{i}"))["id"] for i in range(3)]
    hit_held = [create(client, clerk, order(cat, reference=f"PO-H{i}", ship_to="DE",
                                            end_user={"name": "Huawei Technologies Co., Ltd.", "country": "CN"},
                                            lines=[{"sku": "NPU-1", "catalogue_id": cat, "quantity": 1}]))["id"]
                for i in range(3)]  # newer: a screening hit only (the NPU needs no licence for DE)
    for reason, expected in (("licence_required", licence_held), ("screening_hit", hit_held)):
        seen = []
        for page in (1, 2, 3):
            r = client.get(f"/api/v1/orders?reason={reason}&per_page=1&page={page}", headers=clerk)
            assert r.status_code == 200, r.get_json()
            body = r.get_json()
            assert body["total"] == 3 and len(body["items"]) == 1, (reason, page, body)
            seen += [o["id"] for o in body["items"]]
        assert sorted(seen) == sorted(expected), reason
    r = client.get("/api/v1/orders?reason=no_such_reason", headers=clerk)
    assert r.status_code == 422 and "reason" in error_text(r)
