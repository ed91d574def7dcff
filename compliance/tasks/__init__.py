"""Celery wiring. Tasks are thin: they take ids, call a service, return small counts.

Services never send tasks themselves: they record "send task X after commit" on their database
session (compliance.db.enqueue_after_commit), and `init_celery` installs the sender on the app's
Database. With no broker configured (embedded mode) a sent task runs eagerly on a background
thread, so the API contract (202 + progress) is unchanged.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from celery import Celery, Task
from celery.signals import worker_process_init
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError

from ..services.audits import sweep_audits
from ..services.reevaluation import sweep_runs
from ..services.webhooks import sweep_deliveries

log = logging.getLogger(__name__)
TASK_MODULES = ("audits", "reevaluation", "webhooks", "orders")
# Errors worth retrying (Celery's autoretry_for): lost / failing DB connections, Redis and broker hiccups.
TRANSIENT = (OperationalError, RedisConnectionError, RedisTimeoutError, KombuOperationalError, ConnectionError)
BROKER_CONNECT_TIMEOUT = 2.0  # seconds: a request that enqueues work must not hang on a dead broker


class FlaskTask(Task):
    """Runs every task inside the Flask app context of the process."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.app.flask_app.app_context():
            return self.run(*args, **kwargs)


class ChunkTask(FlaskTask):
    """A job chunk task `(job_id, chunk_id)`: when it fails for good, `fail_chunk` fails its job."""

    fail_chunk: Callable[..., None]

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        log.error("%s%s failed: %s: %s", self.name, tuple(args), type(exc).__name__, exc)
        with self.app.flask_app.app_context():
            self.fail_chunk(ext("db"), *args, f"{type(exc).__name__}: {exc}")


celery_app = Celery("compliance", task_cls=FlaskTask)
celery_app.flask_app = None  # set by init_celery
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-jobs")
_timers: set[threading.Timer] = set()
_idle = threading.Condition()
_pending = 0  # embedded jobs submitted and not finished


def ext(name: str) -> Any:
    """An extension of the Flask app of this process ("config": its Config)."""
    app = celery_app.flask_app
    return app.config["COMPLIANCE"] if name == "config" else app.extensions[name]


def init_celery(app, config) -> Celery:
    broker = config.CELERY_BROKER_URL
    celery_app.conf.update(
        broker_url=broker or "memory://",
        result_backend=config.CELERY_RESULT_BACKEND or broker or "cache+memory://",
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_always_eager=not broker,
        task_eager_propagates=True,
        task_store_eager_result=False,
        worker_prefetch_multiplier=1,
        task_reject_on_worker_lost=True,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=BROKER_CONNECT_TIMEOUT,
        # Above the longest task (a 50k-product chunk takes seconds). A chunk whose worker died is
        # picked up by the sweeper once its lease expires, long before this.
        broker_transport_options=_transport_options(config.CELERY_VISIBILITY_TIMEOUT),
        result_backend_transport_options={"visibility_timeout": config.CELERY_VISIBILITY_TIMEOUT,
                                          "socket_connect_timeout": BROKER_CONNECT_TIMEOUT},
        redis_socket_connect_timeout=BROKER_CONNECT_TIMEOUT,
        result_expires=24 * 3600,
        task_routes={
            "compliance.audits.*": {"queue": "audits"},
            "compliance.reeval.*": {"queue": "reevaluation"},
            "compliance.webhooks.*": {"queue": "webhooks"},
        },
        task_default_queue="celery",
        beat_schedule={
            "sweep-stalled-work": {"task": "compliance.sweep", "schedule": float(config.JOB_SWEEP_SECONDS)},
        },
    )
    _forget_connections()
    celery_app.flask_app = app
    app.extensions["celery"] = celery_app
    for name in TASK_MODULES:
        __import__(f"{__name__}.{name}")
    app.extensions["db"].sender = send_task
    return celery_app


def send_task(name: str, args: list) -> None:
    """Publish one task (raises if the broker is unreachable); embedded mode: run it on the jobs thread."""
    task = celery_app.tasks[name]
    if celery_app.conf.task_always_eager:
        dispatch(lambda: task.apply_async(args=args))
    else:
        task.apply_async(args=args, retry=False)


def _forget_connections() -> None:
    """Drop the broker pool, producer pool, control and result backend built for a previous
    configuration (several apps in one process, e.g. embedded tests then real-worker tests)."""
    celery_app._pool = None  # not closed: work already running may still hold it
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
    celery_app.__dict__.pop("control", None)
    celery_app._backend_cache = None
    celery_app._local = threading.local()


def _transport_options(vt: int) -> dict:
    opts: dict[str, Any] = {"visibility_timeout": vt, "socket_connect_timeout": BROKER_CONNECT_TIMEOUT}
    if vt < 60:  # short timeouts (tests): scan for abandoned messages every second
        opts.update(unacked_restore_interval=1, unacked_restore_throttle=1)
    return opts


def dispatch(start: Callable[[], Any]) -> None:
    """Run `start` now (broker mode: it publishes) or, embedded, on the background jobs thread."""
    global _pending
    if celery_app.conf.task_always_eager:
        with _idle:
            _pending += 1
        _executor.submit(_run_logged, start)
    else:
        start()


def _run_logged(start: Callable[[], Any]) -> None:
    global _pending
    try:
        start()
    except Exception:
        log.exception("embedded job failed")
    finally:
        with _idle:
            _pending -= 1
            _idle.notify_all()


def dispatch_later(delay: float, start: Callable[[], Any]) -> None:
    """Embedded mode: dispatch `start` after `delay` seconds without holding the jobs thread."""
    timer = threading.Timer(delay, lambda: (_timers.discard(timer), dispatch(start)))
    timer.daemon = True
    _timers.add(timer)
    timer.start()


def wait_for_embedded_jobs(timeout: float = 60.0, cancel_timers: bool = False) -> None:
    """Block until queued embedded jobs have run (used by the CLI and tests).

    With cancel_timers, pending delayed dispatches (webhook retries) are dropped first: the app is
    going away, and the sweeper picks such deliveries up again on the next start."""
    if cancel_timers:
        for timer in list(_timers):
            timer.cancel()
        _timers.clear()
    # A job may enqueue more work (a chunk's webhooks): wait until nothing is left.
    with _idle:
        if not _idle.wait_for(lambda: _pending == 0, timeout=timeout):
            raise TimeoutError(f"embedded jobs still running after {timeout}s")


@worker_process_init.connect
def _fresh_connections(**_kwargs) -> None:
    """Forked worker processes must not share the parent's database connections."""
    app = celery_app.flask_app
    if app is not None:
        app.extensions["db"].engine.dispose(close=False)


@celery_app.task(name="compliance.sweep")
def sweep() -> dict:
    """Periodic sweeper (Celery beat, every JOB_SWEEP_SECONDS): expired chunk leases and unsent or lost
    chunks of audits and re-evaluations, lost finalizes, overdue webhook deliveries."""
    db, config = ext("db"), ext("config")
    return {"audits": sweep_audits(db, config.JOB_REQUEUE_SECONDS),
            "reevaluations": sweep_runs(db, config.JOB_REQUEUE_SECONDS),
            "webhooks": len(sweep_deliveries(db))}
