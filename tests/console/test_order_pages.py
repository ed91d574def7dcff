"""Orders, licences and screening lists in the console: the holds queue with its filters, an order page with its
lines, reasons, citations and screening hits; releasing a held line with a licence chosen from the ones that cover
it (or a four-eyes override) and rejecting, with the API's roles, CSRF, the service's refusals next to the field
and nothing released by a failed form; the licence register with balances and the lines a licence released; the
screening lists with their snapshots, a snapshot's delta and its entries. Orders and licences are made through
the API, as a user would."""
from __future__ import annotations

import csv
import io
import re

import pytest
from markupsafe import escape
from sqlalchemy import select

from compliance.auth import identify_key
from compliance.models import ActivityEvent, Licence, OrderLine
from tests.conftest import H100
from tests.console.conftest import csrf_of, new_key, sign_in
from tests.factories import catalogue

SMALL = {"name": "Edge NPU", "vendor": "Acme", "kind": "ic", "datacenter": False,
         "throughput": [{"format": "int8", "dense_tops": 20}], "die_area_mm2": 50, "io_bandwidth_gb_per_s": 16,
         "memory_bandwidth_gb_per_s": 50}


@pytest.fixture
def cat(app):
    return catalogue(app, [dict(H100, sku="H100-SXM"), dict(SMALL, sku="NPU-1")])


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def clerk(app):
    """The API key of the auditor who enters the orders (their creator, for four eyes)."""
    return new_key(app, "auditor", "Clerk Cleo")


def order_body(cat, **over):
    body = {"reference": "PO-1", "date": "2025-05-01", "ship_to": "CN", "transaction_type": "export",
            "end_user": {"name": "Blue River Labs", "address": "1 Lake Rd, Hangzhou", "country": "CN"},
            "consignees": [{"name": "Harbour Freight Pte Ltd", "country": "SG"}], "end_use": "research",
            "lines": [{"sku": "H100-SXM", "catalogue_id": cat, "quantity": 8, "value": 200000}]}
    body.update(over)
    return body


def create_order(app, key, body) -> dict:
    r = app.test_client().post("/api/v1/orders", json=body, headers=bearer(key))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def create_licence(app, key, **over) -> dict:
    body = {"number": "L-1", "holder": "Us Inc", "eccns": ["3A090.a"], "destinations": ["CN"],
            "quantity_limit": 10, "value_limit": 1_000_000, "valid_from": "2025-01-01", "valid_to": "2099-12-31"}
    body.update(over)
    r = app.test_client().post("/api/v1/licences", json=body, headers=bearer(key))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def html_of(response) -> str:
    return response.get_data(as_text=True)


def section(html: str, ident: str) -> str:
    """The element with id=ident, up to the next element with an id of the same kind of tag."""
    start = html.index(f'id="{ident}"')
    tag = html.rfind("<", 0, start)
    name = re.match(r"<(\w+)", html[tag:]).group(1)
    end = html.find(f"</{name}>", start)
    return html[tag:end]


def officer_client(app, name="Officer Oz"):
    """A console session of a new auditor key; returns (client, the actor that key records)."""
    key = new_key(app, "auditor", name)
    client = app.test_client()
    assert sign_in(client, key).status_code == 302
    return client, identify_key(app.extensions["db"], key)[0]


def line_state(app, line_id) -> str:
    with app.extensions["db"].session() as s:
        return s.get(OrderLine, line_id).status


def licence_used(app, licence_id) -> tuple[int, float]:
    with app.extensions["db"].session() as s:
        lic = s.get(Licence, licence_id)
        return lic.quantity_used, lic.value_used


def releases_recorded(app) -> list[ActivityEvent]:
    with app.extensions["db"].session() as s:
        return list(s.scalars(select(ActivityEvent).where(ActivityEvent.action == "order.line_release")))


def post_release(client, order_id, line_id, **form):
    token = csrf_of(client.get(f"/orders/{order_id}"))
    return client.post(f"/orders/{order_id}/lines/{line_id}/release", data={"csrf_token": token, **form})


# ---------- the holds queue ----------

