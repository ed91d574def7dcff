"""Sign-in with an API key exchanged for a session cookie; CSRF; sign-out; roles and actor as in the API."""
from __future__ import annotations

from sqlalchemy import select

from compliance.models import ConsoleSession

from .conftest import csrf_of, new_key, sign_in


def test_pages_need_a_session(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=/")


def test_unknown_key_is_named_next_to_the_field(client):
    response = sign_in(client, "cck_not-a-key")
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert 'class="field-error"' in html and "the API key is unknown or revoked" in html
    assert "cc_session" not in response.headers.get("Set-Cookie", "")


def test_empty_key_is_named(client):
    response = sign_in(client, "  ")
    assert response.status_code == 401
    assert "missing: paste an API key" in response.get_data(as_text=True)


def test_session_cookie_is_httponly_lax_and_stores_only_a_hash(app, client):
    response = sign_in(client, new_key(app, "viewer"))
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("cc_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    token = cookie.split(";")[0].split("=", 1)[1]
    with app.extensions["db"].session() as s:
        stored = s.scalars(select(ConsoleSession.token_hash)).all()
    assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64
    assert client.get("/").status_code == 200


def test_cookie_is_secure_over_https(app):
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    page = client.get("/sign-in", base_url="https://localhost")
    response = client.post("/sign-in", base_url="https://localhost",
                           data={"api_key": new_key(app, "viewer"), "csrf_token": csrf_of(page)})
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_forms_without_the_csrf_token_are_refused(app, client):
    key = new_key(app, "viewer")
    response = client.post("/sign-in", data={"api_key": key})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    client.get("/sign-in")
    response = client.post("/sign-in", data={"api_key": key, "csrf_token": "forged"})
    assert response.status_code == 400
    assert sign_in(client, key).status_code == 302
    # signed in: the session's own token is needed (the pre-sign-in one no longer counts)
    assert client.post("/sign-out", data={}).status_code == 400
    assert client.get("/").status_code == 200


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(app, client):
    sign_in(client, new_key(app, "viewer"))
    cookie = client.get_cookie("cc_session").value
    token = csrf_of(client.get("/"))
    response = client.post("/sign-out", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in"
    other = app.test_client()
    other.set_cookie("cc_session", cookie)
    assert other.get("/").status_code == 302


def test_revoking_the_key_ends_its_sessions(app, client, admin_headers):
    from compliance.auth import revoke_api_key
    from compliance.models import ApiKey

    key = new_key(app, "viewer", "to revoke")
    sign_in(client, key)
    assert client.get("/").status_code == 200
    with app.extensions["db"].session() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.name == "to revoke"))
    revoke_api_key(app.extensions["db"], key_id)
    assert client.get("/").status_code == 302


def test_next_is_only_a_local_path(app, client):
    key = new_key(app, "viewer")
    for target, expected in (("//evil.example/x", "/"), ("https://evil.example/", "/"), ("/changes?x=1", "/changes?x=1")):
        client.delete_cookie("cc_session")
        assert sign_in(client, key, target).headers["Location"] == expected


def test_the_console_names_the_same_actor_as_the_api(app, client):
    from compliance.auth import identify_key

    key = new_key(app, "auditor", "alice")
    actor, role = identify_key(app.extensions["db"], key)
    sign_in(client, key)
    html = client.get("/").get_data(as_text=True)
    assert actor == f"alice ({key[:12]}…)" and role == "auditor"
    assert actor in html and "role-auditor" in html


def test_auth_disabled_is_the_local_admin_without_sign_in(make_app):
    app = make_app(AUTH_MODE="disabled")
    client = app.test_client()
    response = client.get("/")
    assert response.status_code == 200 and "local" in response.get_data(as_text=True)
    assert client.get("/sign-in").status_code == 302
