"""Admin rule editing through the API: drafts, edit operations, validation, preview, publish, 409 on a
stale draft, rollback, diff, export and the audit trail (embedded mode; SQLite and PostgreSQL)."""
from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta

import pytest

from compliance.engine import Rulebook, load_rulebook_content
from compliance.tasks import wait_for_embedded_jobs
from tests.rulehelpers import H20_APRIL_2025_OVERLAY, ROOT, make_scenario_catalogue, rules_without_h20_packs

# RTX 4090 D: 588.35 dense FP8 TOPS x 8 = TPP 4706.8, not a datacenter part: outside 3A090 only because
# TPP < 4800. Lowering both 4800 thresholds of 3A090.a to 4705 catches it and nothing else of the catalogue.
# D:5's dated entries (Cambodia, Nicaragua, Cyprus) as bundled: the packs' own cases test them.
D5_DATED = [dict(sorted(m.items())) for m in load_rulebook_content(ROOT / "rules")["country_groups"]["groups"]["D:5"]["members"]
            if isinstance(m, dict)]
LOWER_A1 = [
    {"op": "set_threshold", "rule_id": "us-2023-10.3a090.a", "path": "when.all[1].any[0]", "value": 4705},
    {"op": "set_threshold", "rule_id": "us-2023-10.3a090.a", "path": "when.all[2].any[1].value", "value": 4705},
]


@pytest.fixture
def rules_app(make_app, tmp_path, db_url):
    app = make_app(DATABASE_URL=db_url, RULES_DIR=rules_without_h20_packs(tmp_path))
    make_scenario_catalogue(app)
    return app


@pytest.fixture
def admin(rules_app, headers_for):
    return headers_for(rules_app, "admin")


def _draft(client, headers, ops=None):
    d = client.post("/api/v1/rules/drafts", json={"title": "t"}, headers=headers)
    assert d.status_code == 201, d.json
    assert d.headers["Location"] == f"/api/v1/rules/drafts/{d.json['id']}"
    if ops:
        r = client.patch(f"/api/v1/rules/drafts/{d.json['id']}", json={"ops": ops}, headers=headers)
        assert r.status_code == 200, r.json
        return r.json
    return d.json


def test_threshold_change_preview_lists_the_changed_products_with_counts_per_transition(rules_app, admin):
    client = rules_app.test_client()
    draft = _draft(client, admin, LOWER_A1)
    assert draft["validation"]["valid"], draft["validation"]
    rule = next(r for p in draft["content"]["packs"] for r in p["rules"] if r["id"] == "us-2023-10.3a090.a")
    assert rule["when"]["all"][1]["any"][0]["value"] == 4705 and rule["when"]["all"][2]["any"][1]["value"] == 4705
    prev = client.post(f"/api/v1/rules/drafts/{draft['id']}/preview", json={"as_of": "2025-03-01"}, headers=admin)
    assert prev.status_code == 200, prev.json
    cat = prev.json["catalogues"][0]
    assert prev.json["total_products"] == 3 and prev.json["changed_products"] == 1
    assert {i["sku"] for i in cat["items"]} == {"RTX-4090-D"}
    assert {i["destination"] for i in cat["items"]} == set(cat["destinations"])  # the ECCN changed everywhere
    for item in cat["items"]:
        assert item["from"]["eccn"] is None and item["to"]["eccn"] == "3A090.a"
        assert "us-2023-10.3a090.a" in item["cause_rule_ids"]
    cn = [t for t in cat["transitions"] if t["destination"] == "CN"]
    assert cn == [{"destination": "CN", "count": 1,
                   "from": {"eccn": None, "status": "not_controlled", "requirement": "no_license_required",
                            "review_policy": None},
                   "to": {"eccn": "3A090.a", "status": "controlled", "requirement": "license_required",
                          "review_policy": "presumption_of_denial"}}]
    assert sum(t["count"] for t in cat["transitions"]) == cat["changed_rows"] == len(cat["destinations"])
    # Nothing was written by the preview.
    assert client.get("/api/v1/rules/versions", headers=admin).json["items"][0]["number"] == 1


