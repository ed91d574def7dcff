"""A real Celery worker (subprocess) against the real Redis and PostgreSQL.

    def test_x(worker_env, start_worker):
        app = worker_env.app            # Flask app wired to the same DB and broker
        w = start_worker()              # `celery -A worker worker` in a subprocess, waits until it answers
        ...
        w.kill()                        # SIGKILL the whole worker (pool children too)
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import drop_pg_database, require_service, reserve_pg_url

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate, timeout: float, interval: float = 0.1, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value or `timeout` seconds pass (then fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@dataclass
class WorkerEnv:
    database_url: str
    broker_url: str
    app: object
    env: dict = field(default_factory=dict)


@dataclass
class WorkerProcess:
    proc: subprocess.Popen
    log_path: Path
    name: str

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes (a crash, not a shutdown)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def worker_env(tmp_path, redis_url, schema_templates):
    """PostgreSQL database (a copy of the migrated template) + Redis broker + a Flask app using them."""
    require_service("postgresql")
    from compliance import create_app
    from compliance.config import Config

    db_url = reserve_pg_url()
    settings = {"DATABASE_URL": db_url, "CELERY_BROKER_URL": redis_url, "CELERY_RESULT_BACKEND": redis_url,
                "SAMPLE_CATALOGUE": ""}
    schema_templates.provision(db_url, Config.from_env(settings).RULES_DIR)
    app = create_app(settings)
    env = dict(os.environ, **{k: v for k, v in settings.items()}, PYTHONPATH=str(ROOT))
    yield WorkerEnv(db_url, redis_url, app, env)
    app.extensions["db"].dispose()
    drop_pg_database(db_url)


@pytest.fixture
def start_worker(worker_env, tmp_path):
    """start_worker(concurrency=2, queues=...) -> WorkerProcess, ready to take tasks."""
    started: list[WorkerProcess] = []

    def start(concurrency: int = 2, queues: str = "audits,reevaluation,webhooks,celery",
              extra_env: dict | None = None, slow: float | None = None, beat: bool = False) -> WorkerProcess:
        """slow: each job chunk sleeps this long once claimed (tests/integration/slow_worker.py);
        beat: the worker also runs Celery beat (the periodic sweeper, every JOB_SWEEP_SECONDS)."""
        n = len(started)
        name = f"w{n}-{os.getpid()}@testhost"
        log_path = tmp_path / f"worker-{n}.log"
        env = dict(worker_env.env, **(extra_env or {}))
        module = "worker"
        if slow is not None:
            module = "tests.integration.slow_worker"
            env["SLOW_CHUNK_SECONDS"] = str(slow)
        extra = ["-B", "-s", str(tmp_path / f"beat-schedule-{n}")] if beat else []
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", module, "worker", "--loglevel=INFO", "-P", "prefork",
             f"--concurrency={concurrency}", "-Q", queues, "-n", name, "--without-gossip", "--without-mingle",
             *extra],
            cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
        w = WorkerProcess(proc, log_path, name)
        started.append(w)
        celery = worker_env.app.extensions["celery"]

        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{w.log()[-3000:]}")
            replies = celery.control.ping(destination=[name], timeout=0.5)
            return bool(replies)

        wait_until(ready, timeout=60, interval=0.3, message=f"worker {name} to answer ping")
        return w

    yield start
    for w in started:
        w.stop()
