"""docker-compose.yml names real entry points, queues and files (no Docker needed to check that)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
APP_SERVICES = {name: s for name, s in SERVICES.items() if s.get("build") == "."}
CELERY_SERVICES = {name: s["command"] for name, s in APP_SERVICES.items() if s["command"][0] == "celery"}


@pytest.fixture(scope="module")
def entry_points(tmp_path_factory):
    """Import compliance.wsgi and worker in a fresh interpreter (as gunicorn and celery would)."""
    tmp = tmp_path_factory.mktemp("compose")
    script = """
import json, flask, celery
import compliance.wsgi, worker
conf = worker.app.conf
print(json.dumps({
    "wsgi_is_flask": isinstance(compliance.wsgi.app, flask.Flask),
    "worker_is_celery": isinstance(worker.app, celery.Celery),
    "route_queues": sorted({r["queue"] for r in conf.task_routes.values()}),
    "default_queue": conf.task_default_queue,
    "beat_tasks": sorted(e["task"] for e in conf.beat_schedule.values()),
    "registered": sorted(worker.app.tasks.keys()),
    "url_rules": sorted(r.rule for r in compliance.wsgi.app.url_map.iter_rules()),
}))
"""
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp / 'c.db'}", SAMPLE_CATALOGUE="", CELERY_BROKER_URL="",
               LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_compose_file_parses_with_the_expected_services():
    assert {"web", "worker-audits", "worker-reevaluation", "beat", "redis", "postgres"} <= set(SERVICES)
    for name, service in APP_SERVICES.items():
        assert isinstance(service["command"], list) and service["command"], name
        assert service["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert service["environment"]["CELERY_BROKER_URL"].startswith("redis://redis:6379")


def test_web_runs_gunicorn_on_compliance_wsgi_app_which_is_a_flask_app(entry_points):
    command = SERVICES["web"]["command"]
    assert command[0] == "gunicorn" and command[-1] == "compliance.wsgi:app"
    assert entry_points["wsgi_is_flask"]


def test_the_web_healthcheck_calls_a_real_route_that_needs_no_key(entry_points):
    check = " ".join(SERVICES["web"]["healthcheck"]["test"])
    path = re.search(r"http://127\.0\.0\.1:8000(/[^'\"]+)", check).group(1)
    assert path in entry_points["url_rules"]


def test_celery_services_use_the_worker_module_whose_app_is_celery(entry_points):
    assert CELERY_SERVICES
    for name, command in CELERY_SERVICES.items():
        assert command[1:3] == ["-A", "worker"], name
    assert entry_points["worker_is_celery"]


def test_the_worker_queues_are_exactly_the_routed_queues_plus_celery(entry_points):
    consumed: set[str] = set()
    for command in CELERY_SERVICES.values():
        if command[3] == "worker":
            consumed |= set(command[command.index("-Q") + 1].split(","))
    assert consumed == set(entry_points["route_queues"]) | {entry_points["default_queue"]}
    assert entry_points["default_queue"] == "celery"


def test_beat_schedules_only_registered_tasks(entry_points):
    assert "beat" in [c[3] for c in CELERY_SERVICES.values()]
    assert entry_points["beat_tasks"]
    assert set(entry_points["beat_tasks"]) <= set(entry_points["registered"])


def test_every_celery_subcommand_is_installed_in_the_image():
    """`celery flower` needs the flower package: the image must install an extra that provides it."""
    builtin = {"worker", "beat", "inspect", "control", "status", "events", "purge", "result", "shell"}
    installs = re.findall(r"pip install[^\n]*?-e\s+['\"]?\.(\[[^\]]*\])?", DOCKERFILE)
    assert installs, "the Dockerfile must pip install the project"
    extras = {e.strip() for group in installs for e in group.strip("[]").split(",") if e.strip()}
    provided = {re.split(r"[<>=\[ ]", req)[0].lower() for extra in extras
                for req in PYPROJECT["project"]["optional-dependencies"].get(extra, [])}
    for name, command in CELERY_SERVICES.items():
        if command[3] not in builtin:
            assert command[3] in provided, f"{name}: `celery {command[3]}` needs the {command[3]!r} package"


def test_the_dockerfile_copies_what_the_image_needs():
    assert (ROOT / "Dockerfile").exists()
    copied = set()
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY "):
            copied |= set(line.split()[1:-1])
    for needed in ("pyproject.toml", "README.md", "compliance", "worker", "rules"):
        assert needed in copied, needed
        assert (ROOT / needed).exists(), needed
    assert "RULES_DIR=/app/rules" in DOCKERFILE
    assert "compliance.wsgi:app" in DOCKERFILE


def test_the_package_data_includes_the_migrations_and_sample_catalogue():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]["compliance"]
    assert "data/*.json" in data and "migrations/versions/*.py" in data


def test_a_migrate_step_runs_before_web_and_workers():
    """create_app() does not migrate: compose runs `compliance db upgrade` once, and every other app
    service starts only after it completed."""
    assert SERVICES["migrate"]["command"] == ["compliance", "db", "upgrade"]
    assert PYPROJECT["project"]["scripts"]["compliance"].startswith("compliance.cli:")
    for name, service in APP_SERVICES.items():
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
def test_the_prometheus_example_scrapes_the_web_service_s_metrics_route(entry_points):
    prom = SERVICES["prometheus"]
    mount = prom["volumes"][0].split(":")
    config = yaml.safe_load((ROOT / mount[0]).read_text())
    job = config["scrape_configs"][0]
    assert job["metrics_path"] in entry_points["url_rules"]
    host, port = job["static_configs"][0]["targets"][0].split(":")
    assert host == "web" and f"{port}:{port}" in SERVICES["web"]["ports"]
