"""Optimistic concurrency on rule drafts (issue 12): every draft carries an ETag that changes on every write;
PUT, PATCH, DELETE and publish take If-Match, a stale one is 412 (the JSON error body names If-Match and the
current ETag) and nothing is applied; DRAFT_IF_MATCH=required makes a missing one 428. On PostgreSQL two
concurrent writes with the same If-Match: exactly one wins."""
from __future__ import annotations

import copy
import threading

import pytest
from sqlalchemy import func, select

from compliance.models import ActivityEvent, RuleDraft, RuleVersion

from .conftest import error_text

A1 = "us-2023-10.3a090.a"


def _op(value) -> list[dict]:
    return [{"op": "set_threshold", "rule_id": A1, "path": "when.all[1].any[0]", "value": value}]


def _value(draft: dict):
    rule = next(r for p in draft["content"]["packs"] for r in p.get("rules") or [] if r["id"] == A1)
    return rule["when"]["all"][1]["any"][0]["value"]


@pytest.fixture
def app(make_app, db_url):
    return make_app(DATABASE_URL=db_url)


@pytest.fixture
def admin(app, headers_for):
    return headers_for(app, "admin")


def _new_draft(client, admin) -> tuple[int, str]:
    created = client.post("/api/v1/rules/drafts", json={"title": "etag"}, headers=admin)
    assert created.status_code == 201
    assert created.headers["ETag"] == created.json["etag"]
    return created.json["id"], created.headers["ETag"]


def _events(app, draft_id: int) -> int:
    with app.extensions["db"].session() as s:
        return s.scalar(select(func.count()).select_from(ActivityEvent).where(ActivityEvent.target == f"draft:{draft_id}"))


def test_every_write_changes_the_etag_and_a_matching_if_match_proceeds(app, admin):
    client = app.test_client()
    draft_id, created = _new_draft(client, admin)
    got = client.get(f"/api/v1/rules/drafts/{draft_id}", headers=admin)
    assert got.status_code == 200
    assert got.headers["ETag"] == got.json["etag"] == created
    assert created.startswith('"') and created.endswith('"')

    patched = client.patch(f"/api/v1/rules/drafts/{draft_id}", json={"ops": _op(4810)},
                           headers={**admin, "If-Match": created})
    assert patched.status_code == 200, patched.json
    assert patched.headers["ETag"] == patched.json["etag"] != created
    assert _value(patched.json) == 4810

    put = client.put(f"/api/v1/rules/drafts/{draft_id}", json={"content": patched.json["content"]},
                     headers={**admin, "If-Match": patched.headers["ETag"]})
    assert put.status_code == 200, put.json
    assert put.headers["ETag"] not in (created, patched.headers["ETag"])
    listed = {d["id"]: d["etag"] for d in client.get("/api/v1/rules/drafts", headers=admin).json["items"]}
    assert listed[draft_id] == put.headers["ETag"]

    deleted = client.delete(f"/api/v1/rules/drafts/{draft_id}", headers={**admin, "If-Match": put.headers["ETag"]})
    assert deleted.status_code == 200 and deleted.json["status"] == "discarded"
    assert deleted.headers["ETag"] == deleted.json["etag"] != put.headers["ETag"]


def test_a_stale_if_match_is_412_naming_if_match_and_the_current_etag_and_nothing_is_applied(app, admin):
    client = app.test_client()
    draft_id, first = _new_draft(client, admin)
    # Admin A edits the draft; admin B still holds the ETag from before.
    a = client.patch(f"/api/v1/rules/drafts/{draft_id}", json={"ops": _op(4810)}, headers={**admin, "If-Match": first})
    assert a.status_code == 200
    current = a.headers["ETag"]
    events = _events(app, draft_id)
    url = f"/api/v1/rules/drafts/{draft_id}"
    stale = {**admin, "If-Match": first}
    for response in (client.patch(url, json={"ops": _op(4820)}, headers=stale),
                     client.put(url, json={"content": a.json["content"] | {"packs": []}}, headers=stale),
                     client.delete(url, headers=stale),
                     client.post(f"{url}/publish", json={"reason": "B", "confirm": True}, headers=stale)):
        assert response.status_code == 412, (response.request.method, response.json)
        body = response.get_json()
        assert body["code"] == 412 and body["status"] == "Precondition Failed"
        assert "If-Match" in body["errors"] and current in body["errors"]["If-Match"][0]
        assert current in body["message"] and "changed by someone else" in body["message"]
        assert response.headers["ETag"] == current
    after = client.get(url, headers=admin)
    assert after.json["status"] == "open" and _value(after.json) == 4810 and after.headers["ETag"] == current
    assert _events(app, draft_id) == events  # no edit, replace, discard or publish was recorded
    with app.extensions["db"].session() as s:
        assert s.scalar(select(func.count()).select_from(RuleVersion)) == 1


