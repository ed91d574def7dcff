"""Issue 12 item 9: webhooks cannot be aimed at this machine, the cloud metadata service or a private
network (SSRF), at sign-up and again at delivery, and redirects are never followed. No test here sends
traffic off this machine: every host is an IP literal or `localhost`, and receivers listen on loopback."""
from __future__ import annotations

import http.server
import threading

import pytest

from compliance.services import webhooks as wh

REFUSED = ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:9/x", "http://localhost:9/x",
           "http://[::1]:9/x", "http://0.0.0.0:9/x", "http://2130706433:9/x", "http://10.1.2.3/x",
           "http://192.168.0.10/x", "http://[::ffff:127.0.0.1]:9/x", "http://224.0.0.1/x", "http://[fe80::1]/x"]


@pytest.fixture
def strict_app(make_app, monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "")
    return make_app()


@pytest.mark.parametrize("url", REFUSED)
def test_a_private_loopback_or_metadata_target_is_refused_at_sign_up(strict_app, headers_for, url):
    client = strict_app.test_client()
    r = client.post("/api/v1/webhooks", json={"url": url}, headers=headers_for(strict_app, "admin"))
    assert r.status_code == 422, r.get_data(as_text=True)
    body = r.get_json()
    assert "deliveries may not go there" in body["errors"]["url"][0]
    assert "WEBHOOK_ALLOWED_NETWORKS" in body["message"]
    listed = client.get("/api/v1/webhooks", headers=headers_for(strict_app, "admin")).get_json()["items"]
    assert listed == []


def test_an_unresolvable_host_is_refused_without_leaving_the_machine(strict_app, headers_for):
    r = strict_app.test_client().post("/api/v1/webhooks", json={"url": "http://no-such-host.invalid/x"},
                                      headers=headers_for(strict_app, "admin"))
    assert r.status_code == 422 and "does not resolve" in r.get_json()["message"]


def test_an_allowed_network_admits_a_private_receiver(make_app, headers_for, monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/8, 127.0.0.1")
    app = make_app()
    client, h = app.test_client(), headers_for(app, "admin")
    for url in ("http://10.1.2.3/x", "http://127.0.0.1:9/x"):
        assert client.post("/api/v1/webhooks", json={"url": url}, headers=h).status_code == 201
    assert client.post("/api/v1/webhooks", json={"url": "http://192.168.0.10/x"}, headers=h).status_code == 422


def test_a_bad_allowed_network_setting_is_a_configuration_error():
    from compliance.config import Config, ConfigError

    with pytest.raises(ConfigError, match="WEBHOOK_ALLOWED_NETWORKS: not an IP address or CIDR block: 'intranet'"):
        Config.from_env({"WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/8,intranet"})


class _Receiver:
    """A loopback HTTP server answering every POST with `status` (and a Location for redirects)."""

    def __init__(self, status: int):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                hits.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _delivery(app, url: str) -> int:
    from compliance.models import WebhookDelivery, WebhookSubscription

    db = app.extensions["db"]
    with db.session() as s:
        sub = WebhookSubscription(url=url, secret="0123456789abcdef0", events=["ping"], active=True, created_by="t")
        s.add(sub)
        s.flush()
        d = WebhookDelivery(subscription_id=sub.id, event="ping", status="pending", attempts=0,
                            payload={"id": "evt_test", "event": "ping", "data": {}})
        s.add(d)
        s.flush()
        return d.id


def test_a_target_re_pointed_after_sign_up_is_refused_at_delivery_and_not_contacted(strict_app):
    """A subscription row whose host is now private (DNS re-pointed) fails at once, with no request sent."""
    receiver = _Receiver(200)
    try:
        delivery_id = _delivery(strict_app, receiver.url)
        status, retry = wh.attempt_delivery(strict_app.extensions["db"], delivery_id, 5, 6)
        assert (status, retry) == ("failed", None)
        assert receiver.hits == []
        from compliance.models import WebhookDelivery

        with strict_app.extensions["db"].session() as s:
            d = s.get(WebhookDelivery, delivery_id)
            assert d.last_error.startswith("refused: host '127.0.0.1' resolves to 127.0.0.1, a loopback address")
    finally:
        receiver.close()


def test_a_redirect_is_an_unsuccessful_attempt_and_is_not_followed(make_app):
    app = make_app()  # the suite's loopback allowance (tests/conftest.py) lets the receiver be reached
    receiver = _Receiver(302)
    try:
        delivery_id = _delivery(app, receiver.url)
        status, retry = wh.attempt_delivery(app.extensions["db"], delivery_id, 5, 6, 0,
                                            app.config["COMPLIANCE"].webhook_allowed_networks)
        assert status == "pending" and retry is not None
        assert receiver.hits == ["/hook"]  # once, and never /elsewhere
        from compliance.models import WebhookDelivery

        with app.extensions["db"].session() as s:
            assert s.get(WebhookDelivery, delivery_id).last_error == "HTTP 302 (redirect not followed)"
    finally:
        receiver.close()


def test_a_delivery_to_an_allowed_receiver_is_signed_and_delivered(make_app):
    app = make_app()
    receiver = _Receiver(204)
    try:
        delivery_id = _delivery(app, receiver.url)
        status, _ = wh.attempt_delivery(app.extensions["db"], delivery_id, 5, 6, 0,
                                        app.config["COMPLIANCE"].webhook_allowed_networks)
        assert status == "delivered" and receiver.hits == ["/hook"]
    finally:
        receiver.close()
