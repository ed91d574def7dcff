"""gunicorn, as production runs it (compliance.gunicorn_conf), answers what it refuses itself in the API's JSON.

A real gunicorn master and worker on a free loopback port, an embedded SQLite database: a request line over
the limit is 414, too many headers 431, a malformed request line 400, each with the JSON error body
(code, status, message) instead of gunicorn's HTML page; requests within the limits reach the app.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (gunicorn closes the connection after an error)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                headers = dict(line.split(": ", 1) for line in head.decode("latin1").split("\r\n")[1:])
                if len(body) >= int(headers.get("Content-Length", 10**9)):
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gunicorn")
    port = _free_port()
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp / 'c.db'}", SAMPLE_CATALOGUE="", CELERY_BROKER_URL="",
               LOG_LEVEL="WARNING", RATE_LIMIT="")
    subprocess.run([sys.executable, "-m", "compliance.cli", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    proc = subprocess.Popen([str(GUNICORN), "-c", "python:compliance.gunicorn_conf", "--bind", f"127.0.0.1:{port}",
                             "--workers", "1", "--threads", "2", "compliance.wsgi:app"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            status, _, _ = _raw(port, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if status == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("gunicorn did not start: " + proc.stderr.read().decode()[-2000:])
        time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(timeout=30)


def _json_error(headers, body, status):
    assert headers["content-type"] == "application/json"
    doc = json.loads(body)
    assert doc["code"] == status and doc["status"] and doc["message"]
    return doc


def test_a_request_line_over_the_limit_is_a_json_414(server):
    path = "/api/v1/changes?q=" + "x" * 9000
    status, headers, body = _raw(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 414
    doc = _json_error(headers, body, 414)
    assert doc["status"] == "URI Too Long" and "8190" in doc["message"]


def test_a_long_request_line_within_the_limit_reaches_the_app(server):
    path = "/api/v1/changes?q=" + "x" * 7000  # over gunicorn's default 4094, under the configured 8190
    status, headers, body = _raw(server, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert status == 401  # the app answered: no API key
    assert json.loads(body)["code"] == 401


def test_too_many_headers_is_a_json_431(server):
    fields = "".join(f"X-H{i}: v\r\n" for i in range(150))
    status, headers, body = _raw(server, f"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
    assert status == 431
    _json_error(headers, body, 431)


def test_a_malformed_request_line_is_a_json_400(server):
    status, headers, body = _raw(server, b"GET\r\n\r\n")
    assert status == 400
    _json_error(headers, body, 400)


def test_every_gunicorn_command_in_the_repository_uses_the_config():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    web = compose["services"]["web"]["command"]
    assert web[:3] == ["gunicorn", "-c", "python:compliance.gunicorn_conf"]
    assert "python:compliance.gunicorn_conf" in (ROOT / "Dockerfile").read_text()
    readme = (ROOT / "README.md").read_text()
    for line in readme.splitlines():
        if "bin/gunicorn " in line:
            assert "-c python:compliance.gunicorn_conf" in line, line