def test_bad_edit_operations_are_rejected_together_naming_each_field_and_nothing_is_applied(rules_app, admin):
    client = rules_app.test_client()
    draft = _draft(client, admin)
    r = client.patch(f"/api/v1/rules/drafts/{draft['id']}", headers=admin, json={"ops": [
        LOWER_A1[0],
        {"op": "set_threshold", "rule_id": "no-such-rule", "path": "when.all[0]", "value": 1},
        {"op": "end_rule", "rule_id": "us-2023-10.3a090.a", "effective_to": "not-a-date"},
        {"op": "add_overlay", "id": "x", "title": "x", "citation": "c", "effective_from": "2025-01-01",
         "products": ["h20"], "destinations": ["ZZ"]},
        {"op": "set_threshold", "rule_id": "us-2023-10.3a090.a", "path": "when.all[9]", "value": 1},
    ]})
    assert r.status_code == 422, r.json
    assert set(r.json["errors"]) == {"ops[1].rule_id", "ops[2].effective_to", "ops[3].destinations", "ops[4].path"}
    again = client.get(f"/api/v1/rules/drafts/{draft['id']}", headers=admin).json
    rule = next(r for p in again["content"]["packs"] for r in p["rules"] if r["id"] == "us-2023-10.3a090.a")
    assert rule["when"]["all"][1]["any"][0]["value"] == 4800
    unknown_op = client.patch(f"/api/v1/rules/drafts/{draft['id']}", json={"ops": [{"op": "frobnicate"}]}, headers=admin)
    assert unknown_op.status_code == 422 and "ops" in unknown_op.json["message"]


def test_validation_reports_every_schema_error_and_failing_pack_test_and_publish_refuses_with_422(rules_app, admin):
    client = rules_app.test_client()
    draft = _draft(client, admin)
    content = draft["content"]
    content["packs"][0]["rules"][0]["effective_from"] = "2024-13-45"
    content["packs"][1]["rules"][0]["when"] = {"metric": "tpp", "op": "~", "value": 1}
    put = client.put(f"/api/v1/rules/drafts/{draft['id']}", json={"content": content}, headers=admin)
    assert put.status_code == 200 and put.json["validation"]["valid"] is False
    v = client.post(f"/api/v1/rules/drafts/{draft['id']}/validate", headers=admin).json
    assert v["valid"] is False and len(v["errors"]) >= 2
    assert any(".effective_from" in e and e.startswith("packs[0]") for e in v["errors"])
    assert any(e.startswith("packs[1]") and ".when" in e for e in v["errors"])
    pub = client.post(f"/api/v1/rules/drafts/{draft['id']}/publish", json={"reason": "r", "confirm": True}, headers=admin)
    assert pub.status_code == 422 and pub.json["errors"] == v["errors"]

    # Schema-valid but breaking the packs' own test cases: every failing case is reported with its path.
    d2 = _draft(client, admin, [{"op": "end_rule", "rule_id": "us-2023-10.licence.d5-macau", "effective_to": "2024-12-31"}])
    assert d2["validation"]["valid"] is False
    assert d2["validation"]["tests"]["failed"] == len(d2["validation"]["errors"]) == 7
    assert all(e.startswith(("packs(us-2026-01-china-review-policy).tests[",
                             "packs(us-2023-10-advanced-computing-rewrite).tests[Cambodia was a D:5"))
               for e in d2["validation"]["errors"])
    pub2 = client.post(f"/api/v1/rules/drafts/{d2['id']}/publish", json={"reason": "r", "confirm": True}, headers=admin)
    assert pub2.status_code == 422 and len(pub2.json["errors"]) == 7
    assert client.get(f"/api/v1/rules/drafts/{d2['id']}", headers=admin).json["status"] == "open"


def test_publish_from_a_stale_draft_is_409_and_the_draft_stays_open(rules_app, admin):
    client = rules_app.test_client()
    first = _draft(client, admin, [H20_APRIL_2025_OVERLAY])
    second = _draft(client, admin, LOWER_A1)
    ok = client.post(f"/api/v1/rules/drafts/{first['id']}/publish",
                     json={"reason": "H20 letter", "as_of": "2025-04-09", "confirm": True}, headers=admin)
    assert ok.status_code == 201 and ok.json["number"] == 2 and ok.json["parent"] == 1
    assert ok.json["run_id"] and "impact" not in ok.json  # confirmed: no dry run
    assert ok.headers["Location"] == "/api/v1/rules/versions/2"
    assert client.get(ok.headers["Location"], headers=admin).json["revision"] == ok.json["revision"]
    stale = client.post(f"/api/v1/rules/drafts/{second['id']}/publish", json={"reason": "x", "confirm": True}, headers=admin)
    assert stale.status_code == 409 and "base_version" in stale.json["errors"]
    assert client.get(f"/api/v1/rules/drafts/{second['id']}", headers=admin).json["status"] == "open"
    assert [v["number"] for v in client.get("/api/v1/rules/versions", headers=admin).json["items"]] == [2, 1]
    published = client.get(f"/api/v1/rules/drafts/{first['id']}", headers=admin).json
    assert (published["status"], published["published_version"]) == ("published", 2)
    listed = {x["id"]: x["published_version"] for x in client.get("/api/v1/rules/drafts", headers=admin).json["items"]}
    assert listed == {first["id"]: 2, second["id"]: None}
    # A published draft is frozen.
    frozen = client.patch(f"/api/v1/rules/drafts/{first['id']}", json={"ops": LOWER_A1}, headers=admin)
    assert frozen.status_code == 409
    wait_for_embedded_jobs(rules_app)


