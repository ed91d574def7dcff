"""Shared fixtures. Real services: PostgreSQL and Redis on 127.0.0.1 are started if they are not
answering; under CI=true a service that still does not answer fails the run instead of skipping."""
from __future__ import annotations

import fcntl
import hashlib
import os
import queue
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import zlib
from pathlib import Path

import pytest

CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
START = {
    "postgresql": (5432, "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"),
    "redis": (6379, 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'),
}
_available: dict[str, bool] = {}
# The suite's webhook receivers listen on this machine's loopback, which deliveries may not reach by
# default (SSRF); the suite allows it, as a deployment allows its private receivers. Worker subprocesses
# inherit it. tests/api/test_webhook_targets.py checks the refusal with this cleared.
os.environ.setdefault("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
# Rate limiting is on by default (RATE_LIMIT=600/minute per key), which the fuzz and load tests would trip over
# with one key; the suite runs without it, and tests/api/test_rate_limit.py turns it on for its own apps.
os.environ.setdefault("RATE_LIMIT", "")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def ensure_service(name: str) -> bool:
    """Is the service answering? Start it once if not."""
    if name in _available:
        return _available[name]
    port, command = START[name]
    if not _port_open(port):
        subprocess.run(command, shell=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _port_open(port):
            time.sleep(0.2)
    _available[name] = _port_open(port)
    return _available[name]


def require_service(name: str) -> None:
    if ensure_service(name):
        return
    message = f"{name} is not answering on 127.0.0.1:{START[name][0]} and could not be started"
    if CI:
        pytest.fail(message + " (CI=true: a missing service is a failure)")
    pytest.skip(message)


def pytest_sessionstart(session):
    for name in START:
        ensure_service(name)


def pytest_configure(config):
    _install_spec_memo()


# ---------- order: the long tests first, one on each pytest-xdist worker ----------
#
# The wall time of a parallel run is bounded by its slowest worker. With `--dist worksteal` (pyproject's
# addopts) worker i first gets the i-th contiguous slice of the collection and an idle worker steals from
# the end of another's queue, so a long test placed at the head of a slice starts at once and never ends
# the run late. The table holds the long tests measured with --durations (seconds on a loaded 2-core box,
# docs/performance.md "Test suite (issue 8)"); they are dealt to the slices longest first (LPT). Tests that
# use the Redis database (redis_url) take turns on its lock, so they all go to one slice, run one after
# the other by one worker, instead of two workers waiting on each other. Without xdist nothing moves.
LONG_TESTS = {
    "tests/api/test_fuzz.py::test_fuzzing_every_operation_finds_no_server_error_and_no_spec_mismatch[postgresql]": 335,
    "tests/api/test_fuzz.py::test_fuzzing_every_operation_finds_no_server_error_and_no_spec_mismatch[sqlite]": 189,
    "tests/integration/test_job_recovery.py::": 49,
    "tests/integration/test_reevaluation_e2e.py::test_a_worker_killed_mid_run": 46,
    "tests/integration/test_reevaluation_e2e.py::test_h20_overlay": 34,
    "tests/integration/test_audit_worker.py::test_a_worker_killed_mid_audit": 33,
    "tests/engine/test_explanation_memory.py::": 30,
    "tests/console/test_rules_pages.py::test_draft_overlay_preview_publish_feed_rollback": 31,
    "tests/services/test_catalogue_import.py::test_parallel_import_stores_exactly_what_a_serial_import_stores": 22,
    "tests/console/test_rules_pages.py::test_overlay_by_model_family": 24,
    "tests/console/test_rules_pages.py::test_publish_after_someone_else": 21,
    "tests/integration/": 15,
    "tests/test_cli_output.py::test_audit_run_against_redis": 19,
    "tests/console/test_rules_pages.py::test_storm_guard": 17,
    "tests/services/test_rule_versions_reevaluation.py::": 12,
    "tests/services/test_reevaluation_writes.py::": 12,
    "tests/services/test_rule_versions_concurrency.py::": 13,
    "tests/api/test_draft_etags.py::test_two_concurrent_writes": 13,
    "tests/test_compose.py::test_web_runs_gunicorn": 14,
    "tests/engine/test_table_columns.py::test_columns_equal_rows": 14,
}


def _expected_seconds(nodeid: str) -> float:
    best = max((p for p in LONG_TESTS if nodeid.startswith(p)), key=len, default=None)
    return LONG_TESTS[best] if best else 0.0


def pytest_collection_modifyitems(session, config, items):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2 or len(items) < 4 * workers:
        return
    redis = [it for it in items if "redis_url" in getattr(it, "fixturenames", ())]
    long_ = [it for it in items if it not in redis and _expected_seconds(it.nodeid) > 0]
    units = [(sum(_expected_seconds(it.nodeid) for it in redis) + len(redis), redis)] if redis else []
    units += [(_expected_seconds(it.nodeid), [it]) for it in long_]
    bins: list[list] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for seconds, members in sorted(units, key=lambda u: -u[0]):  # longest first, to the least loaded slice
        i = loads.index(min(loads))
        bins[i] += sorted(members, key=lambda it: -_expected_seconds(it.nodeid))
        loads[i] += seconds
    moved = {id(it) for b in bins for it in b}
    rest = iter([it for it in items if id(it) not in moved])
    ordered, left = [], len(items)
    for i in range(workers):  # the slice sizes worksteal uses: what is left divided by the workers left
        size = left // (workers - i)
        chunk = bins[i] + [next(rest) for _ in range(max(0, size - len(bins[i])))]
        ordered += chunk
        left -= len(chunk)
    ordered += list(rest)
    assert len(ordered) == len(items) and len({id(it) for it in ordered}) == len(items)
    items[:] = ordered


def pytest_sessionfinish(session):
    # Databases handed to the background dropper after the session fixtures were torn down.
    _DROPPER.join()


# ---------- apps: the OpenAPI document built once per configuration ----------
#
# create_app() costs ~0.25 s of CPU, three quarters of it in flask-smorest documenting every operation
# (apispec resolving ~70 paths and their marshmallow schemas), and the suite makes about a thousand apps.
# The document is a pure function of the code and the app's settings, so the first app of each
# configuration (every setting but DATABASE_URL) builds it as usual and later apps of that configuration
# register the same blueprints, routes and handlers but serve a copy of that document (api.spec.to_dict,
# which GET /api/v1/openapi.json and tests/spec_check.py read) instead of rebuilding it.
# TEST_SPEC_MEMO=0 builds it for every app.

_SPECS: dict[str, bytes] = {}
_SPEC_LOCK = threading.Lock()


def _install_spec_memo() -> None:
    if os.environ.get("TEST_SPEC_MEMO", "1") == "0":
        return
    import dataclasses
    import json

    import compliance

    build = compliance.init_api

    def init_api(app) -> None:
        import flask_smorest

        key = repr(dataclasses.replace(app.config["COMPLIANCE"], DATABASE_URL=""))
        with _SPEC_LOCK:
            cached = _SPECS.get(key)
            if cached is None:
                build(app)
                _SPECS[key] = app.json.dumps(_api_of(app).spec.to_dict()).encode()
                return
            document = flask_smorest.Blueprint.register_views_in_doc
            flask_smorest.Blueprint.register_views_in_doc = lambda *args, **kwargs: None
            try:
                build(app)
            finally:
                flask_smorest.Blueprint.register_views_in_doc = document
        _api_of(app).spec.to_dict = lambda: json.loads(cached)

    compliance.init_api = init_api


def _api_of(app):
    return app.extensions["flask-smorest"]["apis"][""]["ext_obj"]


# ---------- databases: built once per session, copied for each test ----------
#
# Migrating and seeding a database costs seconds; copying one costs milliseconds. Each xdist worker
# builds one template per (dialect, rules directory) on first use, and every test gets a copy: a file
# copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL. A copy is a real, separate database, so
# tests with several connections, background threads or real Celery worker processes see exactly what
# they would see on a freshly migrated one (a rolled-back transaction could not give them that).

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def _admin_connect():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True)


def _pg_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    return f"{base}/{name}"


def reserve_pg_url() -> str:
    """The URL of a new, uniquely named PostgreSQL database that does not exist yet (see provision)."""
    require_service("postgresql")
    return _pg_url(f"cc_test_{WORKER}_{uuid.uuid4().hex[:12]}")


def create_pg_database() -> str:
    """A new empty PostgreSQL database; returns its SQLAlchemy URL."""
    url = reserve_pg_url()
    with _admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
    return url


def drop_pg_database(url: str, wait: bool = False) -> None:
    """Drop a test's database. A DROP DATABASE takes ~1 s (PostgreSQL syncs and unlinks the files) and
    nothing after a test's teardown reads its database again (every name is new), so by default the drop
    runs on a background thread of this worker (_Dropper) while the next test runs; wait=True drops now.
    The session waits for every pending drop at its end (schema_templates), so none is left behind."""
    name = url.rsplit("/", 1)[1]
    if wait:
        _drop_now(name)
    else:
        _DROPPER.put(name)


def _drop_now(name: str) -> None:
    with _admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _Dropper:
    """Background threads of this worker that drop the databases handed to them. Each DROP DATABASE waits
    for a checkpoint, and drops waiting at the same time share one, so a few threads drop several per
    checkpoint instead of one."""

    THREADS = 4

    def __init__(self) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []

    def put(self, name: str) -> None:
        self._threads = [t for t in self._threads if t.is_alive()]
        if len(self._threads) < min(self.THREADS, self._queue.qsize() + 1):
            thread = threading.Thread(target=self._run, name="test-db-dropper", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._queue.put(name)

    def _run(self) -> None:
        while True:
            name = self._queue.get()
            try:
                if name is not None:
                    _drop_now(name)
            except Exception as exc:  # reported at the end of the session (join)
                self.errors.append(f"{name}: {type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()

    def join(self) -> list[str]:
        """Wait until every handed-over database is dropped; the failures, if any."""
        if self._threads:
            self._queue.join()
        return self.errors


_DROPPER = _Dropper()


def rules_key(rules_dir: str) -> str:
    """Identifies a rules directory by its files' contents (copies of rules/ share a template)."""
    digest = hashlib.sha256()
    root = Path(rules_dir)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class SchemaTemplates:
    """Migrated and seeded template databases of one test session, and the copies made from them."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.sqlite: dict[str, Path] = {}
        self.postgres: dict[str, str] = {}

    def provision(self, url: str, rules_dir: str) -> None:
        """Make the database at `url` a migrated database seeded from `rules_dir`, unless it exists."""
        if url.startswith("sqlite:///"):
            target = Path(url[len("sqlite:///"):])
            if not target.exists():
                shutil.copyfile(self._sqlite_template(rules_dir), target)
        elif url.startswith("postgresql"):
            name = url.rsplit("/", 1)[1]
            with _admin_connect() as conn:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    return
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self._pg_template(rules_dir)}"')

    def _sqlite_template(self, rules_dir: str) -> Path:
        key = rules_key(rules_dir)
        if key not in self.sqlite:
            path = self.directory / f"template-{key}.db"
            _migrate_and_seed(f"sqlite:///{path}", rules_dir)
            assert not Path(f"{path}-wal").exists(), "the template's WAL was not checkpointed"
            self.sqlite[key] = path
        return self.sqlite[key]

    def _pg_template(self, rules_dir: str) -> str:
        key = rules_key(rules_dir)
        if key not in self.postgres:
            url = create_pg_database()
            _migrate_and_seed(url, rules_dir)  # disposes its connections: a template must have none
            self.postgres[key] = url.rsplit("/", 1)[1]
        return self.postgres[key]

    def drop(self) -> None:
        errors = _DROPPER.join()
        for name in self.postgres.values():
            drop_pg_database(_pg_url(name), wait=True)
        assert not errors, "test databases that could not be dropped:\n" + "\n".join(errors)


def _migrate_and_seed(url: str, rules_dir: str) -> None:
    from compliance.db import Database
    from compliance.services.rulebooks import RulebookStore

    db = Database(url)
    try:
        db.upgrade()
        RulebookStore(db, rules_dir).seed()
    finally:
        db.dispose()


@pytest.fixture(scope="session")
def schema_templates(tmp_path_factory):
    templates = SchemaTemplates(tmp_path_factory.mktemp("schema-templates"))
    yield templates
    templates.drop()


@pytest.fixture
def pg_url():
    """The URL of a PostgreSQL database of this test's own; make_app / provision creates it as a copy
    of the migrated and seeded template (create_pg_database() gives an empty one instead)."""
    url = reserve_pg_url()
    yield url
    drop_pg_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'compliance.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path):
    """Runs the test once on SQLite and once on PostgreSQL (created by make_app, as for pg_url)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'compliance.db'}"
    else:
        url = reserve_pg_url()
        yield url
        drop_pg_database(url)


def redis_test_db() -> int:
    """The Redis database index the tests own: TEST_REDIS_DB, or one derived from the checkout's path."""
    root = str(Path(__file__).resolve().parents[1])
    return int(os.environ.get("TEST_REDIS_DB", 1 + zlib.crc32(root.encode()) % 15))


def pytest_report_header(config):
    how = "TEST_REDIS_DB" if "TEST_REDIS_DB" in os.environ else "derived from this checkout's path; set TEST_REDIS_DB to choose"
    return (f"redis: the tests use database {redis_test_db()} of {REDIS_URL} ({how}); tests that need Redis "
            "empty that database first, and no other")


@pytest.fixture
def redis_url():
    """A Redis database index of its own, flushed before the test.

    The index comes from the checkout's path (or TEST_REDIS_DB), so two checkouts testing at once on
    one machine never share a broker queue. Within a checkout, tests that use it take turns: each holds
    a lock on the index for its whole run, so parallel pytest-xdist workers (or two pytest runs) never
    flush or consume each other's queues."""
    require_service("redis")
    import redis

    index = redis_test_db()
    url = f"{REDIS_URL}/{index}"
    with open(Path(tempfile.gettempdir()) / f"compliance-tests-redis-{index}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        redis.Redis.from_url(url).flushdb()
        yield url


# ---------- apps and clients ----------

@pytest.fixture
def make_app(tmp_path: Path, schema_templates):
    """Factory: make_app(DATABASE_URL=..., **settings) -> Flask app (SQLite in tmp_path by default).

    A database that does not exist yet is first made a copy of the migrated template seeded from the
    app's RULES_DIR (see SchemaTemplates); an existing one (a second app on it) is used as it is.
    Every JSON response the app gives is validated against its OpenAPI spec (tests/spec_check.py);
    the test fails at teardown on any mismatch."""
    from compliance import create_app
    from compliance.config import Config
    from tests.spec_check import install

    apps = []
    mismatches: list[str] = []

    def factory(**settings):
        settings.setdefault("DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
        settings.setdefault("CELERY_BROKER_URL", "")
        settings.setdefault("SAMPLE_CATALOGUE", "")
        config = Config.from_env(settings)
        schema_templates.provision(config.DATABASE_URL, config.RULES_DIR)
        app = create_app(config)
        app.config["TESTING"] = True
        install(app, mismatches)
        apps.append(app)
        return app

    yield factory
    # Let this test's in-process jobs finish before the next test starts: an eager Celery task
    # blocks result.get() process-wide while it runs, and its database is about to go away.
    from compliance.tasks import wait_for_embedded_jobs

    for app in apps:
        wait_for_embedded_jobs(app, timeout=300, cancel_timers=True)
    for app in apps:
        app.extensions["db"].dispose()
    assert not mismatches, "responses that do not match the OpenAPI spec:\n" + "\n".join(dict.fromkeys(mismatches))


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def _headers(app, role: str) -> dict[str, str]:
    from tests.factories import api_headers

    return api_headers(app, role)


@pytest.fixture
def admin_headers(app):
    return _headers(app, "admin")


@pytest.fixture
def auditor_headers(app):
    return _headers(app, "auditor")


@pytest.fixture
def viewer_headers(app):
    return _headers(app, "viewer")


@pytest.fixture
def headers_for():
    """headers_for(app, role) -> auth headers with a new key of that role."""
    return _headers


# ---------- reference products (regulation primer, worked examples) ----------

H100 = {"name": "H100 SXM5", "vendor": "NVIDIA", "family": "H100", "kind": "ic", "datacenter": True,
        "throughput": [{"format": "fp8", "dense_tops": 1979}], "die_area_mm2": 814,
        "io_bandwidth_gb_per_s": 900, "memory_bandwidth_gb_per_s": 3350, "release_date": "2022-09"}
A800 = {"name": "A800 SXM4 80GB", "vendor": "NVIDIA", "family": "A800", "kind": "ic", "datacenter": True,
        "throughput": [{"format": "fp16", "dense_tops": 312}], "die_area_mm2": 826, "io_bandwidth_gb_per_s": 400,
        "memory_bandwidth_gb_per_s": 2039, "release_date": "2022-11"}
H20 = {"name": "H20", "vendor": "NVIDIA", "family": "H20", "kind": "ic", "datacenter": True,
       "throughput": [{"format": "fp16", "dense_tops": 148}], "die_area_mm2": 814, "io_bandwidth_gb_per_s": 900,
       "memory_bandwidth_gb_per_s": 4000, "release_date": "2024"}
RTX_4090 = {"name": "GeForce RTX 4090", "vendor": "NVIDIA", "kind": "ic", "datacenter": False,
            "throughput": [{"format": "fp8", "dense_tops": 660.6}], "die_area_mm2": 609,
            "io_bandwidth_gb_per_s": 64, "memory_bandwidth_gb_per_s": 1008, "release_date": "2022-10-12"}
RTX_4090_D = {"name": "GeForce RTX 4090 D", "vendor": "NVIDIA", "kind": "ic", "datacenter": False,
              "throughput": [{"format": "fp8", "dense_tops": 588.35}], "die_area_mm2": 609,
              "io_bandwidth_gb_per_s": 64, "memory_bandwidth_gb_per_s": 1008}
HBM3E = {"name": "HBM3E 12-high", "vendor": "SK hynix", "kind": "hbm", "memory_bandwidth_gb_per_s": 1228.8,
         "package_area_mm2": 121}