def test_the_holds_queue_shows_held_orders_their_reasons_and_hits_with_filters(app, cat, clerk, signed_in):
    licence_held = create_order(app, clerk, order_body(cat))
    released = create_order(app, clerk, order_body(cat, reference="PO-2", ship_to="DE",
                                                   lines=[{"sku": "NPU-1", "catalogue_id": cat, "quantity": 1}]))
    hit = create_order(app, clerk, order_body(cat, reference="PO-3", ship_to="DE",
                                              end_user={"name": "Huawei Technologies Co., Ltd.", "country": "CN"},
                                              lines=[{"sku": "NPU-1", "catalogue_id": cat, "quantity": 1}]))
    assert (licence_held["status"], released["status"], hit["status"]) == ("held", "released", "held")
    viewer = signed_in("viewer")
    response = viewer.get("/orders")
    assert response.status_code == 200
    queue = section(html_of(response), "order-queue")
    assert f'href="/orders/{licence_held["id"]}"' in queue and f'href="/orders/{hit["id"]}"' in queue
    assert f'data-order="{released["id"]}"' not in queue  # the default is the held orders
    assert "licence required" in queue and "742.6" in queue  # the reason and its citation
    assert "84 FR 22961" in queue and "Huawei Technologies Co., Ltd." in queue  # the screening hit, cited
    assert "score 100" in queue
    everything = section(html_of(viewer.get("/orders?status=")), "order-queue")
    assert all(f'data-order="{o["id"]}"' in everything for o in (licence_held, released, hit))
    by_destination = section(html_of(viewer.get("/orders?status=held&ship_to=de")), "order-queue")
    assert f'data-order="{hit["id"]}"' in by_destination and f'data-order="{licence_held["id"]}"' not in by_destination
    by_reference = section(html_of(viewer.get("/orders?status=&reference=PO-2")), "order-queue")
    assert by_reference.count("data-order=") == 1 and f'data-order="{released["id"]}"' in by_reference
    from compliance.models import Order

    with app.extensions["db"].session() as s:  # as a re-check that found its held line no longer blocked leaves it
        s.get(Order, hit["id"]).needs_review = True
    flagged = section(html_of(viewer.get("/orders?needs_review=true")), "order-queue")
    assert flagged.count("data-order=") == 1 and f'data-order="{hit["id"]}"' in flagged and "needs review" in flagged
    assert f'data-order="{hit["id"]}"' not in html_of(viewer.get("/orders?needs_review=false"))


def test_a_bad_filter_is_shown_next_to_its_field(app, signed_in):
    response = signed_in("viewer").get("/orders?ship_to=Mars&status=lost&needs_review=maybe")
    assert response.status_code == 400
    html = html_of(response)
    assert re.search(r'id="ship_to-error"[^>]*>[^<]*country', html, re.I)
    assert 'id="status-error"' in html and "Must be one of" in html and 'id="needs_review-error"' in html
    assert 'id="order-queue"' not in html


def test_the_holds_queue_pages(app, cat, clerk, signed_in):
    from compliance.services.orders import create_order as create

    config = app.config["COMPLIANCE"]
    body = {**order_body(cat), "date": __import__("datetime").date(2025, 5, 1)}
    for i in range(26):
        create(app.extensions["db"], app.extensions["rulebooks"], {**body, "reference": f"PO-{i}"}, "tests",
               config.SCREENING_THRESHOLD, config.SCREENING_SAMPLE)
    viewer = signed_in("viewer")
    first = html_of(viewer.get("/orders"))
    assert "26 orders" in first and "page 1 of 2" in first and section(first, "order-queue").count("data-order=") == 25
    second = html_of(viewer.get("/orders?status=held&page=2"))
    assert section(second, "order-queue").count("data-order=") == 1 and "PO-0<" in second


# ---------- the order page ----------

def test_the_order_page_shows_lines_classification_licences_reasons_and_parties(app, cat, clerk, signed_in):
    o = create_order(app, clerk, order_body(cat, end_user={"name": "Huawei Technologies Co., Ltd.", "country": "CN",
                                                           "address": "Shenzhen"}))
    viewer = signed_in("viewer")
    html = html_of(viewer.get(f"/orders/{o['id']}"))
    lines = section(html, "order-lines")
    line = o["lines"][0]
    assert f'id="line-{line["id"]}" data-status="held"' in lines
    assert "3A090.a" in lines and "license required" in lines and "742.6" in lines
    assert "licence required" in lines and "screening hit" in lines and "84 FR 22961" in lines
    parties = section(html, "party-hits")
    assert "Blue River" not in parties and "Huawei Technologies Co., Ltd." in parties
    assert "Harbour Freight Pte Ltd" in parties and "no hits" in parties
    hit = next(p for p in o["screening"] if p["role"] == "end_user")["hits"][0]
    assert f'{hit["list"]}/{hit["source"]}' in parties and str(escape(hit["why"])) in parties
    assert "Presumption of denial" in parties
    # a viewer reads, but is offered nothing to decide
    assert "release-licence" not in html and 'id="reject"' not in html
    activity = section(html, "order-activity")
    assert "order.create" in activity and identify_key(app.extensions["db"], clerk)[0] in activity


