"""Rate limiting per API key (issue 12): RATE_LIMIT per key across the API, by client address without a valid
key; health, the docs, /metrics and the console are not limited; a 429 is the service's JSON error with
Retry-After and is documented; Redis-backed (shared by processes) when there is a Redis, in memory otherwise,
and a Redis that stops answering never turns into a 500.

The suite runs with RATE_LIMIT off (tests/conftest.py); these tests turn it on for their own apps. The Redis
test uses the suite's own Redis database (the redis_url fixture), never another."""
from __future__ import annotations

import secrets

import pytest

from compliance.auth import create_api_key
from compliance.config import Config, ConfigError

PATH = "/api/v1/rules/vocabulary"


def _bearer(plain: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plain}"}


def _key(app, role: str = "viewer") -> dict[str, str]:
    _, plain = create_api_key(app.extensions["db"], f"rl {role}", role, actor="tests")
    return _bearer(plain)


def test_the_limit_is_per_key_and_a_429_is_the_json_error_with_retry_after(make_app):
    app = make_app(RATE_LIMIT="3/minute")
    client = app.test_client()
    a, b = _key(app), _key(app)
    answers = [client.get(PATH, headers=a) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    over = answers[3]
    assert over.mimetype == "application/json"
    body = over.get_json()
    assert (body["code"], body["status"]) == (429, "Too Many Requests")
    assert "3 per 1 minute" in body["message"] and "this API key" in body["message"]
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.headers["X-Request-ID"]  # the request-id hooks run before the limiter: a 429 is traceable too
    # another key has its own budget; a different operation shares the key's one
    assert client.get(PATH, headers=b).status_code == 200
    assert client.get("/api/v1/rules", headers=a).status_code == 429


def test_calls_without_a_valid_key_count_per_address_so_random_keys_open_no_new_budget(make_app):
    app = make_app(RATE_LIMIT="2/minute")
    client = app.test_client()
    codes = [client.get(PATH, headers=_bearer(f"cck_{secrets.token_urlsafe(16)}")).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    r = client.get(PATH)
    assert r.status_code == 429 and "no valid API key" in r.get_json()["message"]
    other = app.test_client()  # another address has its own
    assert other.get(PATH, environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 401
    assert client.get(PATH, headers=_key(app)).status_code == 200  # a valid key counts as itself


def test_health_docs_metrics_and_the_console_are_not_limited(make_app):
    app = make_app(RATE_LIMIT="1/minute")
    client = app.test_client()
    for path in ("/api/v1/health", "/api/v1/openapi.json", "/metrics", "/sign-in"):
        codes = {client.get(path).status_code for _ in range(3)}
        assert codes == {200}, path
        assert "X-RateLimit-Limit" not in client.get(path).headers


def test_an_empty_rate_limit_turns_it_off(make_app):
    app = make_app(RATE_LIMIT="")
    client = app.test_client()
    headers = _key(app)
    assert {client.get(PATH, headers=headers).status_code for _ in range(30)} == {200}
    assert "X-RateLimit-Limit" not in client.get(PATH, headers=headers).headers


def test_the_spec_documents_the_429_on_every_operation_but_health(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    ops = [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()
           if m in ("get", "post", "put", "patch", "delete")]
    missing = [(m, p) for m, p, op in ops if "429" not in op["responses"] and p != "/api/v1/health"]
    assert missing == []
    assert "429" not in spec["paths"]["/api/v1/health"]["get"]["responses"]
    ref = spec["paths"]["/api/v1/keys"]["get"]["responses"]["429"]["$ref"]
    component = spec["components"]["responses"][ref.rsplit("/", 1)[1]]
    assert component["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert component["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_redis_backed_limits_are_shared_by_every_web_process(make_app, redis_url):
    """Two apps on one database stand for two gunicorn workers: with Redis they share each key's count. The
    first takes the broker's Redis (the production default), the second names it explicitly."""
    import redis

    first = make_app(RATE_LIMIT="3/minute", CELERY_BROKER_URL=redis_url)
    second = make_app(RATE_LIMIT="3/minute", RATE_LIMIT_STORAGE_URL=redis_url)
    assert first.config["COMPLIANCE"].rate_limit_storage_url == redis_url
    headers = _key(first)
    c1, c2 = first.test_client(), second.test_client()
    assert [c1.get(PATH, headers=headers).status_code for _ in range(2)] == [200, 200]
    assert c2.get(PATH, headers=headers).status_code == 200
    r = c2.get(PATH, headers=headers)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert c1.get(PATH, headers=headers).status_code == 429
    stored = [k.decode() for k in redis.Redis.from_url(redis_url).keys("*")]
    assert any("compliance" in k and "key:" in k for k in stored), stored


def test_a_redis_that_does_not_answer_falls_back_to_memory_not_to_a_500(make_app):
    app = make_app(RATE_LIMIT="2/minute", RATE_LIMIT_STORAGE_URL="redis://127.0.0.1:1/0")  # nothing listens on 1
    client = app.test_client()
    headers = _key(app)
    assert [client.get(PATH, headers=headers).status_code for _ in range(3)] == [200, 200, 429]


def test_memory_when_there_is_no_redis():
    embedded = Config.from_env({"CELERY_BROKER_URL": "", "RATE_LIMIT_STORAGE_URL": ""})
    assert embedded.rate_limit_storage_url == "memory://"
    assert Config.from_env({"CELERY_BROKER_URL": "amqp://mq//"}).rate_limit_storage_url == "memory://"
    assert Config.from_env(environ={}).RATE_LIMIT == "600/minute"  # on by default (the suite turns it off)


@pytest.mark.parametrize("setting,value", [
    ("RATE_LIMIT", "lots"), ("RATE_LIMIT", "0/minute"), ("RATE_LIMIT", "/minute"),
    ("RATE_LIMIT_STORAGE_URL", "ftp://example/"), ("RATE_LIMIT_STORAGE_URL", "127.0.0.1:6379"),
])
def test_a_bad_setting_is_refused_at_start_up_by_name(setting, value):
    with pytest.raises(ConfigError) as err:
        Config.from_env({setting: value})
    assert any(p.startswith(f"{setting}:") for p in err.value.problems)
