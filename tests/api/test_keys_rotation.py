"""API keys expire and rotate (issue 12): an expired key is a 401 naming when it expired; rotation gives the
holder a new key (same name and role, shown once) while the old one works for the overlap, both recorded in
the activity log; the CLI does the same through the same function."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from compliance.auth import create_api_key, revoke_api_key, rotate_api_key
from compliance.engine.errors import Conflict
from compliance.models import ActivityEvent, ApiKey
from tests.api.conftest import error_text
from tests.conftest import H20
from tests.console.conftest import sign_in

BODY = {"product": H20}


def _bearer(plain: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plain}"}


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _expire_now(db, key_id: int, ago: timedelta = timedelta(seconds=1)) -> None:
    """Time passes: the key's expiry is moved into the past."""
    with db.session() as s:
        s.execute(update(ApiKey).where(ApiKey.id == key_id).values(expires_at=datetime.now(timezone.utc) - ago))


def _events(db, action: str) -> list[ActivityEvent]:
    with db.session() as s:
        rows = list(s.scalars(select(ActivityEvent).where(ActivityEvent.action == action).order_by(ActivityEvent.id)))
        for r in rows:
            s.expunge(r)
        return rows


@pytest.fixture
def admin(app):
    key, plain = create_api_key(app.extensions["db"], "root", "admin", actor="tests")
    return key, _bearer(plain)