def test_a_viewer_cannot_release_or_reject(app, cat, clerk, signed_in):
    o = create_order(app, clerk, order_body(cat))
    lic = create_licence(app, clerk)
    viewer = signed_in("viewer")
    line_id = o["lines"][0]["id"]
    response = post_release(viewer, o["id"], line_id, basis="licence", licence_id=str(lic["id"]))
    assert response.status_code == 403 and "this needs the auditor role" in html_of(response)
    token = csrf_of(viewer.get(f"/orders/{o['id']}"))
    response = viewer.post(f"/orders/{o['id']}/reject", data={"csrf_token": token, "reason": "no"})
    assert response.status_code == 403
    assert line_state(app, line_id) == "held" and licence_used(app, lic["id"]) == (0, 0.0)


def test_release_with_a_licence_chosen_from_those_that_cover_the_line(app, cat, clerk):
    o = create_order(app, clerk, order_body(cat))
    covering = create_licence(app, clerk)
    other_eccn = create_licence(app, clerk, number="L-2", eccns=["4A090.a"])
    exhausted = create_licence(app, clerk, number="L-3", quantity_limit=5)
    create_licence(app, clerk, number="L-4", destinations=["DE"])
    officer, actor = officer_client(app)
    line_id = o["lines"][0]["id"]
    html = html_of(officer.get(f"/orders/{o['id']}"))
    dropdown = section(html, f"release-{line_id}-licence_id")
    assert f'value="{covering["id"]}"' in dropdown and "L-1 · Us Inc" in dropdown
    assert f'value="{other_eccn["id"]}"' not in dropdown and f'value="{exhausted["id"]}"' not in dropdown
    why_not = section(html, f"release-{line_id}")
    assert "L-2</a>: covers neither 3A090.a nor H100-SXM" in why_not
    assert "L-3</a>: quantity left 5, the line needs 8" in why_not
    assert "L-4" not in why_not  # not a licence for CN at all

    response = post_release(officer, o["id"], line_id, basis="licence", licence_id=str(covering["id"]),
                            reason="licence on file")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"#line-{line_id}")
    html = html_of(officer.get(response.headers["Location"]))
    assert "Line 1 released." in section(html, "notice") and "the order is released" in html
    assert f'id="line-{line_id}" data-status="released"' in html and ">L-1</a>" in section(html, "order-lines")
    assert licence_used(app, covering["id"]) == (8, 200000.0)
    # the activity log records the session's key's actor: the one the API records for that key
    events = releases_recorded(app)
    assert [(e.actor, e.detail["licence"], e.reason) for e in events] == [(actor, "L-1", "licence on file")]
    assert actor in section(html, "order-activity")
    # the licence page shows the line it released and the balance left
    page = html_of(officer.get(f"/licences/{covering['id']}"))
    released = section(page, "released-lines")
    assert f'href="/orders/{o["id"]}#line-{line_id}"' in released and "PO-1" in released and actor in released
    assert section(page, "quantity-left").endswith(">2") and "800,000.00" in section(page, "value-left")


