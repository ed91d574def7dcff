"""The API key and the current rule version are kept for a few seconds (services/committed.py): a change
committed through this process is seen by the very next request; one made by another process (here: a
write on a connection of its own, which no session of this process sees) within the cache's seconds."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, insert, select, update

from compliance import auth
from compliance.auth import create_api_key, revoke_api_key, rotate_api_key
from compliance.models import ApiKey, RuleVersion
from compliance.services import classification
from compliance.services.committed import Generation, TimedCache
from tests.conftest import H20

BODY = {"product": H20, "destinations": ["CN"]}
SHORT = 0.4  # seconds: the caches' lifetime in these tests (2 s in service)


@pytest.fixture
def short_caches(monkeypatch):
    monkeypatch.setattr(auth._live_keys, "seconds", SHORT)
    monkeypatch.setattr(classification._current, "seconds", SHORT)


def _bearer(plain: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plain}"}


def _other_process(db):
    """A connection no session of this process is involved in: what another worker or the CLI would write."""
    return create_engine(db.url).begin()


def _ok(client, plain: str) -> int:
    return client.post("/api/v1/classify", json=BODY, headers=_bearer(plain)).status_code


def test_the_default_lifetimes_are_short():
    assert auth.KEY_CACHE_SECONDS == auth._live_keys.seconds == 2.0
    assert classification.RULE_VERSION_CACHE_SECONDS == classification._current.seconds == 2.0


def test_a_key_is_looked_up_once_then_kept(make_app, db_url, monkeypatch):
    app = make_app(DATABASE_URL=db_url)
    _, plain = create_api_key(app.extensions["db"], "cached", "viewer")
    client = app.test_client()
    assert _ok(client, plain) == 200
    calls = []
    real = app.extensions["db"].session
    monkeypatch.setattr(app.extensions["db"], "session", lambda: calls.append(1) or real())
    for _ in range(5):
        assert _ok(client, plain) == 200
    assert calls == []  # neither the key nor the rule version was read again


def test_a_revocation_through_this_process_refuses_the_next_request(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    key, plain = create_api_key(db, "soon revoked", "viewer")
    client = app.test_client()
    assert _ok(client, plain) == 200
    assert _ok(client, plain) == 200  # now cached
    revoke_api_key(db, key.id)
    r = client.post("/api/v1/classify", json=BODY, headers=_bearer(plain))
    assert r.status_code == 401 and "unknown or revoked" in r.get_json()["message"]


def test_a_revocation_through_the_api_refuses_the_next_request(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    _, admin = create_api_key(db, "root", "admin")
    key, plain = create_api_key(db, "soon revoked", "viewer")
    client = app.test_client()
    assert _ok(client, plain) == 200
    assert client.delete(f"/api/v1/keys/{key.id}", headers=_bearer(admin)).status_code == 200
    assert _ok(client, plain) == 401


def test_a_revocation_by_another_process_takes_effect_within_the_cache_lifetime(make_app, db_url, short_caches):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    key, plain = create_api_key(db, "revoked elsewhere", "viewer")
    client = app.test_client()
    assert _ok(client, plain) == 200
    with _other_process(db) as conn:
        conn.execute(update(ApiKey.__table__).where(ApiKey.__table__.c.id == key.id)
                     .values(revoked_at=datetime.now(timezone.utc)))
    revoked_at = time.monotonic()
    statuses = []
    while time.monotonic() - revoked_at < SHORT + 0.5:
        statuses.append((time.monotonic() - revoked_at, _ok(client, plain)))
        time.sleep(0.05)
    refused = [t for t, status in statuses if status == 401]
    assert refused and refused[0] <= SHORT + 0.1, statuses  # refused within the lifetime
    assert all(status == 401 for t, status in statuses if t >= refused[0]), statuses  # and from then on


def test_an_expiry_is_checked_on_every_use_even_when_cached(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    _, plain = create_api_key(db, "short-lived", "viewer",
                              expires_at=datetime.now(timezone.utc) + timedelta(seconds=1.5))
    client = app.test_client()
    assert _ok(client, plain) == 200
    assert auth._live_keys.get(db, auth.hash_key(plain)) is not None  # kept, with its expiry
    time.sleep(1.6)
    r = client.post("/api/v1/classify", json=BODY, headers=_bearer(plain))
    assert r.status_code == 401 and r.get_json()["message"].startswith("the API key expired at ")


def test_a_rotation_through_this_process_is_seen_by_the_next_request(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    key, plain = create_api_key(db, "rotated", "viewer")
    client = app.test_client()
    assert _ok(client, plain) == 200
    rotate_api_key(db, key.id, overlap_hours=0)
    assert _ok(client, plain) == 401


def test_the_touch_of_last_used_at_by_a_lookup_keeps_the_cache(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    key, plain = create_api_key(db, "touched", "viewer")
    before = auth.KEYS_CHANGED.value
    assert auth.resolve_key(db, plain)[2] == key.id  # a miss: read, and last_used_at set
    with db.session() as s:
        assert s.get(ApiKey, key.id).last_used_at is not None
    assert auth.KEYS_CHANGED.value == before  # the touch is not a change of the key
    assert auth._live_keys.get(db, auth.hash_key(plain)) is not None


def _version(client, headers) -> int:
    r = client.post("/api/v1/classify", json=BODY, headers=headers)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["rule_version"]


def _copy_of_current(conn_or_session, number_offset: int = 1) -> dict:
    row = conn_or_session.execute(select(RuleVersion.__table__).order_by(RuleVersion.__table__.c.number.desc())
                                  .limit(1)).mappings().first()
    return {"number": row["number"] + number_offset, "revision": row["revision"], "parent_id": row["id"],
            "author": "tests", "reason": "republished", "content": row["content"],
            "created_at": datetime.now(timezone.utc)}


def test_a_publish_through_this_process_is_seen_by_the_next_classification(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    _, plain = create_api_key(db, "v", "viewer")
    client = app.test_client()
    first = _version(client, _bearer(plain))
    assert _version(client, _bearer(plain)) == first  # cached
    with db.session() as s:  # an ORM insert, as publishing does
        s.add(RuleVersion(**_copy_of_current(s)))
    assert _version(client, _bearer(plain)) == first + 1


def test_a_publish_by_another_process_is_seen_within_the_cache_lifetime(make_app, db_url, short_caches):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    _, plain = create_api_key(db, "v", "viewer")
    client = app.test_client()
    first = _version(client, _bearer(plain))
    with _other_process(db) as conn:
        conn.execute(insert(RuleVersion.__table__).values(**_copy_of_current(conn)))
    published = time.monotonic()
    seen = None
    while time.monotonic() - published < SHORT + 0.5:
        if _version(client, _bearer(plain)) == first + 1:
            seen = time.monotonic() - published
            break
        time.sleep(0.05)
    assert seen is not None and seen <= SHORT + 0.1
    assert _version(client, _bearer(plain)) == first + 1


def test_a_rolled_back_change_drops_nothing(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    db = app.extensions["db"]
    before = classification.RULE_VERSIONS_CHANGED.value
    with pytest.raises(RuntimeError):
        with db.session() as s:
            s.add(RuleVersion(**_copy_of_current(s)))
            s.flush()
            raise RuntimeError("abandoned")
    assert classification.RULE_VERSIONS_CHANGED.value == before
    with db.session() as s:
        s.add(RuleVersion(**_copy_of_current(s)))
    assert classification.RULE_VERSIONS_CHANGED.value == before + 1


class _Owner:
    pass


def test_a_lookup_that_started_before_a_change_does_not_store_its_answer():
    gen = Generation(RuleVersion)
    cache: TimedCache[str] = TimedCache(60, gen)
    owner = _Owner()
    token = cache.begin()
    gen.bump()  # a change committed while the lookup ran
    cache.put(owner, "k", "old answer", token)
    assert cache.get(owner, "k") is None
    cache.put(owner, "k", "new answer", cache.begin())
    assert cache.get(owner, "k") == "new answer"
    gen.bump()
    assert cache.get(owner, "k") is None


def test_entries_expire_and_owners_are_separate():
    cache: TimedCache[int] = TimedCache(0.2, Generation(RuleVersion))
    a, b = _Owner(), _Owner()
    cache.put(a, "k", 1, cache.begin())
    assert cache.get(a, "k") == 1 and cache.get(b, "k") is None
    time.sleep(0.25)
    assert cache.get(a, "k") is None


def test_concurrent_requests_share_the_cache(make_app, db_url):
    app = make_app(DATABASE_URL=db_url)
    _, plain = create_api_key(app.extensions["db"], "many", "viewer")
    statuses: list[int] = []

    def run():
        c = app.test_client()
        statuses.extend(_ok(c, plain) for _ in range(5))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 20