@pytest.mark.parametrize("header, matches", [
    ("*", True), ("{current}", True), ('"nope", {current}', True), ("{bare}", True),
    ("W/{current}", False), ('"nope"', False), ("", False), ('"', False), ("\u00e9t\u00e9", False),
])
def test_if_match_is_compared_strongly_per_rfc_9110(app, admin, header, matches):
    client = app.test_client()
    draft_id, current = _new_draft(client, admin)
    value = header.format(current=current, bare=current.strip('"'))
    response = client.patch(f"/api/v1/rules/drafts/{draft_id}", json={"ops": _op(4810)},
                            headers={**admin, "If-Match": value.encode("utf-8").decode("latin-1")})
    assert response.status_code == (200 if matches else 412), response.json


def test_without_if_match_existing_clients_keep_working(app, admin):
    client = app.test_client()
    draft_id, first = _new_draft(client, admin)
    response = client.patch(f"/api/v1/rules/drafts/{draft_id}", json={"ops": _op(4810)}, headers=admin)
    assert response.status_code == 200 and response.headers["ETag"] != first


def test_draft_if_match_required_makes_a_missing_header_428_naming_it(make_app, headers_for):
    app = make_app(DRAFT_IF_MATCH="required")
    admin = headers_for(app, "admin")
    client = app.test_client()
    draft_id, etag = _new_draft(client, admin)
    url = f"/api/v1/rules/drafts/{draft_id}"
    for response in (client.patch(url, json={"ops": _op(4810)}, headers=admin),
                     client.put(url, json={"content": {"packs": []}}, headers=admin),
                     client.delete(url, headers=admin),
                     client.post(f"{url}/publish", json={"reason": "r", "confirm": True}, headers=admin)):
        assert response.status_code == 428, response.json
        assert "If-Match" in response.json["errors"] and etag in error_text(response)
    assert client.get(url, headers=admin).json["etag"] == etag
    ok = client.patch(url, json={"ops": _op(4810)}, headers={**admin, "If-Match": etag})
    assert ok.status_code == 200
    published = client.post(f"{url}/publish", json={"reason": "r", "confirm": True},
                            headers={**admin, "If-Match": ok.headers["ETag"]})
    assert published.status_code == 201, published.json
    assert client.get(url, headers=admin).json["status"] == "published"


def test_a_bad_draft_if_match_setting_is_refused_at_start_up():
    from compliance.config import Config, ConfigError

    with pytest.raises(ConfigError, match="DRAFT_IF_MATCH"):
        Config.from_env({"DRAFT_IF_MATCH": "sometimes", "DATABASE_URL": "sqlite://"})