def test_a_failed_release_form_releases_nothing_and_says_why_next_to_the_field(app, cat, clerk):
    o = create_order(app, clerk, order_body(cat))
    lic = create_licence(app, clerk, number="L-2", eccns=["4A090.a"])
    small = create_licence(app, clerk, number="L-3", quantity_limit=5)
    line_id = o["lines"][0]["id"]
    officer, _ = officer_client(app)

    no_licence = post_release(officer, o["id"], line_id, basis="licence", licence_id="")
    assert no_licence.status_code == 422
    assert re.search(rf'id="release-{line_id}-licence_id-error"[^>]*>missing: give a licence_id', html_of(no_licence))

    not_covering = post_release(officer, o["id"], line_id, basis="licence", licence_id=str(lic["id"]))
    assert not_covering.status_code == 422
    html = html_of(not_covering)
    assert "licence L-2 does not cover line 1" in section(html, f"release-{line_id}-message")
    assert "covers neither 3A090.a nor H100-SXM" in section(html, f"release-{line_id}-licence_id-error")

    too_small = post_release(officer, o["id"], line_id, basis="licence", licence_id=str(small["id"]))
    assert too_small.status_code == 409
    assert "licence L-3 is exhausted for this line" in section(html_of(too_small), f"release-{line_id}-message")

    unknown = post_release(officer, o["id"], line_id, basis="licence", licence_id="999999")
    assert unknown.status_code == 404 and "no licence 999999" in section(html_of(unknown),
                                                                         f"release-{line_id}-licence_id-error")
    not_a_number = post_release(officer, o["id"], line_id, basis="licence", licence_id="L-2")
    assert not_a_number.status_code == 422 and "Not a valid integer" in html_of(not_a_number)

    no_reason = post_release(officer, o["id"], line_id, basis="override", reason="  ")
    assert no_reason.status_code == 422
    html = html_of(no_reason)
    assert re.search(rf'id="release-{line_id}-reason-error"[^>]*>missing: an override needs a reason', html)
    assert 'aria-invalid="true" aria-describedby="release-%d-reason-error"' % line_id in html

    # without the CSRF token the form is refused before anything runs
    refused = officer.post(f"/orders/{o['id']}/lines/{line_id}/release",
                           data={"basis": "override", "reason": "urgent"})
    assert refused.status_code == 400 and "CSRF" in html_of(refused)

    assert line_state(app, line_id) == "held"
    assert licence_used(app, lic["id"]) == (0, 0.0) and licence_used(app, small["id"]) == (0, 0.0)
    assert releases_recorded(app) == []


def test_four_eyes_the_creator_cannot_override_another_officer_can(app, cat, clerk):
    o = create_order(app, clerk, order_body(cat))
    line_id = o["lines"][0]["id"]
    creator = app.test_client()
    assert sign_in(creator, clerk).status_code == 302  # the same key that created the order over the API
    response = post_release(creator, o["id"], line_id, basis="override", reason="I vouch for it")
    assert response.status_code == 422
    html = html_of(response)
    assert "four eyes: the person who created the order cannot override its holds" in section(
        html, f"release-{line_id}-message")
    assert "another officer must release it" in section(html, f"release-{line_id}-override-error")
    assert "I vouch for it" in section(html, f"release-{line_id}-reason")  # what was typed is kept
    assert line_state(app, line_id) == "held" and releases_recorded(app) == []

    officer, actor = officer_client(app, "Officer Two")
    response = post_release(officer, o["id"], line_id, basis="override", reason="end use verified on site")
    assert response.status_code == 302
    html = html_of(officer.get(f"/orders/{o['id']}"))
    assert "override" in section(html, f"line-{line_id}") and "end use verified on site" in section(html, "order-lines")
    assert [(e.actor, e.detail["basis"]) for e in releases_recorded(app)] == [(actor, "override")]
    again = post_release(officer, o["id"], line_id, basis="override", reason="twice")
    assert again.status_code == 409 and "is released, not held" in section(html_of(again), "form-error")
    assert len(releases_recorded(app)) == 1


def test_reject_needs_a_reason_then_rejects_the_order(app, cat, clerk):
    o = create_order(app, clerk, order_body(cat))
    officer, actor = officer_client(app)
    token = csrf_of(officer.get(f"/orders/{o['id']}"))
    response = officer.post(f"/orders/{o['id']}/reject", data={"csrf_token": token, "reason": " "})
    assert response.status_code == 422
    assert re.search(r'id="reject-reason-error"[^>]*>Missing data for required field', html_of(response))
    assert line_state(app, o["lines"][0]["id"]) == "held"
    response = officer.post(f"/orders/{o['id']}/reject", data={"csrf_token": token, "reason": "end user unverified"})
    assert response.status_code == 302
    html = html_of(officer.get(response.headers["Location"]))
    assert "The order is rejected." in html and "os-rejected" in html and 'id="reject"' not in html
    assert "end user unverified" in section(html, "order-activity") and actor in section(html, "order-activity")
    assert line_state(app, o["lines"][0]["id"]) == "rejected"
    with app.extensions["db"].session() as s:
        assert s.scalar(select(ActivityEvent.actor).where(ActivityEvent.action == "order.reject")) == actor
    assert officer.post(f"/orders/{o['id']}/reject", data={"csrf_token": token, "reason": "again"}).status_code == 409