def test_a_key_created_with_expires_in_days_lists_its_expiry_and_works_until_then(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    _, admin = create_api_key(app.extensions["db"], "root", "admin", actor="tests")
    client = app.test_client()
    before = datetime.now(timezone.utc)
    r = client.post("/api/v1/keys", json={"name": "ci", "role": "viewer", "expires_in_days": 30}, headers=_bearer(admin))
    assert r.status_code == 201, r.get_json()
    created = r.get_json()
    expires = _parse(created["expires_at"])
    assert before + timedelta(days=30) <= expires <= datetime.now(timezone.utc) + timedelta(days=30)
    assert created["state"] == "active" and created["key"].startswith(created["prefix"])
    assert client.post("/api/v1/classify", json=BODY, headers=_bearer(created["key"])).status_code == 200
    listed = {k["id"]: k for k in client.get("/api/v1/keys", headers=_bearer(admin)).get_json()["items"]}
    assert listed[created["id"]]["expires_at"] == created["expires_at"] and "key" not in listed[created["id"]]

    _expire_now(app.extensions["db"], created["id"])
    r = client.post("/api/v1/classify", json=BODY, headers=_bearer(created["key"]))
    assert r.status_code == 401
    assert r.get_json()["message"].startswith("the API key expired at ")
    listed = {k["id"]: k for k in client.get("/api/v1/keys", headers=_bearer(admin)).get_json()["items"]}
    assert listed[created["id"]]["state"] == "expired"


def test_an_explicit_expires_at_without_offset_is_utc(app, client, admin):
    at = (datetime.now(timezone.utc) + timedelta(days=2)).replace(microsecond=0)
    r = client.post("/api/v1/keys", json={"name": "x", "role": "auditor", "expires_at": at.strftime("%Y-%m-%dT%H:%M:%S")},
                    headers=admin[1])
    assert r.status_code == 201
    assert _parse(r.get_json()["expires_at"]) == at


@pytest.mark.parametrize("body,field", [
    ({"expires_in_days": 0}, "expires_in_days"),
    ({"expires_in_days": 3651}, "expires_in_days"),
    ({"expires_in_days": "soon"}, "expires_in_days"),
    ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ({"expires_at": "not a time"}, "expires_at"),
    ({"expires_at": "2999-01-01T00:00:00Z"}, "expires_at"),
    ({"expires_in_days": 3, "expires_at": "2099-01-01T00:00:00Z"}, "expires_at"),
])
def test_a_bad_expiry_is_a_422_naming_the_field(client, admin, body, field):
    r = client.post("/api/v1/keys", json={"name": "x", "role": "viewer", **body}, headers=admin[1])
    assert r.status_code == 422
    assert field in r.get_json()["errors"]["json"], error_text(r)


def test_an_expired_key_is_refused_by_the_console_too(app):
    db = app.extensions["db"]
    key, plain = create_api_key(db, "console user", "viewer", expires_at=datetime.now(timezone.utc) + timedelta(hours=1))
    client = app.test_client()
    assert sign_in(client, plain).status_code == 302
    assert client.get("/").status_code == 200
    _expire_now(db, key.id)
    r = client.get("/")  # the session ends with its key: back to the sign-in page
    assert r.status_code == 302 and "/sign-in" in r.headers["Location"]
    r = sign_in(app.test_client(), plain)
    assert r.status_code == 401 and "the API key is unknown or revoked" in r.get_data(as_text=True)


def test_rotation_gives_the_holder_a_new_key_and_the_old_one_works_for_the_overlap(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    admin_key, admin = create_api_key(db, "root", "admin", actor="tests")
    old, old_plain = create_api_key(db, "billing service", "auditor")
    client = app.test_client()
    before = datetime.now(timezone.utc)
    r = client.post(f"/api/v1/keys/{old.id}/rotate", json={"overlap_hours": 6}, headers=_bearer(admin))
    assert r.status_code == 201, r.get_json()
    new = r.get_json()
    assert (new["name"], new["role"], new["rotated_from"], new["state"]) == ("billing service", "auditor", old.id, "active")
    assert new["expires_at"] is None  # the old key never expired: neither does its successor
    assert new["key"] != old_plain and new["key"].startswith(new["prefix"])
    previous = new["previous"]
    assert previous["id"] == old.id and previous["replaced_by"] == new["id"] and previous["state"] == "active"
    assert before + timedelta(hours=6) <= _parse(previous["expires_at"]) <= datetime.now(timezone.utc) + timedelta(hours=6)

    # both keys work during the overlap, acting as the same holder
    for plain in (old_plain, new["key"]):
        assert client.get("/api/v1/rules", headers=_bearer(plain)).status_code == 200
    listed = {k["id"]: k for k in client.get("/api/v1/keys", headers=_bearer(admin)).get_json()["items"]}
    assert listed[old.id]["replaced_by"] == new["id"] and listed[new["id"]]["rotated_from"] == old.id

    # after the overlap the old key is a 401 that points to its replacement; the new one still works
    _expire_now(db, old.id)
    r = client.get("/api/v1/rules", headers=_bearer(old_plain))
    assert r.status_code == 401
    assert "expired at" in r.get_json()["message"] and f"key {new['id']}" in r.get_json()["message"]
    assert client.get("/api/v1/rules", headers=_bearer(new["key"])).status_code == 200

    # recorded in the activity log, as the admin key that did it
    actor = f"root ({admin_key.prefix}…)"
    rotated = _events(db, "api_key.rotate")
    assert [(e.actor, e.target) for e in rotated] == [(actor, f"api_key:{old.id}")]
    assert rotated[0].detail["replaced_by"] == new["id"] and rotated[0].detail["overlap_hours"] == 6
    created = [e for e in _events(db, "api_key.create") if e.target == f"api_key:{new['id']}"]
    assert [(e.actor, e.detail["rotated_from"]) for e in created] == [(actor, old.id)]


def test_rotation_without_a_body_uses_the_default_overlap(client, app, admin):
    old, _ = create_api_key(app.extensions["db"], "svc", "viewer")
    before = datetime.now(timezone.utc)
    r = client.post(f"/api/v1/keys/{old.id}/rotate", headers=admin[1])
    assert r.status_code == 201
    expires = _parse(r.get_json()["previous"]["expires_at"])
    assert before + timedelta(hours=24) <= expires <= datetime.now(timezone.utc) + timedelta(hours=24)


def test_the_new_key_inherits_the_old_lifetime_and_the_overlap_never_extends_the_old_key(app, client, admin):
    db = app.extensions["db"]
    soon = datetime.now(timezone.utc) + timedelta(hours=2)
    old, _ = create_api_key(db, "svc", "viewer", expires_at=soon)
    r = client.post(f"/api/v1/keys/{old.id}/rotate", json={"overlap_hours": 48}, headers=admin[1])
    body = r.get_json()
    assert r.status_code == 201
    assert abs(_parse(body["previous"]["expires_at"]) - soon) < timedelta(seconds=1)  # not 48 h later
    lifetime = soon - old.created_at
    assert abs(_parse(body["expires_at"]) - (datetime.now(timezone.utc) + lifetime)) < timedelta(seconds=5)

    # an explicit lifetime for the new key wins
    r = client.post(f"/api/v1/keys/{body['id']}/rotate", json={"expires_in_days": 7}, headers=admin[1])
    assert r.status_code == 201
    assert abs(_parse(r.get_json()["expires_at"]) - (datetime.now(timezone.utc) + timedelta(days=7))) < timedelta(seconds=5)


def test_overlap_zero_ends_the_old_key_at_once(app, client, admin):
    old, old_plain = create_api_key(app.extensions["db"], "svc", "viewer")
    assert client.post(f"/api/v1/keys/{old.id}/rotate", json={"overlap_hours": 0}, headers=admin[1]).status_code == 201
    r = client.get("/api/v1/rules", headers=_bearer(old_plain))
    assert r.status_code == 401 and "expired at" in r.get_json()["message"]


@pytest.mark.parametrize("body,field", [
    ({"overlap_hours": -1}, "overlap_hours"),
    ({"overlap_hours": 721}, "overlap_hours"),
    ({"overlap_hours": "a day"}, "overlap_hours"),
    ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ({"expires_in_days": 1, "expires_at": "2099-01-01T00:00:00Z"}, "expires_at"),
    ({"name": "someone else"}, "name"),
])
def test_a_bad_rotation_is_a_422_naming_the_field(app, client, admin, body, field):
    old, _ = create_api_key(app.extensions["db"], "svc", "viewer")
    r = client.post(f"/api/v1/keys/{old.id}/rotate", json=body, headers=admin[1])
    assert r.status_code == 422
    assert field in r.get_json()["errors"]["json"], error_text(r)


def test_rotating_an_unknown_revoked_or_already_rotated_key_is_refused(app, client, admin):
    db = app.extensions["db"]
    assert client.post("/api/v1/keys/999999/rotate", headers=admin[1]).status_code == 404
    revoked, _ = create_api_key(db, "gone", "viewer")
    revoke_api_key(db, revoked.id)
    r = client.post(f"/api/v1/keys/{revoked.id}/rotate", headers=admin[1])
    assert r.status_code == 409 and "revoked" in r.get_json()["message"]
    old, _ = create_api_key(db, "svc", "viewer")
    first = client.post(f"/api/v1/keys/{old.id}/rotate", headers=admin[1]).get_json()
    r = client.post(f"/api/v1/keys/{old.id}/rotate", headers=admin[1])
    assert r.status_code == 409 and f"replaced by key {first['id']}" in r.get_json()["message"]


def test_only_an_admin_rotates(app, client, auditor_headers):
    old, _ = create_api_key(app.extensions["db"], "svc", "viewer")
    assert client.post(f"/api/v1/keys/{old.id}/rotate").status_code == 401
    assert client.post(f"/api/v1/keys/{old.id}/rotate", headers=auditor_headers).status_code == 403


def test_two_rotations_of_one_key_at_once_make_one_successor(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    old, _ = create_api_key(db, "svc", "viewer")
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def rotate():
        barrier.wait()
        try:
            rotate_api_key(db, old.id, actor="race")
            outcomes.append("rotated")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=rotate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["conflict"] * 3 + ["rotated"]
    with db.session() as s:
        successors = s.scalars(select(ApiKey.id).where(ApiKey.rotated_from_id == old.id)).all()
        assert len(successors) == 1
        assert s.get(ApiKey, old.id).replaced_by_id == successors[0]
    assert len(_events(db, "api_key.rotate")) == 1


def test_the_migration_matches_the_model(make_app, db_url):
    """0014 adds exactly the columns and the unique index the model declares (foreign-key names aside:
    SQLite's ADD COLUMN ... REFERENCES has none)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from compliance.models import Base

    app = make_app(DATABASE_URL=db_url)
    with app.extensions["db"].engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    flat = [d for d in diffs if isinstance(d, tuple)] + [x for d in diffs if isinstance(d, list) for x in d]
    about_keys = [d for d in flat if "api_keys" in repr(d) and d[0] not in ("add_fk", "remove_fk")]
    assert about_keys == []
    if db_url.startswith("postgresql"):
        assert [d for d in flat if "api_keys" in repr(d)] == []


def test_the_migration_goes_down_and_up_again_keeping_keys_and_console_sessions(make_app, db_url):
    from alembic import command
    from sqlalchemy import func

    from compliance.auth import open_console_session
    from compliance.db import alembic_config
    from compliance.models import ConsoleSession

    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    key, plain = create_api_key(db, "kept", "viewer")
    rotate_api_key(db, key.id)
    assert open_console_session(db, plain) is not None
    db.dispose()
    url = app.config["COMPLIANCE"].DATABASE_URL
    command.downgrade(alembic_config(url), "0013_product_licence_columns")
    command.upgrade(alembic_config(url), "head")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 2
        assert s.scalar(select(func.count()).select_from(ConsoleSession)) == 1
        assert s.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.rotated_from_id.is_not(None))) == 0


# ---------- the command line: the same function, the same activity log ----------

@pytest.fixture
def cli(db_url, monkeypatch, schema_templates):
    from compliance.config import Config

    for k, v in {"DATABASE_URL": db_url, "SAMPLE_CATALOGUE": "", "CELERY_BROKER_URL": "", "LOG_LEVEL": "WARNING"}.items():
        monkeypatch.setenv(k, v)
    config = Config.from_env()
    schema_templates.provision(config.DATABASE_URL, config.RULES_DIR)
    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 keeps stderr apart already
        runner = CliRunner()
    yield runner
    from compliance.db import Database

    Database(config.DATABASE_URL).dispose()


def test_cli_create_rotate_and_list(cli):
    from compliance.cli import main
    from compliance.db import Database

    r = cli.invoke(main, ["keys", "create", "--name", "etl", "--role", "auditor", "--expires-in-days", "10", "--json"])
    assert r.exit_code == 0, r.output
    created = json.loads(r.stdout)
    assert created["expires_at"] and created["state"] == "active"

    r = cli.invoke(main, ["keys", "rotate", str(created["id"]), "--overlap-hours", "2", "--actor", "alice", "--json"])
    assert r.exit_code == 0, r.output
    rotated = json.loads(r.stdout)
    assert (rotated["name"], rotated["role"], rotated["rotated_from"]) == ("etl", "auditor", created["id"])
    assert rotated["key"].startswith(rotated["prefix"]) and rotated["previous"]["replaced_by"] == rotated["id"]
    hours = (_parse(rotated["previous"]["expires_at"]) - datetime.now(timezone.utc)).total_seconds() / 3600
    assert 1.9 < hours <= 2

    r = cli.invoke(main, ["keys", "list"])
    header = r.stdout.splitlines()[0].split()
    assert header[:5] == ["ID", "PREFIX", "ROLE", "STATE", "EXPIRES"]
    rows = {row["id"]: row for row in json.loads(cli.invoke(main, ["keys", "list", "--json"]).stdout)}
    assert rows[created["id"]]["replaced_by"] == rotated["id"] and "key" not in rows[created["id"]]

    db = Database(__import__("os").environ["DATABASE_URL"])
    try:
        events = _events(db, "api_key.rotate")
    finally:
        db.dispose()
    assert [(e.actor, e.target, e.detail["overlap_hours"]) for e in events] == [("alice", f"api_key:{created['id']}", 2)]


def test_cli_rotation_errors_are_one_line(cli):
    from compliance.cli import main

    r = cli.invoke(main, ["keys", "rotate", "424242"])
    assert r.exit_code == 1 and "no API key 424242" in r.stderr and "Traceback" not in r.output
    created = json.loads(cli.invoke(main, ["keys", "create", "--name", "n", "--role", "viewer", "--json"]).stdout)
    r = cli.invoke(main, ["keys", "rotate", str(created["id"]), "--overlap-hours", "1000"])
    assert r.exit_code != 0 and "overlap_hours" in r.stderr
    r = cli.invoke(main, ["keys", "create", "--name", "n", "--role", "viewer", "--expires-at", "yesterday"])
    assert r.exit_code == 2 and "--expires-at" in r.stderr


def test_each_request_is_identified_by_its_own_key_even_in_one_app_context(app, admin, viewer_headers):
    """The key lookup is done once per request (the rate limiter and require_role share it) and kept on the
    request: an app context that outlives requests (g with it) must not carry one caller's identity to the next."""
    client = app.test_client()
    with app.app_context():
        assert client.get("/api/v1/keys", headers=admin[1]).status_code == 200
        assert client.get("/api/v1/keys", headers=viewer_headers).status_code == 403
        assert client.get("/api/v1/keys").status_code == 401
        assert client.get("/api/v1/keys", headers=admin[1]).status_code == 200