def test_rollback_diff_export_and_audit_trail(rules_app, admin):
    client = rules_app.test_client()
    d = _draft(client, admin, [H20_APRIL_2025_OVERLAY] + LOWER_A1 + [
        {"op": "set_country_group", "group": "D:5", "members": ["AF", "BY", "CN", "RU", "KP"] + D5_DATED}])
    assert d["validation"]["valid"], d["validation"]
    v2 = client.post(f"/api/v1/rules/drafts/{d['id']}/publish",
                     json={"reason": "letter + threshold", "as_of": "2025-04-09", "confirm": True}, headers=admin).json
    wait_for_embedded_jobs(rules_app)
    diff = client.get("/api/v1/rules/diff?from=1&to=2", headers=admin).json
    assert diff["rules"]["added"] == [{"id": "h20-letter-2025-04", "pack": "overlay-h20-letter-2025-04"}]
    assert diff["rules"]["removed"] == [] and diff["packs"]["added"] == ["overlay-h20-letter-2025-04"]
    changed = {c["id"]: c["changes"] for c in diff["rules"]["changed"]}
    assert changed == {"us-2023-10.3a090.a": [
        {"field": "when.all[1].any[0].value", "from": 4800, "to": 4705},
        {"field": "when.all[2].any[1].value", "from": 4800, "to": 4705}]}
    d5 = next(g for g in diff["country_groups"] if g["group"] == "D:5")
    assert d5["change"] == "changed" and d5["added"] == [] and "IR" in d5["removed"] and "VE" in d5["removed"]

    back = client.post("/api/v1/rules/versions/1/rollback", json={"reason": "undo", "confirm": True}, headers=admin)
    assert back.status_code == 201, back.json
    assert back.headers["Location"] == "/api/v1/rules/versions/3"
    wait_for_embedded_jobs(rules_app)
    versions = client.get("/api/v1/rules/versions", headers=admin).json["items"]
    assert [(v["number"], v["parent"]) for v in versions] == [(3, 2), (2, 1), (1, None)]
    # The runs are one paginated list too, newest first: the rollback's run, then the publish's.
    runs = client.get("/api/v1/rules/reevaluations", headers=admin)
    assert [(r["from_version"], r["to_version"], r["status"]) for r in runs.json["items"]] == [(2, 3, "done"), (1, 2, "done")]
    assert (runs.json["page"], runs.json["per_page"], runs.json["total"]) == (1, 50, 2)
    older = client.get("/api/v1/rules/reevaluations?per_page=1&page=2", headers=admin)
    assert older.json["items"] == runs.json["items"][1:] and older.json["pages"] == 2
    assert json.loads(older.headers["X-Pagination"])["previous_page"] == 1
    assert client.get("/api/v1/rules/reevaluations?per_page=0", headers=admin).status_code == 422
    assert versions[0]["revision"] == versions[2]["revision"] != versions[1]["revision"]
    undo = client.get("/api/v1/rules/diff?from=2&to=3", headers=admin).json
    assert undo["rules"]["removed"] == [{"id": "h20-letter-2025-04", "pack": "overlay-h20-letter-2025-04"}]

    z = client.get("/api/v1/rules/versions/2/export", headers=admin)
    assert z.status_code == 200 and z.mimetype == "application/zip"
    out = rules_app.config["COMPLIANCE"].RULES_DIR + "-export"
    zipfile.ZipFile(io.BytesIO(z.data)).extractall(out)
    assert Rulebook(load_rulebook_content(f"{out}/rules-v2")).revision == v2["revision"]
    y = client.get("/api/v1/rules/versions/2/export?format=yaml", headers=admin)
    assert y.mimetype == "application/yaml" and b"h20-letter-2025-04" in y.data
    assert client.get("/api/v1/rules/versions/9/export", headers=admin).status_code == 404
    assert client.get("/api/v1/rules/diff?from=1", headers=admin).status_code == 422

    trail = client.get("/api/v1/rules/audit-trail?action=rules.*", headers=admin).json["items"]
    actions = [(e["action"], e["reason"]) for e in trail]
    assert actions[:2] == [("rules.rollback", "undo"), ("rules.publish", "letter + threshold")]
    assert trail[0]["detail"]["rollback_of"] == 1 and trail[0]["detail"]["number"] == 3
    assert all(e["actor"].startswith("test admin") for e in trail)
    # Every timestamp carries its UTC offset, read back or just written, on SQLite as on PostgreSQL.
    run = client.get(f"/api/v1/rules/reevaluations/{v2['run_id']}", headers=admin).json
    draft = client.get(f"/api/v1/rules/drafts/{d['id']}", headers=admin).json
    stamps = [e["at"] for e in trail] + [v["created_at"] for v in versions] + [v2["created_at"], back.json["created_at"]] \
        + [run[k] for k in ("created_at", "started_at", "finished_at")] + [draft["created_at"], draft["updated_at"]]
    assert all(datetime.fromisoformat(t).utcoffset() == timedelta(0) for t in stamps), stamps
    # The activity log is one paginated list: a page body and the X-Pagination header agree.
    second = client.get("/api/v1/rules/audit-trail?action=rules.*&per_page=1&page=2", headers=admin)
    pagination = json.loads(second.headers["X-Pagination"])
    assert second.json["items"] == trail[1:2]
    assert (second.json["page"], second.json["per_page"], second.json["total"], second.json["pages"]) == \
        (2, 1, len(trail), len(trail))
    assert pagination == {"total": len(trail), "total_pages": len(trail), "first_page": 1,
                          "last_page": len(trail), "page": 2, "previous_page": 1, "next_page": 3}