def test_an_unknown_order_is_a_404_page(app, signed_in):
    response = signed_in("viewer").get("/orders/424242")
    assert response.status_code == 404 and "no order 424242" in html_of(response)


# ---------- the licence register ----------

def test_the_licence_register_filters_pages_and_shows_balances(app, clerk, signed_in):
    from datetime import date

    from compliance.services.licences import create_licence as create

    db = app.extensions["db"]
    create_licence(app, clerk, number="L-CN", holder="Us Inc", quantity_limit=10)
    create_licence(app, clerk, number="L-DE", holder="Them GmbH", destinations=["DE"], value_limit=None,
                   valid_from="2020-01-01", valid_to="2021-12-31")
    for i in range(50):
        create(db, {"number": f"BULK-{i}", "holder": "Bulk Holder", "eccns": ["3A090.a"], "destinations": ["AE"],
                    "valid_from": date(2025, 1, 1), "valid_to": date(2099, 1, 1)}, "tests")
    viewer = signed_in("viewer")
    html = html_of(viewer.get("/licences"))
    assert "52 licences" in html and "page 1 of 2" in html
    rows = section(html, "licence-register")
    assert rows.count("data-licence=") == 50 and "L-CN" in rows and "BULK-49" not in rows
    assert "BULK-49" in html_of(viewer.get("/licences?page=2"))
    cn = section(html_of(viewer.get("/licences?destination=cn")), "licence-register")
    assert cn.count("data-licence=") == 1 and "0 / 10 (10)" in cn and "ls-valid" in cn
    holder = section(html_of(viewer.get("/licences?holder=gmbh")), "licence-register")
    assert holder.count("data-licence=") == 1 and "L-DE" in holder and "ls-expired" in holder
    old = section(html_of(viewer.get("/licences?valid_on=2021-06-01")), "licence-register")
    assert old.count("data-licence=") == 1 and "L-DE" in old
    bad = viewer.get("/licences?valid_on=2021-13-01&destination=Narnia")
    assert bad.status_code == 400
    assert 'id="valid_on-error"' in html_of(bad) and 'id="destination-error"' in html_of(bad)
    assert viewer.get("/licences/999999").status_code == 404


# ---------- screening lists and snapshots ----------

CSL_HEADER = ["_id", "source", "name", "addresses", "federal_register_notice", "alt_names", "license_requirement",
              "license_policy"]
EL = "Entity List (EL) - Bureau of Industry and Security"


def csl_csv(rows) -> bytes:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=CSL_HEADER)
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in CSL_HEADER})
    return out.getvalue().encode()


def test_screening_lists_their_snapshots_and_a_snapshots_delta_and_entries(app, clerk, signed_in):
    client = app.test_client()
    lists = client.get("/api/v1/screening/lists", headers=bearer(clerk)).get_json()["items"]
    csl = next(x for x in lists if x["kind"] == "csl")
    rows = [{"_id": "a1", "source": EL, "name": "Acme Photonics Co., Ltd.", "addresses": "Chengdu, CN",
             "federal_register_notice": "89 FR 1", "license_requirement": "For all items subject to the EAR"},
            {"_id": "a2", "source": EL, "name": "Nova Wafer", "addresses": "Hsinchu, TW"},
            {"_id": "a3", "source": EL, "name": ""}]  # a bad row: no name
    r = client.post(f"/api/v1/screening/lists/{csl['id']}/snapshots?format=csv&source_date=2026-11-30",
                    data=csl_csv(rows), headers={**bearer(clerk), "Content-Type": "text/csv"})
    assert r.status_code == 201, r.get_json()
    snap = r.get_json()
    viewer = signed_in("viewer")
    html = html_of(viewer.get("/screening/lists"))
    table = section(html, f"list-{csl['id']}")
    sample = csl["current"]
    assert f'href="/screening/snapshots/{snap["id"]}">v2</a>' in table and "2026-11-30" in table
    assert f'href="/screening/snapshots/{sample["id"]}">v1</a>' in table
    assert re.search(r'v2</a> <span class="badge ls-valid">in force', table)
    assert f'<td class="num removed">{sample["entries"]}</td>' in table  # the sample's entries, removed by v2

    page = html_of(viewer.get(f"/screening/snapshots/{snap['id']}"))
    assert "+2 added" in section(page, "snapshot-summary") and f"−{sample['entries']} removed" in page
    assert "name" in section(page, "row-errors")  # the row left out, with its problem
    delta = section(page, "delta-changes")
    assert "Acme Photonics Co., Ltd." in delta and "Nova Wafer" in delta
    added = section(html_of(viewer.get(f"/screening/snapshots/{snap['id']}?change=added")), "delta-changes")
    assert added.count("<tr>") == 3 and "Huawei" not in added  # header + 2
    removed = html_of(viewer.get(f"/screening/snapshots/{snap['id']}?change=removed"))
    assert f"{sample['entries']} changes" in removed and "Huawei Technologies Co., Ltd." in removed
    entries = section(html_of(viewer.get(f"/screening/snapshots/{snap['id']}?q=nova")), "snapshot-entries")
    assert "Nova Wafer" in entries and "Acme" not in entries
    on_sample = section(html_of(viewer.get(f"/screening/snapshots/{sample['id']}?q=huawei&source=el")),
                        "snapshot-entries")
    assert "Huawei Technologies Co., Ltd." in on_sample and "84 FR 22961" in on_sample
    bad = viewer.get(f"/screening/snapshots/{snap['id']}?change=renamed&entries_page=0")
    assert bad.status_code == 400
    assert 'id="change-error"' in html_of(bad) and 'id="entries_page-error"' in html_of(bad)
    assert viewer.get("/screening/snapshots/999999").status_code == 404