def test_the_spec_documents_the_etag_header_if_match_412_and_428(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    item = spec["paths"]["/api/v1/rules/drafts/{draft_id}"]
    assert "ETag" in item["get"]["responses"]["200"]["headers"]
    for method in ("patch", "put", "delete"):
        op = item[method]
        assert {"412", "428"} <= set(op["responses"]), method
        assert "ETag" in op["responses"]["200"]["headers"], method
        assert any(p["in"] == "header" and p["name"] == "If-Match" for p in op["parameters"]), method
    publish = spec["paths"]["/api/v1/rules/drafts/{draft_id}/publish"]["post"]
    assert "412" in publish["responses"] and any(p["name"] == "If-Match" for p in publish["parameters"])
    assert "ETag" in spec["paths"]["/api/v1/rules/drafts"]["post"]["responses"]["201"]["headers"]


def test_an_edit_that_lands_between_the_check_and_the_write_makes_the_write_412(make_app, headers_for, monkeypatch):
    """The conditional UPDATE itself (SQLite: no FOR UPDATE): admin B's edit commits after admin A's request
    read the draft and checked its If-Match, before A's UPDATE; A's UPDATE matches no row and is a 412."""
    from compliance.services import rule_drafts

    app = make_app()
    admin = headers_for(app, "admin")
    client = app.test_client()
    draft_id, etag = _new_draft(client, admin)
    db = app.extensions["db"]
    real = rule_drafts.normalise
    interleaved: list[dict] = []
    calls: list[int] = []

    def normalise_after_someone_else_wrote(content):
        if not interleaved:
            interleaved.append({})  # the inner edit's own normalise call goes straight through
            interleaved[0] = rule_drafts.apply_edits(db, draft_id, _op(4820 + len(calls)), "admin B")
        return real(content)

    monkeypatch.setattr(rule_drafts, "normalise", normalise_after_someone_else_wrote)
    a = client.patch(f"/api/v1/rules/drafts/{draft_id}", json={"ops": _op(4810)}, headers={**admin, "If-Match": etag})
    monkeypatch.setattr(rule_drafts, "normalise", real)
    assert a.status_code == 412, a.json
    assert a.headers["ETag"] == interleaved[0]["etag"] != etag
    assert _value(client.get(f"/api/v1/rules/drafts/{draft_id}", headers=admin).json) == 4820
    # Without If-Match the same race is a 409 (try again), never a silent overwrite.
    interleaved.clear()
    calls.append(1)
    monkeypatch.setattr(rule_drafts, "normalise", normalise_after_someone_else_wrote)
    b = client.patch(f"/api/v1/rules/drafts/{draft_id}", json={"ops": _op(4830)}, headers=admin)
    monkeypatch.setattr(rule_drafts, "normalise", real)
    assert b.status_code == 409, b.json
    assert "changed by someone else" in b.json["message"]
    assert _value(client.get(f"/api/v1/rules/drafts/{draft_id}", headers=admin).json) == 4821


def test_an_edit_while_publishing_makes_the_publish_fail_and_nothing_is_published(make_app, headers_for, monkeypatch):
    """What is published is what was validated: an edit that lands during the publish's preview is a 412."""
    from compliance.services import reevaluation, rule_drafts

    app = make_app()
    admin = headers_for(app, "admin")
    client = app.test_client()
    draft_id, etag = _new_draft(client, admin)
    edited = client.patch(f"/api/v1/rules/drafts/{draft_id}", json={"ops": _op(4810)},
                          headers={**admin, "If-Match": etag})
    real = reevaluation.impact_preview

    def preview_while_someone_edits(*args, **kwargs):
        rule_drafts.apply_edits(app.extensions["db"], draft_id, _op(4820), "admin B")
        return real(*args, **kwargs)

    monkeypatch.setattr(reevaluation, "impact_preview", preview_while_someone_edits)
    response = client.post(f"/api/v1/rules/drafts/{draft_id}/publish", json={"reason": "A"},
                           headers={**admin, "If-Match": edited.headers["ETag"]})
    assert response.status_code == 412, response.json
    after = client.get(f"/api/v1/rules/drafts/{draft_id}", headers=admin)
    assert response.headers["ETag"] == after.headers["ETag"] and after.json["status"] == "open"
    with app.extensions["db"].session() as s:
        assert s.scalar(select(func.count()).select_from(RuleVersion)) == 1


def _race(app, admins, draft_id: int, etag: str, content: dict, method: str) -> dict[int, object]:
    """Admins 0 and 1 write the draft at the same moment, each with the same If-Match and its own value."""
    barrier = threading.Barrier(2)
    results: dict[int, object] = {}

    def write(i: int) -> None:
        client = app.test_client()
        headers = {**admins[i], "If-Match": etag}
        url = f"/api/v1/rules/drafts/{draft_id}"
        mine = copy.deepcopy(content)
        rule = next(r for p in mine["packs"] for r in p.get("rules") or [] if r["id"] == A1)
        rule["when"]["all"][1]["any"][0]["value"] = 4810 + i
        barrier.wait()
        if method == "patch":
            results[i] = client.patch(url, json={"ops": _op(4810 + i)}, headers=headers)
        else:
            results[i] = client.put(url, json={"content": mine}, headers=headers)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.parametrize("method", ["patch", "put"])
def test_two_concurrent_writes_with_the_same_if_match_on_postgresql_exactly_one_wins(make_app, pg_url, headers_for,
                                                                                      method):
    app = make_app(DATABASE_URL=pg_url)
    admins = [headers_for(app, "admin"), headers_for(app, "admin")]
    client = app.test_client()
    for round_ in range(3):
        draft_id, etag = _new_draft(client, admins[0])
        content = client.get(f"/api/v1/rules/drafts/{draft_id}", headers=admins[0]).json["content"]
        results = _race(app, admins, draft_id, etag, content, method)
        codes = sorted(r.status_code for r in results.values())
        assert codes == [200, 412], (round_, [r.get_json() for r in results.values()])
        winner = next(i for i, r in results.items() if r.status_code == 200)
        loser = results[1 - winner]
        final = client.get(f"/api/v1/rules/drafts/{draft_id}", headers=admins[0])
        assert _value(final.json) == 4810 + winner
        assert final.headers["ETag"] == results[winner].headers["ETag"] == loser.headers["ETag"]
        assert final.headers["ETag"] in loser.json["errors"]["If-Match"][0]
        with app.extensions["db"].session() as s:
            assert s.get(RuleDraft, draft_id).row_version == int(etag.strip('"')) + 1
            edits = s.scalar(select(func.count()).select_from(ActivityEvent).where(
                ActivityEvent.target == f"draft:{draft_id}", ActivityEvent.action.like("rules.draft.%"),
                ActivityEvent.action != "rules.draft.create"))
            assert edits == 1