def test_publish_needs_a_reason_and_rejects_a_no_op(rules_app, admin):
    client = rules_app.test_client()
    d = _draft(client, admin)
    no_reason = client.post(f"/api/v1/rules/drafts/{d['id']}/publish", json={"confirm": True}, headers=admin)
    assert no_reason.status_code == 422 and "reason" in no_reason.json["message"]
    noop = client.post(f"/api/v1/rules/drafts/{d['id']}/publish", json={"reason": "x"}, headers=admin)
    assert noop.status_code == 422 and "content" in noop.json["errors"]
    bad_date = client.post(f"/api/v1/rules/drafts/{d['id']}/publish", json={"reason": "x", "as_of": "2025-02-30"},
                           headers=admin)
    assert bad_date.status_code == 422 and "as_of" in bad_date.json["message"]
    assert client.post("/api/v1/rules/drafts/999/publish", json={"reason": "x"}, headers=admin).status_code == 404


@pytest.mark.parametrize("content", [
    {}, {"packs": "x"}, {"packs": [1, None]},
    {"packs": [{"rules": [{"when": {"all": "x"}}]}], "country_groups": {}},
    {"packs": [], "country_groups": {"groups": {"D:5": {"members": [1]}}}},
], ids=["empty", "packs-not-list", "packs-not-mappings", "bad-when", "member-not-code"])
def test_malformed_content_is_reported_never_a_500(rules_app, admin, content):
    client = rules_app.test_client()
    d = _draft(client, admin)
    put = client.put(f"/api/v1/rules/drafts/{d['id']}", json={"content": content}, headers=admin)
    assert put.status_code == 200 and put.json["validation"]["valid"] is False and put.json["validation"]["errors"]
    for path, body in (("preview", {}), ("publish", {"reason": "x", "confirm": True})):
        r = client.post(f"/api/v1/rules/drafts/{d['id']}/{path}", json=body, headers=admin)
        assert r.status_code == 422 and r.json["errors"], (path, r.json)


def test_a_draft_from_an_unknown_version_names_the_field(rules_app, admin):
    r = rules_app.test_client().post("/api/v1/rules/drafts", json={"base_version": 9}, headers=admin)
    assert r.status_code == 422 and "base_version" in r.json["errors"]


@pytest.mark.parametrize("op, field", [
    ({"op": "set_country_group", "group": ["D:5"], "members": ["CN"]}, "ops[0].group"),
    ({"op": "set_country_group", "group": 5, "members": ["CN"]}, "ops[0].group"),
    ({"op": "set_country_group", "group": "D:5", "members": [1, None]}, "ops[0].members"),
    ({"op": "set_country_group", "group": "D:5", "members": [{"country": ["CN"]}]}, "ops[0].members"),
])
def test_a_set_country_group_op_with_wrong_types_is_422_naming_the_field(rules_app, admin, op, field):
    client = rules_app.test_client()
    d = _draft(client, admin)
    r = client.patch(f"/api/v1/rules/drafts/{d['id']}", json={"ops": [op]}, headers=admin)
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert field in r.get_json()["errors"], r.get_json()