def test_the_layout_links_the_new_pages(app, signed_in):
    html = html_of(signed_in("viewer").get("/"))
    nav = html[html.index('<nav aria-label="main">'):html.index("</nav>")]
    for href, label in (("/orders", "Holds"), ("/licences", "Licences"), ("/screening/lists", "Lists")):
        assert f'<a href="{href}">{label}</a>' in nav


def test_register_a_licence_bad_input_next_to_the_field_and_roles(app, signed_in):
    viewer = signed_in("viewer")
    assert 'id="register-licence"' not in html_of(viewer.get("/licences"))
    token = csrf_of(viewer.get("/licences"))
    assert viewer.post("/licences", data={"csrf_token": token, "number": "X"}).status_code == 403
    officer, actor = officer_client(app)
    token = csrf_of(officer.get("/licences"))
    form = {"csrf_token": token, "number": "BIS-9", "holder": "Us Inc", "eccns": "3A090.a, 4A090.a",
            "destinations": "cn ae", "parties": "Blue River Labs; Kuala Compute Sdn Bhd", "quantity_limit": "1,000",
            "value_limit": "abc", "valid_from": "2026-01-01", "valid_to": "2025-12-31"}
    response = officer.post("/licences", data=form)
    assert response.status_code == 422
    html = html_of(response)
    assert "must be a number, got &#39;abc&#39;" in section(html, "value_limit-error")
    assert 'value="Blue River Labs; Kuala Compute Sdn Bhd"' in html  # what was typed is kept
    response = officer.post("/licences", data={**form, "value_limit": "5000000"})
    assert response.status_code == 422
    assert "must not be before valid_from" in section(html_of(response), "valid_to-error")
    missing = officer.post("/licences", data={"csrf_token": token, "number": "BIS-9", "holder": "Us Inc",
                                              "valid_from": "2026-01-01", "valid_to": "2026-12-31"})
    assert missing.status_code == 422 and "Missing data for required field" in section(html_of(missing),
                                                                                        "destinations-error")
    with app.extensions["db"].session() as s:
        assert s.scalar(select(Licence.id).where(Licence.number == "BIS-9")) is None
    response = officer.post("/licences", data={**form, "value_limit": "", "valid_to": "2026-12-31"})
    assert response.status_code == 302
    page = html_of(officer.get(response.headers["Location"]))
    terms = section(page, "licence-terms")
    assert "3A090.a, 4A090.a" in terms and "CN, AE" in terms and "Kuala Compute Sdn Bhd" in terms and actor in terms
    assert section(page, "quantity-left").endswith(">1,000") and "unlimited" in section(page, "value-left")
    again = officer.post("/licences", data={**form, "value_limit": "", "valid_to": "2026-12-31"})
    assert again.status_code == 409 and "licence BIS-9 exists" in html_of(again) \
        and "already registered" in section(html_of(again), "number-error")
